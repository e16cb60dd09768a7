"""A Starlette app served by pounce: JSON, path parameters, streaming, lifespan state, and a
WebSocket chat-style echo."""

import contextlib

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect


@contextlib.asynccontextmanager
async def lifespan(app):
    # Per event loop (ASGI): resources opened here are shared by that loop's requests.
    yield {"visits": {"count": 0}}


async def home(request: Request):
    request.state.visits["count"] += 1
    return JSONResponse({"hello": "starlette", "visits": request.state.visits["count"]})


async def item(request: Request):
    return JSONResponse({"item": request.path_params["item_id"], "q": request.query_params.get("q")})


async def echo(request: Request):
    body = await request.body()
    return PlainTextResponse(body.decode("utf-8", "replace"))


async def stream(request: Request):
    async def numbers():
        for i in range(10):
            yield f"{i}\n"

    return StreamingResponse(numbers(), media_type="text/plain")


async def echo_socket(websocket: WebSocket):
    # Offers "echo.v1" when the client asks for it; JSON in, JSON out.
    subprotocol = "echo.v1" if "echo.v1" in websocket.scope["subprotocols"] else None
    await websocket.accept(subprotocol=subprotocol)
    count = 0
    try:
        while True:
            message = await websocket.receive_json()
            count += 1
            if message.get("bye"):
                await websocket.close(code=4000, reason=f"{count} messages")
                return
            await websocket.send_json({"echo": message, "count": count})
    except WebSocketDisconnect:
        pass


app = Starlette(
    routes=[
        Route("/", home),
        Route("/items/{item_id:int}", item),
        Route("/echo", echo, methods=["POST"]),
        Route("/stream", stream),
        WebSocketRoute("/ws", echo_socket),
    ],
    lifespan=lifespan,
)
