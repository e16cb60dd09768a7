"""An ASGI app that reports what the server gives it, for pounce's integration tests."""

import asyncio
import json
import os
import urllib.parse

EVENTS = []          # lifespan and worker-scope events, in order
DISCONNECTS = []     # paths whose request saw http.disconnect
SEND_ERRORS = []     # exception class names raised by send() after the end
GONE_ERRORS = []     # [class name, is OSError] raised by send() after the client left
CANCELLED = []       # paths whose request coroutine was cancelled


def _jsonable(value):
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


async def _body(receive):
    chunks = []
    while True:
        message = await receive()
        assert message["type"] == "http.request", message
        chunks.append(message["body"])
        if not message.get("more_body", False):
            return b"".join(chunks), len(chunks)


async def _respond(send, status, body, content_type=b"text/plain", headers=()):
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type), *headers]})
    await send({"type": "http.response.body", "body": body})


async def app(scope, receive, send):
    kind = scope["type"]
    if kind == "lifespan":
        while True:
            message = await receive()
            EVENTS.append(message["type"])
            if message["type"] == "lifespan.startup":
                scope["state"]["started"] = True
                scope["state"]["greeting"] = "hello from lifespan"
                if os.environ.get("PROBE_SHARED_STATE"):
                    scope["state"]["shared"] = []
                if os.environ.get("PROBE_TASK_FACTORY"):
                    def factory(loop, coro, **kwargs):
                        return asyncio.Task(coro, loop=loop, name="from-factory", **kwargs)
                    asyncio.get_running_loop().set_task_factory(factory)
                await send({"type": "lifespan.startup.complete"})
            else:
                if os.environ.get("PROBE_SHUTDOWN_HANG"):
                    await asyncio.sleep(3600)  # bounded by timeout_graceful_shutdown
                await send({"type": "lifespan.shutdown.complete"})
                if os.environ.get("PROBE_SHUTDOWN_FILE"):
                    with open(os.environ["PROBE_SHUTDOWN_FILE"], "a") as f:
                        f.write("lifespan.shutdown\n")
                return
    if kind.startswith("pounce.worker."):
        EVENTS.append(f"{kind}:{scope['worker_id']}:{scope['thread_id']}")
        if os.environ.get("PROBE_WORKER_FILE"):
            with open(os.environ["PROBE_WORKER_FILE"], "a") as f:
                f.write(f"{kind}:{scope['worker_id']}:{scope['thread_id']}\n")
        return
    assert kind == "http"
    path = scope["path"]
    query = urllib.parse.parse_qs(scope["query_string"].decode())

    if path.endswith("/where"):
        await _respond(send, 200, json.dumps({"path": path, "root_path": scope["root_path"],
                                             "raw_path": scope["raw_path"].decode()}).encode(),
                       b"application/json")
    elif path == "/receive-after-timeout":
        # A receive() cancelled by a timeout before the body came: the next calls still get
        # every chunk (the ASGI receive contract), then the body is echoed.
        try:
            await asyncio.wait_for(receive(), 0.2)
            timed_out = False
        except asyncio.TimeoutError:
            timed_out = True
        body, _ = await _body(receive)
        await _respond(send, 200, json.dumps({"timed_out": timed_out,
                                              "body": body.decode()}).encode(), b"application/json")
    elif path == "/two-receivers":
        # Two receive() calls waiting at once get one chunk each, in order.
        first = asyncio.ensure_future(receive())
        await asyncio.sleep(0)
        second = asyncio.ensure_future(receive())
        a, b = await first, await second
        await _respond(send, 200, json.dumps([a["body"].decode(), b["body"].decode(),
                                              b.get("more_body", False)]).encode(),
                       b"application/json")
    elif path.startswith("/scope") or path.startswith("/api/scope"):
        data = {k: _jsonable(v) for k, v in scope.items() if k != "state"}
        data["state"] = dict(scope.get("state", {}))
        data["state_is_copy"] = True
        await _respond(send, 200, json.dumps(data).encode(), b"application/json")
    elif path == "/extensions-mutate":
        # What this request's extensions held, before it leaves its marks in them (a key,
        # and an entry in the trailers extension's dict).
        ext = scope["extensions"]
        seen = {"keys": sorted(ext), "trailers": dict(ext.get("http.response.trailers", {}))}
        ext["leak"] = query.get("n", ["?"])[0]
        ext["http.response.trailers"]["leak"] = True
        await _respond(send, 200, json.dumps(seen).encode(), b"application/json")
    elif path == "/echo":
        body, chunks = await _body(receive)
        await _respond(send, 200, body, headers=[(b"x-chunks", str(chunks).encode())])
    elif path == "/stream":
        n = int(query.get("n", ["16"])[0])
        size = int(query.get("size", ["1024"])[0])
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/octet-stream")]})
        for i in range(n):
            await send({"type": "http.response.body", "body": bytes([65 + i % 26]) * size,
                        "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/slow-reader":
        # Reads the upload slowly: the server must pause the client, not buffer it all.
        total = 0
        while True:
            message = await receive()
            total += len(message["body"])
            await asyncio.sleep(0.001)
            if not message.get("more_body"):
                break
        await _respond(send, 200, str(total).encode())
    elif path == "/wait-disconnect":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"waiting", "more_body": True})
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                DISCONNECTS.append(path)
                return
    elif path == "/upload-then-disconnect":
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                DISCONNECTS.append(path)
                return
    elif path == "/disconnects":
        await _respond(send, 200, json.dumps(DISCONNECTS).encode(), b"application/json")
    elif path == "/trailers":
        await send({"type": "http.response.start", "status": 200, "trailers": True,
                    "headers": [(b"content-type", b"text/plain"), (b"trailer", b"x-checksum")]})
        await send({"type": "http.response.body", "body": b"part1,", "more_body": True})
        await send({"type": "http.response.body", "body": b"part2", "more_body": False})
        # ?bad=1: fields that belong in the head too (framing, connection, cookies).
        bad = [(b"content-length", b"5"), (b"transfer-encoding", b"chunked"),
               (b"connection", b"close"), (b"set-cookie", b"a=b")] if "bad" in query else []
        await send({"type": "http.response.trailers",
                    "headers": bad + [(b"x-checksum", b"abc123")], "more_trailers": False})
    elif path == "/pathsend":
        target = query["file"][0]
        size = os.path.getsize(target)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(size).encode()),
                                (b"content-type", b"application/octet-stream")]})
        await send({"type": "http.response.pathsend", "path": target})
    elif path == "/early-hint":
        await send({"type": "http.response.early_hint",
                    "links": [b"</style.css>; rel=preload; as=style"]})
        await _respond(send, 200, b"hinted")
    elif path == "/error-before":
        raise RuntimeError("boom before start")
    elif path == "/error-after":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise RuntimeError("boom after start")
    elif path == "/no-response":
        return
    elif path == "/sleep":
        await asyncio.sleep(float(query.get("s", ["1"])[0]))
        await _respond(send, 200, b"slept")
    elif path == "/send-after-end":
        await _respond(send, 200, b"done")
        try:
            await send({"type": "http.response.body", "body": b"more"})
        except Exception as exc:
            SEND_ERRORS.append([type(exc).__name__, isinstance(exc, OSError)])
    elif path == "/send-errors":
        await _respond(send, 200, json.dumps(SEND_ERRORS).encode(), b"application/json")
    elif path == "/events":
        await _respond(send, 200, json.dumps(EVENTS).encode(), b"application/json")
    elif path == "/bad-header":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"x-ok", b"1"), (b"x-evil", b"a\r\nset-cookie: x=1"),
                                (b"x-padded", b" \tpadded value\t ")]})
        await send({"type": "http.response.body", "body": b"ok"})
    elif path == "/pid":
        await _respond(send, 200, str(os.getpid()).encode())
    elif path == "/crash":
        os._exit(3)
    elif path == "/thread":
        import threading
        await _respond(send, 200, str(threading.get_ident()).encode())
    elif path == "/task":
        task = asyncio.current_task()
        info = {"is_task": isinstance(task, asyncio.Task), "name": task.get_name(),
                "registered": task in asyncio.all_tasks()}
        await _respond(send, 200, json.dumps(info).encode(), b"application/json")
    elif path == "/hold":
        # Starts a response, then keeps the request running for ?s= seconds.
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"holding", "more_body": True})
        try:
            await asyncio.sleep(float(query.get("s", ["60"])[0]))
        except asyncio.CancelledError:
            if os.environ.get("PROBE_WORKER_FILE"):
                with open(os.environ["PROBE_WORKER_FILE"], "a") as f:
                    f.write("cancelled:/hold\n")
            raise
        await send({"type": "http.response.body", "body": b"done"})
    elif path == "/loop":
        # Which event loop and thread serve this request.
        import threading
        info = {"loop": id(asyncio.get_running_loop()), "thread": threading.get_ident()}
        await _respond(send, 200, json.dumps(info).encode(), b"application/json")
    elif path == "/state-mutate":
        # Adds a key to this request's state and an item to the lifespan's shared list.
        state = scope["state"]
        seen = sorted(state)
        state[f"added-{query['n'][0]}"] = True
        state["shared"].append(query["n"][0])
        info = {"keys": seen, "shared_id": id(state["shared"]), "shared": state["shared"]}
        await _respond(send, 200, json.dumps(info).encode(), b"application/json")
    elif path == "/stream-until-gone":
        # Streams until send() raises because the client left (at most ~30 s).
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            for _ in range(3000):
                await send({"type": "http.response.body", "body": b"g" * 65536,
                            "more_body": True})
                await asyncio.sleep(0.01)
        except BaseException as exc:
            GONE_ERRORS.append([type(exc).__name__, isinstance(exc, OSError)])
            raise
        GONE_ERRORS.append(["no error", False])
    elif path == "/gone-errors":
        await _respond(send, 200, json.dumps(GONE_ERRORS).encode(), b"application/json")
    elif path == "/sleep-cancellable":
        try:
            await asyncio.sleep(float(query.get("s", ["5"])[0]))
        except asyncio.CancelledError:
            CANCELLED.append(path)
            raise
        await _respond(send, 200, b"slept")
    elif path == "/bad-send":
        # send() with a message that is not a dict, then one without 'type': both raise;
        # the errors are answered with a 200 naming them.
        errors = []
        for message in ([("type", "http.response.start")], {"status": 200}):
            try:
                await send(message)
            except (TypeError, ValueError) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
        await _respond(send, 200, json.dumps(errors).encode(), b"application/json")
    elif path == "/cancelled":
        await _respond(send, 200, json.dumps(CANCELLED).encode(), b"application/json")
    elif path == "/read-when-released":
        # Does not call receive() until the file named by ?flag= exists (at most 20 s),
        # then reads the whole body and answers its length.
        deadline = asyncio.get_running_loop().time() + 20
        while not os.path.exists(query["flag"][0]):
            if asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.01)
        body, _ = await _body(receive)
        await _respond(send, 200, str(len(body)).encode())
    elif path == "/status":
        await _respond(send, int(query["code"][0]), b"")
    elif path == "/declared":
        # Declares Content-Length `cl` and sends `body` in two messages, whatever its length.
        body = query["body"][0].encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", query["cl"][0].encode())]})
        await send({"type": "http.response.body", "body": body[:1], "more_body": True})
        await send({"type": "http.response.body", "body": body[1:]})
    else:
        await _respond(send, 404, b"not found")
