"""Worker models: process workers under a supervisor, thread mode, crash restarts, the
restart budget, signals, and --reload."""

import os
import signal
import threading
import time

import httpx
import pytest

from conftest import ROOT, run_pounce, wait_for
from test_asgi import APPS, asgi_config

PROCESS = "workers: {mode: process, count: 2}\n"


def get(server, path, timeout=10):
    return httpx.get(server.url(path), timeout=timeout)


def worker_pids(server, attempts=60):
    pids = set()
    for _ in range(attempts):
        with httpx.Client() as c:  # a new connection each time: SO_REUSEPORT spreads them
            pids.add(c.get(server.url("/pid"), timeout=5).text)
        if len(pids) >= 2:
            break
    return pids


def test_two_processes_each_with_own_interpreter_and_lifespan(pounce):
    s = pounce(PROCESS + asgi_config())
    pids = worker_pids(s)
    assert len(pids) == 2
    assert str(s.proc.pid) not in pids, "the supervisor serves nothing itself"
    events = set()
    for _ in range(40):
        with httpx.Client() as c:
            events.update(c.get(s.url("/events")).json())
    assert {"pounce.worker.startup:0:0", "pounce.worker.startup:1:0"} <= events


def test_killed_worker_is_restarted_while_the_other_serves(pounce):
    s = pounce(PROCESS + asgi_config())
    pids = worker_pids(s)
    victim = int(sorted(pids)[0])
    failures = []
    ok = 0
    ok_after_kill = 0
    killed = threading.Event()
    stop = threading.Event()

    def load():
        nonlocal ok, ok_after_kill
        deadline = time.monotonic() + 20
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                with httpx.Client() as c:
                    r = c.get(s.url("/echo"), timeout=5)
                    ok += r.status_code == 200
                    ok_after_kill += r.status_code == 200 and killed.is_set()
            except httpx.HTTPError as exc:
                failures.append(exc)

    t = threading.Thread(target=load)
    t.start()
    time.sleep(0.3)
    os.kill(victim, signal.SIGKILL)
    killed.set()
    new = wait_for(lambda: (p := worker_pids(s, 10)) and str(victim) not in p and len(p) == 2 and p,
                   timeout=15, what="a replacement worker")
    time.sleep(1.0)  # keep the load on the replacement as well
    stop.set()
    t.join()
    assert ok_after_kill >= 5, (ok, ok_after_kill)
    # Only requests in flight on the killed process can fail.
    assert len(failures) <= 3, failures
    assert "restarting it" in s.log()
    assert len(new) == 2


def test_restart_budget_exhausted_exits_1(pounce):
    cfg = ("workers: {mode: process, count: 2, max_restarts: 2, restart_window: 60s}\n"
           + asgi_config())
    s = pounce(cfg)
    for _ in range(6):
        try:
            with httpx.Client() as c:
                c.get(s.url("/crash"), timeout=5)
        except httpx.HTTPError:
            pass
        if s.proc.poll() is not None:
            break
        time.sleep(0.5)
    assert s.wait_exit(timeout=30) == 1
    assert "exceed the restart budget" in s.log()


def test_sigterm_drains_every_worker(pounce):
    s = pounce(PROCESS + asgi_config())
    worker_pids(s)
    s.signal(signal.SIGTERM)
    assert s.wait_exit() == 0
    log = s.log()
    assert log.count("SIGTERM: draining") >= 2  # the supervisor and each worker
    assert "all workers stopped" in log


def test_worker_startup_failure_stops_the_supervisor(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(PROCESS + asgi_config(app="lifespan_fail:app").replace("@PORT@", "0"))
    r = run_pounce("-c", cfg, timeout=60)
    assert r.returncode == 1
    assert "database is unreachable" in r.stderr


def test_thread_mode_runs_several_loops(pounce):
    s = pounce("workers: {mode: thread, count: 2}\n" + asgi_config().replace("concurrency: 1", "concurrency: 2"))
    threads = set()
    for _ in range(60):
        with httpx.Client() as c:
            threads.add(c.get(s.url("/thread")).text)
        if len(threads) == 2:
            break
    assert len(threads) == 2
    assert "GIL build" in s.log()  # warned: threads share one GIL


def test_reload_serves_changed_code(pounce, tmp_path):
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    source = '''
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"VERSION"})
'''
    (app_dir / "live.py").write_text(source.replace("VERSION", "one"))
    s = pounce(None, args=["live:app", "--port", "@PORT@", "--reload", "--reload-dir", str(app_dir)],
               cwd=str(app_dir))
    assert get(s, "/").text == "one"
    time.sleep(0.2)
    (app_dir / "live.py").write_text(source.replace("VERSION", "two"))

    def changed():
        try:
            with httpx.Client() as c:
                return c.get(s.url("/"), timeout=5).text == "two"
        except httpx.HTTPError:
            return False
    wait_for(changed, timeout=20, what="the reloaded code")
    assert "changed: replacing workers" in s.log()
