"""The ASGI filter end to end: scope, events, extensions, lifespan, errors, middleware."""

import json
import os
import signal
import socket
import struct
import time

import httpx
import pytest

from conftest import ROOT, RawConnection, recv_to_close, recv_until, run_pounce, wait_for

APPS = ROOT / "test/integration/apps"


def asgi_config(app="probe:app", extra="", http="{}", chain_before="", listener_extra=""):
    return f"""
concurrency: 1
listeners:
- name: main
  address: {{socket_address: {{address: 127.0.0.1, port_value: @PORT@}}}}
  http: {http}
  {listener_extra}
  filter_chain:{chain_before}
  - name: pounce.filters.asgi
    typed_config:
      "@type": type.googleapis.com/pounce.filters.asgi.v1.Asgi
      app: "{app}"
      app_dir: [{APPS}]
{extra}
"""


@pytest.fixture
def probe(pounce):
    return pounce(asgi_config())


def get(server, path, **kw):
    return httpx.get(server.url(path), timeout=10, **kw)


def test_scope_has_every_key(probe):
    r = get(probe, "/scope/%E2%9C%93%20x?a=1&b=%20", headers={"X-Dup": "1", "x-dup": "2"})
    assert r.status_code == 200
    s = r.json()
    assert s["type"] == "http"
    assert s["asgi"] == {"version": "3.0", "spec_version": "2.5"}
    assert s["http_version"] == "1.1"
    assert s["method"] == "GET"
    assert s["scheme"] == "http"
    assert s["path"] == "/scope/\u2713 x"
    assert s["raw_path"] == "/scope/%E2%9C%93%20x"
    assert s["query_string"] == "a=1&b=%20"
    assert s["root_path"] == ""
    names = [h[0] for h in s["headers"]]
    assert names == [n.lower() for n in names]
    assert [v for n, v in s["headers"] if n == "x-dup"] == ["1", "2"]
    assert s["client"][0] == "127.0.0.1" and isinstance(s["client"][1], int)
    assert s["server"] == ["127.0.0.1", probe.port]
    assert s["state"] == {"started": True, "greeting": "hello from lifespan"}
    ext = s["extensions"]
    for name in ("http.response.trailers", "http.response.pathsend", "http.response.early_hint"):
        assert ext[name] == {}


def test_root_path_is_prefixed(pounce):
    s = pounce(asgi_config(extra="      root_path: /api"))
    scope = get(s, "/scope").json()
    assert scope["root_path"] == "/api"
    assert scope["path"] == "/api/scope"
    # A path that already holds root_path as whole segments keeps it; "/apiary" is not
    # "/api" (Django takes path[len(root_path):]).
    # raw_path names the same target (as uvicorn's does).
    assert get(s, "/api/where").json() == {"path": "/api/where", "root_path": "/api",
                                           "raw_path": "/api/where"}
    assert get(s, "/apiary/wh%65re").json() == {"path": "/api/apiary/where", "root_path": "/api",
                                                "raw_path": "/api/apiary/wh%65re"}


def test_root_path_in_path_false_gives_the_path_as_received(pounce):
    # For frameworks written before the spec's clarification (Debian 12's Starlette 0.26).
    s = pounce(asgi_config(extra="      root_path: /api\n      root_path_in_path: false"))
    assert get(s, "/where").json() == {"path": "/where", "root_path": "/api", "raw_path": "/where"}


STARLETTE_ROUTES = '''
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

async def items(request):
    return JSONResponse({"url": str(request.url), "url_for": str(request.url_for("items"))})

app = Starlette(routes=[Route("/items", items, name="items")])
'''


@pytest.mark.parametrize("in_path", ["true", "false"])
def test_starlette_routes_below_a_root_path(pounce, tmp_path, in_path):
    import starlette
    (tmp_path / "routes_app.py").write_text(STARLETTE_ROUTES)
    old = tuple(int(p) for p in starlette.__version__.split(".")[:2]) < (0, 35)
    s = pounce(asgi_config(app="routes_app:app",
                           extra=f"      root_path: /api\n      root_path_in_path: {in_path}")
               .replace(f"app_dir: [{APPS}]", f"app_dir: [{tmp_path}]"))
    r = get(s, "/items")
    if old and in_path == "true":
        assert r.status_code == 404  # why the switch exists: old Starlette matches no route
        return
    assert r.status_code == 200, r.text
    base = f"http://127.0.0.1:{s.port}"
    assert r.json() == {"url": f"{base}/api/items", "url_for": f"{base}/api/items"}


def test_a_receive_cancelled_by_a_timeout_loses_nothing(probe):
    """asyncio.wait_for(receive(), t) timing out cancels that call only: later calls get
    every chunk (Starlette's request.is_disconnected() then request.body() does this)."""
    c = RawConnection(probe.connect())
    c.send(b"POST /receive-after-timeout HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
    time.sleep(0.5)
    c.send(b"hello")
    time.sleep(0.1)
    c.send(b"world")
    status, _, body = c.response()
    assert status == 200
    assert json.loads(body) == {"timed_out": True, "body": "helloworld"}
    c.close()


def test_two_waiting_receives_get_one_chunk_each(probe):
    c = RawConnection(probe.connect())
    c.send(b"POST /two-receivers HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    time.sleep(0.2)
    c.send(b"3\r\none\r\n")
    time.sleep(0.2)
    c.send(b"3\r\ntwo\r\n0\r\n\r\n")
    status, _, body = c.response()
    assert status == 200
    one, two, more = json.loads(body)
    assert (one, two) == ("one", "two")
    c.close()


def test_an_app_may_return_any_awaitable(pounce):
    """The app is an async callable: what it returns is awaited, coroutine or not."""
    s = pounce(asgi_config(app="factory:awaitable_app"))
    assert get(s, "/").text == "awaited"
    s2 = pounce(asgi_config(app="factory:future_app"))
    assert get(s2, "/").text == "from a task"


def test_unix_socket_server_has_none_port(pounce, tmp_path):
    sock = tmp_path / "asgi.sock"
    cfg = asgi_config().replace(
        "address: {socket_address: {address: 127.0.0.1, port_value: @PORT@}}",
        f"address: {{pipe: {{path: {sock}}}}}")
    s = pounce(cfg, uds=str(sock))
    transport = httpx.HTTPTransport(uds=str(sock))
    with httpx.Client(transport=transport) as c:
        scope = c.get("http://localhost/scope").json()
    assert scope["server"] == [str(sock), None]
    assert scope["client"] is None


def test_echo_body_in_many_chunks(probe):
    payload = os.urandom(300_000)

    def chunks():
        for i in range(0, len(payload), 1000):
            yield payload[i:i + 1000]

    r = httpx.post(probe.url("/echo"), content=chunks(), timeout=20)
    assert r.status_code == 200
    assert r.content == payload


def test_content_length_body_echo(probe):
    r = httpx.post(probe.url("/echo"), content=b"x" * 5000, timeout=10)
    assert r.content == b"x" * 5000


def test_streaming_response_many_chunks(probe):
    r = get(probe, "/stream?n=16&size=1024")
    assert r.status_code == 200
    assert r.headers["transfer-encoding"] == "chunked"
    assert len(r.content) == 16 * 1024
    assert r.content[:1024] == b"A" * 1024 and r.content[-1024:] == b"P" * 1024


@pytest.mark.no_asan
def test_large_stream_to_slow_reader_keeps_memory_bounded(probe):
    """500 MB streamed to a client that reads slowly: the app is paused, RSS stays flat."""
    pid = probe.proc.pid

    def rss_mb():
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0

    base = rss_mb()
    total = 0
    peak = base
    size = 65536
    n = 500 * 1024 * 1024 // size
    with httpx.stream("GET", probe.url(f"/stream?n={n}&size={size}"), timeout=60) as r:
        for i, chunk in enumerate(r.iter_raw(1 << 20)):
            total += len(chunk)
            if i % 50 == 0:
                time.sleep(0.01)  # a slow reader
                peak = max(peak, rss_mb())
    assert total == n * size
    assert peak - base < 100, f"RSS grew from {base:.0f} MB to {peak:.0f} MB"


def test_slow_app_pauses_the_upload(pounce):
    slow = pounce(asgi_config(http="{max_request_bytes: 67108864}"))
    payload = b"u" * (8 << 20)
    r = httpx.post(slow.url("/slow-reader"), content=payload, timeout=60)
    assert r.text == str(len(payload))


def test_disconnect_is_reported_while_streaming(probe):
    c = RawConnection(probe.connect())
    c.send(b"GET /wait-disconnect HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"waiting" in c.sock.recv(4096) or True
    c.close()
    wait_for(lambda: "/wait-disconnect" in get(probe, "/disconnects").json(),
             what="http.disconnect for the closed connection")


def test_disconnect_mid_upload(probe):
    c = RawConnection(probe.connect())
    c.send(b"POST /upload-then-disconnect HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\npartial")
    time.sleep(0.1)
    c.close()
    wait_for(lambda: "/upload-then-disconnect" in get(probe, "/disconnects").json(),
             what="http.disconnect during the upload")


@pytest.mark.parametrize("path", ["/trailers", "/trailers?bad=1"])
def test_trailers_reach_a_client_that_accepts_them(probe, path):
    # Fields that belong in the head (framing, connection, cookies) never go out as
    # trailers (RFC 9110 §6.5.1), as over HTTP/2.
    c = RawConnection(probe.connect())
    c.send(f"GET {path} HTTP/1.1\r\nHost: x\r\nTE: trailers\r\n\r\n".encode())
    data = b""
    while not data.endswith(b"\r\n\r\n") or b"x-checksum: abc123" not in data:
        chunk = c.sock.recv(65536)
        if not chunk:
            break
        data += chunk
    assert b"transfer-encoding: chunked" in data
    assert b"part1," in data and b"part2" in data
    assert data.endswith(b"0\r\nx-checksum: abc123\r\n\r\n")
    if "bad" in path:
        assert "dropped 4 response trailer field(s)" in probe.log()


def _raw_response(server, path):
    c = RawConnection(server.connect())
    c.send(f"GET {path} HTTP/1.1\r\nHost: x\r\nTE: trailers\r\nConnection: close\r\n\r\n".encode())
    return recv_to_close(c.sock)


def test_messages_out_of_order_raise_and_leave_the_response_whole(pounce):
    # ASGI trailers extension: nothing after the trailers, no body after the last one.
    # Trailers while the body is open end it (gRPC-over-ASGI sends its status that way).
    s = pounce(asgi_config(app="send_order:app"))
    assert _raw_response(s, "/body_after_trailers").endswith(b"5\r\nearly\r\n0\r\nx-t: 1\r\nx-t: 1\r\n\r\n")
    assert _raw_response(s, "/trailers_early").endswith(b"1\r\na\r\n0\r\nx-t: 1\r\n\r\n")
    assert _raw_response(s, "/only_trailers").endswith(b"\r\n\r\n0\r\nx-t: 1\r\n\r\n")
    assert _raw_response(s, "/body_after_last").endswith(b"3\r\nall\r\n0\r\nx-t: 1\r\n\r\n")
    ended = "http.response.body after the body ended (a body message with more_body False, or trailers)"
    assert get(s, "/errors").json() == [ended, ended]


def test_bad_values_from_the_app_are_logged_escaped_and_send_nothing_empty(pounce):
    s = pounce(asgi_config(app="send_order:app"))
    # A hint whose only link is invalid: no empty 103 goes out.
    assert _raw_response(s, "/hint_bad").startswith(b"HTTP/1.1 200 OK\r\n")
    assert "early hint link, or one with characters not allowed in HTTP: '</a>\\r\\nx-evil: 1'" in s.log()
    # A header name with CR/LF cannot start a log line of its own.
    assert get(s, "/bad_name").text == "ok"
    log = s.log()
    assert "characters not allowed in HTTP: x\\r\\n2026-01-01T00:00:00.000Z [error] FAKE" in log
    assert not any(line.startswith("2026-01-01T00:00:00.000Z [error] FAKE") for line in log.splitlines())


def test_pathsend_serves_the_file(probe, tmp_path):
    f = tmp_path / "blob.bin"
    data = os.urandom(3 << 20)
    f.write_bytes(data)
    r = get(probe, f"/pathsend?file={f}")
    assert r.status_code == 200
    assert r.content == data


def test_early_hint_is_sent_before_the_response(probe):
    c = RawConnection(probe.connect())
    c.send(b"GET /early-hint HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, _ = c.response()
    assert status == 103
    assert headers["link"] == ["</style.css>; rel=preload; as=style"]
    status, _, body = c.response()
    assert status == 200 and body == b"hinted"


def test_exception_before_start_is_500_and_logged_once(probe):
    r = get(probe, "/error-before")
    assert r.status_code == 500
    assert r.text == "Internal Server Error\n"
    wait_for(lambda: "boom before start" in probe.log(), what="the traceback in the log")
    assert probe.log().count("RuntimeError: boom before start") == 1
    assert get(probe, "/echo").status_code == 200  # still serving


def test_exception_after_start_resets_the_connection(probe):
    c = RawConnection(probe.connect())
    c.send(b"GET /error-after HTTP/1.1\r\nHost: x\r\n\r\n")
    with pytest.raises((ConnectionError, AssertionError, ValueError)):
        status, headers, body = c.response()
        # A reset connection cannot deliver a complete chunked body.
        assert False, body
    assert get(probe, "/scope").status_code == 200


def test_app_returning_without_response_is_500(probe):
    assert get(probe, "/no-response").status_code == 500


def test_debug_page_shows_the_traceback(pounce):
    s = pounce(asgi_config(extra="      debug: true"))
    r = get(s, "/error-before?token=QSECRET&page=2&password=QPW",
            headers={"Authorization": "Bearer secret-token", "X-Api-Key": "HDRKEY",
                     "Cookie": "session=COOKIEVAL"})
    assert r.status_code == 500
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert "RuntimeError: boom before start" in r.text
    assert "probe.py" in r.text
    # Credentials appear nowhere: not in the header table, the request line, nor the repr
    # of the `scope` local.
    for secret in ("secret-token", "HDRKEY", "COOKIEVAL", "QSECRET", "QPW"):
        assert secret not in r.text, secret
    assert "page=2" in r.text


def test_request_timeout_answers_504(pounce):
    s = pounce(asgi_config(http="{request_timeout: 300ms}"))
    start = time.monotonic()
    r = get(s, "/sleep?s=5")
    assert r.status_code == 504
    assert time.monotonic() - start < 3
    assert get(s, "/scope").status_code == 200


def test_send_after_the_response_raises_an_oserror(probe):
    get(probe, "/send-after-end")
    errors = wait_for(lambda: get(probe, "/send-errors").json(), what="the send error")
    assert errors[0] == ["ClientDisconnected", True]


def test_response_headers_with_newlines_are_dropped(probe):
    r = get(probe, "/bad-header")
    assert r.status_code == 200
    assert r.headers["x-ok"] == "1"
    assert "x-evil" not in r.headers and "set-cookie" not in r.headers


def test_each_request_runs_in_a_registered_asyncio_task(probe):
    info = get(probe, "/task").json()
    assert info == {"is_task": True, "name": "pounce.asgi", "registered": True}


def test_a_task_factory_set_by_the_app_is_used(pounce):
    s = pounce(asgi_config(), env={"PROBE_TASK_FACTORY": "1"})
    info = get(s, "/task").json()
    assert info == {"is_task": True, "name": "from-factory", "registered": True}


def test_lifespan_and_worker_scopes_run_in_order(pounce, tmp_path):
    marker = tmp_path / "shutdown.txt"
    s = pounce(asgi_config(), env={"PROBE_SHUTDOWN_FILE": str(marker)})
    events = get(s, "/events").json()
    assert events[:2] == ["lifespan.startup", "pounce.worker.startup:0:0"]
    s.signal(signal.SIGTERM)
    assert s.wait_exit() == 0
    assert marker.read_text() == "lifespan.shutdown\n"


def test_lifespan_startup_failure_exits_1_with_the_message(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(asgi_config(app="lifespan_fail:app").replace("@PORT@", "0"))
    r = run_pounce("-c", cfg, timeout=30)
    assert r.returncode == 1
    assert "database is unreachable" in r.stderr


def test_lifespan_startup_timeout_cancels_the_startup_and_sends_no_shutdown(tmp_path):
    cfg = tmp_path / "c.yaml"
    marker = tmp_path / "marker"
    cfg.write_text(asgi_config(app="lifespan_fail:slow_startup", extra="      startup_timeout: 1s")
                   .replace("@PORT@", "0"))
    r = run_pounce("-c", cfg, timeout=30, env={"POUNCE_TEST_MARKER": str(marker)})
    assert r.returncode == 1
    assert "lifespan startup did not complete within 1s" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and "shutdown" not in r.stderr, r.stderr
    assert marker.read_text() == "startup cancelled\n"


def test_app_without_lifespan_support_is_served(pounce):
    s = pounce(asgi_config(app="lifespan_fail:no_lifespan"))
    assert get(s, "/").text == "no lifespan here"


def test_asgi2_app_is_served(pounce):
    s = pounce(asgi_config(app="lifespan_fail:Asgi2"))
    assert get(s, "/").text == "asgi2"


def test_factory_app(pounce):
    s = pounce(asgi_config(app="factory:create_app()"))
    assert get(s, "/").text == "factory:1"


def test_middleware_wrap_in_order(pounce):
    s = pounce(asgi_config(extra="      middleware: [middleware:First, middleware:Second]"))
    r = get(s, "/scope")
    # First wraps outermost, so its send sees the start last and appends last.
    assert r.headers.get_list("x-order") == ["second", "first"]


@pytest.mark.parametrize("app,message", [
    ("no_such_module_here:app", "cannot import app module 'no_such_module_here'"),
    ("probe:nope", "module 'probe' has no attribute 'nope'"),
    ("factory:broken_factory()", "ValueError: the factory failed on purpose"),
    ("broken_import:app", "ModuleNotFoundError: No module named 'module_that_does_not_exist_anywhere'"),
    ("probe", "must look like 'module:attribute'"),
])
def test_import_errors_are_clear_and_exit_1(tmp_path, app, message):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(asgi_config(app=app).replace("@PORT@", "0"))
    r = run_pounce("-c", cfg, "--mode", "validate", timeout=30)
    assert r.returncode == 1
    assert message in r.stderr, r.stderr
    assert "filter_chain[0].typed_config" in r.stderr


def test_quick_mode_serves_an_app(pounce):
    s = pounce(None, args=["probe:app", "--port", "@PORT@", "--no-access-log"],
               cwd=str(APPS))
    assert get(s, "/scope").json()["type"] == "http"


def test_quickstart_config_serves_the_example(pounce):
    s = pounce(None, args=["--config-yaml", str(ROOT / "configs/quickstart.yaml"), "--port", "@PORT@"])
    assert get(s, "/").text == "Hello, world!\n"


def test_head_request_gets_no_body(probe):
    r = httpx.head(probe.url("/echo"), timeout=10)
    assert r.status_code == 200
    assert r.content == b""


def test_keep_alive_many_requests(probe):
    with httpx.Client() as c:
        for i in range(200):
            r = c.post(probe.url("/echo"), content=str(i).encode())
            assert r.text == str(i)


# --- lifespan, threads and shutdown options ------------------------------------------------

def test_lifespan_off_never_runs_startup(pounce):
    s = pounce(asgi_config(extra='      lifespan: "OFF"'))
    assert "lifespan.startup" not in get(s, "/events").json()
    assert get(s, "/scope").json()["state"] == {}


def test_lifespan_on_with_an_app_without_lifespan_exits_1(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(asgi_config(app="lifespan_fail:no_lifespan", extra='      lifespan: "ON"')
                   .replace("@PORT@", "0"))
    r = run_pounce("-c", cfg, timeout=30)
    assert r.returncode == 1
    assert "ASGI lifespan startup failed" in r.stderr, r.stderr
    assert "only http, not lifespan" in r.stderr, r.stderr
    # Returning without an answer is no lifespan support either: refused with `on`, served
    # with `auto`.
    cfg.write_text(asgi_config(app="lifespan_fail:returns_from_lifespan", extra='      lifespan: "ON"')
                   .replace("@PORT@", "0"))
    r = run_pounce("-c", cfg, timeout=30)
    assert r.returncode == 1 and "returned without answering lifespan.startup" in r.stderr, r.stderr


def test_lifespan_auto_serves_an_app_that_returns_from_lifespan(pounce):
    s = pounce(asgi_config(app="lifespan_fail:returns_from_lifespan"))
    assert get(s, "/").text == "served"


def test_two_threads_run_lifespan_per_loop_and_both_serve(pounce):
    """threads: 2 gives two event loops; each runs lifespan startup, and requests arriving
    on both I/O threads are served by both loops."""
    s = pounce(asgi_config(extra="      threads: 2").replace("concurrency: 1", "concurrency: 2"))
    events = get(s, "/events").json()
    assert events.count("lifespan.startup") == 2, events
    assert sorted(e for e in events if e.startswith("pounce.worker.startup")) == [
        "pounce.worker.startup:0:0", "pounce.worker.startup:0:1"]
    seen = set()
    for _ in range(100):  # each new connection may land on either I/O thread
        info = get(s, "/loop").json()
        seen.add((info["loop"], info["thread"]))
        if len(seen) == 2:
            break
    assert len(seen) == 2, seen
    assert len({loop for loop, _ in seen}) == 2 and len({t for _, t in seen}) == 2


def test_worker_shutdown_scope_runs_on_sigterm(pounce, tmp_path):
    marker = tmp_path / "worker.txt"
    s = pounce(asgi_config(), env={"PROBE_WORKER_FILE": str(marker)})
    assert marker.read_text() == "pounce.worker.startup:0:0\n"
    s.signal(signal.SIGTERM)
    assert s.wait_exit() == 0
    assert marker.read_text() == "pounce.worker.startup:0:0\npounce.worker.shutdown:0:0\n"


@pytest.mark.parametrize("workers", ["", "workers: {mode: process, count: 2}"])
def test_atexit_functions_run_after_lifespan_shutdown_on_sigterm(pounce, tmp_path, workers):
    # As when a Python process exits (uvicorn's does): logging's flush, tracing exporters.
    record = tmp_path / "atexit.txt"
    s = pounce(workers + asgi_config(app="atexit_app:app"), env={"ATEXIT_FILE": str(record)})
    if workers:
        wait_for(lambda: "all 2 workers ready" in s.log(), what="both workers")
    assert get(s, "/").status_code == 200
    s.signal(signal.SIGTERM)
    assert s.wait_exit() == 0
    by_pid = {}
    for line in record.read_text().splitlines():
        pid, event = line.split()
        by_pid.setdefault(pid, []).append(event)
    assert len(by_pid) == (2 if workers else 1), by_pid
    assert all(events == ["lifespan.shutdown", "atexit"] for events in by_pid.values()), by_pid
    assert "an atexit function that fails" in s.log()


def test_timeout_graceful_shutdown_bounds_a_hanging_lifespan_shutdown(pounce):
    s = pounce(asgi_config(extra="      timeout_graceful_shutdown: 1s"),
               env={"PROBE_SHUTDOWN_HANG": "1"})
    assert get(s, "/events").json()[0] == "lifespan.startup"
    start = time.monotonic()
    s.signal(signal.SIGTERM)
    s.wait_exit(timeout=15)
    elapsed = time.monotonic() - start
    assert 0.9 < elapsed < 6, elapsed
    assert "lifespan shutdown did not complete within 1s" in s.log()


def test_request_running_at_shutdown_is_bounded_by_the_listener_shutdown_timeout(pounce, tmp_path):
    """A request still running when SIGTERM arrives is awaited for the listener's
    http.shutdown_timeout (not timeout_graceful_shutdown, which is for lifespan and the
    worker scopes); then the connection is closed, the app's coroutine is cancelled (its
    cleanup runs) and the process exits."""
    marker = tmp_path / "events"
    log = tmp_path / "access.json"
    access_log = f"""
  - name: pounce.filters.access_log
    typed_config:
      "@type": type.googleapis.com/pounce.filters.access_log.v1.AccessLog
      format: json
      path: {log}"""
    s = pounce(asgi_config(http="{shutdown_timeout: 1s}", chain_before=access_log,
                           extra="      timeout_graceful_shutdown: 30s"),
               env={"PROBE_WORKER_FILE": str(marker)})
    c = RawConnection(s.connect())
    c.send(b"GET /hold?s=60 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"holding" in recv_until(c.sock, b"holding")  # the app is running the request
    start = time.monotonic()
    s.signal(signal.SIGTERM)
    assert s.wait_exit(timeout=20) == 0
    elapsed = time.monotonic() - start
    assert 0.9 < elapsed < 6, elapsed
    assert "shutdown timeout, closing 1 connection(s)" in s.log()
    assert "cancelled:/hold" in marker.read_text().splitlines()
    assert "cancelled 1 ASGI request(s) still running at shutdown" in s.log()
    # The server ended it, not the client: flagged draining, not client_reset.
    entry = json.loads(log.read_text().splitlines()[-1])
    assert entry["path"] == "/hold?s=60" and entry["flags"] == "draining", entry
    c.close()


# --- scope state, extensions ---------------------------------------------------------------

def test_scope_state_is_a_shallow_copy_per_request(pounce):
    s = pounce(asgi_config(), env={"PROBE_SHARED_STATE": "1"})
    with httpx.Client(timeout=10) as c:
        first = c.get(s.url("/state-mutate?n=1")).json()
        second = c.get(s.url("/state-mutate?n=2")).json()
    # The key the first request added to its state is not seen by the second...
    assert first["keys"] == second["keys"] == ["greeting", "shared", "started"]
    # ...but the list the lifespan put in the state is the same object for both.
    assert first["shared_id"] == second["shared_id"]
    assert second["shared"] == ["1", "2"]


@pytest.mark.parametrize("request_id", [False, True])
def test_each_request_has_its_own_extensions(pounce, request_id):
    chain = """
  - name: pounce.filters.request_id""" if request_id else ""
    s = pounce(asgi_config(chain_before=chain))
    expected = sorted(["http.response.trailers", "http.response.pathsend",
                       "http.response.early_hint"] + (["request_id"] if request_id else []))
    with httpx.Client(timeout=10) as c:
        for n in range(80):  # more than the recycled dicts of a loop
            seen = c.get(s.url(f"/extensions-mutate?n={n}")).json()
            assert seen == {"keys": expected, "trailers": {}}, (n, seen)


def test_request_id_reaches_the_scope_extensions(pounce):
    chain = """
  - name: pounce.filters.request_id
    typed_config:
      "@type": type.googleapis.com/pounce.filters.request_id.v1.RequestId"""
    s = pounce(asgi_config(chain_before=chain))
    r = get(s, "/scope")
    rid = r.headers["x-request-id"]
    assert rid
    assert r.json()["extensions"]["request_id"] == rid
    assert get(s, "/scope").json()["extensions"]["request_id"] != rid


# --- client gone, timeouts, flow control ---------------------------------------------------

def test_send_after_the_client_left_raises_an_oserror(probe):
    c = RawConnection(probe.connect())
    c.send(b"GET /stream-until-gone HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"g" * 4096 in recv_until(c.sock, b"g" * 4096)  # the stream is flowing
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # reset
    c.close()
    errors = wait_for(lambda: get(probe, "/gone-errors").json(), timeout=20,
                      what="send() to fail after the client left")
    name, is_oserror = errors[0]
    assert is_oserror, errors


def test_request_timeout_cancels_the_app(pounce):
    s = pounce(asgi_config(http="{request_timeout: 300ms}"))
    r = get(s, "/sleep-cancellable?s=30")
    assert r.status_code == 504
    assert wait_for(lambda: get(s, "/cancelled").json(), what="the app to be cancelled") == [
        "/sleep-cancellable"]


def test_request_timeout_cancels_the_app_of_a_client_that_left(pounce):
    """A client that leaves before its answer does not take request_timeout with it: the
    app's task is cancelled at most that long after, as it is with the client there."""
    s = pounce(asgi_config(http="{request_timeout: 500ms}"))
    socks = []
    for _ in range(20):
        sock = s.connect()
        sock.sendall(b"GET /sleep-cancellable?s=30 HTTP/1.1\r\nHost: x\r\n\r\n")
        socks.append(sock)
    time.sleep(0.2)
    for sock in socks:
        sock.close()
    assert wait_for(lambda: len(get(s, "/cancelled").json()) == 20 or None, timeout=10,
                    what="the 20 apps to be cancelled")
    # An app that answers in time after its client left is not cancelled.
    sock = s.connect()
    sock.sendall(b"GET /sleep-cancellable?s=0.3 HTTP/1.1\r\nHost: x\r\n\r\n")
    sock.close()
    time.sleep(1.0)
    assert len(get(s, "/cancelled").json()) == 20


def test_upload_is_not_buffered_while_the_app_does_not_read(pounce, tmp_path):
    """The app does not call receive(): the client can push only a bounded part of a 64 MB
    body (socket buffers plus one stream buffer); once the app reads, the rest arrives."""
    size = 64 << 20
    flag = tmp_path / "release"
    s = pounce(asgi_config(http=f"{{max_request_bytes: {size * 2}}}"))
    sock = s.connect()
    sock.sendall(f"POST /read-when-released?flag={flag} HTTP/1.1\r\nHost: x\r\n"
                 f"Content-Length: {size}\r\n\r\n".encode())
    sock.setblocking(False)
    chunk = b"b" * (1 << 20)
    sent = 0
    stalled_since = None
    deadline = time.monotonic() + 5
    while sent < size and time.monotonic() < deadline:
        try:
            sent += sock.send(chunk[:size - sent])
            stalled_since = None
        except BlockingIOError:
            now = time.monotonic()
            stalled_since = stalled_since or now
            if now - stalled_since > 0.5:
                break  # nothing accepted for half a second: the server has paused us
            time.sleep(0.01)
    assert sent < 32 << 20, f"{sent} of {size} bytes accepted while the app was not reading"
    flag.write_text("go")
    sock.settimeout(20)
    sock.sendall(b"b" * (size - sent))
    c = RawConnection(sock)
    status, _, body = c.response()
    assert status == 200 and body == str(size).encode()
    sock.close()


def test_send_rejects_a_message_that_is_not_a_dict_or_has_no_type(pounce):
    s = pounce(asgi_config())
    r = get(s, "/bad-send")
    assert r.status_code == 200
    not_dict, no_type = r.json()
    assert not_dict.startswith("TypeError: send() argument")
    assert no_type == "ValueError: ASGI message has no 'type'"
