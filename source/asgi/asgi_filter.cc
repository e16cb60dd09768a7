#include "source/asgi/asgi_filter.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "source/common/logger.h"
#include "source/common/strings.h"

namespace pounce::asgi {

// --- IoChannel ----------------------------------------------------------------------------

namespace {

// The channel of each dispatcher this thread runs (normally one: the I/O thread's).
struct ThreadChannels {
  std::vector<std::pair<event::Dispatcher*, std::shared_ptr<IoChannel>>> channels;
  ~ThreadChannels() {
    for (auto& [d, c] : channels) {
      c->close();
    }
  }
};
thread_local ThreadChannels t_channels;

} // namespace

IoChannel::IoChannel(event::Dispatcher& dispatcher, int efd) : dispatcher_(dispatcher), efd_(efd) {
  event_ = dispatcher_.createFileEvent(
      efd_, [this](uint32_t) { drain(); }, /*edge=*/false, event::FileReadyType::Read);
}

IoChannel::~IoChannel() { ::close(efd_); }

std::shared_ptr<IoChannel> IoChannel::forThread(event::Dispatcher& dispatcher) {
  for (auto& [d, c] : t_channels.channels) {
    if (d == &dispatcher) {
      return c;
    }
  }
  const int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (efd < 0) {
    // (Not remembered: once descriptors are free again the next request makes it.)
    POUNCE_LOG(Asgi, Warning, "cannot create the I/O thread's ASGI channel: eventfd: %s",
               std::strerror(errno));
    return nullptr;
  }
  auto channel = std::make_shared<IoChannel>(dispatcher, efd);
  t_channels.channels.emplace_back(&dispatcher, channel);
  event::Dispatcher* key = &dispatcher;
  // A channel may outlive its dispatcher (Python may still hold streams): detach it from
  // the loop before the loop goes away.
  dispatcher.addDestroyCallback([key] {
    auto& v = t_channels.channels;
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (it->first == key) {
        it->second->close();
        v.erase(it);
        break;
      }
    }
  });
  return channel;
}

void IoChannel::close() {
  std::lock_guard<std::mutex> lock(lock_);
  closed_ = true;
  event_.reset();
  pending_.clear();
}

void IoChannel::push(std::vector<OutEvent>& batch) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(lock_);
    if (closed_) {
      batch.clear();
      return;
    }
    if (pending_.empty()) {
      pending_.swap(batch);
    } else {
      for (auto& e : batch) {
        pending_.push_back(std::move(e));
      }
    }
    batch.clear();
    if (!wake_pending_) {
      wake_pending_ = true;
      wake = true;
    }
  }
  if (wake) {
    const uint64_t one = 1;
    ssize_t rc = ::write(efd_, &one, sizeof(one));
    (void)rc;
  }
}

void IoChannel::drain() {
  uint64_t value;
  ssize_t rc = ::read(efd_, &value, sizeof(value));
  (void)rc;
  {
    std::lock_guard<std::mutex> lock(lock_);
    work_.swap(pending_);
    wake_pending_ = false;
  }
  for (size_t i = 0; i < work_.size(); ++i) {
    OutEvent& ev = work_[i];
    AsgiFilter* filter = ev.stream->filter;
    if (filter == nullptr) {
      // The stream ended; the app's late events have nowhere to go.
      if (ev.kind == OutEvent::Kind::Body || ev.kind == OutEvent::Kind::WsSend) {
        ev.stream->queued_out_bytes.fetch_sub(static_cast<int64_t>(ev.body.length()));
      }
      continue;
    }
    OutEvent* next = nullptr;
    if (i + 1 < work_.size() && work_[i + 1].stream.get() == ev.stream.get()) {
      next = &work_[i + 1];
    }
    if (filter->apply(ev, next)) {
      ++i;
    }
  }
  work_.clear();
}

// --- AsgiFilter ---------------------------------------------------------------------------

AsgiFilter::~AsgiFilter() { onDestroy(); }

http::FilterStatus AsgiFilter::decodeHeaders(http::RequestHeaders& headers, bool end_stream) {
  std::shared_ptr<IoChannel> io = IoChannel::forThread(decoder_callbacks_->dispatcher());
  if (io == nullptr) {
    decoder_callbacks_->sendLocalReply(503, "Service Unavailable\n", [](http::ResponseHeaders& h) {
      h.addLowercase("retry-after", "1");
    });
    return http::FilterStatus::StopIteration;
  }
  // A WebSocket handshake never ends the request stream (its body is the tunnel), so the
  // common bodyless request skips the header lookup.
  if (!end_stream && http::websocket::isWebSocketRequest(headers)) {
    websocket_ = WebSocketTunnel::create(*this, websocket_config_, server_, headers);
    if (websocket_ == nullptr) {
      return http::FilterStatus::StopIteration; // refused (400/426), answered
    }
  }
  http::StreamInfo& info = decoder_callbacks_->streamInfo();
  auto* s = new AsgiStream();
  stream_ = StreamRef::adopt(s);
  s->headers = headers;
  s->protocol = info.protocol;
  s->scheme = headers.scheme();
  if (info.client_address.isIp()) {
    s->client_ip = info.client_address.ip();
    s->client_port = info.client_address.port();
  }
  if (info.local_address.isIp()) {
    s->server_host = info.local_address.ip();
    s->server_port = info.local_address.port();
  } else {
    s->server_host = info.local_address.path();
    s->server_port = -1;
  }
  s->request_id = info.request_id;
  if (info.tls != nullptr) {
    s->tls = std::make_shared<network::TlsInfo>(*info.tls);
  }
  s->request_has_body = !end_stream;
  s->buffer_limit = decoder_callbacks_->bufferLimit();
  s->io = std::move(io);
  s->filter = this;
  loop_ = &app_->pick();
  s->loop = loop_;
  if (websocket_ != nullptr) {
    s->ws = websocket_->takeStreamState();
    s->request_has_body = false;
    websocket_->attach(stream_, *loop_);
  } else if (!end_stream && http::equalsIgnoreCase(headers.getOr("expect"), "100-continue")) {
    // The 100 waits for the app's first receive(), as uvicorn does: an app that answers
    // without reading the body (401, 413...) spares the client the upload.
    s->expects_continue = true;
    decoder_callbacks_->holdContinue();
  }
  decoder_callbacks_->addDownstreamWatermarkCallbacks(*this);
  handed_over_ = decoder_callbacks_->dispatcher().now();
  loop_->pushFromIoThread(InEvent{InEvent::Kind::Request, stream_, Buffer(), false},
                          decoder_callbacks_->dispatcher());
  return http::FilterStatus::StopIteration;
}

void AsgiFilter::pushBody(Buffer& data, bool more) {
  const auto n = static_cast<int64_t>(data.length());
  const int64_t pending = stream_->unconsumed_in_bytes.fetch_add(n) + n;
  InEvent ev{InEvent::Kind::Body, stream_, Buffer(), more};
  ev.data.move(data);
  loop_->pushFromIoThread(std::move(ev), decoder_callbacks_->dispatcher());
  if (more && pending > static_cast<int64_t>(stream_->buffer_limit) &&
      !stream_->reading_paused.load(std::memory_order_relaxed)) {
    // The app is not keeping up with the upload: stop reading until it catches up.
    stream_->reading_paused.store(true, std::memory_order_release);
    decoder_callbacks_->pauseRequestBody(true);
  }
}

http::FilterStatus AsgiFilter::decodeData(Buffer& data, bool end_stream) {
  if (websocket_ != nullptr) {
    websocket_->onData(data, end_stream);
    return http::FilterStatus::StopIteration;
  }
  if (stream_) {
    pushBody(data, !end_stream);
  }
  return http::FilterStatus::StopIteration;
}

http::FilterStatus AsgiFilter::decodeTrailers(http::HeaderMap&) {
  // ASGI has no request trailers: they end the body.
  if (stream_ && websocket_ == nullptr) {
    Buffer empty;
    pushBody(empty, false);
  }
  return http::FilterStatus::StopIteration;
}

void AsgiFilter::onDestroy() {
  if (destroyed_ || !stream_) {
    destroyed_ = true;
    return;
  }
  destroyed_ = true;
  stream_->filter = nullptr;
  const bool timed_out =
      decoder_callbacks_->streamInfo().hasFlag(http::ResponseFlag::RequestTimeout);
  if (websocket_ != nullptr) {
    // websocket.disconnect carries how the WebSocket ended.
    InEvent ev{timed_out ? InEvent::Kind::Cancel : InEvent::Kind::WsDisconnect, stream_, Buffer(),
               false};
    std::string reason;
    websocket_->finish(ev.code, reason);
    ev.data.add(reason);
    loop_->pushFromIoThread(std::move(ev), decoder_callbacks_->dispatcher());
    stream_ = StreamRef();
    return;
  }
  InEvent ev{timed_out ? InEvent::Kind::Cancel : InEvent::Kind::Disconnect, stream_, Buffer(),
             false};
  ev.cancel_after = decoder_callbacks_->requestTimeout();
  loop_->pushFromIoThread(std::move(ev), decoder_callbacks_->dispatcher());
  stream_ = StreamRef();
}

void AsgiFilter::onDrainStarted() {
  if (websocket_ != nullptr && !destroyed_) {
    websocket_->onDrainStarted();
  }
}

void AsgiFilter::onAboveWriteBufferHighWatermark() {
  if (stream_) {
    stream_->downstream_blocked.store(true, std::memory_order_release);
    if (websocket_ != nullptr) {
      websocket_->onOutputBlocked(true);
    }
  }
}

void AsgiFilter::onBelowWriteBufferLowWatermark() {
  if (stream_) {
    stream_->downstream_blocked.store(false, std::memory_order_release);
    if (websocket_ != nullptr) {
      websocket_->onOutputBlocked(false);
    }
    maybeWakeSender();
  }
}

void AsgiFilter::maybeWakeSender() {
  AsgiStream& s = *stream_;
  if (!s.send_waiter.load(std::memory_order_acquire) ||
      s.downstream_blocked.load(std::memory_order_acquire) ||
      s.queued_out_bytes.load(std::memory_order_relaxed) >
          static_cast<int64_t>(s.buffer_limit / 2)) {
    return;
  }
  if (s.send_waiter.exchange(false)) {
    loop_->pushFromIoThread(InEvent{InEvent::Kind::Writable, stream_, Buffer(), false},
                            decoder_callbacks_->dispatcher());
  }
}

void AsgiFilter::recordAppTime() {
  if (app_time_recorded_) {
    return;
  }
  app_time_recorded_ = true;
  decoder_callbacks_->streamInfo().timings.emplace_back(
      "app", decoder_callbacks_->dispatcher().now() - handed_over_);
}

bool AsgiFilter::apply(OutEvent& ev, OutEvent* next) {
  StreamRef keep = stream_; // callbacks below may destroy this stream's filters
  switch (ev.kind) {
  case OutEvent::Kind::Start: {
    recordAppTime();
    const bool bodyless = ev.status < 200 || ev.status == 204 || ev.status == 304;
    if (next != nullptr && next->kind == OutEvent::Kind::Body && !next->more && !ev.trailers) {
      // The whole response is here: send it with a Content-Length in one go.
      if (!bodyless && !ev.headers->has("content-length")) {
        ev.headers->addLowercase("content-length", std::to_string(next->body.length()));
      }
      const auto n = static_cast<int64_t>(next->body.length());
      const bool empty = next->body.empty();
      decoder_callbacks_->encodeHeaders(std::move(ev.headers), empty);
      if (!empty && stream_) {
        decoder_callbacks_->encodeData(next->body, true);
      }
      keep->queued_out_bytes.fetch_sub(n);
      return true;
    }
    decoder_callbacks_->encodeHeaders(std::move(ev.headers), false);
    return false;
  }
  case OutEvent::Kind::Body: {
    const auto n = static_cast<int64_t>(ev.body.length());
    const bool end = !ev.more && !ev.trailers;
    if (!ev.body.empty() || end) {
      decoder_callbacks_->encodeData(ev.body, end);
    }
    keep->queued_out_bytes.fetch_sub(n);
    if (stream_) {
      maybeWakeSender();
    }
    return false;
  }
  case OutEvent::Kind::File:
    decoder_callbacks_->encodeFile(std::move(ev.file), 0, ev.file_size, !ev.trailers);
    return false;
  case OutEvent::Kind::Trailers:
    if (!pending_trailers_) {
      pending_trailers_ = std::move(ev.trailer_map);
    } else {
      for (const auto [k, v] : *ev.trailer_map) {
        pending_trailers_->add(k, v);
      }
    }
    if (!ev.more) {
      decoder_callbacks_->encodeTrailers(std::move(pending_trailers_));
    }
    return false;
  case OutEvent::Kind::EarlyHint:
    decoder_callbacks_->encode1xxHeaders(std::move(ev.headers));
    return false;
  case OutEvent::Kind::Error:
    recordAppTime();
    if (decoder_callbacks_->responseStarted()) {
      decoder_callbacks_->resetStream();
      return false;
    }
    if (ev.more) {
      // The debug page.
      auto headers = std::make_unique<http::ResponseHeaders>(ev.status);
      headers->addLowercase("content-type", "text/html; charset=utf-8");
      headers->addLowercase("content-length", std::to_string(ev.body.length()));
      decoder_callbacks_->encodeHeaders(std::move(headers), false);
      if (stream_) {
        decoder_callbacks_->encodeData(ev.body, true);
      }
    } else {
      decoder_callbacks_->sendLocalReply(ev.status, "Internal Server Error\n");
    }
    return false;
  case OutEvent::Kind::Reset:
    decoder_callbacks_->resetStream();
    return false;
  case OutEvent::Kind::Continue:
    decoder_callbacks_->sendContinue();
    return false;
  case OutEvent::Kind::ResumeRead:
    if (websocket_ != nullptr) {
      websocket_->resumeReading();
      return false;
    }
    keep->reading_paused.store(false, std::memory_order_release);
    decoder_callbacks_->pauseRequestBody(false);
    return false;
  case OutEvent::Kind::WsAccept:
    recordAppTime();
    if (websocket_ != nullptr) {
      websocket_->accept(ev);
    }
    return false;
  case OutEvent::Kind::WsSend:
    if (websocket_ != nullptr) {
      websocket_->send(ev, next);
      if (stream_) {
        maybeWakeSender();
      }
    } else {
      keep->queued_out_bytes.fetch_sub(static_cast<int64_t>(ev.body.length()));
    }
    return false;
  case OutEvent::Kind::WsClose:
    recordAppTime();
    if (websocket_ != nullptr) {
      websocket_->close(ev);
    }
    return false;
  }
  return false;
}

} // namespace pounce::asgi
