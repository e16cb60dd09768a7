"""health over real sockets: the JSON answer, HEAD/405, kept out of the access log and
ahead of rate limiting, and 503 while the server drains."""

import json
import signal
import time

from conftest import RawConnection, wait_for
from edge_helpers import access_log_lines, chain_config, request, version


def test_answers_with_json_status(pounce):
    s = pounce(chain_config(("health", {"path": "/health"}), concurrency=2))
    # Two more open connections that have been served, so they are counted.
    others = [RawConnection(s.connect()) for _ in range(2)]
    for c in others:
        assert request(s, "/", conn=c)[0] == 200
    status, headers, body = request(s, "/health?probe=1")
    assert status == 200
    assert headers["content-type"] == ["application/json"]
    assert headers["cache-control"] == ["no-cache, no-store"]
    doc = json.loads(body)
    assert list(doc) == ["status", "uptime_seconds", "worker_id", "active_connections", "version"]
    assert doc["status"] == "ok"
    assert 0 <= doc["uptime_seconds"] < 60
    assert doc["worker_id"] == 0
    assert doc["active_connections"] >= 3
    assert doc["version"] == version()
    status, headers, body = request(s, "/health", method="HEAD")
    assert status == 200 and body == b"" and int(headers["content-length"][0]) > 0
    status, headers, _ = request(s, "/health", method="POST")
    assert status == 405 and headers["allow"] == ["GET, HEAD"]
    assert request(s, "/other")[2] == b"app\n"


def test_not_access_logged_unless_asked(pounce, tmp_path):
    quiet, loud = tmp_path / "quiet.log", tmp_path / "loud.log"
    s = pounce(chain_config(("access_log", {"format": "JSON", "path": str(quiet)}),
                            ("health", {"path": "/health"})))
    request(s, "/health")
    request(s, "/app")
    assert [l["path"] for l in access_log_lines(quiet, 1)] == ["/app"]
    s2 = pounce(chain_config(("access_log", {"format": "JSON", "path": str(loud)}),
                             ("health", {"path": "/health", "access_log": True})))
    request(s2, "/health")
    assert [l["path"] for l in access_log_lines(loud, 1)] == ["/health"]
    assert len([l for l in quiet.read_text().splitlines() if l]) == 1


def test_placed_first_it_is_never_rate_limited(pounce):
    s = pounce(chain_config(("health", {"path": "/health"}),
                            ("rate_limit", {"requests_per_second": 0.001, "burst": 1})))
    assert request(s, "/")[0] == 200
    assert request(s, "/")[0] == 429
    assert all(request(s, "/health")[0] == 200 for _ in range(10))


def start_request(server, path):
    """A connection holding a request whose head is not complete yet: it stays open when
    the server starts to drain, and the request is answered while draining."""
    c = RawConnection(server.connect())
    c.send(f"GET {path} HTTP/1.1\r\nHost: test\r\n".encode())
    return c


def drain(server):
    # Signal handlers are installed just before "ready" is logged; the port opens earlier.
    wait_for(lambda: any(l.endswith(" ready") for l in server.log().splitlines()),
             what="the server to log ready")
    time.sleep(0.2)  # let the I/O thread read the partial request heads
    server.signal(signal.SIGTERM)
    wait_for(lambda: "draining" in server.log(), what="the drain to start")


def test_503_draining_while_the_server_drains(pounce):
    s = pounce(chain_config(("health", {"path": "/health"})))
    pending = start_request(s, "/health")
    drain(s)
    pending.send(b"\r\n")
    status, headers, body = pending.response()
    assert status == 503
    assert json.loads(body)["status"] == "draining"


def test_with_ready_path_liveness_stays_up_during_drain(pounce):
    s = pounce(chain_config(("health", {"path": "/livez", "ready_path": "/readyz"})))
    assert request(s, "/livez")[0] == 200 and request(s, "/readyz")[0] == 200
    live, ready = start_request(s, "/livez"), start_request(s, "/readyz")
    drain(s)
    live.send(b"\r\n")
    ready.send(b"\r\n")
    status, _, body = live.response()
    assert status == 200 and json.loads(body)["status"] == "ok"
    status, _, body = ready.response()
    assert status == 503 and json.loads(body)["status"] == "draining"
