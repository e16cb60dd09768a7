"""ASGI WebSockets end to end: the websocket scope and events, denial responses, subprotocols,
close codes both ways, errors, timers, flow control both ways and draining, with
python3-websockets as the client and raw frames where a polite client will not do."""

import asyncio
import json
import select
import signal
import socket
import struct
import threading
import time

import httpx
import pytest
import websockets

from conftest import ROOT, wait_for
from ws_helpers import (BINARY, CLOSE, CONT, PING, PONG, TEXT, WsClient, close_payload, frame,
                        handshake_request)

APPS = ROOT / "test/integration/apps"


def ws_config(websocket="", http="{}"):
    return f"""
concurrency: 1
listeners:
- name: main
  address: {{socket_address: {{address: 127.0.0.1, port_value: @PORT@}}}}
  http: {http}
  filter_chain:
  - name: pounce.filters.asgi
    typed_config:
      "@type": type.googleapis.com/pounce.filters.asgi.v1.Asgi
      app: "ws_app:app"
      app_dir: [{APPS}]
      websocket: {{{websocket}}}
"""


@pytest.fixture
def server(pounce):
    return pounce(ws_config())


def url(server, path):
    return f"ws://127.0.0.1:{server.port}{path}"


def events(server):
    return httpx.get(server.url("/events"), timeout=10).json()


def wait_event(server, timeout=10.0, **match):
    def found():
        for e in events(server):
            if all(e.get(k) == v for k, v in match.items()):
                return e
        return None
    return wait_for(found, timeout=timeout, what=f"app event {match}")


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# --- python3-websockets: the everyday client ------------------------------------------------

@pytest.mark.parametrize("compression", [None, "deflate"])
def test_echo_text_and_bytes_with_websockets_client(server, compression):
    async def go():
        async with websockets.connect(url(server, "/echo"), compression=compression,
                                      max_size=None) as ws:
            assert (ws.response_headers.get("sec-websocket-extensions") is not None) == \
                (compression == "deflate")
            for message in ["hello", "héllo ✓", "", b"\x00\xff" * 10, b"", "x" * 70000,
                            bytes(range(256)) * 4096]:
                await ws.send(message)
                assert await ws.recv() == message
            # Many in flight at once come back in order.
            for i in range(200):
                await ws.send(f"m{i}")
            assert [await ws.recv() for _ in range(200)] == [f"m{i}" for i in range(200)]
            await ws.close(code=4000, reason="done")
        assert ws.close_code == 4000
    run(go())
    assert wait_event(server, path="/echo")["disconnect"] == 4000
    assert wait_event(server, path="/echo")["reason"] == "done"


def test_a_session_is_logged_with_its_frames_each_way(pounce, tmp_path):
    log = tmp_path / "access.json"
    cfg = ws_config().replace(
        "  filter_chain:\n",
        "  filter_chain:\n  - name: pounce.filters.access_log\n    typed_config: "
        '{"@type": type.googleapis.com/pounce.filters.access_log.v1.AccessLog, '
        f"path: {log}, format: json, flush_interval: 0s}}\n")
    s = pounce(cfg)

    async def go():
        async with websockets.connect(url(s, "/echo"), compression=None) as ws:
            for _ in range(3):
                await ws.send(b"x" * 1000)
                assert await ws.recv() == b"x" * 1000
    run(go())
    wait_for(lambda: log.exists() and log.read_text().strip(), what="the access log line")
    entry = json.loads(log.read_text().splitlines()[0])
    assert entry["status"] == 101 and entry["path"] == "/echo"
    # 3 frames of 1000 bytes each way, with their headers (masked from the client), and the
    # close frames.
    assert 3 * 1004 <= entry["bytes"] < 3 * 1004 + 64, entry
    assert 3 * 1008 <= entry["request_bytes"] < 3 * 1008 + 64, entry


def test_compression_parameters_negotiated(server):
    async def go():
        from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
        factory = ClientPerMessageDeflateFactory(client_max_window_bits=True,
                                                 server_max_window_bits=10)
        async with websockets.connect(url(server, "/echo"), extensions=[factory]) as ws:
            header = ws.response_headers["sec-websocket-extensions"]
            assert "permessage-deflate" in header
            assert "server_max_window_bits=10" in header
            assert "client_max_window_bits=12" in header
            text = json.dumps([{"id": i, "name": "pounce", "ok": True} for i in range(500)])
            await ws.send(text)
            assert await ws.recv() == text
    run(go())


def test_scope(pounce):
    s = pounce(ws_config())

    async def go():
        async with websockets.connect(url(s, "/scope?a=1&b=%20"),
                                      extra_headers={"X-Dup": "1", "x-dup": "2"},
                                      subprotocols=["one", "two"]) as ws:
            return json.loads(await ws.recv())
    scope = run(go())
    assert scope["type"] == "websocket"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.5"}
    assert scope["http_version"] == "1.1"
    assert scope["scheme"] == "ws"
    assert "method" not in scope
    assert scope["path"] == "/scope"
    assert scope["raw_path"] == "/scope"
    assert scope["query_string"] == "a=1&b=%20"
    assert scope["root_path"] == ""
    assert scope["subprotocols"] == ["one", "two"]
    headers = scope["headers"]
    assert [v for n, v in headers if n == "x-dup"] == ["1", "2"]
    assert ["upgrade", "websocket"] in headers
    assert scope["client"][0] == "127.0.0.1" and isinstance(scope["client"][1], int)
    assert scope["server"] == ["127.0.0.1", s.port]
    assert scope["state"] == {"lifespan": "on"}
    assert scope["extensions"]["websocket.http.response"] == {}
    assert "http.response.trailers" not in scope["extensions"]


def test_plain_http_still_served_next_to_websockets(server):
    async def go():
        async with websockets.connect(url(server, "/scope")) as ws:
            return json.loads(await ws.recv())["extensions"]
    for _ in range(3):
        assert "websocket.http.response" in run(go())
        # WebSocket scopes leave the HTTP scopes' extensions alone.
        extensions = httpx.get(server.url("/http-extensions"), timeout=10).json()
        assert "websocket.http.response" not in extensions
        assert "http.response.trailers" in extensions
    assert httpx.get(server.url("/anything"), timeout=10).text == "plain http"


def test_wss_over_tls(pounce):
    import ssl
    tls = ROOT / "examples/tls"
    cfg = ws_config().replace("  http: {}", f"""  http: {{}}
  tls:
    certificates:
    - certificate_chain_file: {tls}/localhost.pem
      private_key_file: {tls}/localhost.key""")
    s = pounce(cfg)
    ctx = ssl.create_default_context(cafile=str(tls / "ca.pem"))

    async def go():
        async with websockets.connect(f"wss://localhost:{s.port}/scope", ssl=ctx) as ws:
            scope = json.loads(await ws.recv())
        async with websockets.connect(f"wss://localhost:{s.port}/echo", ssl=ctx,
                                      compression="deflate", max_size=None) as ws:
            for message in ["over tls", b"\x01" * 300000]:
                await ws.send(message)
                assert await ws.recv() == message
        return scope
    scope = run(go())
    assert scope["scheme"] == "wss"
    assert "tls" in scope["extensions"]
    # Frames that arrive with the handshake in one TLS record wait for the 101.
    from ws_helpers import handshake_request
    raw = ctx.wrap_socket(socket.create_connection(("127.0.0.1", s.port), timeout=10),
                          server_hostname="localhost")
    raw.sendall(handshake_request("/echo") + frame(TEXT, "pipelined over tls"))
    c = WsClient.__new__(WsClient)
    c.sock, c.buf, c.headers = raw, b"", {}
    assert c.read_head() == 101
    assert c.recv_message() == "pipelined over tls"
    c.close()


def h2_connection(server):
    """An h2c connection (prior knowledge) whose server allows extended CONNECT (RFC 8441)."""
    import h2.config
    import h2.connection
    import h2.exceptions
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    try:
        data = sock.recv(65536)
        conn.receive_data(data)
    except (h2.exceptions.ProtocolError, ConnectionError):
        data = b""
    if not data or conn.remote_settings.enable_connect_protocol != 1:
        sock.close()
        raise AssertionError("the listener must speak h2c with SETTINGS_ENABLE_CONNECT_PROTOCOL")
    sock.sendall(conn.data_to_send())
    return sock, conn


def test_websockets_over_http2_extended_connect(server):
    import h2.events
    sock, conn = h2_connection(server)

    def connect(path, extra=()):
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, [(":method", "CONNECT"), (":protocol", "websocket"),
                                (":scheme", "http"), (":path", path),
                                (":authority", "localhost"), ("sec-websocket-version", "13"),
                                *extra])
        return sid

    streams = {}

    def pump(until):
        while not until():
            data = sock.recv(65536)
            assert data, "connection closed"
            for e in conn.receive_data(data):
                st = streams.setdefault(getattr(e, "stream_id", 0), {"data": b""})
                if isinstance(e, h2.events.ResponseReceived):
                    st["headers"] = dict(e.headers)
                elif isinstance(e, h2.events.DataReceived):
                    st["data"] += e.data
                    conn.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
                elif isinstance(e, h2.events.StreamEnded):
                    st["ended"] = True
            sock.sendall(conn.data_to_send())

    # Two WebSockets and a plain request multiplexed on one connection.
    a = connect("/echo")
    b = connect("/subprotocol", [("sec-websocket-protocol", "chat.v2")])
    conn.send_data(a, frame(TEXT, "over h2"))
    get = conn.get_next_available_stream_id()
    conn.send_headers(get, [(":method", "GET"), (":scheme", "http"), (":path", "/plain"),
                            (":authority", "localhost")], end_stream=True)
    sock.sendall(conn.data_to_send())
    pump(lambda: streams.get(a, {}).get("data", b"").endswith(b"over h2")
         and streams.get(get, {}).get("ended") and b"chat.v2" in streams.get(b, {}).get("data", b""))
    assert streams[a]["headers"][b":status"] == b"200"
    assert b"sec-websocket-accept" not in streams[a]["headers"]
    assert streams[a]["data"] == b"\x81\x07over h2"
    assert streams[b]["headers"][b"sec-websocket-protocol"] == b"chat.v2"
    assert streams[get]["data"] == b"plain http"
    # The client closes one; the server echoes the close and ends the stream.
    conn.send_data(a, frame(CLOSE, close_payload(1000, "h2")))
    sock.sendall(conn.data_to_send())
    pump(lambda: streams[a].get("ended"))
    assert streams[a]["data"].endswith(b"\x88\x04\x03\xe8h2")
    assert wait_event(server, path="/echo", disconnect=1000)["reason"] == "h2"
    # The other still echoes.
    conn.send_data(b, frame(BINARY, b"\x00\x01"))
    sock.sendall(conn.data_to_send())
    pump(lambda: streams[b]["data"].endswith(b"\x82\x02\x00\x01"))
    sock.close()
    wait_event(server, path="/subprotocol", disconnect=1006)


# --- the handshake: subprotocols, denial, refusal -------------------------------------------

def test_subprotocol_chosen_and_extra_headers(server):
    async def go():
        async with websockets.connect(url(server, "/subprotocol"),
                                      subprotocols=["chat.v1", "chat.v2"]) as ws:
            assert ws.subprotocol == "chat.v2"
            assert ws.response_headers["x-extra"] == "yes"
            assert ws.response_headers.get_all("sec-websocket-protocol") == ["chat.v2"]
            assert ws.response_headers["set-cookie"] == "a=1"
            assert json.loads(await ws.recv()) == ["chat.v1", "chat.v2"]
    run(go())


def test_no_subprotocol_when_none_offered(server):
    c = WsClient(server.port, "/subprotocol")
    assert c.status == 101
    assert "sec-websocket-protocol" not in c.headers
    assert json.loads(c.recv_message()) == []
    c.close()


def test_subprotocol_not_offered_raises_in_app(server):
    c = WsClient(server.port, "/bad-subprotocol", extra=["Sec-WebSocket-Protocol: a, b"])
    assert c.status == 403
    assert wait_event(server, path="/bad-subprotocol")["error"] == "ValueError"


def test_close_before_accept_is_403_without_upgrade(server):
    c = WsClient(server.port, "/deny")
    assert c.status == 403
    assert "upgrade" not in c.headers
    c.read_body()
    assert c.closed_by_server()
    assert wait_event(server, path="/deny")["after"] == "websocket.disconnect"


def test_websocket_http_response_denial(server):
    c = WsClient(server.port, "/deny-http")
    assert c.status == 401
    assert c.headers["www-authenticate"] == ["Token"]
    assert "upgrade" not in c.headers
    body = b""
    while True:  # chunked: two body messages
        chunk = c.sock.recv(65536)
        if not chunk:
            break
        body += chunk
    assert b"no " in c.buf + body and b"entry" in c.buf + body
    wait_event(server, path="/deny-http")


def test_websockets_client_sees_denial_status(server):
    async def go():
        with pytest.raises(websockets.exceptions.InvalidStatusCode) as info:
            async with websockets.connect(url(server, "/deny-http")):
                pass
        return info.value.status_code
    assert run(go()) == 401


@pytest.mark.parametrize("extra,version,status", [
    ([], "12", 426),
    ([], None, 426),
    (["Sec-WebSocket-Protocol: a b"], "13", 400),
])
def test_invalid_handshakes_never_reach_the_app(server, extra, version, status):
    from ws_helpers import handshake_request
    before = len(events(server))
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    sock.sendall(handshake_request("/echo", extra=extra, version=version))
    c = WsClient.__new__(WsClient)
    c.sock, c.buf, c.headers = sock, b"", {}
    assert c.read_head() == status
    if status == 426:
        assert c.headers["sec-websocket-version"] == ["13"]
        assert c.headers["upgrade"] == ["websocket"]  # RFC 9110 §15.5.22: a 426 names it
    c.close()
    assert len(events(server)) == before


def test_a_handshake_with_content_length_0_is_accepted(server):
    """`Content-Length: 0` is no body (RFC 9110 §8.6): the handshake goes on."""
    from ws_helpers import handshake_request
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    sock.sendall(handshake_request("/echo", extra=["Content-Length: 0"]))
    c = WsClient.__new__(WsClient)
    c.sock, c.buf, c.headers = sock, b"", {}
    assert c.read_head() == 101
    c.close()


def test_bad_key_is_400(server):
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    sock.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n")
    assert sock.recv(100).startswith(b"HTTP/1.1 400")
    sock.close()


def test_disabled_websocket_answers_400(pounce):
    s = pounce(ws_config("enabled: false"))
    c = WsClient(s.port, "/echo")
    assert c.status == 400
    assert httpx.get(s.url("/events"), timeout=10).json() == []


# --- the app's side: close codes, errors, send after close -----------------------------------

def test_app_close_code_and_reason_reach_client(server):
    c = WsClient(server.port, "/close?code=4002")
    c.send_frame(TEXT, "see you")
    assert c.expect_close(4002) == "see you"
    c.send_frame(CLOSE, close_payload(4002))  # answer the close
    assert c.closed_by_server()
    e = wait_event(server, path="/close")
    assert e["send_after_close"] == ["ClientDisconnected", "ClientDisconnected"]
    assert e["disconnect"] == 4002


def test_send_after_disconnect_raises_oserror(server):
    async def go():
        async with websockets.connect(url(server, "/send-after-disconnect")):
            pass
    run(go())
    e = wait_event(server, path="/send-after-disconnect")
    assert e["raised"] == "ClientDisconnected" and e["is_oserror"]


def test_invalid_send_messages_raise_and_keep_the_connection(server):
    c = WsClient(server.port, "/bad-send")
    assert c.recv_message() == "still open"
    e = wait_event(server, path="/bad-send")
    assert e["errors"] == ["ValueError", "ValueError", "TypeError", "ValueError",
                           "RuntimeError", "ValueError"]
    c.send_frame(TEXT, "echo?")
    assert c.recv_message() == "echo?"
    c.close()


def test_exception_before_accept_is_500(server):
    c = WsClient(server.port, "/raise-before-accept")
    assert c.status == 500
    assert "refusing by exception" in server.log()


def test_return_before_accept_is_500(server):
    c = WsClient(server.port, "/return-before-accept")
    assert c.status == 500


def test_exception_after_accept_closes_1011(server):
    c = WsClient(server.port, "/raise-after-accept")
    c.send_frame(TEXT, "go")
    c.expect_close(1011)
    assert "boom after accept" in server.log()


def test_return_after_accept_closes_1000(server):
    c = WsClient(server.port, "/return-after-accept")
    assert c.recv_message() == "bye"
    c.expect_close(1000)


# --- disconnect codes the app receives ------------------------------------------------------

@pytest.mark.parametrize("payload,code,reason", [
    (close_payload(1000, "normal"), 1000, "normal"),
    (close_payload(4999, "é"), 4999, "é"),
    (b"", 1005, ""),
])
def test_client_close_reaches_app(server, payload, code, reason):
    c = WsClient(server.port, "/echo")
    c.send_frame(CLOSE, payload)
    fin, _, opcode, echoed = c.recv_frame()
    assert opcode == CLOSE and echoed == payload  # echoed back
    assert c.closed_by_server()
    e = wait_event(server, path="/echo", disconnect=code)
    assert e["reason"] == reason


def test_connection_dropped_is_1006(server):
    c = WsClient(server.port, "/echo")
    c.send_frame(TEXT, "x")
    assert c.recv_message() == "x"
    c.sock.shutdown(socket.SHUT_RDWR)
    c.close()
    wait_event(server, path="/echo", disconnect=1006)


# --- raw frames, after Autobahn's categories --------------------------------------------------

def test_frames_pipelined_behind_the_handshake(server):
    c = WsClient(server.port, "/echo", pipelined=frame(TEXT, "early") + frame(BINARY, b"bird"))
    assert c.status == 101
    assert c.recv_message() == "early"
    assert c.recv_message() == b"bird"
    c.close()


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 200000])
def test_framing_lengths(server, size):
    c = WsClient(server.port, "/echo")
    c.send_frame(BINARY, b"\xab" * size)
    assert c.recv_message() == b"\xab" * size
    c.close()


def test_frames_split_at_every_byte(server):
    c = WsClient(server.port, "/echo")
    data = frame(TEXT, "split ✓ here") + frame(PING, b"p") + frame(BINARY, b"\x01\x02")
    for i in range(len(data)):
        c.send(data[i:i + 1])
    # The pong comes from the I/O thread, the echoes from the app: only their own order holds.
    got = [c.recv_frame()[2:] for _ in range(3)]
    assert [f for f in got if f[0] != PONG] == [(TEXT, "split ✓ here".encode()),
                                                (BINARY, b"\x01\x02")]
    assert (PONG, b"p") in got
    c.close()


def test_ping_answered_with_same_payload_and_pong_ignored(server):
    c = WsClient(server.port, "/echo")
    c.send_frame(PONG, b"unsolicited")
    c.send_frame(PING, b"x" * 125)
    assert c.recv_frame()[2:] == (PONG, b"x" * 125)
    c.send_frame(PING)
    assert c.recv_frame()[2:] == (PONG, b"")
    c.close()


def test_fragmented_message_with_ping_in_between(server):
    c = WsClient(server.port, "/echo")
    c.send_frame(TEXT, "frag", fin=False)
    c.send_frame(PING, b"mid")
    c.send_frame(CONT, "men", fin=False)
    c.send_frame(CONT, "ted", fin=True)
    assert c.recv_frame()[2:] == (PONG, b"mid")
    assert c.recv_message() == "fragmented"
    c.close()


def test_utf8_split_across_fragments(server):
    c = WsClient(server.port, "/echo")
    snowman = "☃".encode()
    c.send_frame(TEXT, snowman[:1], fin=False)
    c.send_frame(CONT, snowman[1:2], fin=False)
    c.send_frame(CONT, snowman[2:] + "𝄞".encode(), fin=True)
    assert c.recv_message() == "☃𝄞"
    c.close()


@pytest.mark.parametrize("frames,code", [
    ([frame(TEXT, "x", rsv2=True)], 1002),                     # reserved bit
    ([frame(TEXT, "x", rsv1=True)], 1002),                     # RSV1 without deflate
    ([frame(0x3, b"")], 1002),                                 # reserved opcode
    ([frame(0xB, b"")], 1002),                                 # reserved control opcode
    ([frame(TEXT, "x", mask=False)], 1002),                    # unmasked client frame
    ([frame(PING, b"x" * 126)], 1002),                         # control frame too long
    ([frame(PING, b"", fin=False)], 1002),                     # fragmented control frame
    ([frame(CONT, b"x")], 1002),                               # continuation, nothing open
    ([frame(TEXT, "a", fin=False), frame(TEXT, "b")], 1002),   # new message mid-fragments
    ([frame(CLOSE, b"\x03")], 1002),                           # 1-byte close payload
    ([frame(CLOSE, close_payload(999))], 1002),                # invalid close code
    ([frame(CLOSE, close_payload(1006))], 1002),               # reserved close code
    ([frame(TEXT, b"\xc0\xaf")], 1007),                        # overlong UTF-8
    ([frame(TEXT, b"\xed\xa0\x80")], 1007),                    # surrogate
    ([frame(TEXT, "ok".encode() + b"\xff", fin=False)], 1007),  # fails before the end
    ([frame(CLOSE, struct.pack("!H", 1000) + b"\xff")], 1007),  # bad UTF-8 reason
])
def test_protocol_violations_close_with_code(server, frames, code):
    c = WsClient(server.port, "/echo")
    for f in frames:
        c.send(f)
    c.expect_close(code)
    assert c.closed_by_server()
    wait_event(server, path="/echo", disconnect=code)


def test_message_too_big_is_1009(pounce):
    s = pounce(ws_config("max_message_size: 1000"))
    c = WsClient(s.port, "/echo")
    c.send_frame(TEXT, "y" * 1000)
    assert c.recv_message() == "y" * 1000
    c.send_frame(TEXT, "y" * 600, fin=False)
    c.send_frame(CONT, "y" * 600)  # fragments add up
    c.expect_close(1009)
    wait_event(s, path="/echo", disconnect=1009)
    big = WsClient(s.port, "/echo")
    big.send(frame(BINARY, b"z" * 5000)[:20])  # refused from the header alone
    big.expect_close(1009)


def test_compressed_bomb_is_1009(pounce):
    s = pounce(ws_config("max_message_size: 100000"))

    async def go():
        async with websockets.connect(url(s, "/echo"), compression="deflate",
                                      max_size=None) as ws:
            await ws.send("a" * 10_000_000)  # ~10 KB on the wire, 10 MB inflated
            with pytest.raises(websockets.exceptions.ConnectionClosed) as info:
                await ws.recv()
            return info.value.rcvd.code
    assert run(go()) == 1009


def test_wsproto_compressed_fragmented_messages(server):
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import (AcceptConnection, BytesMessage, CloseConnection, Message,
                                Request, TextMessage)
    from wsproto.extensions import PerMessageDeflate

    ws = WSConnection(ConnectionType.CLIENT)
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(ws.send(Request(host="localhost", target="/echo",
                                 extensions=[PerMessageDeflate()])))
    pending = []

    def next_event():
        while not pending:
            ws.receive_data(sock.recv(65536) or None)
            pending.extend(ws.events())
        return pending.pop(0)

    accepted = next_event()
    assert isinstance(accepted, AcceptConnection)
    assert isinstance(accepted.extensions[0], PerMessageDeflate)
    text = "compressed " * 5000
    # One message in three compressed fragments.
    sock.sendall(ws.send(TextMessage(data=text[:1000], message_finished=False)))
    sock.sendall(ws.send(TextMessage(data=text[1000:30000], message_finished=False)))
    sock.sendall(ws.send(TextMessage(data=text[30000:], message_finished=True)))
    sock.sendall(ws.send(Message(data=b"\x00" * 100000)))
    received = []
    while len(received) < 2:
        event = next_event()
        if isinstance(event, (TextMessage, BytesMessage)):
            received.append(event.data)
            assert event.message_finished  # whole messages only, in one frame each
    assert received == [text, b"\x00" * 100000]
    sock.sendall(ws.send(CloseConnection(code=1000, reason="wsproto")))
    assert isinstance(next_event(), CloseConnection)
    sock.close()
    wait_event(server, path="/echo", disconnect=1000, reason="wsproto")


def test_compressed_invalid_utf8_is_1007(server):
    import zlib
    c = WsClient(server.port, "/echo", extra=["Sec-WebSocket-Extensions: permessage-deflate"])
    assert "permessage-deflate" in c.headers["sec-websocket-extensions"][0]
    compressor = zlib.compressobj(wbits=-15)
    good = compressor.compress("fine ✓".encode()) + compressor.flush(zlib.Z_SYNC_FLUSH)
    c.send_frame(TEXT, good[:-4], rsv1=True)
    fin, rsv1, opcode, payload = c.recv_frame()
    assert (fin, rsv1, opcode) == (True, True, TEXT)
    inflate = zlib.decompressobj(wbits=-15)
    assert inflate.decompress(payload + b"\x00\x00\xff\xff").decode() == "fine ✓"
    bad = compressor.compress(b"bad \xff\xfe") + compressor.flush(zlib.Z_SYNC_FLUSH)
    c.send_frame(TEXT, bad[:-4], rsv1=True)
    c.expect_close(1007)


# --- timers ---------------------------------------------------------------------------------

def test_keepalive_ping_and_timeout(pounce):
    s = pounce(ws_config("ping_interval: 0.2s, ping_timeout: 0.3s"))
    c = WsClient(s.port, "/echo")
    started = time.monotonic()
    fin, _, opcode, payload = c.recv_frame()
    assert opcode == PING
    assert time.monotonic() - started < 2
    c.send_frame(PONG, payload)  # answered: the connection lives on
    fin, _, opcode, payload = c.recv_frame()
    assert opcode == PING
    # Not answered this time: 1011.
    c.expect_close(1011)
    wait_event(s, path="/echo", disconnect=1011)


def test_idle_websocket_outlives_http_timers(pounce):
    s = pounce(ws_config("ping_interval: 0s",
                         http="{header_timeout: 0.3s, keep_alive_timeout: 0.3s, "
                              "request_timeout: 0.5s}"))
    c = WsClient(s.port, "/hold")
    time.sleep(1.5)
    c.send_frame(TEXT, "still here")
    assert c.recv_message() == "still here"
    c.close()


def test_handshake_not_answered_within_request_timeout_is_504(pounce):
    s = pounce(ws_config(http="{request_timeout: 0.3s}"))
    c = WsClient(s.port, "/slow-handshake")
    assert c.status == 504
    e = wait_event(s, path="/slow-handshake")
    assert e["cancelled"] and e["after"] == 1006


def test_close_timeout_when_client_never_answers(pounce):
    s = pounce(ws_config("close_timeout: 0.3s"))
    c = WsClient(s.port, "/close")
    c.send_frame(TEXT, "bye")
    c.expect_close(4001)
    started = time.monotonic()
    assert c.closed_by_server(timeout=5)
    assert time.monotonic() - started < 3
    assert wait_event(s, path="/close")["disconnect"] == 1006


# --- flow control both ways -------------------------------------------------------------------

def test_send_blocks_while_client_does_not_read(server):
    size, count = 65536, 1000  # 62 MiB if nothing held it back
    c = WsClient(server.port, f"/flood?size={size}&count={count}")
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    rss_before = rss_kib(server.proc.pid)

    def sent():
        return max([e["sent"] for e in events(server) if e.get("path") == "/flood"] or [0])
    wait_for(lambda: sent() > 0, what="the app to start sending")
    time.sleep(1.0)
    stalled = sent()
    time.sleep(0.5)
    assert sent() == stalled, "send() kept going although nobody reads"
    assert stalled * size < 32 * 1024 * 1024, f"{stalled} messages went out unread"
    assert rss_kib(server.proc.pid) - rss_before < 60 * 1024
    # Reading again lets the app finish.
    got = 0
    c.sock.settimeout(20)
    while got < count:
        fin, _, opcode, payload = c.recv_frame()
        assert opcode == BINARY and len(payload) == size
        got += 1
    wait_event(server, path="/flood", done=True)
    c.close()


def test_send_waiting_for_room_fails_when_the_client_leaves(server):
    c = WsClient(server.port, "/flood?size=65536&count=100000")
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    wait_event(server, path="/flood", sent=17)
    time.sleep(0.5)  # send() is now waiting for room
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()  # reset: no close frame
    e = wait_event(server, path="/flood", send_failed="ClientDisconnected")
    assert e["disconnect"] == 1006


def push(sock, data, offset, stall=0.5):
    """Writes data[offset:] until done or until the socket takes nothing for `stall`
    seconds; returns the new offset."""
    sock.setblocking(False)
    view = memoryview(data)
    while offset < len(data):
        _, writable, _ = select.select([], [sock], [], stall)
        if not writable:
            break
        try:
            offset += sock.send(view[offset:offset + (1 << 20)])
        except BlockingIOError:
            pass
    sock.setblocking(True)
    return offset


def test_reading_pauses_while_app_does_not_receive(server):
    count = 800  # 50 MiB if the server read it all
    c = WsClient(server.port, f"/slow-receiver?name=slow1&expect={count}")
    data = frame(BINARY, b"q" * 65536) * count
    rss_before = rss_kib(server.proc.pid)
    offset = push(c.sock, data, 0)
    assert offset < len(data), "the server read everything although the app receives nothing"
    assert offset < 32 * 1024 * 1024
    assert rss_kib(server.proc.pid) - rss_before < 60 * 1024
    # The app starts receiving: the rest goes through and everything arrives.
    httpx.get(server.url("/go?name=slow1"), timeout=10)
    c.sock.settimeout(30)
    c.sock.sendall(data[offset:])
    assert c.recv_message() == f"{count} {count * 65536}"
    c.close()


def test_ping_flood_from_a_client_that_does_not_read_is_bounded(server):
    # Every ping makes a pong; a client that never reads them must stop being read.
    c = WsClient(server.port, "/echo")
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    data = frame(PING, b"p" * 125) * 400000  # 52 MB of pings, 51 MB of pongs
    rss_before = rss_kib(server.proc.pid)
    offset = push(c.sock, data, 0)
    assert offset < 32 * 1024 * 1024, "the server kept reading pings nobody reads the pongs of"
    assert rss_kib(server.proc.pid) - rss_before < 60 * 1024
    # Reading the pongs lets the rest through.
    reader = threading.Thread(target=lambda: [c.recv_frame() for _ in range(400000)])
    reader.start()
    c.sock.settimeout(60)
    c.sock.sendall(data[offset:])
    reader.join(60)
    assert not reader.is_alive()
    c.close()


# --- draining -------------------------------------------------------------------------------

def test_sigterm_closes_open_websockets_with_1001(pounce):
    s = pounce(ws_config())
    c = WsClient(s.port, "/echo")
    c.send_frame(TEXT, "before")
    assert c.recv_message() == "before"
    s.signal(signal.SIGTERM)
    assert c.expect_close(1001) == "server shutting down"
    c.send_frame(CLOSE, close_payload(1001))
    assert c.closed_by_server()
    assert s.wait_exit(timeout=15) == 0
    assert 'WSEVENT {"path": "/echo", "disconnect": 1001' in s.log()


def test_a_websocket_opened_on_a_connection_that_drains_is_closed_with_1001(pounce):
    # An idle keep-alive connection of a listener replaced by a reload stays open for a
    # short grace; a WebSocket handshake that comes in it is accepted, and told at once
    # that the server is going away (it would otherwise be cut without a close frame at
    # the old listener's shutdown_timeout).
    from admin_helpers import admin_for, config
    chain = ("  - name: pounce.filters.asgi\n    typed_config:\n"
             '      "@type": type.googleapis.com/pounce.filters.asgi.v1.Asgi\n'
             f'      app: "ws_app:app"\n      app_dir: [{APPS}]\n')
    s = pounce(config(chain=chain, http="{server_header: first}", concurrency=1))
    admin = admin_for(s)
    c = WsClient(s.port, connect=False, timeout=5)
    c.send(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
    assert c.read_head() == 200
    if "content-length" in c.headers:
        c.read_body()
    else:  # chunked: up to the last chunk
        while not c.buf.endswith(b"0\r\n\r\n"):
            c.buf += c.sock.recv(65536)
        c.buf = b""
    s.config_path.write_text(s.config_path.read_text().replace("server_header: first",
                                                               "server_header: second"))
    assert admin.json("POST", "/reload")["status"] == "applied"
    c.send(handshake_request("/echo"))
    assert c.read_head() == 101
    assert c.expect_close(1001) == "server shutting down"


def test_sigterm_with_unresponsive_client_ends_within_shutdown_timeout(pounce):
    s = pounce(ws_config("close_timeout: 30s", http="{shutdown_timeout: 1s}"))
    c = WsClient(s.port, "/echo")
    started = time.monotonic()
    s.signal(signal.SIGTERM)
    c.expect_close(1001)
    assert s.wait_exit(timeout=15) == 0
    assert time.monotonic() - started < 5
    assert 'WSEVENT {"path": "/echo", "disconnect": 1006' in s.log()


# --- a framework: the Starlette example through its shipped config ---------------------------

def test_starlette_example_websocket(pounce):
    s = pounce(None, args=["--config-yaml", str(ROOT / "configs/starlette.yaml"), "--port", "@PORT@"])

    async def chat():
        async with websockets.connect(url(s, "/ws"), subprotocols=["echo.v1"]) as ws:
            assert ws.subprotocol == "echo.v1"
            await ws.send(json.dumps({"hello": "ws"}))
            assert json.loads(await ws.recv()) == {"echo": {"hello": "ws"}, "count": 1}
            await ws.send(json.dumps({"bye": True}))
            with pytest.raises(websockets.exceptions.ConnectionClosed):
                await ws.recv()
            return ws.close_code, ws.close_reason

    assert run(chat()) == (4000, "2 messages")

    async def missing_route():
        # Starlette closes a WebSocket to an unknown path before accepting it: 403.
        with pytest.raises(websockets.exceptions.InvalidStatusCode) as info:
            async with websockets.connect(url(s, "/nope")):
                pass
        return info.value.status_code

    assert run(missing_route()) == 403
    assert httpx.get(s.url("/"), timeout=10).json()["hello"] == "starlette"
