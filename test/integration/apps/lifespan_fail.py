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


async def returns_from_lifespan(scope, receive, send):
    """Returns from the lifespan scope without answering it (Starlette-less apps often do)."""
    if scope["type"] == "lifespan":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"served"})


class Asgi2:
    """An ASGI 2 (double-callable) app."""

    def __init__(self, scope):
        self.scope = scope

    async def __call__(self, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"asgi2"})


async def slow_startup(scope, receive, send):
    """Startup that outlasts any startup_timeout; records that it was cancelled, and any
    shutdown it is (wrongly) sent, in the file named by POUNCE_TEST_MARKER."""
    import asyncio
    import os
    marker = os.environ["POUNCE_TEST_MARKER"]
    if scope["type"] == "lifespan":
        await receive()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            with open(marker, "a") as f:
                f.write("startup cancelled\n")
            raise
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        with open(marker, "a") as f:
            f.write(message["type"] + "\n")
        await send({"type": "lifespan.shutdown.complete"})
    elif scope["type"].startswith("pounce.worker.shutdown"):
        with open(marker, "a") as f:
            f.write("worker shutdown\n")
