"""proxy_headers over real sockets: the client address the server uses (shown by the
access log and used by the rate limiter) and the X-Request-ID trust that depends on it."""

from edge_helpers import access_log_lines, chain_config, request


def logged(tmp_path):
    return ("access_log", {"format": "JSON", "path": str(tmp_path / "access.log")})


def test_trusted_peer_sets_the_client_from_x_forwarded_for(pounce, tmp_path):
    s = pounce(chain_config(logged(tmp_path),
                            ("proxy_headers", {"trusted_hosts": ["127.0.0.0/8"]})))
    assert request(s, "/a", headers=[("X-Forwarded-For", "6.6.6.6, 198.51.100.7")])[0] == 200
    assert request(s, "/b")[0] == 200
    first, second = access_log_lines(tmp_path / "access.log", 2)
    assert first["path"] == "/a" and first["client"] == "198.51.100.7"
    assert second["path"] == "/b" and second["client"] == "127.0.0.1"


def test_trusted_hops_and_trusted_ranges_walk_from_the_right(pounce, tmp_path):
    s = pounce(chain_config(logged(tmp_path), ("proxy_headers", {
        "trusted_hosts": ["127.0.0.1", "10.0.0.0/8"], "forwarded_for_trusted_hops": 2})))
    request(s, "/two-hops", headers=[("X-Forwarded-For", "6.6.6.6, 198.51.100.7, 203.0.113.1")])
    request(s, "/skip-internal",
            headers=[("X-Forwarded-For", "198.51.100.8, 10.1.1.1, 10.2.2.2, 203.0.113.1")])
    request(s, "/short", headers=[("X-Forwarded-For", "198.51.100.9")])
    lines = access_log_lines(tmp_path / "access.log", 3)
    assert [l["client"] for l in lines] == ["198.51.100.7", "198.51.100.8", "198.51.100.9"]


def test_untrusted_peer_cannot_choose_its_address_or_request_id(pounce, tmp_path):
    s = pounce(chain_config(logged(tmp_path),
                            ("proxy_headers", {"trusted_hosts": ["10.0.0.0/8"]}),
                            ("request_id", {"trust_incoming": "ALWAYS"})))
    status, headers, _ = request(s, headers=[("X-Forwarded-For", "198.51.100.7"),
                                             ("X-Request-ID", "spoofed-id")])
    assert status == 200
    # request_id would keep any id it sees (trust_incoming: always): proxy_headers removed it.
    rid = headers["x-request-id"][0]
    assert rid != "spoofed-id" and len(rid) == 32
    (line,) = access_log_lines(tmp_path / "access.log", 1)
    assert line["client"] == "127.0.0.1"
    assert line["request_id"] == rid


def test_trusted_peer_passes_its_request_id_on(pounce, tmp_path):
    s = pounce(chain_config(("proxy_headers", {"trusted_hosts": ["127.0.0.1"]}),
                            ("request_id", {})))
    _, headers, _ = request(s, headers=[("X-Request-ID", "edge-7f3a")])
    assert headers["x-request-id"] == ["edge-7f3a"]


def test_forwarded_header_when_enabled(pounce, tmp_path):
    s = pounce(chain_config(logged(tmp_path), ("proxy_headers", {
        "trusted_hosts": ["127.0.0.1"], "use_forwarded": True})))
    request(s, "/f", headers=[("Forwarded", 'for="[2001:db8:cafe::17]:4711";proto=https'),
                              ("X-Forwarded-For", "198.51.100.7")])
    request(s, "/x", headers=[("X-Forwarded-For", "198.51.100.7")])
    # A client's garbage on the left (its own field line, which the proxy kept, then the
    # proxy's): the proxy's element still names the client.
    request(s, "/g", headers=[("Forwarded", 'for="'), ("Forwarded", "for=203.0.113.7"),
                              ("X-Forwarded-For", "203.0.113.7")])
    first, second, third = access_log_lines(tmp_path / "access.log", 3)
    assert first["client"] == "2001:db8:cafe::17"
    assert second["client"] == "198.51.100.7"
    assert third["client"] == "203.0.113.7"


def test_wildcard_is_warned_about_at_startup(pounce, tmp_path):
    s = pounce(chain_config(("proxy_headers", {"trusted_hosts": ["*"]})))
    assert request(s)[0] == 200
    assert "trusts every peer" in s.log()


def test_bad_trusted_host_is_a_config_error_with_its_path(tmp_path):
    from conftest import run_pounce
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(chain_config(("proxy_headers", {"trusted_hosts": ["10.0.0.0/8", "proxy"]}))
                   .replace("@PORT@", "1"))
    r = run_pounce("-c", cfg, "--mode", "validate")
    assert r.returncode == 1
    assert "filter_chain[0].typed_config.trusted_hosts[1]" in r.stderr, r.stderr
