"""The filters' benchmarks: static files and health against nginx, the whole filter chain
against the bare ASGI chain, and gzip throughput against nginx's gzip.

Run with `tools/bench/bench --suite filters`; `run` gets the bench module for its helpers.
"""

import json

STATIC_BYTES = 5 * 1024


def _static_tree(tmp):
    tmp.chmod(0o755)  # nginx's worker runs as nobody
    root = tmp / "static-root"
    root.mkdir(exist_ok=True)
    (root / "file.txt").write_bytes(bytes(range(32, 127)) * (STATIC_BYTES // 95) +
                                    b"x" * (STATIC_BYTES % 95))
    # An API-like JSON document (~32 KB) for compression.
    items = [{"id": i, "name": f"item-{i}", "price": i * 1.25, "tags": ["a", "b", "c"],
              "active": i % 2 == 0, "description": "a reasonably ordinary description"}
             for i in range(256)]
    (root / "data.json").write_text(json.dumps({"items": items, "count": len(items)}))
    return root


def _chain(*filters):
    return "".join(filters)


def _filter(name, type_name=None, body=""):
    out = f"  - name: pounce.filters.{name}\n"
    if type_name:
        out += f'    typed_config:\n      "@type": type.googleapis.com/pounce.filters.{name}.v1.{type_name}\n'
        out += "".join(f"      {line}\n" for line in body.strip().splitlines())
    return out


def _pounce(bench, tmp, duration, results, label, path, chain, headers=()):
    port = bench.free_port()
    cfg = bench.pounce_config(tmp, chain, port=port)
    return bench.measure(label, lambda: bench.server([str(bench.POUNCE), "-c", str(cfg)], port),
                         lambda w: bench.wrk(f"http://127.0.0.1:{port}{path}", w or duration,
                                             headers=headers), results)


def _nginx(bench, tmp, duration, results, label, path, body="ok", headers=(), **conf):
    port = bench.free_port()
    c = bench.nginx_conf(tmp, port, body, **conf)
    return bench.measure(label, lambda: bench.server(["nginx", "-c", str(c)], port),
                         lambda w: bench.wrk(f"http://127.0.0.1:{port}{path}", w or duration,
                                             headers=headers), results)


def run(bench, tmp, duration, results):
    root = _static_tree(tmp)
    common = (bench, tmp, duration, results)

    print("filters: static 5 KB file (pounce static_files vs nginx root)")
    # static_files passes misses on; a direct_response answers them (404), like nginx does.
    miss = _filter("direct_response", "DirectResponse", "status: 404")
    static = _filter("static_files", "StaticFiles", f"mounts: [{{prefix: /, directory: {root}}}]") + miss
    a = _pounce(*common, "pounce static 5KB", "/file.txt", static)
    b = _nginx(*common, "nginx static 5KB", "/file.txt", static_root=root)
    bench.ratio("pounce / nginx (static 5KB)", a, b, results)

    print("filters: health endpoint (pounce health vs nginx return 200)")
    health = _filter("health", "Health", "path: /healthz") + bench.DIRECT_CHAIN
    a = _pounce(*common, "pounce health", "/healthz", health)
    b = _nginx(*common, "nginx return 200", "/healthz", body="ok")
    bench.ratio("pounce / nginx (health)", a, b, results)

    print("filters: every filter configured in front of the app vs the bare ASGI chain")
    full = _chain(
        _filter("server_timing"),
        _filter("access_log", "AccessLog", "format: text"),
        _filter("health", "Health", "path: /livez\nready_path: /readyz"),
        _filter("proxy_headers", "ProxyHeaders", 'trusted_hosts: ["127.0.0.1"]'),
        _filter("request_id"),
        _filter("metrics", "Metrics", "path: /metrics"),
        _filter("rate_limit", "RateLimit", "requests_per_second: 100000000\nburst: 100000000"),
        _filter("request_queue", "RequestQueue", "max_concurrent: 1024\nmax_queued: 1024\nmax_wait: 5s"),
        _filter("compression", "Compression", "min_bytes: 256"),
        _filter("static_files", "StaticFiles", f"mounts: [{{prefix: /static, directory: {root}}}]"),
        bench.ASGI_CHAIN)
    a = _pounce(*common, "pounce bare ASGI chain (hello)", "/", bench.ASGI_CHAIN)
    b = _pounce(*common, "pounce full chain (hello)", "/", full)
    overhead = (a["rps"] / b["rps"] - 1) * 100 if b["rps"] else 0
    print(f"  => full chain overhead: {overhead:.1f}% fewer requests/s", flush=True)
    results.append(("full chain overhead %", {"ratio": overhead}))

    print("filters: gzip level 6 of a 32 KB JSON file (pounce compression vs nginx gzip)")
    size = (root / "data.json").stat().st_size
    gzip = ("Accept-Encoding: gzip",)
    gz = _chain(_filter("compression", "Compression", "encodings: [gzip]\ngzip_level: 6"),
                _filter("static_files", "StaticFiles",
                        f"mounts: [{{prefix: /, directory: {root}}}]\nprecompressed: false"),
                miss)
    a = _pounce(*common, "pounce gzip 32KB JSON", "/data.json", gz, headers=gzip)
    b = _nginx(*common, "nginx gzip 32KB JSON", "/data.json", headers=gzip, static_root=root,
               gzip=True, extra="gzip_comp_level 6;")
    for name, r in (("pounce", a), ("nginx", b)):
        print(f"  {name} compresses {r['rps'] * size / 1e6:.1f} MB/s of JSON", flush=True)
    bench.ratio("pounce / nginx (gzip MB/s)", a, b, results)
