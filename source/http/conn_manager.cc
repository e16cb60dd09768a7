#include "source/http/conn_manager.h"

#include <algorithm>

#include "source/common/logger.h"
#include "source/http/http1/codec.h"

namespace pounce::http {

ListenerStats ListenerStats::create(stats::Store& store, const std::string& listener) {
  ListenerStats s;
  auto& conns = store.family("pounce_listener_connections_total",
                             "Connections accepted by a listener.", stats::Type::Counter,
                             {"listener"});
  auto& active = store.family("pounce_listener_connections_active",
                              "Open connections of a listener.", stats::Type::Gauge, {"listener"});
  auto& requests = store.family("pounce_listener_requests_total",
                                "Requests received by a listener.", stats::Type::Counter,
                                {"listener"});
  auto& errors = store.family("pounce_listener_protocol_errors_total",
                              "Requests rejected as malformed or over a limit.",
                              stats::Type::Counter, {"listener"});
  auto& responses = store.family("pounce_listener_responses_total",
                                 "Responses by status class.", stats::Type::Counter,
                                 {"listener", "class"});
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
    : connection_(connection), listener_(listener), server_(server),
      worker_index_(worker_index) {
  connection_.setCallbacks(*this);
  connection_.setBufferLimits(listener_.settings().limits.buffer_limit);
  createCodec({});
  idle_since_ = connection_.dispatcher().now();
  idle_timer_ = connection_.dispatcher().createTimer([this] { onIdleTimer(); });
  ensureTimerBy(idle_since_ + listener_.settings().header_timeout);
  listener_.stats().connections_total->inc();
  listener_.stats().connections_active->inc();
}

ConnectionManager::~ConnectionManager() {
  if (!closed_) {
    closed_ = true;
    codec_->onConnectionClosed();
    listener_.stats().connections_active->dec();
  }
}

void ConnectionManager::createCodec(std::string_view alpn) {
  codec_ = std::make_unique<http1::ServerConnectionImpl>(
      connection_.output(), *this, listener_.settings().limits,
      connection_.dispatcher().timeSource());
}

void ConnectionManager::onData(Buffer& data, bool end_stream) {
  if (closed_) {
    data.clear();
    return;
  }
  codec_->dispatch(data);
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
  idle_timer_->disableTimer();
  codec_->onConnectionClosed();
  listener_.stats().connections_active->dec();
}

void ConnectionManager::onAboveWriteBufferHighWatermark() {
  codec_->onAboveWriteBufferHighWatermark();
}

void ConnectionManager::onBelowWriteBufferLowWatermark() {
  codec_->onBelowWriteBufferLowWatermark();
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
  connection_.close(flush ? network::CloseType::FlushWriteAndLinger : network::CloseType::NoFlush);
}

void ConnectionManager::startDrain() {
  if (draining_ || closed_) {
    return;
  }
  draining_ = true;
  codec_->shutdownNotice();
  // An idle keep-alive connection closes now (left open, its next request would be served
  // by a listener that is going away). One accepted a moment ago that has not started its
  // first request is different: that request is most likely on its way, so it is answered
  // (with Connection: close); the header timeout bounds the wait.
  if (idle() && requests_started_ > 0) {
    closeConnection(true);
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
  if (codec_->readingHead()) {
    const MonotonicTime started =
        head_started_at_ == MonotonicTime{} ? now : head_started_at_;
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
  const auto timeout = requests_started_ == 0 ? settings.header_timeout : settings.keep_alive_timeout;
  const MonotonicTime deadline = idle_since_ + timeout;
  if (now >= deadline) {
    POUNCE_LOG(Conn, Debug, "[C%d] idle timeout", connection_.id());
    closeConnection(true);
    return;
  }
  rearm(deadline);
}

} // namespace pounce::http
