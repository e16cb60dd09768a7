"""TLS termination with real clients: curl and Python's ssl module against the real binary.

Certificates are made per test module with the openssl command line tool (a CA, server
certificates for SNI, client certificates for mTLS); nothing secret is committed.
"""

import hashlib
import http.client
import os
import pathlib
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

import pytest

from admin_helpers import Admin
from conftest import BINARY, ROOT, free_port, recv_to_close, run_pounce, wait_for

DIRECT = "type.googleapis.com/pounce.filters.direct_response.v1.DirectResponse"


# --- certificates -------------------------------------------------------------------------

def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


class Certs:
    """A CA, server certificates and client certificates in one directory."""

    def __init__(self, directory):
        self.dir = directory
        os.chmod(self.dir, 0o755)
        self.ca = self.make_ca("ca", "pounce test CA")
        self.other_ca = self.make_ca("other-ca", "other CA")

    def path(self, name):
        return os.path.join(self.dir, name)

    def make_ca(self, name, cn):
        cert, key = self.path(name + ".pem"), self.path(name + ".key")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-keyout", key, "-out", cert, "-days", "30", "-subj", f"/CN={cn}",
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign")
        return cert, key

    def leaf(self, name, cn, sans=(), ca=None, client=False):
        """A certificate signed by `ca` (default: the test CA); returns (cert, key)."""
        ca = ca or self.ca
        cert, key, csr, ext = (self.path(name + s) for s in (".pem", ".key", ".csr", ".ext"))
        with open(ext, "w") as f:
            f.write("basicConstraints=CA:FALSE\n")
            if sans:
                f.write("subjectAltName=" + ",".join("DNS:" + s for s in sans) + "\n")
            f.write("extendedKeyUsage=" + ("clientAuth" if client else "serverAuth") + "\n")
        openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-keyout", key, "-out", csr, "-subj", f"/CN={cn}/O=pounce tests")
        openssl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
                "-out", cert, "-days", "30", "-extfile", ext)
        os.chmod(key, 0o644)
        return cert, key


@pytest.fixture(scope="module")
def certs():
    directory = tempfile.mkdtemp(prefix="pounce-tls-")
    c = Certs(directory)
    c.localhost = c.leaf("localhost", "localhost", ["localhost"])
    c.api = c.leaf("api", "api.example.test", ["api.example.test"])
    c.wild = c.leaf("wild", "wildcard.example.test", ["*.wild.test"])
    c.client = c.leaf("client", "client.test", client=True)
    c.stranger = c.leaf("stranger", "stranger.test", ca=c.other_ca, client=True)
    yield c
    shutil.rmtree(directory, ignore_errors=True)


def tls_config(certificates, extra="", body='"ok\\n"', chain_extra=""):
    """A listener with TLS and a direct_response; certificates = [(cert, key, [names])]."""
    lines = []
    for cert, key, *names in certificates:
        lines.append(f"    - certificate_chain_file: {cert}")
        lines.append(f"      private_key_file: {key}")
        if names and names[0]:
            lines.append(f"      server_names: {names[0]!r}".replace("'", '"'))
    certs_yaml = "\n".join(lines)
    return f"""
concurrency: 2
listeners:
- name: main
  address: {{socket_address: {{address: 127.0.0.1, port_value: @PORT@}}}}
  http: {{keep_alive_timeout: 30s}}
  tls:
    certificates:
{certs_yaml}
{extra}
  filter_chain:{chain_extra}
  - name: pounce.filters.direct_response
    typed_config:
      "@type": {DIRECT}
      {body_field(body)}
"""


def body_field(body):
    return body if body.startswith("body_file:") else f"body: {body}"


def client_context(certs, cert=None, **kwargs):
    ctx = ssl.create_default_context(cafile=certs.ca[0])
    if cert is not None:
        ctx.load_cert_chain(*cert)
    for k, v in kwargs.items():
        setattr(ctx, k, v)
    return ctx


def tls_connect(server, ctx, server_hostname="localhost", timeout=5.0):
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    try:
        return ctx.wrap_socket(raw, server_hostname=server_hostname)
    except Exception:
        raw.close()
        raise


def get(sock, path="/", host="localhost", close=False):
    """One HTTP/1.1 request on an open (TLS) socket; returns (status, body)."""
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n"
    if close:
        request += "Connection: close\r\n"
    sock.sendall((request + "\r\n").encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before the response head: {buf!r}")
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(int(l.split(":", 1)[1]) for l in lines if l.lower().startswith("content-length:"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), body


def peer_cn(sock):
    subject = dict(x[0] for x in sock.getpeercert()["subject"])
    return subject["commonName"]


def curl(*args, timeout=30):
    return subprocess.run(["curl", "-sS", "--max-time", "20", *args], capture_output=True,
                          timeout=timeout)


# --- tests ------------------------------------------------------------------------------

def test_https_with_curl_and_python(pounce, certs):
    server = pounce(tls_config([certs.localhost]))
    wait_for(lambda: f"listener main on https://127.0.0.1:{server.port}" in server.log(),
             what="the banner")
    r = curl("-v", "--cacert", certs.ca[0], "--resolve", f"localhost:{server.port}:127.0.0.1",
             f"https://localhost:{server.port}/")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"ok\n"
    # curl offers h2 first and the listener serves HTTP/2 (test_http2.py covers it further).
    assert b"ALPN: server accepted h2" in r.stderr
    assert b"< HTTP/2 200" in r.stderr

    conn = http.client.HTTPSConnection("localhost", server.port, context=client_context(certs))
    conn.request("GET", "/x")
    resp = conn.getresponse()
    assert resp.status == 200 and resp.read() == b"ok\n"
    conn.close()


def test_keep_alive_serves_many_requests_on_one_handshake(pounce, certs):
    server = pounce(tls_config([certs.localhost]))
    urls = [f"https://localhost:{server.port}/{i}" for i in range(5)]
    r = curl("--cacert", certs.ca[0], "--resolve", f"localhost:{server.port}:127.0.0.1",
             "-w", "%{num_connects}\n", *urls)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().split("\n") == ["ok", "1", "ok", "0", "ok", "0", "ok", "0", "ok",
                                             "0", ""]
    with tls_connect(server, client_context(certs)) as s:
        for i in range(20):
            assert get(s, f"/{i}") == (200, b"ok\n")


def test_server_closes_with_close_notify(pounce, certs):
    server = pounce(tls_config([certs.localhost], extra="",
                               body='"bye\\n"').replace("keep_alive_timeout: 30s",
                                                        "keep_alive_timeout: 300ms"))
    ctx = client_context(certs)
    # Python ignores a TCP close without close_notify by default: make it an error.
    ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF
    for ask_close in (True, False):  # "Connection: close", then the keep-alive timeout
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        with ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False) as s:
            assert get(s, close=ask_close) == (200, b"bye\n")
            assert s.recv(100) == b""


def test_large_body_arrives_intact_with_fast_and_slow_readers(pounce, certs, tmp_path):
    payload = os.urandom(8 << 20)
    (tmp_path / "big.bin").write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    server = pounce(tls_config([certs.localhost], body=f"body_file: {tmp_path / 'big.bin'}"))
    out = tmp_path / "out.bin"
    r = curl("--cacert", certs.ca[0], "--resolve", f"localhost:{server.port}:127.0.0.1",
             "-o", str(out), f"https://localhost:{server.port}/")
    assert r.returncode == 0, r.stderr
    assert hashlib.sha256(out.read_bytes()).hexdigest() == digest
    # A reader with a small receive buffer that takes its time: the server must wait for
    # writability many times (bounded, 8 MiB take well under the test timeout).
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    raw.settimeout(10)
    raw.connect(("127.0.0.1", server.port))
    with client_context(certs).wrap_socket(raw, server_hostname="localhost") as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        time.sleep(0.3)  # let the server fill the socket buffer and block
        status, body = get_after_sent(s)
        assert status == 200
        assert hashlib.sha256(body).hexdigest() == digest
        # The connection is still good for another request.
        assert get(s)[0] == 200


def get_after_sent(sock):
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += sock.recv(4096)
    head, _, body = buf.partition(b"\r\n\r\n")
    length = int([l for l in head.decode().split("\r\n")
                  if l.lower().startswith("content-length:")][0].split(":")[1])
    while len(body) < length:
        chunk = sock.recv(4096)
        if not chunk:
            break
        body += chunk
    return int(head.split()[1]), body


def test_sni_picks_the_certificate(pounce, certs):
    server = pounce(tls_config([certs.localhost, certs.api, certs.wild]))
    ctx = client_context(certs)
    for name, cn in [("localhost", "localhost"), ("api.example.test", "api.example.test"),
                     ("www.wild.test", "wildcard.example.test")]:
        with tls_connect(server, ctx, server_hostname=name) as s:
            assert peer_cn(s) == cn, name
            assert get(s, host=name) == (200, b"ok\n")
    # An unknown name (and no SNI at all) gets the first certificate.
    loose = client_context(certs, check_hostname=False)
    with tls_connect(server, loose, server_hostname="unknown.test") as s:
        assert peer_cn(s) == "localhost"
    with tls_connect(server, loose, server_hostname=None) as s:
        assert peer_cn(s) == "localhost"
    # curl sees the same.
    r = curl("-v", "--cacert", certs.ca[0], "--resolve",
             f"x.wild.test:{server.port}:127.0.0.1", f"https://x.wild.test:{server.port}/")
    assert r.returncode == 0 and b"subject: CN=wildcard.example.test" in r.stderr, r.stderr


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1],
                         ids=["TLSv1_0", "TLSv1_1"])
def test_tls_1_0_and_1_1_are_refused(pounce, certs, version):
    server = pounce(tls_config([certs.localhost]))
    old = client_context(certs, minimum_version=version, maximum_version=version)
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        tls_connect(server, old).close()
    # The same client allowed TLS 1.2 gets through, so the refusal was the version.
    ok = client_context(certs, maximum_version=ssl.TLSVersion.TLSv1_2)
    ok.set_ciphers("DEFAULT:@SECLEVEL=0")
    with tls_connect(server, ok) as s:
        assert s.version() == "TLSv1.2"
        assert get(s)[0] == 200


def test_min_version_tls13(pounce, certs):
    server = pounce(tls_config([certs.localhost], extra="    min_version: TLSv1_3"))
    with pytest.raises((ssl.SSLError, ConnectionError)):
        tls_connect(server, client_context(certs, maximum_version=ssl.TLSVersion.TLSv1_2)).close()
    with tls_connect(server, client_context(certs)) as s:
        assert s.version() == "TLSv1.3"


def request_fails(server, ctx):
    """True when the handshake or the first exchange is refused."""
    try:
        with tls_connect(server, ctx) as s:
            # TLS 1.3 clients learn about a refused certificate on their first read.
            get(s)
    except (ssl.SSLError, ConnectionError, OSError):
        return True
    return False


def test_mutual_tls_required(pounce, certs):
    server = pounce(tls_config([certs.localhost], extra=f"""    client_validation:
      ca_file: {certs.ca[0]}
      require_client_certificate: true"""))
    assert request_fails(server, client_context(certs))
    assert request_fails(server, client_context(certs, cert=certs.stranger))
    with tls_connect(server, client_context(certs, cert=certs.client)) as s:
        assert get(s) == (200, b"ok\n")
    r = curl("--cacert", certs.ca[0], "--cert", certs.client[0], "--key", certs.client[1],
             "--resolve", f"localhost:{server.port}:127.0.0.1", f"https://localhost:{server.port}/")
    assert r.returncode == 0 and r.stdout == b"ok\n", r.stderr
    r = curl("--cacert", certs.ca[0], "--resolve", f"localhost:{server.port}:127.0.0.1",
             f"https://localhost:{server.port}/")
    assert r.returncode != 0


def test_mutual_tls_optional(pounce, certs):
    server = pounce(tls_config([certs.localhost], extra=f"""    client_validation:
      ca_file: {certs.ca[0]}"""))
    with tls_connect(server, client_context(certs)) as s:
        assert get(s) == (200, b"ok\n")
    with tls_connect(server, client_context(certs, cert=certs.client)) as s:
        assert get(s) == (200, b"ok\n")
    # A certificate that does not verify is refused even when certificates are optional.
    assert request_fails(server, client_context(certs, cert=certs.stranger))


def test_handshake_timeout_closes_silent_clients(pounce, certs):
    server = pounce(tls_config([certs.localhost], extra="    handshake_timeout: 300ms"))
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        started = time.monotonic()
        assert s.recv(1024) == b""  # closed by the server, nothing sent
        elapsed = time.monotonic() - started
    assert 0.2 < elapsed < 3, elapsed
    # A client that started the handshake but stalls is closed too.
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"\x16\x03\x01\x00\x10")  # a record header promising more
        assert s.recv(1024) == b""
    with tls_connect(server, client_context(certs)) as s:
        assert get(s)[0] == 200


def test_plain_http_on_the_tls_port_is_answered_and_closed(pounce, certs):
    server = pounce(tls_config([certs.localhost]))
    # Any method (OpenSSL itself recognises only GET, POST, HEAD, PUT and CONNECT).
    for method in ("GET", "DELETE", "OPTIONS", "PATCH", "CONNECT"):
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
            s.sendall(f"{method} / HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
            data = recv_to_close(s)
        assert data.startswith(b"HTTP/1.1 400 Bad Request\r\n"), (method, data)
        assert b"use https://" in data
    # Garbage that is not HTTP either: closed, and the server keeps serving.
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(os.urandom(512))
        try:
            assert s.recv(4096) is not None
        except ConnectionResetError:
            pass
    with tls_connect(server, client_context(certs)) as s:
        assert get(s)[0] == 200
    assert server.proc.poll() is None


def test_sessions_resume_with_tickets_also_after_a_reload(pounce, certs):
    server = pounce(tls_config([certs.localhost]))
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = client_context(certs, maximum_version=version)
        with tls_connect(server, ctx) as s:
            assert get(s)[0] == 200  # TLS 1.3 tickets arrive after the handshake
            session = s.session
            assert not s.session_reused
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as s:
            assert s.session_reused, version
            assert get(s)[0] == 200
            session = s.session
        reloads = server.log().count("certificates reloaded")
        server.signal(signal.SIGHUP)
        wait_for(lambda: server.log().count("certificates reloaded") > reloads, what="reload")
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as s:
            assert s.session_reused, f"{version} after reload"


def test_a_session_never_resumes_under_other_security_settings(pounce, certs):
    """Each certificate's context has its own session id context: a session made on a
    listener that asks for no client certificate cannot resume on one that requires one
    (which would skip the client check), nor one made for a name under another name (RFC
    6066 §3). Under the same settings sessions still resume."""
    mtls_port = free_port()
    (cert, key), (api_cert, api_key) = certs.localhost, certs.api
    direct = ('  - name: pounce.filters.direct_response\n'
              '    typed_config: {{"@type": type.googleapis.com/pounce.filters.direct_response.v1.'
              'DirectResponse, body: "{}"}}')
    server = pounce(f"""
concurrency: 1
listeners:
- name: open
  address: {{socket_address: {{address: 127.0.0.1, port_value: @PORT@}}}}
  tls:
    certificates:
    - {{certificate_chain_file: {cert}, private_key_file: {key}}}
    - {{certificate_chain_file: {api_cert}, private_key_file: {api_key}}}
  filter_chain:
{direct.format("open")}
- name: mtls
  address: {{socket_address: {{address: 127.0.0.1, port_value: {mtls_port}}}}}
  tls:
    certificates:
    - {{certificate_chain_file: {cert}, private_key_file: {key}}}
    client_validation: {{ca_file: {certs.ca[0]}, require_client_certificate: true}}
  filter_chain:
{direct.format("secret")}
""")
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = client_context(certs, maximum_version=version)
        with tls_connect(server, ctx) as s:
            assert get(s) == (200, b"open")
            session = s.session
        # The same listener and name: resumed.
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as s:
            assert s.session_reused, version
            assert get(s) == (200, b"open")
        # Another name on that listener: a full handshake, with that name's certificate.
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        with ctx.wrap_socket(raw, server_hostname="api.example.test", session=session) as s:
            assert not s.session_reused, version
            assert get(s) == (200, b"open")
        # The listener that requires a client certificate: no resumption, and refused.
        raw = socket.create_connection(("127.0.0.1", mtls_port), timeout=5)
        served = None
        try:
            with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as s:
                assert not s.session_reused, version
                served = get(s)
        except (ssl.SSLError, ConnectionError, OSError):
            pass
        assert served is None, f"{version}: served without a client certificate: {served}"


def test_sighup_reloads_certificates_without_dropping_connections(pounce, certs, tmp_path):
    first = certs.leaf("first", "first.test", ["localhost"])
    second = certs.leaf("second", "second.test", ["localhost"])
    cert, key = tmp_path / "live.pem", tmp_path / "live.key"
    shutil.copy(first[0], cert)
    shutil.copy(first[1], key)
    server = pounce(tls_config([(cert, key)]))
    ctx = client_context(certs)
    old = tls_connect(server, ctx)
    assert peer_cn(old) == "first.test"
    assert get(old)[0] == 200

    shutil.copy(second[0], cert)
    shutil.copy(second[1], key)
    server.signal(signal.SIGHUP)
    wait_for(lambda: "listener main: certificates reloaded" in server.log(), what="reload")
    with tls_connect(server, ctx) as s:
        assert peer_cn(s) == "second.test"
        assert get(s)[0] == 200
    # The connection made before the reload keeps working.
    assert get(old) == (200, b"ok\n")

    # A broken update is refused: the log names the file, the current certificate stays.
    with open(key, "w") as f:
        f.write("garbage\n")
    server.signal(signal.SIGHUP)
    wait_for(lambda: "certificate reload failed" in server.log(), what="failed reload")
    assert (f"listeners[0].tls.certificates[0].private_key_file: '{key}' holds no PEM "
            "private key") in server.log()
    with tls_connect(server, ctx) as s:
        assert peer_cn(s) == "second.test"
    assert get(old) == (200, b"ok\n")

    # A config file with an error elsewhere is refused, but the running config's
    # certificates are still renewed: rotating them must not wait for that fix.
    shutil.copy(first[0], cert)
    shutil.copy(first[1], key)
    server.config_path.write_text(server.config_path.read_text() + "\nno_such_field: 1\n")
    reloads = server.log().count("listener main: certificates reloaded")
    server.signal(signal.SIGHUP)
    wait_for(lambda: server.log().count("listener main: certificates reloaded") > reloads,
             what="certificates reloaded despite the config error")
    assert "no_such_field" in server.log()
    with tls_connect(server, ctx) as s:
        assert peer_cn(s) == "first.test"
    old.close()
    assert server.proc.poll() is None


def peer_serial(sock):
    return sock.getpeercert()["serialNumber"]


def test_admin_reload_reloads_certificates_without_dropping_connections(pounce, certs, tmp_path):
    first = certs.leaf("admin-first", "admin-first.test", ["localhost"])
    second = certs.leaf("admin-second", "admin-second.test", ["localhost"])
    cert, key = tmp_path / "live.pem", tmp_path / "live.key"
    shutil.copy(first[0], cert)
    shutil.copy(first[1], key)
    admin_port = free_port()
    admin_yaml = ("admin: {address: {socket_address: {address: 127.0.0.1, "
                  f"port_value: {admin_port}}}}}}}\n")
    server = pounce(admin_yaml + tls_config([(cert, key)]))
    admin = Admin(admin_port)
    ctx = client_context(certs)
    old = tls_connect(server, ctx)
    assert peer_cn(old) == "admin-first.test"
    first_serial = peer_serial(old)
    assert get(old) == (200, b"ok\n")

    shutil.copy(second[0], cert)
    shutil.copy(second[1], key)
    # The config file is unchanged: the reload applies nothing but still re-reads the
    # certificates, before it answers.
    result = admin.json("POST", "/reload")
    assert result["message"] == "no change", result
    assert "listener main: certificates reloaded" in server.log()
    with tls_connect(server, ctx) as s:
        assert peer_cn(s) == "admin-second.test"
        assert peer_serial(s) != first_serial
        assert get(s) == (200, b"ok\n")
    # The connection made before the reload keeps working on its old certificate.
    assert get(old) == (200, b"ok\n")
    assert peer_serial(old) == first_serial and peer_cn(old) == "admin-first.test"

    # A broken update is refused: the log names the file, the current certificate stays.
    with open(key, "w") as f:
        f.write("garbage\n")
    failed = admin.json("POST", "/reload", expect=500)
    assert "TLS certificates could not be reloaded" in failed["message"]
    assert "the previous certificates stay in use" in failed["message"]
    wait_for(lambda: "certificate reload failed" in server.log(), what="failed reload")
    assert (f"listeners[0].tls.certificates[0].private_key_file: '{key}' holds no PEM "
            "private key") in server.log()
    with tls_connect(server, ctx) as s:
        assert peer_cn(s) == "admin-second.test"
    assert get(old) == (200, b"ok\n")
    old.close()
    assert server.proc.poll() is None


def test_ssl_flags_turn_tls_on_for_the_first_listener(pounce, certs):
    plain = f"""
listeners:
- name: main
  address: {{socket_address: {{address: 127.0.0.1, port_value: @PORT@}}}}
  filter_chain:
  - name: pounce.filters.direct_response
    typed_config: {{"@type": {DIRECT}, body: "flags\\n"}}
"""
    server = pounce(plain, args=["--ssl-certfile", certs.localhost[0], "--ssl-keyfile",
                                 certs.localhost[1]])
    wait_for(lambda: f"https://127.0.0.1:{server.port}" in server.log(), what="the banner")
    with tls_connect(server, client_context(certs)) as s:
        assert get(s) == (200, b"flags\n")


def test_ssl_flags_must_come_together(tmp_path):
    r = run_pounce("--ssl-certfile", "x.pem", "app:app")
    assert r.returncode == 2 and "must be given together" in r.stderr


def test_shipped_tls_config_runs_with_the_example_certificates(pounce):
    example = ROOT / "examples/tls"
    server = pounce(args=["--config-yaml", str(ROOT / "configs/tls.yaml"), "--port", "@PORT@"],
                    cwd=ROOT)
    ctx = ssl.create_default_context(cafile=str(example / "ca.pem"))
    with tls_connect(server, ctx) as s:
        assert peer_cn(s) == "localhost"
        assert get(s) == (200, b"Hello over TLS from pounce\n")
    with tls_connect(server, ctx, server_hostname="www.example.test") as s:
        assert peer_cn(s) == "example.test"


# --- configuration errors -------------------------------------------------------------

def validate(tmp_path, text, binary=BINARY, user=None):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text.replace("@PORT@", "8443"))
    return subprocess.run([str(binary), "--config-yaml", str(cfg), "--mode", "validate"],
                          capture_output=True, text=True, timeout=60, preexec_fn=user), cfg


def test_validate_loads_certificates_and_names_field_and_file(tmp_path, certs):
    missing = tmp_path / "missing.key"
    r, cfg = validate(tmp_path, tls_config([certs.localhost, (certs.api[0], missing)]))
    assert r.returncode == 1
    assert (f"{cfg}:12:25: listeners[0].tls.certificates[1].private_key_file: cannot read "
            f"'{missing}': No such file or directory") in r.stderr, r.stderr

    r, _ = validate(tmp_path, tls_config([(certs.localhost[0], certs.api[1])]))
    assert r.returncode == 1
    assert (f"listeners[0].tls.certificates[0].private_key_file: the key in '{certs.api[1]}' "
            f"does not match the certificate in '{certs.localhost[0]}'") in r.stderr, r.stderr

    r, _ = validate(tmp_path, tls_config([certs.localhost], extra="    min_version: TLSv1_1"))
    assert r.returncode == 1 and "listeners[0].tls.min_version: unknown value 'TLSv1_1'" in r.stderr

    r, _ = validate(tmp_path, tls_config([certs.localhost], extra="    alpn: [h3]"))
    assert r.returncode == 1
    assert "listeners[0].tls.alpn[0]: 'h3' is not a protocol pounce serves" in r.stderr

    r, _ = validate(tmp_path, tls_config([certs.localhost]))
    assert r.returncode == 0, r.stderr


def test_validate_reports_an_unreadable_key(tmp_path, certs):
    # The key must be unreadable for the user pounce runs as: as root, run it as nobody.
    work = tempfile.mkdtemp(prefix="pounce-tls-perm-")
    try:
        os.chmod(work, 0o755)
        key = os.path.join(work, "secret.key")
        shutil.copy(certs.localhost[1], key)
        os.chmod(key, 0o600 if os.geteuid() == 0 else 0)
        binary, user = BINARY, None
        if os.geteuid() == 0:
            binary = os.path.join(work, "pounce")
            shutil.copy(BINARY, binary)
            os.chmod(binary, 0o755)

            def user():
                os.setgid(65534)
                os.setuid(65534)
        cfg_dir = tempfile.mkdtemp(prefix="pounce-tls-cfg-", dir=work)
        os.chmod(cfg_dir, 0o755)
        r, _ = validate(pathlib.Path(cfg_dir), tls_config([(certs.localhost[0], key)]),
                        binary=binary, user=user)
        assert r.returncode == 1, r.stderr
        assert (f"listeners[0].tls.certificates[0].private_key_file: cannot read '{key}': "
                "Permission denied") in r.stderr, r.stderr
    finally:
        shutil.rmtree(work, ignore_errors=True)
