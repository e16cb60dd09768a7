"""The metrics filter on a real server: the exposition parses with prometheus_client's
parser, every stream is counted (local replies and protocol errors too), scrapes are not."""

import socket
import threading

from prometheus_client.parser import text_string_to_metric_families

from conftest import RawConnection, wait_for

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def config(tmp_path, metrics="", access_log=True, concurrency=2):
    log = (f"""
  - name: pounce.filters.access_log
    typed_config:
      "@type": type.googleapis.com/pounce.filters.access_log.v1.AccessLog
      path: '{tmp_path}/access.log'""" if access_log else "")
    return f"""
concurrency: {concurrency}
listeners:
- name: main
  address: {{socket_address: {{address: 127.0.0.1, port_value: @PORT@}}}}
  filter_chain:{log}
  - name: pounce.filters.metrics
    typed_config:
      "@type": type.googleapis.com/pounce.filters.metrics.v1.Metrics
      {metrics}
  - name: pounce.filters.static_files
    typed_config:
      "@type": type.googleapis.com/pounce.filters.static_files.v1.StaticFiles
      mounts: [{{prefix: /files, directory: "{tmp_path}"}}]
      fallthrough: false
  - name: pounce.filters.direct_response
    typed_config:
      "@type": type.googleapis.com/pounce.filters.direct_response.v1.DirectResponse
      body: "hello\\n"
"""


def exchange(server, raw):
    c = RawConnection(server.connect())
    c.send(raw)
    status, headers, body = c.response(head_only=raw.startswith(b"HEAD"))
    c.close()
    return status, {k: v[0] for k, v in headers.items()}, body


def scrape(server, path="/metrics"):
    status, headers, body = exchange(server, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert status == 200
    assert headers["content-type"] == CONTENT_TYPE
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    samples = {}
    for family in families.values():
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return families, samples


def requests_total(samples, method, status):
    return samples.get(("http_requests_total",
                        (("listener", "main"), ("method", method), ("status", str(status)))), 0)


def test_exposition_parses_and_counts_every_stream(pounce, tmp_path):
    s = pounce(config(tmp_path))
    for _ in range(3):
        assert exchange(s, b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 200
    assert exchange(s, b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")[0] == 200
    assert exchange(s, b"PROPFIND /dav HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 200
    assert exchange(s, b"HEAD /a HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 200
    # A local reply from a later filter (static_files without fallthrough).
    assert exchange(s, b"GET /files/missing HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 404
    # A protocol error answered by the codec.
    assert exchange(s, b"GET / HTTP/1.1\r\n\r\n")[0] == 400

    families, samples = scrape(s)
    assert families["http_requests"].type == "counter"
    assert requests_total(samples, "GET", 200) == 3
    assert requests_total(samples, "POST", 200) == 1
    assert requests_total(samples, "other", 200) == 1
    assert requests_total(samples, "HEAD", 200) == 1
    assert requests_total(samples, "GET", 404) == 1
    assert sum(v for (name, labels), v in samples.items()
               if name == "http_requests_total" and ("status", "400") in labels) == 1

    duration = families["http_request_duration_seconds"]
    assert duration.type == "histogram"
    buckets = [s for s in duration.samples if s.name.endswith("_bucket")]
    assert [float(b.labels["le"]) for b in buckets] == [
        0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, float("inf")]
    assert samples[("http_request_duration_seconds_count", (("listener", "main"),))] == 8
    # direct_response answers from the head, before the POST body is read: the stream is
    # complete with no body bytes received (the unit tests count bodies that are read).
    assert samples[("http_request_bytes_total", (("listener", "main"),))] == 0
    # 6 bodies of "hello\n" (HEAD sends none) and the 404's "Not Found\n"; the 400 as well.
    assert samples[("http_response_bytes_total", (("listener", "main"),))] >= 6 * 5 + 10
    assert samples[("http_requests_in_flight", (("listener", "main"),))] == 0
    assert families["http_connections_active"].type == "gauge"
    assert samples[("http_connections_active", (("listener", "main"),))] >= 1  # the scrape's
    # Closed connections leave the gauge once their I/O thread has seen the close.
    wait_for(lambda: scrape(s)[1][("http_connections_active", (("listener", "main"),))] == 1,
             what="http_connections_active to count only the scrape's connection")
    # Every other family of the process is there too.
    assert ("pounce_listener_requests_total", (("listener", "main"),)) in samples
    assert ("static_hits_total", (("listener", "main"),)) in samples


def test_scrapes_are_neither_counted_nor_logged(pounce, tmp_path):
    s = pounce(config(tmp_path))
    assert exchange(s, b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 200
    _, first = scrape(s)
    _, second = scrape(s)
    assert requests_total(first, "GET", 200) == requests_total(second, "GET", 200) == 1
    log = tmp_path / "access.log"
    wait_for(lambda: log.exists() and "/x" in log.read_text(), what="the access log line")
    assert exchange(s, b"GET /y HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 200
    wait_for(lambda: "/y" in log.read_text(), what="the second access log line")
    assert "/metrics" not in log.read_text()


def test_log_scrapes_writes_them_to_the_access_log(pounce, tmp_path):
    s = pounce(config(tmp_path, "log_scrapes: true"))
    scrape(s)
    log = tmp_path / "access.log"
    wait_for(lambda: log.exists() and "GET /metrics" in log.read_text(), what="scrape logged")


def test_custom_path_buckets_head_and_405(pounce, tmp_path):
    s = pounce(config(tmp_path, "path: /internal/stats\n      buckets: [0.001, 0.5]"))
    status, _, body = exchange(s, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert body == b"hello\n", "/metrics is an ordinary path now"
    families, _ = scrape(s, "/internal/stats")
    les = [x.labels["le"] for x in families["http_request_duration_seconds"].samples
           if x.name.endswith("_bucket")]
    assert les == ["0.001", "0.5", "+Inf"]
    status, headers, body = exchange(s, b"HEAD /internal/stats HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 200 and body == b"" and int(headers["content-length"]) > 100
    status, headers, _ = exchange(s, b"PUT /internal/stats HTTP/1.1\r\nHost: x\r\n"
                                     b"Content-Length: 0\r\n\r\n")
    assert status == 405 and headers["allow"] == "GET, HEAD"


def test_counts_from_all_io_threads_add_up(pounce, tmp_path):
    s = pounce(config(tmp_path, access_log=False, concurrency=2))
    per_thread = 50
    errors = []

    def client():
        try:
            c = RawConnection(s.connect())
            for _ in range(per_thread):
                c.send(b"GET /load HTTP/1.1\r\nHost: x\r\n\r\n")
                assert c.response()[0] == 200
            c.close()
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    _, samples = scrape(s)
    assert requests_total(samples, "GET", 200) == 8 * per_thread
    assert samples[("http_requests_in_flight", (("listener", "main"),))] == 0


def test_client_that_leaves_mid_response_is_counted(pounce, tmp_path):
    (tmp_path / "big.bin").write_bytes(b"x" * (32 << 20))
    s = pounce(config(tmp_path, access_log=False))
    c = s.connect()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    c.sendall(b"GET /files/big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
    c.recv(1024)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    c.close()  # RST

    def counted():
        _, samples = scrape(s)
        return requests_total(samples, "GET", 200) == 1 and \
            samples[("http_requests_in_flight", (("listener", "main"),))] == 0
    wait_for(counted, what="the abandoned stream to be counted")
