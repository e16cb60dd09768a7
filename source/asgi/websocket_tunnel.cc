#include "source/asgi/websocket_tunnel.h"

#include <algorithm>

#include "source/asgi/asgi_filter.h"
#include "source/asgi/loop_thread.h"
#include "source/common/logger.h"
#include "source/common/strings.h"

namespace pounce::asgi {

namespace ws = http::websocket;

namespace {
constexpr std::string_view kGoingAwayReason = "server shutting down";
} // namespace

std::unique_ptr<WebSocketTunnel> WebSocketTunnel::create(AsgiFilter& filter,
                                                         const WebSocketConfig& config,
                                                         ServerContext* server,
                                                         const http::RequestHeaders& headers) {
  http::DecoderFilterCallbacks& callbacks = *filter.decoder_callbacks_;
  if (!config.enabled) {
    callbacks.sendLocalReply(400, "WebSocket is not served here\n");
    return nullptr;
  }
  ws::HandshakeRequest request;
  if (auto error = ws::validateRequest(headers, request)) {
    POUNCE_LOG(Asgi, Debug, "WebSocket handshake refused (%d): %s", error->status, error->message);
    const ws::HandshakeError refused = *error;
    callbacks.sendLocalReply(refused.status, refused.message + "\n",
                             [&refused, http2 = request.http2](http::ResponseHeaders& h) {
                               const http::ResponseHeaders extra =
                                   ws::rejectionResponse(refused, http2);
                               for (const auto [name, value] : extra) {
                                 h.add(name, value);
                               }
                             });
    return nullptr;
  }
  uint64_t declared = 0;
  const auto content_length = headers.get("content-length");
  const bool has_body =
      (content_length && !(parseUint(*content_length, declared) && declared == 0)) ||
      headers.has("transfer-encoding");
  if (!request.http2 && has_body) { // ("Content-Length: 0" is no body, RFC 9110 §8.6)
    // An HTTP/1.1 upgrade request with a body cannot switch protocols after it.
    callbacks.sendLocalReply(400, "WebSocket handshake with a request body\n");
    return nullptr;
  }
  return std::unique_ptr<WebSocketTunnel>(
      new WebSocketTunnel(filter, config, server, std::move(request)));
}

WebSocketTunnel::WebSocketTunnel(AsgiFilter& filter, const WebSocketConfig& config,
                                 ServerContext* server, ws::HandshakeRequest request)
    : filter_(filter), config_(config), server_(server), request_(std::move(request)) {}

WebSocketTunnel::~WebSocketTunnel() = default;

http::DecoderFilterCallbacks& WebSocketTunnel::callbacks() { return *filter_.decoder_callbacks_; }

std::unique_ptr<WebSocketStream> WebSocketTunnel::takeStreamState() {
  auto state = std::make_unique<WebSocketStream>();
  state->subprotocols = request_.subprotocols;
  return state;
}

void WebSocketTunnel::attach(StreamRef stream, LoopThread& loop) {
  stream_ = std::move(stream);
  loop_ = &loop;
}

void WebSocketTunnel::updateSocketPause() {
  const bool pause =
      held_before_accept_ || output_blocked_ || (session_ != nullptr && session_->readingPaused());
  if (socket_paused_ != pause && !finished_) {
    socket_paused_ = pause;
    callbacks().pauseRequestBody(pause);
  }
}

void WebSocketTunnel::onOutputBlocked(bool blocked) {
  output_blocked_ = blocked;
  updateSocketPause();
}

// --- client → app ---------------------------------------------------------------------------

void WebSocketTunnel::onData(Buffer& data, bool end_stream) {
  input_ended_ = input_ended_ || end_stream;
  if (finished_) {
    data.clear();
    return;
  }
  if (session_ == nullptr) {
    // Before the accept (HTTP/2: DATA may follow the CONNECT at once). Held, bounded.
    if (!data.empty()) {
      pending_.move(data);
    }
    if (pending_.length() > stream_->buffer_limit) {
      held_before_accept_ = true;
      updateSocketPause();
    }
    return;
  }
  feed(data);
  flush();
}

void WebSocketTunnel::feed(Buffer& data) {
  // Buffer::move into an empty buffer swaps storage: never move an empty `data` (it may be
  // the connection's read buffer, whose storage should stay there).
  if (!session_->readingPaused()) {
    if (pending_.empty()) {
      if (!data.empty()) {
        session_->onBytes(data);
      }
    } else {
      if (!data.empty()) {
        pending_.move(data);
      }
      session_->onBytes(pending_);
    }
  }
  if (!data.empty()) {
    pending_.move(data); // reading is paused: keep the rest for later
  }
  if (input_ended_ && pending_.empty() && !session_->isClosed()) {
    session_->onConnectionLost(); // the client went away without a close frame: 1006
  }
}

void WebSocketTunnel::onMessage(ws::MessageType type, Buffer& payload) {
  if (app_closed_) {
    return; // the app closed its side and reads nothing more
  }
  AsgiStream& s = *stream_;
  const auto n = static_cast<int64_t>(payload.length());
  const int64_t queued = s.unconsumed_in_bytes.fetch_add(n) + n;
  if (queued > static_cast<int64_t>(s.buffer_limit) &&
      !s.reading_paused.load(std::memory_order_relaxed)) {
    // The app is not keeping up: stop after this message until it catches up. The flag is
    // set before the message is queued, so the receive() that takes it sees the flag.
    s.reading_paused.store(true, std::memory_order_seq_cst);
    session_->pauseReading();
    updateSocketPause();
  }
  InEvent ev{InEvent::Kind::WsMessage, stream_, Buffer(), type == ws::MessageType::Text};
  ev.data.move(payload);
  loop_->pushFromIoThread(std::move(ev), callbacks().dispatcher());
}

void WebSocketTunnel::onClose(const ws::CloseInfo& info) {
  closed_ = true;
  close_code_ = info.code;
  close_reason_.assign(info.reason.data(), info.reason.size());
}

void WebSocketTunnel::resumeReading() {
  AsgiStream& s = *stream_;
  if (!s.reading_paused.load(std::memory_order_relaxed)) {
    return;
  }
  s.reading_paused.store(false, std::memory_order_seq_cst);
  if (finished_ || session_ == nullptr) {
    return;
  }
  session_->resumeReading();
  updateSocketPause();
  Buffer none;
  feed(none);
  flush();
}

// --- app → client ---------------------------------------------------------------------------

void WebSocketTunnel::accept(OutEvent& event) {
  if (finished_ || session_ != nullptr || callbacks().responseStarted()) {
    return;
  }
  std::optional<ws::DeflateParams> deflate;
  if (config_.session.deflate.enabled && !request_.extensions.empty()) {
    deflate = ws::negotiateDeflate(request_.extensions, config_.session.deflate);
  }
  auto response = ws::acceptResponse(request_, event.body.view(), deflate, event.headers.get());
  if (!response.ok()) {
    POUNCE_LOG(Asgi, Error, "websocket.accept refused: %s",
               std::string(response.status().message()));
    callbacks().sendLocalReply(500, "Internal Server Error\n");
    return;
  }
  ws::SessionCallbacks& session_callbacks = *this;
  session_ = std::make_unique<ws::Session>(config_.session, session_callbacks,
                                           callbacks().dispatcher().timeSource(), deflate);
  callbacks().encodeHeaders(std::make_unique<http::ResponseHeaders>(std::move(*response)), false);
  if (finished_) {
    return;
  }
  if (draining_ || callbacks().connectionDraining() ||
      (server_ != nullptr && server_->draining())) {
    session_->close(ws::close_code::kGoingAway, kGoingAwayReason);
  }
  Buffer none;
  feed(none);
  held_before_accept_ = false;
  updateSocketPause();
  flush();
}

void WebSocketTunnel::send(OutEvent& event, const OutEvent* next) {
  if (!finished_ && session_ != nullptr) {
    // Not Open (the client closed, or a close is under way): dropped; the app learns of the
    // end from websocket.disconnect.
    session_->send(event.more ? ws::MessageType::Text : ws::MessageType::Binary, event.body.view());
    // A run of sends in one batch goes out as one write.
    if (next == nullptr || next->kind != OutEvent::Kind::WsSend) {
      flush();
    }
  }
  stream_->queued_out_bytes.fetch_sub(static_cast<int64_t>(event.body.length()));
}

void WebSocketTunnel::close(OutEvent& event) {
  app_closed_ = true;
  if (finished_) {
    return;
  }
  if (session_ == nullptr) {
    // Closed before accepting: refuse the handshake (ASGI: 403), no upgrade.
    if (!callbacks().responseStarted()) {
      callbacks().sendLocalReply(403, "Forbidden\n");
    }
    return;
  }
  session_->close(static_cast<uint16_t>(event.status), event.body.view());
  // Read on (dropping messages) so the client's close frame is seen promptly.
  if (stream_->reading_paused.load(std::memory_order_relaxed)) {
    resumeReading();
    return;
  }
  flush();
}

void WebSocketTunnel::onDrainStarted() {
  draining_ = true;
  if (!finished_ && session_ != nullptr && session_->isOpen()) {
    session_->close(ws::close_code::kGoingAway, kGoingAwayReason);
    flush();
  }
}

void WebSocketTunnel::flush() {
  if (finished_ || session_ == nullptr) {
    return;
  }
  if (session_->pendingOutput() > 0) {
    callbacks().encodeData(session_->output(), false);
    if (finished_) {
      return;
    }
  }
  if (session_->isClosed()) {
    // RFC 6455 §7.1.1: the server closes the transport first (HTTP/1.1: the connection
    // closes after the output is written; HTTP/2: the stream ends).
    Buffer end;
    callbacks().encodeData(end, true);
    return;
  }
  armTimer();
}

void WebSocketTunnel::armTimer() {
  std::optional<MonotonicTime> next = session_->nextTimeout();
  if (next && session_->isOpen() && session_->readingPaused()) {
    // Keepalive waits while the app holds reading back: a pong may be sitting unread.
    next.reset();
  }
  if (!next) {
    if (timer_ != nullptr && timer_deadline_ != MonotonicTime{}) {
      timer_->disableTimer();
      timer_deadline_ = MonotonicTime{};
    }
    return;
  }
  if (timer_deadline_ != MonotonicTime{} && timer_deadline_ <= *next) {
    return; // armed early enough: it looks again when it fires (deadlines mostly move later)
  }
  event::Dispatcher& dispatcher = callbacks().dispatcher();
  if (timer_ == nullptr) {
    timer_ = dispatcher.createTimer([this] { onTimer(); });
  }
  auto delay = std::chrono::duration_cast<std::chrono::milliseconds>(*next - dispatcher.now());
  delay = std::max(delay + std::chrono::milliseconds(1), std::chrono::milliseconds(1));
  timer_deadline_ = *next;
  timer_->enableTimer(delay);
}

void WebSocketTunnel::onTimer() {
  timer_deadline_ = MonotonicTime{};
  if (finished_ || session_ == nullptr) {
    return;
  }
  session_->onTimeout();
  flush();
}

void WebSocketTunnel::finish(uint16_t& code, std::string& reason) {
  if (!finished_) {
    if (session_ != nullptr && !closed_) {
      session_->onConnectionLost();
    }
    finished_ = true;
    if (timer_ != nullptr) {
      timer_->disableTimer();
    }
  }
  code = closed_ ? close_code_ : ws::close_code::kAbnormal;
  reason = close_reason_;
}

} // namespace pounce::asgi
