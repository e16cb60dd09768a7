"""The admin API on a single-process server: every endpoint, method rules, bearer token,
Host/Origin refusal, live filter-chain swaps (validation, versions, rollback, keep-alive,
under load, ASGI app swaps with their lifespans), reload and watch_config, drain, and the
config dump fed back to a new server."""

import http.client
import json
import os
import pathlib
import re
import signal
import subprocess
import socket
import threading
import time

import pytest

from admin_helpers import (Admin, Load, admin_for, config, direct_chain, get_body, raw_request,
                           unix_get)
from conftest import ROOT, RawConnection, free_port, run_pounce, wait_for
from hyperframe.frame import GoAwayFrame
from test_http2 import H2Raw

APPS = ROOT / "test/integration/apps"
HEALTH_TYPE = "type.googleapis.com/pounce.filters.health.v1.Health"


def start(pounce, **kw):
    s = pounce(config(**{k: v for k, v in kw.items() if k != "env"}), env=kw.get("env"))
    return s, admin_for(s)


# --- endpoints ---------------------------------------------------------------------------

def test_every_read_endpoint_answers(pounce):
    s, admin = start(pounce, chain="  - name: pounce.filters.metrics\n" + direct_chain("one"))
    assert get_body(s.port) == (200, b"one")

    status, headers, body = admin.get("/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b"pounce" in body and b"chain-editor" in body
    status, _, body = admin.get("/help")
    assert status == 200 and b"/listeners/{name}/filter_chain" in body

    info = admin.json("GET", "/server_info")
    assert info["state"] == "LIVE" and info["mode"] == "single process"
    assert info["config_version"] == 1 and info["python"].startswith("CPython")
    assert info["workers"][0]["io_threads"] == 2 and info["workers"][0]["pid"] == s.proc.pid

    assert admin.get("/ready")[::2] == (200, b"LIVE\n")

    status, _, text = admin.get("/stats")
    assert status == 200 and b'pounce_listener_requests_total{listener="main"}: 1' in text
    stats = admin.json("GET", "/stats?format=json")["stats"]
    names = {f["name"]: f for f in stats}
    assert names["pounce_listener_requests_total"]["type"] == "counter"
    histogram = names["http_request_duration_seconds"]
    assert histogram["type"] == "histogram" and histogram["series"][0]["count"] == 1
    status, _, filtered = admin.get("/stats?filter=^http_")
    assert status == 200 and b"pounce_listener" not in filtered and b"http_requests_total" in filtered
    assert admin.get("/stats?filter=(")[0] == 400
    assert admin.get("/stats?format=xml")[0] == 400
    status, headers, prom = admin.get("/stats/prometheus")
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    assert b"# TYPE pounce_listener_requests_total counter" in prom
    assert b'http_request_duration_seconds_bucket{listener="main",le="+Inf"} 1' in prom
    assert admin.get("/stats?format=prometheus")[2].count(b"# TYPE") == prom.count(b"# TYPE")

    dump = admin.json("GET", "/config_dump")
    assert dump["listeners"][0]["name"] == "main" and dump["concurrency"] == 2
    status, headers, yaml_dump = admin.get("/config_dump?format=yaml")
    assert status == 200 and headers["x-pounce-config-version"] == "1"
    assert b"pounce.filters.direct_response" in yaml_dump

    listeners = admin.json("GET", "/listeners")["listeners"]
    assert listeners[0]["name"] == "main"
    assert listeners[0]["address"] == f"127.0.0.1:{s.port}"
    assert listeners[0]["filters"] == ["pounce.filters.metrics", "pounce.filters.direct_response"]
    assert listeners[0]["chain_version"] == 1

    chain = admin.json("GET", "/listeners/main/filter_chain")
    assert [f["name"] for f in chain["filter_chain"]] == listeners[0]["filters"]
    status, _, yaml_chain = admin.get("/listeners/main/filter_chain?format=yaml")
    assert status == 200 and yaml_chain.startswith(b"filter_chain:")
    assert admin.get("/listeners/nope/filter_chain")[0] == 404

    history = admin.json("GET", "/config/history")
    assert history["current"] == 1 and history["versions"][0]["source"] == "startup"

    levels = admin.json("GET", "/logging")["levels"]
    assert levels["admin"] == "info" and "conn" in levels


def test_methods_and_unknown_paths(pounce):
    s, admin = start(pounce)
    for path in ["/quitquitquit", "/healthcheck/fail", "/drain_listeners", "/reload",
                 "/config/rollback?version=1"]:
        status, headers, body = admin.get(path)
        assert status == 405 and headers["allow"] == "POST", path
    status, headers, _ = admin.call("DELETE", "/listeners/main/filter_chain")
    assert status == 405 and headers["allow"] == "GET, PUT"
    assert admin.call("PATCH", "/stats")[0] == 405
    assert admin.post("/stats")[0] == 405
    status, _, body = admin.get("/no/such/thing")
    assert status == 404 and b"/server_info" in body
    assert admin.call("HEAD", "/ready")[0] == 200
    assert s.proc.poll() is None


def test_healthcheck_fail_and_ok_reach_the_health_filter(pounce):
    chain = (f'  - name: pounce.filters.health\n    typed_config: {{"@type": {HEALTH_TYPE}, '
             f'path: /healthz}}\n' + direct_chain("app"))
    s, admin = start(pounce, chain=chain)
    assert get_body(s.port, "/healthz")[0] == 200
    assert admin.post("/healthcheck/fail")[::2] == (200, b"OK\n")
    assert get_body(s.port, "/healthz")[0] == 503
    assert admin.get("/ready")[::2] == (503, b"HEALTH_CHECK_FAILED\n")
    assert admin.json("GET", "/server_info")["state"] == "HEALTH_CHECK_FAILED"
    assert get_body(s.port, "/") == (200, b"app"), "traffic still flows"
    admin.post("/healthcheck/ok")
    assert get_body(s.port, "/healthz")[0] == 200
    assert admin.get("/ready")[0] == 200
    assert "health check failed by the admin API" in s.log()


def test_logging_levels_change_at_run_time(pounce):
    s, admin = start(pounce)
    levels = admin.json("POST", "/logging?level=debug&conn=warning")["levels"]
    assert levels["admin"] == "debug" and levels["conn"] == "warning"
    levels = admin.json("POST", "/logging?paths=admin:error,http:info")["levels"]
    assert levels["admin"] == "error" and levels["http"] == "info"
    assert admin.post("/logging?level=loud")[0] == 400
    assert admin.post("/logging?nosuch=debug")[0] == 400
    assert admin.post("/logging")[0] == 400
    assert "log level of every component set to debug by the admin API" in s.log()


def test_quitquitquit_drains_and_exits(pounce):
    s, admin = start(pounce)
    assert admin.post("/quitquitquit")[::2] == (200, b"OK\n")
    assert s.wait_exit() == 0
    assert "quitquitquit" in s.log()


def test_admin_on_a_unix_socket(pounce, tmp_path):
    sock = tmp_path / "admin.sock"
    cfg = config(admin_port=1).replace(
        "address: {socket_address: {address: 127.0.0.1, port_value: 1}}",
        f"address: {{pipe: {{path: {sock}}}}}")
    s = pounce(cfg)
    assert oct(os.stat(sock).st_mode & 0o777) == "0o600", "owner only by default"
    assert unix_get(str(sock), "/ready") == (200, b"LIVE\n")
    status, body = unix_get(str(sock), "/listeners")
    assert status == 200 and json.loads(body)["listeners"][0]["name"] == "main"
    s.signal(signal.SIGTERM)
    assert s.wait_exit() == 0
    assert not sock.exists(), "the socket file is removed on exit"


def test_quick_mode_admin_port_flag(pounce):
    admin_port = free_port()
    s = pounce(None, args=["probe:app", "--port", "@PORT@", "--admin-port", str(admin_port)],
               cwd=str(APPS))
    admin = Admin(admin_port)
    info = admin.json("GET", "/server_info")
    assert info["config_path"] == ""
    dump = admin.json("GET", "/config_dump")
    assert dump["admin"]["address"]["socket_address"]["port_value"] == admin_port
    # Quick mode has no file to re-read.
    assert admin.post("/reload")[0] == 400


# --- security ----------------------------------------------------------------------------

def test_bearer_token_from_a_file(pounce, tmp_path):
    token = tmp_path / "admin.token"
    token.write_text("s3cret-token\n")
    s, admin = start(pounce, admin_extra=f"  token_file: {token}")
    assert admin.get("/server_info")[0] == 401
    status, headers, _ = admin.post("/healthcheck/fail")
    assert status == 401 and headers["www-authenticate"].startswith("Bearer")
    assert admin.get("/server_info", headers={"Authorization": "Bearer wrong"})[0] == 401
    assert admin.get("/server_info", headers={"Authorization": "Basic czNjcmV0"})[0] == 401
    good = {"Authorization": "Bearer s3cret-token"}
    assert admin.get("/server_info", headers=good)[0] == 200
    assert admin.get("/ready")[::2] == (200, b"LIVE\n"), "probes need no token"
    assert admin.get("/")[0] == 200, "the dashboard page itself holds no data"
    assert get_body(s.port) == (200, b"one"), "the data plane never asks for it"
    # Rotating the file takes effect at once.
    token.write_text("rotated")
    assert admin.get("/server_info", headers=good)[0] == 401
    assert admin.get("/server_info", headers={"Authorization": "Bearer rotated"})[0] == 200
    token.unlink()
    assert admin.get("/server_info", headers={"Authorization": "Bearer rotated"})[0] == 503
    assert "without a valid token" in s.log()


def test_requests_from_other_origins_and_hosts_are_refused(pounce):
    s, admin = start(pounce, admin_extra="  allowed_hosts: [admin.internal]")
    own = f"127.0.0.1:{admin.port}"
    # A page on another site posting to the admin API (CSRF).
    status, _, body = admin.post("/healthcheck/fail", headers={"Origin": "http://evil.example"})
    assert status == 403 and b"origin" in body
    assert admin.get("/ready")[0] == 200, "nothing changed"
    # DNS rebinding: the attacker's name resolves to 127.0.0.1, so the Host is theirs.
    status, _, body = admin.get("/config_dump", headers={"Host": f"evil.example:{admin.port}"})
    assert status == 403 and b"Host" in body
    assert admin.get("/config_dump", headers={"Host": f"evil.example:{admin.port}",
                                              "Origin": f"http://evil.example:{admin.port}"})[0] == 403
    # The dashboard's own requests, and names the operator allowed.
    assert admin.post("/healthcheck/ok", headers={"Origin": f"http://{own}", "Host": own})[0] == 200
    assert admin.get("/ready", headers={"Host": f"localhost:{admin.port}"})[0] == 200
    assert admin.get("/ready", headers={"Host": f"admin.internal:{admin.port}"})[0] == 200
    assert admin.get("/ready", headers={"Host": f"[::1]:{admin.port}"})[0] == 200
    assert admin.get("/ready", headers={"Origin": "null"})[0] == 403
    assert "refused" in s.log()


def test_admin_address_must_be_loopback_unless_allowed(tmp_path):
    base = config(admin_port=9999).replace("@PORT@", "0")
    cfg = tmp_path / "remote.yaml"
    cfg.write_text(base.replace("address: 127.0.0.1, port_value: 9999", "address: 0.0.0.0, port_value: 9999"))
    r = run_pounce("-c", cfg, "--mode", "validate")
    assert r.returncode == 1
    assert "admin.address.socket_address.address: '0.0.0.0' is not a loopback address" in r.stderr
    cfg.write_text(cfg.read_text().replace("admin:\n", "admin:\n  allow_remote: true\n"))
    r = run_pounce("-c", cfg, "--mode", "validate")
    assert r.returncode == 0, r.stderr
    cfg.write_text(base.replace("admin:\n", "admin:\n  history_size: 0\n"))
    r = run_pounce("-c", cfg, "--mode", "validate")
    assert r.returncode == 1 and "admin.history_size: must be at least 1" in r.stderr


# --- chain swaps -------------------------------------------------------------------------

def test_invalid_chains_are_rejected_with_the_field_path(pounce, tmp_path):
    s, admin = start(pounce)
    cases = [
        # an unknown field inside a filter's config: the loader's path, the body's line
        ('- name: pounce.filters.direct_response\n'
         '  typed_config:\n'
         '    "@type": type.googleapis.com/pounce.filters.direct_response.v1.DirectResponse\n'
         '    bodee: "x"\n',
         "listeners[0].filter_chain[0].typed_config.bodee", 4,
         "unknown field 'bodee' (did you mean 'body'?)"),
        ('[{"name": "pounce.filters.nope"}, {"name": "pounce.filters.direct_response"}]',
         "listeners[0].filter_chain[0].name", 1, "unknown filter 'pounce.filters.nope'"),
        ('- name: pounce.filters.request_id\n',
         "listeners[0].filter_chain[0]", 1, "the last filter must be a terminal filter"),
        # a build error (the directory does not exist), found by the filter's factory
        ('filter_chain:\n'
         '- name: pounce.filters.static_files\n'
         '  typed_config:\n'
         '    "@type": type.googleapis.com/pounce.filters.static_files.v1.StaticFiles\n'
         f'    mounts: [{{prefix: /, directory: {tmp_path}/missing}}]\n'
         '- name: pounce.filters.direct_response\n',
         "listeners[0].filter_chain[0].typed_config.mounts[0].directory", 5, "cannot use"),
        ('- name: [unclosed', "", 1, ""),
        ('{name: pounce.filters.direct_response}', "listeners[0].name", 1, "unknown field 'name'"),
        ('[]', "listeners[0].filter_chain", 1, "must have at least one filter"),
        ('"just a string"', "listeners[0].filter_chain", 1, "expected a list of filters"),
        # yaml-cpp stops reading at a NUL: what came before it would be applied alone
        ('- name: pounce.filters.direct_response\n\x00garbage: [ unclosed', "", 2,
         "a NUL byte"),
    ]
    for body, path, line, message in cases:
        result = admin.put_chain(body, expect=400)
        assert result["status"] == "invalid", body
        errors = result["errors"]
        assert errors, result
        assert errors[0]["path"] == path, (body, errors)
        assert errors[0]["line"] == line, (body, errors)
        assert message in errors[0]["message"], (body, errors)
        assert result["text"].startswith("request body:")
    # Nothing changed.
    assert admin.json("GET", "/config/history")["current"] == 1
    assert get_body(s.port) == (200, b"one")
    assert "not applied (400)" in s.log()


def test_metrics_buckets_change_once_no_metrics_filter_is_left(pounce, tmp_path):
    """A failed PUT leaves nothing behind: not even the buckets its metrics filter named."""
    s, admin = start(pounce)
    metrics = ('- name: pounce.filters.metrics\n'
               '  typed_config:\n'
               '    "@type": type.googleapis.com/pounce.filters.metrics.v1.Metrics\n'
               '    buckets: [{}]\n')
    failing = (metrics.format("0.1, 1") +
               '- name: pounce.filters.static_files\n'
               '  typed_config:\n'
               '    "@type": type.googleapis.com/pounce.filters.static_files.v1.StaticFiles\n'
               f'    mounts: [{{prefix: /, directory: {tmp_path}/missing}}]\n' +
               direct_chain("two", indent=""))
    assert admin.put_chain(failing, expect=400)["errors"][0]["path"].endswith("directory")
    # Other buckets than the failed PUT named are taken.
    assert admin.put_chain(metrics.format("0.2, 2") + direct_chain("two", indent=""))["version"] == 2
    assert get_body(s.port) == (200, b"two")
    text = get_body(s.port, "/metrics")[1].decode()
    assert 'http_request_duration_seconds_bucket{listener="main",le="0.2"} 1' in text, text
    # While a metrics filter serves, other buckets are refused, with the reason.
    refused = admin.put_chain(metrics.format("0.3") + direct_chain("three", indent=""), expect=400)
    assert "only when no metrics filter is running" in refused["errors"][0]["message"], refused
    # Without one (the old chain is released after its last request), they are taken.
    assert admin.put_chain(direct_chain("three", indent=""))["version"] == 3
    wait_for(lambda: admin.call("PUT", "/listeners/main/filter_chain",
                                body=metrics.format("0.3") + direct_chain("four", indent=""))[0] == 200,
             what="the metrics filter of version 2 to be released")
    assert get_body(s.port) == (200, b"four")
    text = get_body(s.port, "/metrics")[1].decode()
    assert 'le="0.3"' in text and 'le="0.2"' not in text, text


def test_swap_is_seen_by_the_next_request_on_an_open_keepalive_connection(pounce):
    s, admin = start(pounce)
    conn = RawConnection(s.connect())
    raw_request(conn.sock)
    assert conn.response()[::2] == (200, b"one")
    result = admin.put_chain(direct_chain("two", indent=""))
    assert result["status"] == "applied" and result["version"] == 2
    assert result["acknowledged"] == 2 and result["acknowledged_by"] == "I/O threads"
    raw_request(conn.sock)
    status, headers, body = conn.response()
    assert (status, body) == (200, b"two"), "the very next request uses the new chain"
    assert "close" not in headers.get("connection", [""])[0], "the connection stays open"
    raw_request(conn.sock)
    assert conn.response()[2] == b"two"
    assert admin.json("GET", "/listeners")["listeners"][0]["chain_version"] == 2
    # The same chain again changes nothing and makes no version.
    again = admin.put_chain(direct_chain("two", indent=""))
    assert again["status"] == "unchanged" and again["version"] == 2


def test_100_swaps_under_load_fail_no_request(pounce):
    s, admin = start(pounce, chain=direct_chain("alpha"), concurrency=2)
    bodies = [b"alpha", b"beta"]
    with Load(s.port, threads=4, bodies=set(bodies), max_seconds=60) as load:
        load.wait_for_requests(50)
        versions = []
        for i in range(100):
            result = admin.put_chain(direct_chain(bodies[(i + 1) % 2].decode(), indent=""))
            versions.append(result["version"])
        served_during = load.ok
        time.sleep(0.1)
    assert versions == list(range(2, 102))
    assert load.failures == [], load.failures[:5]
    assert load.seen == set(bodies)
    assert served_during > 100, served_during
    history = admin.json("GET", "/config/history")
    assert history["current"] == 101 and len(history["versions"]) == 20  # history_size


def test_rollback_to_a_kept_version(pounce):
    s, admin = start(pounce, admin_extra="  history_size: 3")
    admin.put_chain(direct_chain("two", indent=""))
    admin.put_chain(direct_chain("three", indent=""))
    assert get_body(s.port)[1] == b"three"
    result = admin.json("POST", "/config/rollback?version=1")
    assert result["status"] == "applied" and result["version"] == 4
    assert result["changes"] == ["listener main: filter chain"]
    assert get_body(s.port)[1] == b"one"
    history = admin.json("GET", "/config/history")
    assert [v["version"] for v in history["versions"]] == [4, 3, 2]
    assert history["versions"][0]["source"] == "rollback to version 1"
    # Version 1 fell out of the history (history_size 3).
    assert admin.post("/config/rollback?version=1")[0] == 404
    assert admin.post("/config/rollback")[0] == 400
    assert admin.post("/config/rollback?version=x")[0] == 400
    assert admin.json("POST", "/config/rollback?version=2")["version"] == 5
    assert get_body(s.port)[1] == b"two"
    old = admin.get("/config_dump?format=yaml&version=3")
    assert old[0] == 200 and b"three" in old[2] and old[1]["x-pounce-config-version"] == "3"
    assert "rollback to version 1: config version 4 applied" in s.log()


def _versions_chain(app):
    return (f'- name: pounce.filters.asgi\n'
            f'  typed_config:\n'
            f'    "@type": type.googleapis.com/pounce.filters.asgi.v1.Asgi\n'
            f'    app: "versions:{app}"\n'
            f'    app_dir: [{APPS}]\n')


def test_an_app_that_sets_signal_handlers_on_import_leaves_the_signals_to_pounce(pounce):
    # Imported by a live swap (on the main thread, where signal.signal() works), its SIGTERM
    # handler would only set a flag for Python code that never runs there: the server would
    # ignore SIGTERM. Its handlers are undone, with a warning.
    s, admin = start(pounce)
    swap = _versions_chain("one").replace("versions:one", "signal_app:app")
    assert admin.put_chain(swap)["status"] == "applied"
    assert get_body(s.port) == (200, b"signal app")
    assert "app signal_app:app set a handler for signal 15" in s.log()
    assert "for signal 1 (Hangup)" in s.log()
    s.signal(signal.SIGHUP)  # still a reload (no config change: nothing to apply)
    wait_for(lambda: "SIGHUP" in s.log().split("set a handler for signal 1")[-1], what="the reload")
    s.signal(signal.SIGTERM)
    assert s.wait_exit(timeout=10) == 0
    assert "SIGTERM: draining" in s.log()


def test_app_swap_starts_the_new_lifespan_first_and_stops_the_old_after_its_requests(pounce, tmp_path):
    log = tmp_path / "versions.log"
    chain = "".join("  " + line + "\n" for line in _versions_chain("one").splitlines())
    s = pounce(config(chain=chain, concurrency=1), env={"VERSIONS_LOG": str(log)})
    admin = admin_for(s)
    assert get_body(s.port) == (200, b"one")
    slow = {}
    t = threading.Thread(target=lambda: slow.update(result=get_body(s.port, "/slow")))
    t.start()
    wait_for(lambda: admin.json("GET", "/listeners")["listeners"][0]["connections_active"] >= 1,
             what="the slow request")
    time.sleep(0.2)  # the slow request is inside app one now
    result = admin.put_chain(_versions_chain("two"))
    answered = time.monotonic()
    assert result["status"] == "applied"
    assert get_body(s.port) == (200, b"two"), "new requests go to the new app"
    t.join(timeout=10)
    assert slow["result"] == (200, b"one"), "the request in flight finished on the old app"
    wait_for(lambda: "one shutdown" in log.read_text(), what="the old app's lifespan shutdown")
    events = [line.split(" ", 1) for line in log.read_text().splitlines()]
    order = [e[1] for e in events]
    assert order == ["one startup", "two startup", "one request done", "one shutdown"], order
    at = {e[1]: float(e[0]) for e in events}
    assert at["two startup"] < answered, "the new app started before the swap was answered"
    assert at["one request done"] <= at["one shutdown"]
    # Rolling back starts app one afresh (its lifespan again) and stops two.
    admin.json("POST", "/config/rollback?version=1")
    assert get_body(s.port) == (200, b"one")
    wait_for(lambda: "two shutdown" in log.read_text(), what="app two's shutdown")
    assert log.read_text().splitlines()[-2].endswith("one startup")


def test_swap_keeps_a_running_app_that_did_not_change(pounce, tmp_path):
    log = tmp_path / "versions.log"
    asgi = "".join("  " + line + "\n" for line in _versions_chain("one").splitlines())
    s = pounce(config(chain=asgi, concurrency=1), env={"VERSIONS_LOG": str(log)})
    admin = admin_for(s)
    # A filter in front of the same app: the app is not imported or started again.
    chain = "- name: pounce.filters.request_id\n" + _versions_chain("one")
    assert admin.put_chain(chain)["status"] == "applied"
    assert get_body(s.port) == (200, b"one")
    time.sleep(0.3)
    assert [l.split(" ", 1)[1] for l in log.read_text().splitlines()] == ["one startup"]


# --- reload, watch_config ----------------------------------------------------------------

def test_reload_applies_admin_settings_read_live(pounce):
    """admin.allowed_hosts and admin.history_size take effect on reload (config.md), even
    when nothing else changed."""
    s, admin = start(pounce)
    host = {"Host": f"myadmin.internal:{admin.port}"}
    assert admin.get("/ready", headers=host)[0] == 403
    s.config_path.write_text(
        s.config_path.read_text().replace("admin:\n", "admin:\n  allowed_hosts: [myadmin.internal]\n"))
    result = admin.json("POST", "/reload")
    assert result["status"] == "applied", result
    assert result["changes"] == ["admin settings"], result
    assert admin.get("/ready", headers=host)[0] == 200


def test_reload_applies_the_file_chains_in_place_and_addresses_on_new_sockets(pounce):
    s, admin = start(pounce)
    keep = RawConnection(s.connect())
    raw_request(keep.sock)
    assert keep.response()[2] == b"one"
    second = free_port()
    text = s.config_path.read_text().replace('body: "one"', 'body: "reloaded"')
    text += f"""- name: extra
  address: {{socket_address: {{address: 127.0.0.1, port_value: {second}}}}}
  filter_chain:
{direct_chain("extra")}"""
    s.config_path.write_text(text)
    result = admin.json("POST", "/reload")
    assert result["status"] == "applied", result
    assert set(result["changes"]) == {"listener main: filter chain", "listener extra: added"}
    assert get_body(s.port)[1] == b"reloaded"
    raw_request(keep.sock)
    assert keep.response()[2] == b"reloaded", "the open connection was kept"
    assert get_body(second)[1] == b"extra"
    # Move "extra" to another port: the new socket opens, the old one closes.
    third = free_port()
    s.config_path.write_text(text.replace(f"port_value: {second}", f"port_value: {third}"))
    s.signal(signal.SIGHUP)
    wait_for(lambda: _answers(third), what="the moved listener")
    wait_for(lambda: not _answers(second), what="the old address to close")
    assert admin.json("GET", "/config/history")["versions"][0]["source"] == "SIGHUP"
    # An invalid file changes nothing and says where it is wrong.
    s.config_path.write_text(text.replace("filter_chain:", "filter_chian:", 1))
    result = admin.json("POST", "/reload", expect=400)
    assert result["errors"][0]["path"] == "listeners[0].filter_chian"
    assert result["errors"][0]["line"] > 0
    assert result["text"].startswith(str(s.config_path))
    assert get_body(s.port)[1] == b"reloaded" and _answers(third)


def _answers(port):
    try:
        return get_body(port, timeout=1)[0] == 200
    except OSError:
        return False


def test_reload_replaces_a_listener_whose_settings_changed_on_the_same_socket(pounce):
    s, admin = start(pounce, http="{server_header: first}")
    conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=5)
    conn.request("GET", "/")
    r = conn.getresponse()
    r.read()
    assert r.getheader("server") == "first"
    s.config_path.write_text(s.config_path.read_text().replace("server_header: first",
                                                               "server_header: second"))
    with Load(s.port, threads=2, keep_alive=False, bodies={b"one"}, max_seconds=20) as load:
        load.wait_for_requests(20)
        result = admin.json("POST", "/reload")
        load.wait_for_requests(load.ok + 20)
    assert result["changes"] == ["listener main: settings (replaced on the same socket)"]
    assert load.failures == [] and load.refused == 0
    conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=5)
    conn.request("GET", "/")
    assert conn.getresponse().getheader("server") == "second"


def test_reloads_fail_no_request_of_busy_keep_alive_clients(pounce):
    # Clients that send their next request as soon as they read a response (any keep-alive
    # client under load). A drained HTTP/1.1 connection is not closed under them while idle:
    # the request they just sent is answered, with Connection: close. A request left
    # unanswered on a closed keep-alive connection counts as failed here (most clients do
    # not send it again).
    s, admin = start(pounce, http="{server_header: s0}")
    stop = threading.Event()
    failures, served = [], [0]
    lock = threading.Lock()

    def client():
        conn = None
        deadline = time.monotonic() + 30
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
                conn.request("GET", "/")
                r = conn.getresponse()
                body = r.read()
                with lock:
                    served[0] += 1
                    if (r.status, body) != (200, b"one"):
                        failures.append((r.status, body))
                if r.getheader("connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                with lock:
                    failures.append(repr(e))
                if conn is not None:
                    conn.close()
                conn = None

    threads = [threading.Thread(target=client, daemon=True) for _ in range(6)]
    for t in threads:
        t.start()
    try:
        for n in range(1, 4):
            before = served[0]
            wait_for(lambda: served[0] >= before + 200, what="requests between reloads")
            text = s.config_path.read_text()
            s.config_path.write_text(text.replace(f"server_header: s{n - 1}", f"server_header: s{n}"))
            assert admin.json("POST", "/reload")["status"] == "applied"
        before = served[0]
        wait_for(lambda: served[0] >= before + 200, what="requests after the reloads")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=15)
    assert failures == [], failures[:5]


def test_watch_config_follows_a_configmap_style_symlink_swap(pounce, tmp_path):
    # A ConfigMap volume: config.yaml -> ..data/config.yaml, ..data -> ..<timestamp>/; an
    # update writes a new directory and renames a new ..data symlink over the old one.
    mount = tmp_path / "mount"
    mount.mkdir()
    port = free_port()
    text = config(admin_port=free_port(), extra="watch_config: true").replace("@PORT@", str(port))

    def publish(content, n):
        d = mount / f"..{n}"
        d.mkdir()
        (d / "config.yaml").write_text(content)
        tmp_link = mount / "..data_tmp"
        tmp_link.symlink_to(d.name)
        os.rename(tmp_link, mount / "..data")

    publish(text, 1)
    (mount / "config.yaml").symlink_to("..data/config.yaml")
    s = pounce(None, args=["-c", str(mount / "config.yaml")], port=port)
    assert get_body(port)[1] == b"one"
    publish(text.replace('body: "one"', 'body: "from the configmap"'), 2)
    wait_for(lambda: get_body(port)[1] == b"from the configmap", timeout=10,
             what="the watched config to apply")
    assert "watch_config:" in s.log() and "changed" in s.log()
    assert admin_for_port(text).json("GET", "/config/history")["versions"][0]["source"] == "watch_config"


def admin_for_port(text):
    return Admin(int(re.search(r"admin:.*?port_value\W+(\d+)", text, re.S).group(1)))


# --- drain -------------------------------------------------------------------------------

SLOW_ASGI = (f'  - name: pounce.filters.health\n    typed_config: {{"@type": {HEALTH_TYPE}, '
             f'path: /healthz}}\n'
             f'  - name: pounce.filters.asgi\n'
             f'    typed_config:\n'
             f'      "@type": type.googleapis.com/pounce.filters.asgi.v1.Asgi\n'
             f'      app: "probe:app"\n'
             f'      app_dir: [{APPS}]\n')


def test_drain_listeners_http1(pounce):
    s, admin = start(pounce, chain=SLOW_ASGI, concurrency=1, http="{shutdown_timeout: 20s}")
    idle = RawConnection(s.connect())
    raw_request(idle.sock, "/healthz")
    assert idle.response()[0] == 200
    busy = RawConnection(s.connect())
    raw_request(busy.sock, "/sleep?s=1")
    time.sleep(0.3)
    assert admin.post("/drain_listeners")[::2] == (200, b"OK\n")
    assert idle.closed_by_peer(timeout=5), "idle keep-alive connections close at once"
    status, headers, body = busy.response()
    assert status == 200 and headers["connection"] == ["close"], "in flight: finishes, then closes"
    assert busy.closed_by_peer(timeout=5)
    assert admin.get("/ready")[::2] == (503, b"DRAINING\n")

    def refused():
        try:
            socket.create_connection(("127.0.0.1", s.port), timeout=0.5).close()
            return False
        except OSError:
            return True
    wait_for(refused, timeout=5, what="the listener to stop")
    assert admin.json("GET", "/server_info")["state"] == "DRAINING"
    assert s.proc.poll() is None, "the process stays up (admin still answers)"
    s.signal(signal.SIGTERM)
    assert s.wait_exit(timeout=10) == 0


def test_a_draining_server_refuses_listener_changes_but_takes_chains(pounce):
    s, admin = start(pounce)
    assert admin.post("/drain_listeners")[0] == 200
    before = admin.json("GET", "/config/history")["current"]
    extra = free_port()
    s.config_path.write_text(s.config_path.read_text() + f"""- name: extra
  address: {{socket_address: {{address: 127.0.0.1, port_value: {extra}}}}}
  filter_chain:
{direct_chain("extra")}""")
    result = admin.json("POST", "/reload", expect=503)
    assert "draining" in result["message"] and "listener extra: added" in result["message"]
    assert admin.json("GET", "/config/history")["current"] == before
    assert not _answers(extra), "nothing was bound"
    assert admin.put_chain(direct_chain("two", indent=""))["status"] == "applied"


def test_graceful_drain_keeps_accepting_with_connection_close(pounce):
    s, admin = start(pounce, chain=SLOW_ASGI, concurrency=1)
    idle = RawConnection(s.connect())
    raw_request(idle.sock, "/healthz")
    assert idle.response()[0] == 200
    assert admin.post("/drain_listeners?graceful")[0] == 200
    assert idle.closed_by_peer(timeout=5)
    for _ in range(3):
        fresh = RawConnection(s.connect())
        raw_request(fresh.sock, "/healthz")
        status, headers, body = fresh.response()
        assert status == 503 and json.loads(body)["status"] == "draining"
        assert headers["connection"] == ["close"]
        assert fresh.closed_by_peer(timeout=5)
    conn = RawConnection(s.connect())
    raw_request(conn.sock, "/scope")
    status, headers, _ = conn.response()
    assert status == 200 and headers["connection"] == ["close"], "the app still answers"
    assert admin.post("/quitquitquit")[0] == 200
    assert s.wait_exit(timeout=10) == 0


def h2_get(client, stream_id, path):
    client.send(client.headers(stream_id, [(":method", "GET"), (":scheme", "http"),
                                           (":authority", "localhost"), (":path", path)]))


def test_swap_is_seen_by_the_next_stream_on_an_open_http2_connection(pounce):
    s, admin = start(pounce)
    c = H2Raw(s)
    try:
        h2_get(c, 1, "/")
        assert c.response(1)[::2] == (200, b"one")
        assert admin.put_chain(direct_chain("two", indent=""))["status"] == "applied"
        h2_get(c, 3, "/")
        assert c.response(3)[::2] == (200, b"two"), "the next stream uses the new chain"
        assert not c.eof and not any(isinstance(f, GoAwayFrame) for f in c.received)
    finally:
        c.close()


def test_drain_listeners_http2(pounce):
    s, admin = start(pounce, chain=SLOW_ASGI, concurrency=1, http="{shutdown_timeout: 20s}")
    idle, busy = H2Raw(s), H2Raw(s)
    try:
        h2_get(idle, 1, "/healthz")
        assert idle.response(1)[0] == 200
        h2_get(busy, 1, "/sleep?s=1")
        time.sleep(0.3)
        assert admin.post("/drain_listeners")[0] == 200
        # The idle connection gets GOAWAY (no error) and is closed at once.
        goaway = idle.goaway()
        assert goaway is not None and goaway.error_code == 0
        idle.read_to_eof()
        assert idle.eof
        # The busy one gets GOAWAY naming its stream; the stream finishes, then it closes.
        goaway = busy.goaway()
        assert goaway is not None and goaway.last_stream_id >= 1
        assert busy.response(1)[0] == 200
        busy.read_to_eof()
        assert busy.eof
        assert admin.get("/ready")[::2] == (503, b"DRAINING\n")
    finally:
        idle.close()
        busy.close()
    s.signal(signal.SIGTERM)
    assert s.wait_exit(timeout=10) == 0


# --- config dump round trip --------------------------------------------------------------

def test_config_dump_validates_and_serves_the_same(pounce, tmp_path):
    chain = ('  - name: pounce.filters.request_id\n'
             f'  - name: pounce.filters.health\n    typed_config: {{"@type": {HEALTH_TYPE}, '
             f'path: /healthz}}\n' + direct_chain("before"))
    s, admin = start(pounce, chain=chain, http="{server_header: dumped, keep_alive_timeout: 7s}")
    admin.put_chain('- name: pounce.filters.request_id\n' + direct_chain("after", indent=""))
    status, _, yaml_dump = admin.get("/config_dump?format=yaml")
    _, _, json_dump = admin.get("/config_dump")
    port = s.port
    for name, text in [("dump.yaml", yaml_dump), ("dump.json", json_dump)]:
        path = s.config_path.parent / name
        path.write_bytes(text)
        r = run_pounce("-c", path, "--mode", "validate")
        assert r.returncode == 0, (name, r.stderr)

    def probe(p):
        conn = http.client.HTTPConnection("127.0.0.1", p, timeout=5)
        conn.request("GET", "/")
        r = conn.getresponse()
        return r.status, r.read(), r.getheader("server"), r.getheader("x-request-id") is not None

    before = probe(port)
    assert before == (200, b"after", "dumped", True)
    s.signal(signal.SIGTERM)
    assert s.wait_exit() == 0
    again = pounce(None, args=["-c", str(s.config_path.parent / "dump.yaml")], port=port,
                   name="again")
    assert probe(port) == before
    again_admin = admin_for_port(yaml_dump.decode())
    assert again_admin.get("/config_dump?format=yaml")[2] == yaml_dump


# --- dashboard ---------------------------------------------------------------------------

BROWSER = ROOT / "test/integration/browser"


def test_dashboard_in_headless_chromium(pounce, tmp_path):
    if not (BROWSER / "node_modules/playwright-core").exists() or not os.path.exists("/usr/bin/chromium"):
        # tools/dev test (and so CI) installs both: there, a missing browser is a failure.
        if os.environ.get("CI"):
            pytest.fail("chromium or playwright-core is missing; tools/dev setup installs them")
        pytest.skip("tools/dev setup installs chromium and playwright-core")
    token = tmp_path / "token"
    token.write_text("browser-token")
    chain = "  - name: pounce.filters.metrics\n" + direct_chain("one")
    s = pounce(config(chain=chain, admin_extra=f"  token_file: {token}"))
    admin = admin_for(s, token="browser-token")
    shot = tmp_path / "dashboard.png"
    with Load(s.port, threads=2, bodies={b"one", b"from the browser"}, max_seconds=60) as load:
        r = subprocess.run(["node", str(BROWSER / "dashboard.mjs"), f"http://127.0.0.1:{admin.port}",
                            "browser-token", "from the browser", str(shot)],
                           capture_output=True, text=True, timeout=120, cwd=str(BROWSER))
        assert r.returncode == 0, r.stdout + r.stderr
        load.wait_for_requests(load.ok + 10)
    seen = json.loads(r.stdout.strip().splitlines()[-1])
    assert seen["asked_for_token"] and seen["state"] == "LIVE"
    assert seen["rps"] > 0
    assert seen["latency_p99"].endswith(("s", "ms", "µs"))
    assert seen["listeners"] == [{"name": "main", "chain": ["metrics", "direct_response"]}]
    assert any(c.startswith("http_requests_total") for c in seen["counters"])
    assert "direct_response" in seen["loaded_chain"]
    assert any("listeners[0].filter_chain[1].typed_config.bodee" in e for e in seen["errors"])
    assert seen["applied"].startswith("applied as version 2")
    assert seen["config_version"] == "2"
    assert seen["console_errors"] == []
    assert shot.stat().st_size > 10000
    # The change the browser made is live.
    assert get_body(s.port) == (200, b"from the browser")
    assert load.failures == []
    assert admin.json("GET", "/config/history")["versions"][0]["source"] == \
        "PUT /listeners/main/filter_chain"


def test_shipped_admin_config_runs(pounce):
    admin_port = free_port()
    s = pounce(None, args=["--config-yaml", str(ROOT / "configs/admin.yaml"), "--port", "@PORT@",
                           "--admin-port", str(admin_port)])
    admin = Admin(admin_port)
    assert get_body(s.port, "/livez")[0] == 200
    assert get_body(s.port, "/") == (200, b"Hello, world!\n")
    assert admin.get("/ready")[0] == 200
    dump = admin.json("GET", "/config_dump")
    assert dump["watch_config"] is True and dump["admin"]["history_size"] == 50
    # allowed_hosts from the file: a browser may use that name.
    assert admin.get("/ready", headers={"Host": f"pounce-admin.localhost:{admin_port}"})[0] == 200
    assert admin.get("/ready", headers={"Host": f"other.localhost:{admin_port}"})[0] == 403
    assert "watch_config: reloading when" in s.log()


def test_an_app_that_fails_to_start_is_refused_and_the_old_one_keeps_serving(pounce, tmp_path):
    log = tmp_path / "versions.log"
    asgi = "".join("  " + line + "\n" for line in _versions_chain("one").splitlines())
    s = pounce(config(chain=asgi, concurrency=1), env={"VERSIONS_LOG": str(log)})
    admin = admin_for(s)
    failing = _versions_chain("one").replace("versions:one", "lifespan_fail:app")
    result = admin.put_chain(failing, expect=400)
    assert result["errors"][0]["path"] == "listeners[0].filter_chain[0].typed_config"
    assert "database is unreachable" in result["errors"][0]["message"]
    missing = admin.put_chain(_versions_chain("one").replace("versions:one", "no_such_module:app"),
                              expect=400)
    assert missing["errors"][0]["path"].startswith("listeners[0].filter_chain[0].typed_config")
    assert "no_such_module" in missing["errors"][0]["message"]
    assert get_body(s.port) == (200, b"one")
    assert admin.json("GET", "/config/history")["current"] == 1


def test_shipped_remote_admin_config_runs_with_its_token(pounce, tmp_path):
    # As shipped it binds every interface and reads the token from /run/secrets; here the
    # same file on loopback, with the secret in a temporary file.
    token = tmp_path / "pounce-admin-token"
    token.write_text("t0ken\n")
    admin_port = free_port()
    text = (ROOT / "configs/admin-remote.yaml").read_text()
    text = text.replace("/run/secrets/pounce-admin-token", str(token))
    text = text.replace("port_value: 9901", f"port_value: {admin_port}")
    text = text.replace("address: 0.0.0.0", "address: 127.0.0.1").replace("app_dir: [..]",
                                                                          f"app_dir: [{ROOT}]")
    s = pounce(text.replace("port_value: 8000", "port_value: @PORT@"))
    assert get_body(s.port) == (200, b"Hello, world!\n")
    assert Admin(admin_port).get("/stats")[0] == 401
    admin = Admin(admin_port, token="t0ken")
    assert admin.get("/stats")[0] == 200
    assert admin.get("/ready", headers={"Host": f"pounce.internal:{admin_port}"})[0] == 200
    assert admin.json("GET", "/config_dump")["admin"]["allow_remote"] is True
