#pragma once

// The data that crosses between I/O threads (where connections and filters live) and
// Python threads (where the app's event loops run).
//
//   I/O thread                               Python thread (asyncio / uvloop loop)
//   AsgiFilter ── InEvent ──► LoopThread inbox ──(one wake-up per batch)──► scope, task
//        ▲                                                                    │
//        └── IoChannel ◄──(one wake-up per batch)── OutEvent batch ◄── send() ┘
//
// Neither side blocks on the other: each pushes into the other's queue under a short
// mutex and wakes it through an eventfd only when the queue was empty (so a busy peer is
// never woken per event). An AsgiStream is the per-request state both sides share; its
// fields are grouped by which thread may touch them.

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "source/common/buffer.h"
#include "source/common/event/dispatcher.h"
#include "source/common/output_queue.h"
#include "source/http/headers.h"
#include "source/http/stream_info.h"
#include "source/network/transport_socket.h"

namespace pounce::asgi {

class AsgiFilter;
class IoChannel;
class LoopThread;

// The WebSocket part of a stream that carries an ASGI `websocket` scope (HTTP/1.1 Upgrade or
// HTTP/2 extended CONNECT). Only such streams have one; the I/O side of the connection is a
// WebSocketTunnel (websocket_tunnel.h).
struct WebSocketStream {
  // --- Written by the I/O thread before the stream is handed over; read-only after. ---
  // Sec-WebSocket-Protocol offers, in the client's order (scope["subprotocols"]).
  std::vector<std::string> subprotocols;

  // --- Python thread only (GIL held). ---
  enum class Phase : uint8_t {
    Handshake, // the app has not answered yet (accept, close or an HTTP response)
    Open,      // websocket.accept sent
    Denying,   // websocket.http.response.start sent, the body is not complete
    Closed,    // websocket.close sent, or the denial response is complete
  };
  Phase phase{Phase::Handshake};
  bool connect_delivered{false}; // the app received websocket.connect
  struct Message {
    Buffer data;
    bool text;
  };
  std::deque<Message> received; // whole messages the app has not received yet
  // For websocket.disconnect, once the stream is over (1006 until the I/O side says more).
  uint16_t close_code{1006};
  std::string close_reason;
};

class AsgiStream {
public:
  AsgiStream() { live_.fetch_add(1, std::memory_order_relaxed); }
  // Streams alive in this process (tests check that every one is released).
  static int64_t live() { return live_.load(std::memory_order_relaxed); }
  AsgiStream(const AsgiStream&) = delete;
  AsgiStream& operator=(const AsgiStream&) = delete;

  void ref() { refs_.fetch_add(1, std::memory_order_relaxed); }
  void unref() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      delete this;
    }
  }

  // --- Written by the I/O thread before the stream is handed over; read-only after. ---
  http::RequestHeaders headers;
  http::Protocol protocol{http::Protocol::Http11};
  std::string scheme;
  std::string client_ip; // empty: no client address (Unix socket)
  uint16_t client_port{0};
  std::string server_host; // or the socket path for a Unix socket
  int server_port{-1};     // -1: None (Unix socket)
  http::RequestId request_id;
  std::shared_ptr<const network::TlsInfo> tls;
  bool request_has_body{false};
  bool expects_continue{false}; // Expect: 100-continue, and the 100 waits for receive()
  uint32_t buffer_limit{1 << 20};
  std::shared_ptr<IoChannel> io;
  LoopThread* loop{nullptr};
  // Set for a WebSocket (a `websocket` scope); null for plain HTTP.
  std::unique_ptr<WebSocketStream> ws;

  // --- Shared, atomic. ---
  // Response bytes queued towards the I/O thread and not yet handed to the connection.
  std::atomic<int64_t> queued_out_bytes{0};
  // The client side cannot take more (connection above its high watermark).
  std::atomic<bool> downstream_blocked{false};
  // The app waits in send() for room: the I/O thread must say when there is.
  std::atomic<bool> send_waiter{false};
  // Request body given to the Python side and not yet read by the app.
  std::atomic<int64_t> unconsumed_in_bytes{0};
  // The I/O thread paused reading the request body (the app is not consuming it).
  std::atomic<bool> reading_paused{false};

  // --- I/O thread only. ---
  AsgiFilter* filter{nullptr};

  // --- Python thread only (GIL held). ---
  std::deque<Buffer> body;    // request body not yet received by the app
  bool body_complete{false};  // the request body ended (no more chunks will come)
  bool body_delivered{false}; // the app received the last http.request
  bool disconnected{false};   // client gone or stream over: receive → http.disconnect
  bool response_started{false};
  bool response_complete{false};
  bool trailers_expected{false};
  bool response_body_ended{false}; // (with trailers) the last body message or trailers sent
  bool app_done{false};
  bool continue_asked{false}; // receive() asked the I/O thread for the 100
  int py_holders{0};          // Python objects referring to this stream
  // The futures of receive() calls waiting for an event, oldest first. Each event goes to
  // one call (the disconnect, which lasts, to all of them); a call that was cancelled is
  // skipped, and its event stays for the next call.
  absl::InlinedVector<PyObject*, 1> receive_waiters;
  PyObject* send_future{nullptr};
  PyObject* task{nullptr};
  PyObject* cancel_timer{nullptr}; // the loop's TimerHandle of a cancel_after

  // Releases the Python-side references (GIL held).
  void clearPython() {
    for (PyObject* f : receive_waiters) {
      Py_DECREF(f);
    }
    receive_waiters.clear();
    Py_CLEAR(send_future);
    Py_CLEAR(task);
    cancelTimer();
  }
  void cancelTimer() {
    if (cancel_timer != nullptr) {
      PyObject* r = PyObject_CallMethod(cancel_timer, "cancel", nullptr);
      if (r == nullptr) {
        PyErr_Clear();
      }
      Py_XDECREF(r);
      Py_CLEAR(cancel_timer);
    }
  }

private:
  ~AsgiStream() { live_.fetch_sub(1, std::memory_order_relaxed); }
  std::atomic<int> refs_{1};
  static inline std::atomic<int64_t> live_{0};
};

// A counted reference to an AsgiStream.
class StreamRef {
public:
  StreamRef() = default;
  explicit StreamRef(AsgiStream* s) : s_(s) {
    if (s_) {
      s_->ref();
    }
  }
  // Adopts a reference the caller owns.
  static StreamRef adopt(AsgiStream* s) {
    StreamRef r;
    r.s_ = s;
    return r;
  }
  StreamRef(const StreamRef& o) : StreamRef(o.s_) {}
  StreamRef(StreamRef&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  StreamRef& operator=(StreamRef o) {
    std::swap(s_, o.s_);
    return *this;
  }
  ~StreamRef() {
    if (s_) {
      s_->unref();
    }
  }
  AsgiStream* operator->() const { return s_; }
  AsgiStream& operator*() const { return *s_; }
  AsgiStream* get() const { return s_; }
  explicit operator bool() const { return s_ != nullptr; }

private:
  AsgiStream* s_{nullptr};
};

// I/O thread → Python thread.
struct InEvent {
  enum class Kind : uint8_t {
    Request,      // a new request: build the scope and start the app
    Body,         // a piece of request body (`more` false on the last)
    Disconnect,   // the stream is over (client gone, or response finished and stream ended)
    Cancel,       // request_timeout: cancel the app's task
    Writable,     // there is room again for response data
    WsMessage,    // a whole WebSocket message in `data` (`more`: text, else binary)
    WsDisconnect, // the WebSocket is over: `code`, reason in `data` (websocket.disconnect)
  };
  Kind kind;
  StreamRef stream;
  Buffer data;
  bool more{false};
  uint16_t code{0}; // WsDisconnect / Cancel of a WebSocket: the close code to report
  // Disconnect of a request not yet answered: the app's task is cancelled this long after
  // (request_timeout, which a client that leaves must not escape); 0: never.
  std::chrono::nanoseconds cancel_after{0};
};

// Python thread → I/O thread.
struct OutEvent {
  enum class Kind : uint8_t {
    Start,      // http.response.start
    Body,       // http.response.body (`more`)
    File,       // http.response.pathsend
    Trailers,   // http.response.trailers
    EarlyHint,  // http.response.early_hint (103)
    Error,      // the app failed before starting a response: send `status` with body
    Reset,      // the app failed after starting: reset the stream
    ResumeRead, // the app consumed the body (or WebSocket messages) it had: read more
    Continue,   // the app asks for a body its client holds back (Expect: 100-continue)
    WsAccept,   // websocket.accept: subprotocol in `body` (empty: none), extra `headers`
    WsSend,     // websocket.send: payload in `body`, `more` = text
    WsClose,    // websocket.close: code in `status`, reason in `body`
  };
  Kind kind;
  StreamRef stream;
  int status{0};
  bool more{false};
  bool trailers{false};
  std::unique_ptr<http::ResponseHeaders> headers;
  std::unique_ptr<http::HeaderMap> trailer_map;
  Buffer body;
  FileHandleSharedPtr file;
  uint64_t file_size{0};
};

// One I/O thread's inbox for response events. Created on the I/O thread the first time it
// serves an ASGI stream; Python threads push batches into it from anywhere.
class IoChannel : public std::enable_shared_from_this<IoChannel> {
public:
  // `efd`: the eventfd that wakes the I/O thread (the channel closes it).
  IoChannel(event::Dispatcher& dispatcher, int efd);
  ~IoChannel();

  // The channel of the calling I/O thread, or null when it cannot be made now (no file
  // descriptor left for its eventfd; the next call tries again).
  static std::shared_ptr<IoChannel> forThread(event::Dispatcher& dispatcher);

  // Any thread.
  void push(std::vector<OutEvent>& batch);
  // I/O thread: stop accepting events (the thread is ending).
  void close();

private:
  void drain();

  event::Dispatcher& dispatcher_;
  int efd_;
  event::FileEventPtr event_;
  std::mutex lock_;
  std::vector<OutEvent> pending_;
  std::vector<OutEvent> work_;
  bool wake_pending_{false};
  bool closed_{false};
};

} // namespace pounce::asgi
