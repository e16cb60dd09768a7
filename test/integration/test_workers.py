"""Worker models: process workers under a supervisor, thread mode, crash restarts, the
restart budget, signals, and --reload."""

import http.client
import os
import signal
import subprocess
import threading
import time

import httpx
import pytest

from conftest import BINARY, ROOT, run_pounce, wait_for
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


def test_sigterm_during_start_up_is_a_clean_stop(tmp_path):
    # systemd's stop during a slow start: asked for, so exit 0, not "failed to start".
    cfg = tmp_path / "c.yaml"
    cfg.write_text(PROCESS + asgi_config(app="slow_import:app").replace("@PORT@", "0"))
    proc = subprocess.Popen([str(BINARY), "-c", str(cfg)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "SLOW_IMPORT_SECONDS": "3"})
    try:
        time.sleep(1)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out
    assert "failed to start" not in out and "[error]" not in out, out
    assert "stopped during start-up" in out
    leftover = [p for p in os.listdir("/proc") if p.isdigit() and _cmdline(p).endswith(str(cfg))]
    assert leftover == [], "no worker outlives the supervisor"


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


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


RELOAD_APP = '''
import pathlib

HERE = pathlib.Path(__file__).parent
DATA = b" ".join((HERE / name).read_bytes().strip() for name in DATA_FILES)


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"VERSION" + DATA})
'''


def reload_app(app_dir, version, data_files=()):
    """Writes app_dir/live.py answering `version`, then the contents of `data_files` as they
    were when the module was imported."""
    text = RELOAD_APP.replace("VERSION", version).replace("DATA_FILES", repr(tuple(data_files)))
    (app_dir / "live.py").write_text(text)


def start_reloading(pounce, app_dir, *args):
    s = pounce(None, args=["live:app", "--port", "@PORT@", "--reload", "--reload-dir",
                           str(app_dir), *args], cwd=str(app_dir))
    # The watcher starts once the workers are ready; a change before that goes unseen.
    wait_for(lambda: "reload: watching" in s.log(), timeout=20, what="the file watcher")
    return s


def fresh_get(port, timeout=5):
    """GET / on a new connection (so it goes through accept); returns (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/")
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def test_reload_serves_changed_code_without_refusing_a_connection(pounce, tmp_path):
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    reload_app(app_dir, "one")
    s = start_reloading(pounce, app_dir)
    assert fresh_get(s.port) == (200, b"one")

    # A client polls on fresh connections, before, during and after the worker is replaced.
    # The supervisor keeps the listening socket, so every connection is answered, by the old
    # code or the new; none is refused or reset.
    answers, failures = [], []
    replaced = threading.Event()
    stop = threading.Event()

    def poll():
        deadline = time.monotonic() + 30
        after_replaced = 0
        for _ in range(3000):
            if stop.is_set() or time.monotonic() > deadline or after_replaced >= 50:
                return
            try:
                answers.append(fresh_get(s.port))
            except (OSError, http.client.HTTPException) as exc:
                failures.append(repr(exc))
            after_replaced += replaced.is_set()
            time.sleep(0.005)

    t = threading.Thread(target=poll)
    t.start()
    try:
        wait_for(lambda: len(answers) >= 10, what="answers before the change")
        reload_app(app_dir, "two")
        wait_for(lambda: "changed: 1 worker replaced" in s.log(), timeout=20,
                 what="the worker to be replaced")
        replaced.set()  # keep polling while the old worker drains and exits
        t.join(timeout=40)
    finally:
        stop.set()
        t.join()
    assert not failures, failures
    assert set(answers) <= {(200, b"one"), (200, b"two")}, set(answers)
    assert answers[0] == (200, b"one") and answers[-20:] == [(200, b"two")] * 20
    assert "live.py changed: replacing workers one at a time" in s.log()
    assert s.proc.poll() is None


def test_reload_include_adds_endings_to_watch(pounce, tmp_path):
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "page.html").write_text("page1")
    (app_dir / "notes.txt").write_text("notes1")
    reload_app(app_dir, "v:", ["page.html", "notes.txt"])
    s = start_reloading(pounce, app_dir, "--reload-include", ".css,html")
    assert fresh_get(s.port) == (200, b"v:page1 notes1")

    # .txt is neither .py nor included: no restart within many reload delays (200ms) and
    # watcher polls (100ms); the worker keeps what it read at import.
    (app_dir / "notes.txt").write_text("notes2")
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        assert "replacing workers" not in s.log()
        assert fresh_get(s.port) == (200, b"v:page1 notes1")
        time.sleep(0.1)

    # .html is included (given without its dot): the change restarts the worker, which reads
    # both files afresh.
    (app_dir / "page.html").write_text("page2")

    def reloaded():
        try:
            return fresh_get(s.port) == (200, b"v:page2 notes2")
        except (OSError, http.client.HTTPException):
            return False
    wait_for(reloaded, timeout=20, what="the reload after the .html change")
    log = s.log()
    assert "page.html changed: replacing workers one at a time" in log
    assert log.count("replacing workers") == 1 and "notes.txt changed" not in log
