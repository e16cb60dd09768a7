"""Apps that send ASGI messages out of order or with bad values; what send() raised is kept
in ERRORS and served by GET /errors."""

import json

ERRORS = []


def _start(trailers=False, headers=()):
    return {"type": "http.response.start", "status": 200, "trailers": trailers,
            "headers": list(headers)}


def _body(data, more=False):
    return {"type": "http.response.body", "body": data, "more_body": more}


def _trailers(more=False):
    return {"type": "http.response.trailers", "headers": [(b"x-t", b"1")],
            "more_trailers": more}


async def _try(send, message):
    try:
        await send(message)
    except RuntimeError as e:
        ERRORS.append(str(e))


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/errors":
        await send(_start())
        await send(_body(json.dumps(ERRORS).encode()))
    elif path == "/body_after_trailers":
        await send(_start(trailers=True))
        await send(_body(b"early"))
        await send(_trailers(more=True))
        await _try(send, _body(b"late"))
        await send(_trailers())
    elif path == "/trailers_early":
        # gRPC-over-ASGI: streamed messages, then the status in trailers.
        await send(_start(trailers=True))
        await send(_body(b"a", more=True))
        await _try(send, _trailers())
    elif path == "/only_trailers":
        await send(_start(trailers=True))
        await _try(send, _trailers())
    elif path == "/body_after_last":
        await send(_start(trailers=True))
        await send(_body(b"all"))
        await _try(send, _body(b"more"))
        await send(_trailers())
    elif path == "/hint_bad":
        await send({"type": "http.response.early_hint", "links": [b"</a>\r\nx-evil: 1"]})
        await send(_start())
        await send(_body(b"ok"))
    elif path == "/bad_name":
        await send(_start(headers=[(b"x\r\n2026-01-01T00:00:00.000Z [error] FAKE LOG LINE", b"v")]))
        await send(_body(b"ok"))
