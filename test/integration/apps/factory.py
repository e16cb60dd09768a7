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
