"""HTTP/2 suite for tools/bench (--suite h2): h2load -c16 -m32 over cleartext HTTP/2 (h2c
prior knowledge) and over TLS (ALPN h2, the example localhost certificate), the server pinned
to one core and h2load to another.

- pounce direct_response vs nginx `return 200` (the same small body), and a 5 KB body vs
  nginx serving the same 5 KB as a static file, over h2c and over TLS;
- an ASGI hello app on pounce vs hypercorn (the only local ASGI peer with HTTP/2).
"""


import os
import pathlib
import shutil
import tempfile


def run(bench, tmp, duration, results):
    cleanup = []
    try:
        _run(bench, tmp, duration, results, cleanup)
    finally:
        for d in cleanup:
            shutil.rmtree(d, ignore_errors=True)


def _run(bench, tmp, duration, results, cleanup):
    certs = bench.ROOT / "examples/tls"
    cert, key = certs / "localhost.pem", certs / "localhost.key"
    pounce_tls = (f"  tls:\n    certificates:\n    - certificate_chain_file: {cert}\n"
                  f"      private_key_file: {key}\n")
    for proto, scheme in (("h2c", "http"), ("h2 TLS", "https")):
        if proto == "h2c":
            print("h2: HTTP/2 cleartext (h2load -c16 -m32)")
        else:
            print("h2: HTTP/2 over TLS 1.3 (h2load -c16 -m32, ALPN h2)")
        _direct(bench, tmp, duration, results, cleanup, proto, scheme,
                pounce_tls if scheme == "https" else "",
                (cert, key) if scheme == "https" else None)
    _asgi(bench, tmp, duration, results)


def _direct(bench, tmp, duration, results, cleanup, proto, scheme, pounce_tls, nginx_tls):
    for label, body in (("hello", "Hello, world!"), ("5KB", "x" * 5120)):
        port = bench.free_port()
        chain = bench.DIRECT_CHAIN.replace('"Hello, world!"', f'"{body}"')
        cfg = bench.pounce_config(tmp, chain, port=port, listener_extra=pounce_tls)
        a = bench.measure(f"pounce {proto} direct_response {label}",
                          lambda: bench.server([str(bench.POUNCE), "-c", str(cfg)], port),
                          lambda w: bench.h2load(f"{scheme}://127.0.0.1:{port}/", w or duration),
                          results)
        port2 = bench.free_port()
        if len(body) < 4000:
            conf = bench.nginx_conf(tmp, port2, body, h2=True, tls=nginx_tls)
            what = "return 200"
        else:
            # nginx caps a config string at 4 KB: serve the same bytes as a file instead, from
            # a directory its worker (user nobody) can read.
            root = pathlib.Path(tempfile.mkdtemp(prefix="pounce-bench-h2-"))
            cleanup.append(root)
            os.chmod(root, 0o755)
            (root / "index.html").write_text(body)
            os.chmod(root / "index.html", 0o644)
            conf = bench.nginx_conf(tmp, port2, body, h2=True, static_root=root, tls=nginx_tls)
            what = "static file"
        b = bench.measure(f"nginx {proto} {what} {label}",
                          lambda: bench.server(["nginx", "-c", str(conf)], port2),
                          lambda w: bench.h2load(f"{scheme}://127.0.0.1:{port2}/", w or duration),
                          results)
        bench.ratio(f"pounce / nginx ({proto} {label})", a, b, results)


def _asgi(bench, tmp, duration, results):
    apps = str(bench.ROOT / "tools/bench")
    port = bench.free_port()
    cfg = bench.pounce_config(tmp, bench.ASGI_CHAIN, port=port)
    p = bench.measure("pounce h2c asgi hello",
                      lambda: bench.server([str(bench.POUNCE), "-c", str(cfg)], port),
                      lambda w: bench.h2load(f"http://127.0.0.1:{port}/", w or duration), results)
    port2 = bench.free_port()
    h = bench.measure("hypercorn h2c asgi hello", lambda: bench.server(
        [bench.PY, "-m", "hypercorn", "apps:app", "--bind", f"127.0.0.1:{port2}", "--log-level",
         "warning"], port2, cwd=apps),
        lambda w: bench.h2load(f"http://127.0.0.1:{port2}/", w or duration), results)
    bench.ratio("pounce / hypercorn (h2c asgi hello)", p, h, results)
