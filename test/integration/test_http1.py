"""HTTP/1.1 behaviour of the real server: keep-alive, pipelining, chunked bodies,
100-continue, and every limit and timeout answer."""

import json
import socket
import subprocess
import time
from urllib.parse import quote

import pytest

from conftest import RawConnection, recv_to_close, recv_until, wait_for
from test_asgi import asgi_config


def config(http="{}", body="hello\n", extra_filters=""):
    return f"""
concurrency: 1
listeners:
- name: main
  address: {{socket_address: {{address: 127.0.0.1, port_value: @PORT@}}}}
  http: {http}
  filter_chain:{extra_filters}
  - name: pounce.filters.direct_response
    typed_config:
      "@type": type.googleapis.com/pounce.filters.direct_response.v1.DirectResponse
      body: {json.dumps(body)}
      headers: [{{name: x-test, value: "yes"}}]
"""


def conn(server):
    return RawConnection(server.connect())


def test_keep_alive_serves_many_requests_on_one_connection(pounce):
    s = pounce(config())
    c = conn(s)
    for i in range(5):
        c.send(f"GET /{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        status, headers, body = c.response()
        assert status == 200
        assert body == b"hello\n"
        assert headers["x-test"] == ["yes"]
        assert "connection" not in headers
    c.close()


def test_pipelined_requests_get_responses_in_order(pounce):
    s = pounce(config())
    c = conn(s)
    reqs = b"".join(f"GET /{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for i in range(10))
    c.send(reqs + b"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n")
    for i in range(10):
        status, _, body = c.response()
        assert status == 200 and body == b"hello\n"
    status, headers, body = c.response(head_only=True)
    assert status == 200 and headers["content-length"] == ["6"]
    c.close()


def test_chunked_request_body_is_read(pounce):
    s = pounce(config())
    c = conn(s)
    c.send(b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"5\r\nhello\r\n0\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n")
    assert c.response()[0] == 200
    assert c.response()[0] == 200


def test_expect_100_continue(pounce):
    s = pounce(config())
    c = conn(s)
    c.send(b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
    status, _, _ = c.response()
    # direct_response answers at once, without asking for the body.
    assert status == 200


def test_http10_closes_unless_keep_alive(pounce):
    s = pounce(config())
    c = conn(s)
    c.send(b"GET / HTTP/1.0\r\n\r\n")
    status, headers, body = c.response()
    assert status == 200 and headers["connection"] == ["close"]
    assert c.closed_by_peer()
    c = conn(s)
    c.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert c.response()[1]["connection"] == ["keep-alive"]
    assert c.response()[0] == 200


def test_connection_close_request(pounce):
    s = pounce(config())
    c = conn(s)
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    status, headers, _ = c.response()
    assert headers["connection"] == ["close"]
    assert c.closed_by_peer()


def test_date_and_server_headers(pounce):
    s = pounce(config())
    c = conn(s)
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    _, headers, _ = c.response()
    assert headers["server"] == ["pounce"]
    assert headers["date"][0].endswith(" GMT")


@pytest.mark.parametrize("request_bytes,status", [
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 3000 + b"\r\n\r\n", 431),
    (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(30)) + b"\r\n", 431),
    (b"GET /" + b"a" * 600 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n", 413),
    (b"GET / HTTP/1.1\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\nX: y\r\n\r\n", 400),
    (b"GET / HTTP/3.0\r\nHost: x\r\n\r\n", 505),
    (b"GARBAGE\r\n\r\n", 400),
])
def test_limits_and_malformed_requests_get_their_status_and_close(pounce, request_bytes, status):
    s = pounce(config(http="{max_header_bytes: 2048, max_headers: 20, max_uri_bytes: 512, max_request_bytes: 1024}"))
    c = conn(s)
    c.send(request_bytes)
    got, headers, body = c.response()
    assert got == status
    assert headers["connection"] == ["close"]
    assert c.closed_by_peer()
    # The server is still fine.
    c = conn(s)
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert c.response()[0] == 200


def test_slow_header_gets_408_and_close(pounce):
    s = pounce(config(http="{header_timeout: 300ms}"))
    c = conn(s)
    start = time.monotonic()
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n")  # never finishes the head
    status, headers, _ = c.response()
    assert status == 408
    assert 0.25 < time.monotonic() - start < 5
    assert c.closed_by_peer()


def test_connection_that_sends_nothing_is_closed_after_header_timeout(pounce):
    s = pounce(config(http="{header_timeout: 300ms}"))
    c = conn(s)
    assert c.closed_by_peer(timeout=5)


def test_idle_keep_alive_connection_closes_after_timeout(pounce):
    s = pounce(config(http="{keep_alive_timeout: 300ms}"))
    c = conn(s)
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert c.response()[0] == 200
    start = time.monotonic()
    assert c.closed_by_peer(timeout=5)
    assert time.monotonic() - start >= 0.25


def test_max_requests_per_connection(pounce):
    s = pounce(config(http="{max_requests_per_connection: 3}"))
    c = conn(s)
    for i in range(3):
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, _ = c.response()
        assert status == 200
    assert headers["connection"] == ["close"]
    assert c.closed_by_peer()


def test_max_connections_answers_503_with_retry_after(pounce):
    s = pounce(config(http="{max_connections: 2}"))
    held = []

    def hold_one():
        # The readiness probe's connection may not be reaped yet: retry until admitted.
        c = conn(s)
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        if c.response()[0] != 200:
            c.close()
            return False
        held.append(c)
        return True

    for _ in range(2):
        wait_for(hold_one, timeout=5, what="an admitted connection")
    extra = conn(s)
    status, headers, body = extra.response()
    assert status == 503
    assert headers["retry-after"] == ["5"]
    assert extra.closed_by_peer()
    held[0].close()
    # A slot frees up once a connection closes.
    def fresh_ok():
        c = conn(s)
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        ok = c.response()[0] == 200
        c.close()
        return ok
    wait_for(fresh_ok, timeout=5, what="a free connection slot")


def test_large_body_is_streamed_to_a_slow_reader(pounce, tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * 40000)  # ~10 MB
    cfg = f"""
listeners:
- name: main
  address: {{socket_address: {{address: 127.0.0.1, port_value: @PORT@}}}}
  filter_chain:
  - name: pounce.filters.direct_response
    typed_config:
      "@type": type.googleapis.com/pounce.filters.direct_response.v1.DirectResponse
      body_file: {big}
"""
    s = pounce(cfg)
    c = conn(s)
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.3)  # let the server fill the socket
    status, headers, body = c.response()
    assert status == 200
    assert body == big.read_bytes()


def test_chunked_body_over_limit_after_an_early_answer_closes(pounce):
    s = pounce(config(http="{max_request_bytes: 1024}"))
    c = conn(s)
    c.send(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
           + b"800\r\n" + b"a" * 2048 + b"\r\n0\r\n\r\n")
    # direct_response answered before reading the body; the body it then discards is over
    # the limit, so the connection is closed rather than reused.
    assert c.response()[0] == 200
    assert c.closed_by_peer()


def test_expect_100_continue_with_an_asgi_app_that_reads_the_body(pounce):
    """The client waits for 100 Continue before it sends the body; the app then echoes it."""
    s = pounce(asgi_config())
    c = conn(s)
    c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n")
    c.sock.settimeout(5)  # no body has been sent: only the interim answer can arrive
    interim = recv_until(c.sock, b"\r\n\r\n")
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"  # and nothing else yet
    c.send(b"hello world")
    status, _, body = c.response()
    assert status == 200 and body == b"hello world"
    c.close()


def test_expect_100_continue_waits_for_the_app_to_ask_for_the_body(pounce):
    """As uvicorn: the 100 goes out at the app's first receive(). An app that answers
    without reading (here /scope) spares the client the upload; the connection then closes,
    as the client may or may not send the body."""
    s = pounce(asgi_config())
    c = conn(s)
    c.send(b"POST /scope HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
    c.sock.settimeout(5)
    head = recv_until(c.sock, b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), head
    assert b"connection: close" in head.lower()
    assert b"100 Continue" not in read_all(c.sock)
    c.close()
    # Over HTTP/2 the same app gets the same answer, with no 100 either, and no RST_STREAM
    # with it (curl 7.88 took that for no answer at all: "Empty reply from server").
    for _ in range(5):
        r = subprocess.run(["curl", "-sv", "--http2-prior-knowledge", "-H", "Expect: 100-continue",
                            "--data-binary", "hello", "-o", "/dev/null", "-w", "%{http_code}",
                            s.url("/scope")], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and r.stdout == "200", r
        assert "HTTP/2 100" not in r.stderr, r.stderr
    # An app that reads the body gets it after the 100.
    body = "x" * 100000
    r = subprocess.run(["curl", "-sv", "--http2-prior-knowledge", "-H", "Expect: 100-continue",
                        "--data-binary", body, s.url("/echo")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout == body, r.stderr
    assert "HTTP/2 100" in r.stderr, r.stderr


def read_all(sock, timeout=5.0):
    """Everything the server sends until it closes (bounded by `timeout`)."""
    sock.settimeout(timeout)
    return recv_to_close(sock)


def test_answers_given_before_a_half_close_are_all_written(pounce):
    """Pipelined requests the server answers at once, then FIN: every answer arrives. (A FIN
    while an answer is still pending is the client leaving, as nginx and uvicorn take it:
    test_asgi.py's disconnect tests.)"""
    s = pounce(config())
    sock = s.connect()
    sock.sendall(b"".join(f"GET /{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for i in range(3)))
    sock.shutdown(socket.SHUT_WR)
    data = read_all(sock)
    sock.close()
    assert data.count(b"HTTP/1.1 200 OK") == 3, data
    assert data.count(b"hello\n") == 3


def test_an_app_body_longer_than_its_content_length_is_cut_and_the_connection_closes(pounce):
    """The bytes past the declared length would be read as the next response."""
    s = pounce(asgi_config())
    c = conn(s)
    fake = "abcHTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nEVIL"
    c.send(f"GET /declared?cl=3&body={quote(fake)} HTTP/1.1\r\nHost: x\r\n\r\n"
           "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    status, headers, body = c.response()
    assert status == 200 and body == b"abc"
    assert c.closed_by_peer()
    assert b"EVIL" not in c._pending
    assert wait_for(lambda: "longer than its Content-Length" in s.log(), what="the warning")


def test_an_app_body_shorter_than_its_content_length_closes_the_connection(pounce):
    s = pounce(asgi_config())
    c = conn(s)
    c.send(b"GET /declared?cl=10&body=abc HTTP/1.1\r\nHost: x\r\n\r\n")
    c.sock.settimeout(5)
    data = read_all(c.sock)
    assert data.startswith(b"HTTP/1.1 200 OK\r\n") and data.endswith(b"\r\n\r\nabc")
    assert wait_for(lambda: "shorter than its Content-Length" in s.log(), what="the warning")


def test_an_interim_status_from_the_app_is_refused(pounce):
    """A 1xx as the answer would leave the client waiting, or take the next answer for it."""
    s = pounce(asgi_config())
    c = conn(s)
    c.send(b"GET /status?code=103 HTTP/1.1\r\nHost: x\r\n\r\nGET /status?code=204 HTTP/1.1\r\nHost: x\r\n\r\n")
    status, _, _ = c.response()
    assert status == 500
    assert c.response()[0] == 204
    assert wait_for(lambda: "interim (1xx) status" in s.log(), what="the app's error")


def test_an_upgrade_the_server_does_not_do_is_an_ordinary_request(pounce):
    s = pounce(asgi_config())
    c = conn(s)
    c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nUpgrade: foo/2\r\nConnection: Upgrade\r\n"
           b"Content-Length: 2\r\n\r\nhi"
           b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: foo\r\nConnection: Upgrade\r\n\r\n")
    c.sock.settimeout(5)
    status, _, body = c.response()
    assert status == 200 and body == b"hi"
    status, _, body = c.response()
    assert status == 200 and body == b""


def test_absolute_form_targets_name_the_host(pounce):
    s = pounce(asgi_config())
    c = conn(s)
    c.send(b"GET http://other.example:8080/scope?x=1 HTTP/1.1\r\nHost: wrong\r\n\r\n")
    status, _, body = c.response()
    assert status == 200
    scope = json.loads(body)
    assert scope["path"] == "/scope" and scope["query_string"] == "x=1"
    assert ["host", "other.example:8080"] in scope["headers"]
    assert scope["server"] is not None
    c.send(b"GET * HTTP/1.1\r\nHost: x\r\n\r\n")
    assert c.response()[0] == 400


def _rss_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
    return 0


def test_a_client_that_pipelines_and_never_reads_cannot_grow_memory(pounce):
    """Each answer is 1 MiB and the client reads none: the server must stop taking its
    pipelined requests once the connection's output is above its high watermark, not queue
    200 MiB of answers."""
    s = pounce(asgi_config())
    c = conn(s)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    request = b"GET /stream?n=16&size=65536 HTTP/1.1\r\nHost: x\r\n\r\n"
    before = _rss_mb(s.proc.pid)
    c.sock.settimeout(5)
    c.send(request * 200)
    peak = before
    for _ in range(30):  # 3 s
        time.sleep(0.1)
        peak = max(peak, _rss_mb(s.proc.pid))
    assert peak - before < 64, f"RSS grew from {before} to {peak} MiB"
    # The connection is still good: reading resumes the pipeline.
    c.sock.settimeout(30)
    got = 0
    while got < 3 * (1 << 20):
        chunk = c.sock.recv(1 << 20)
        assert chunk, "the server closed the connection"
        got += len(chunk)
    c.close()
