#include "source/network/connection.h"

#include <sys/socket.h>
#include <unistd.h>

#include "source/common/logger.h"

namespace pounce::network {

namespace {
constexpr uint64_t kReadChunk = 65536;
constexpr auto kLingerTime = std::chrono::milliseconds(2000);
} // namespace

Connection::Connection(event::Dispatcher& dispatcher, int fd, TransportSocketPtr transport,
                       Address remote, Address local, uint64_t id)
    : dispatcher_(dispatcher), fd_(fd), transport_(std::move(transport)),
      remote_(std::move(remote)), local_(std::move(local)), id_(id) {
  transport_->setCallbacks(*this);
}

Connection::~Connection() {
  file_event_.reset();
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

void Connection::start() {
  file_event_ = dispatcher_.createFileEvent(fd_, [this](uint32_t events) { onFileEvent(events); });
  transport_->onConnected();
}

void Connection::onTransportConnected() {
  connected_ = true;
  if (callbacks_ != nullptr) {
    callbacks_->onEvent(ConnectionEvent::Connected);
  }
}

void Connection::setReadBufferReady() { file_event_->activate(event::FileReadyType::Read); }

void Connection::setBufferLimits(uint32_t high) { high_watermark_ = high; }

void Connection::onFileEvent(uint32_t events) {
  if (state_ == State::Closed) {
    return;
  }
  // A TLS transport may wait for the other direction's readiness (see TransportSocket).
  if ((events & event::FileReadyType::Write) && transport_->readNeedsWritable()) {
    events |= event::FileReadyType::Read;
  }
  if ((events & event::FileReadyType::Read) && transport_->writeNeedsReadable()) {
    events |= event::FileReadyType::Write;
  }
  if (events & event::FileReadyType::Closed) {
    // The peer's FIN is in the socket, possibly behind data: read until it.
    peer_closed_ = true;
    events |= event::FileReadyType::Read;
  }
  if (events & event::FileReadyType::Write) {
    onWriteReady();
  }
  if (state_ == State::Closed) {
    return;
  }
  if (events & event::FileReadyType::Read) {
    onReadReady();
  }
}

void Connection::onReadReady() {
  if (lingering_) {
    char sink[4096];
    while (true) {
      const ssize_t n = ::read(fd_, sink, sizeof(sink));
      if (n > 0) {
        continue;
      }
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n < 0 && errno == EAGAIN) {
        return;
      }
      closeNow(ConnectionEvent::LocalClose);
      return;
    }
  }
  if (state_ != State::Open) {
    return;
  }
  if (read_disable_count_ > 0) {
    read_pending_ = true;
    return;
  }
  IoResult result = transport_->doRead(read_buffer_, kReadChunk);
  if (peer_closed_ && result.action == IoResult::Action::KeepOpen && !result.end_stream &&
      result.bytes > 0 && result.bytes < kReadChunk) {
    // A short read stops before the FIN (it raises no new edge): one more read finds it.
    const IoResult more = transport_->doRead(read_buffer_, kReadChunk - result.bytes);
    result.bytes += more.bytes;
    result.end_stream = more.end_stream;
    result.action = more.action;
  }
  bytes_received_ += result.bytes;
  if (result.action == IoResult::Action::Close) {
    closeNow(ConnectionEvent::RemoteClose);
    return;
  }
  if (result.bytes == kReadChunk) {
    // Possibly more in the socket: come back after others had their turn.
    file_event_->activate(event::FileReadyType::Read);
  }
  if (result.bytes > 0 || result.end_stream) {
    in_read_callback_ = true;
    if (callbacks_ != nullptr) {
      callbacks_->onData(read_buffer_, result.end_stream);
    }
    in_read_callback_ = false;
    if (state_ == State::Closed) {
      return;
    }
    if (result.end_stream && state_ == State::Open) {
      // The peer is done sending; the protocol decided in onData whether to keep
      // writing a response. With nothing left to write, close.
      if (output_.empty()) {
        closeNow(ConnectionEvent::RemoteClose);
        return;
      }
    }
    if (!output_.empty() && !write_blocked_) {
      writeNow();
    }
  }
}

void Connection::scheduleWrite() {
  // Output just grew: producers learn at once when it is too much.
  checkWatermarks();
  if (in_read_callback_ || write_scheduled_ || write_blocked_ || state_ == State::Closed) {
    return;
  }
  write_scheduled_ = true;
  dispatcher_.defer([this] {
    write_scheduled_ = false;
    if (state_ != State::Closed && !write_blocked_) {
      writeNow();
    }
  });
}

void Connection::writeNow() {
  if (state_ == State::Closed || !connected_) {
    return;
  }
  if (!output_.empty()) {
    IoResult result = transport_->doWrite(output_);
    bytes_sent_ += result.bytes;
    if (result.action == IoResult::Action::Close) {
      closeNow(ConnectionEvent::RemoteClose);
      return;
    }
    write_blocked_ = result.would_block && !output_.empty();
    checkWatermarks();
    if (state_ == State::Closed) {
      return;
    }
  }
  if (output_.empty() && state_ == State::Closing) {
    if (close_type_ == CloseType::FlushWriteAndLinger) {
      lingerStart();
    } else {
      transport_->shutdownWrite();
      closeNow(ConnectionEvent::LocalClose);
    }
  }
}

void Connection::onWriteReady() {
  write_blocked_ = false;
  if (!connected_) {
    return;
  }
  writeNow();
}

void Connection::checkWatermarks() {
  const uint64_t buffered = output_.length();
  if (!above_high_watermark_ && buffered > high_watermark_) {
    POUNCE_LOG(Conn, Trace, "[C%d] above high watermark (%d bytes buffered)", id_, buffered);
    above_high_watermark_ = true;
    if (callbacks_ != nullptr) {
      callbacks_->onAboveWriteBufferHighWatermark();
    }
  } else if (above_high_watermark_ && buffered <= high_watermark_ / 2) {
    POUNCE_LOG(Conn, Trace, "[C%d] below low watermark (%d bytes buffered)", id_, buffered);
    above_high_watermark_ = false;
    if (callbacks_ != nullptr) {
      callbacks_->onBelowWriteBufferLowWatermark();
    }
  }
}

void Connection::readDisable(bool disable) {
  if (disable) {
    ++read_disable_count_;
    return;
  }
  if (read_disable_count_ == 0) {
    return;
  }
  if (--read_disable_count_ == 0 && state_ == State::Open) {
    // Data may be waiting in our buffer or in the socket: look again.
    read_pending_ = false;
    file_event_->activate(event::FileReadyType::Read);
    if (!read_buffer_.empty() && callbacks_ != nullptr) {
      dispatcher_.defer([this] {
        if (state_ == State::Open && read_disable_count_ == 0 && !read_buffer_.empty() &&
            callbacks_ != nullptr) {
          in_read_callback_ = true;
          callbacks_->onData(read_buffer_, false);
          in_read_callback_ = false;
          if (state_ != State::Closed && !output_.empty() && !write_blocked_) {
            writeNow();
          }
        }
      });
    }
  }
}

void Connection::close(CloseType type) {
  if (state_ != State::Open) {
    if (type == CloseType::NoFlush && state_ == State::Closing) {
      closeNow(ConnectionEvent::LocalClose);
    }
    return;
  }
  if (!connected_) {
    // The transport's handshake (TLS) has not finished: nothing can be flushed.
    closeNow(ConnectionEvent::LocalClose);
    return;
  }
  if (type == CloseType::NoFlush || output_.empty()) {
    if (type == CloseType::FlushWriteAndLinger && connected_) {
      state_ = State::Closing;
      close_type_ = type;
      lingerStart();
      return;
    }
    closeNow(ConnectionEvent::LocalClose);
    return;
  }
  state_ = State::Closing;
  close_type_ = type;
  if (!write_blocked_) {
    scheduleWrite();
    if (in_read_callback_) {
      // writeNow() runs when the read callback returns.
    }
  }
}

void Connection::lingerStart() {
  if (lingering_) {
    return;
  }
  lingering_ = true;
  transport_->shutdownWrite();
  ::shutdown(fd_, SHUT_WR);
  linger_timer_ = dispatcher_.createTimer([this] { closeNow(ConnectionEvent::LocalClose); });
  linger_timer_->enableTimer(kLingerTime);
  // Drain whatever is already there.
  file_event_->activate(event::FileReadyType::Read);
}

void Connection::closeNow(ConnectionEvent event) {
  if (state_ == State::Closed) {
    return;
  }
  state_ = State::Closed;
  if (linger_timer_) {
    linger_timer_->disableTimer();
  }
  file_event_.reset();
  ::close(fd_);
  fd_ = -1;
  if (callbacks_ != nullptr) {
    callbacks_->onEvent(event);
  }
  if (on_closed_) {
    on_closed_(*this);
  }
}

} // namespace pounce::network
