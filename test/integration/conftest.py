"""Integration test helpers: start the real pounce binary on free ports and clean up.

Every server a test starts is stopped (SIGTERM, then SIGKILL) when the test ends, also when
it fails. Readiness is awaited by polling the listening port, never by sleeping.
"""

import os
import pathlib
import signal
import socket
import subprocess
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BINARY = pathlib.Path(os.environ.get("POUNCE_BINARY", ROOT / "bazel-bin/source/server/pounce"))


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=10.0, interval=0.01, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Server:
    """One running pounce process."""

    def __init__(self, tmp_path, config=None, args=(), port=None, name="pounce", env=None,
                 wait=True, uds=None, cwd=None):
        self.tmp_path = tmp_path
        self.port = port or free_port()
        self.uds = uds
        self.args = list(args)
        self.log_path = tmp_path / f"{name}-{self.port}.log"
        self.config_path = None
        if config is not None:
            self.config_path = tmp_path / f"{name}-{self.port}.yaml"
            self.config_path.write_text(self.render(config))
        self.env = dict(os.environ)
        self.env.update(env or {})
        self.cwd = cwd
        self.proc = None
        self.wait = wait

    def render(self, text):
        return (text.replace("@PORT@", str(self.port))
                .replace("@TMP@", str(self.tmp_path))
                .replace("@ROOT@", str(ROOT)))

    def command(self):
        cmd = [str(BINARY)]
        if self.config_path is not None:
            cmd += ["--config-yaml", str(self.config_path)]
        return cmd + [self.render(a) for a in self.args]

    def start(self):
        self.log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.command(), stdout=self.log_file,
                                     stderr=subprocess.STDOUT, env=self.env, cwd=self.cwd)
        if self.wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=30.0):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"pounce exited with {self.proc.returncode} before it was ready:\n{self.log()}")
            try:
                if self.uds:
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    s.connect(self.uds)
                else:
                    s = socket.create_connection(("127.0.0.1", self.port), timeout=0.2)
                s.close()
                return True
            except OSError:
                return False

        wait_for(ready, timeout=timeout, what=f"pounce to listen on {self.port}")

    def url(self, path="/"):
        return f"http://127.0.0.1:{self.port}{path}"

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout=20.0):
        return self.proc.wait(timeout=timeout)

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.log_file.close()

    def connect(self, timeout=5.0):
        if self.uds:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(timeout)
            s.connect(self.uds)
            return s
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)


@pytest.fixture
def pounce(tmp_path):
    """pounce(config_yaml, args=[...]) starts a server and returns it; all are stopped after."""
    servers = []

    def start(config=None, args=(), **kwargs):
        server = Server(tmp_path, config=config, args=args, **kwargs)
        servers.append(server)
        return server.start()

    yield start
    for s in servers:
        s.stop()


def run_pounce(*args, timeout=60, cwd=None, env=None):
    """Runs the binary to completion (validate, print-config, errors)."""
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([str(BINARY), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=e)


# --- raw HTTP/1.1 over a socket -----------------------------------------------------------

def recv_to_close(sock):
    """Everything the peer sends until it closes the connection."""
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def recv_until(sock, marker, limit=1 << 24):
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
        if len(data) > limit:
            break
    return data


def read_response(sock, head_only=False):
    """Reads one HTTP/1.1 response; returns (status, headers dict-of-lists, body, raw)."""
    buf = getattr(sock, "_pending", b"")
    sock._pending = b""  # taken: recv() must not hand the same bytes out again
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed before a response head: {buf!r}")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers.setdefault(k.strip().lower(), []).append(v.strip())
    body = b""
    if head_only or status in (100, 101, 103, 204, 304) or 100 <= status < 200:
        sock._pending = rest
        return status, headers, b"", head
    if "content-length" in headers:
        n = int(headers["content-length"][0])
        # (a bytearray: appending to bytes copies everything read so far, which for a body
        # of megabytes keeps this client busy for seconds while the server waits on it)
        received = bytearray(rest)
        while len(received) < n:
            chunk = sock.recv(262144)
            if not chunk:
                break
            received += chunk
        body, rest = bytes(received[:n]), bytes(received[n:])
    elif headers.get("transfer-encoding", [""])[0] == "chunked":
        def more():
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"connection closed in a chunked body after {body!r}")
            return chunk
        while True:
            while b"\r\n" not in rest:
                rest += more()
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                while b"\r\n\r\n" not in (b"\r\n" + rest):
                    rest += more()
                trailer, _, rest = (b"\r\n" + rest).partition(b"\r\n\r\n")
                break
            while len(rest) < size + 2:
                rest += more()
            body += rest[:size]
            rest = rest[size + 2:]
    else:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        body, rest = rest, b""
    sock._pending = rest
    return status, headers, body, head


class RawConnection:
    """A socket that remembers bytes read past the current response."""

    def __init__(self, sock):
        self.sock = sock
        self._pending = b""

    def send(self, data):
        self.sock.sendall(data)

    def recv(self, n):
        if self._pending:
            data, self._pending = self._pending, b""
            return data
        return self.sock.recv(n)

    def response(self, head_only=False):
        status, headers, body, head = read_response(self, head_only)
        return status, headers, body

    def closed_by_peer(self, timeout=5.0):
        self.sock.settimeout(timeout)
        try:
            data = self._pending or self.sock.recv(65536)
            self._pending = b""
            while data:
                data = self.sock.recv(65536)
            return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()
