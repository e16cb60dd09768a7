"""The shipped example configs, run as users would run them (with --port)."""

import httpx
import pytest

from conftest import ROOT, wait_for


def start(pounce, name):
    return pounce(None, args=["--config-yaml", str(ROOT / "configs" / name), "--port", "@PORT@"])


def test_starlette_example(pounce):
    s = start(pounce, "starlette.yaml")
    with httpx.Client(base_url=s.url("")) as c:
        first = c.get("/").json()
        second = c.get("/").json()
        assert first["hello"] == "starlette"
        assert second["visits"] == first["visits"] + 1  # lifespan state shared on the loop
        assert c.get("/items/42?q=x").json() == {"item": 42, "q": "x"}
        assert c.post("/echo", content="héllo".encode()).text == "héllo"
        assert c.get("/stream").text == "".join(f"{i}\n" for i in range(10))
        assert c.get("/missing").status_code == 404


def test_fastapi_example(pounce):
    s = start(pounce, "fastapi.yaml")
    with httpx.Client(base_url=s.url("")) as c:
        assert c.get("/").json() == {"hello": "fastapi"}
        assert c.get("/items/7", params={"q": "z"}).json() == {"item_id": 7, "q": "z"}
        r = c.post("/items", json={"name": "cat toy", "price": 10, "tags": ["a"]})
        assert r.status_code == 200
        assert r.json() == {"created": {"name": "cat toy", "price": 10.0, "tags": ["a"]}, "total": 12.0}
        assert c.post("/items", json={"name": "x"}).status_code == 422
        r = c.post("/login", data={"username": "ada", "password": "secret"})
        assert r.json() == {"user": "ada", "password_length": 6}
        assert c.get("/items/notanumber").status_code == 422
        assert c.get("/openapi.json").json()["info"]["title"] == "pounce example"


def test_django_example(pounce):
    s = start(pounce, "django.yaml")
    with httpx.Client(base_url=s.url("")) as c:
        assert c.get("/").json() == {"hello": "django", "method": "GET", "path": "/"}
        assert c.get("/greet/ada/").text == "Hello, ada!"
        assert c.post("/echo/", content=b"\x00\x01binary").content == b"\x00\x01binary"
        assert c.get("/nope/").status_code == 404


def test_all_filters_in_front_of_the_starlette_app(pounce):
    import gzip
    import json as jsonlib
    from prometheus_client.parser import text_string_to_metric_families

    s = start(pounce, "all-filters.yaml")
    with httpx.Client(base_url=s.url("")) as c:
        # The app, through every filter.
        r = c.get("/", headers={"X-Forwarded-For": "203.0.113.9"})
        assert r.status_code == 200 and r.json()["hello"] == "starlette"
        assert len(r.headers["x-request-id"]) == 32
        assert r.headers["server-timing"].startswith("total;dur=")
        assert "app;dur=" in r.headers["server-timing"]
        assert r.headers["ratelimit-limit"] == "400"
        # Static files, compressed when asked.
        r = c.get("/static/index.html", headers={"Accept-Encoding": "gzip"})
        assert r.status_code == 200 and "<html" in r.text.lower()
        # Health and metrics answer before the app.
        assert c.get("/livez").json()["status"] == "ok"
        assert c.get("/readyz").status_code == 200
        metrics = c.get("/metrics").text
        names = {f.name for f in text_string_to_metric_families(metrics)}
        assert "http_requests" in names or "http_requests_total" in names
        # A streamed response from the app stays streamed.
        assert c.get("/stream").text == "".join(f"{i}\n" for i in range(10))
    # (Access log lines are written in batches, within flush_interval.)
    wait_for(lambda: '"GET / HTTP/1.1" 200' in s.log(), what="the access log line")
    assert "203.0.113.9" in s.log()  # the client address from X-Forwarded-For


def test_reference_configs_run(pounce, tmp_path):
    s = start(pounce, "reference.yaml")
    assert httpx.get(s.url("/")).text == "Hello, world!\n"
    s = start(pounce, "filters-reference.yaml")
    with httpx.Client(base_url=s.url("")) as c:
        assert c.get("/healthz").json()["status"] == "ok"
        assert c.get("/index.html").status_code == 200
        assert c.get("/nope").status_code == 404
        assert "http_requests_total" in c.get("/metrics").text
    s = start(pounce, "maintenance.yaml")
    r = httpx.get(s.url("/anything"))
    assert r.status_code == 503 and r.headers["retry-after"] == "120"


def test_mtls_config_exposes_the_client_certificate(pounce):
    import ssl
    s = start(pounce, "mtls.yaml")
    ctx = ssl.create_default_context(cafile=str(ROOT / "examples/tls/ca.pem"))
    ctx.load_cert_chain(ROOT / "examples/tls/client.pem", ROOT / "examples/tls/client.key")
    with httpx.Client(verify=ctx) as c:
        scope = c.get(f"https://localhost:{s.port}/scope").json()
    tls = scope["extensions"]["tls"]
    assert tls["tls_version"] == 0x0304
    assert tls["client_cert_chain"][0].startswith("-----BEGIN CERTIFICATE-----")
    assert tls["server_cert"].startswith("-----BEGIN CERTIFICATE-----")
    assert scope["scheme"] == "https"
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"https://localhost:{s.port}/scope", verify=str(ROOT / "examples/tls/ca.pem"))
