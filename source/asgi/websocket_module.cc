// The _pounce module's WebSocket objects: the `websocket` scope, and the receive() and
// send() of a WebSocket stream (ASGI HTTP & WebSocket spec 2.5, with the
// websocket.http.response extension). Python thread, GIL held. The protocol itself runs on
// the I/O thread (websocket_tunnel.h); only whole messages and the app's events cross.

#include "source/asgi/loop_thread.h"
#include "source/asgi/module_internal.h"
#include "source/common/logger.h"
#include "source/common/strings.h"
#include "source/http/websocket/frame.h"

namespace pounce::asgi::py {

namespace {

using Phase = WebSocketStream::Phase;

struct Names {
  PyObject *type, *websocket, *ws, *wss, *scheme, *method, *subprotocols, *extensions;
  PyObject *ext_http_response, *ext_trailers, *ext_pathsend, *ext_early_hint;
  PyObject *connect, *receive, *disconnect, *accept, *send, *close, *response_start, *response_body,
      *http_response_start, *http_response_body;
  PyObject *bytes, *text, *code, *reason, *subprotocol, *headers, *status;
};
Names W;

bool is(PyObject* type, PyObject* name) {
  return type == name || PyUnicode_Compare(type, name) == 0;
}

// A new dict {"type": type} (apps may keep and change the messages they receive).
PyObject* typedMessage(PyObject* type) {
  PyObject* m = PyDict_New();
  if (m != nullptr && PyDict_SetItem(m, W.type, type) != 0) {
    Py_CLEAR(m);
  }
  return m;
}

PyObject* disconnectMessage(const WebSocketStream& ws) {
  PyRef m = PyRef::steal(typedMessage(W.disconnect));
  PyRef code = PyRef::steal(PyLong_FromLong(ws.close_code));
  PyRef reason = PyRef::steal(PyUnicode_DecodeUTF8(
      ws.close_reason.data(), static_cast<Py_ssize_t>(ws.close_reason.size()), "replace"));
  if (!m || !code || !reason || PyDict_SetItem(m.get(), W.code, code.get()) != 0 ||
      PyDict_SetItem(m.get(), W.reason, reason.get()) != 0) {
    return nullptr;
  }
  return m.release();
}

// The next websocket.receive from the messages queued; lets the I/O thread read again once
// the app has caught up (the request body's flow control, for messages).
PyObject* takeMessage(LoopThread& loop, AsgiStream& s) {
  WebSocketStream::Message& front = s.ws->received.front();
  const auto n = static_cast<int64_t>(front.data.length());
  PyRef payload = PyRef::steal(
      front.text ? PyUnicode_DecodeUTF8(front.data.data(), static_cast<Py_ssize_t>(n), "strict")
                 : PyBytes_FromStringAndSize(front.data.data(), static_cast<Py_ssize_t>(n)));
  const bool text = front.text;
  s.ws->received.pop_front();
  const int64_t left = s.unconsumed_in_bytes.fetch_sub(n, std::memory_order_seq_cst) - n;
  if (s.reading_paused.load(std::memory_order_seq_cst) &&
      left <= static_cast<int64_t>(s.buffer_limit / 2)) {
    OutEvent ev;
    ev.kind = OutEvent::Kind::ResumeRead;
    ev.stream = StreamRef(&s);
    loop.addOut(std::move(ev));
  }
  if (!payload) {
    return nullptr;
  }
  PyRef m = PyRef::steal(typedMessage(W.receive));
  if (!m || PyDict_SetItem(m.get(), text ? W.text : W.bytes, payload.get()) != 0) {
    return nullptr;
  }
  return m.release();
}

// --- receive() ----------------------------------------------------------------------------

PyObject* receiveCall(PyObject* self, PyObject*, PyObject*) {
  auto* c = reinterpret_cast<ChannelObject*>(self);
  AsgiStream& s = *c->stream;
  WebSocketStream& ws = *s.ws;
  if (!ws.connect_delivered) {
    ws.connect_delivered = true;
    PyObject* m = typedMessage(W.connect);
    return m == nullptr ? nullptr : readyAwaitable(m);
  }
  if (!ws.received.empty()) {
    PyObject* m = takeMessage(*c->loop, s);
    return m == nullptr ? nullptr : readyAwaitable(m);
  }
  if (s.disconnected) {
    PyObject* m = disconnectMessage(ws);
    return m == nullptr ? nullptr : readyAwaitable(m);
  }
  return newReceiveWaiter(*c->loop, s);
}

// --- send() -------------------------------------------------------------------------------

PyObject* raiseClosed(AsgiStream& s) {
  PyErr_SetString(clientDisconnectedError(),
                  s.disconnected ? "the client disconnected" : "the WebSocket is closed");
  return nullptr;
}

// dict.get(key) as a borrowed reference; None counts as absent (nullptr, no error).
PyObject* optionalItem(PyObject* message, PyObject* key) {
  PyObject* v = PyDict_GetItemWithError(message, key);
  return v == Py_None ? nullptr : v;
}

PyObject* sendAccept(ChannelObject* c, AsgiStream& s, PyObject* message) {
  WebSocketStream& ws = *s.ws;
  if (s.disconnected) {
    return raiseClosed(s);
  }
  if (ws.phase != Phase::Handshake) {
    PyErr_SetString(PyExc_RuntimeError,
                    "websocket.accept after the handshake was answered (accept, close or an "
                    "HTTP response)");
    return nullptr;
  }
  std::string_view subprotocol;
  PyObject* sp = optionalItem(message, W.subprotocol);
  if (sp == nullptr && PyErr_Occurred()) {
    return nullptr;
  }
  if (sp != nullptr) {
    Py_ssize_t len;
    const char* p = PyUnicode_Check(sp) ? PyUnicode_AsUTF8AndSize(sp, &len) : nullptr;
    if (p == nullptr) {
      if (!PyErr_Occurred()) {
        PyErr_SetString(PyExc_TypeError, "websocket.accept: 'subprotocol' must be a str or None");
      }
      return nullptr;
    }
    subprotocol = {p, static_cast<size_t>(len)};
    bool offered = false;
    for (const std::string& o : ws.subprotocols) {
      offered = offered || o == subprotocol;
    }
    if (!offered) {
      PyErr_Format(PyExc_ValueError,
                   "websocket.accept: subprotocol %R was not offered by the client "
                   "(scope['subprotocols'])",
                   sp);
      return nullptr;
    }
  }
  auto headers = std::make_unique<http::ResponseHeaders>(101);
  PyObject* h = optionalItem(message, W.headers);
  if (h == nullptr && PyErr_Occurred()) {
    return nullptr;
  }
  if (!headersFromPython(h, *headers)) {
    return nullptr;
  }
  OutEvent ev;
  ev.kind = OutEvent::Kind::WsAccept;
  ev.stream = StreamRef(&s);
  ev.body.add(subprotocol);
  ev.headers = std::move(headers);
  ws.phase = Phase::Open;
  c->loop->addOut(std::move(ev));
  return doneAwaitable();
}

PyObject* sendData(ChannelObject* c, AsgiStream& s, PyObject* message) {
  WebSocketStream& ws = *s.ws;
  if (ws.phase == Phase::Handshake || ws.phase == Phase::Denying) {
    PyErr_SetString(PyExc_RuntimeError, "websocket.send before websocket.accept");
    return nullptr;
  }
  if (s.disconnected || ws.phase == Phase::Closed) {
    return raiseClosed(s);
  }
  PyObject* bytes = optionalItem(message, W.bytes);
  if (bytes == nullptr && PyErr_Occurred()) {
    return nullptr;
  }
  PyObject* text = optionalItem(message, W.text);
  if (text == nullptr && PyErr_Occurred()) {
    return nullptr;
  }
  if ((bytes == nullptr) == (text == nullptr)) {
    PyErr_SetString(PyExc_ValueError,
                    "websocket.send needs exactly one of 'bytes' and 'text' (not None)");
    return nullptr;
  }
  OutEvent ev;
  ev.kind = OutEvent::Kind::WsSend;
  ev.stream = StreamRef(&s);
  if (text != nullptr) {
    Py_ssize_t len;
    const char* p = PyUnicode_Check(text) ? PyUnicode_AsUTF8AndSize(text, &len) : nullptr;
    if (p == nullptr) {
      if (!PyErr_Occurred()) {
        PyErr_SetString(PyExc_TypeError, "websocket.send: 'text' must be a str");
      }
      return nullptr;
    }
    ev.body.add(std::string_view(p, static_cast<size_t>(len)));
    ev.more = true;
  } else if (PyBytes_Check(bytes)) {
    ev.body.add(
        std::string_view(PyBytes_AS_STRING(bytes), static_cast<size_t>(PyBytes_GET_SIZE(bytes))));
  } else {
    Py_buffer view{};
    if (PyObject_GetBuffer(bytes, &view, PyBUF_SIMPLE) != 0) {
      PyErr_SetString(PyExc_TypeError, "websocket.send: 'bytes' must be bytes");
      return nullptr;
    }
    ev.body.add(
        std::string_view(static_cast<const char*>(view.buf), static_cast<size_t>(view.len)));
    PyBuffer_Release(&view);
  }
  s.queued_out_bytes.fetch_add(static_cast<int64_t>(ev.body.length()), std::memory_order_relaxed);
  c->loop->addOut(std::move(ev));
  return sendBackpressure(c);
}

PyObject* sendClose(ChannelObject* c, AsgiStream& s, PyObject* message) {
  WebSocketStream& ws = *s.ws;
  if (s.disconnected || ws.phase == Phase::Closed) {
    return raiseClosed(s);
  }
  if (ws.phase == Phase::Denying) {
    PyErr_SetString(PyExc_RuntimeError,
                    "websocket.close during a websocket.http.response (send its body instead)");
    return nullptr;
  }
  long code = http::websocket::close_code::kNormal;
  PyObject* v = optionalItem(message, W.code);
  if (v == nullptr && PyErr_Occurred()) {
    return nullptr;
  }
  if (v != nullptr) {
    if (!PyLong_Check(v)) {
      PyErr_SetString(PyExc_TypeError, "websocket.close: 'code' must be an int");
      return nullptr;
    }
    code = PyLong_AsLong(v);
    if (code == -1 && PyErr_Occurred()) {
      return nullptr;
    }
  }
  if (code < 0 || code > 0xffff ||
      !http::websocket::isValidCloseCode(static_cast<uint16_t>(code))) {
    PyErr_Format(PyExc_ValueError,
                 "websocket.close: code %ld cannot be sent (1000-1003, 1007-1014 or 3000-4999)",
                 code);
    return nullptr;
  }
  std::string_view reason;
  PyObject* r = optionalItem(message, W.reason);
  if (r == nullptr && PyErr_Occurred()) {
    return nullptr;
  }
  if (r != nullptr) {
    Py_ssize_t len;
    const char* p = PyUnicode_Check(r) ? PyUnicode_AsUTF8AndSize(r, &len) : nullptr;
    if (p == nullptr) {
      if (!PyErr_Occurred()) {
        PyErr_SetString(PyExc_TypeError, "websocket.close: 'reason' must be a str or None");
      }
      return nullptr;
    }
    reason = {p, static_cast<size_t>(len)};
  }
  OutEvent ev;
  ev.kind = OutEvent::Kind::WsClose;
  ev.stream = StreamRef(&s);
  ev.status = static_cast<int>(code);
  ev.body.add(reason);
  ws.phase = Phase::Closed;
  c->loop->addOut(std::move(ev));
  return doneAwaitable();
}

// websocket.http.response.start / .body: the HTTP response that denies the handshake, sent
// by the HTTP send() as http.response.start / .body.
PyObject* sendDenial(PyObject* self, AsgiStream& s, PyObject* message, bool start) {
  WebSocketStream& ws = *s.ws;
  if (start && ws.phase != Phase::Handshake) {
    PyErr_SetString(PyExc_RuntimeError,
                    "websocket.http.response.start after the handshake was answered");
    return nullptr;
  }
  if (!start && ws.phase != Phase::Denying) {
    PyErr_SetString(PyExc_RuntimeError,
                    "websocket.http.response.body without websocket.http.response.start");
    return nullptr;
  }
  if (start) {
    PyObject* status = PyDict_GetItemWithError(message, W.status);
    if (status != nullptr && PyLong_Check(status)) {
      const long code = PyLong_AsLong(status);
      if (code >= 100 && code < 200) {
        PyErr_Format(PyExc_ValueError,
                     "websocket.http.response.start: status %ld is not a final response", code);
        return nullptr;
      }
    } else if (PyErr_Occurred()) {
      return nullptr;
    }
  }
  PyRef copy = PyRef::steal(PyDict_Copy(message));
  if (!copy || PyDict_SetItem(copy.get(), W.type,
                              start ? W.http_response_start : W.http_response_body) != 0) {
    return nullptr;
  }
  PyObject* result = httpSend(self, copy.get());
  if (result != nullptr) {
    ws.phase = s.response_complete ? Phase::Closed : Phase::Denying;
  }
  return result;
}

PyObject* sendCall(PyObject* self, PyObject* args, PyObject*) {
  auto* c = reinterpret_cast<ChannelObject*>(self);
  AsgiStream& s = *c->stream;
  PyObject* message = nullptr;
  PyObject* type = sendMessageType(args, message);
  if (type == nullptr) {
    return nullptr;
  }
  if (is(type, W.send)) {
    return sendData(c, s, message);
  }
  if (is(type, W.accept)) {
    return sendAccept(c, s, message);
  }
  if (is(type, W.close)) {
    return sendClose(c, s, message);
  }
  if (is(type, W.response_start)) {
    return sendDenial(self, s, message, true);
  }
  if (is(type, W.response_body)) {
    return sendDenial(self, s, message, false);
  }
  PyErr_Format(PyExc_ValueError, "unknown ASGI message type %R for a websocket scope", type);
  return nullptr;
}

PyTypeObject WsReceiveType = {PyVarObject_HEAD_INIT(nullptr, 0)};
PyTypeObject WsSendType = {PyVarObject_HEAD_INIT(nullptr, 0)};

} // namespace

bool initWebSocketTypes() {
  WsReceiveType.tp_name = "_pounce.WebSocketReceive";
  WsReceiveType.tp_basicsize = sizeof(ChannelObject);
  WsReceiveType.tp_flags = Py_TPFLAGS_DEFAULT;
  WsReceiveType.tp_call = receiveCall;
  WsReceiveType.tp_dealloc = channelObjectDealloc;
  WsSendType.tp_name = "_pounce.WebSocketSend";
  WsSendType.tp_basicsize = sizeof(ChannelObject);
  WsSendType.tp_flags = Py_TPFLAGS_DEFAULT;
  WsSendType.tp_call = sendCall;
  WsSendType.tp_dealloc = channelObjectDealloc;
  return PyType_Ready(&WsReceiveType) == 0 && PyType_Ready(&WsSendType) == 0;
}

bool initWebSocketNames() {
  auto s = [](const char* v) { return PyUnicode_InternFromString(v); };
  W.type = s("type");
  W.websocket = s("websocket");
  W.ws = s("ws");
  W.wss = s("wss");
  W.scheme = s("scheme");
  W.method = s("method");
  W.subprotocols = s("subprotocols");
  W.extensions = s("extensions");
  W.ext_http_response = s("websocket.http.response");
  W.ext_trailers = s("http.response.trailers");
  W.ext_pathsend = s("http.response.pathsend");
  W.ext_early_hint = s("http.response.early_hint");
  W.connect = s("websocket.connect");
  W.receive = s("websocket.receive");
  W.disconnect = s("websocket.disconnect");
  W.accept = s("websocket.accept");
  W.send = s("websocket.send");
  W.close = s("websocket.close");
  W.response_start = s("websocket.http.response.start");
  W.response_body = s("websocket.http.response.body");
  W.http_response_start = s("http.response.start");
  W.http_response_body = s("http.response.body");
  W.bytes = s("bytes");
  W.text = s("text");
  W.code = s("code");
  W.reason = s("reason");
  W.subprotocol = s("subprotocol");
  W.headers = s("headers");
  W.status = s("status");
  return W.status != nullptr;
}

PyObject* newWebSocketReceive(LoopThread& loop, const StreamRef& stream) {
  return newChannelObject(&WsReceiveType, loop, stream);
}

PyObject* newWebSocketSend(LoopThread& loop, const StreamRef& stream) {
  return newChannelObject(&WsSendType, loop, stream);
}

PyObject* buildWebSocketScope(LoopThread& loop, const AsgiStream& s, PyObject* state) {
  // The HTTP scope's keys, then what differs (ASGI www spec, "WebSocket connection scope").
  PyRef scope = PyRef::steal(buildScope(loop, s, state));
  if (!scope) {
    return nullptr;
  }
  PyObject* d = scope.get();
  PyRef subprotocols = PyRef::steal(PyList_New(0));
  if (!subprotocols) {
    return nullptr;
  }
  for (const std::string& p : s.ws->subprotocols) {
    PyRef item =
        PyRef::steal(PyUnicode_DecodeUTF8(p.data(), static_cast<Py_ssize_t>(p.size()), "replace"));
    if (!item || PyList_Append(subprotocols.get(), item.get()) != 0) {
      return nullptr;
    }
  }
  // The HTTP scope's extensions dict may be shared between requests: build this one's own.
  PyObject* http_extensions = PyDict_GetItemWithError(d, W.extensions); // borrowed
  if (http_extensions == nullptr) {
    return nullptr;
  }
  PyRef extensions = PyRef::steal(PyDict_Copy(http_extensions));
  if (!extensions) {
    return nullptr;
  }
  for (PyObject* http_only : {W.ext_trailers, W.ext_pathsend, W.ext_early_hint}) {
    if (PyDict_DelItem(extensions.get(), http_only) != 0) {
      PyErr_Clear();
    }
  }
  PyRef empty = PyRef::steal(PyDict_New());
  if (!empty || PyDict_SetItem(extensions.get(), W.ext_http_response, empty.get()) != 0 ||
      PyDict_SetItem(d, W.extensions, extensions.get()) != 0 ||
      PyDict_SetItem(d, W.type, W.websocket) != 0 ||
      PyDict_SetItem(d, W.scheme, s.scheme == "https" ? W.wss : W.ws) != 0 ||
      PyDict_SetItem(d, W.subprotocols, subprotocols.get()) != 0 ||
      PyDict_DelItem(d, W.method) != 0) {
    return nullptr;
  }
  return scope.release();
}

void resolveWebSocketReceive(LoopThread& loop, AsgiStream& s) {
  WebSocketStream& ws = *s.ws;
  resolveReceiveWaiters(s, [&loop, &s, &ws]() -> PyObject* {
    if (!ws.received.empty()) {
      return takeMessage(loop, s);
    }
    if (s.disconnected) {
      return disconnectMessage(ws);
    }
    return kNoEvent;
  });
}

void finishWebSocketApp(LoopThread& loop, AsgiStream& s, PyObject* exc_type, PyObject* exc_value,
                        PyObject* exc_tb) {
  s.app_done = true;
  WebSocketStream& ws = *s.ws;
  const bool quiet = exc_type != nullptr && s.disconnected &&
                     (PyErr_GivenExceptionMatches(exc_type, clientDisconnectedError()) ||
                      PyErr_GivenExceptionMatches(exc_type, cancelledError()) ||
                      PyErr_GivenExceptionMatches(exc_type, PyExc_GeneratorExit));
  if (exc_type != nullptr && !quiet) {
    Py_XINCREF(exc_type);
    Py_XINCREF(exc_value);
    Py_XINCREF(exc_tb);
    PyErr_Restore(exc_type, exc_value, exc_tb);
    logPythonError(cat("Exception in ASGI application (websocket ", s.headers.path(), ")"));
  }
  OutEvent ev;
  ev.stream = StreamRef(&s);
  switch (ws.phase) {
  case Phase::Handshake:
    // Neither accepted nor refused: refuse with 500 (the client left: nobody to answer).
    if (exc_type == nullptr && !s.disconnected) {
      POUNCE_LOG(Asgi, Error, "ASGI app returned without accepting or closing the WebSocket (%s)",
                 s.headers.path());
    }
    ev.kind = OutEvent::Kind::Error;
    ev.status = 500;
    loop.addOut(std::move(ev));
    break;
  case Phase::Open:
    // Returned without closing: close normally; raised: 1011 (internal error).
    ev.kind = OutEvent::Kind::WsClose;
    ev.status = exc_type != nullptr && !quiet ? http::websocket::close_code::kInternalError
                                              : http::websocket::close_code::kNormal;
    loop.addOut(std::move(ev));
    break;
  case Phase::Denying:
    ev.kind = OutEvent::Kind::Reset; // the denial response cannot be completed
    loop.addOut(std::move(ev));
    break;
  case Phase::Closed:
    break;
  }
  ws.phase = Phase::Closed;
  s.response_complete = true;
  PyErr_Clear();
  if (!s.receive_waiters.empty()) {
    s.disconnected = true;
    resolveWebSocketReceive(loop, s);
  }
  Py_CLEAR(s.send_future);
  Py_CLEAR(s.task);
}

} // namespace pounce::asgi::py
