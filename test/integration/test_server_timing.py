"""server_timing over real sockets."""

import re

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
