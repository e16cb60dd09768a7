"""Python-side helpers of pounce's ASGI filter.

Nothing here runs per request on the fast path: app loading, middleware, the lifespan
protocol, the pounce.worker.* scopes and the debug error page. Compiled into the binary
and imported as the module `_pounce_support`.
"""

import asyncio
import html
import importlib
import inspect
import logging
import sys
import traceback

log = logging.getLogger("pounce")


class AppLoadError(Exception):
    """The app named in the config could not be loaded (message says why)."""


class ClientDisconnected(OSError):
    """send() was called after the client went away or the response was complete.

    ASGI spec 2.4: servers raise a server-specific OSError subclass here.
    """


def _import_attr(spec, what):
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise AppLoadError(f"{what} '{spec}' must look like 'module:attribute'")
    call = attr.endswith("()")
    if call:
        attr = attr[:-2]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # Only "this module does not exist" gets the short message; an import error inside
        # the app's own code keeps its traceback.
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise AppLoadError(
                f"cannot import {what} module '{module_name}': {exc} "
                f"(sys.path: {', '.join(repr(p) for p in sys.path[:4])}, ...)") from None
        raise
    obj = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AppLoadError(
                f"module '{module_name}' has no attribute '{attr}' ({what} '{spec}')") from None
    if call:
        if not callable(obj):
            raise AppLoadError(f"'{spec}': '{attr}' is not callable")
        obj = obj()
    return obj


def _is_asgi3(app):
    if inspect.isclass(app):
        return False
    if inspect.iscoroutinefunction(app):
        return True
    call = getattr(app, "__call__", None)
    return inspect.iscoroutinefunction(call) if call is not None else False


class _Asgi2Adapter:
    """Runs an ASGI 2 ("double callable") app as ASGI 3."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        instance = self.app(scope)
        await instance(receive, send)


def load_app(spec, middleware):
    app = _import_attr(spec, "app")
    if app is None or not callable(app):
        raise AppLoadError(f"app '{spec}' is {type(app).__name__}, not an ASGI callable")
    if not _is_asgi3(app):
        # A class, or a plain callable returning a coroutine: decide by signature.
        try:
            params = [p for p in inspect.signature(app).parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        except (TypeError, ValueError):
            params = []
        if inspect.isclass(app) or len(params) == 1:
            app = _Asgi2Adapter(app)
    # The first middleware listed is the outermost (sees requests first, responses last).
    for m in reversed(middleware):
        cls = _import_attr(m, "middleware")
        app = cls(app)
    return app


def new_loop(kind):
    """Returns (loop, name) for "auto", "asyncio" or "uvloop"."""
    if kind in ("auto", "uvloop"):
        try:
            import uvloop
            return uvloop.new_event_loop(), "uvloop"
        except ImportError:
            if kind == "uvloop":
                raise AppLoadError("loop: uvloop was requested but cannot be imported")
    return asyncio.new_event_loop(), "asyncio"


class Lifespan:
    """The ASGI lifespan protocol for one event loop."""

    def __init__(self, app, mode, loop):
        self.app = app
        self.mode = mode  # "auto" or "on"
        self.loop = loop
        self.state = {}
        self.supported = True
        self.startup_failed = None
        self.shutdown_failed = None
        self._queue = asyncio.Queue()
        self._started = asyncio.Event()
        self._stopped = asyncio.Event()
        self._task = None

    async def _main(self):
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"},
                 "state": self.state}
        try:
            await self.app(scope, self._receive, self._send)
            if not self._started.is_set():
                # Returned without answering startup: no lifespan support, which `on` does
                # not accept.
                if self.mode == "auto":
                    self.supported = False
                else:
                    self.startup_failed = ("lifespan: on, but the app returned without "
                                           "answering lifespan.startup")
        except BaseException as exc:
            if not self._started.is_set():
                if self.startup_failed is not None:
                    pass  # cancelled by startup(): it timed out, which is the failure
                elif self.mode == "auto":
                    self.supported = False
                    log.info("ASGI lifespan not supported by the app (%s: %s)",
                             type(exc).__name__, exc)
                else:
                    self.startup_failed = "".join(traceback.format_exception(exc)).strip()
            elif not self._stopped.is_set():
                self.shutdown_failed = "".join(traceback.format_exception(exc)).strip()
        finally:
            self._started.set()
            self._stopped.set()

    async def _receive(self):
        return await self._queue.get()

    async def _send(self, message):
        kind = message.get("type")
        if kind == "lifespan.startup.complete":
            self._started.set()
        elif kind == "lifespan.startup.failed":
            self.startup_failed = message.get("message", "") or "lifespan startup failed"
            self._started.set()
        elif kind == "lifespan.shutdown.complete":
            self._stopped.set()
        elif kind == "lifespan.shutdown.failed":
            self.shutdown_failed = message.get("message", "") or "lifespan shutdown failed"
            self._stopped.set()
        else:
            raise RuntimeError(f"unexpected lifespan message {kind!r}")

    async def startup(self, timeout):
        self._task = self.loop.create_task(self._main())
        await self._queue.put({"type": "lifespan.startup"})
        try:
            await asyncio.wait_for(self._started.wait(), timeout)
        except asyncio.TimeoutError:
            self.startup_failed = f"lifespan startup did not complete within {timeout:g}s"
        if self.startup_failed is not None and not self._task.done():
            # The server will not start: stop the app's startup, letting its `finally`
            # blocks run (briefly), instead of leaving it to be destroyed pending.
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=1.0)
        return self.startup_failed

    async def shutdown(self, timeout):
        if not self.supported or self._task is None or self._task.done():
            return self.shutdown_failed
        await self._queue.put({"type": "lifespan.shutdown"})
        try:
            await asyncio.wait_for(self._stopped.wait(), timeout)
        except asyncio.TimeoutError:
            self.shutdown_failed = f"lifespan shutdown did not complete within {timeout:g}s"
            self._task.cancel()
        return self.shutdown_failed


async def cancel_requests(timeout):
    """Cancels the requests still running when the loop stops (their listener's
    shutdown_timeout is over) and gives them up to `timeout` seconds to unwind; returns how
    many there were. The lifespan task is left alone: its shutdown comes next."""
    current = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks()
             if t is not current and not t.done()
             and type(t.get_coro()).__name__ == "AppRunner"]
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=timeout)
    return len(tasks)


async def await_result(awaitable):
    """What an app returned when it is awaitable but not a coroutine (an object with
    __await__, a Task, a Future): a coroutine awaiting it, which pounce's runner drives."""
    return await awaitable


async def worker_scope(app, kind, worker_id, thread_id, timeout):
    """Sends a pounce.worker.* scope; apps that do not know it may raise (ignored)."""
    scope = {"type": kind, "asgi": {"version": "3.0"}, "worker_id": worker_id,
             "thread_id": thread_id}

    async def receive():
        # Yields first: an app that loops on receive() must not keep the loop (and the
        # timeout below) from running.
        await asyncio.sleep(0)
        return {"type": "http.disconnect"}

    async def send(message):
        await asyncio.sleep(0)
        return None

    try:
        await asyncio.wait_for(app(scope, receive, send), timeout)
        return None
    except asyncio.TimeoutError:
        return f"{kind} did not complete within {timeout:g}s"
    except BaseException as exc:  # the app does not handle this scope type
        return f"ignored: {type(exc).__name__}: {exc}"


_SENSITIVE = ("password", "passwd", "secret", "token", "api_key", "apikey", "private_key",
              "authorization", "auth", "cookie", "session", "credential", "csrf", "signature")


def _sensitive(name):
    """Does a variable, header, key or query parameter of this name hold a credential?
    (x-api-key, X_API_KEY and apiKey alike.)"""
    if isinstance(name, bytes):
        name = name.decode("latin-1")
    if not isinstance(name, str):
        return False
    name = name.lower().replace("-", "_")
    return any(s in name for s in _SENSITIVE)


def _latin1(redact):
    """`redact` (str -> str) taking and giving bytes too, as latin-1."""
    def either(value):
        if isinstance(value, bytes):
            return redact(value.decode("latin-1")).encode("latin-1")
        return redact(value)
    return either


@_latin1
def _redact_query(query):
    """A query string with the values of credential-like parameters hidden."""
    parts = []
    for part in query.split("&"):
        key, eq, _ = part.partition("=")
        parts.append(f"{key}=<redacted>" if eq and _sensitive(key) else part)
    return "&".join(parts)


@_latin1
def _redact_path(path):
    """A request target with its query redacted (see _redact_query)."""
    target, q, query = path.partition("?")
    return target + q + _redact_query(query) if q else path


def _redacted(value, depth=0):
    """`value` with credentials hidden: dict entries under credential-like keys, the values
    of such headers in ASGI header lists, and such parameters in a query string."""
    if depth > 3:
        return value
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if _sensitive(k):
                out[k] = "<redacted>"
            elif k in ("query_string", "raw_path", "path") and isinstance(v, (str, bytes)):
                out[k] = _redact_query(v) if k == "query_string" else _redact_path(v)
            else:
                out[k] = _redacted(v, depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        items = []
        for item in value:
            if (isinstance(item, (list, tuple)) and len(item) == 2 and
                    isinstance(item[0], (bytes, str)) and _sensitive(item[0])):
                items.append(type(item)((item[0], "<redacted>")))
            else:
                items.append(_redacted(item, depth + 1))
        return type(value)(items) if isinstance(value, tuple) else items
    return value


def _safe_repr(name, value):
    if _sensitive(name):
        return "<redacted>"
    try:
        text = repr(_redacted(value))
    except Exception:
        text = "<unrepresentable>"
    return text if len(text) <= 200 else text[:200] + "..."


def debug_page(exc, method, path, headers):
    """An HTML page about an app error, for debug mode only."""
    frames = traceback.extract_tb(exc.__traceback__)
    tb_frames = []
    tb = exc.__traceback__
    while tb is not None:
        tb_frames.append(tb.tb_frame)
        tb = tb.tb_next
    parts = []
    for summary, frame in zip(frames, tb_frames):
        lines = []
        try:
            import linecache
            for n in range(max(1, summary.lineno - 5), summary.lineno + 6):
                text = linecache.getline(summary.filename, n)
                if text:
                    mark = " class='hit'" if n == summary.lineno else ""
                    lines.append(f"<div{mark}><span>{n:5d}</span> {html.escape(text.rstrip())}</div>")
        except Exception:
            pass
        local_rows = "".join(
            f"<tr><td>{html.escape(k)}</td><td>{html.escape(_safe_repr(k, v))}</td></tr>"
            for k, v in frame.f_locals.items() if not k.startswith("__"))
        parts.append(
            f"<section><h3>{html.escape(summary.filename)}:{summary.lineno} in "
            f"{html.escape(summary.name)}</h3><pre>{''.join(lines)}</pre>"
            f"<table>{local_rows}</table></section>")
    header_rows = "".join(
        f"<tr><td>{html.escape(k.decode('latin-1'))}</td><td>{html.escape(v.decode('latin-1'))}</td></tr>"
        for k, v in headers if not _sensitive(k))
    title = html.escape(f"{type(exc).__name__}: {exc}")
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>500 " + title + "</title>"
        "<style>body{font:14px system-ui,sans-serif;background:#111;color:#ddd;margin:2em}"
        "h1{color:#f66}pre{background:#1c1c1c;padding:.5em;overflow:auto}.hit{background:#402020}"
        "td{border-bottom:1px solid #333;padding:2px 8px;vertical-align:top}span{color:#777}"
        "</style></head><body>"
        f"<h1>{title}</h1><p>{html.escape(method)} {html.escape(_redact_path(path))}</p>"
        "<h2>Traceback (most recent call last)</h2>" + "".join(parts) +
        f"<h2>Request headers</h2><table>{header_rows}</table>"
        "<footer><p>pounce debug page: debug is on. Not shown in production.</p></footer>"
        "</body></html>").encode("utf-8")


def format_exception(exc):
    return "".join(traceback.format_exception(exc)).rstrip()
