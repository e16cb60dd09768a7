// The _pounce extension module: the objects an ASGI app touches on every request —
// receive(), send(), the awaitables they return, and the coroutine wrapper that runs the
// app inside an asyncio Task — plus the scope builder. Everything here runs on a Python
// thread with the GIL held.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <unordered_map>

#include "source/asgi/loop_thread.h"
#include "source/asgi/module_internal.h"
#include "source/common/logger.h"
#include "source/common/strings.h"
#include "source/common/swar.h"

namespace pounce::asgi::py {

namespace {

// --- interned names and cached constants ------------------------------------------------

struct Names {
  PyObject *type, *http, *asgi, *version, *spec_version, *http_version, *method, *scheme, *path,
      *raw_path, *query_string, *root_path, *headers, *client, *server, *state, *extensions, *body,
      *more_body, *status, *trailers, *links, *more_trailers;
  PyObject *http_request, *http_disconnect, *response_start, *response_body, *response_trailers,
      *response_pathsend, *response_early_hint;
  PyObject *set_result, *set_exception, *done, *cancel, *cr_await, *cr_frame, *cr_running, *cr_code,
      *send, *throw_, *close;
  PyObject *v10, *v11, *v2, *scheme_http, *scheme_https, *empty_bytes, *empty_str;
  // extensions_template: the keys of a request's extensions (its values are not handed out).
  PyObject *asgi_template, *extensions_template, *request_id_key, *tls_key;
  PyObject* disconnect_message; // {"type": "http.disconnect"} (copied per use)
  PyObject* scope_template;     // every scope key, placeholder values
  PyObject* request_template;   // {"type": "http.request", "body": b"", "more_body": False}
  PyObject* support;
  PyObject* client_disconnected;
  PyObject* cancelled_error;
  PyObject* methods[9];
};
Names N;

const char* const kMethods[9] = {"GET",   "POST",    "HEAD",    "PUT",  "DELETE",
                                 "PATCH", "OPTIONS", "CONNECT", "TRACE"};

PyObject* methodObject(const std::string& m) {
  for (int i = 0; i < 9; ++i) {
    if (m == kMethods[i]) {
      Py_INCREF(N.methods[i]);
      return N.methods[i];
    }
  }
  return PyUnicode_FromStringAndSize(m.data(), static_cast<Py_ssize_t>(m.size()));
}

// Percent-decodes `raw` and decodes the bytes as UTF-8 (invalid sequences replaced).
PyObject* decodePath(std::string_view raw) {
  if (raw.find('%') == std::string_view::npos) {
    return PyUnicode_DecodeUTF8(raw.data(), static_cast<Py_ssize_t>(raw.size()), "replace");
  }
  std::string out;
  out.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '%' && i + 2 < raw.size() && hexDigitValue(raw[i + 1]) >= 0 &&
        hexDigitValue(raw[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hexDigitValue(raw[i + 1]) * 16 + hexDigitValue(raw[i + 2])));
      i += 2;
    } else {
      out.push_back(raw[i]);
    }
  }
  return PyUnicode_DecodeUTF8(out.data(), static_cast<Py_ssize_t>(out.size()), "replace");
}

PyObject* bytesOf(std::string_view s) {
  return PyBytes_FromStringAndSize(s.data(), static_cast<Py_ssize_t>(s.size()));
}

PyObject* strOf(std::string_view s) {
  return PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "replace");
}

// strOf for text that is usually ASCII (request ids): copied straight into a new str when
// it is, without the UTF-8 decoder.
PyObject* asciiStrOf(std::string_view s) {
  if (swar::anyByte(s.data(), s.size(), 'a', swar::nonAscii)) {
    return strOf(s);
  }
  PyObject* out = PyUnicode_New(static_cast<Py_ssize_t>(s.size()), 127);
  if (out != nullptr && !s.empty()) {
    std::memcpy(PyUnicode_DATA(out), s.data(), s.size());
  }
  return out;
}

// --- Done: the awaitable send() returns when there is room (resolves to None) ----------

struct DoneObject {
  PyObject_HEAD
};

PySendResult doneSend(PyObject*, PyObject*, PyObject** result) {
  Py_INCREF(Py_None);
  *result = Py_None;
  return PYGEN_RETURN;
}
PyObject* selfAwait(PyObject* self) {
  Py_INCREF(self);
  return self;
}
PyObject* doneNext(PyObject*) {
  PyErr_SetNone(PyExc_StopIteration);
  return nullptr;
}
PyAsyncMethods kDoneAsync = {selfAwait, nullptr, nullptr, doneSend};
PyTypeObject DoneType = {PyVarObject_HEAD_INIT(nullptr, 0)};
PyObject* g_done = nullptr;

// --- Message: an awaitable already holding its result (receive() with data at hand) ----

struct MessageObject {
  PyObject_HEAD PyObject* value;
};

void messageDealloc(PyObject* self) {
  Py_XDECREF(reinterpret_cast<MessageObject*>(self)->value);
  Py_TYPE(self)->tp_free(self);
}
PySendResult messageSend(PyObject* self, PyObject*, PyObject** result) {
  auto* m = reinterpret_cast<MessageObject*>(self);
  Py_INCREF(m->value);
  *result = m->value;
  return PYGEN_RETURN;
}
PyObject* messageNext(PyObject* self) {
  PyObject* value = reinterpret_cast<MessageObject*>(self)->value;
  PyObject* exc = PyObject_CallOneArg(PyExc_StopIteration, value);
  if (exc != nullptr) {
    PyErr_SetObject(PyExc_StopIteration, exc);
    Py_DECREF(exc);
  }
  return nullptr;
}
PyAsyncMethods kMessageAsync = {selfAwait, nullptr, nullptr, messageSend};
PyTypeObject MessageType = {PyVarObject_HEAD_INIT(nullptr, 0)};

PyObject* newMessage(PyObject* value /* stolen */) {
  auto* m = PyObject_New(MessageObject, &MessageType);
  if (m == nullptr) {
    Py_DECREF(value);
    return nullptr;
  }
  m->value = value;
  return reinterpret_cast<PyObject*>(m);
}

// --- Receive / Send ---------------------------------------------------------------------

void channelDealloc(PyObject* self) {
  auto* c = reinterpret_cast<ChannelObject*>(self);
  if (c->stream != nullptr) {
    if (--c->stream->py_holders == 0) {
      c->stream->clearPython();
    }
    c->stream->unref();
  }
  Py_TYPE(self)->tp_free(self);
}

PyObject* newChannel(PyTypeObject* type, LoopThread& loop, const StreamRef& stream) {
  auto* c = PyObject_New(ChannelObject, type);
  if (c == nullptr) {
    return nullptr;
  }
  c->stream = stream.get();
  c->stream->ref();
  c->stream->py_holders++;
  c->loop = &loop;
  return reinterpret_cast<PyObject*>(c);
}

PyObject* disconnectMessageCopy() { return PyDict_Copy(N.disconnect_message); }

} // namespace

// The next http.request message from the body received so far (all queued pieces joined).
PyObject* takeBodyMessage(LoopThread& loop, AsgiStream& s) {
  PyObject* body;
  size_t total = 0;
  if (s.body.size() == 1) {
    total = s.body.front().length();
    body = bytesOf(s.body.front().view());
  } else {
    for (const auto& b : s.body) {
      total += b.length();
    }
    body = PyBytes_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(total));
    if (body != nullptr) {
      char* p = PyBytes_AS_STRING(body);
      for (const auto& b : s.body) {
        std::memcpy(p, b.data(), b.length());
        p += b.length();
      }
    }
  }
  if (body == nullptr) {
    return nullptr;
  }
  s.body.clear();
  const bool more = !s.body_complete;
  if (!more) {
    s.body_delivered = true;
  }
  const int64_t left =
      s.unconsumed_in_bytes.fetch_sub(static_cast<int64_t>(total)) - static_cast<int64_t>(total);
  if (s.reading_paused.load(std::memory_order_acquire) &&
      left <= static_cast<int64_t>(s.buffer_limit / 2)) {
    OutEvent ev;
    ev.kind = OutEvent::Kind::ResumeRead;
    ev.stream = StreamRef(&s);
    loop.addOut(std::move(ev));
  }
  PyObject* msg = PyDict_Copy(N.request_template);
  if (msg == nullptr) {
    Py_DECREF(body);
    return nullptr;
  }
  PyDict_SetItem(msg, N.body, body);
  if (more) {
    PyDict_SetItem(msg, N.more_body, Py_True);
  }
  Py_DECREF(body);
  return msg;
}

PyObject* newReceiveWaiter(LoopThread& loop, AsgiStream& stream) {
  PyObject* fut = loop.createFuture();
  if (fut == nullptr) {
    return nullptr;
  }
  Py_INCREF(fut);
  stream.receive_waiters.push_back(fut);
  return fut;
}

namespace {

PyObject* receiveCall(PyObject* self, PyObject* args, PyObject* kwargs) {
  auto* c = reinterpret_cast<ChannelObject*>(self);
  AsgiStream& s = *c->stream;
  if (!s.body.empty() || (s.body_complete && !s.body_delivered)) {
    PyObject* msg = takeBodyMessage(*c->loop, s);
    return msg == nullptr ? nullptr : newMessage(msg);
  }
  if (s.disconnected || (s.body_delivered && s.response_complete)) {
    return newMessage(disconnectMessageCopy());
  }
  if (s.expects_continue && !s.continue_asked && !s.body_complete) {
    s.continue_asked = true;
    OutEvent ev;
    ev.kind = OutEvent::Kind::Continue;
    ev.stream = StreamRef(&s);
    c->loop->addOut(std::move(ev));
  }
  return newReceiveWaiter(*c->loop, s);
}

// Header list from an ASGI message: iterable of [name, value] byte strings.
bool parseHeaders(PyObject* list, http::HeaderMap& out) {
  if (list == nullptr || list == Py_None) {
    return true;
  }
  PyObject* seq = PySequence_Fast(list, "headers must be a list of [name, value] pairs");
  if (seq == nullptr) {
    return false;
  }
  const Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
  PyObject** items = PySequence_Fast_ITEMS(seq);
  for (Py_ssize_t i = 0; i < n; ++i) {
    PyObject* pair = items[i];
    PyObject *name, *value;
    if (PyTuple_Check(pair) && PyTuple_GET_SIZE(pair) == 2) {
      name = PyTuple_GET_ITEM(pair, 0);
      value = PyTuple_GET_ITEM(pair, 1);
    } else if (PyList_Check(pair) && PyList_GET_SIZE(pair) == 2) {
      name = PyList_GET_ITEM(pair, 0);
      value = PyList_GET_ITEM(pair, 1);
    } else {
      Py_DECREF(seq);
      PyErr_SetString(PyExc_TypeError, "each header must be a [name, value] pair");
      return false;
    }
    std::string_view nv, vv;
    Py_buffer nb{}, vb{};
    if (PyBytes_Check(name)) {
      nv = {PyBytes_AS_STRING(name), static_cast<size_t>(PyBytes_GET_SIZE(name))};
    } else if (PyUnicode_Check(name)) {
      Py_ssize_t len;
      const char* p = PyUnicode_AsUTF8AndSize(name, &len);
      if (p == nullptr) {
        Py_DECREF(seq);
        return false;
      }
      nv = {p, static_cast<size_t>(len)};
    } else if (PyObject_GetBuffer(name, &nb, PyBUF_SIMPLE) == 0) {
      nv = {static_cast<const char*>(nb.buf), static_cast<size_t>(nb.len)};
    } else {
      Py_DECREF(seq);
      PyErr_SetString(PyExc_TypeError, "header names must be bytes");
      return false;
    }
    if (PyBytes_Check(value)) {
      vv = {PyBytes_AS_STRING(value), static_cast<size_t>(PyBytes_GET_SIZE(value))};
    } else if (PyUnicode_Check(value)) {
      Py_ssize_t len;
      const char* p = PyUnicode_AsUTF8AndSize(value, &len);
      if (p == nullptr) {
        if (nb.obj) {
          PyBuffer_Release(&nb);
        }
        Py_DECREF(seq);
        return false;
      }
      vv = {p, static_cast<size_t>(len)};
    } else if (PyObject_GetBuffer(value, &vb, PyBUF_SIMPLE) == 0) {
      vv = {static_cast<const char*>(vb.buf), static_cast<size_t>(vb.len)};
    } else {
      if (nb.obj) {
        PyBuffer_Release(&nb);
      }
      Py_DECREF(seq);
      PyErr_SetString(PyExc_TypeError, "header values must be bytes");
      return false;
    }
    if (!http::isValidHeaderName(nv) || !http::isValidHeaderValue(vv)) {
      POUNCE_LOG(Asgi, Warning, "dropped a response header with characters not allowed in HTTP: %s",
                 escapeForLog(nv));
    } else {
      out.add(nv, vv);
    }
    if (nb.obj) {
      PyBuffer_Release(&nb);
    }
    if (vb.obj) {
      PyBuffer_Release(&vb);
    }
  }
  Py_DECREF(seq);
  return true;
}

bool bodyBytes(PyObject* message, std::string_view& out, Py_buffer& view) {
  PyObject* body = PyDict_GetItemWithError(message, N.body);
  if (body == nullptr) {
    if (PyErr_Occurred()) {
      return false;
    }
    out = {};
    return true;
  }
  if (PyBytes_Check(body)) {
    out = {PyBytes_AS_STRING(body), static_cast<size_t>(PyBytes_GET_SIZE(body))};
    return true;
  }
  if (PyObject_GetBuffer(body, &view, PyBUF_SIMPLE) != 0) {
    PyErr_SetString(PyExc_TypeError, "'body' must be bytes");
    return false;
  }
  out = {static_cast<const char*>(view.buf), static_cast<size_t>(view.len)};
  return true;
}

bool flag(PyObject* message, PyObject* key, bool& out) {
  PyObject* v = PyDict_GetItemWithError(message, key);
  if (v == nullptr) {
    out = false;
    return !PyErr_Occurred();
  }
  const int t = PyObject_IsTrue(v);
  if (t < 0) {
    return false;
  }
  out = t == 1;
  return true;
}

PyObject* backpressure(ChannelObject* c) {
  AsgiStream& s = *c->stream;
  const bool full =
      s.queued_out_bytes.load(std::memory_order_relaxed) > static_cast<int64_t>(s.buffer_limit);
  if (!full && !s.downstream_blocked.load(std::memory_order_acquire)) {
    Py_INCREF(g_done);
    return g_done;
  }
  // Wait for the I/O thread to say there is room. Set the flag, then look again: a drain
  // that happened in between would otherwise never wake us.
  s.send_waiter.store(true, std::memory_order_seq_cst);
  const bool still_full =
      s.queued_out_bytes.load(std::memory_order_seq_cst) > static_cast<int64_t>(s.buffer_limit / 2);
  if (!still_full && !s.downstream_blocked.load(std::memory_order_seq_cst) &&
      s.send_waiter.exchange(false)) {
    Py_INCREF(g_done);
    return g_done;
  }
  PyObject* fut = c->loop->createFuture();
  if (fut == nullptr) {
    return nullptr;
  }
  Py_XDECREF(s.send_future);
  Py_INCREF(fut);
  s.send_future = fut;
  return fut;
}

} // namespace

PyObject* sendMessageType(PyObject* args, PyObject*& message) {
  if (!PyArg_ParseTuple(args, "O!:send", &PyDict_Type, &message)) {
    return nullptr;
  }
  PyObject* type = PyDict_GetItemWithError(message, N.type);
  if (type == nullptr && !PyErr_Occurred()) {
    PyErr_SetString(PyExc_ValueError, "ASGI message has no 'type'");
  }
  return type;
}

namespace {

PyObject* sendCall(PyObject* self, PyObject* args, PyObject* kwargs) {
  auto* c = reinterpret_cast<ChannelObject*>(self);
  AsgiStream& s = *c->stream;
  PyObject* message = nullptr;
  PyObject* type = sendMessageType(args, message);
  if (type == nullptr) {
    return nullptr;
  }
  if (s.disconnected) {
    PyErr_SetString(N.client_disconnected, "the client disconnected");
    return nullptr;
  }
  // Message types: identity first (interned constants), then length + bytes (app string
  // literals with dots are not interned).
  Py_ssize_t type_len = 0;
  const char* type_data =
      PyUnicode_Check(type) ? PyUnicode_AsUTF8AndSize(type, &type_len) : nullptr;
  auto is = [&](PyObject* name) {
    if (type == name) {
      return true;
    }
    if (type_data == nullptr || type_len != PyUnicode_GET_LENGTH(name)) {
      return false;
    }
    return std::memcmp(type_data, PyUnicode_AsUTF8(name), static_cast<size_t>(type_len)) == 0;
  };
  if (is(N.response_start)) {
    if (s.response_started) {
      PyErr_SetString(PyExc_RuntimeError, "http.response.start sent twice");
      return nullptr;
    }
    PyObject* status = PyDict_GetItemWithError(message, N.status);
    if (status == nullptr || !PyLong_Check(status)) {
      if (!PyErr_Occurred()) {
        PyErr_SetString(PyExc_ValueError, "http.response.start needs an integer 'status'");
      }
      return nullptr;
    }
    const long code = PyLong_AsLong(status);
    if (code < 100 || code > 599) {
      PyErr_Format(PyExc_ValueError, "invalid HTTP status %ld", code);
      return nullptr;
    }
    if (code < 200) {
      // The answer to a request is final; a 1xx is interim (RFC 9110 §15.2), and a client
      // sent one waits on for the real answer.
      PyErr_Format(PyExc_ValueError,
                   "http.response.start status %ld is an interim (1xx) status, not a final one",
                   code);
      return nullptr;
    }
    auto headers = std::make_unique<http::ResponseHeaders>(static_cast<int>(code));
    PyObject* h = PyDict_GetItemWithError(message, N.headers);
    if (h == nullptr && PyErr_Occurred()) {
      return nullptr;
    }
    if (!parseHeaders(h, *headers)) {
      return nullptr;
    }
    bool trailers;
    if (!flag(message, N.trailers, trailers)) {
      return nullptr;
    }
    s.response_started = true;
    s.trailers_expected = trailers;
    OutEvent ev;
    ev.kind = OutEvent::Kind::Start;
    ev.stream = StreamRef(&s);
    ev.status = static_cast<int>(code);
    ev.headers = std::move(headers);
    ev.trailers = trailers;
    c->loop->addOut(std::move(ev));
    Py_INCREF(g_done);
    return g_done;
  }
  if (is(N.response_body)) {
    if (!s.response_started) {
      PyErr_SetString(PyExc_RuntimeError, "http.response.body sent before http.response.start");
      return nullptr;
    }
    if (s.response_complete) {
      PyErr_SetString(N.client_disconnected, "the response is already complete");
      return nullptr;
    }
    if (s.response_body_ended) {
      // (Trailers are expected: the response is not complete, but its body is.)
      PyErr_SetString(PyExc_RuntimeError, "http.response.body after the body ended (a body "
                                          "message with more_body False, or trailers)");
      return nullptr;
    }
    std::string_view body;
    Py_buffer view{};
    if (!bodyBytes(message, body, view)) {
      return nullptr;
    }
    bool more;
    if (!flag(message, N.more_body, more)) {
      if (view.obj) {
        PyBuffer_Release(&view);
      }
      return nullptr;
    }
    OutEvent ev;
    ev.kind = OutEvent::Kind::Body;
    ev.stream = StreamRef(&s);
    ev.body.add(body);
    ev.more = more;
    ev.trailers = s.trailers_expected;
    if (view.obj) {
      PyBuffer_Release(&view);
    }
    s.queued_out_bytes.fetch_add(static_cast<int64_t>(body.size()), std::memory_order_relaxed);
    c->loop->addOut(std::move(ev));
    s.response_body_ended = !more;
    if (!more && !s.trailers_expected) {
      s.response_complete = true;
      c->loop->resolveReceive(s);
      Py_INCREF(g_done);
      return g_done;
    }
    return backpressure(c);
  }
  if (is(N.response_trailers)) {
    if (!s.trailers_expected || s.response_complete) {
      PyErr_SetString(PyExc_RuntimeError,
                      "http.response.trailers without 'trailers': True in http.response.start");
      return nullptr;
    }
    // Trailers while the body is still open end it (the extension puts them after the
    // last body message, but gRPC-over-ASGI apps send a status in trailers straight after
    // streamed messages, or with no body at all, and Hypercorn takes that too).
    s.response_body_ended = true;
    auto trailers = std::make_unique<http::HeaderMap>();
    PyObject* h = PyDict_GetItemWithError(message, N.headers);
    if (h == nullptr && PyErr_Occurred()) {
      return nullptr;
    }
    if (!parseHeaders(h, *trailers)) {
      return nullptr;
    }
    bool more;
    if (!flag(message, N.more_trailers, more)) {
      return nullptr;
    }
    OutEvent ev;
    ev.kind = OutEvent::Kind::Trailers;
    ev.stream = StreamRef(&s);
    ev.trailer_map = std::move(trailers);
    ev.more = more;
    c->loop->addOut(std::move(ev));
    if (!more) {
      s.response_complete = true;
      c->loop->resolveReceive(s);
    }
    Py_INCREF(g_done);
    return g_done;
  }
  if (is(N.response_pathsend)) {
    if (!s.response_started || s.response_complete || s.response_body_ended) {
      PyErr_SetString(PyExc_RuntimeError, "http.response.pathsend must follow http.response.start "
                                          "(and is the whole body)");
      return nullptr;
    }
    PyObject* p = PyDict_GetItemWithError(message, N.path);
    if (p == nullptr || !PyUnicode_Check(p)) {
      if (!PyErr_Occurred()) {
        PyErr_SetString(PyExc_ValueError, "http.response.pathsend needs a 'path' string");
      }
      return nullptr;
    }
    PyObject* encoded = PyUnicode_EncodeFSDefault(p);
    if (encoded == nullptr) {
      return nullptr;
    }
    const std::string path(PyBytes_AS_STRING(encoded), PyBytes_GET_SIZE(encoded));
    Py_DECREF(encoded);
    int fd;
    struct stat st;
    {
      GilRelease release;
      fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
        ::close(fd);
        fd = -1;
        errno = EISDIR;
      }
    }
    if (fd < 0) {
      PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, p);
      return nullptr;
    }
    OutEvent ev;
    ev.kind = OutEvent::Kind::File;
    ev.stream = StreamRef(&s);
    ev.file = std::make_shared<FileHandle>(fd);
    ev.file_size = static_cast<uint64_t>(st.st_size);
    ev.trailers = s.trailers_expected;
    c->loop->addOut(std::move(ev));
    s.response_body_ended = true;
    if (!s.trailers_expected) {
      s.response_complete = true;
      c->loop->resolveReceive(s);
    }
    Py_INCREF(g_done);
    return g_done;
  }
  if (is(N.response_early_hint)) {
    if (s.response_started) {
      Py_INCREF(g_done); // too late for a hint: ignored, as the spec allows
      return g_done;
    }
    PyObject* links = PyDict_GetItemWithError(message, N.links);
    auto headers = std::make_unique<http::ResponseHeaders>(103);
    if (links != nullptr) {
      PyObject* seq = PySequence_Fast(links, "'links' must be a list of byte strings");
      if (seq == nullptr) {
        return nullptr;
      }
      for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); ++i) {
        PyObject* l = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyBytes_Check(l)) {
          Py_DECREF(seq);
          PyErr_SetString(PyExc_TypeError, "'links' must be a list of byte strings");
          return nullptr;
        }
        const std::string_view v(PyBytes_AS_STRING(l), PyBytes_GET_SIZE(l));
        if (http::isValidHeaderValue(v) && !v.empty()) {
          headers->add("link", v);
        } else {
          POUNCE_LOG(Asgi, Warning,
                     "dropped an empty early hint link, or one with characters "
                     "not allowed in HTTP: '%s'",
                     escapeForLog(v));
        }
      }
      Py_DECREF(seq);
    } else if (PyErr_Occurred()) {
      return nullptr;
    }
    if (headers->size() == 0) {
      Py_INCREF(g_done); // no link left to hint: a 103 would say nothing (RFC 8297)
      return g_done;
    }
    OutEvent ev;
    ev.kind = OutEvent::Kind::EarlyHint;
    ev.stream = StreamRef(&s);
    ev.headers = std::move(headers);
    c->loop->addOut(std::move(ev));
    Py_INCREF(g_done);
    return g_done;
  }
  PyErr_Format(PyExc_ValueError, "unknown ASGI message type %R for an http scope", type);
  return nullptr;
}

PyTypeObject ReceiveType = {PyVarObject_HEAD_INIT(nullptr, 0)};
PyTypeObject SendType = {PyVarObject_HEAD_INIT(nullptr, 0)};

// --- AppRunner: the app's coroutine inside an asyncio Task -------------------------------
//
// A coroutine-compatible wrapper: the Task steps it (am_send / throw), it steps the app's
// coroutine, and when that finishes it settles the response itself (500, reset, or
// nothing) — no done-callback, no "exception never retrieved" noise.

struct RunnerObject {
  PyObject_HEAD PyObject* coro;
  AsgiStream* stream;
  LoopThread* loop;
  bool finished;
};

void runnerDealloc(PyObject* self) {
  auto* r = reinterpret_cast<RunnerObject*>(self);
  Py_XDECREF(r->coro);
  if (r->stream != nullptr) {
    if (--r->stream->py_holders == 0) {
      r->stream->clearPython();
    }
    r->stream->unref();
  }
  Py_TYPE(self)->tp_free(self);
}

PySendResult runnerFinish(RunnerObject* r, PySendResult status, PyObject** result) {
  if (status == PYGEN_NEXT) {
    return status;
  }
  if (r->finished) {
    return status;
  }
  r->finished = true;
  if (status == PYGEN_RETURN) {
    Py_XDECREF(*result);
    r->loop->onAppFinished(*r->stream, nullptr, nullptr, nullptr);
  } else {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    r->loop->onAppFinished(*r->stream, type, value, tb);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
  }
  Py_CLEAR(r->coro);
  Py_INCREF(Py_None);
  *result = Py_None;
  return PYGEN_RETURN;
}

PySendResult runnerSend(PyObject* self, PyObject* arg, PyObject** result) {
  auto* r = reinterpret_cast<RunnerObject*>(self);
  if (r->coro == nullptr) {
    Py_INCREF(Py_None);
    *result = Py_None;
    return PYGEN_RETURN;
  }
  *result = nullptr;
  const PySendResult status = PyIter_Send(r->coro, arg, result);
  return runnerFinish(r, status, result);
}

PyObject* resultToPython(PySendResult status, PyObject* result) {
  if (status == PYGEN_NEXT) {
    return result;
  }
  if (status == PYGEN_RETURN) {
    if (result == Py_None) {
      Py_DECREF(result);
      PyErr_SetNone(PyExc_StopIteration);
    } else {
      PyObject* exc = PyObject_CallOneArg(PyExc_StopIteration, result);
      Py_DECREF(result);
      if (exc != nullptr) {
        PyErr_SetObject(PyExc_StopIteration, exc);
        Py_DECREF(exc);
      }
    }
  }
  return nullptr;
}

PyObject* runnerIterNext(PyObject* self) {
  PyObject* result = nullptr;
  const PySendResult status = runnerSend(self, Py_None, &result);
  if (status == PYGEN_RETURN) {
    Py_DECREF(result);
    return nullptr; // plain exhaustion
  }
  return resultToPython(status, result);
}

PyObject* runnerSendMethod(PyObject* self, PyObject* arg) {
  PyObject* result = nullptr;
  const PySendResult status = runnerSend(self, arg, &result);
  return resultToPython(status, result);
}

PyObject* runnerThrow(PyObject* self, PyObject* args) {
  auto* r = reinterpret_cast<RunnerObject*>(self);
  if (r->coro == nullptr) {
    PyObject *t = nullptr, *v = nullptr, *tb = nullptr;
    if (!PyArg_ParseTuple(args, "O|OO:throw", &t, &v, &tb)) {
      return nullptr;
    }
    if (PyExceptionInstance_Check(t)) {
      PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(t)), t);
    } else {
      PyErr_SetObject(t, v);
    }
    return nullptr;
  }
  PyObject* result = PyObject_CallMethodObjArgs(
      r->coro, N.throw_, PyTuple_GET_ITEM(args, 0),
      PyTuple_GET_SIZE(args) > 1 ? PyTuple_GET_ITEM(args, 1) : nullptr,
      PyTuple_GET_SIZE(args) > 2 ? PyTuple_GET_ITEM(args, 2) : nullptr, nullptr);
  PySendResult status;
  if (result != nullptr) {
    status = PYGEN_NEXT;
  } else if (PyErr_ExceptionMatches(PyExc_StopIteration)) {
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    PyErr_NormalizeException(&t, &v, &tb);
    result = v != nullptr ? PyObject_GetAttrString(v, "value") : (Py_INCREF(Py_None), Py_None);
    Py_XDECREF(t);
    Py_XDECREF(v);
    Py_XDECREF(tb);
    status = PYGEN_RETURN;
  } else {
    status = PYGEN_ERROR;
  }
  const PySendResult final_status = runnerFinish(r, status, &result);
  return resultToPython(final_status, result);
}

PyObject* runnerClose(PyObject* self, PyObject*) {
  auto* r = reinterpret_cast<RunnerObject*>(self);
  if (r->coro != nullptr) {
    PyObject* res = PyObject_CallMethodNoArgs(r->coro, N.close);
    Py_XDECREF(res);
    if (res == nullptr) {
      PyErr_Clear();
    }
    if (!r->finished) {
      r->finished = true;
      r->loop->onAppFinished(*r->stream, PyExc_GeneratorExit, nullptr, nullptr);
    }
    Py_CLEAR(r->coro);
  }
  Py_RETURN_NONE;
}

PyObject* runnerAttr(PyObject* self, void* name) {
  auto* r = reinterpret_cast<RunnerObject*>(self);
  if (r->coro == nullptr) {
    if (name == &N.cr_running) {
      Py_RETURN_FALSE;
    }
    Py_RETURN_NONE;
  }
  return PyObject_GetAttr(r->coro, *static_cast<PyObject**>(name));
}

PyMethodDef kRunnerMethods[] = {
    {"send", runnerSendMethod, METH_O, nullptr},
    {"throw", runnerThrow, METH_VARARGS, nullptr},
    {"close", runnerClose, METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};
PyGetSetDef kRunnerGetSet[] = {
    {"cr_await", runnerAttr, nullptr, nullptr, &N.cr_await},
    {"cr_frame", runnerAttr, nullptr, nullptr, &N.cr_frame},
    {"cr_running", runnerAttr, nullptr, nullptr, &N.cr_running},
    {"cr_code", runnerAttr, nullptr, nullptr, &N.cr_code},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};
PyAsyncMethods kRunnerAsync = {selfAwait, nullptr, nullptr, runnerSend};
PyTypeObject RunnerType = {PyVarObject_HEAD_INIT(nullptr, 0)};

// --- LoopHandle: the loop's entry points (_drain on wake-up, _flush at the end of a turn) -

struct HandleObject {
  PyObject_HEAD LoopThread* loop;
};

PyObject* handleDrain(PyObject* self, PyObject*) {
  reinterpret_cast<HandleObject*>(self)->loop->drainInbox();
  if (PyErr_Occurred()) {
    return nullptr;
  }
  Py_RETURN_NONE;
}

PyObject* handleFlush(PyObject* self, PyObject*) {
  reinterpret_cast<HandleObject*>(self)->loop->flushOutbox();
  Py_RETURN_NONE;
}

PyMethodDef kHandleMethods[] = {
    {"_drain", handleDrain, METH_NOARGS, nullptr},
    {"_flush", handleFlush, METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};
PyTypeObject HandleType = {PyVarObject_HEAD_INIT(nullptr, 0)};

bool readyType(PyTypeObject& t, const char* name, size_t size) {
  t.tp_name = name;
  t.tp_basicsize = static_cast<Py_ssize_t>(size);
  if (t.tp_flags == 0) {
    t.tp_flags = Py_TPFLAGS_DEFAULT;
  }
  return PyType_Ready(&t) == 0;
}

PyModuleDef_Slot kSlots[] = {
#ifdef Py_GIL_DISABLED
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, nullptr},
};

PyModuleDef kModule = {
    PyModuleDef_HEAD_INIT,
    "_pounce",
    "pounce's native ASGI objects",
    0,
    nullptr,
    kSlots,
    nullptr,
    nullptr,
    nullptr,
};

} // namespace

bool initTypes() {
  DoneType.tp_as_async = &kDoneAsync;
  DoneType.tp_iter = selfAwait;
  DoneType.tp_iternext = doneNext;
  MessageType.tp_as_async = &kMessageAsync;
  MessageType.tp_iter = selfAwait;
  MessageType.tp_iternext = messageNext;
  MessageType.tp_dealloc = messageDealloc;
  ReceiveType.tp_call = receiveCall;
  ReceiveType.tp_dealloc = channelDealloc;
  SendType.tp_call = sendCall;
  SendType.tp_dealloc = channelDealloc;
  RunnerType.tp_as_async = &kRunnerAsync;
  RunnerType.tp_iter = selfAwait;
  RunnerType.tp_iternext = runnerIterNext;
  RunnerType.tp_dealloc = runnerDealloc;
  RunnerType.tp_methods = kRunnerMethods;
  RunnerType.tp_getset = kRunnerGetSet;
  HandleType.tp_methods = kHandleMethods;
  return initWebSocketTypes() && readyType(DoneType, "_pounce.Done", sizeof(DoneObject)) &&
         readyType(MessageType, "_pounce.Message", sizeof(MessageObject)) &&
         readyType(ReceiveType, "_pounce.Receive", sizeof(ChannelObject)) &&
         readyType(SendType, "_pounce.Send", sizeof(ChannelObject)) &&
         readyType(RunnerType, "_pounce.AppRunner", sizeof(RunnerObject)) &&
         readyType(HandleType, "_pounce.LoopHandle", sizeof(HandleObject));
}

PyObject* newReceive(LoopThread& loop, const StreamRef& stream) {
  return newChannel(&ReceiveType, loop, stream);
}

PyObject* newSend(LoopThread& loop, const StreamRef& stream) {
  return newChannel(&SendType, loop, stream);
}

PyObject* newRunner(LoopThread& loop, const StreamRef& stream, PyObject* coro) {
  auto* r = PyObject_New(RunnerObject, &RunnerType);
  if (r == nullptr) {
    return nullptr;
  }
  Py_INCREF(coro);
  r->coro = coro;
  r->stream = stream.get();
  r->stream->ref();
  r->stream->py_holders++;
  r->loop = &loop;
  r->finished = false;
  return reinterpret_cast<PyObject*>(r);
}

PyObject* newLoopHandle(LoopThread& loop) {
  auto* h = PyObject_New(HandleObject, &HandleType);
  if (h != nullptr) {
    h->loop = &loop;
  }
  return reinterpret_cast<PyObject*>(h);
}

PyObject* disconnectMessage() { return disconnectMessageCopy(); }

// --- shared with websocket_module.cc (module_internal.h) ----------------------------------

PyObject* newChannelObject(PyTypeObject* type, LoopThread& loop, const StreamRef& stream) {
  return newChannel(type, loop, stream);
}
void channelObjectDealloc(PyObject* self) { channelDealloc(self); }
PyObject* readyAwaitable(PyObject* value) { return newMessage(value); }
PyObject* doneAwaitable() {
  Py_INCREF(g_done);
  return g_done;
}
bool headersFromPython(PyObject* list, http::HeaderMap& out) { return parseHeaders(list, out); }
PyObject* sendBackpressure(ChannelObject* channel) { return backpressure(channel); }
PyObject* httpSend(PyObject* channel, PyObject* message) {
  PyRef args = PyRef::steal(PyTuple_Pack(1, message));
  return args ? sendCall(channel, args.get(), nullptr) : nullptr;
}
PyObject* supportModule() { return N.support; }
PyObject* clientDisconnectedError() { return N.client_disconnected; }

namespace {

// Small per-thread caches of immutable objects that recur across requests: header names
// (a handful of distinct ones in practice; bounded so hostile input cannot grow it) and
// the server address tuple.
struct NameHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
};
// In front of the map, a direct-mapped table of recent names indexed by the length and
// the first and last eight bytes: the usual header costs two multiplies and one compare
// instead of a hash over every byte. A name that misses (or collides) takes the map's path, so
// crafted names can only make lookups as slow as the map, never slower.
struct RecentName {
  std::string name;
  PyObject* bytes{nullptr}; // borrowed from header_names, which keeps every entry
};
constexpr size_t kRecentNameBits = 6;
// Every request has its own extensions dict, and its own (empty) dicts in it: an app or
// middleware that stores something there must not hand it to the next request. Dicts are
// handed out in turn from a ring (one for requests with an id, one without). A dict is
// used again once this ring holds its only reference (the app is done with its scope),
// nothing changed it since it was handed out (its version tag, PEP 509, is the one
// recorded then) and its inner dicts are still empty and held by it alone: the next
// request then takes it (storing its own id) instead of building four dicts (and later
// freeing them). A dict still in use, or one the app changed, is left to its holders and
// replaced by a fresh one. Only where the GIL orders the last release of a dict before its
// reuse and dicts carry a version tag (before 3.12); elsewhere every request gets new ones.
#if !defined(Py_GIL_DISABLED) && PY_VERSION_HEX < 0x030C0000
#define POUNCE_RECYCLE_EXTENSIONS 1
#endif
struct ExtensionsRing {
  static constexpr size_t kSize = 64; // well above the requests one loop has in flight
  static constexpr size_t kInner = 3; // the template's entries
  PyObject* dicts[kSize] = {};
  uint64_t versions[kSize] = {}; // each dict's version tag when it was handed out
  // Each dict's inner dicts (borrowed: the dict holds them while its version is unchanged).
  PyObject* inner[kSize][kInner] = {};
  size_t next{0};
};
struct ScopeCache {
  // Looked up by string_view (no std::string built per header).
  std::unordered_map<std::string, PyObject*, NameHash, std::equal_to<>> header_names;
  RecentName recent[size_t{1} << kRecentNameBits];
  std::string server_key;
  PyObject* server{nullptr};
  ExtensionsRing extensions[2]; // [0] without a request id, [1] with one
};
thread_local ScopeCache t_scope_cache;
constexpr size_t kMaxCachedHeaderNames = 256;

size_t recentSlot(std::string_view name) {
  // The first and the last eight bytes (they overlap for shorter names), so names that
  // share a prefix ("sec-fetch-dest", "sec-fetch-mode") get different slots.
  uint64_t first = 0;
  uint64_t last = 0;
  if (name.size() >= 8) {
    std::memcpy(&first, name.data(), 8);
    std::memcpy(&last, name.data() + name.size() - 8, 8);
  } else {
    for (size_t i = 0; i < name.size(); ++i) {
      first |= uint64_t{static_cast<unsigned char>(name[i])} << (8 * i);
    }
  }
  const uint64_t key = (first * 0x9e3779b97f4a7c15ull) ^ (last + name.size());
  return static_cast<size_t>((key * 0xff51afd7ed558ccdull) >> (64 - kRecentNameBits));
}

PyObject* headerName(std::string_view name) {
  ScopeCache& c = t_scope_cache;
  RecentName& recent = c.recent[recentSlot(name)];
  if (recent.bytes != nullptr && recent.name == name) {
    Py_INCREF(recent.bytes);
    return recent.bytes;
  }
  auto it = c.header_names.find(name);
  if (it != c.header_names.end()) {
    recent.name.assign(name.data(), name.size());
    recent.bytes = it->second;
    Py_INCREF(it->second);
    return it->second;
  }
  PyObject* b = bytesOf(name);
  if (b != nullptr && name.size() <= 64 && c.header_names.size() < kMaxCachedHeaderNames) {
    Py_INCREF(b);
    c.header_names.emplace(std::string(name), b);
    recent.name.assign(name.data(), name.size());
    recent.bytes = b;
  }
  return b;
}

PyObject* pair(PyObject* a /* stolen */, PyObject* b /* stolen */) {
  if (a == nullptr || b == nullptr) {
    Py_XDECREF(a);
    Py_XDECREF(b);
    return nullptr;
  }
  PyObject* t = PyTuple_New(2);
  if (t == nullptr) {
    Py_DECREF(a);
    Py_DECREF(b);
    return nullptr;
  }
  PyTuple_SET_ITEM(t, 0, a);
  PyTuple_SET_ITEM(t, 1, b);
  return t;
}

PyObject* serverTuple(const AsgiStream& s) {
  ScopeCache& c = t_scope_cache;
  std::string key = s.server_host;
  key += '|';
  key += std::to_string(s.server_port);
  if (c.server != nullptr && c.server_key == key) {
    Py_INCREF(c.server);
    return c.server;
  }
  PyObject* port;
  if (s.server_port < 0) {
    port = Py_None;
    Py_INCREF(port);
  } else {
    port = PyLong_FromLong(s.server_port);
  }
  PyObject* t = pair(strOf(s.server_host), port);
  if (t != nullptr) {
    Py_XDECREF(c.server);
    c.server = t;
    Py_INCREF(t);
    c.server_key = std::move(key);
  }
  return t;
}

#ifdef POUNCE_RECYCLE_EXTENSIONS
uint64_t versionOf(PyObject* dict) { return reinterpret_cast<PyDictObject*>(dict)->ma_version_tag; }
#endif

// A new extensions dict: the template's keys, each with a new empty dict (stored, borrowed,
// in `inner` when given: at most ExtensionsRing::kInner), and `id` (when not null) as its
// request_id.
PyObject* newExtensions(PyObject* id, PyObject** inner = nullptr) {
  PyObject* d = PyDict_New();
  if (d == nullptr) {
    return nullptr;
  }
  Py_ssize_t pos = 0;
  size_t n = 0;
  PyObject* key;
  PyObject* value;
  while (PyDict_Next(N.extensions_template, &pos, &key, &value)) {
    PyObject* empty = PyDict_New();
    if (empty == nullptr || PyDict_SetItem(d, key, empty) != 0) {
      Py_XDECREF(empty);
      Py_DECREF(d);
      return nullptr;
    }
    Py_DECREF(empty); // (`d` holds it)
    if (inner != nullptr && n < ExtensionsRing::kInner) {
      inner[n++] = empty;
    }
  }
  if (id != nullptr && PyDict_SetItem(d, N.request_id_key, id) != 0) {
    Py_DECREF(d);
    return nullptr;
  }
  return d;
}

#ifdef POUNCE_RECYCLE_EXTENSIONS
// May the dict at `at`, handed out before, be handed out again? See ExtensionsRing.
bool reusable(const ExtensionsRing& ring, size_t at) {
  PyObject* d = ring.dicts[at];
  if (d == nullptr || Py_REFCNT(d) != 1 || versionOf(d) != ring.versions[at]) {
    return false;
  }
  for (PyObject* inner : ring.inner[at]) {
    if (inner == nullptr || Py_REFCNT(inner) != 1 || PyDict_GET_SIZE(inner) != 0) {
      return false;
    }
  }
  return true;
}
#endif

// A new reference to this request's own extensions dict, with `id` (when not null) as its
// request_id (see ExtensionsRing).
PyObject* extensionsFor(PyObject* id) {
#ifdef POUNCE_RECYCLE_EXTENSIONS
  ExtensionsRing& ring = t_scope_cache.extensions[id != nullptr ? 1 : 0];
  const size_t at = ring.next;
  ring.next = (at + 1) % ExtensionsRing::kSize;
  PyObject* used = ring.dicts[at];
  if (reusable(ring, at)) {
    if (id != nullptr && PyDict_SetItem(used, N.request_id_key, id) != 0) {
      return nullptr;
    }
    ring.versions[at] = versionOf(used);
    Py_INCREF(used);
    return used;
  }
#endif
#ifdef POUNCE_RECYCLE_EXTENSIONS
  PyObject* inner[ExtensionsRing::kInner] = {}; // (a null one is never reused)
  PyObject* d = newExtensions(id, inner);
  if (d == nullptr) {
    return nullptr;
  }
  Py_INCREF(d);
  Py_XSETREF(ring.dicts[at], d); // (a dict still in use stays alive with its holders)
  ring.versions[at] = versionOf(d);
  std::copy(std::begin(inner), std::end(inner), ring.inner[at]);
  return d;
#else
  return newExtensions(id);
#endif
}

} // namespace

PyObject* buildScope(LoopThread& loop, const AsgiStream& s, PyObject* state) {
  // Copying a template that already has every key (in a fixed order) is much cheaper than
  // inserting keys one by one into a growing dict: the copy clones the key table, and
  // each value below replaces a placeholder without a resize.
  PyRef scope = PyRef::steal(PyDict_Copy(N.scope_template));
  if (!scope) {
    return nullptr;
  }
  PyObject* d = scope.get();
  bool ok = true;
  auto put = [&](PyObject* key, PyObject* value /* stolen */) {
    if (value == nullptr) {
      ok = false;
      return;
    }
    ok = ok && PyDict_SetItem(d, key, value) == 0;
    Py_DECREF(value);
  };
  auto putBorrowed = [&](PyObject* key, PyObject* value) {
    ok = ok && PyDict_SetItem(d, key, value) == 0;
  };
  const http::RequestHeaders& h = s.headers;
  const std::string& root = loop.settings().root_path;
  const std::string_view raw_path = h.pathOnly();
  PyObject* path;
  PyObject* raw_path_bytes = nullptr; // when it differs from the request's
  if (root.empty() || !loop.settings().root_path_in_path) {
    path = decodePath(raw_path);
  } else {
    PyRef decoded = PyRef::steal(decodePath(raw_path));
    PyRef prefix = PyRef::steal(strOf(root));
    if (!decoded || !prefix) {
      return nullptr;
    }
    // The path includes root_path (as ASGI servers do since the spec clarification). One
    // that already starts with it, as whole segments ("/api" or "/api/...", not
    // "/apiary"), is kept as it is.
    const int starts = PyUnicode_Tailmatch(decoded.get(), prefix.get(), 0, PY_SSIZE_T_MAX, -1);
    const Py_ssize_t root_len = PyUnicode_GET_LENGTH(prefix.get());
    const bool whole =
        starts == 1 && (PyUnicode_GET_LENGTH(decoded.get()) == root_len ||
                        PyUnicode_READ_CHAR(decoded.get(), root_len) == '/' || root.back() == '/');
    if (whole) {
      path = decoded.release();
    } else {
      path = PyUnicode_Concat(prefix.get(), decoded.get());
      raw_path_bytes = bytesOf(cat(root, raw_path)); // as uvicorn: both name one target
      if (raw_path_bytes == nullptr) {
        Py_XDECREF(path);
        return nullptr;
      }
    }
  }
  const std::string_view authority = h.authority();
  const bool synth_host = !h.has("host") && !authority.empty();
  const Py_ssize_t count = static_cast<Py_ssize_t>(h.size()) + (synth_host ? 1 : 0);
  PyObject* headers = PyList_New(count);
  if (headers == nullptr) {
    Py_XDECREF(path);
    Py_XDECREF(raw_path_bytes);
    return nullptr;
  }
  Py_ssize_t at = 0;
  if (synth_host) {
    PyList_SET_ITEM(headers, at++, pair(headerName("host"), bytesOf(authority)));
  }
  for (size_t i = 0; i < h.size(); ++i) {
    PyObject* item = pair(headerName(h.nameAt(i)), bytesOf(h.valueAt(i)));
    if (item == nullptr) {
      Py_DECREF(headers);
      Py_XDECREF(path);
      Py_XDECREF(raw_path_bytes);
      return nullptr;
    }
    PyList_SET_ITEM(headers, at++, item);
  }
  PyObject* http_version = s.protocol == http::Protocol::Http2    ? N.v2
                           : s.protocol == http::Protocol::Http10 ? N.v10
                                                                  : N.v11;
  PyObject* client;
  if (s.client_ip.empty()) {
    client = Py_None;
    Py_INCREF(client);
  } else {
    client = pair(strOf(s.client_ip), PyLong_FromLong(s.client_port));
  }
  // The request's own extensions dict: recycled when there is one, new over TLS (which
  // adds its own entry).
  PyObject* rid = s.request_id.empty() ? nullptr : asciiStrOf(s.request_id);
  if (rid == nullptr && !s.request_id.empty()) {
    PyErr_Clear(); // (no str: the scope goes without the id rather than with a None for it)
  }
  PyObject* extensions = s.tls == nullptr ? extensionsFor(rid) : newExtensions(rid);
  Py_XDECREF(rid);
  if (extensions != nullptr && s.tls != nullptr) {
    const network::TlsInfo& t = *s.tls;
    PyObject* chain = PyList_New(0);
    for (const auto& pem : t.client_cert_chain_pem) {
      PyObject* p = strOf(pem);
      PyList_Append(chain, p);
      Py_XDECREF(p);
    }
    PyObject* tls = Py_BuildValue(
        "{s:N,s:N,s:N,s:N,s:i,s:i}", "server_cert",
        t.server_cert_pem.empty() ? (Py_INCREF(Py_None), Py_None) : strOf(t.server_cert_pem),
        "client_cert_chain", chain, "client_cert_name",
        t.client_cert_subject.empty() ? (Py_INCREF(Py_None), Py_None)
                                      : strOf(t.client_cert_subject),
        "client_cert_error",
        t.client_cert_error.empty() ? (Py_INCREF(Py_None), Py_None) : strOf(t.client_cert_error),
        "tls_version", static_cast<int>(t.version), "cipher_suite",
        static_cast<int>(t.cipher_suite));
    if (tls != nullptr) {
      PyDict_SetItem(extensions, N.tls_key, tls);
      Py_DECREF(tls);
    }
  }
  // http_version, scheme, query_string and root_path hold their most common values in the
  // template; only a request that differs pays for the store.
  if (http_version != N.v11) {
    putBorrowed(N.http_version, http_version);
  }
  if (s.scheme == "https") {
    putBorrowed(N.scheme, N.scheme_https);
  }
  put(N.method, methodObject(h.method()));
  put(N.path, path);
  put(N.raw_path, raw_path_bytes != nullptr ? raw_path_bytes : bytesOf(raw_path));
  const std::string_view query = h.query();
  if (!query.empty()) {
    put(N.query_string, bytesOf(query));
  }
  if (!root.empty()) {
    put(N.root_path, strOf(root));
  }
  put(N.headers, headers);
  put(N.client, client);
  put(N.server, serverTuple(s));
  put(N.extensions, extensions);
  if (state != nullptr) {
    put(N.state, PyDict_Copy(state));
  } else {
    ok = ok && PyDict_DelItem(d, N.state) == 0;
  }
  if (!ok) {
    return nullptr;
  }
  return scope.release();
}

} // namespace pounce::asgi::py

extern "C" PyObject* PyInit__pounce() {
  using namespace pounce::asgi::py;
  if (!initTypes()) {
    return nullptr;
  }
  return PyModuleDef_Init(&kModule);
}

namespace pounce::asgi::py {

// Interned names and constants; called once with the GIL held, after the interpreter
// started and _pounce_support is importable.
bool initNames(PyObject* support) {
  auto s = [](const char* v) { return PyUnicode_InternFromString(v); };
  N.type = s("type");
  N.http = s("http");
  N.asgi = s("asgi");
  N.version = s("version");
  N.spec_version = s("spec_version");
  N.http_version = s("http_version");
  N.method = s("method");
  N.scheme = s("scheme");
  N.path = s("path");
  N.raw_path = s("raw_path");
  N.query_string = s("query_string");
  N.root_path = s("root_path");
  N.headers = s("headers");
  N.client = s("client");
  N.server = s("server");
  N.state = s("state");
  N.extensions = s("extensions");
  N.body = s("body");
  N.more_body = s("more_body");
  N.status = s("status");
  N.trailers = s("trailers");
  N.links = s("links");
  N.more_trailers = s("more_trailers");
  N.http_request = s("http.request");
  N.http_disconnect = s("http.disconnect");
  N.response_start = s("http.response.start");
  N.response_body = s("http.response.body");
  N.response_trailers = s("http.response.trailers");
  N.response_pathsend = s("http.response.pathsend");
  N.response_early_hint = s("http.response.early_hint");
  N.set_result = s("set_result");
  N.set_exception = s("set_exception");
  N.done = s("done");
  N.cancel = s("cancel");
  N.cr_await = s("cr_await");
  N.cr_frame = s("cr_frame");
  N.cr_running = s("cr_running");
  N.cr_code = s("cr_code");
  N.send = s("send");
  N.throw_ = s("throw");
  N.close = s("close");
  N.v10 = s("1.0");
  N.v11 = s("1.1");
  N.v2 = s("2");
  N.scheme_http = s("http");
  N.scheme_https = s("https");
  N.empty_bytes = PyBytes_FromStringAndSize("", 0);
  N.empty_str = s("");
  N.request_id_key = s("request_id");
  N.tls_key = s("tls");
  for (int i = 0; i < 9; ++i) {
    N.methods[i] = s(kMethods[i]);
  }
  N.asgi_template = Py_BuildValue("{s:s,s:s}", "version", "3.0", "spec_version", "2.5");
  // (Three entries: ExtensionsRing::kInner.)
  N.extensions_template = Py_BuildValue("{s:{},s:{},s:{}}", "http.response.trailers",
                                        "http.response.pathsend", "http.response.early_hint");
  N.disconnect_message = Py_BuildValue("{s:s}", "type", "http.disconnect");
  // Every scope key, in the order apps usually read them; values are placeholders.
  N.scope_template = PyDict_New();
  for (PyObject* key :
       {N.type, N.asgi, N.http_version, N.method, N.scheme, N.path, N.raw_path, N.query_string,
        N.root_path, N.headers, N.client, N.server, N.extensions, N.state}) {
    PyDict_SetItem(N.scope_template, key, Py_None);
  }
  PyDict_SetItem(N.scope_template, N.type, N.http);
  PyDict_SetItem(N.scope_template, N.http_version, N.v11);
  PyDict_SetItem(N.scope_template, N.scheme, N.scheme_http);
  PyDict_SetItem(N.scope_template, N.query_string, N.empty_bytes);
  PyDict_SetItem(N.scope_template, N.root_path, N.empty_str);
  // One shared "asgi" dict: it describes the server, not the request.
  PyDict_SetItem(N.scope_template, N.asgi, N.asgi_template);
  N.request_template = PyDict_New();
  PyDict_SetItem(N.request_template, N.type, N.http_request);
  PyDict_SetItem(N.request_template, N.body, N.empty_bytes);
  PyDict_SetItem(N.request_template, N.more_body, Py_False);
  if (!initWebSocketNames()) {
    return false;
  }
  N.support = support;
  Py_INCREF(support);
  N.client_disconnected = PyObject_GetAttrString(support, "ClientDisconnected");
  PyObject* asyncio = PyImport_ImportModule("asyncio");
  N.cancelled_error = asyncio ? PyObject_GetAttrString(asyncio, "CancelledError") : nullptr;
  Py_XDECREF(asyncio);
  g_done = reinterpret_cast<PyObject*>(PyObject_New(DoneObject, &DoneType));
  // Tasks accept the runner as a coroutine.
  PyObject* abc = PyImport_ImportModule("collections.abc");
  PyObject* coroutine = abc ? PyObject_GetAttrString(abc, "Coroutine") : nullptr;
  PyObject* reg = coroutine ? PyObject_CallMethod(coroutine, "register", "O",
                                                  reinterpret_cast<PyObject*>(&RunnerType))
                            : nullptr;
  Py_XDECREF(reg);
  Py_XDECREF(coroutine);
  Py_XDECREF(abc);
  return N.client_disconnected != nullptr && N.cancelled_error != nullptr && g_done != nullptr &&
         N.asgi_template != nullptr && reg != nullptr;
}

PyObject* cancelledError() { return N.cancelled_error; }

// --- asyncio's task registry, at C speed -----------------------------------------------
//
// CPython 3.11 registers every new Task in `_asyncio._all_tasks`, a weakref.WeakSet whose
// `add` is Python code (about a microsecond per call, a third of what creating a Task
// costs). pounce creates a Task per request, so it gives that one WeakSet instance an `add`
// that does exactly what WeakSet.add does — commit pending removals, then put a weak
// reference with the set's own removal callback into its `data` set — in C. asyncio's
// all_tasks() and the WeakSet's iteration and removal logic are untouched. Interpreters
// without this registry (3.12+ keeps tasks differently) are left alone.

namespace {

struct TaskRegistry {
  PyObject* weakset{nullptr};
  PyObject* data{nullptr};             // the WeakSet's set of weak references
  PyObject* remove{nullptr};           // its removal callback
  PyObject* pending_removals{nullptr}; // its list of removals deferred during iteration
};
TaskRegistry g_registry;

PyObject* registryAdd(PyObject*, PyObject* item) {
  if (PyList_Check(g_registry.pending_removals) &&
      PyList_GET_SIZE(g_registry.pending_removals) > 0) {
    PyObject* r = PyObject_CallMethod(g_registry.weakset, "_commit_removals", nullptr);
    if (r == nullptr) {
      return nullptr;
    }
    Py_DECREF(r);
  }
  PyObject* ref = PyWeakref_NewRef(item, g_registry.remove);
  if (ref == nullptr) {
    return nullptr;
  }
  const int rc = PySet_Add(g_registry.data, ref);
  Py_DECREF(ref);
  if (rc != 0) {
    return nullptr;
  }
  Py_RETURN_NONE;
}

PyMethodDef kRegistryAdd = {"add", registryAdd, METH_O,
                            "WeakSet.add for asyncio's task registry, in C (pounce)."};

} // namespace

bool accelerateTaskRegistry() {
  PyRef asyncio_c = PyRef::steal(PyImport_ImportModule("_asyncio"));
  PyRef tasks =
      PyRef::steal(asyncio_c ? PyObject_GetAttrString(asyncio_c.get(), "_all_tasks") : nullptr);
  PyRef weakref = PyRef::steal(PyImport_ImportModule("_weakrefset"));
  PyRef weakset_type =
      PyRef::steal(weakref ? PyObject_GetAttrString(weakref.get(), "WeakSet") : nullptr);
  if (!tasks || !weakset_type ||
      !PyObject_TypeCheck(tasks.get(), reinterpret_cast<PyTypeObject*>(weakset_type.get())) ||
      Py_TYPE(tasks.get()) != reinterpret_cast<PyTypeObject*>(weakset_type.get())) {
    PyErr_Clear();
    return false;
  }
  PyObject* data = PyObject_GetAttrString(tasks.get(), "data");
  PyObject* remove = PyObject_GetAttrString(tasks.get(), "_remove");
  PyObject* pending = PyObject_GetAttrString(tasks.get(), "_pending_removals");
  if (data == nullptr || !PySet_Check(data) || remove == nullptr || pending == nullptr ||
      !PyList_Check(pending)) {
    Py_XDECREF(data);
    Py_XDECREF(remove);
    Py_XDECREF(pending);
    PyErr_Clear();
    return false;
  }
  PyRef add = PyRef::steal(PyCFunction_New(&kRegistryAdd, nullptr));
  if (!add || PyObject_SetAttrString(tasks.get(), "add", add.get()) != 0) {
    Py_DECREF(data);
    Py_DECREF(remove);
    Py_DECREF(pending);
    PyErr_Clear();
    return false;
  }
  g_registry.weakset = tasks.release();
  g_registry.data = data;
  g_registry.remove = remove;
  g_registry.pending_removals = pending;
  return true;
}
PyObject* name(const char* which) {
  if (std::strcmp(which, "set_result") == 0) {
    return N.set_result;
  }
  if (std::strcmp(which, "set_exception") == 0) {
    return N.set_exception;
  }
  if (std::strcmp(which, "done") == 0) {
    return N.done;
  }
  if (std::strcmp(which, "cancel") == 0) {
    return N.cancel;
  }
  return nullptr;
}

} // namespace pounce::asgi::py
