"""The ASGI filter end to end: scope, events, extensions, lifespan, errors, middleware."""

import json
import os
import signal
import socket
import time

import httpx
import pytest

from conftest import ROOT, RawConnection, run_pounce, wait_for

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


def test_trailers_reach_a_client_that_accepts_them(probe):
    c = RawConnection(probe.connect())
    c.send(b"GET /trailers HTTP/1.1\r\nHost: x\r\nTE: trailers\r\n\r\n")
    data = b""
    while not data.endswith(b"\r\n\r\n") or b"x-checksum: abc123" not in data:
        chunk = c.sock.recv(65536)
        if not chunk:
            break
        data += chunk
    assert b"transfer-encoding: chunked" in data
    assert b"part1," in data and b"part2" in data
    assert data.endswith(b"0\r\nx-checksum: abc123\r\n\r\n")


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
    r = get(s, "/error-before", headers={"Authorization": "Bearer secret-token"})
    assert r.status_code == 500
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert "RuntimeError: boom before start" in r.text
    assert "probe.py" in r.text
    assert "secret-token" not in r.text


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
