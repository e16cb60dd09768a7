"""server_timing over real sockets."""

import re
import time

from conftest import RawConnection
from edge_helpers import chain_config, request

TOTAL = re.compile(r"^total;dur=\d+\.\d$")


def test_every_response_carries_server_timing(pounce):
    s = pounce(chain_config(("server_timing", None),
                            ("rate_limit", {"requests_per_second": 0.001, "burst": 1})))
    status, headers, _ = request(s)
    assert status == 200
    assert TOTAL.match(headers["server-timing"][0]), headers["server-timing"]
    # Local replies of later filters too.
    status, headers, _ = request(s)
    assert status == 429
    assert TOTAL.match(headers["server-timing"][0])


def test_total_starts_at_the_first_byte_of_a_slow_head(pounce):
    """A head that trickles in over several reads: the request began with its first byte
    (the access log's duration and the latency histogram count from there too)."""
    s = pounce(chain_config(("server_timing", None)))
    c = RawConnection(s.connect())
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n")
    time.sleep(0.6)
    c.send(b"\r\n")
    status, headers, _ = c.response()
    assert status == 200
    total = float(headers["server-timing"][0].split("dur=")[1])
    assert total >= 550, headers["server-timing"]
    c.close()
