"""request_id over real sockets: ids on responses, in the access log, and trust rules."""

import re

from edge_helpers import access_log_lines, chain_config, request

HEX32 = re.compile(r"^[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}$")


def test_every_response_gets_a_fresh_uuid4_that_the_access_log_shows(pounce, tmp_path):
    log = tmp_path / "access.log"
    s = pounce(chain_config(("access_log", {"format": "JSON", "path": str(log)}),
                            ("request_id", {}), concurrency=2))
    ids = []
    for i in range(50):
        status, headers, _ = request(s, f"/{i}")
        assert status == 200
        (rid,) = headers["x-request-id"]
        assert HEX32.match(rid), rid
        ids.append(rid)
    assert len(set(ids)) == 50
    logged = {l["path"]: l["request_id"] for l in access_log_lines(log, 50)}
    assert [logged[f"/{i}"] for i in range(50)] == ids


def test_client_supplied_id_is_replaced_unless_trusted(pounce):
    s = pounce(chain_config(("request_id", {})))
    _, headers, _ = request(s, headers=[("X-Request-ID", "mine")])
    assert headers["x-request-id"][0] != "mine"


def test_trust_incoming_always_keeps_a_sane_id(pounce):
    s = pounce(chain_config(("request_id", {"trust_incoming": "always"})))
    assert request(s, headers=[("X-Request-ID", "mine-1")])[1]["x-request-id"] == ["mine-1"]
    too_long = "a" * 201
    assert request(s, headers=[("X-Request-ID", too_long)])[1]["x-request-id"][0] != too_long


def test_custom_header_name(pounce):
    s = pounce(chain_config(("request_id", {"header_name": "X-Correlation-ID"})))
    _, headers, _ = request(s)
    assert HEX32.match(headers["x-correlation-id"][0])
    assert "x-request-id" not in headers
