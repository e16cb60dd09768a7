"""static_files over real sockets: headers, sendfile, conditionals, ranges, pre-compressed
siblings, path safety, and the shipped configs/static-site.yaml."""

import email.parser
import gzip
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import time
import zlib

import brotli
import pytest
import zstandard

from conftest import ROOT, RawConnection

sys.path.insert(0, str(ROOT / "tools"))
import precompress  # noqa: E402  (tools/precompress.py)

EXAMPLES = ROOT / "examples" / "static"


def make_site(tmp_path):
    """examples/static copied to tmp, with siblings for js/app.js and a few traps."""
    site = tmp_path / "site"
    shutil.copytree(EXAMPLES, site)
    assert precompress.precompress(site / "js" / "app.js", 256) == [".gz", ".br", ".zst"]
    (site / ".env").write_text("SECRET=1\n")
    (site / ".well-known").mkdir()
    (site / ".well-known" / "security.txt").write_text("Contact: mailto:x@example.com\n")
    (tmp_path / "outside.txt").write_text("outside the root\n")
    os.symlink("../outside.txt", site / "escape")
    os.symlink(str(tmp_path), site / "escape_dir")
    os.symlink("css/site.css", site / "inside_link")
    (site / "blob.bin").write_bytes(os.urandom(3 << 20))
    return site


def config(site, extra="", fallthrough="", cache=""):
    """`cache`: a file_cache setting ("" for the default)."""
    cache_line = f"file_cache: {cache}" if cache else ""
    return f"""
concurrency: 2
listeners:
- name: main
  address: {{socket_address: {{address: 127.0.0.1, port_value: @PORT@}}}}
  filter_chain:
  - name: pounce.filters.static_files
    typed_config:
      "@type": type.googleapis.com/pounce.filters.static_files.v1.StaticFiles
      mounts: [{{prefix: /, directory: "{site}"}}, {{prefix: /assets, directory: "{site}/css"}}]
      {extra}
      {cache_line}
  - name: pounce.filters.direct_response
    typed_config:
      "@type": type.googleapis.com/pounce.filters.direct_response.v1.DirectResponse
      status: 404
      body: "from the app\\n"
"""


def request(server, path, headers=(), method="GET"):
    c = RawConnection(server.connect())
    lines = [f"{method} {path} HTTP/1.1", "Host: x"] + [f"{k}: {v}" for k, v in headers]
    c.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    status, hdrs, body = c.response(head_only=(method == "HEAD"))
    c.close()
    return status, {k: v[0] for k, v in hdrs.items()}, body


@pytest.fixture
def site(tmp_path):
    return make_site(tmp_path)


# Tests that take `cache` run with the file cache off, on as by default (every request
# checks its file with a stat) and trusting entries for an hour (every request after the
# first is answered from it): the answers must be the same.
@pytest.fixture(params=["{enabled: false}", "", "{validity: 3600s}"],
                ids=["no_cache", "default_cache", "trusted_cache"])
def cache(request):
    return request.param


def test_files_come_with_type_length_and_validators(pounce, site, cache):
    s = pounce(config(site, cache=cache))
    for path, ctype in [("/", "text/html; charset=utf-8"),
                        ("/css/site.css", "text/css; charset=utf-8"),
                        ("/js/app.js", "text/javascript; charset=utf-8"),
                        ("/data.json", "application/json"),
                        ("/images/logo.svg", "image/svg+xml"),
                        ("/big.txt", "text/plain; charset=utf-8"),
                        ("/page-5k.html", "text/html; charset=utf-8")]:
        status, headers, body = request(s, path)
        file = site / (path.lstrip("/") or "index.html")
        assert status == 200, path
        assert body == file.read_bytes(), path
        assert headers["content-type"] == ctype
        assert headers["content-length"] == str(file.stat().st_size)
        assert headers["etag"].startswith('"') and headers["etag"].endswith('"')
        assert headers["last-modified"].endswith(" GMT")
        assert headers["cache-control"] == "public, max-age=3600"
        assert headers["accept-ranges"] == "bytes"
        assert headers["vary"] == "accept-encoding"


def test_large_file_is_sent_whole_on_a_kept_alive_connection(pounce, site, cache):
    s = pounce(config(site, cache=cache))
    c = RawConnection(s.connect())
    blob = (site / "blob.bin").read_bytes()
    # Pipelined: a sendfile range, then small responses, then the range again.
    c.send(b"GET /blob.bin HTTP/1.1\r\nHost: x\r\n\r\n"
           b"GET /css/site.css HTTP/1.1\r\nHost: x\r\n\r\n"
           b"GET /blob.bin HTTP/1.1\r\nHost: x\r\n\r\n")
    status, _, body = c.response()
    assert status == 200 and body == blob
    status, _, body = c.response()
    assert status == 200 and body == (site / "css" / "site.css").read_bytes()
    status, _, body = c.response()
    assert status == 200 and body == blob
    c.close()


def test_head_and_other_methods(pounce, site, cache):
    s = pounce(config(site, cache=cache))
    status, headers, body = request(s, "/data.json", method="HEAD")
    assert status == 200 and body == b""
    assert headers["content-length"] == str((site / "data.json").stat().st_size)
    status, headers, _ = request(s, "/data.json", method="DELETE")
    assert status == 405 and headers["allow"] == "GET, HEAD"
    status, _, body = request(s, "/nope.json", method="POST")
    assert status == 404 and body == b"from the app\n", "a miss goes on to the next filter"


def test_directories_redirect_then_serve_their_index(pounce, site, cache):
    s = pounce(config(site, cache=cache))
    status, headers, _ = request(s, "/docs?lang=en")
    assert status == 301 and headers["location"] == "/docs/?lang=en"
    status, _, body = request(s, "/docs/")
    assert status == 200 and body == (site / "docs" / "index.html").read_bytes()
    status, _, body = request(s, "/images/")
    assert status == 404 and body == b"from the app\n"


def test_longest_mount_prefix_wins(pounce, site, cache):
    s = pounce(config(site, cache=cache))
    status, _, body = request(s, "/assets/site.css")
    assert status == 200 and body == (site / "css" / "site.css").read_bytes()
    status, _, body = request(s, "/assetsx")
    assert body == b"from the app\n"


def test_conditional_requests_get_304(pounce, site):
    s = pounce(config(site))
    _, headers, _ = request(s, "/css/site.css")
    etag, modified = headers["etag"], headers["last-modified"]
    status, h304, body = request(s, "/css/site.css", [("If-None-Match", etag)])
    assert status == 304 and body == b""
    assert h304["etag"] == etag and h304["cache-control"] == "public, max-age=3600"
    assert request(s, "/css/site.css", [("If-None-Match", f'"x", W/{etag}')])[0] == 304
    assert request(s, "/css/site.css", [("If-None-Match", '"other"')])[0] == 200
    assert request(s, "/css/site.css", [("If-Modified-Since", modified)])[0] == 304
    assert request(s, "/css/site.css",
                   [("If-Modified-Since", "Thu, 01 Jan 1970 00:00:00 GMT")])[0] == 200
    # The file changes: old validators no longer match.
    os.utime(site / "css" / "site.css", (2000000000, 2000000000))
    assert request(s, "/css/site.css", [("If-None-Match", etag)])[0] == 200


def test_ranges_single_multipart_unsatisfiable_and_if_range(pounce, site, cache):
    s = pounce(config(site, cache=cache))
    big = (site / "big.txt").read_bytes()
    status, headers, body = request(s, "/big.txt", [("Range", "bytes=100-199")])
    assert status == 206 and body == big[100:200]
    assert headers["content-range"] == f"bytes 100-199/{len(big)}"
    status, headers, body = request(s, "/big.txt", [("Range", "bytes=-50")])
    assert status == 206 and body == big[-50:]

    status, headers, body = request(s, "/big.txt", [("Range", "bytes=0-9,1000-1099,-5")])
    assert status == 206
    assert headers["content-type"].startswith("multipart/byteranges; boundary=")
    assert int(headers["content-length"]) == len(body)
    message = email.parser.BytesParser().parsebytes(
        b"Content-Type: " + headers["content-type"].encode() + b"\r\n\r\n" + body)
    parts = message.get_payload()
    assert [p.get_payload(decode=True) for p in parts] == [big[0:10], big[1000:1100], big[-5:]]
    assert [p["content-range"] for p in parts] == [
        f"bytes 0-9/{len(big)}", f"bytes 1000-1099/{len(big)}",
        f"bytes {len(big) - 5}-{len(big) - 1}/{len(big)}"]
    assert all(p["content-type"] == "text/plain; charset=utf-8" for p in parts)

    status, headers, _ = request(s, "/big.txt", [("Range", f"bytes={len(big)}-")])
    assert status == 416 and headers["content-range"] == f"bytes */{len(big)}"

    etag = request(s, "/big.txt", method="HEAD")[1]["etag"]
    assert request(s, "/big.txt", [("Range", "bytes=0-0"), ("If-Range", etag)])[0] == 206
    status, _, body = request(s, "/big.txt", [("Range", "bytes=0-0"), ("If-Range", '"stale"')])
    assert status == 200 and body == big


def test_precompressed_siblings_follow_q_values(pounce, site, cache):
    s = pounce(config(site, cache=cache))
    js = (site / "js" / "app.js").read_bytes()
    decoders = {"gzip": gzip.decompress, "br": brotli.decompress,
                "zstd": lambda b: zstandard.ZstdDecompressor().decompress(b)}
    for accept, expected in [("gzip", "gzip"), ("br", "br"), ("zstd", "zstd"),
                             ("gzip, br, zstd", "zstd"), ("gzip;q=1, br;q=0.8", "gzip"),
                             ("br;q=0.1, *;q=0.5", "zstd"), ("zstd;q=0, *", "br"),
                             ("gzip;q=0.5, identity", None), ("deflate", None)]:
        status, headers, body = request(s, "/js/app.js", [("Accept-Encoding", accept)])
        assert status == 200
        assert headers["vary"] == "accept-encoding"
        assert headers["content-type"] == "text/javascript; charset=utf-8"
        if expected is None:
            assert "content-encoding" not in headers, accept
            assert body == js
        else:
            assert headers["content-encoding"] == expected, accept
            assert body == (site / "js" / f"app.js{precompress_suffix(expected)}").read_bytes()
            assert decoders[expected](body) == js, accept


def precompress_suffix(encoding):
    return {"gzip": ".gz", "br": ".br", "zstd": ".zst"}[encoding]


def test_stale_sibling_is_not_served(pounce, site):
    s = pounce(config(site))
    app = site / "js" / "app.js"
    app.write_text("// edited after the siblings were made\n")
    st = app.stat()
    os.utime(app, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    status, headers, body = request(s, "/js/app.js", [("Accept-Encoding", "gzip, br, zstd")])
    assert status == 200 and "content-encoding" not in headers
    assert body == b"// edited after the siblings were made\n"


@pytest.mark.parametrize("path", [
    "/../outside.txt", "/%2e%2e/outside.txt", "/%2E%2e/outside.txt", "/css/../../outside.txt",
    "/..%2foutside.txt", "/css%2f..%2f..%2foutside.txt", "/..\\outside.txt",
    "/%5c..%5coutside.txt", "/css/site.css%00.txt", "/escape", "/escape_dir/outside.txt",
    "/inside_link", "/%zz",
])
def test_paths_leaving_the_root_get_404(pounce, site, path, cache):
    s = pounce(config(site, fallthrough="", cache=cache))
    status, _, body = request(s, path)
    assert status == 404
    assert b"outside the root" not in body
    assert body == b"Not Found\n", "answered by static_files, not passed to the app"


def test_symlinks_inside_the_root_with_follow_symlinks(pounce, site, cache):
    s = pounce(config(site, "follow_symlinks: true", cache=cache))
    status, _, body = request(s, "/inside_link")
    assert status == 200 and body == (site / "css" / "site.css").read_bytes()
    assert request(s, "/escape")[0] == 404
    assert request(s, "/escape_dir/outside.txt")[0] == 404


def test_dotfiles_are_hidden_but_well_known_is_served(pounce, site, cache):
    s = pounce(config(site, cache=cache))
    status, _, body = request(s, "/.env")
    assert status == 404 and body == b"from the app\n"
    status, _, body = request(s, "/.well-known/security.txt")
    assert status == 200 and body.startswith(b"Contact:")
    s2 = pounce(config(site, "serve_dotfiles: true", cache=cache), name="dot")
    assert request(s2, "/.env")[2] == b"SECRET=1\n"


def test_without_fallthrough_misses_get_404_from_the_filter(pounce, site, cache):
    s = pounce(config(site, "fallthrough: false", cache=cache))
    status, _, body = request(s, "/missing.html")
    assert status == 404 and body == b"Not Found\n"


def one_thread(text):
    """Each I/O thread has its own file cache: with one, every request sees the same."""
    return text.replace("concurrency: 2", "concurrency: 1")


def test_file_cache_serves_a_changed_file_as_it_was_until_its_entry_is_checked(pounce, site):
    css = site / "css" / "site.css"
    old = css.read_bytes()
    trusting = pounce(one_thread(config(site, cache="{validity: 3600s}")))
    checking = pounce(one_thread(config(site, cache="{validity: 0s}")), name="checking")
    _, old_headers, _ = request(trusting, "/css/site.css")
    assert request(checking, "/css/site.css")[2] == old
    css.write_bytes(b"body { color: blue; } /* changed */\n")
    status, headers, body = request(trusting, "/css/site.css")
    assert status == 200 and body == old, "trusted for an hour: served as it was"
    assert headers["etag"] == old_headers["etag"]
    assert headers["content-length"] == str(len(old))
    status, headers, body = request(checking, "/css/site.css")
    assert status == 200 and body == css.read_bytes(), "validity 0s: checked on every request"
    assert headers["etag"] != old_headers["etag"]
    # Deleting and creating files is noticed as late.
    css.unlink()
    assert request(trusting, "/css/site.css")[2] == old
    assert request(checking, "/css/site.css")[0] == 404
    (site / "new.txt").write_text("new\n")
    assert request(checking, "/new.txt")[2] == b"new\n"


def test_default_file_cache_sees_every_change_at_once(pounce, site):
    """By default a small file's bytes come from memory after one stat of its path; any
    change to the file shows in the next answer."""
    s = pounce(one_thread(config(site)))
    css = site / "css" / "site.css"
    # Files changed in the last 2 s are read again on every request; let this one settle so
    # that the stat check alone decides.
    time.sleep(2.1)
    first = request(s, "/css/site.css")
    assert first[0] == 200 and first[2] == css.read_bytes()
    assert request(s, "/css/site.css")[1]["etag"] == first[1]["etag"]
    # Rewritten in place with the same length: new content, new validators.
    same_length = bytes(b ^ 0x20 if 0x61 <= b <= 0x7a else b for b in first[2])
    with open(css, "r+b") as f:
        f.write(same_length)
    status, headers, body = request(s, "/css/site.css")
    assert status == 200 and body == same_length
    assert headers["etag"] != first[1]["etag"]
    # Replaced by rename (a deploy), then deleted.
    (site / "css" / "next.tmp").write_bytes(b"p { margin: 0 }\n")
    os.rename(site / "css" / "next.tmp", css)
    assert request(s, "/css/site.css")[2] == b"p { margin: 0 }\n"
    css.unlink()
    assert request(s, "/css/site.css")[0] == 404


def test_file_cache_remembers_missing_siblings_and_large_files(pounce, site):
    s = pounce(one_thread(config(site, cache="{validity: 3600s, max_file_bytes: 1024, max_entries: 4}")))
    js = (site / "js" / "app.js").read_bytes()
    # app.js has siblings; data.json has none: its misses are remembered.
    assert request(s, "/data.json", [("Accept-Encoding", "gzip, br, zstd")])[2] == \
        (site / "data.json").read_bytes()
    (site / "data.json.gz").write_bytes(gzip.compress((site / "data.json").read_bytes()))
    status, headers, _ = request(s, "/data.json", [("Accept-Encoding", "gzip")])
    assert status == 200 and "content-encoding" not in headers, "the miss is trusted"
    # A file over max_file_bytes is served from its remembered descriptor.
    blob = (site / "blob.bin").read_bytes()
    for _ in range(2):
        status, _, body = request(s, "/blob.bin")
        assert status == 200 and body == blob
    status, headers, body = request(s, "/js/app.js", [("Accept-Encoding", "br")])
    assert headers["content-encoding"] == "br" and brotli.decompress(body) == js
    # More files than max_entries: the older ones are dropped and read again.
    for name in ["index.html", "page-5k.html", "big.txt", "css/site.css", "data.json"]:
        assert request(s, "/" + name)[2] == (site / name).read_bytes(), name


def test_missing_mount_directory_is_a_config_error(tmp_path):
    from conftest import run_pounce
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(config(tmp_path / "nope").replace("@PORT@", "1"))
    r = run_pounce("--config-yaml", cfg, "--mode", "validate")
    assert r.returncode == 1
    assert "typed_config.mounts[0].directory: cannot use" in r.stderr


def test_shipped_static_site_config(pounce, tmp_path):
    """configs/static-site.yaml as shipped, with the example site next to it (siblings made
    by tools/precompress.py for one file)."""
    (tmp_path / "configs").mkdir()
    shutil.copy(ROOT / "configs" / "static-site.yaml", tmp_path / "configs")
    shutil.copytree(EXAMPLES, tmp_path / "examples" / "static")
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "precompress.py"),
                        str(tmp_path / "examples" / "static" / "js" / "app.js")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    site = tmp_path / "examples" / "static"
    s = pounce(args=["--config-yaml", str(tmp_path / "configs" / "static-site.yaml"),
                     "--port", "@PORT@"])
    status, headers, body = request(s, "/")
    assert status == 200 and body == (site / "index.html").read_bytes()
    # A sibling made by the script.
    status, headers, body = request(s, "/js/app.js", [("Accept-Encoding", "br")])
    assert headers["content-encoding"] == "br"
    assert brotli.decompress(body) == (site / "js" / "app.js").read_bytes()
    # No sibling: compressed on the fly by the compression filter.
    status, headers, body = request(s, "/data.json", [("Accept-Encoding", "gzip")])
    assert headers["content-encoding"] == "gzip" and "content-length" not in headers
    assert headers["etag"].startswith('W/"')
    assert zlib.decompress(body, 16 + zlib.MAX_WBITS) == (site / "data.json").read_bytes()
    # Ranges pass uncompressed.
    status, headers, body = request(s, "/big.txt", [("Range", "bytes=5-9"),
                                                    ("Accept-Encoding", "gzip")])
    assert status == 206 and body == (site / "big.txt").read_bytes()[5:10]
    assert "content-encoding" not in headers
    status, _, body = request(s, "/no/such/page")
    assert status == 404 and body == b"Not Found\n"
    status, headers, text = request(s, "/metrics")
    assert status == 200
    from prometheus_client.parser import text_string_to_metric_families
    families = {f.name: f for f in text_string_to_metric_families(text.decode())}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in families.values() for s in f.samples}
    assert samples[("http_requests_total", (("listener", "site"), ("method", "GET"),
                                            ("status", "404")))] == 1
    assert samples[("http_requests_total", (("listener", "site"), ("method", "GET"),
                                            ("status", "206")))] == 1
    assert samples[("static_hits_total", (("listener", "site"),))] == 4
    assert samples[("compression_bytes_in_total", (("encoding", "gzip"), ("listener", "site")))] \
        == (site / "data.json").stat().st_size
