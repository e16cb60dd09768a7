"""An app built by a factory function ("module:factory()")."""

CALLS = []


def create_app():
    CALLS.append("created")

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": f"factory:{len(CALLS)}".encode()})

    return app


def broken_factory():
    raise ValueError("the factory failed on purpose")


# Apps that are async callables without being coroutine functions: what they return is an
# awaitable that is not a coroutine.
class _Awaitable:
    def __init__(self, coro):
        self.coro = coro

    def __await__(self):
        return self.coro.__await__()


async def _answer(scope, send, text):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": text})


def awaitable_app(scope, receive, send):
    return _Awaitable(_answer(scope, send, b"awaited"))


def future_app(scope, receive, send):
    import asyncio
    return asyncio.ensure_future(_answer(scope, send, b"from a task"))
