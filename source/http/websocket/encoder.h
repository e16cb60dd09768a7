#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "source/common/buffer.h"
#include "source/http/websocket/decoder.h"
#include "source/http/websocket/deflate.h"
#include "source/http/websocket/frame.h"

namespace pounce::http::websocket {

// Writes server frames (unmasked, RFC 6455 §5.1) into a Buffer.
class FrameEncoder {
public:
  // `fragment_size` > 0 splits message payloads into frames of at most that many bytes.
  // `compressor` (null without permessage-deflate) compresses messages of at least
  // `min_compress_size` bytes; shorter ones go out plain.
  FrameEncoder(size_t fragment_size, MessageCompressor* compressor, size_t min_compress_size);

  // A whole text or binary message. Returns false (writing nothing) if compression failed.
  bool message(MessageType type, std::string_view payload, Buffer& out);
  // A ping or pong; `payload` must be at most 125 bytes.
  void control(Opcode opcode, std::string_view payload, Buffer& out);
  // A close frame with `code` and `reason` (at most 123 bytes); code 1005 writes an empty
  // close frame.
  void close(uint16_t code, std::string_view reason, Buffer& out);

private:
  void frames(Opcode opcode, bool rsv1, std::string_view payload, Buffer& out);

  const size_t fragment_size_;
  MessageCompressor* const compressor_;
  const size_t min_compress_size_;
  std::string compressed_; // reused between messages
};

} // namespace pounce::http::websocket
