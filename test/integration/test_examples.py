"""The shipped example configs, run as users would run them (with --port)."""

import httpx

from conftest import ROOT


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
