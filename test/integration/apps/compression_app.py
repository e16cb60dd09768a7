"""Responses for the compression filter's tests: server-sent events that wait for the
client between events, and bodies of declared length sent in pieces."""

import asyncio
import json
import urllib.parse

# Set by GET /next: lets /events send its next event.
NEXT = asyncio.Event()


def document(n=2000):
    """A deterministic JSON document of n items (the tests rebuild it to compare)."""
    items = [{"id": i, "name": f"item {i}", "tags": ["a", "b", str(i % 7)]} for i in range(n)]
    return json.dumps(items).encode()


async def app(scope, receive, send):
    if scope["type"] != "http":
        return  # no lifespan: served anyway (lifespan: auto)
    path = scope["path"]
    query = urllib.parse.parse_qs(scope["query_string"].decode())
    if path == "/events":
        # Each event waits for GET /next: a test sees it arrive before the next is sent.
        count = int(query.get("n", ["3"])[0])
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        for i in range(count):
            await send({"type": "http.response.body", "body": f"data: event {i}\n\n".encode(),
                        "more_body": True})
            await NEXT.wait()
            NEXT.clear()
        await send({"type": "http.response.body", "body": b""})
    elif path == "/next":
        NEXT.set()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})
    elif path == "/pieces":
        # A body of declared length in `parts` http.response.body messages.
        body = document(int(query.get("items", ["2000"])[0]))
        parts = int(query.get("parts", ["4"])[0])
        step = -(-len(body) // parts)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        for start in range(0, len(body), step):
            await send({"type": "http.response.body", "body": body[start:start + step],
                        "more_body": start + step < len(body)})
    else:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
