"""Small helpers shared by the edge-filter integration tests (proxy headers, request ids,
rate limits, queueing, health, Server-Timing)."""

import json
import re

from conftest import ROOT, RawConnection, wait_for

TYPES = {
    "proxy_headers": "pounce.filters.proxy_headers.v1.ProxyHeaders",
    "request_id": "pounce.filters.request_id.v1.RequestId",
    "rate_limit": "pounce.filters.rate_limit.v1.RateLimit",
    "request_queue": "pounce.filters.request_queue.v1.RequestQueue",
    "health": "pounce.filters.health.v1.Health",
    "access_log": "pounce.filters.access_log.v1.AccessLog",
    "direct_response": "pounce.filters.direct_response.v1.DirectResponse",
}


def chain_config(*filters, concurrency=1, body="app\n"):
    """A one-listener config: `filters` are (name, config dict or None) pairs, in order,
    followed by a direct_response answering `body`."""
    lines = [f"concurrency: {concurrency}", "listeners:", "- name: main",
             "  address: {socket_address: {address: 127.0.0.1, port_value: @PORT@}}",
             "  filter_chain:"]
    for name, cfg in list(filters) + [("direct_response", {"body": body})]:
        lines.append(f"  - name: pounce.filters.{name}")
        if cfg is not None:
            typed = {"@type": f"type.googleapis.com/{TYPES[name]}", **cfg}
            lines.append(f"    typed_config: {json.dumps(typed)}")
    return "\n".join(lines) + "\n"


def request(server, path="/", method="GET", headers=(), conn=None):
    """One HTTP/1.1 request; returns (status, headers dict-of-lists, body)."""
    c = conn or RawConnection(server.connect())
    head = f"{method} {path} HTTP/1.1\r\nHost: test\r\n"
    for k, v in headers:
        head += f"{k}: {v}\r\n"
    c.send((head + "\r\n").encode())
    result = c.response(head_only=(method == "HEAD"))
    if conn is None:
        c.close()
    return result


def version():
    text = (ROOT / "source/common/version.h").read_text()
    return re.search(r'kVersion = "([^"]+)"', text).group(1)


def access_log_lines(path, count, timeout=10.0):
    """The first `count` JSON access log lines (waits for them to be written)."""
    def lines():
        try:
            found = [json.loads(l) for l in path.read_text().splitlines() if l.startswith("{")]
        except FileNotFoundError:
            return None
        return found if len(found) >= count else None

    return wait_for(lines, timeout=timeout, what=f"{count} access log lines in {path}")
