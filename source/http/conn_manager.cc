#include "source/http/conn_manager.h"

#include <algorithm>

#include "source/common/logger.h"
#include "source/http/http1/codec.h"
#include "source/http/http2/codec.h"

namespace pounce::http {

namespace {

// How long an idle HTTP/1.1 keep-alive connection stays open once a drain began: long
// enough for a request a client sent as the drain started to arrive, even over a slow
// path, short enough that a drain is not held up by idle clients.
constexpr std::chrono::milliseconds kDrainIdleGrace{1000};

} // namespace

ListenerStats ListenerStats::create(stats::Store& store, const std::string& listener) {
  ListenerStats s;
  auto& conns =
      store.family("pounce_listener_connections_total", "Connections accepted by a listener.",
                   stats::Type::Counter, {"listener"});
  auto& active = store.family("pounce_listener_connections_active",
                              "Open connections of a listener.", stats::Type::Gauge, {"listener"});
  auto& requests =
      store.family("pounce_listener_requests_total", "Requests received by a listener.",
                   stats::Type::Counter, {"listener"});
  auto& errors = store.family("pounce_listener_protocol_errors_total",
                              "Requests rejected as malformed or over a limit.",
                              stats::Type::Counter, {"listener"});
  auto& responses = store.family("pounce_listener_responses_total", "Responses by status class.",
                                 stats::Type::Counter, {"listener", "class"});
  auto& resets = store.family("pounce_listener_downstream_resets_total",
                              "Streams whose client went away before the response ended.",
                              stats::Type::Counter, {"listener"});
  s.connections_total = &store.series(conns, {listener});
  s.connections_active = &store.series(active, {listener});
  s.requests_total = &store.series(requests, {listener});
  s.protocol_errors = &store.series(errors, {listener});
  for (int i = 0; i < 5; ++i) {
    s.responses_by_class[i] = &store.series(responses, {listener, std::to_string(i + 1) + "xx"});
  }
  s.downstream_resets = &store.series(resets, {listener});
  return s;
}

ConnectionManager::ConnectionManager(network::Connection& connection, ListenerRuntime& listener,
                                     ServerContext& server, uint32_t worker_index)
    : connection_(connection), listener_(listener), server_(server), worker_index_(worker_index) {
  connection_.setCallbacks(*this);
  connection_.setBufferLimits(listener_.settings().limits.buffer_limit);
  // The codec is chosen when the first bytes arrive (HTTP/2 preface or not).
  idle_since_ = connection_.dispatcher().now();
  idle_timer_ = connection_.dispatcher().createTimer([this] { onIdleTimer(); });
  ensureTimerBy(idle_since_ + listener_.settings().header_timeout);
  listener_.stats().connections_total->inc();
  listener_.stats().connections_active->inc();
}

ConnectionManager::~ConnectionManager() {
  if (!closed_) {
    closed_ = true;
    if (codec_ != nullptr) {
      codec_->onConnectionClosed();
    }
    listener_.stats().connections_active->dec();
  }
}

bool ConnectionManager::createCodec(const Buffer& data) {
  const HttpSettings& settings = listener_.settings();
  bool http2 = connection_.transport().negotiatedProtocol() == "h2";
  if (!http2 && settings.http2.enabled && settings.http2.allow_h2c &&
      !connection_.transport().isTls()) {
    // h2c with prior knowledge: the connection starts with the HTTP/2 preface.
    const std::string_view preface = http2::kClientPreface;
    const std::string_view head = data.view().substr(0, preface.size());
    if (head == preface.substr(0, head.size())) {
      if (head.size() < preface.size()) {
        return false;
      }
      http2 = true;
    }
  }
  if (http2) {
    codec_ = std::make_unique<http2::ServerConnectionImpl>(connection_.output(), *this,
                                                           settings.limits, settings.http2,
                                                           connection_.dispatcher().timeSource());
  } else {
    codec_ = std::make_unique<http1::ServerConnectionImpl>(
        connection_.output(), *this, settings.limits, connection_.dispatcher().timeSource());
  }
  return true;
}

bool ConnectionManager::upgradeToHttp2(RequestHeadersPtr& headers) {
  const HttpSettings& settings = listener_.settings();
  if (!settings.http2.enabled || !settings.http2.allow_h2c || draining_ ||
      connection_.transport().isTls() || headers->count("http2-settings") != 1 ||
      !hasToken(headers->getOr("connection"), "http2-settings")) {
    return false;
  }
  std::string payload;
  if (!http2::decodeSettingsHeader(headers->getOr("http2-settings"), payload)) {
    return false;
  }
  h2c_settings_ = std::move(payload);
  h2c_request_ = std::move(headers);
  return true;
}

void ConnectionManager::switchToHttp2(Buffer& data) {
  RequestHeadersPtr request = std::move(h2c_request_);
  const std::string payload = std::move(h2c_settings_);
  const HttpSettings& settings = listener_.settings();
  auto codec = std::make_unique<http2::ServerConnectionImpl>(connection_.output(), *this,
                                                             settings.limits, settings.http2,
                                                             connection_.dispatcher().timeSource());
  http2::ServerConnectionImpl& http2 = *codec;
  // The HTTP/1.1 codec's part is over: it queued the 101 and left the rest of the bytes.
  codec_ = std::move(codec);
  if (!http2.upgrade(payload, std::move(request))) {
    closeConnection(true);
    return;
  }
  if (!data.empty() && !closed_) {
    codec_->dispatch(data);
  }
}

void ConnectionManager::onData(Buffer& data, bool end_stream) {
  if (closed_) {
    data.clear();
    return;
  }
  if (codec_ == nullptr && !createCodec(data)) {
    // A few bytes that may begin the HTTP/2 preface: wait for more (header_timeout runs).
    if (end_stream) {
      closeConnection(false);
    }
    return;
  }
  codec_->dispatch(data);
  if (h2c_request_ != nullptr && !closed_) {
    switchToHttp2(data);
  }
  if (end_stream && !closed_) {
    codec_->onRemoteHalfClose();
  }
  if (closed_) {
    return;
  }
  if (codec_->readingHead()) {
    if (head_started_at_ == MonotonicTime{}) {
      head_started_at_ = connection_.dispatcher().now();
      ensureTimerBy(head_started_at_ + listener_.settings().header_timeout);
    }
  } else {
    head_started_at_ = MonotonicTime{};
  }
}

void ConnectionManager::onEvent(network::ConnectionEvent event) {
  if (event == network::ConnectionEvent::Connected || closed_) {
    return;
  }
  closed_ = true;
  closed_for_drain_ =
      event == network::ConnectionEvent::LocalClose && (draining_ || server_.draining());
  idle_timer_->disableTimer();
  if (codec_ != nullptr) {
    codec_->onConnectionClosed();
  }
  listener_.stats().connections_active->dec();
}

void ConnectionManager::onAboveWriteBufferHighWatermark() {
  if (codec_ != nullptr) {
    codec_->onAboveWriteBufferHighWatermark();
  }
}

void ConnectionManager::onBelowWriteBufferLowWatermark() {
  if (codec_ != nullptr) {
    codec_->onBelowWriteBufferLowWatermark();
  }
}

RequestDecoder& ConnectionManager::newStream(ResponseEncoder& encoder) {
  ++requests_started_;
  if (!draining_ && server_.draining()) {
    // The server drains (SIGTERM, the admin API): this response says Connection: close
    // (HTTP/2: GOAWAY), also on connections accepted after the drain began.
    draining_ = true;
    codec_->shutdownNotice();
  }
  StreamInfo info;
  auto& dispatcher = connection_.dispatcher();
  info.start_time = dispatcher.now();
  info.start_system_time = dispatcher.timeSource().systemTime();
  if (head_started_at_ != MonotonicTime{} && head_started_at_ < info.start_time) {
    // The head came over several reads: the request began with its first byte (what the
    // access log's duration and the latency histogram measure, as nginx's $request_time).
    const auto waited = info.start_time - head_started_at_;
    info.start_time = head_started_at_;
    info.start_system_time -= std::chrono::duration_cast<SystemTime::duration>(waited);
  }
  head_started_at_ = MonotonicTime{}; // (a head pipelined behind this one starts anew)
  info.peer_address = connection_.remoteAddress();
  info.client_address = connection_.remoteAddress();
  info.local_address = connection_.localAddress();
  info.tls = connection_.transport().tlsInfo();
  info.listener_name = listener_.settings().listener_name;
  info.worker_id = server_.workerId();
  info.connection_id = connection_.id();
  info.stream_id = next_stream_id_++;
  info.protocol = encoder.protocol();
  streams_.push_back(
      std::make_unique<ActiveStream>(*this, encoder, listener_.chain(), std::move(info)));
  return *streams_.back();
}

void ConnectionManager::onStreamDone(ActiveStream& stream) {
  for (auto it = streams_.begin(); it != streams_.end(); ++it) {
    if (it->get() == &stream) {
      connection_.dispatcher().deferredDelete(std::move(*it));
      streams_.erase(it);
      break;
    }
  }
  if (streams_.empty() && !closed_) {
    idle_since_ = connection_.dispatcher().now();
    if (draining_ && codec_->idle()) {
      closeConnection(true);
      return;
    }
    ensureTimerBy(idle_since_ + listener_.settings().keep_alive_timeout);
  }
}

void ConnectionManager::onCodecOutput() { connection_.scheduleWrite(); }

void ConnectionManager::readDisable(bool disable) { connection_.readDisable(disable); }

void ConnectionManager::closeConnection(bool flush) {
  if (flush && !close_requested_ && !closed_ && codec_ != nullptr &&
      codec_->protocol() == Protocol::Http2) {
    // HTTP/2 closes after a GOAWAY; a client that stops reading must not hold the
    // connection forever (outbound floods end here).
    close_requested_ = true;
    close_bytes_sent_ = connection_.bytesSent();
    close_checked_at_ = connection_.dispatcher().now();
    ensureTimerBy(close_checked_at_ + listener_.settings().header_timeout);
  }
  connection_.close(flush ? network::CloseType::FlushWriteAndLinger : network::CloseType::NoFlush);
}

void ConnectionManager::startDrain() {
  if (draining_ || closed_) {
    return;
  }
  draining_ = true;
  if (codec_ != nullptr) {
    codec_->shutdownNotice();
  }
  // An idle keep-alive connection closes soon (left open, its next request would be served
  // by a listener that is going away). HTTP/2 closes now: its GOAWAY tells the client which
  // streams were not processed, so it can send them again. HTTP/1.1 cannot say that, and a
  // client that reads a response and sends the next request at once (any keep-alive
  // client under load) would find its request unanswered; most clients do not retry it.
  // So an HTTP/1.1 connection gets a short grace: a request that comes in it is answered
  // with Connection: close. (One accepted a moment ago that has not started its first
  // request is answered the same way; the header timeout bounds that wait.)
  if (idle() && requests_started_ > 0) {
    if (codec_ == nullptr || codec_->protocol() == Protocol::Http2) {
      closeConnection(true);
      return;
    }
    drain_idle_deadline_ = connection_.dispatcher().now() + kDrainIdleGrace;
    ensureTimerBy(drain_idle_deadline_);
    return;
  }
  // Long-lived streams (WebSockets) learn it here; a stream may end meanwhile (it stays
  // allocated until the deferred delete).
  std::vector<ActiveStream*> open;
  for (auto& stream : streams_) {
    open.push_back(stream.get());
  }
  for (ActiveStream* stream : open) {
    stream->onDrainStarted();
  }
}

void ConnectionManager::ensureTimerBy(MonotonicTime deadline) {
  if (timer_deadline_ != MonotonicTime{} && timer_deadline_ <= deadline) {
    return;
  }
  const MonotonicTime now = connection_.dispatcher().now();
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
  left = std::max(left, std::chrono::milliseconds(1));
  timer_deadline_ = now + left;
  idle_timer_->enableTimer(left);
}

void ConnectionManager::onIdleTimer() {
  timer_deadline_ = MonotonicTime{};
  if (closed_) {
    return;
  }
  const auto& settings = listener_.settings();
  const MonotonicTime now = connection_.dispatcher().now();
  auto rearm = [&](MonotonicTime deadline) { ensureTimerBy(deadline); };
  if (close_requested_) {
    // Closing after the queued output: give up on a client that read none of it for a
    // whole header_timeout.
    if (now < close_checked_at_ + settings.header_timeout) {
      rearm(close_checked_at_ + settings.header_timeout);
      return;
    }
    if (connection_.bufferedBytes() > 0 && connection_.bytesSent() == close_bytes_sent_) {
      POUNCE_LOG(Conn, Debug, "[C%d] client stopped reading while closing", connection_.id());
      connection_.close(network::CloseType::NoFlush);
      return;
    }
    close_bytes_sent_ = connection_.bytesSent();
    close_checked_at_ = now;
    rearm(now + settings.header_timeout);
    return;
  }
  if (codec_ != nullptr && codec_->readingHead()) {
    const MonotonicTime started = head_started_at_ == MonotonicTime{} ? now : head_started_at_;
    const MonotonicTime deadline = started + settings.header_timeout;
    if (now >= deadline) {
      codec_->onRequestHeadTimeout();
      return;
    }
    rearm(deadline);
    return;
  }
  if (!streams_.empty()) {
    // Requests in flight: answer those past request_timeout, look again at the next
    // deadline (or a little later, to catch a new head starting).
    MonotonicTime next = now + settings.header_timeout;
    std::vector<ActiveStream*> due;
    for (auto& stream : streams_) {
      const MonotonicTime deadline = stream->requestDeadline();
      if (deadline == MonotonicTime{}) {
        continue;
      }
      if (deadline <= now) {
        due.push_back(stream.get());
      } else {
        next = std::min(next, deadline);
      }
    }
    for (ActiveStream* stream : due) {
      stream->checkRequestTimeout(now);
    }
    if (!closed_) {
      ensureTimerBy(next);
    }
    return;
  }
  if (codec_ != nullptr && codec_->protocol() == Protocol::Http2 && !codec_->idle()) {
    // HTTP/2 responses still going out after their streams finished: look again later.
    ensureTimerBy(now + settings.header_timeout);
    return;
  }
  const auto timeout =
      requests_started_ == 0 ? settings.header_timeout : settings.keep_alive_timeout;
  MonotonicTime deadline = idle_since_ + timeout;
  if (drain_idle_deadline_ != MonotonicTime{}) {
    deadline = std::min(deadline, drain_idle_deadline_);
  }
  if (now >= deadline) {
    POUNCE_LOG(Conn, Debug, "[C%d] idle timeout", connection_.id());
    if (codec_ != nullptr) {
      codec_->shutdownNotice(); // HTTP/2: GOAWAY first
    }
    closeConnection(true);
    return;
  }
  rearm(deadline);
}

} // namespace pounce::http
