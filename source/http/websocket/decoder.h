#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "source/common/buffer.h"
#include "source/http/websocket/deflate.h"
#include "source/http/websocket/frame.h"
#include "source/http/websocket/utf8.h"

namespace pounce::http::websocket {

enum class MessageType { Text, Binary };

// What the decoder reports. Callbacks run inside FrameDecoder::decode(); they may call
// pause() on the decoder but must not destroy it.
class DecoderCallbacks {
public:
  virtual ~DecoderCallbacks() = default;
  // A complete message. Text is valid UTF-8. `payload` may be moved from (taking its
  // storage); otherwise the decoder reuses it for the next message.
  virtual void onMessage(MessageType type, Buffer& payload) = 0;
  virtual void onPing(std::string_view payload) = 0;
  virtual void onPong(std::string_view payload) = 0;
  // The peer's close frame, already validated: `code` is 1005 if it carried none. The
  // decoder ignores everything after it.
  virtual void onCloseFrame(uint16_t code, std::string_view reason) = 0;
  // The input broke the protocol; `code` is the close code to fail the connection with
  // (1002 protocol, 1007 bad payload, 1009 too big) and `details` says what was wrong.
  // The decoder ignores everything after it.
  virtual void onProtocolError(uint16_t code, std::string_view details) = 0;
};

struct DecoderConfig {
  // The largest message (after decompression) accepted; larger ones end with 1009. The
  // declared length of each frame is checked against it before any payload is buffered.
  uint64_t max_message_size{10 * 1024 * 1024};
  // A server requires masked frames (RFC 6455 §5.1); a client requires unmasked ones.
  bool expect_masked{true};
};

// RFC 6455 frame decoder, sans-I/O: takes bytes split anywhere and reports whole messages
// and control frames. Fragmented messages are reassembled (control frames may come between
// fragments); text is UTF-8 validated as it arrives, across fragments and inside compressed
// messages, so a bad byte is refused before the rest of the message is read. With a
// MessageDecompressor (permessage-deflate agreed), RSV1 marks a compressed message.
//
// Cost: a frame's payload is copied once, unmasked on the way, into the message buffer,
// whose storage is kept for the next message; small frames allocate nothing.
class FrameDecoder {
public:
  // `decompressor` is null when no compression was negotiated.
  FrameDecoder(const DecoderConfig& config, DecoderCallbacks& callbacks,
               MessageDecompressor* decompressor);

  // Consumes `data`, draining what it used. Everything is used unless a callback paused
  // the decoder; then the bytes after the last reported event stay in `data` for the next
  // call. After a close frame or a protocol error, further bytes are drained and ignored.
  void decode(Buffer& data);

  // Stop after the current event (flow control: the application is not keeping up).
  void pause() { paused_ = true; }
  void resume() { paused_ = false; }
  bool paused() const { return paused_; }

  // A close frame was received, or the input failed: no more events.
  bool done() const { return state_ == State::Done; }
  // Bytes of the message being reassembled (for memory accounting).
  size_t bufferedBytes() const { return message_.length(); }

private:
  enum class State { Header, Payload, Done };

  size_t readHeader(const char* data, size_t size);
  size_t readPayload(const char* data, size_t size);
  // Parses a complete header; false after reporting a protocol error.
  bool startFrame(const uint8_t* header);
  void frameComplete();
  void controlFrameComplete();
  void finishMessage();
  bool inflateChunk(const char* data, size_t size);
  bool validateText(size_t from);
  void fail(uint16_t code, std::string_view details);

  const DecoderConfig& config_;
  DecoderCallbacks& callbacks_;
  MessageDecompressor* const decompressor_;
  State state_{State::Header};
  bool paused_{false};

  // A frame header arriving in pieces.
  uint8_t header_[kMaxFrameHeader];
  size_t header_length_{0};

  // The frame being read.
  Opcode opcode_{Opcode::Continuation};
  bool fin_{false};
  uint8_t mask_key_[4] = {0, 0, 0, 0};
  bool masked_{false};
  size_t mask_offset_{0};
  uint64_t remaining_{0};

  // The message being reassembled.
  bool in_message_{false};
  MessageType message_type_{MessageType::Binary};
  bool message_compressed_{false};
  uint64_t message_wire_bytes_{0};
  Buffer message_;
  Utf8Validator utf8_;
  std::string scratch_; // unmasked compressed bytes on their way to zlib

  // The control frame being read (at most 125 bytes, never fragmented).
  char control_[kMaxControlPayload];
  size_t control_length_{0};
};

} // namespace pounce::http::websocket
