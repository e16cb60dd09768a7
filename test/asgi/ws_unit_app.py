"""The ASGI app of the WebSocket unit tests (test/asgi/websocket_test.cc)."""

import asyncio
import json

EVENTS = []


async def app(scope, receive, send):
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": json.dumps(EVENTS).encode()})
        return
    assert scope["type"] == "websocket"
    assert (await receive())["type"] == "websocket.connect"
    path = scope["path"]
    if path == "/deny":
        await send({"type": "websocket.close"})
        return
    await send({"type": "websocket.accept",
                "subprotocol": scope["subprotocols"][0] if scope["subprotocols"] else None})
    await send({"type": "websocket.send", "text": json.dumps(
        {"http_version": scope["http_version"], "scheme": scope["scheme"],
         "subprotocols": scope["subprotocols"]})})
    if path == "/slow":
        await asyncio.sleep(0.3)  # lets messages pile up: the I/O side must stop reading
    total = 0
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            EVENTS.append({"path": path, "code": message["code"], "total": total})
            return
        data = message.get("bytes") or message.get("text", "").encode()
        total += len(data)
        if path == "/slow":
            await send({"type": "websocket.send", "text": str(total)})
        else:
            await send({"type": "websocket.send", "bytes": data})
