"""Two versions of an app for the admin API's app-swap test. Each appends its lifespan and
request events to the file named by $VERSIONS_LOG ("<name> <event>" lines), so the test can
check their order: the new app starts before traffic moves, the old one shuts down after its
last request."""

import asyncio
import os
import time


def _log(line):
    with open(os.environ["VERSIONS_LOG"], "a") as f:
        f.write(f"{time.monotonic():.6f} {line}\n")


def _make(name):
    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    _log(f"{name} startup")
                    await send({"type": "lifespan.startup.complete"})
                else:
                    _log(f"{name} shutdown")
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        seconds = 0.0
        if scope["path"] == "/slow":
            seconds = 1.5
        if seconds:
            await asyncio.sleep(seconds)
        body = name.encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": body})
        if seconds:
            _log(f"{name} request done")

    return app


one = _make("one")
two = _make("two")
