"""request_queue over real sockets.

With direct_response as the terminal a request holds its slot only while its I/O thread
handles it, so these tests cannot park requests in the queue on purpose (the unit tests do,
with a terminal that holds requests). What they do show: under contention from two I/O
threads, slots are handed across threads without losing a request or leaking a slot."""

import threading

from conftest import RawConnection, run_pounce
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
