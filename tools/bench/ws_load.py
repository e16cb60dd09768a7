#!/usr/bin/env python3
"""A bounded WebSocket echo load client for tools/bench (suite "websocket").

Opens a few connections, keeps `window` messages in flight on each (a new one goes out for
every echo that comes back), and counts the echoes received over `duration` seconds. Raw
sockets and pre-masked frames keep the client's own CPU per message small: the server under
test, not the client, should be what limits the rate. Every message has the same size and the
server does not compress (the client offers no extension), so each echo is a frame of a known
length and counting bytes counts messages; the first echoes are parsed and checked in full.

  ws_load.py --port 8000 --duration 5 [--connections 4] [--window 64] [--size 32] [--binary]

Prints one JSON object: {"messages": N, "seconds": S, "rate": N/S, "errors": E}.
"""

import argparse
import base64
import json
import os
import selectors
import socket
import struct
import sys
import time


def client_frame(payload, binary):
    key = os.urandom(4)
    n = len(payload)
    first = 0x82 if binary else 0x81
    if n < 126:
        head = struct.pack("!BB", first, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", first, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", first, 0x80 | 127, n)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + key + masked


def server_frame_length(n):
    return n + (2 if n < 126 else 4 if n < 65536 else 10)


class Conn:
    def __init__(self, port, path, frame, window):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed during the handshake")
            head += chunk
        head, _, rest = head.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(f"handshake refused: {head[:40]!r}")
        self.sock.setblocking(False)
        # All frames are the same bytes, so what is due is always a slice of `blob` starting
        # `phase` bytes into a frame (a partial send leaves the rest of a frame to go).
        self.frame_len = len(frame)
        self.blob = memoryview(frame * (window + 1))
        self.phase = 0
        self.pending = len(frame) * window  # the first window goes out at once
        self.received = len(rest)
        self.head = bytearray(rest)         # the first echoes, checked at the end
        self.counted = 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/echo")
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--binary", action="store_true")
    args = parser.parse_args()

    payload = (b"pounce-" * (args.size // 7 + 1))[:args.size]
    frame = client_frame(payload, args.binary)
    echo_len = server_frame_length(args.size)
    sel = selectors.DefaultSelector()
    conns = [Conn(args.port, args.path, frame, args.window) for _ in range(args.connections)]
    for c in conns:
        sel.register(c.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
    errors = 0
    buf = bytearray(1 << 18)
    started = time.monotonic()
    deadline = started + args.duration
    while conns and time.monotonic() < deadline:
        for key, events in sel.select(timeout=0.1):
            c = key.data
            if events & selectors.EVENT_READ:
                try:
                    n = c.sock.recv_into(buf)
                except BlockingIOError:
                    n = -1
                except OSError:
                    n = 0
                if n == 0:
                    errors += 1
                    sel.unregister(c.sock)
                    conns.remove(c)
                    continue
                if n > 0:
                    c.received += n
                    if len(c.head) < 8 * echo_len:
                        c.head += buf[:min(n, 8 * echo_len - len(c.head))]
                    done = c.received // echo_len - c.counted
                    c.counted += done
                    c.pending += done * c.frame_len  # one new message per echo
            if c.pending:
                try:
                    n = c.sock.send(c.blob[c.phase:c.phase + c.pending])
                    c.pending -= n
                    c.phase = (c.phase + n) % c.frame_len
                except BlockingIOError:
                    pass
            mask = selectors.EVENT_READ | (selectors.EVENT_WRITE if c.pending else 0)
            if key.events != mask:
                sel.modify(c.sock, mask, c)
    elapsed = time.monotonic() - started
    messages = sum(c.counted for c in conns)
    expected_type = 0x82 if args.binary else 0x81
    for c in conns:
        head = bytes(c.head[:8 * echo_len])
        for i in range(0, len(head) - echo_len + 1, echo_len):
            f = head[i:i + echo_len]
            if f[0] != expected_type or f[echo_len - args.size:] != payload:
                errors += 1
                break
        c.sock.close()
    print(json.dumps({"messages": messages, "seconds": elapsed, "rate": messages / elapsed,
                      "errors": errors}))


if __name__ == "__main__":
    sys.exit(main())
