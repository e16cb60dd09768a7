"""The compression filter over real sockets: every compressed body is decoded byte for
byte with Python's zlib, brotli and zstandard modules."""

import gzip
import json
import os
import sys
import zlib

import brotli
import pytest
import zstandard

from conftest import ROOT, RawConnection

APPS = ROOT / "test/integration/apps"
sys.path.insert(0, str(APPS))
from compression_app import document  # noqa: E402 (the app's own body, to compare with)

# The gzip header's OS byte tells the two gzip paths apart on the wire: libdeflate (a
# whole body, compressed in one call) writes 255 ("unknown"), zlib (streamed) writes 3.
ONE_CALL, STREAMED = 255, 3

DECODERS = {
    "gzip": lambda b: zlib.decompress(b, 16 + zlib.MAX_WBITS),
    "br": brotli.decompress,
    # Streamed frames carry no content size, hence max_output_size; an unfinished frame
    # raises ("did not decompress full frame").
    "zstd": lambda b: zstandard.ZstdDecompressor().decompress(b, max_output_size=1 << 28),
}


def json_body(n):
    items = []
    size = 0
    i = 0
    while size < n:
        item = {"id": i, "name": f"item {i}", "tags": ["a", "b", str(i % 7)], "ok": i % 3 == 0}
        items.append(item)
        size += len(json.dumps(item)) + 2
        i += 1
    return (json.dumps(items) + "\n").encode()


def config(tmp_path, compression="", body_file=None, content_type="application/json",
           extra_headers="", http="{}"):
    body = body_file or tmp_path / "body.json"
    if body_file is None:
        body.write_bytes(json_body(50000))
    return f"""
concurrency: 2
listeners:
- name: main
  address: {{socket_address: {{address: 127.0.0.1, port_value: @PORT@}}}}
  http: {http}
  filter_chain:
  - name: pounce.filters.metrics
  - name: pounce.filters.compression
    typed_config:
      "@type": type.googleapis.com/pounce.filters.compression.v1.Compression
      {compression}
  - name: pounce.filters.static_files
    typed_config:
      "@type": type.googleapis.com/pounce.filters.static_files.v1.StaticFiles
      mounts: [{{prefix: /files, directory: "{tmp_path}"}}]
      precompressed: false
  - name: pounce.filters.direct_response
    typed_config:
      "@type": type.googleapis.com/pounce.filters.direct_response.v1.DirectResponse
      body_file: "{body}"
      headers: [{{name: content-type, value: "{content_type}"}}{extra_headers}]
"""


def get(server, path="/", headers=(), method="GET"):
    c = RawConnection(server.connect())
    lines = [f"{method} {path} HTTP/1.1", "Host: x"] + [f"{k}: {v}" for k, v in headers]
    c.send(("\r\n".join(lines) + "\r\n\r\n").encode())
    status, hdrs, body = c.response(head_only=(method == "HEAD"))
    c.close()
    return status, {k: v[0] for k, v in hdrs.items()}, body


@pytest.mark.parametrize("encoding", ["gzip", "br", "zstd"])
def test_each_encoding_decodes_byte_for_byte(pounce, tmp_path, encoding):
    s = pounce(config(tmp_path))
    expected = (tmp_path / "body.json").read_bytes()
    status, headers, body = get(s, headers=[("Accept-Encoding", encoding)])
    assert status == 200
    assert headers["content-encoding"] == encoding
    assert headers["vary"] == "accept-encoding"
    assert "content-length" not in headers
    assert headers["transfer-encoding"] == "chunked"
    assert len(body) < len(expected) / 4
    assert DECODERS[encoding](body) == expected


@pytest.mark.parametrize("encoding", ["gzip", "br", "zstd"])
def test_large_file_is_compressed_chunk_by_chunk(pounce, tmp_path, encoding):
    # 3 MB of text with some entropy: many 64 KiB reads through the stream's file loop.
    words = [os.urandom(4).hex() for _ in range(2000)]
    text = "\n".join(" ".join(words[(i * 7 + k) % 2000] for k in range(10))
                     for i in range(40000)).encode()
    (tmp_path / "big.txt").write_bytes(text)
    s = pounce(config(tmp_path))
    status, headers, body = get(s, "/files/big.txt", [("Accept-Encoding", encoding)])
    assert status == 200 and headers["content-encoding"] == encoding
    assert headers["etag"].startswith('W/"'), "a strong ETag is weakened"
    assert "accept-ranges" not in headers
    assert DECODERS[encoding](body) == text
    if encoding == "gzip":
        assert body[9] == STREAMED, "longer than the buffer limit (1 MiB): streamed"


def test_negotiation_over_the_wire(pounce, tmp_path):
    s = pounce(config(tmp_path))
    for accept, expected in [("gzip, deflate, br, zstd", "zstd"), ("gzip;q=1, br;q=0.9", "gzip"),
                             ("*", "zstd"), ("br;q=0.2, *;q=0.1", "br"),
                             ("identity", None), ("deflate", None), ("", None),
                             ("gzip;q=0, br;q=0, zstd;q=0", None)]:
        status, headers, body = get(s, headers=[("Accept-Encoding", accept)] if accept else [])
        assert status == 200
        assert headers.get("content-encoding") == expected, accept
        if expected:
            assert DECODERS[expected](body) == (tmp_path / "body.json").read_bytes()


def test_levels_are_configurable(pounce, tmp_path):
    s = pounce(config(tmp_path, "gzip_level: 1\n      brotli_quality: 9\n      zstd_level: 15"))
    expected = (tmp_path / "body.json").read_bytes()
    _, _, fast = get(s, headers=[("Accept-Encoding", "gzip")])
    assert fast[8] == 4, "gzip header XFL: fastest level"
    assert DECODERS["gzip"](fast) == expected
    # Level 1 is igzip's level 1: on this 50 KB body no larger than zlib's (nginx's default).
    assert len(fast) <= len(gzip.compress(expected, 1))
    for encoding in ("br", "zstd"):
        _, headers, body = get(s, headers=[("Accept-Encoding", encoding)])
        assert DECODERS[encoding](body) == expected


def test_never_compressed(pounce, tmp_path):
    s = pounce(config(tmp_path))
    ae = [("Accept-Encoding", "gzip, br, zstd")]
    # HEAD
    status, headers, body = get(s, headers=ae, method="HEAD")
    assert status == 200 and "content-encoding" not in headers and body == b""
    assert headers["vary"] == "accept-encoding"
    # Ranges
    (tmp_path / "t.txt").write_bytes(b"abcdefghij" * 100)
    status, headers, body = get(s, "/files/t.txt", ae + [("Range", "bytes=0-9")])
    assert status == 206 and body == b"abcdefghij" and "content-encoding" not in headers
    # 304
    etag = get(s, "/files/t.txt")[1]["etag"]
    status, headers, _ = get(s, "/files/t.txt", ae + [("If-None-Match", etag)])
    assert status == 304 and "content-encoding" not in headers
    # Below min_bytes
    (tmp_path / "small.txt").write_bytes(b"tiny\n")
    status, headers, body = get(s, "/files/small.txt", ae)
    assert body == b"tiny\n" and "content-encoding" not in headers
    # Not an allowed type
    (tmp_path / "img.png").write_bytes(b"\x89PNG" + b"\0" * 5000)
    status, headers, body = get(s, "/files/img.png", ae)
    assert "content-encoding" not in headers and len(body) == 5004


def test_no_transform_and_already_encoded(pounce, tmp_path):
    s = pounce(config(tmp_path, extra_headers=', {name: cache-control, value: "no-transform"}'))
    _, headers, body = get(s, headers=[("Accept-Encoding", "gzip")])
    assert "content-encoding" not in headers
    assert body == (tmp_path / "body.json").read_bytes()
    raw = zlib.compress(b"x" * 1000)
    (tmp_path / "pre.bin").write_bytes(raw)
    s2 = pounce(config(tmp_path, body_file=tmp_path / "pre.bin",
                       extra_headers=", {name: content-encoding, value: deflate}"), name="pre")
    _, headers, body = get(s2, headers=[("Accept-Encoding", "gzip")])
    assert headers["content-encoding"] == "deflate" and body == raw


def test_identity_refused_compresses_even_small_bodies(pounce, tmp_path):
    (tmp_path / "small.json").write_bytes(b'{"a": 1}\n')
    s = pounce(config(tmp_path))
    _, headers, body = get(s, "/files/small.json",
                           [("Accept-Encoding", "br, identity;q=0")])
    assert headers["content-encoding"] == "br"
    assert brotli.decompress(body) == b'{"a": 1}\n'


def test_bytes_in_and_out_are_counted(pounce, tmp_path):
    s = pounce(config(tmp_path))
    expected = (tmp_path / "body.json").read_bytes()
    sizes = {}
    for encoding in ("gzip", "br", "zstd"):
        _, _, body = get(s, headers=[("Accept-Encoding", encoding)])
        sizes[encoding] = len(body)
    _, _, text = get(s, "/metrics")
    text = text.decode()
    for encoding, size in sizes.items():
        assert (f'compression_bytes_in_total{{listener="main",encoding="{encoding}"}} '
                f'{len(expected)}\n') in text
        assert (f'compression_bytes_out_total{{listener="main",encoding="{encoding}"}} '
                f'{size}\n') in text


# --- whole bodies (one call) and streams ---------------------------------------------------

def test_a_whole_gzip_body_is_compressed_in_one_call(pounce, tmp_path):
    # direct_response sends its body in one piece; a 36 KB file is one read.
    (tmp_path / "data.json").write_bytes(json_body(36000))
    s = pounce(config(tmp_path))
    for path, expected in [("/", (tmp_path / "body.json").read_bytes()),
                           ("/files/data.json", (tmp_path / "data.json").read_bytes())]:
        status, headers, body = get(s, path, [("Accept-Encoding", "gzip")])
        assert status == 200 and headers["content-encoding"] == "gzip", path
        assert "content-length" not in headers
        assert body[9] == ONE_CALL, path
        assert gzip.decompress(body) == expected, path
        assert zlib.decompress(body, 16 + zlib.MAX_WBITS) == expected, path
    # Every level, byte for byte.
    for level in range(1, 10):
        s = pounce(config(tmp_path, f"gzip_level: {level}"), name=f"level{level}")
        _, headers, body = get(s, headers=[("Accept-Encoding", "gzip")])
        assert body[9] == ONE_CALL
        assert gzip.decompress(body) == (tmp_path / "body.json").read_bytes(), level


def test_a_file_read_in_pieces_is_held_up_to_the_buffer_limit(pounce, tmp_path):
    # 300 KB: five 64 KiB reads. Its Content-Length fits the default buffer limit (1 MiB),
    # so the filter holds the reads and compresses the whole file in one call.
    text = json_body(300000)
    (tmp_path / "big.json").write_bytes(text)
    s = pounce(config(tmp_path))
    status, headers, body = get(s, "/files/big.json", [("Accept-Encoding", "gzip")])
    assert status == 200 and headers["content-encoding"] == "gzip"
    assert body[9] == ONE_CALL
    assert gzip.decompress(body) == text
    # Over a smaller buffer limit the same file is streamed read by read.
    s = pounce(config(tmp_path, http="{buffer_limit_bytes: 65536}"), name="small-buffer")
    status, headers, body = get(s, "/files/big.json", [("Accept-Encoding", "gzip")])
    assert status == 200 and headers["content-encoding"] == "gzip"
    assert body[9] == STREAMED
    assert gzip.decompress(body) == text


def asgi_config(compression="encodings: [gzip]"):
    return f"""
concurrency: 1
listeners:
- name: main
  address: {{socket_address: {{address: 127.0.0.1, port_value: @PORT@}}}}
  filter_chain:
  - name: pounce.filters.compression
    typed_config:
      "@type": type.googleapis.com/pounce.filters.compression.v1.Compression
      {compression}
  - name: pounce.filters.asgi
    typed_config:
      "@type": type.googleapis.com/pounce.filters.asgi.v1.Asgi
      app: compression_app:app
      app_dir: [{APPS}]
"""


class ChunkedReader:
    """Reads a chunked response body as it arrives, decoding gzip on the way."""

    def __init__(self, sock):
        self.sock = sock
        self.raw = b""
        self.head = None
        self.decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self.text = b""
        self.ended = False

    def _more(self):
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("closed")
        self.raw += data

    def read_head(self):
        while b"\r\n\r\n" not in self.raw:
            self._more()
        head, _, self.raw = self.raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.head = {k.strip().lower(): v.strip()
                     for k, _, v in (line.partition(":") for line in lines[1:])}
        return int(lines[0].split(" ")[1])

    def _chunks(self):
        while True:
            line_end = self.raw.find(b"\r\n")
            if line_end < 0:
                return
            size = int(self.raw[:line_end], 16)
            if size == 0:
                self.ended = self.raw.endswith(b"\r\n\r\n")
                return
            if len(self.raw) < line_end + 2 + size + 2:
                return
            self.text += self.decoder.decompress(self.raw[line_end + 2:line_end + 2 + size])
            self.raw = self.raw[line_end + 2 + size + 2:]

    def read_until(self, expected):
        """Reads until the decoded text is `expected` (fails on anything longer)."""
        self._chunks()
        while self.text != expected:
            assert expected.startswith(self.text), self.text
            self._more()
            self._chunks()

    def read_to_end(self):
        self._chunks()
        while not self.ended:
            self._more()
            self._chunks()


def test_server_sent_events_are_flushed_one_by_one(pounce):
    s = pounce(asgi_config())
    sock = s.connect(timeout=10)
    sock.sendall(b"GET /events?n=3 HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n")
    r = ChunkedReader(sock)
    assert r.read_head() == 200
    assert r.head["content-encoding"] == "gzip"
    assert r.head["content-type"] == "text/event-stream"
    expected = b""
    for i in range(3):
        # The app sends event i, then waits for /next: the event must reach the client
        # (decodable) while the response is still open.
        expected += f"data: event {i}\n\n".encode()
        r.read_until(expected)
        assert not r.ended
        assert get(s, "/next")[2] == b"ok"
    r.read_to_end()
    assert r.decoder.eof and r.text == expected
    sock.close()


def test_an_app_body_of_declared_length_is_compressed_in_one_call(pounce):
    s = pounce(asgi_config())
    for parts in (1, 4, 16):
        status, headers, body = get(s, f"/pieces?parts={parts}&items=2000",
                                    [("Accept-Encoding", "gzip")])
        assert status == 200 and headers["content-encoding"] == "gzip"
        assert body[9] == ONE_CALL, parts
        assert gzip.decompress(body) == document(2000), parts

