"""The filters' benchmarks: static files and health against nginx, the whole filter chain
against the bare ASGI chain, and gzip throughput against nginx's gzip.

Run with `tools/bench/bench --suite filters`; `run` gets the bench module for its helpers.
"""

import json
import random
import time

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
    # data.json repeats itself (18:1 under gzip); an API answer with varied values
    # (~60 KB, about 4:1) is closer to what apps send. Fixed seed: the same bytes every run.
    rng = random.Random(1)
    words = ["red", "green", "blue", "large", "small", "sale", "new"]
    varied = [{"id": rng.randint(1, 10**9),
               "name": "".join(rng.choice("abcdefghijklmnopqrstuvwxyz ") for _ in range(rng.randint(5, 30))),
               "price": round(rng.random() * 1000, 2), "tags": [rng.choice(words) for _ in range(3)],
               "active": rng.random() < 0.5,
               "created": f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00Z"}
              for _ in range(400)]
    (root / "api.json").write_text(json.dumps({"items": varied}))
    return root


def _chain(*filters):
    return "".join(filters)


def _filter(name, type_name=None, body=""):
    out = f"  - name: pounce.filters.{name}\n"
    if type_name:
        out += f'    typed_config:\n      "@type": type.googleapis.com/pounce.filters.{name}.v1.{type_name}\n'
        out += "".join(f"      {line}\n" for line in body.strip().splitlines())
    return out


def run(bench, tmp, duration, results):
    root = _static_tree(tmp)

    # Files changed in the last 2 s are read again on every request by pounce's file cache;
    # a site's files are older than that.
    time.sleep(2.1)

    # static_files passes misses on; a direct_response answers them (404), like nginx does.
    # Both as configured by default (pounce keeps small files' bytes and checks each with a
    # stat per request; nginx opens, stats, reads and closes), and pounce with its cache off
    # (the same system calls as nginx).
    miss = _filter("direct_response", "DirectResponse", "status: 404")
    static = _filter("static_files", "StaticFiles", f"mounts: [{{prefix: /, directory: {root}}}]") + miss
    uncached = _filter("static_files", "StaticFiles",
                       f"mounts: [{{prefix: /, directory: {root}}}]\nfile_cache: {{enabled: false}}") + miss
    out = bench.compare("filters: static 5 KB file (pounce static_files vs nginx root)",
                        [bench.pounce_side("pounce static 5KB", tmp, static, "/file.txt"),
                         bench.pounce_side("pounce static 5KB no cache", tmp, uncached, "/file.txt"),
                         bench.nginx_side("nginx static 5KB", tmp, "/file.txt", static_root=root)],
                        results, duration)
    bench.compared_ratio("pounce / nginx (static 5KB)", out, "pounce static 5KB", "nginx static 5KB",
                         results)
    bench.compared_ratio("pounce / nginx (static 5KB, pounce's cache off)", out,
                         "pounce static 5KB no cache", "nginx static 5KB", results)

    # Both caches trusting entries for 1 s: nginx keeps descriptors and metadata, pounce also
    # the bytes of small files (a hit costs no system call but the socket's).
    cached = _filter("static_files", "StaticFiles",
                     f"mounts: [{{prefix: /, directory: {root}}}]\nfile_cache: {{validity: 1s}}") + miss
    out = bench.compare("filters: static 5 KB file, open-file caches on (pounce file_cache vs nginx "
                        "open_file_cache)",
                        [bench.pounce_side("pounce static 5KB cached", tmp, cached, "/file.txt"),
                         bench.nginx_side("nginx static 5KB cached", tmp, "/file.txt",
                                          static_root=root,
                                          extra="open_file_cache max=1000 inactive=20s; "
                                                "open_file_cache_valid 1s;")],
                        results, duration)
    bench.compared_ratio("pounce / nginx (static 5KB, caches on)", out, "pounce static 5KB cached",
                         "nginx static 5KB cached", results)

    health = _filter("health", "Health", "path: /healthz") + bench.DIRECT_CHAIN
    out = bench.compare("filters: health endpoint (pounce health vs nginx return 200)",
                        [bench.pounce_side("pounce health", tmp, health, "/healthz"),
                         bench.nginx_side("nginx return 200", tmp, "/healthz", body="ok")],
                        results, duration)
    bench.compared_ratio("pounce / nginx (health)", out, "pounce health", "nginx return 200", results)
    # One wrk core cannot keep either server busy with one request per write (health is
    # client-bound here); with 16 requests per write the servers set the pace.
    pipeline = str(bench.ROOT / "tools/bench/pipeline16.lua")
    out = bench.compare("filters: health endpoint, 16 requests pipelined per write",
                        [bench.pounce_side("pounce health pipelined", tmp, health, "/healthz",
                                           script=pipeline),
                         bench.nginx_side("nginx return 200 pipelined", tmp, "/healthz", body="ok",
                                          script=pipeline)],
                        results, duration)
    bench.compared_ratio("pounce / nginx (health, pipelined)", out, "pounce health pipelined",
                         "nginx return 200 pipelined", results)

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
    bare, full_name = "pounce bare ASGI chain (hello)", "pounce full chain (hello)"
    out = bench.compare("filters: every filter configured in front of the app vs the bare ASGI chain",
                        [bench.pounce_side(bare, tmp, bench.ASGI_CHAIN),
                         bench.pounce_side(full_name, tmp, full)], results, duration)
    ratio = bench.compared_ratio("bare / full chain", out, bare, full_name, results)
    overhead = (1 - 1 / ratio) * 100 if ratio else 0 # bare/full = 1.25 is 20% fewer req/s
    cpu = out[bare]["cpu_us_per_req"]
    cpu_overhead = (out[full_name]["cpu_us_per_req"] / cpu - 1) * 100 if cpu else 0
    print(f"  => full chain overhead: {overhead:.1f}% fewer requests/s, {cpu_overhead:.1f}% more "
          "CPU per request", flush=True)
    results.append(("full chain overhead %", {"ratio": overhead, "cpu": cpu_overhead}))

    gzip = ("Accept-Encoding: gzip",)
    # Level 6 on both, and level 1: nginx's gzip_comp_level default, what `gzip on` alone gives.
    for level in (6, 1):
        gz = _chain(_filter("compression", "Compression", f"encodings: [gzip]\ngzip_level: {level}"),
                    _filter("static_files", "StaticFiles",
                            f"mounts: [{{prefix: /, directory: {root}}}]\nprecompressed: false"),
                    miss)
        for file, label in (("data.json", "32KB JSON"), ("api.json", "60KB varied JSON")):
            size = (root / file).stat().st_size
            mine, theirs = f"pounce gzip-{level} {label}", f"nginx gzip-{level} {label}"
            out = bench.compare(f"filters: gzip level {level} of a {label} file (pounce compression vs nginx gzip)",
                                [bench.pounce_side(mine, tmp, gz, f"/{file}", headers=gzip),
                                 bench.nginx_side(theirs, tmp, f"/{file}", headers=gzip,
                                                  static_root=root, gzip=True,
                                                  extra=f"gzip_comp_level {level};")],
                                results, duration)
            for name in (mine, theirs):
                print(f"  {name.split()[0]} compresses {out[name]['rps'] * size / 1e6:.1f} MB/s of JSON",
                      flush=True)
            bench.compared_ratio(f"pounce / nginx (gzip-{level} MB/s, {label})", out, mine, theirs,
                                 results)
