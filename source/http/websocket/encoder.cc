#include "source/http/websocket/encoder.h"

namespace pounce::http::websocket {

FrameEncoder::FrameEncoder(size_t fragment_size, MessageCompressor* compressor,
                           size_t min_compress_size)
    : fragment_size_(fragment_size), compressor_(compressor),
      min_compress_size_(min_compress_size) {}

bool FrameEncoder::message(MessageType type, std::string_view payload, Buffer& out) {
  const Opcode opcode = type == MessageType::Text ? Opcode::Text : Opcode::Binary;
  if (compressor_ != nullptr && payload.size() >= min_compress_size_) {
    compressed_.clear();
    if (!compressor_->compress(payload, compressed_)) {
      return false;
    }
    frames(opcode, true, compressed_, out);
    // Do not keep a huge buffer around after one big message.
    if (compressed_.capacity() > 1024 * 1024) {
      std::string().swap(compressed_);
    }
    return true;
  }
  frames(opcode, false, payload, out);
  return true;
}

void FrameEncoder::frames(Opcode opcode, bool rsv1, std::string_view payload, Buffer& out) {
  char header[kMaxFrameHeader];
  if (fragment_size_ == 0 || payload.size() <= fragment_size_) {
    out.add(header, encodeFrameHeader(header, opcode, true, rsv1, payload.size(), nullptr));
    out.add(payload);
    return;
  }
  // RFC 7692 §6.1: RSV1 only on the first frame of a compressed message.
  bool first = true;
  while (!payload.empty()) {
    const size_t n = std::min(fragment_size_, payload.size());
    const bool fin = n == payload.size();
    out.add(header, encodeFrameHeader(header, first ? opcode : Opcode::Continuation, fin,
                                      first && rsv1, n, nullptr));
    out.add(payload.substr(0, n));
    payload.remove_prefix(n);
    first = false;
  }
}

void FrameEncoder::control(Opcode opcode, std::string_view payload, Buffer& out) {
  payload = payload.substr(0, kMaxControlPayload);
  char header[kMaxFrameHeader];
  out.add(header, encodeFrameHeader(header, opcode, true, false, payload.size(), nullptr));
  out.add(payload);
}

void FrameEncoder::close(uint16_t code, std::string_view reason, Buffer& out) {
  if (code == close_code::kNoStatus) {
    control(Opcode::Close, {}, out);
    return;
  }
  char payload[kMaxControlPayload];
  payload[0] = static_cast<char>(code >> 8);
  payload[1] = static_cast<char>(code & 0xFF);
  reason = reason.substr(0, kMaxCloseReason);
  if (!reason.empty()) {
    std::memcpy(payload + 2, reason.data(), reason.size());
  }
  control(Opcode::Close, std::string_view(payload, 2 + reason.size()), out);
}

} // namespace pounce::http::websocket
