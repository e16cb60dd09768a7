"""WebSocket echo: messages/s of the same ASGI echo app on pounce and on uvicorn with the
`websockets` library (uvloop + httptools for HTTP), the server pinned to BENCH_SERVER_CPUS
and the load client (tools/bench/ws_load.py) to BENCH_CLIENT_CPUS.

  tools/bench/bench --suite websocket --duration 5

Loaded by tools/bench/bench, which calls run(bench, tmp, duration, results).
"""

import json
import subprocess

ECHO_APP = '''
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "websocket":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})
'''

# (label, ws_load.py arguments): small text messages, many in flight on a few connections;
# then 4 KiB binary messages.
WORKLOADS = [
    ("echo 32B text", ["--connections", "4", "--window", "256", "--size", "32"]),
    ("echo 4KiB binary", ["--connections", "4", "--window", "32", "--size", "4096", "--binary"]),
]


def run(bench, tmp, duration, results):
    print("websocket: echo messages/s, pounce vs uvicorn + websockets (same app)")
    (tmp / "ws_echo.py").write_text(ECHO_APP)
    client = bench.ROOT / "tools/bench/ws_load.py"
    chain = f"""  - name: pounce.filters.asgi
    typed_config:
      "@type": type.googleapis.com/pounce.filters.asgi.v1.Asgi
      app: ws_echo:app
      app_dir: [{tmp}]
"""

    def load(port, args):
        def go(warmup):
            seconds = warmup or duration
            out = subprocess.run(
                ["taskset", "-c", bench.CLIENT_CPU, bench.PY, str(client), "--port", str(port),
                 "--duration", str(seconds), *args],
                capture_output=True, text=True, timeout=seconds + 60)
            r = json.loads(out.stdout) if out.stdout.strip() else {"rate": 0, "errors": -1}
            return {"rps": r["rate"], "p50": "-", "p99": "-", "errors": r["errors"],
                    "socket_errors": out.stderr.strip()[-200:] if out.returncode else ""}
        return go

    for label, args in WORKLOADS:
        port = bench.free_port()
        cfg = bench.pounce_config(tmp, chain, port=port)
        p = bench.measure(f"pounce ws {label}",
                          lambda: bench.server([str(bench.POUNCE), "-c", str(cfg)], port),
                          load(port, args), results)
        port2 = bench.free_port()
        u = bench.measure(f"uvicorn+websockets ws {label}", lambda: bench.server(
            [bench.PY, "-m", "uvicorn", "ws_echo:app", "--port", str(port2), "--loop", "uvloop",
             "--http", "httptools", "--ws", "websockets", "--no-access-log", "--log-level",
             "warning"], port2, cwd=str(tmp)), load(port2, args), results)
        bench.ratio(f"pounce / uvicorn+websockets (ws {label})", p, u, results)
