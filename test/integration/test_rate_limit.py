"""rate_limit over real sockets: 429 with Retry-After and RateLimit-* headers, refill,
shadow mode, and one set of buckets shared by all I/O threads."""

import socket

from conftest import RawConnection, run_pounce, wait_for
from edge_helpers import chain_config, request


def test_rejects_with_429_after_the_burst(pounce):
    s = pounce(chain_config(("rate_limit", {"requests_per_second": 0.5, "burst": 3})))
    for _ in range(3):
        assert request(s)[0] == 200
    status, headers, body = request(s)
    assert status == 429
    assert body == b"Too Many Requests\n"
    assert headers["retry-after"] == ["2"]
    assert headers["ratelimit-limit"] == ["3"]
    assert headers["ratelimit-remaining"] == ["0"]
    assert int(headers["ratelimit-reset"][0]) == 6


def test_tokens_refill_over_time(pounce):
    s = pounce(chain_config(("rate_limit", {"requests_per_second": 20, "burst": 1})))
    assert request(s)[0] == 200
    assert request(s)[0] == 429
    # One token every 50 ms.
    wait_for(lambda: request(s)[0] == 200, timeout=5, interval=0.02, what="a refill")


def test_shadow_mode_lets_everything_through(pounce):
    s = pounce(chain_config(("rate_limit", {"requests_per_second": 0.1, "burst": 1,
                                            "shadow": True})))
    assert all(request(s)[0] == 200 for _ in range(5))


def test_response_headers_on_allowed_responses(pounce):
    s = pounce(chain_config(("rate_limit", {"requests_per_second": 1, "burst": 10,
                                            "response_headers": True})))
    _, headers, _ = request(s)
    assert headers["ratelimit-limit"] == ["10"]
    assert headers["ratelimit-remaining"] == ["9"]


def test_buckets_are_shared_by_all_io_threads(pounce):
    # Each connection may land on either I/O thread (SO_REUSEPORT); with buckets per thread
    # up to twice the burst would get through.
    s = pounce(chain_config(("rate_limit", {"requests_per_second": 0.001, "burst": 10}),
                            concurrency=2))
    statuses = [request(s)[0] for _ in range(40)]
    assert statuses.count(200) == 10
    assert statuses.count(429) == 30


def test_bad_rate_is_a_config_error(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(chain_config(("rate_limit", {"burst": 3})).replace("@PORT@", "1"))
    r = run_pounce("-c", cfg, "--mode", "validate")
    assert r.returncode == 1
    assert "filter_chain[0].typed_config.requests_per_second" in r.stderr, r.stderr
