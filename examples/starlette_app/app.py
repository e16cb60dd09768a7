"""A Starlette app served by pounce: JSON, path parameters, streaming, lifespan state."""

import contextlib

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route


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


app = Starlette(
    routes=[
        Route("/", home),
        Route("/items/{item_id:int}", item),
        Route("/echo", echo, methods=["POST"]),
        Route("/stream", stream),
    ],
    lifespan=lifespan,
)
