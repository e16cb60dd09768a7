"""Takes $SLOW_IMPORT_SECONDS to import (a large app, or one that connects at import)."""

import os
import time

time.sleep(float(os.environ.get("SLOW_IMPORT_SECONDS", "2")))


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"slow"})
