"""Helpers for the admin API's integration tests: configs with an admin listener, calls to
the admin API, and bounded load generators that count every failure."""

import http.client
import json
import socket
import threading
import time

from conftest import free_port, recv_to_close

DIRECT_TYPE = "type.googleapis.com/pounce.filters.direct_response.v1.DirectResponse"


def direct_chain(body, indent="  "):
    """A one-filter chain answering `body`, as YAML list lines."""
    return (f'{indent}- name: pounce.filters.direct_response\n'
            f'{indent}  typed_config: {{"@type": {DIRECT_TYPE}, body: "{body}"}}\n')


def config(chain=None, admin_port=None, admin_extra="", extra="", http="{}", concurrency=2):
    """A one-listener config (listener "main" on @PORT@) with an admin listener."""
    chain = chain or direct_chain("one")
    admin_port = admin_port or free_port()
    return f"""
concurrency: {concurrency}
admin:
  address: {{socket_address: {{address: 127.0.0.1, port_value: {admin_port}}}}}
{admin_extra}
{extra}
listeners:
- name: main
  address: {{socket_address: {{address: 127.0.0.1, port_value: @PORT@}}}}
  http: {http}
  filter_chain:
{chain}"""


def admin_port_of(server):
    text = server.config_path.read_text()
    start = text.index("admin:")
    return int(text[start:].split("port_value:")[1].split("}")[0])


class Admin:
    """Calls one server's admin API."""

    def __init__(self, port, token=None):
        self.port = port
        self.token = token

    def call(self, method, path, body=None, headers=None, timeout=30):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        h = {}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        h.update(headers or {})
        try:
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, **kw):
        return self.call("POST", path, **kw)

    def json(self, method, path, body=None, expect=200, **kw):
        status, headers, data = self.call(method, path, body=body, **kw)
        assert status == expect, (status, data)
        return json.loads(data)

    def put_chain(self, body, listener="main", expect=200):
        return self.json("PUT", f"/listeners/{listener}/filter_chain", body=body, expect=expect)


def admin_for(server, token=None):
    return Admin(admin_port_of(server), token)


def get_body(port, path="/", timeout=5):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


class Load:
    """Bounded load on a port: `threads` clients, each sending requests until stop() or
    `max_seconds`. keep_alive=True reuses one connection per client (reconnecting when
    the server closes it); False opens a new connection per request. Every request that
    does not get a 200 with an expected body is recorded in `failures`."""

    def __init__(self, port, threads=4, keep_alive=True, bodies=None, path="/",
                 max_seconds=60.0):
        self.port = port
        self.keep_alive = keep_alive
        self.bodies = bodies
        self.path = path
        self.max_seconds = max_seconds
        self.ok = 0
        self.failures = []
        self.refused = 0
        self.seen = set()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def __enter__(self):
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)

    def wait_for_requests(self, n, timeout=10):
        deadline = time.monotonic() + timeout
        while self.ok < n and time.monotonic() < deadline:
            time.sleep(0.01)
        assert self.ok >= n, f"only {self.ok} requests served"

    def _record(self, ok, body=None, error=None):
        with self._lock:
            if ok:
                self.ok += 1
                self.seen.add(body)
            else:
                self.failures.append(error)

    def _run(self):
        deadline = time.monotonic() + self.max_seconds
        conn = None
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                conn.request("GET", self.path,
                             headers={} if self.keep_alive else {"Connection": "close"})
                r = conn.getresponse()
                body = r.read()
                closing = r.getheader("connection", "").lower() == "close"
                if r.status == 200 and (self.bodies is None or body in self.bodies):
                    self._record(True, body)
                else:
                    self._record(False, error=(r.status, body))
                if closing or not self.keep_alive:
                    conn.close()
                    conn = None
            except ConnectionRefusedError as e:
                with self._lock:
                    self.refused += 1
                self._record(False, error=repr(e))
                conn = None
            except (OSError, http.client.HTTPException) as e:
                # A keep-alive connection the server closed between requests is not a
                # failed request: http.client reports it before anything was answered.
                if isinstance(e, http.client.RemoteDisconnected) and self.keep_alive:
                    conn = None
                    continue
                self._record(False, error=repr(e))
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()


def raw_request(sock, path="/", headers=""):
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n{headers}\r\n".encode())


def unix_get(path, url, timeout=5):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    s.sendall(f"GET {url} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
    data = recv_to_close(s)
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body
