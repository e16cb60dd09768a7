#include "source/http/websocket/decoder.h"

#include <algorithm>

namespace pounce::http::websocket {

namespace {

// Bytes of header implied by the second byte: length encoding and mask key.
size_t headerSize(uint8_t second) {
  const uint8_t len7 = second & 0x7F;
  return 2 + (len7 == 126 ? 2 : (len7 == 127 ? 8 : 0)) + ((second & 0x80) != 0 ? 4 : 0);
}

// Compressed input accepted per message: the decompressed size is the real limit; this
// only stops a sender streaming endless compressed filler. Deflate's worst case expansion
// is a few bytes per 16 KiB block.
uint64_t compressedLimit(uint64_t max_message_size) {
  return max_message_size + max_message_size / 256 + 1024;
}

// Unmasked compressed bytes are handed to zlib in pieces of this size.
constexpr size_t kScratchSize = 16384;

// Message buffers up to this size are kept for reuse.
constexpr size_t kKeepBufferBytes = 64 * 1024;

} // namespace

FrameDecoder::FrameDecoder(const DecoderConfig& config, DecoderCallbacks& callbacks,
                           MessageDecompressor* decompressor)
    : config_(config), callbacks_(callbacks), decompressor_(decompressor) {}

void FrameDecoder::decode(Buffer& data) {
  const char* const begin = data.data();
  const size_t size = data.length();
  size_t used = 0;
  while (used < size && state_ != State::Done && !paused_) {
    if (state_ == State::Header) {
      used += readHeader(begin + used, size - used);
    } else {
      used += readPayload(begin + used, size - used);
    }
  }
  if (state_ == State::Done) {
    used = size;
  }
  data.drain(used);
}

size_t FrameDecoder::readHeader(const char* data, size_t size) {
  const auto* bytes = reinterpret_cast<const uint8_t*>(data);
  // Fast path: the whole header is in this read; parse it in place.
  if (header_length_ == 0 && size >= 2) {
    const size_t need = headerSize(bytes[1]);
    if (size >= need) {
      startFrame(bytes);
      return need;
    }
  }
  // Slow path: collect the header a piece at a time.
  size_t used = 0;
  while (used < size) {
    const size_t need = header_length_ < 2 ? 2 : headerSize(header_[1]);
    if (header_length_ >= need) {
      break;
    }
    const size_t take = std::min(need - header_length_, size - used);
    std::memcpy(header_ + header_length_, data + used, take);
    header_length_ += take;
    used += take;
    if (header_length_ >= 2 && header_length_ == headerSize(header_[1])) {
      header_length_ = 0;
      startFrame(header_);
      return used;
    }
  }
  return used;
}

bool FrameDecoder::startFrame(const uint8_t* h) {
  fin_ = (h[0] & 0x80) != 0;
  const bool rsv1 = (h[0] & 0x40) != 0;
  const uint8_t op = h[0] & 0x0F;
  masked_ = (h[1] & 0x80) != 0;
  const uint8_t len7 = h[1] & 0x7F;

  if ((h[0] & 0x30) != 0) {
    fail(close_code::kProtocolError, "reserved bits RSV2/RSV3 set");
    return false;
  }
  if (!isKnownOpcode(op)) {
    fail(close_code::kProtocolError, "unknown opcode");
    return false;
  }
  if (masked_ != config_.expect_masked) {
    fail(close_code::kProtocolError,
         config_.expect_masked ? "client frame not masked" : "server frame masked");
    return false;
  }
  uint64_t length = len7;
  size_t pos = 2;
  if (len7 == 126) {
    length = (uint64_t{h[2]} << 8) | h[3];
    pos = 4;
  } else if (len7 == 127) {
    length = 0;
    for (int i = 0; i < 8; ++i) {
      length = (length << 8) | h[2 + i];
    }
    pos = 10;
    if ((length >> 63) != 0) {
      fail(close_code::kProtocolError, "frame length has the most significant bit set");
      return false;
    }
  }
  if (masked_) {
    std::memcpy(mask_key_, h + pos, 4);
  }
  opcode_ = static_cast<Opcode>(op);
  mask_offset_ = 0;
  remaining_ = length;

  if (isControl(opcode_)) {
    if (!fin_) {
      fail(close_code::kProtocolError, "fragmented control frame");
      return false;
    }
    if (length > kMaxControlPayload) {
      fail(close_code::kProtocolError, "control frame payload over 125 bytes");
      return false;
    }
    if (rsv1) {
      fail(close_code::kProtocolError, "RSV1 set on a control frame");
      return false;
    }
    control_length_ = 0;
  } else if (opcode_ == Opcode::Continuation) {
    if (!in_message_) {
      fail(close_code::kProtocolError, "continuation frame without a message to continue");
      return false;
    }
    if (rsv1) {
      fail(close_code::kProtocolError, "RSV1 set on a continuation frame");
      return false;
    }
  } else {
    if (in_message_) {
      fail(close_code::kProtocolError, "new message before the fragmented one ended");
      return false;
    }
    if (rsv1 && decompressor_ == nullptr) {
      fail(close_code::kProtocolError, "RSV1 set without a negotiated extension");
      return false;
    }
    in_message_ = true;
    message_type_ = opcode_ == Opcode::Text ? MessageType::Text : MessageType::Binary;
    message_compressed_ = rsv1;
    message_wire_bytes_ = 0;
    message_.clear();
    utf8_.reset();
  }

  if (!isControl(opcode_)) {
    // Refuse an oversized message from its declared length, before buffering any of it.
    if (message_compressed_) {
      if (length > compressedLimit(config_.max_message_size) - message_wire_bytes_) {
        fail(close_code::kMessageTooBig, "compressed message over the size limit");
        return false;
      }
    } else if (length > config_.max_message_size - message_.length()) {
      fail(close_code::kMessageTooBig, "message over the size limit");
      return false;
    }
    message_wire_bytes_ += length;
  }

  if (length == 0) {
    frameComplete();
  } else {
    state_ = State::Payload;
  }
  return true;
}

size_t FrameDecoder::readPayload(const char* data, size_t size) {
  const size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, size));
  if (isControl(opcode_)) {
    char* dst = control_ + control_length_;
    if (masked_) {
      mask_offset_ = maskCopy(dst, data, take, mask_key_, mask_offset_);
    } else {
      std::memcpy(dst, data, take);
    }
    control_length_ += take;
  } else if (!message_compressed_) {
    const size_t from = message_.length();
    char* dst = message_.reserve(take);
    if (masked_) {
      mask_offset_ = maskCopy(dst, data, take, mask_key_, mask_offset_);
    } else {
      std::memcpy(dst, data, take);
    }
    message_.commit(take);
    if (message_type_ == MessageType::Text && !validateText(from)) {
      return take;
    }
  } else {
    if (masked_) {
      if (scratch_.size() < kScratchSize) {
        scratch_.resize(kScratchSize);
      }
      for (size_t done = 0; done < take;) {
        const size_t piece = std::min(kScratchSize, take - done);
        mask_offset_ = maskCopy(scratch_.data(), data + done, piece, mask_key_, mask_offset_);
        if (!inflateChunk(scratch_.data(), piece)) {
          return take;
        }
        done += piece;
      }
    } else if (!inflateChunk(data, take)) {
      return take;
    }
  }
  remaining_ -= take;
  if (remaining_ == 0) {
    frameComplete();
  }
  return take;
}

bool FrameDecoder::inflateChunk(const char* data, size_t size) {
  const size_t from = message_.length();
  switch (decompressor_->feed(data, size, message_, config_.max_message_size)) {
  case MessageDecompressor::Result::Ok:
    break;
  case MessageDecompressor::Result::TooBig:
    fail(close_code::kMessageTooBig, "decompressed message over the size limit");
    return false;
  case MessageDecompressor::Result::Invalid:
    fail(close_code::kInvalidPayload, "invalid compressed data");
    return false;
  }
  return message_type_ != MessageType::Text || validateText(from);
}

bool FrameDecoder::validateText(size_t from) {
  if (!utf8_.feed(message_.data() + from, message_.length() - from)) {
    fail(close_code::kInvalidPayload, "invalid UTF-8 in a text message");
    return false;
  }
  return true;
}

void FrameDecoder::frameComplete() {
  state_ = State::Header;
  if (isControl(opcode_)) {
    controlFrameComplete();
  } else if (fin_) {
    finishMessage();
  }
}

void FrameDecoder::finishMessage() {
  if (message_compressed_) {
    const size_t from = message_.length();
    switch (decompressor_->finish(message_, config_.max_message_size)) {
    case MessageDecompressor::Result::Ok:
      break;
    case MessageDecompressor::Result::TooBig:
      fail(close_code::kMessageTooBig, "decompressed message over the size limit");
      return;
    case MessageDecompressor::Result::Invalid:
      fail(close_code::kInvalidPayload, "invalid compressed data");
      return;
    }
    if (message_type_ == MessageType::Text && !validateText(from)) {
      return;
    }
  }
  if (message_type_ == MessageType::Text && !utf8_.complete()) {
    fail(close_code::kInvalidPayload, "text message ends inside a UTF-8 sequence");
    return;
  }
  in_message_ = false;
  // Keep the storage for the next message unless this one was large: an idle connection
  // should not hold on to its biggest message.
  const bool large = message_.length() > kKeepBufferBytes;
  callbacks_.onMessage(message_type_, message_);
  if (large) {
    message_ = Buffer();
  } else {
    message_.clear();
  }
}

void FrameDecoder::controlFrameComplete() {
  const std::string_view payload(control_, control_length_);
  switch (opcode_) {
  case Opcode::Ping:
    callbacks_.onPing(payload);
    return;
  case Opcode::Pong:
    callbacks_.onPong(payload);
    return;
  case Opcode::Close: {
    if (payload.size() == 1) {
      fail(close_code::kProtocolError, "close frame with a 1-byte payload");
      return;
    }
    uint16_t code = close_code::kNoStatus;
    std::string_view reason;
    if (payload.size() >= 2) {
      code = static_cast<uint16_t>((static_cast<uint8_t>(payload[0]) << 8) |
                                   static_cast<uint8_t>(payload[1]));
      if (!isValidCloseCode(code)) {
        fail(close_code::kProtocolError, "invalid close code");
        return;
      }
      reason = payload.substr(2);
      if (!Utf8Validator::valid(reason)) {
        fail(close_code::kInvalidPayload, "invalid UTF-8 in the close reason");
        return;
      }
    }
    state_ = State::Done;
    if (in_message_ && message_compressed_) {
      decompressor_->abandon();
    }
    in_message_ = false;
    message_.clear();
    callbacks_.onCloseFrame(code, reason);
    return;
  }
  default:
    return;
  }
}

void FrameDecoder::fail(uint16_t code, std::string_view details) {
  state_ = State::Done;
  if (in_message_ && message_compressed_ && decompressor_ != nullptr) {
    decompressor_->abandon();
  }
  in_message_ = false;
  message_.clear();
  callbacks_.onProtocolError(code, details);
}

} // namespace pounce::http::websocket
