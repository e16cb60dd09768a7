"""ASGI apps over HTTP/2: the same filter chain and app as HTTP/1.1, with HTTP/2 flow control
tied to the app both ways (a slow app closes the client's window, a slow client pauses the
app's send), and the ASGI extensions (early hints, trailers, pathsend) on HTTP/2 frames."""

import json
import os
import time

import httpx
import pytest
from hyperframe.frame import DataFrame, HeadersFrame, SettingsFrame, WindowUpdateFrame

from test_asgi import asgi_config
from test_http2 import INTERNAL_ERROR, H2Raw


@pytest.fixture
def probe(pounce):
    return pounce(asgi_config())


def request(path, method="GET"):
    return [(":method", method), (":scheme", "http"), (":authority", "localhost"), (":path", path)]


def rss_mb(server):
    with open(f"/proc/{server.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def test_scope_over_http2(probe):
    c = H2Raw(probe)
    c.send(c.headers(1, request("/scope?a=1") + [("x-custom", "v")]))
    status, _, body = c.response(1)
    assert status == 200
    scope = json.loads(body)
    assert scope["http_version"] == "2"
    assert scope["method"] == "GET"
    assert scope["path"] == "/scope"
    assert scope["query_string"] == "a=1"
    assert scope["scheme"] == "http"
    headers = dict(scope["headers"])
    assert headers["host"] == "localhost"
    assert scope["headers"][0] == ["host", "localhost"], "the authority leads, as Host does in HTTP/1.1"
    assert headers["x-custom"] == "v"


def test_a_cleartext_client_cannot_claim_https(probe):
    """The scheme is the connection's, as over HTTP/1.1: `:scheme: https` on h2c is http."""
    c = H2Raw(probe)
    c.send(c.headers(1, [(":method", "GET"), (":scheme", "https"), (":authority", "localhost"),
                         (":path", "/scope")]))
    status, _, body = c.response(1)
    assert status == 200
    assert json.loads(body)["scheme"] == "http"


def test_httpx_upload_echo_over_http2(probe):
    payload = os.urandom(1 << 20)
    with httpx.Client(http1=False, http2=True, timeout=20) as client:
        r = client.post(probe.url("/echo"), content=payload)
        assert r.http_version == "HTTP/2"
        assert r.content == payload


def test_a_paused_app_closes_the_stream_window(pounce):
    """The app does not read the body for a while: after the filter's buffer limit, the
    server stops giving the stream window back, so the client cannot send more; other
    streams on the connection go on."""
    s = pounce(asgi_config(http="{buffer_limit_bytes: 65536, max_request_bytes: 104857600}"))
    c = H2Raw(s)
    c.read_until(lambda f: isinstance(f, SettingsFrame) and "ACK" not in f.flags)
    # The server's INITIAL_WINDOW_SIZE applies once acknowledged.
    c.send(SettingsFrame(0, flags=["ACK"]))
    stream_window = 262144
    conn_window = 65535
    # /sleep answers after 3 s without ever calling receive().
    c.send(c.headers(1, request("/sleep?s=3", "POST"), end_stream=False))
    sent = 0
    seen = 0
    idle_since = time.monotonic()
    while time.monotonic() - idle_since < 1.0 and sent < (8 << 20):
        for f in c.received[seen:]:
            if isinstance(f, WindowUpdateFrame):
                if f.stream_id == 0:
                    conn_window += f.window_increment
                elif f.stream_id == 1:
                    stream_window += f.window_increment
        seen = len(c.received)
        chunk = min(16384, stream_window, conn_window)
        if chunk > 0:
            c.send(DataFrame(1, b"u" * chunk))
            sent += chunk
            stream_window -= chunk
            conn_window -= chunk
            idle_since = time.monotonic()
            continue
        try:
            c.read_until(lambda f: False, timeout=0.2)
        except AssertionError:
            pass
    # The buffer limit and one stream window (plus a frame in flight): far from the 8 MB the
    # client would send if nothing stopped it.
    assert 65536 <= sent <= 65536 + 262144 + 2 * 16384, sent
    # The connection window was given back: another stream is served meanwhile.
    c.send(c.headers(3, request("/scope")))
    assert c.response(3)[0] == 200
    # The app answers without reading the rest: the upload is cut with RST_STREAM(NO_ERROR).
    status, _, body = c.response(1, timeout=10)
    assert status == 200 and body == b"slept"
    r = c.rst(1)
    assert r is not None and r.error_code == 0


def test_a_client_that_does_not_read_pauses_the_app(probe):
    """The client never opens its window: the app's send() waits, memory stays flat."""
    c = H2Raw(probe)
    base = rss_mb(probe)
    size = 65536
    n = 800  # 50 MB if the app were not paused
    c.send(c.headers(1, request(f"/stream?n={n}&size={size}")))
    c.read_until(lambda f: isinstance(f, HeadersFrame) and f.stream_id == 1)
    time.sleep(1.0)
    received = sum(len(f.data) for f in c.received if isinstance(f, DataFrame))
    assert received <= 65535
    assert rss_mb(probe) - base < 20, f"RSS grew from {base:.0f} to {rss_mb(probe):.0f} MB"
    # Opening the window lets it all through.
    c.send(WindowUpdateFrame(0, 2 ** 31 - 1 - 65535), WindowUpdateFrame(1, 2 ** 31 - 1 - 65535))
    c.read_until(lambda f: f.stream_id == 1 and "END_STREAM" in f.flags, timeout=30)
    received = sum(len(f.data) for f in c.received if isinstance(f, DataFrame))
    assert received == n * size


def test_early_hint_over_http2(probe):
    c = H2Raw(probe)
    c.send(c.headers(1, request("/early-hint")))
    status, headers, body = c.response(1)
    heads = [f for f in c.received if isinstance(f, HeadersFrame) and f.stream_id == 1]
    assert dict(heads[0].decoded)[":status"] == "103"
    assert dict(heads[0].decoded)["link"] == "</style.css>; rel=preload; as=style"
    assert status == 200 and body == b"hinted"


@pytest.mark.parametrize("path", ["/trailers", "/trailers?bad=1"])
def test_trailers_over_http2(probe, path):
    c = H2Raw(probe)
    c.send(c.headers(1, request(path) + [("te", "trailers")]))
    status, headers, body = c.response(1)
    assert status == 200 and body == b"part1,part2"
    last = [f for f in c.received if isinstance(f, HeadersFrame) and f.stream_id == 1][-1]
    assert "END_STREAM" in last.flags
    assert dict(last.decoded) == {"x-checksum": "abc123"}


def test_pathsend_over_http2(probe, tmp_path):
    f = tmp_path / "blob.bin"
    data = os.urandom(3 << 20)
    f.write_bytes(data)
    with httpx.Client(http1=False, http2=True, timeout=20) as client:
        r = client.get(probe.url(f"/pathsend?file={f}"))
        assert r.status_code == 200 and r.content == data


def test_app_error_after_start_resets_only_its_stream(probe):
    c = H2Raw(probe)
    c.send(c.headers(1, request("/error-after")))
    r = c.rst(1)
    assert r is not None and r.error_code == INTERNAL_ERROR
    c.send(c.headers(3, request("/scope")))
    assert c.response(3)[0] == 200


def test_response_header_with_newline_is_dropped_over_http2(probe):
    c = H2Raw(probe)
    c.send(c.headers(1, request("/bad-header")))
    status, headers, body = c.response(1)
    assert status == 200 and body == b"ok"
    assert headers["x-ok"] == ["1"]
    assert "x-evil" not in headers and "set-cookie" not in headers
    # RFC 9113 §8.2.1: a value goes out without the whitespace around it.
    assert headers["x-padded"] == ["padded value"]
