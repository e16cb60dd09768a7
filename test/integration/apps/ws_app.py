"""A bare ASGI WebSocket app for pounce's integration tests: one behaviour per path.

What the app observes (scope, disconnect codes, exceptions raised by send) is recorded in
EVENTS, served as JSON by GET /events, and printed as "WSEVENT {json}" lines (read from the
server's log when the server is gone, e.g. after SIGTERM).
"""

import asyncio
import json
import urllib.parse

EVENTS = []
GO = {}  # name -> asyncio.Event, set by GET /go?name=...


def record(**event):
    EVENTS.append(event)
    print("WSEVENT " + json.dumps(event), flush=True)


def _event(name):
    if name not in GO:
        GO[name] = asyncio.Event()
    return GO[name]


def _jsonable(value):
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


async def _http(scope, receive, send):
    path = scope["path"]
    query = urllib.parse.parse_qs(scope["query_string"].decode())
    if path == "/events":
        body = json.dumps(EVENTS).encode()
    elif path == "/go":
        _event(query["name"][0]).set()
        body = b"ok"
    elif path == "/http-extensions":
        body = json.dumps(sorted(scope["extensions"])).encode()
    else:
        body = b"plain http"
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


async def _echo_until_disconnect(receive, send, path):
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            record(path=path, disconnect=message["code"], reason=message.get("reason"))
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope["state"]["lifespan"] = "on"
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"].startswith("pounce.worker."):
        return
    if scope["type"] == "http":
        await _http(scope, receive, send)
        return
    assert scope["type"] == "websocket", scope["type"]
    path = scope["path"]
    query = urllib.parse.parse_qs(scope["query_string"].decode())
    connect = await receive()
    assert connect == {"type": "websocket.connect"}, connect

    if path == "/echo":
        await send({"type": "websocket.accept"})
        await _echo_until_disconnect(receive, send, path)
    elif path == "/scope":
        await send({"type": "websocket.accept"})
        state = scope.get("state", {})
        await send({"type": "websocket.send", "text": json.dumps(_jsonable(
            {k: v for k, v in scope.items() if k != "state"} | {"state": dict(state)}))})
        await send({"type": "websocket.close"})
    elif path == "/subprotocol":
        offered = scope["subprotocols"]
        chosen = "chat.v2" if "chat.v2" in offered else None
        await send({"type": "websocket.accept", "subprotocol": chosen,
                    "headers": [(b"x-extra", b"yes"), (b"sec-websocket-protocol", b"bogus"),
                                (b"set-cookie", b"a=1")]})
        await send({"type": "websocket.send", "text": json.dumps(offered)})
        await _echo_until_disconnect(receive, send, path)
    elif path == "/bad-subprotocol":
        try:
            await send({"type": "websocket.accept", "subprotocol": "never-offered"})
        except ValueError as exc:
            record(path=path, error=type(exc).__name__)
            await send({"type": "websocket.close"})
    elif path == "/deny":
        await send({"type": "websocket.close", "code": 4000})
        record(path=path, denied=True, after=(await receive())["type"])
    elif path == "/deny-http":
        await send({"type": "websocket.http.response.start", "status": 401,
                    "headers": [(b"content-type", b"text/plain"), (b"www-authenticate", b"Token")]})
        await send({"type": "websocket.http.response.body", "body": b"no ", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"entry"})
        record(path=path, denied=True)
    elif path == "/close":
        await send({"type": "websocket.accept"})
        message = await receive()
        await send({"type": "websocket.close", "code": int(query.get("code", ["4001"])[0]),
                    "reason": message.get("text") or "bye"})
        errors = []
        for attempt in ({"type": "websocket.send", "text": "late"},
                        {"type": "websocket.close"}):
            try:
                await send(attempt)
                errors.append(None)
            except OSError as exc:
                errors.append(type(exc).__name__)
        last = await receive()
        record(path=path, send_after_close=errors, disconnect=last["code"],
               reason=last.get("reason"))
    elif path == "/send-after-disconnect":
        await send({"type": "websocket.accept"})
        message = await receive()
        assert message["type"] == "websocket.disconnect", message
        try:
            await send({"type": "websocket.send", "text": "anyone?"})
            record(path=path, raised=None)
        except OSError as exc:
            record(path=path, raised=type(exc).__name__, is_oserror=True)
    elif path == "/raise-before-accept":
        raise RuntimeError("refusing by exception")
    elif path == "/return-before-accept":
        return
    elif path == "/raise-after-accept":
        await send({"type": "websocket.accept"})
        await receive()
        raise RuntimeError("boom after accept")
    elif path == "/return-after-accept":
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "bye"})
    elif path == "/bad-send":
        await send({"type": "websocket.accept"})
        errors = []
        for bad in ({"type": "websocket.send"},
                    {"type": "websocket.send", "bytes": b"x", "text": "x"},
                    {"type": "websocket.send", "text": b"bytes as text"},
                    {"type": "websocket.close", "code": 1005},
                    {"type": "websocket.accept"},
                    {"type": "websocket.nonsense"}):
            try:
                await send(bad)
                errors.append(None)
            except (ValueError, TypeError, RuntimeError) as exc:
                errors.append(type(exc).__name__)
        record(path=path, errors=errors)
        await send({"type": "websocket.send", "text": "still open"})
        await _echo_until_disconnect(receive, send, path)
    elif path == "/flood":
        # Sends as fast as send() lets it; a client that does not read must stall it.
        size = int(query["size"][0])
        count = int(query["count"][0])
        payload = b"x" * size
        await send({"type": "websocket.accept"})
        try:
            for i in range(count):
                await send({"type": "websocket.send", "bytes": payload})
                if i % 16 == 0:
                    record(path=path, sent=i + 1)
        except OSError as exc:  # the client left while send() waited for room
            record(path=path, send_failed=type(exc).__name__,
                   disconnect=(await receive())["code"])
            return
        record(path=path, sent=count, done=True)
        await receive()  # the client's close
    elif path == "/slow-receiver":
        # Receives nothing until GET /go?name=<query name>; counts what it then gets.
        await send({"type": "websocket.accept"})
        await _event(query["name"][0]).wait()
        total = 0
        messages = 0
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                record(path=path, total=total, messages=messages, disconnect=message["code"])
                return
            total += len(message["bytes"])
            messages += 1
            if messages == int(query["expect"][0]):
                await send({"type": "websocket.send", "text": f"{messages} {total}"})
    elif path == "/slow-handshake":
        # Never answers the handshake: request_timeout must end it (504) and cancel this task.
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            record(path=path, cancelled=True, after=(await receive())["code"])
            raise
    elif path == "/hold":
        # Accepted and quiet: what the server's timers do to an idle WebSocket.
        await send({"type": "websocket.accept"})
        await _echo_until_disconnect(receive, send, path)
    else:
        await send({"type": "websocket.close"})
