"""admin: latency and throughput while filter chains are swapped through the admin API.

  tools/bench/bench --suite admin [--duration 10]

For each workload, one server (pinned like every other suite) is measured with wrk twice:
steady state, then while a client PUTs a new filter chain every 100 ms (alternating two
chains; each swap is built, published to every I/O thread and acknowledged). The target:
throughput during swaps >= 90 % of steady state, p99 <= 2x the steady-state p99.

Loaded by tools/bench/bench, which calls run(bench, tmp, duration, results).
"""

import http.client
import json
import re
import threading
import time

SWAP_INTERVAL = 0.1

DIRECT_TYPE = "type.googleapis.com/pounce.filters.direct_response.v1.DirectResponse"


def seconds(text):
    """wrk's "1.23ms" / "850.00us" / "1.02s" → seconds."""
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    if not m:
        return float("nan")
    return float(m.group(1)) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[m.group(2)]


class Swapper(threading.Thread):
    """PUTs the given chains in turn every SWAP_INTERVAL until stopped."""

    def __init__(self, admin_port, chains):
        super().__init__(daemon=True)
        self.admin_port = admin_port
        self.chains = chains
        self.stop = threading.Event()
        self.applied = 0
        self.failed = 0
        self.took_ms = []

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=30)
        i = 0
        next_at = time.monotonic()
        while not self.stop.is_set():
            conn.request("PUT", "/listeners/bench/filter_chain", body=self.chains[i % 2])
            r = conn.getresponse()
            body = r.read()
            if r.status == 200 and json.loads(body)["status"] == "applied":
                self.applied += 1
                self.took_ms.append(json.loads(body)["took_ms"])
            else:
                self.failed += 1
            i += 1
            next_at += SWAP_INTERVAL
            self.stop.wait(max(0.0, next_at - time.monotonic()))
        conn.close()


def workload(bench, tmp, duration, results, label, chain_a, chain_b):
    port = bench.free_port()
    admin_port = bench.free_port()
    indented = "".join("  " + line + "\n" for line in chain_a.splitlines())
    cfg = bench.pounce_config(
        tmp, indented,
        extra=f"admin: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {admin_port}}}}}}}",
        port=port)
    url = f"http://127.0.0.1:{port}/"
    with bench.server([str(bench.POUNCE), "-c", str(cfg)], port):
        bench.wrk(url, 1)  # warm up
        steady = bench.wrk(url, duration)
        swapper = Swapper(admin_port, [chain_b, chain_a])
        swapper.start()
        try:
            swapping = bench.wrk(url, duration)
        finally:
            swapper.stop.set()
            swapper.join()
    rps_ratio = swapping["rps"] / steady["rps"] if steady["rps"] else 0.0
    p99_ratio = seconds(swapping["p99"]) / seconds(steady["p99"])
    took = sorted(swapper.took_ms)
    median_swap = took[len(took) // 2] if took else float("nan")
    ok = rps_ratio >= 0.9 and p99_ratio <= 2.0 and swapper.failed == 0 and swapping["errors"] == 0
    print(f"  {label:<44} steady {steady['rps']:>9.0f} req/s p99 {steady['p99']:>8} | "
          f"swapping {swapping['rps']:>9.0f} req/s p99 {swapping['p99']:>8} | "
          f"{swapper.applied} swaps (median {median_swap:.2f} ms to apply), "
          f"throughput {rps_ratio:.1%}, p99 {p99_ratio:.2f}x -> {'OK' if ok else 'MISSED'}"
          + (f", {swapping['errors']} non-2xx" if swapping["errors"] else "")
          + (f", {swapper.failed} failed swaps" if swapper.failed else ""), flush=True)
    results.append((f"admin {label}", {
        "steady": steady, "swapping": swapping, "swaps": swapper.applied,
        "failed_swaps": swapper.failed, "median_swap_ms": median_swap,
        "throughput_ratio": rps_ratio, "p99_ratio": p99_ratio, "target_met": ok}))


def run(bench, tmp, duration, results):
    print("admin: a filter chain swapped every 100 ms under wrk load vs steady state")
    direct = lambda body: (f'- name: pounce.filters.direct_response\n'
                           f'  typed_config: {{"@type": {DIRECT_TYPE}, body: "{body}"}}\n')
    workload(bench, tmp, duration, results, "direct_response (two bodies)",
             direct("Hello, world!"), direct("Hello, admin!"))
    asgi = (f'- name: pounce.filters.asgi\n'
            f'  typed_config:\n'
            f'    "@type": type.googleapis.com/pounce.filters.asgi.v1.Asgi\n'
            f'    app: apps:app\n'
            f'    app_dir: [{bench.ROOT / "tools/bench"}]\n')
    # The app stays the same (one running instance is shared): the swap adds and removes a
    # filter in front of it.
    workload(bench, tmp, duration, results, "asgi hello (request_id on/off)",
             asgi, "- name: pounce.filters.request_id\n" + asgi)
