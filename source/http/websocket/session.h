#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "source/common/buffer.h"
#include "source/common/time.h"
#include "source/http/websocket/decoder.h"
#include "source/http/websocket/deflate.h"
#include "source/http/websocket/encoder.h"
#include "source/http/websocket/frame.h"

namespace pounce::http::websocket {

struct SessionConfig {
  // Largest incoming message, after decompression (close 1009 beyond it).
  uint64_t max_message_size{10 * 1024 * 1024};
  // Outgoing messages longer than this go out as several frames; 0 sends one frame each.
  size_t fragment_size{0};
  // Answer pings with a pong automatically. Off: the caller answers with sendPong().
  bool auto_pong{true};
  // Send a ping after this long without receiving anything; 0 disables keepalive pings.
  std::chrono::milliseconds ping_interval{0};
  // Fail the connection (close 1011) if the pong to a keepalive ping is this late.
  std::chrono::milliseconds ping_timeout{std::chrono::seconds(20)};
  // After sending a close frame, wait this long for the peer's before giving up.
  std::chrono::milliseconds close_timeout{std::chrono::seconds(5)};
  // permessage-deflate: what to accept in the handshake (pass it to negotiateDeflate())
  // and how to compress once agreed (level, memory, threshold).
  DeflateConfig deflate;
};

// Why a session ended.
enum class CloseCause {
  // The peer sent a close frame; the session answered it.
  PeerClosed,
  // This side sent a close frame and the peer answered it.
  CloseHandshakeCompleted,
  // The peer broke the protocol; the session sent a close frame with `code` (1002, 1007,
  // 1009) and does not wait for an answer.
  ProtocolError,
  // No pong to a keepalive ping in time; the session sent close 1011.
  PingTimeout,
  // The peer did not answer this side's close frame in time (code 1006).
  CloseTimeout,
  // The transport went away without a close handshake (code 1006).
  ConnectionLost,
};

struct CloseInfo {
  // PeerClosed / CloseHandshakeCompleted: the code in the peer's close frame (1005 if it
  // had none). ProtocolError / PingTimeout: the code this side sent. Otherwise 1006.
  uint16_t code;
  std::string_view reason;
  CloseCause cause;
};

// What a session tells its owner. Callbacks run inside Session calls; they may call any
// Session method (send, close, pauseReading) but must not destroy the session.
class SessionCallbacks {
public:
  virtual ~SessionCallbacks() = default;
  // A complete message; text is valid UTF-8. `payload` may be moved from.
  virtual void onMessage(MessageType type, Buffer& payload) = 0;
  // A ping (already answered unless auto_pong is off) and a pong.
  virtual void onPing(std::string_view payload) {}
  virtual void onPong(std::string_view payload) {}
  // The session reached Closed. Called exactly once.
  virtual void onClose(const CloseInfo& info) = 0;
};

// A server-side WebSocket endpoint after the handshake, sans-I/O: the owner feeds it the
// bytes read from the peer and writes out what it queues in output(). It frames outgoing
// messages, answers pings, runs the close handshake and the keepalive pings, and reports
// messages and the end of the session through SessionCallbacks.
//
// States: Open → (close() sent) Closing → Closed, or Open → Closed when the peer closes
// or the input is bad. Once Closed, the owner writes out what is left in output() and then
// closes the transport (RFC 6455 §7.1.1: the server closes the TCP connection first).
//
// Time: the owner asks nextTimeout() after each call, arms a timer for it, and calls
// onTimeout() when it fires; the session sends keepalive pings and gives up on late pongs
// or close replies there.
class Session : private DecoderCallbacks {
public:
  enum class State { Open, Closing, Closed };

  // `deflate`: the permessage-deflate parameters agreed in the handshake, if any.
  Session(const SessionConfig& config, SessionCallbacks& callbacks, TimeSource& time_source,
          const std::optional<DeflateParams>& deflate = std::nullopt);
  ~Session() override;

  // Feeds bytes read from the peer, draining what was used: everything, unless a callback
  // called pauseReading() (the rest stays in `data` until resumeReading() and the next
  // call). Bytes after the session closed are dropped.
  void onBytes(Buffer& data);

  // Queue a message. False (nothing queued) unless the session is Open, or if compression
  // failed. Text must be valid UTF-8 (the caller's promise; it is not re-checked).
  bool sendText(std::string_view text) { return send(MessageType::Text, text); }
  bool sendBinary(std::string_view data) { return send(MessageType::Binary, data); }
  bool send(MessageType type, std::string_view payload);
  // Control frames; `payload` at most 125 bytes. False unless Open.
  bool sendPing(std::string_view payload = {});
  bool sendPong(std::string_view payload = {});

  // Starts the close handshake with `code` (1000-1003, 1007-1014, 3000-4999) and a reason
  // (UTF-8; cut to 123 bytes at a character boundary). False if the session is not Open or
  // the code or reason cannot be sent. The state becomes Closing until the peer's close
  // frame arrives or close_timeout passes.
  bool close(uint16_t code = close_code::kNormal, std::string_view reason = {});

  // The transport is gone. Reports ConnectionLost (1006) unless the session already closed.
  void onConnectionLost();

  // Bytes to write to the peer. The owner moves them out (Buffer::move is O(1) into an
  // empty buffer) or drains what it wrote.
  Buffer& output() { return output_; }
  size_t pendingOutput() const { return output_.length(); }

  State state() const { return state_; }
  bool isOpen() const { return state_ == State::Open; }
  bool isClosing() const { return state_ == State::Closing; }
  bool isClosed() const { return state_ == State::Closed; }

  // Flow control on the incoming side (see onBytes()).
  void pauseReading() { decoder_.pause(); }
  void resumeReading() { decoder_.resume(); }
  bool readingPaused() const { return decoder_.paused(); }

  // When onTimeout() next has something to do, or nullopt if no timer is needed.
  std::optional<MonotonicTime> nextTimeout() const;
  // Runs what is due now: a keepalive ping, or giving up on a late pong or close reply.
  void onTimeout();
  // True while a keepalive ping has gone unanswered.
  bool awaitingPong() const { return awaiting_pong_; }

  const std::optional<DeflateParams>& deflate() const { return deflate_; }
  // Bytes of a partly received message held by the session.
  size_t bufferedBytes() const { return decoder_.bufferedBytes(); }

private:
  // DecoderCallbacks
  void onMessage(MessageType type, Buffer& payload) override;
  void onPing(std::string_view payload) override;
  void onPong(std::string_view payload) override;
  void onCloseFrame(uint16_t code, std::string_view reason) override;
  void onProtocolError(uint16_t code, std::string_view details) override;

  void finish(uint16_t code, std::string_view reason, CloseCause cause);

  const SessionConfig config_;
  SessionCallbacks& callbacks_;
  TimeSource& time_source_;
  const std::optional<DeflateParams> deflate_;
  std::unique_ptr<MessageCompressor> compressor_;
  std::unique_ptr<MessageDecompressor> decompressor_;
  DecoderConfig decoder_config_;
  FrameDecoder decoder_;
  FrameEncoder encoder_;
  Buffer output_;
  State state_{State::Open};

  bool keepalive_;
  MonotonicTime last_received_;
  MonotonicTime ping_sent_at_;
  bool awaiting_pong_{false};
  uint32_t pings_sent_{0};
  MonotonicTime close_sent_at_;
};

} // namespace pounce::http::websocket
