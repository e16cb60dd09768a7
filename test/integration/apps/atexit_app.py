"""Records its lifespan shutdown and its atexit function, in order, in $ATEXIT_FILE."""

import atexit
import os

PATH = os.environ["ATEXIT_FILE"]


def _write(line):
    with open(PATH, "a") as f:
        f.write(f"{os.getpid()} {line}\n")


def _raises():
    raise RuntimeError("an atexit function that fails")


atexit.register(_write, "atexit")
atexit.register(_raises)  # runs first (last registered); the next one still runs


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                _write("lifespan.shutdown")
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})
