"""configs/edge.yaml, run as shipped (only the port changes): the edge filters in order
proxy_headers -> request_id -> rate_limit -> request_queue -> app, with health first."""

import json
import re

from conftest import ROOT, wait_for
from edge_helpers import request

UUID_HEX = re.compile(r"^[0-9a-f]{32}$")


def start_edge(pounce):
    text = (ROOT / "configs/edge.yaml").read_text()
    assert "port_value: 8080" in text
    return pounce(text.replace("port_value: 8080", "port_value: @PORT@"))


def json_log_lines(server, count):
    def lines():
        found = []
        for line in server.log().splitlines():
            if line.startswith("{") and '"method"' in line:
                found.append(json.loads(line))
        return found if len(found) >= count else None
    return wait_for(lines, what=f"{count} access log lines")


def test_edge_config_orders_the_filters(pounce):
    s = start_edge(pounce)
    client_a = [("X-Forwarded-For", "198.51.100.7")]
    allowed = 0
    while True:
        status, headers, body = request(s, "/", headers=client_a)
        assert UUID_HEX.match(headers["x-request-id"][0])
        assert headers["server-timing"][0].startswith("total;dur=")
        if status == 429:
            break
        assert status == 200
        allowed += 1
        assert allowed < 100, "the rate limit never answered 429"
    # The limiter keys on the client from X-Forwarded-For (the proxy on 127.0.0.1 is trusted):
    # that client had its burst of 20 (plus what refilled at 10/s meanwhile) ...
    assert allowed >= 20
    # ... and the request id was set before the 429, so the rejection carries one.
    assert headers["retry-after"] == ["1"]
    # Another client behind the same proxy is not affected; the proxy's own id is kept.
    status, headers, body = request(s, "/", headers=[("X-Forwarded-For", "198.51.100.8"),
                                                     ("X-Request-ID", "from-the-proxy")])
    assert status == 200 and body == b"Hello from behind the edge\n"
    assert headers["x-request-id"] == ["from-the-proxy"]
    assert headers["ratelimit-remaining"] == ["19"]
    # Probes come before the limiter and stay out of the access log.
    for path in ("/livez", "/readyz"):
        status, headers, body = request(s, path, headers=client_a)
        assert status == 200 and json.loads(body)["status"] == "ok"
    lines = json_log_lines(s, allowed + 2)
    assert {l["client"] for l in lines} == {"198.51.100.7", "198.51.100.8"}
    assert not any(l["path"] in ("/livez", "/readyz") for l in lines)
    (proxied,) = [l for l in lines if l["client"] == "198.51.100.8"]
    assert proxied["request_id"] == "from-the-proxy"
