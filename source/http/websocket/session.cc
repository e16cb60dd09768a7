#include "source/http/websocket/session.h"

#include "source/http/websocket/utf8.h"

namespace pounce::http::websocket {

namespace {

std::unique_ptr<MessageCompressor> makeCompressor(const std::optional<DeflateParams>& deflate,
                                                  const SessionConfig& config) {
  if (!deflate) {
    return nullptr;
  }
  return std::make_unique<MessageCompressor>(
      deflate->server_max_window_bits, deflate->server_no_context_takeover,
      config.deflate.compression_level, config.deflate.memory_level);
}

std::unique_ptr<MessageDecompressor> makeDecompressor(const std::optional<DeflateParams>& deflate) {
  if (!deflate) {
    return nullptr;
  }
  return std::make_unique<MessageDecompressor>(deflate->client_max_window_bits,
                                               deflate->client_no_context_takeover);
}

} // namespace

Session::Session(const SessionConfig& config, SessionCallbacks& callbacks, TimeSource& time_source,
                 const std::optional<DeflateParams>& deflate)
    : config_(config), callbacks_(callbacks), time_source_(time_source), deflate_(deflate),
      compressor_(makeCompressor(deflate, config)),
      decompressor_(makeDecompressor(deflate)), decoder_config_{config.max_message_size, true},
      decoder_(decoder_config_, *this, decompressor_.get()),
      encoder_(config.fragment_size, compressor_.get(), config.deflate.min_compress_size),
      keepalive_(config.ping_interval.count() > 0) {
  if (keepalive_) {
    last_received_ = time_source_.monotonicTime();
  }
}

Session::~Session() = default;

void Session::onBytes(Buffer& data) {
  if (state_ == State::Closed) {
    data.clear();
    return;
  }
  if (keepalive_) {
    last_received_ = time_source_.monotonicTime();
  }
  decoder_.decode(data);
  if (state_ == State::Closed) {
    data.clear();
  }
}

bool Session::send(MessageType type, std::string_view payload) {
  if (state_ != State::Open) {
    return false;
  }
  return encoder_.message(type, payload, output_);
}

bool Session::sendPing(std::string_view payload) {
  if (state_ != State::Open || payload.size() > kMaxControlPayload) {
    return false;
  }
  encoder_.control(Opcode::Ping, payload, output_);
  return true;
}

bool Session::sendPong(std::string_view payload) {
  if (state_ != State::Open || payload.size() > kMaxControlPayload) {
    return false;
  }
  encoder_.control(Opcode::Pong, payload, output_);
  return true;
}

bool Session::close(uint16_t code, std::string_view reason) {
  if (state_ != State::Open || !isValidCloseCode(code) || !Utf8Validator::valid(reason)) {
    return false;
  }
  encoder_.close(code, truncateUtf8(reason, kMaxCloseReason), output_);
  state_ = State::Closing;
  awaiting_pong_ = false;
  close_sent_at_ = time_source_.monotonicTime();
  return true;
}

void Session::onConnectionLost() {
  if (state_ != State::Closed) {
    finish(close_code::kAbnormal, {}, CloseCause::ConnectionLost);
  }
}

std::optional<MonotonicTime> Session::nextTimeout() const {
  switch (state_) {
  case State::Closing:
    return close_sent_at_ + config_.close_timeout;
  case State::Open:
    if (!keepalive_) {
      return std::nullopt;
    }
    return awaiting_pong_ ? ping_sent_at_ + config_.ping_timeout
                          : last_received_ + config_.ping_interval;
  case State::Closed:
    return std::nullopt;
  }
  return std::nullopt;
}

void Session::onTimeout() {
  const MonotonicTime now = time_source_.monotonicTime();
  if (state_ == State::Closing) {
    if (now >= close_sent_at_ + config_.close_timeout) {
      finish(close_code::kAbnormal, "close handshake timed out", CloseCause::CloseTimeout);
    }
    return;
  }
  if (state_ != State::Open || !keepalive_) {
    return;
  }
  if (awaiting_pong_) {
    if (now >= ping_sent_at_ + config_.ping_timeout) {
      static constexpr std::string_view kReason = "keepalive ping timeout";
      encoder_.close(close_code::kInternalError, kReason, output_);
      finish(close_code::kInternalError, kReason, CloseCause::PingTimeout);
    }
    return;
  }
  if (now >= last_received_ + config_.ping_interval) {
    const uint32_t n = ++pings_sent_;
    const char payload[4] = {static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                             static_cast<char>(n >> 8), static_cast<char>(n)};
    encoder_.control(Opcode::Ping, std::string_view(payload, 4), output_);
    ping_sent_at_ = now;
    awaiting_pong_ = true;
  }
}

void Session::onMessage(MessageType type, Buffer& payload) {
  if (state_ != State::Closed) {
    callbacks_.onMessage(type, payload);
  }
}

void Session::onPing(std::string_view payload) {
  if (state_ == State::Closed) {
    return;
  }
  // Also while our Close waits for the peer's (RFC 6455 §5.5.2: a Ping is answered unless a
  // Close was received; Closing means only that ours was sent).
  if (config_.auto_pong && state_ != State::Closed) {
    encoder_.control(Opcode::Pong, payload, output_);
  }
  callbacks_.onPing(payload);
}

void Session::onPong(std::string_view payload) {
  if (state_ == State::Closed) {
    return;
  }
  awaiting_pong_ = false;
  callbacks_.onPong(payload);
}

void Session::onCloseFrame(uint16_t code, std::string_view reason) {
  if (state_ == State::Closed) {
    return;
  }
  if (state_ == State::Open) {
    // Echo the peer's status code and reason (RFC 6455 §5.5.1).
    encoder_.close(code, reason, output_);
    finish(code, reason, CloseCause::PeerClosed);
  } else {
    finish(code, reason, CloseCause::CloseHandshakeCompleted);
  }
}

void Session::onProtocolError(uint16_t code, std::string_view details) {
  if (state_ == State::Closed) {
    return;
  }
  if (state_ == State::Open) {
    encoder_.close(code, details, output_);
  }
  finish(code, details, CloseCause::ProtocolError);
}

void Session::finish(uint16_t code, std::string_view reason, CloseCause cause) {
  state_ = State::Closed;
  awaiting_pong_ = false;
  // A callback may end the session in the middle of a read: stop decoding there.
  decoder_.pause();
  callbacks_.onClose(CloseInfo{code, reason, cause});
}

} // namespace pounce::http::websocket
