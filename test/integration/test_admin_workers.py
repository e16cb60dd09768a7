"""The admin API in process mode: the supervisor is the control plane; chain swaps are built
by every worker process and published by all of them before the answer; reads are gathered
from every worker; SIGHUP and POST /reload replace the workers one at a time."""

import os
import signal
import socket
import textwrap
import threading
import time

import httpx

from admin_helpers import Load, admin_for, config, direct_chain, get_body
from conftest import ROOT, free_port, wait_for
from test_admin import HEALTH_TYPE

PROCESS = "workers: {mode: process, count: 2}"


def start(pounce, chain=None, concurrency=1, **kw):
    s = pounce(config(chain=chain, extra=PROCESS, concurrency=concurrency, **kw))
    admin = admin_for(s)
    wait_for(lambda: len(admin.json("GET", "/server_info")["workers"]) == 2, what="2 workers")
    return s, admin


def bodies_from_new_connections(port, n=40):
    seen = set()
    for _ in range(n):
        seen.add(get_body(port)[1])  # a new connection each time: SO_REUSEPORT spreads them
    return seen


def test_swap_is_built_and_published_by_every_worker(pounce):
    s, admin = start(pounce)
    info = admin.json("GET", "/server_info")
    assert info["mode"] == "process workers"
    assert [w["worker_id"] for w in info["workers"]] == [0, 1]
    assert s.proc.pid not in {w["pid"] for w in info["workers"]}
    result = admin.put_chain(direct_chain("two", indent=""))
    assert result["status"] == "applied"
    assert result["acknowledged"] == 2 and result["acknowledged_by"] == "worker processes"
    assert bodies_from_new_connections(s.port) == {b"two"}
    listeners = admin.json("GET", "/listeners")["listeners"]
    assert listeners[0]["processes"] == 2 and listeners[0]["consistent"]
    assert listeners[0]["chain_version"] == 2
    assert all(w["config_version"] == 2 for w in admin.json("GET", "/server_info")["workers"])
    dump = admin.json("GET", "/config_dump")
    assert dump["listeners"][0]["filter_chain"][0]["typed_config"]["body"] == "two"


def test_a_chain_that_fails_to_build_changes_no_worker(pounce, tmp_path):
    s, admin = start(pounce)
    body = ('- name: pounce.filters.static_files\n'
            '  typed_config:\n'
            '    "@type": type.googleapis.com/pounce.filters.static_files.v1.StaticFiles\n'
            f'    mounts: [{{prefix: /, directory: {tmp_path}/missing}}]\n'
            '- name: pounce.filters.direct_response\n')
    result = admin.put_chain(body, expect=400)
    error = result["errors"][0]
    assert error["path"] == "listeners[0].filter_chain[0].typed_config.mounts[0].directory"
    assert error["line"] == 4, "the supervisor adds the body's line to the worker's error"
    assert result["version"] == 1
    assert bodies_from_new_connections(s.port, 20) == {b"one"}
    schema = admin.put_chain("- name: pounce.filters.direct_response\n  typo: 1\n", expect=400)
    assert schema["errors"][0]["path"] == "listeners[0].filter_chain[0].typo"


def test_reads_are_gathered_from_every_worker(pounce):
    chain = (f'  - name: pounce.filters.health\n    typed_config: {{"@type": {HEALTH_TYPE}, '
             f'path: /healthz}}\n' + direct_chain("one"))
    s, admin = start(pounce, chain=chain)
    for _ in range(30):
        assert get_body(s.port)[0] == 200
    stats = {f["name"]: f for f in admin.json("GET", "/stats?format=json")["stats"]}
    requests = {tuple(x["labels"].values()): x["value"]
                for x in stats["pounce_listener_requests_total"]["series"]}
    assert requests[("main",)] == 30, "both workers' counts, summed"
    per_worker = admin.json("GET", "/server_info")["workers"]
    assert len({w["pid"] for w in per_worker}) == 2
    assert b'pounce_listener_requests_total{listener="main"} 30' in admin.get("/stats/prometheus")[2]
    # Health: every worker's health filter fails, and a worker started later too.
    admin.post("/healthcheck/fail")
    assert {get_body(s.port, "/healthz")[0] for _ in range(20)} == {503}
    victim = per_worker[0]["pid"]
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: (w := admin.json("GET", "/server_info")["workers"]) and len(w) == 2
             and victim not in {x["pid"] for x in w}, timeout=15, what="a replacement worker")
    assert {get_body(s.port, "/healthz")[0] for _ in range(20)} == {503}
    admin.post("/healthcheck/ok")
    assert {get_body(s.port, "/healthz")[0] for _ in range(20)} == {200}


def test_merged_counters_never_go_back_when_workers_are_replaced(pounce):
    """Prometheus reads a counter that goes down as a reset (a false spike in rate()): the
    counts of a worker that crashed or was replaced stay in the merged /stats."""
    s, admin = start(pounce)

    def total():
        stats = {f["name"]: f for f in admin.json("GET", "/stats?format=json")["stats"]}
        series = stats["pounce_listener_requests_total"]["series"]
        return sum(x["value"] for x in series if x["labels"].get("listener") == "main")

    for _ in range(30):
        assert get_body(s.port)[0] == 200
    assert total() == 30
    victim = admin.json("GET", "/server_info")["workers"][0]["pid"]
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: (w := admin.json("GET", "/server_info")["workers"]) and len(w) == 2
             and victim not in {x["pid"] for x in w}, timeout=15, what="a replacement worker")
    assert total() == 30, "the crashed worker's counts stay"
    for _ in range(10):
        assert get_body(s.port)[0] == 200
    assert total() == 40
    assert admin.json("POST", "/reload")["status"] == "applied"
    assert total() == 40, "the replaced workers' counts stay"
    for _ in range(5):
        assert get_body(s.port)[0] == 200
    assert total() == 45


def test_stats_answer_at_once_while_workers_build_a_slow_chain(pounce):
    """A worker busy importing an app for a chain swap counts with its previous report:
    a Prometheus scrape of /stats does not wait for the import (it waited up to 5 s)."""
    s = pounce(config(extra=PROCESS, concurrency=1), env={"SLOW_IMPORT_SECONDS": "3"})
    admin = admin_for(s)
    wait_for(lambda: len(admin.json("GET", "/server_info")["workers"]) == 2, what="2 workers")
    for _ in range(10):
        assert get_body(s.port)[0] == 200
    stats = admin.json("GET", "/stats?format=json")["stats"]
    result = {}
    swap = threading.Thread(target=lambda: result.update(
        admin.put_chain(textwrap.dedent(ASGI.replace('"probe:app"', '"slow_import:app"')))))
    swap.start()
    try:
        time.sleep(0.5)  # the swap has begun: both workers are importing the app
        started = time.monotonic()
        stats = {f["name"]: f for f in admin.json("GET", "/stats?format=json")["stats"]}
        took = time.monotonic() - started
        assert swap.is_alive(), "the swap is still importing"
    finally:
        swap.join(timeout=30)
    assert took < 1.5, took
    series = stats["pounce_listener_requests_total"]["series"]
    assert sum(x["value"] for x in series if x["labels"].get("listener") == "main") == 10
    assert result.get("status") == "applied", result


def test_a_respawned_worker_starts_with_the_swapped_chain(pounce):
    s, admin = start(pounce)
    admin.put_chain(direct_chain("swapped", indent=""))
    victim = admin.json("GET", "/server_info")["workers"][1]["pid"]
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: (w := admin.json("GET", "/server_info")["workers"]) and len(w) == 2
             and victim not in {x["pid"] for x in w}, timeout=15, what="a replacement worker")
    assert bodies_from_new_connections(s.port) == {b"swapped"}
    assert all(w["config_version"] == 2 for w in admin.json("GET", "/server_info")["workers"])


def test_a_respawned_worker_reports_the_chain_versions_the_others_serve(pounce):
    # Chain versions say which config built a listener's chain; a worker started after a
    # swap of one listener's chain must agree with the others on both listeners.
    side = free_port()
    s = pounce(config(extra=PROCESS, concurrency=1) +
               "- name: side\n"
               f"  address: {{socket_address: {{address: 127.0.0.1, port_value: {side}}}}}\n"
               "  filter_chain:\n" + direct_chain("side"))
    admin = admin_for(s)
    wait_for(lambda: len(admin.json("GET", "/server_info")["workers"]) == 2, what="2 workers")
    admin.put_chain(direct_chain("swapped", indent=""))
    victim = admin.json("GET", "/server_info")["workers"][0]["pid"]
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: (w := admin.json("GET", "/server_info")["workers"]) and len(w) == 2
             and victim not in {x["pid"] for x in w}, timeout=15, what="a replacement worker")
    listeners = {l["name"]: l for l in admin.json("GET", "/listeners")["listeners"]}
    assert listeners["main"]["processes"] == 2 and listeners["main"]["consistent"], listeners
    assert listeners["side"]["processes"] == 2 and listeners["side"]["consistent"], listeners
    assert listeners["main"]["chain_version"] == 2
    assert listeners["side"]["chain_version"] == 1
    assert bodies_from_new_connections(side, 10) == {b"side"}


def test_swaps_under_load_in_process_mode_fail_no_request(pounce):
    s, admin = start(pounce, chain=direct_chain("alpha"))
    with Load(s.port, threads=4, bodies={b"alpha", b"beta"}, max_seconds=60) as load:
        load.wait_for_requests(50)
        for i in range(30):
            assert admin.put_chain(direct_chain(["beta", "alpha"][i % 2], indent=""))["status"] == "applied"
        time.sleep(0.1)
    assert load.failures == [], load.failures[:5]
    assert load.seen == {b"alpha", b"beta"}


ASGI = (f'  - name: pounce.filters.asgi\n'
        f'    typed_config:\n'
        f'      "@type": type.googleapis.com/pounce.filters.asgi.v1.Asgi\n'
        f'      app: "probe:app"\n'
        f'      app_dir: [{ROOT / "test/integration/apps"}]\n')


def test_sighup_replaces_workers_one_at_a_time_refusing_no_connection(pounce):
    s, admin = start(pounce)
    pids = {w["pid"] for w in admin.json("GET", "/server_info")["workers"]}
    s.config_path.write_text(s.config_path.read_text().replace('body: "one"', 'body: "two"'))
    with Load(s.port, threads=4, keep_alive=False, bodies={b"one", b"two"}, max_seconds=60) as load:
        load.wait_for_requests(50)
        s.signal(signal.SIGHUP)
        wait_for(lambda: "SIGHUP: 2 workers replaced" in s.log(), timeout=30, what="the reload")
        load.wait_for_requests(load.ok + 100)
        s.signal(signal.SIGHUP)
        wait_for(lambda: s.log().count("SIGHUP: 2 workers replaced") == 2, timeout=30,
                 what="the second reload")
        load.wait_for_requests(load.ok + 100)
    assert load.refused == 0
    assert load.failures == [], load.failures[:5]
    assert b"two" in load.seen
    assert bodies_from_new_connections(s.port, 20) == {b"two"}
    new = {w["pid"] for w in admin.json("GET", "/server_info")["workers"]}
    assert len(new) == 2 and not (new & pids)
    history = admin.json("GET", "/config/history")
    assert [v["source"] for v in history["versions"][:2]] == ["SIGHUP", "SIGHUP"]


def test_sighup_rolling_reload_of_an_asgi_app_under_load(pounce):
    # Each new worker imports the app and runs its lifespan before the old one retires:
    # the window is long, and no connection may be refused or dropped in it.
    s, admin = start(pounce, chain=ASGI)
    pids = {w["pid"] for w in admin.json("GET", "/server_info")["workers"]}
    with Load(s.port, threads=4, keep_alive=False, path="/pid", max_seconds=60) as load:
        load.wait_for_requests(50)
        s.signal(signal.SIGHUP)
        wait_for(lambda: "SIGHUP: 2 workers replaced" in s.log(), timeout=60, what="the reload")
        load.wait_for_requests(load.ok + 100)
    assert load.refused == 0
    assert load.failures == [], load.failures[:5]
    new = {w["pid"] for w in admin.json("GET", "/server_info")["workers"]}
    assert not (new & pids)
    served = {int(b) for b in load.seen}
    assert pids & served and new & served, "old and new workers both served during the reload"


def test_a_restart_refused_by_a_drain_is_not_a_crash(pounce):
    # A worker crashes; before its restart (100 ms later) the listeners are drained, so the
    # restart is refused. That refusal is no second crash: with a budget of 1 it would stop
    # the server, which a drain must not do.
    s = pounce(config(extra="workers: {mode: process, count: 2, max_restarts: 1}",
                      concurrency=1))
    admin = admin_for(s)
    wait_for(lambda: len(admin.json("GET", "/server_info")["workers"]) == 2, what="2 workers")
    victim = admin.json("GET", "/server_info")["workers"][0]["pid"]
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: "restarting it in" in s.log(), what="the crash to be seen")
    assert admin.post("/drain_listeners")[0] == 200
    wait_for(lambda: "not starting worker" in s.log(), timeout=10, what="the refused restart")
    time.sleep(0.3)
    assert s.proc.poll() is None, "the drained server stays up"
    assert "restart budget" not in s.log() and "did not start again" not in s.log()
    assert admin.get("/ready")[0] == 503


def test_a_drain_during_start_up_keeps_the_started_workers(pounce):
    # Each worker takes 1 s to import its app; the listeners are drained as worker 0 is
    # ready. Worker 1 is then either refused (not started) or drained once ready, by the
    # race between the two; either way the server stays up, drained, and nothing fails.
    chain = ASGI.replace('"probe:app"', '"slow_import:app"')
    s = pounce(config(chain=chain, extra=PROCESS, concurrency=1),
               env={"SLOW_IMPORT_SECONDS": "1"})
    admin = admin_for(s)
    wait_for(lambda: "w0 [info] [main] ready" in s.log(), timeout=20, what="worker 0")
    assert admin.post("/drain_listeners")[0] == 200
    wait_for(lambda: ("listeners drained during start-up" in s.log() or
                      "all 2 workers ready" in s.log()), timeout=20,
             what=f"the start-up to end:\n{s.log()}")
    time.sleep(0.3)
    assert s.proc.poll() is None and "failed to start" not in s.log()
    assert admin.get("/ready")[0] == 503
    s.signal(signal.SIGTERM)
    assert s.wait_exit(timeout=20) == 0


def test_failed_reloads_keep_the_old_workers_and_are_not_crashes(pounce):
    # A new worker that cannot start (its app does not import) fails the reload; it is not
    # restarted, not charged to the crash budget (5 in 60 s), and leaves no extra worker.
    s, admin = start(pounce, chain=ASGI)
    pids = sorted(w["pid"] for w in admin.json("GET", "/server_info")["workers"])
    good = s.config_path.read_text()
    s.config_path.write_text(good.replace('"probe:app"', '"broken_import:app"'))
    for attempt in range(7):
        result = admin.json("POST", "/reload", expect=500)
        assert "the old workers" in result["message"], result
    time.sleep(0.5)  # a restart would come 100 ms after the failed worker's exit
    assert sorted(w["pid"] for w in admin.json("GET", "/server_info")["workers"]) == pids
    assert len([p for p in os.listdir("/proc") if p.isdigit() and _parent(p) == s.proc.pid]) == 2
    assert "restarting it" not in s.log() and "restart budget" not in s.log()
    assert s.proc.poll() is None
    assert get_body(s.port, "/pid")[0] == 200
    # Fixed, the next reload applies.
    s.config_path.write_text(good)
    assert admin.json("POST", "/reload")["status"] == "applied"


def _parent(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def test_reload_with_a_moved_listener_binds_before_it_closes(pounce):
    s, admin = start(pounce)
    moved = free_port()
    s.config_path.write_text(s.config_path.read_text().replace(f"port_value: {s.port}",
                                                               f"port_value: {moved}"))
    result = admin.json("POST", "/reload")
    assert result["status"] == "applied", result
    assert "listener main: address (new socket)" in result["changes"]
    assert bodies_from_new_connections(moved, 10) == {b"one"}

    def closed():
        try:
            socket.create_connection(("127.0.0.1", s.port), timeout=0.5).close()
            return False
        except OSError:
            return True
    wait_for(closed, timeout=10, what="the old address to close")
    # An address that cannot be bound fails the reload and changes nothing.
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    taken = blocker.getsockname()[1]
    s.config_path.write_text(s.config_path.read_text().replace(f"port_value: {moved}",
                                                               f"port_value: {taken}"))
    result = admin.json("POST", "/reload", expect=400)
    assert result["errors"][0]["path"] == "listeners[0].address"
    blocker.close()
    assert bodies_from_new_connections(moved, 10) == {b"one"}


def test_drain_and_quit_in_process_mode(pounce):
    s, admin = start(pounce)
    with httpx.Client() as c:
        assert c.get(s.url("/")).status_code == 200
    admin.post("/drain_listeners")
    assert admin.get("/ready")[::2] == (503, b"DRAINING\n")

    def refused():
        try:
            socket.create_connection(("127.0.0.1", s.port), timeout=0.5).close()
            return False
        except OSError:
            return True
    wait_for(refused, timeout=10, what="every worker to stop accepting")
    assert all(w["draining"] for w in admin.json("GET", "/server_info")["workers"])
    assert admin.post("/quitquitquit")[0] == 200
    assert s.wait_exit(timeout=20) == 0
    assert "all workers stopped" in s.log()


def test_a_draining_supervisor_refuses_reloads_and_listener_changes(pounce):
    s, admin = start(pounce)
    assert admin.post("/drain_listeners?graceful")[0] == 200
    pids = {w["pid"] for w in admin.json("GET", "/server_info")["workers"]}
    result = admin.json("POST", "/reload", expect=503)
    assert "draining" in result["message"]
    assert {w["pid"] for w in admin.json("GET", "/server_info")["workers"]} == pids, \
        "no worker was replaced"
    assert admin.put_chain(direct_chain("two", indent=""))["status"] == "applied"
