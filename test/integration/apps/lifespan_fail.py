"""Apps whose lifespan startup fails, or that do not support lifespan at all."""


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "database is unreachable"})
        return


async def no_lifespan(scope, receive, send):
    if scope["type"] != "http":
        raise RuntimeError(f"only http, not {scope['type']}")
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"no lifespan here"})


class Asgi2:
    """An ASGI 2 (double-callable) app."""

    def __init__(self, scope):
        self.scope = scope

    async def __call__(self, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"asgi2"})
