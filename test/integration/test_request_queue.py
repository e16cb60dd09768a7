"""request_queue over real sockets.

With direct_response as the terminal a request holds its slot only while its I/O thread
handles it, so the first tests show only that under contention from two I/O threads slots
are handed across threads without losing a request or leaking a slot. The tests in front of
the probe ASGI app park requests on purpose (/sleep) to show queueing, FIFO admission,
shedding, max_wait, a waiter's disconnect, shadow mode and the queue's metrics."""

import json
import re
import threading
import time

from conftest import ROOT, RawConnection, run_pounce, wait_for
from edge_helpers import chain_config, request


def test_contention_across_io_threads_loses_nothing(pounce):
    s = pounce(chain_config(("request_queue", {"max_concurrent": 1, "max_queued": 1000,
                                               "max_wait": "10s"}), concurrency=2))
    results = []
    lock = threading.Lock()

    def client():
        c = RawConnection(s.connect(timeout=15))
        statuses = [request(s, f"/{i}", conn=c)[0] for i in range(150)]
        c.close()
        with lock:
            results.extend(statuses)

    threads = [threading.Thread(target=client) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(results) == 900
    assert set(results) == {200}
    # Every slot came back: the next requests still go straight through.
    assert all(request(s)[0] == 200 for _ in range(5))


def test_bad_max_wait_is_a_config_error(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(chain_config(("request_queue", {"max_concurrent": 4, "max_wait": "0s"}))
                   .replace("@PORT@", "1"))
    r = run_pounce("-c", cfg, "--mode", "validate")
    assert r.returncode == 1
    assert "filter_chain[0].typed_config.max_wait: must be greater than 0" in r.stderr, r.stderr


# --- the queue in front of a real app ------------------------------------------------------
#
# The probe app's /sleep?s=N holds a request (and so its slot) for N seconds. A metrics
# filter before the queue answers /metrics itself, so a scrape never takes a slot; the tests
# wait for the queue's gauges instead of sleeping.

APPS = ROOT / "test/integration/apps"


def queue_app_config(**queue):
    typed = {"@type": "type.googleapis.com/pounce.filters.request_queue.v1.RequestQueue",
             **queue}
    return f"""
concurrency: 1
listeners:
- name: main
  address: {{socket_address: {{address: 127.0.0.1, port_value: @PORT@}}}}
  filter_chain:
  - name: pounce.filters.metrics
    typed_config: {{"@type": type.googleapis.com/pounce.filters.metrics.v1.Metrics}}
  - name: pounce.filters.request_queue
    typed_config: {json.dumps(typed)}
  - name: pounce.filters.asgi
    typed_config:
      "@type": type.googleapis.com/pounce.filters.asgi.v1.Asgi
      app: "probe:app"
      app_dir: [{APPS}]
"""


def queue_metric(server, name):
    """The value of the queue metric `name` for listener main (0 when absent)."""
    status, _, body = request(server, "/metrics")
    assert status == 200
    pattern = re.compile(rf'^{re.escape(name)}\{{listener="main"\}} (\S+)$', re.M)
    match = pattern.search(body.decode())
    return float(match.group(1)) if match else 0.0


def wait_metric(server, name, value, timeout=10.0):
    wait_for(lambda: queue_metric(server, name) == value, timeout=timeout, interval=0.02,
             what=f"{name} == {value}")


def start_request(server, path):
    """Sends GET `path` on a new connection and returns it, response unread."""
    c = RawConnection(server.connect(timeout=15))
    c.send(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
    return c


def finish(conn, results, key):
    """Reads the response on `conn` into results[key] as (status, headers, body, done at)."""
    status, headers, body = conn.response()
    results[key] = (status, headers, body, time.monotonic())


def test_queued_request_waits_for_the_slot_and_a_full_queue_sheds_503(pounce):
    s = pounce(queue_app_config(max_concurrent=1, max_queued=1, max_wait="10s",
                                retry_after="3s"))
    results = {}
    begun = time.monotonic()
    first = start_request(s, "/sleep?s=2")
    wait_metric(s, "queue_in_flight", 1)
    second = start_request(s, "/sleep?s=0")
    wait_metric(s, "queue_queued", 1)
    readers = [threading.Thread(target=finish, args=(c, results, k))
               for k, c in (("first", first), ("second", second))]
    for t in readers:
        t.start()

    # Slot and queue are full: the third is shed at once, before the first is done.
    sent = time.monotonic()
    status, headers, _ = request(s, "/sleep?s=0")
    assert status == 503
    assert headers["retry-after"] == ["3"]
    assert time.monotonic() - sent < 1.8
    assert "first" not in results

    for t in readers:
        t.join(timeout=15)
    assert results["first"][:1] == (200,) and results["first"][2] == b"slept"
    assert results["second"][:1] == (200,) and results["second"][2] == b"slept"
    # The second cannot finish before the first's two-second sleep freed the slot. (The
    # readers' own clocks cannot order the two: both responses arrive within microseconds
    # and either reader thread may run first.)
    assert results["second"][3] - begun >= 1.95, "the queued request ran after the first"
    assert queue_metric(s, "queue_shed_total") == 1
    assert queue_metric(s, "queue_in_flight") == 0
    assert queue_metric(s, "queue_queued") == 0
    # Every request let through is in the wait histogram (the first at once, the second
    # after waiting); the shed one is not, as it did not wait max_wait.
    assert queue_metric(s, "queue_wait_seconds_count") == 2
    assert queue_metric(s, "queue_wait_seconds_sum") >= 1.0
    for c in (first, second):
        c.close()


def test_waiters_are_admitted_first_in_first_out(pounce):
    s = pounce(queue_app_config(max_concurrent=1, max_queued=2, max_wait="10s"))
    results = {}
    first = start_request(s, "/sleep?s=0.5")
    wait_metric(s, "queue_in_flight", 1)
    # The earlier waiter sleeps longer: run in arrival order it still finishes first (at
    # 0.8 s, the third at 0.9 s); run newest first it would finish last (the third at 0.6 s,
    # the second at 0.9 s). Every finish is at least 0.1 s from the next, so the readers'
    # clocks order them.
    second = start_request(s, "/sleep?s=0.3")
    wait_metric(s, "queue_queued", 1)
    third = start_request(s, "/sleep?s=0.1")
    wait_metric(s, "queue_queued", 2)
    readers = [threading.Thread(target=finish, args=(c, results, k))
               for k, c in (("first", first), ("second", second), ("third", third))]
    for t in readers:
        t.start()
    for t in readers:
        t.join(timeout=15)
    assert [results[k][0] for k in ("first", "second", "third")] == [200, 200, 200]
    assert results["first"][3] <= results["second"][3] <= results["third"][3]
    for c in (first, second, third):
        c.close()


def test_request_waiting_max_wait_gets_503(pounce):
    s = pounce(queue_app_config(max_concurrent=1, max_queued=1, max_wait="500ms"))
    first = start_request(s, "/sleep?s=3")
    wait_metric(s, "queue_in_flight", 1)
    sent = time.monotonic()
    status, headers, _ = request(s, "/sleep?s=0")
    waited = time.monotonic() - sent
    assert status == 503
    assert headers["retry-after"] == ["5"]  # the default
    assert 0.4 <= waited < 2.5, waited
    assert queue_metric(s, "queue_shed_total") == 1
    # Shed after max_wait, so it is in the wait histogram (with the first, let in at once).
    assert queue_metric(s, "queue_wait_seconds_count") == 2
    # The request holding the slot is not affected.
    assert first.response()[0] == 200
    first.close()


def test_waiter_whose_client_leaves_frees_its_place_in_the_queue(pounce):
    s = pounce(queue_app_config(max_concurrent=1, max_queued=1, max_wait="10s"))
    first = start_request(s, "/sleep?s=2")
    wait_metric(s, "queue_in_flight", 1)
    leaver = start_request(s, "/sleep?s=0")
    wait_metric(s, "queue_queued", 1)
    leaver.close()
    wait_metric(s, "queue_queued", 0)
    # The place is free again: the next request waits (it is not shed) and gets through.
    results = {}
    later = start_request(s, "/sleep?s=0")
    wait_metric(s, "queue_queued", 1)
    finish(later, results, "later")
    assert results["later"][0] == 200
    assert first.response()[0] == 200
    assert queue_metric(s, "queue_shed_total") == 0
    for c in (first, later):
        c.close()


def test_shadow_mode_lets_everything_through_and_counts_would_be_sheds(pounce):
    s = pounce(queue_app_config(max_concurrent=1, max_queued=0, shadow=True))
    results = {}
    conns = []
    start = time.monotonic()
    for i in range(3):
        conns.append(start_request(s, "/sleep?s=1"))
        wait_metric(s, "queue_in_flight", i + 1)  # in flight together, nobody queued
    assert queue_metric(s, "queue_queued") == 0
    readers = [threading.Thread(target=finish, args=(c, results, i)) for i, c in enumerate(conns)]
    for t in readers:
        t.start()
    for t in readers:
        t.join(timeout=15)
    assert [results[i][0] for i in range(3)] == [200, 200, 200]
    assert time.monotonic() - start < 2.8, "shadow mode must not serialise requests"
    # The second and third arrived with max_concurrent + max_queued (1) in flight.
    assert queue_metric(s, "queue_shadow_shed_total") == 2
    assert queue_metric(s, "queue_shed_total") == 0
    for c in conns:
        c.close()
