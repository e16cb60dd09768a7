"""HTTP/2 behaviour of the real server over cleartext (h2c): real clients (curl, nghttp,
h2load, httpx), raw-frame conformance checks modelled on h2spec's sections, limits, draining,
and the flood defences, each ending in GOAWAY while other connections keep being served."""

import json
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import hpack
import pytest
from hyperframe.frame import (ContinuationFrame, DataFrame, Frame, GoAwayFrame, HeadersFrame,
                              PingFrame, PriorityFrame, RstStreamFrame, SettingsFrame,
                              WindowUpdateFrame)

from conftest import wait_for

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR = 0x0, 0x1, 0x2, 0x3
STREAM_CLOSED, FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL = 0x5, 0x6, 0x7, 0x8
COMPRESSION_ERROR, ENHANCE_YOUR_CALM = 0x9, 0xb


def config(http="{}", http2="{}", body="hello\n"):
    return f"""
concurrency: 1
listeners:
- name: main
  address: {{socket_address: {{address: 127.0.0.1, port_value: @PORT@}}}}
  http: {http}
  http2: {http2}
  filter_chain:
  - name: pounce.filters.direct_response
    typed_config:
      "@type": type.googleapis.com/pounce.filters.direct_response.v1.DirectResponse
      body: {json.dumps(body)}
      headers: [{{name: x-test, value: "yes"}}]
"""


REQUEST = [(":method", "GET"), (":scheme", "http"), (":authority", "localhost"), (":path", "/")]


class H2Raw:
    """A raw HTTP/2 client: frames out as bytes, frames in parsed (hyperframe), headers
    decoded with its own HPACK state. Nothing is validated on our side."""

    def __init__(self, server, preface=True):
        self.sock = server.connect(timeout=5)
        self.buf = b""
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.decoder.max_header_list_size = 1 << 20
        self.received = []
        self.eof = False
        if preface:
            self.send(PREFACE, SettingsFrame(0))

    def send(self, *items):
        data = b"".join(i.serialize() if isinstance(i, Frame) else i for i in items)
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def block(self, fields):
        return self.encoder.encode(fields)

    def headers(self, stream_id, fields=REQUEST, end_stream=True, end_headers=True):
        flags = set()
        if end_stream:
            flags.add("END_STREAM")
        if end_headers:
            flags.add("END_HEADERS")
        return HeadersFrame(stream_id, self.block(fields), flags=flags)

    def _parse(self):
        while len(self.buf) >= 9:
            frame, length = Frame.parse_frame_header(memoryview(self.buf[:9]))
            if len(self.buf) < 9 + length:
                break
            frame.parse_body(memoryview(self.buf[9:9 + length]))
            self.buf = self.buf[9 + length:]
            if isinstance(frame, (HeadersFrame, ContinuationFrame)):
                frame.decoded = self.decoder.decode(frame.data, raw=False)
            self.received.append(frame)

    def read_until(self, predicate, timeout=5.0):
        """Reads frames until predicate(frame) holds for one (returned) or the peer closes."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for frame in self.received[seen:]:
                if predicate(frame):
                    return frame
            seen = len(self.received)
            if self.eof:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out; frames so far: {self.received}")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(1 << 16)
            except socket.timeout:
                continue
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.eof = True
            self.buf += chunk
            self._parse()

    def goaway(self, timeout=5.0):
        return self.read_until(lambda f: isinstance(f, GoAwayFrame), timeout)

    def read_to_eof(self, timeout=5.0):
        self.read_until(lambda f: False, timeout)
        return self.received

    def rst(self, stream_id, timeout=5.0):
        return self.read_until(
            lambda f: isinstance(f, RstStreamFrame) and f.stream_id == stream_id, timeout)

    def response(self, stream_id, timeout=5.0):
        """Reads one complete response: (status, headers dict, body)."""
        self.read_until(lambda f: f.stream_id == stream_id and "END_STREAM" in f.flags, timeout)
        status, headers, body = None, {}, b""
        for f in self.received:
            if f.stream_id != stream_id:
                continue
            if isinstance(f, HeadersFrame):
                for k, v in f.decoded:
                    if k == ":status":
                        status = int(v)
                    else:
                        headers.setdefault(k, []).append(v)
            elif isinstance(f, DataFrame):
                body += f.data
        return status, headers, body

    def close(self):
        self.sock.close()


def healthy(server):
    """A fresh connection gets a normal answer."""
    c = H2Raw(server)
    c.send(c.headers(1))
    status, _, body = c.response(1)
    c.close()
    return status == 200 and body == b"hello\n"


# --- real clients ------------------------------------------------------------------------

def curl(*args):
    return subprocess.run(["curl", "-s", "--max-time", "10", *args], capture_output=True,
                          text=True, timeout=20)


def test_curl_prior_knowledge(pounce):
    s = pounce(config())
    r = curl("--http2-prior-knowledge", "-D", "-", "-w", "\\n%{http_version}", s.url("/x"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("HTTP/2 200")
    assert "x-test: yes" in r.stdout
    assert "server: pounce" in r.stdout
    assert r.stdout.rstrip().endswith("hello\n\n2") or r.stdout.rstrip().endswith("2")
    assert "hello" in r.stdout


def test_curl_h2c_upgrade(pounce):
    s = pounce(config())
    r = curl("--http2", "-v", "-w", "\\n%{http_version}", s.url("/up"))
    assert r.returncode == 0, r.stderr
    assert "101 Switching Protocols" in r.stderr
    assert r.stdout.strip().endswith("2")
    assert "hello" in r.stdout


def test_h2c_upgrade_with_a_post_body_stays_http11(pounce):
    s = pounce(config())
    r = curl("--http2", "-d", "payload", "-w", "\\n%{http_version}", s.url("/post"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith("1.1")


@pytest.mark.parametrize("settings", ["AAIAAAAC", "AAUAAABk", "AA+A", "AAMAAABkAAMAAABk,x"])
def test_h2c_upgrade_with_bad_settings_is_served_over_http11(pounce, settings):
    """HTTP2-Settings that is not base64url or holds a value SETTINGS may not carry: no 101
    (after it the request would be lost); the request is answered over HTTP/1.1."""
    s = pounce(config())
    sock = s.connect()
    sock.sendall(b"GET /x HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                 b"Upgrade: h2c\r\nHTTP2-Settings: " + settings.encode() + b"\r\n\r\n")
    data = b""
    sock.settimeout(5)
    while b"hello\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    sock.close()
    assert data.startswith(b"HTTP/1.1 200 "), data
    assert b"hello\n" in data


def test_h2c_can_be_turned_off(pounce):
    s = pounce(config(http2="{allow_h2c: false}"))
    r = curl("--http2", "-w", "\\n%{http_version}", s.url("/"))
    assert r.returncode == 0
    assert r.stdout.strip().endswith("1.1")
    r = curl("--http2-prior-knowledge", s.url("/"))
    assert r.returncode != 0 or "hello" not in r.stdout


def test_nghttp_verbose_exchange(pounce):
    s = pounce(config(http2="{max_concurrent_streams: 64, initial_stream_window_size: 131072}"))
    r = subprocess.run(["nghttp", "-nv", s.url("/n")], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert "[SETTINGS_MAX_CONCURRENT_STREAMS(0x03):64]" in out
    assert "[SETTINGS_INITIAL_WINDOW_SIZE(0x04):131072]" in out
    assert "[SETTINGS_ENABLE_CONNECT_PROTOCOL(0x08):1]" in out
    assert "[SETTINGS_NO_RFC7540_PRIORITIES(0x09):1]" in out
    assert re.search(r"recv \(stream_id=\d+\) :status: 200", out)
    assert "recv DATA frame <length=6, flags=0x01" in out


def test_h2load_short_run_has_no_failures(pounce):
    s = pounce(config())
    r = subprocess.run(["h2load", "-n", "2000", "-c", "4", "-m", "10", s.url("/")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2000 succeeded, 0 failed, 0 errored, 0 timeout" in r.stdout, r.stdout
    assert "status codes: 2000 2xx" in r.stdout


def test_h2load_upload(pounce):
    s = pounce(config())
    r = subprocess.run(["h2load", "-n", "200", "-c", "2", "-m", "5", "-d", "/etc/services",
                        s.url("/up")], capture_output=True, text=True, timeout=60)
    assert "200 succeeded, 0 failed" in r.stdout, r.stdout


def test_httpx_http2_prior_knowledge(pounce):
    httpx = pytest.importorskip("httpx")
    s = pounce(config())
    with httpx.Client(http1=False, http2=True) as client:
        for i in range(3):
            r = client.get(s.url(f"/{i}"))
            assert r.status_code == 200
            assert r.http_version == "HTTP/2"
            assert r.text == "hello\n"
            assert r.headers["x-test"] == "yes"


# --- h2spec-style raw frames -------------------------------------------------------------

def test_server_preface_and_settings_ack(pounce):
    """3.5 / 6.5: the server sends SETTINGS first and ACKs ours."""
    s = pounce(config())
    c = H2Raw(s)
    first = c.read_until(lambda f: True)
    assert isinstance(first, SettingsFrame) and "ACK" not in first.flags
    assert c.read_until(lambda f: isinstance(f, SettingsFrame) and "ACK" in f.flags)


def test_invalid_preface_is_not_http2(pounce):
    """3.5: a connection that does not start with the preface is not HTTP/2."""
    s = pounce(config())
    c = H2Raw(s, preface=False)
    c.send(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n")
    data = c.sock.recv(4096)
    assert data.startswith(b"HTTP/1.1 4") or data.startswith(b"HTTP/1.1 5")


def test_preface_followed_by_a_non_settings_frame(pounce):
    """3.5: the preface must be followed by SETTINGS."""
    s = pounce(config())
    c = H2Raw(s, preface=False)
    c.send(PREFACE, PingFrame(0, opaque_data=b"12345678"))
    g = c.goaway()
    assert g is not None and g.error_code == PROTOCOL_ERROR


@pytest.mark.parametrize("settings,code", [
    ({SettingsFrame.INITIAL_WINDOW_SIZE: 2 ** 31}, FLOW_CONTROL_ERROR),
    ({SettingsFrame.ENABLE_PUSH: 2}, PROTOCOL_ERROR),
    ({SettingsFrame.MAX_FRAME_SIZE: 16383}, PROTOCOL_ERROR),
    ({SettingsFrame.MAX_FRAME_SIZE: 2 ** 24}, PROTOCOL_ERROR),
])
def test_invalid_settings_values(pounce, settings, code):
    """6.5.2: out-of-range SETTINGS values are connection errors."""
    s = pounce(config())
    c = H2Raw(s)
    c.send(SettingsFrame(0, settings=settings))
    g = c.goaway()
    assert g is not None and g.error_code == code


def test_settings_ack_with_payload_is_a_frame_size_error(pounce):
    """6.5: SETTINGS with ACK and a payload."""
    s = pounce(config())
    c = H2Raw(s)
    c.send(b"\x00\x00\x06\x04\x01\x00\x00\x00\x00" + b"\x00\x03\x00\x00\x00\x01")
    g = c.goaway()
    assert g is not None and g.error_code == FRAME_SIZE_ERROR


def test_frame_over_max_frame_size(pounce):
    """4.2: a DATA frame over SETTINGS_MAX_FRAME_SIZE."""
    s = pounce(config())
    c = H2Raw(s)
    c.send(c.headers(1, [(":method", "POST")] + REQUEST[1:], end_stream=False),
           DataFrame(1, b"x" * 16385))
    g = c.goaway()
    assert g is not None and g.error_code == FRAME_SIZE_ERROR


def test_ping_is_acked_and_bad_ping_is_a_frame_size_error(pounce):
    """6.7"""
    s = pounce(config())
    c = H2Raw(s)
    c.send(PingFrame(0, opaque_data=b"pounce!!"))
    ack = c.read_until(lambda f: isinstance(f, PingFrame) and "ACK" in f.flags)
    assert ack.opaque_data == b"pounce!!"
    c.send(b"\x00\x00\x04\x06\x00\x00\x00\x00\x00abcd")
    g = c.goaway()
    assert g is not None and g.error_code == FRAME_SIZE_ERROR


def test_window_update_errors(pounce):
    """6.9: zero increment on a stream (stream error) and on the connection; overflow."""
    s = pounce(config())
    c = H2Raw(s)
    c.send(c.headers(1, [(":method", "POST")] + REQUEST[1:], end_stream=False),
           WindowUpdateFrame(1, 0))
    # nghttp2 answers with a connection error, which h2spec accepts as well as a stream one.
    e = c.read_until(lambda f: isinstance(f, GoAwayFrame) or (isinstance(f, RstStreamFrame)
                                                                and f.stream_id == 1))
    assert e is not None and e.error_code == PROTOCOL_ERROR

    c = H2Raw(s)
    c.send(WindowUpdateFrame(0, 0))
    g = c.goaway()
    assert g is not None and g.error_code == PROTOCOL_ERROR

    c = H2Raw(s)
    c.send(WindowUpdateFrame(0, 2 ** 31 - 1))
    g = c.goaway()
    assert g is not None and g.error_code == FLOW_CONTROL_ERROR


def test_rst_stream_errors(pounce):
    """6.4: RST_STREAM on an idle stream; with a bad length."""
    s = pounce(config())
    c = H2Raw(s)
    c.send(RstStreamFrame(1, CANCEL))
    g = c.goaway()
    assert g is not None and g.error_code == PROTOCOL_ERROR
    c = H2Raw(s)
    c.send(c.headers(1, end_stream=False), b"\x00\x00\x03\x03\x00\x00\x00\x00\x01\x00\x00\x08")
    g = c.goaway()
    assert g is not None and g.error_code == FRAME_SIZE_ERROR


def test_client_goaway_is_honoured(pounce):
    """6.8: the server finishes and closes after the client's GOAWAY."""
    s = pounce(config())
    c = H2Raw(s)
    c.send(c.headers(1))
    assert c.response(1)[0] == 200
    c.send(GoAwayFrame(0, last_stream_id=0, error_code=NO_ERROR))
    c.read_to_eof()
    assert c.eof


def test_continuation_errors(pounce):
    """6.10: CONTINUATION without HEADERS; another frame inside a header block."""
    s = pounce(config())
    c = H2Raw(s)
    c.send(ContinuationFrame(1, c.block(REQUEST), flags=["END_HEADERS"]))
    g = c.goaway()
    assert g is not None and g.error_code == PROTOCOL_ERROR
    c = H2Raw(s)
    c.send(c.headers(1, end_headers=False), PingFrame(0, opaque_data=b"12345678"))
    g = c.goaway()
    assert g is not None and g.error_code == PROTOCOL_ERROR


def test_hpack_decoding_error_is_a_compression_error(pounce):
    """4.3: an undecodable header block."""
    s = pounce(config())
    c = H2Raw(s)
    c.send(HeadersFrame(1, b"\xff\xff\xff\xff\xff\xff\xff", flags=["END_HEADERS", "END_STREAM"]))
    g = c.goaway()
    assert g is not None and g.error_code == COMPRESSION_ERROR


def test_stream_state_errors(pounce):
    """5.1: DATA on an idle stream; HEADERS on a half-closed (remote) stream; even stream id."""
    s = pounce(config())
    c = H2Raw(s)
    c.send(DataFrame(1, b"x"))
    g = c.goaway()
    assert g is not None and g.error_code == PROTOCOL_ERROR

    c = H2Raw(s)
    c.send(c.headers(2))
    g = c.goaway()
    assert g is not None and g.error_code == PROTOCOL_ERROR

    c = H2Raw(s)
    c.send(c.headers(1), DataFrame(1, b"late"))
    g = c.read_until(lambda f: isinstance(f, (GoAwayFrame, RstStreamFrame)) and f.stream_id in (0, 1)
                     and getattr(f, "error_code", 0) != 0)
    assert g is not None and g.error_code == STREAM_CLOSED


@pytest.mark.parametrize("fields", [
    [(":method", "GET"), (":scheme", "http"), (":authority", "x")],                   # no :path
    [(":method", "GET"), (":scheme", "http"), (":path", "")],                         # empty path
    [(":scheme", "http"), (":path", "/"), (":authority", "x")],                       # no :method
    REQUEST + [(":path", "/again")],                                                  # duplicate
    REQUEST + [(":bogus", "1")],                                                      # unknown
    [(":method", "GET"), ("x-a", "1"), (":scheme", "http"), (":path", "/")],          # order
    REQUEST + [("Upper-Case", "1")],                                                  # uppercase
    REQUEST + [("connection", "keep-alive")],                                         # conn-specific
    REQUEST + [("keep-alive", "5")],
    REQUEST + [("transfer-encoding", "chunked")],
    REQUEST + [("upgrade", "websocket")],
    REQUEST + [("te", "gzip")],
])
def test_malformed_requests_are_stream_protocol_errors(pounce, fields):
    """8.1.2: invalid pseudo-headers and connection-specific fields reset the stream only."""
    s = pounce(config())
    c = H2Raw(s)
    c.send(c.headers(1, fields))
    r = c.rst(1)
    assert r is not None and r.error_code == PROTOCOL_ERROR
    # The connection goes on.
    c.send(c.headers(3))
    assert c.response(3)[0] == 200


def test_te_trailers_is_allowed(pounce):
    s = pounce(config())
    c = H2Raw(s)
    c.send(c.headers(1, REQUEST + [("te", "trailers")]))
    assert c.response(1)[0] == 200


# --- limits ---------------------------------------------------------------------------------

def test_oversized_headers_get_431(pounce):
    s = pounce(config(http="{max_header_bytes: 2048}"))
    c = H2Raw(s)
    c.send(c.headers(1, REQUEST + [("x-big", "a" * 3000)]))
    assert c.response(1)[0] == 431
    c.send(c.headers(3))
    assert c.response(3)[0] == 200


def test_host_must_agree_with_authority(pounce):
    """RFC 9113 §8.3.1: a Host that differs from :authority is malformed (400); the same
    name in another case, or Host alone, is fine."""
    s = pounce(config())
    c = H2Raw(s)
    c.send(c.headers(1, REQUEST + [("host", "evil.example")]))
    assert c.response(1)[0] == 400
    c.send(c.headers(3, REQUEST + [("host", "LocalHost")]))
    assert c.response(3)[0] == 200
    c.send(c.headers(5, REQUEST + [("host", "localhost"), ("host", "localhost")]))
    r = c.rst(5)
    assert r is not None and r.error_code == PROTOCOL_ERROR
    no_authority = [f for f in REQUEST if f[0] != ":authority"]
    c.send(c.headers(7, no_authority + [("host", "other.example")]))
    assert c.response(7)[0] == 200


def test_declared_body_over_limit_gets_413(pounce):
    s = pounce(config(http="{max_request_bytes: 1024}"))
    c = H2Raw(s)
    c.send(c.headers(1, [(":method", "POST")] + REQUEST[1:] + [("content-length", "5000")],
                     end_stream=False))
    status, _, _ = c.response(1)
    assert status == 413


def test_response_then_rst_no_error_for_an_unread_body(pounce):
    """8.1: a complete response while the request body is still coming: RST_STREAM(NO_ERROR)."""
    s = pounce(config())
    c = H2Raw(s)
    c.send(c.headers(1, [(":method", "POST")] + REQUEST[1:], end_stream=False),
           DataFrame(1, b"part"))
    assert c.response(1)[0] == 200
    r = c.rst(1)
    assert r is not None and r.error_code == NO_ERROR


def test_streams_over_the_limit_are_refused(pounce):
    s = pounce(config(http2="{max_concurrent_streams: 1}"))
    c = H2Raw(s)
    # Both in one write: the first is still open when the second arrives.
    c.send(c.headers(1), c.headers(3))
    r = c.rst(3)
    assert r is not None and r.error_code == REFUSED_STREAM
    assert c.response(1)[0] == 200


def test_extended_connect_is_accepted(pounce):
    """RFC 8441: :protocol with CONNECT reaches the filter chain as a stream."""
    s = pounce(config())
    c = H2Raw(s)
    c.read_until(lambda f: isinstance(f, SettingsFrame) and "ACK" not in f.flags)
    assert any(isinstance(f, SettingsFrame) and f.settings.get(0x8) == 1 for f in c.received)
    c.send(c.headers(1, [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "http"),
                         (":path", "/chat"), (":authority", "x")], end_stream=False))
    status, _, body = c.response(1)
    assert status == 200 and body == b"hello\n"


def test_extended_connect_that_opens_no_websocket_tunnel_is_refused(pounce):
    # RFC 8441: a 2xx would open a tunnel for the protocol; only WebSocket tunnels are served,
    # and a request that ends with its head has no tunnel to carry (RFC 9110 §9.3.6: a 2xx
    # to CONNECT has no Content-Length, which such a 200 had).
    s = pounce(config())
    c = H2Raw(s)
    connect = [(":method", "CONNECT"), (":scheme", "http"), (":path", "/t"), (":authority", "x")]
    c.send(c.headers(1, connect + [(":protocol", "foo")], end_stream=False))
    assert c.response(1)[0] == 501
    c.send(c.headers(3, connect + [(":protocol", "websocket"), ("sec-websocket-version", "13")],
                     end_stream=True))
    assert c.response(3)[0] == 400
    c.send(c.headers(5))
    assert c.response(5)[0] == 200, "the connection goes on"


def test_plain_connect_gets_501(pounce):
    s = pounce(config())
    c = H2Raw(s)
    c.send(c.headers(1, [(":method", "CONNECT"), (":authority", "example.com:443")],
                     end_stream=False))
    assert c.response(1)[0] == 501


def test_head_response_has_no_body(pounce):
    s = pounce(config())
    c = H2Raw(s)
    c.send(c.headers(1, [(":method", "HEAD")] + REQUEST[1:]))
    status, headers, body = c.response(1)
    assert status == 200 and body == b"" and headers["content-length"] == ["6"]


# --- timeouts and draining ------------------------------------------------------------------

def test_idle_connection_gets_goaway_then_close(pounce):
    s = pounce(config(http="{keep_alive_timeout: 300ms}"))
    c = H2Raw(s)
    c.send(c.headers(1))
    assert c.response(1)[0] == 200
    g = c.goaway(timeout=5)
    assert g is not None and g.error_code == NO_ERROR and g.last_stream_id == 1
    c.read_to_eof()
    assert c.eof


def test_incomplete_header_block_times_out(pounce):
    s = pounce(config(http="{header_timeout: 300ms}"))
    c = H2Raw(s)
    c.send(c.headers(1, end_headers=False))
    g = c.goaway(timeout=5)
    assert g is not None
    c.read_to_eof()
    assert c.eof


def test_silent_connection_times_out(pounce):
    s = pounce(config(http="{header_timeout: 300ms}"))
    sock = s.connect()
    sock.sendall(PREFACE[:10])
    sock.settimeout(5)
    assert sock.recv(100) == b""


def test_drain_sends_goaway_and_in_flight_streams_finish(pounce):
    s = pounce(config(http="{shutdown_timeout: 5s}"))
    c = H2Raw(s)
    c.send(c.headers(1))
    assert c.response(1)[0] == 200
    s.signal(signal.SIGTERM)
    g = c.goaway(timeout=5)
    assert g is not None and g.error_code == NO_ERROR and g.last_stream_id == 1
    c.read_to_eof()
    assert c.eof
    assert s.wait_exit(timeout=10) == 0


# --- floods: each ends in GOAWAY(ENHANCE_YOUR_CALM); another connection is unaffected -------

class Bystander:
    """A second client that keeps making requests on its own connection during a flood."""

    def __init__(self, server):
        self.server = server
        self.conn = H2Raw(server)
        self.ok = 0
        self.errors = []
        self.slowest = 0.0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        stream = 1
        while not self.stop.is_set() and stream < 2000:
            start = time.monotonic()
            try:
                self.conn.send(self.conn.headers(stream))
                status, _, body = self.conn.response(stream, timeout=5)
                assert status == 200 and body == b"hello\n", (status, body)
                self.ok += 1
            except Exception as e:  # noqa: BLE001 - reported by finish()
                self.errors.append(repr(e))
                return
            self.slowest = max(self.slowest, time.monotonic() - start)
            stream += 2

    def finish(self):
        self.stop.set()
        self.thread.join(timeout=10)
        assert not self.errors, self.errors
        assert self.ok > 0
        assert self.slowest < 1.0, f"a request took {self.slowest:.3f}s during the flood"
        self.conn.close()


def expect_calm_goaway(server, c, what, timeout=10):
    g = c.goaway(timeout=timeout)
    assert g is not None, c.received[-5:]
    assert g.error_code == ENHANCE_YOUR_CALM, g
    c.read_to_eof(timeout=timeout)
    assert c.eof
    wait_for(lambda: what in server.log(), what=f"'{what}' in the log")


def test_rapid_reset_flood(pounce):
    s = pounce(config())
    bystander = Bystander(s)
    c = H2Raw(s)
    frames = []
    for stream in range(1, 2 * 1000, 2):
        frames.append(c.headers(stream))
        frames.append(RstStreamFrame(stream, CANCEL))
    c.send(*frames)
    expect_calm_goaway(s, c, "rapid reset")
    bystander.finish()
    assert healthy(s)


def test_continuation_flood(pounce):
    s = pounce(config())
    bystander = Bystander(s)
    c = H2Raw(s)
    more = hpack.Encoder().encode([("x-a", "a" * 100)])
    c.send(c.headers(1, end_headers=False),
           *[ContinuationFrame(1, more) for _ in range(5000)])
    expect_calm_goaway(s, c, "CONTINUATION")
    bystander.finish()
    assert healthy(s)


def test_ping_flood(pounce):
    s = pounce(config(http2="{max_outbound_control_frames: 100}"))
    bystander = Bystander(s)
    c = H2Raw(s)
    c.send(*[PingFrame(0, opaque_data=b"%08d" % i) for i in range(3000)])
    expect_calm_goaway(s, c, "HTTP/2 flood")
    bystander.finish()
    assert healthy(s)


def test_settings_flood(pounce):
    s = pounce(config(http2="{max_outbound_control_frames: 100}"))
    bystander = Bystander(s)
    c = H2Raw(s)
    c.send(*[SettingsFrame(0) for _ in range(3000)])
    expect_calm_goaway(s, c, "HTTP/2 flood")
    bystander.finish()
    assert healthy(s)


def test_empty_data_flood(pounce):
    s = pounce(config())
    bystander = Bystander(s)
    c = H2Raw(s)
    c.send(c.headers(1, [(":method", "POST")] + REQUEST[1:], end_stream=False),
           *[DataFrame(1, b"") for _ in range(100)])
    expect_calm_goaway(s, c, "frames without payload")
    bystander.finish()
    assert healthy(s)


def test_hpack_bomb(pounce):
    s = pounce(config(http="{max_header_bytes: 8192}"))
    bystander = Bystander(s)
    c = H2Raw(s)
    block = c.block(REQUEST)
    # A 3000-byte literal added to the dynamic table, then referenced 4000 times.
    value = b"b" * 3000
    block += b"\x40\x06x-bomb" + bytes(hpack.hpack.encode_integer(len(value), 7)) + value
    block += b"\xbe" * 4000
    c.send(HeadersFrame(1, block, flags=["END_HEADERS", "END_STREAM"]))
    expect_calm_goaway(s, c, "HPACK bomb")
    bystander.finish()
    assert healthy(s)


def test_priority_frames_are_harmless(pounce):
    """RFC 9218 server: RFC 7540 PRIORITY frames are accepted and ignored."""
    s = pounce(config())
    c = H2Raw(s)
    c.send(PriorityFrame(1, depends_on=0, stream_weight=16), c.headers(1))
    assert c.response(1)[0] == 200


def test_shipped_http2_config_runs(pounce):
    from conftest import ROOT
    s = pounce(args=["--config-yaml", str(ROOT / "configs/http2.yaml"), "--port", "@PORT@"])
    r = curl("--http2-prior-knowledge", "-w", "\\n%{http_version}", s.url("/"))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Hello over HTTP/2\n\n2"


# --- HTTP/2 over TLS (ALPN "h2") -----------------------------------------------------------

@pytest.fixture(scope="module")
def tls_certs():
    import tempfile
    from test_tls import Certs
    directory = tempfile.mkdtemp(prefix="pounce-h2-tls-")
    c = Certs(directory)
    c.localhost = c.leaf("localhost", "localhost", ["localhost"])
    yield c
    shutil.rmtree(directory, ignore_errors=True)


def tls_h2_config(certs, http2="{}"):
    cert, key = certs.localhost
    return f"""
concurrency: 1
listeners:
- name: main
  address: {{socket_address: {{address: 127.0.0.1, port_value: @PORT@}}}}
  http2: {http2}
  tls:
    certificates:
    - {{certificate_chain_file: {cert}, private_key_file: {key}}}
  filter_chain:
  - name: pounce.filters.direct_response
    typed_config:
      "@type": type.googleapis.com/pounce.filters.direct_response.v1.DirectResponse
      body: "hello\\n"
"""


def https_url(server, path="/"):
    return f"https://localhost:{server.port}{path}"


def test_tls_alpn_h2_with_curl(pounce, tls_certs):
    s = pounce(tls_h2_config(tls_certs))
    r = curl("-v", "--http2", "--cacert", tls_certs.ca[0], "--resolve",
             f"localhost:{s.port}:127.0.0.1", "-w", "\\n%{http_version}", https_url(s))
    assert r.returncode == 0, r.stderr
    assert "ALPN: server accepted h2" in r.stderr
    assert r.stdout == "hello\n\n2"


def test_tls_alpn_without_http2_is_http11(pounce, tls_certs):
    s = pounce(tls_h2_config(tls_certs, http2="{enabled: false}"))
    r = curl("-v", "--http2", "--cacert", tls_certs.ca[0], "--resolve",
             f"localhost:{s.port}:127.0.0.1", "-w", "\\n%{http_version}", https_url(s))
    assert r.returncode == 0, r.stderr
    assert "ALPN: server accepted http/1.1" in r.stderr
    assert r.stdout == "hello\n\n1.1"


def test_tls_nghttp_and_h2load(pounce, tls_certs):
    s = pounce(tls_h2_config(tls_certs))
    url = f"https://127.0.0.1:{s.port}/"
    r = subprocess.run(["nghttp", "-nv", url], capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "[SETTINGS_ENABLE_CONNECT_PROTOCOL(0x08):1]" in r.stdout
    assert re.search(r"recv \(stream_id=\d+\) :status: 200", r.stdout)
    r = subprocess.run(["h2load", "-n", "1000", "-c", "4", "-m", "10", url],
                       capture_output=True, text=True, timeout=60)
    assert "1000 succeeded, 0 failed, 0 errored, 0 timeout" in r.stdout, r.stdout
    assert "Application protocol: h2" in r.stdout


def test_tls_httpx_http2(pounce, tls_certs):
    httpx = pytest.importorskip("httpx")
    s = pounce(tls_h2_config(tls_certs))
    import ssl
    ctx = ssl.create_default_context(cafile=tls_certs.ca[0])
    transport = httpx.HTTPTransport(http2=True, verify=ctx,
                                    local_address="127.0.0.1")
    with httpx.Client(transport=transport) as client:
        r = client.get(f"https://localhost:{s.port}/a", )
        assert r.status_code == 200 and r.http_version == "HTTP/2" and r.text == "hello\n"
