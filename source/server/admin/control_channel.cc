#include "source/server/admin/control_channel.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "source/common/logger.h"

namespace pounce::server::admin {

using pounce::admin::v1::ControlMessage;

ControlChannel::ControlChannel(event::Dispatcher& dispatcher, int fd, RequestHandler handler,
                               std::function<void()> on_closed)
    : dispatcher_(dispatcher), fd_(fd), handler_(std::move(handler)),
      on_closed_(std::move(on_closed)), alive_(std::make_shared<bool>(true)) {
  ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
  ::fcntl(fd_, F_SETFD, FD_CLOEXEC);
  file_event_ = dispatcher_.createFileEvent(fd_, [this](uint32_t events) { onEvents(events); });
}

ControlChannel::~ControlChannel() {
  *alive_ = false;
  file_event_.reset();
  if (fd_ >= 0) {
    ::close(fd_);
  }
  // Calls still waiting fail, after the current callback (their owner may be mid-teardown).
  for (auto& [id, p] : pending_) {
    p.timer.reset();
    if (p.done) {
      dispatcher_.post([done = std::move(p.done)] { done(std::nullopt); });
    }
  }
}

void ControlChannel::call(const ControlRequest& request, std::chrono::milliseconds timeout,
                          ResponseCallback done) {
  if (fd_ < 0) {
    done(std::nullopt);
    return;
  }
  const uint64_t id = next_id_++;
  Pending p;
  p.done = std::move(done);
  p.timer = dispatcher_.createTimer([this, id] {
    auto it = pending_.find(id);
    if (it == pending_.end()) {
      return;
    }
    auto cb = std::move(it->second.done);
    pending_.erase(it);
    cb(std::nullopt);
  });
  p.timer->enableTimer(timeout);
  pending_.emplace(id, std::move(p));
  ControlMessage message;
  message.set_id(id);
  *message.mutable_request() = request;
  send(message);
}

void ControlChannel::send(const ControlMessage& message) {
  if (fd_ < 0) {
    return;
  }
  const std::string bytes = message.SerializeAsString();
  const uint32_t n = static_cast<uint32_t>(bytes.size());
  const unsigned char len[4] = {static_cast<unsigned char>(n >> 24),
                                static_cast<unsigned char>(n >> 16),
                                static_cast<unsigned char>(n >> 8), static_cast<unsigned char>(n)};
  out_.add(len, sizeof(len));
  out_.add(bytes);
  flush();
}

void ControlChannel::flush() {
  while (fd_ >= 0 && !out_.empty()) {
    const ssize_t n = ::send(fd_, out_.data(), out_.length(), MSG_NOSIGNAL);
    if (n > 0) {
      out_.drain(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return; // the Write event resumes
    }
    closeChannel();
    return;
  }
}

void ControlChannel::onEvents(uint32_t events) {
  auto alive = alive_; // a callback may destroy the channel
  if (events & event::FileReadyType::Write) {
    flush();
  }
  if (*alive && fd_ >= 0 && (events & event::FileReadyType::Read)) {
    onReadable();
  }
}

void ControlChannel::onReadable() {
  auto alive = alive_;
  while (fd_ >= 0) {
    char buf[65536];
    const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n > 0) {
      in_.add(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      break;
    }
    // EOF or error: handle what arrived, then close.
    while (in_.length() >= 4 && *alive) {
      const auto* p = reinterpret_cast<const unsigned char*>(in_.data());
      const uint32_t len =
          (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
      if (in_.length() < 4 + static_cast<size_t>(len)) {
        break;
      }
      std::string bytes(in_.data() + 4, len);
      in_.drain(4 + static_cast<size_t>(len));
      onMessage(bytes);
    }
    if (*alive) {
      closeChannel();
    }
    return;
  }
  while (*alive && fd_ >= 0 && in_.length() >= 4) {
    const auto* p = reinterpret_cast<const unsigned char*>(in_.data());
    const uint32_t len =
        (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
    if (len > kMaxMessage) {
      POUNCE_LOG(Admin, Error, "control channel: a %d-byte message is over the limit", len);
      closeChannel();
      return;
    }
    if (in_.length() < 4 + static_cast<size_t>(len)) {
      return;
    }
    std::string bytes(in_.data() + 4, len);
    in_.drain(4 + static_cast<size_t>(len));
    onMessage(bytes);
  }
}

void ControlChannel::onMessage(const std::string& bytes) {
  ControlMessage message;
  if (!message.ParseFromString(bytes)) {
    POUNCE_LOG(Admin, Error, "control channel: a message does not parse");
    closeChannel();
    return;
  }
  if (message.has_response()) {
    auto it = pending_.find(message.id());
    if (it == pending_.end()) {
      return; // timed out already
    }
    auto cb = std::move(it->second.done);
    pending_.erase(it);
    cb(std::move(*message.mutable_response()));
    return;
  }
  if (!message.has_request() || !handler_) {
    return;
  }
  const uint64_t id = message.id();
  std::weak_ptr<bool> alive = alive_;
  handler_(message.request(), [this, id, alive](ControlResponse response) {
    auto still = alive.lock();
    if (!still || !*still) {
      return;
    }
    ControlMessage reply;
    reply.set_id(id);
    *reply.mutable_response() = std::move(response);
    send(reply);
  });
}

void ControlChannel::closeChannel() {
  if (fd_ < 0) {
    return;
  }
  // Usually called from the file event's own callback: free it once that returned, then
  // close the descriptor (in that order, so the number cannot be reused under the event).
  std::shared_ptr<event::FileEvent> file_event(std::move(file_event_));
  dispatcher_.defer([file_event, fd = fd_]() mutable {
    file_event.reset();
    ::close(fd);
  });
  fd_ = -1;
  in_.clear();
  out_.clear();
  auto pending = std::move(pending_);
  pending_.clear();
  auto alive = alive_;
  for (auto& [id, p] : pending) {
    p.timer.reset();
    if (p.done) {
      p.done(std::nullopt);
    }
    if (!*alive) {
      return;
    }
  }
  if (on_closed_) {
    auto cb = std::move(on_closed_);
    on_closed_ = nullptr;
    cb();
  }
}

} // namespace pounce::server::admin
