"""Interop: third-party WebSocket clients (python3-websockets, python3-wsproto) against the
pounce WebSocket library, through test/http/websocket/echo_server.cc on loopback.

Run by Bazel (//test/http/websocket:interop_test), or directly:
  ECHO_SERVER=bazel-bin/test/http/websocket/echo_server \
    /usr/bin/python3 -m pytest -q test/http/websocket/interop_test.py
"""

import asyncio
import os
import select
import socket
import struct
import subprocess
import zlib

import pytest
import websockets
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from wsproto import ConnectionType, WSConnection
from wsproto.events import (AcceptConnection, CloseConnection, Ping, Pong, RejectConnection,
                            Request, TextMessage)
from wsproto.extensions import PerMessageDeflate

HERE = os.path.dirname(os.path.abspath(__file__))
ECHO_SERVER = os.environ.get("ECHO_SERVER") or os.path.join(
    HERE, "..", "..", "..", "bazel-bin", "test", "http", "websocket", "echo_server")
TIMEOUT = 10


class EchoServer:
    """One echo_server process serving one connection."""

    def __init__(self, flags):
        self.proc = subprocess.Popen([ECHO_SERVER, *flags], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], TIMEOUT)
        assert ready, "echo server did not start"
        line = self.proc.stdout.readline()
        assert line.startswith("PORT "), line
        self.port = int(line.split()[1])
        self.url = f"ws://127.0.0.1:{self.port}/echo"

    def finish(self):
        """Waits for the server to exit; returns its report lines."""
        try:
            out, err = self.proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            pytest.fail(f"echo server did not exit: {out!r} {err!r}")
        assert self.proc.returncode == 0, err
        return out.splitlines()

    def closed_line(self):
        return next(l for l in self.finish() if l.startswith("CLOSED "))


@pytest.fixture
def echo_server():
    servers = []

    def start(*flags):
        server = EchoServer(flags)
        servers.append(server)
        return server

    yield start
    for server in servers:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.communicate()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT))


# --- python3-websockets ---------------------------------------------------------------------

MESSAGES = ["", "hello", "κόσμε 😀", "x" * 125, "y" * 126, "z" * 65535, "w" * 65536,
            b"", b"\x00\xff" * 1000, bytes(range(256)) * 4096]


async def echo_all(url, messages, **kwargs):
    async with websockets.connect(url, ping_interval=None, max_size=None, **kwargs) as ws:
        for m in messages:
            await ws.send(m)
            assert await ws.recv() == m
        return ws.extensions, ws.subprotocol, ws.response_headers


def test_echo_without_compression(echo_server):
    server = echo_server("--no-compression")
    extensions, _, headers = run(echo_all(server.url, MESSAGES, compression=None))
    assert extensions == []
    assert headers["x-echo-server"] == "pounce"
    assert server.closed_line() == "CLOSED 1000 PeerClosed "


def test_echo_client_offers_compression_server_declines(echo_server):
    server = echo_server("--no-compression")
    extensions, _, _ = run(echo_all(server.url, MESSAGES[:3]))
    assert extensions == []
    assert "ACCEPTED extensions= subprotocol=" in server.finish()


def test_echo_with_default_compression(echo_server):
    server = echo_server()
    big = "compressible text " * 50000
    extensions, _, _ = run(echo_all(server.url, MESSAGES + [big, big, big]))
    assert len(extensions) == 1
    pmd = extensions[0]
    assert pmd.name == "permessage-deflate"
    # The server's defaults: 12-bit windows both ways, context kept.
    assert pmd.remote_max_window_bits == 12
    assert pmd.local_max_window_bits == 12
    assert not pmd.remote_no_context_takeover
    assert not pmd.local_no_context_takeover
    lines = server.finish()
    assert ("ACCEPTED extensions=permessage-deflate; server_max_window_bits=12; "
            "client_max_window_bits=12 subprotocol=") in lines
    assert "CLOSED 1000 PeerClosed " in lines


@pytest.mark.parametrize("params", [
    dict(server_no_context_takeover=True, client_no_context_takeover=True),
    dict(server_max_window_bits=9, client_max_window_bits=9),
    dict(server_max_window_bits=15, client_max_window_bits=True),
    dict(client_no_context_takeover=True, server_max_window_bits=10),
])
def test_echo_with_negotiated_compression_parameters(echo_server, params):
    server = echo_server("--server-window-bits", "15", "--client-window-bits", "15")
    factory = ClientPerMessageDeflateFactory(**params)
    text = "".join(f"message {i} with some repetition " for i in range(3000))
    extensions, _, _ = run(echo_all(server.url, MESSAGES + [text] * 3, compression=None,
                                    extensions=[factory]))
    pmd = extensions[0]
    assert pmd.remote_no_context_takeover == params.get("server_no_context_takeover", False)
    assert pmd.local_no_context_takeover == params.get("client_no_context_takeover", False)
    assert pmd.remote_max_window_bits == params.get("server_max_window_bits", 15)
    assert "CLOSED 1000 PeerClosed " in server.finish()


def test_server_side_context_takeover_policy(echo_server):
    server = echo_server("--server-no-context-takeover", "--client-no-context-takeover",
                         "--server-window-bits", "10")
    extensions, _, _ = run(echo_all(server.url, ["abc" * 1000] * 4))
    pmd = extensions[0]
    assert pmd.remote_no_context_takeover and pmd.local_no_context_takeover
    assert pmd.remote_max_window_bits == 10
    server.finish()


def test_fragmented_messages_both_ways(echo_server):
    server = echo_server("--fragment-size", "1000")

    async def client():
        async with websockets.connect(server.url, ping_interval=None) as ws:
            await ws.send(["frag", "mented", " text"])
            assert await ws.recv() == "fragmented text"
            await ws.send([b"\x01" * 3000, b"\x02" * 3000])
            assert await ws.recv() == b"\x01" * 3000 + b"\x02" * 3000
            # Outgoing messages over 1000 bytes arrive in fragments; the client reassembles.
            await ws.send("q" * 50000)
            assert await ws.recv() == "q" * 50000

    run(client())
    server.finish()


def test_client_ping_and_server_ping(echo_server):
    server = echo_server()

    async def client():
        async with websockets.connect(server.url, ping_interval=None) as ws:
            waiter = await ws.ping(b"are you there")
            await asyncio.wait_for(waiter, 5)
            await ws.send("!ping hello")
            await ws.send("sync")
            assert await ws.recv() == "sync"

    run(client())
    lines = server.finish()
    assert "PONG hello" in lines


def test_keepalive_pings_are_answered(echo_server):
    server = echo_server("--ping-interval-ms", "100", "--ping-timeout-ms", "3000")

    async def client():
        async with websockets.connect(server.url, ping_interval=None) as ws:
            await asyncio.sleep(0.5)
            await ws.send("still open")
            assert await ws.recv() == "still open"

    run(client())
    lines = server.finish()
    assert any(l.startswith("PONG ") for l in lines), lines
    assert "CLOSED 1000 PeerClosed " in lines


def test_client_close_code_and_reason_are_echoed(echo_server):
    server = echo_server()

    async def client():
        ws = await websockets.connect(server.url, ping_interval=None)
        await ws.close(4001, "client leaving")
        return ws.close_code, ws.close_reason

    assert run(client()) == (4001, "client leaving")
    assert server.closed_line() == "CLOSED 4001 PeerClosed client leaving"


def test_server_initiated_close(echo_server):
    server = echo_server()

    async def client():
        async with websockets.connect(server.url, ping_interval=None) as ws:
            await ws.send("!close 4000 server says bye")
            with pytest.raises(websockets.ConnectionClosed) as info:
                await ws.recv()
            return info.value.rcvd.code, info.value.rcvd.reason

    assert run(client()) == (4000, "server says bye")
    assert server.closed_line() == "CLOSED 4000 CloseHandshakeCompleted server says bye"


def test_message_over_the_limit_is_1009(echo_server):
    server = echo_server("--max-message-size", "1000")

    async def client():
        async with websockets.connect(server.url, ping_interval=None, compression=None) as ws:
            await ws.send("a" * 1000)
            assert await ws.recv() == "a" * 1000
            await ws.send("a" * 1001)
            with pytest.raises(websockets.ConnectionClosedError) as info:
                await ws.recv()
            return info.value.rcvd.code

    assert run(client()) == 1009
    assert server.closed_line().startswith("CLOSED 1009 ProtocolError")


def test_compressed_message_over_the_limit_is_1009(echo_server):
    server = echo_server("--max-message-size", "100000")

    async def client():
        async with websockets.connect(server.url, ping_interval=None) as ws:
            await ws.send("\x00" * 5_000_000)  # compresses to a few KiB
            with pytest.raises(websockets.ConnectionClosedError) as info:
                await ws.recv()
            return info.value.rcvd.code

    assert run(client()) == 1009
    assert server.closed_line().startswith("CLOSED 1009 ProtocolError")


def test_subprotocol_selection(echo_server):
    server = echo_server("--subprotocols", "superchat,other")
    _, subprotocol, _ = run(echo_all(server.url, ["hi"], subprotocols=["chat", "superchat"]))
    assert subprotocol == "superchat"
    assert "ACCEPTED extensions=permessage-deflate; server_max_window_bits=12; "\
           "client_max_window_bits=12 subprotocol=superchat" in server.finish()


# --- raw frames (Autobahn-style categories) through wsproto ---------------------------------

def frame(opcode, payload, fin=True, rsv=0, mask=True):
    header = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    n = len(payload)
    bit = 0x80 if mask else 0
    if n < 126:
        header += bytes([bit | n])
    elif n < 65536:
        header += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        header += bytes([bit | 127]) + struct.pack("!Q", n)
    if not mask:
        return header + payload
    key = b"\x12\x34\x56\x78"
    return header + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class RawClient:
    """Handshake with wsproto, then raw bytes out and wsproto events in."""

    def __init__(self, port, extensions=()):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.sock.sendall(self.ws.send(Request(host="127.0.0.1", target="/raw",
                                               extensions=list(extensions))))
        self.pending = []
        while not any(isinstance(e, AcceptConnection) for e in self.pending):
            data = self.sock.recv(65536)
            assert data, "no handshake response"
            self.ws.receive_data(data)
            self.pending.extend(self.ws.events())
        self.accept = next(e for e in self.pending if isinstance(e, AcceptConnection))
        self.pending = [e for e in self.pending if not isinstance(e, AcceptConnection)]

    def send(self, data):
        self.sock.sendall(data)

    def events_until_close(self, until_eof=False):
        """Everything the server sends until its close frame (or, with `until_eof`, until it
        closes the connection; the client never answers the close)."""
        events = self.pending
        while until_eof or not any(isinstance(e, CloseConnection) for e in events):
            data = self.sock.recv(65536)
            if not data:
                break
            self.ws.receive_data(data)
            events.extend(self.ws.events())
        self.sock.close()
        return events

    def close_code(self):
        closes = [e for e in self.events_until_close() if isinstance(e, CloseConnection)]
        assert closes, "server sent no close frame"
        return closes[0].code


@pytest.mark.parametrize("name,data,code", [
    ("framing: unmasked frame", frame(0x1, b"hello", mask=False), 1002),
    ("reserved bits: RSV2", frame(0x1, b"x", rsv=2), 1002),
    ("reserved bits: RSV1 without extension", frame(0x1, b"x", rsv=4), 1002),
    ("opcodes: reserved data opcode", frame(0x3, b""), 1002),
    ("opcodes: reserved control opcode", frame(0xB, b""), 1002),
    ("pings: 126-byte ping", frame(0x9, b"p" * 126), 1002),
    ("fragmentation: fragmented ping", frame(0x9, b"p", fin=False), 1002),
    ("fragmentation: continuation without start", frame(0x0, b"c"), 1002),
    ("fragmentation: new message inside fragmented one",
     frame(0x1, b"a", fin=False) + frame(0x1, b"b"), 1002),
    ("utf8: invalid text", frame(0x1, "κόσμε".encode() + b"\xed\xa0\x80edited"), 1007),
    ("utf8: invalid in second fragment",
     frame(0x1, b"valid", fin=False) + frame(0x0, b"\xf4\x90\x80\x80"), 1007),
    ("utf8: truncated at message end", frame(0x1, b"ab\xf0\x9f\x98"), 1007),
    ("close: 1-byte payload", frame(0x8, b"\x03"), 1002),
    ("close: reserved code 1005", frame(0x8, struct.pack("!H", 1005)), 1002),
    ("close: code 2999", frame(0x8, struct.pack("!H", 2999)), 1002),
    ("close: invalid UTF-8 reason", frame(0x8, struct.pack("!H", 1000) + b"\xc0\xaf"), 1007),
])
def test_raw_protocol_violations(echo_server, name, data, code):
    server = echo_server()
    client = RawClient(server.port)
    client.send(data)
    assert client.close_code() == code, name
    assert server.closed_line().startswith(f"CLOSED {code} ProtocolError"), name


def test_raw_valid_close_codes_are_echoed(echo_server):
    # 1014 is valid too (session_test), but this wsproto's close-code table ends at 1013.
    for code in (1000, 1001, 1003, 1007, 1011, 1012, 1013, 3000, 4999):
        server = echo_server()
        client = RawClient(server.port)
        client.send(frame(0x8, struct.pack("!H", code) + b"why"))
        assert client.close_code() == code
        assert server.closed_line() == f"CLOSED {code} PeerClosed why"


def test_raw_ping_pong_and_fragments_split_into_single_bytes(echo_server):
    server = echo_server()
    client = RawClient(server.port)
    client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    data = (frame(0x9, b"ping!") + frame(0x1, "Hel".encode(), fin=False) + frame(0x9, b"") +
            frame(0x0, "lo wörld".encode()) + frame(0x8, struct.pack("!H", 1000)))
    for i in range(len(data)):
        client.send(data[i:i + 1])
    events = client.events_until_close()
    assert [type(e).__name__ for e in events] == ["Pong", "Pong", "TextMessage",
                                                   "CloseConnection"]
    assert events[0].payload == b"ping!"
    assert events[2].data == "Hello wörld"
    assert server.closed_line() == "CLOSED 1000 PeerClosed "


def test_raw_compressed_invalid_utf8_is_1007(echo_server):
    server = echo_server()
    client = RawClient(server.port, [PerMessageDeflate(client_max_window_bits=15)])
    assert client.accept.extensions
    z = zlib.compressobj(wbits=-15)
    payload = z.compress(b"fine \xed\xa0\x80 not fine") + z.flush(zlib.Z_SYNC_FLUSH)
    client.send(frame(0x1, payload[:-4], rsv=4))
    assert client.close_code() == 1007
    assert server.closed_line().startswith("CLOSED 1007 ProtocolError")


def test_raw_compression_bomb_is_1009(echo_server):
    server = echo_server("--max-message-size", "65536")
    client = RawClient(server.port, [PerMessageDeflate()])
    z = zlib.compressobj(wbits=-12)
    bomb = b"".join(z.compress(b"\x00" * (1 << 20)) for _ in range(64)) + z.flush(zlib.Z_SYNC_FLUSH)
    client.send(frame(0x2, bomb[:-4], rsv=4))
    assert client.close_code() == 1009
    assert server.closed_line().startswith("CLOSED 1009 ProtocolError")


def test_raw_keepalive_timeout_without_pong_is_1011(echo_server):
    server = echo_server("--ping-interval-ms", "100", "--ping-timeout-ms", "200")
    client = RawClient(server.port)
    events = client.events_until_close()  # wsproto does not answer pings by itself
    assert isinstance(events[0], Ping)
    assert events[-1].code == 1011
    assert server.closed_line() == "CLOSED 1011 PingTimeout keepalive ping timeout"


def test_raw_close_timeout_when_the_peer_never_answers(echo_server):
    server = echo_server("--close-timeout-ms", "200")
    client = RawClient(server.port)
    client.send(frame(0x1, b"!close 1001 going away"))
    events = client.events_until_close(until_eof=True)
    assert events[-1].code == 1001
    # The client never sends its close frame: the server gives up.
    assert server.closed_line() == "CLOSED 1006 CloseTimeout close handshake timed out"


# --- handshake denials ----------------------------------------------------------------------

def raw_handshake(port, request):
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(request.encode())
        response = b""
        while b"\r\n\r\n" not in response:
            data = sock.recv(4096)
            if not data:
                break
            response += data
    return response.decode()


def handshake_request(**overrides):
    headers = {"Host": "127.0.0.1", "Upgrade": "websocket", "Connection": "Upgrade",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13"}
    headers.update(overrides)
    lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items() if v is not None)
    return f"GET /chat HTTP/1.1\r\n{lines}\r\n"


def test_handshake_accept_key(echo_server):
    server = echo_server()
    response = raw_handshake(server.port, handshake_request())
    assert response.startswith("HTTP/1.1 101 ")
    assert "sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in response
    server.proc.kill()


def test_handshake_wrong_version_gets_426(echo_server):
    server = echo_server()
    response = raw_handshake(server.port, handshake_request(**{"Sec-WebSocket-Version": "8"}))
    assert response.startswith("HTTP/1.1 426 ")
    assert "sec-websocket-version: 13\r\n" in response
    assert server.finish()[0].startswith("REJECTED 426")


@pytest.mark.parametrize("overrides", [
    {"Sec-WebSocket-Key": None},
    {"Sec-WebSocket-Key": "c2hvcnQ="},
    {"Connection": "keep-alive"},
])
def test_handshake_malformed_gets_400(echo_server, overrides):
    server = echo_server()
    response = raw_handshake(server.port, handshake_request(**overrides))
    assert response.startswith("HTTP/1.1 400 ")
    assert server.finish()[0].startswith("REJECTED 400")
