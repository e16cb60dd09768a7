#include "source/http/websocket/frame.h"

namespace pounce::http::websocket {

bool isValidCloseCode(uint16_t code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
         (code >= 3000 && code <= 4999);
}

size_t encodeFrameHeader(char* out, Opcode opcode, bool fin, bool rsv1, uint64_t payload_length,
                         const uint8_t* mask_key) {
  auto* p = reinterpret_cast<uint8_t*>(out);
  p[0] = static_cast<uint8_t>((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | static_cast<uint8_t>(opcode));
  const uint8_t mask_bit = mask_key != nullptr ? 0x80 : 0;
  size_t n;
  if (payload_length < 126) {
    p[1] = static_cast<uint8_t>(mask_bit | payload_length);
    n = 2;
  } else if (payload_length <= 0xFFFF) {
    p[1] = mask_bit | 126;
    p[2] = static_cast<uint8_t>(payload_length >> 8);
    p[3] = static_cast<uint8_t>(payload_length);
    n = 4;
  } else {
    p[1] = mask_bit | 127;
    for (int i = 0; i < 8; ++i) {
      p[2 + i] = static_cast<uint8_t>(payload_length >> (56 - 8 * i));
    }
    n = 10;
  }
  if (mask_key != nullptr) {
    std::memcpy(p + n, mask_key, 4);
    n += 4;
  }
  return n;
}

size_t maskCopy(char* dst, const char* src, size_t size, const uint8_t key[4], size_t offset) {
  // The key rotated so that byte 0 of the word lines up with `offset`, repeated twice. The
  // byte order of the word does not matter: bytes are loaded, XORed and stored in place.
  uint8_t rotated[8];
  for (size_t i = 0; i < 8; ++i) {
    rotated[i] = key[(offset + i) & 3];
  }
  uint64_t word_key;
  std::memcpy(&word_key, rotated, 8);
  size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    uint64_t word;
    std::memcpy(&word, src + i, 8);
    word ^= word_key;
    std::memcpy(dst + i, &word, 8);
  }
  // Whole words leave the key position where it started.
  for (size_t j = 0; i < size; ++i, ++j) {
    dst[i] = static_cast<char>(src[i] ^ rotated[j]);
  }
  return (offset + size) & 3;
}

} // namespace pounce::http::websocket
