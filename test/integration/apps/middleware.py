"""ASGI middleware used by the middleware-order test: each adds itself to x-order."""


class _Tag:
    name = b""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def tagged_send(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-order", self.name))
                message = dict(message, headers=headers)
            await send(message)

        await self.app(scope, receive, tagged_send)


class First(_Tag):
    name = b"first"


class Second(_Tag):
    name = b"second"
