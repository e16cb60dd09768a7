#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

// Byte tests on eight bytes at a time ("SIMD within a register"). Each function returns a
// word with the top bit set in exactly the bytes that pass the test and every other bit
// clear: no carry or borrow crosses from one byte into the next, so the answer is exact per
// byte and can be counted ((mask >> 7) * kOnes >> 56) or tested against zero.

namespace pounce::swar {

inline constexpr uint64_t kOnes = 0x0101010101010101ULL;
inline constexpr uint64_t kHighs = 0x8080808080808080ULL;
inline constexpr uint64_t kLow7 = 0x7f7f7f7f7f7f7f7fULL;

// Bytes whose low seven bits are below 0x20 or equal 0x7f: the ASCII controls and DEL, and
// also their images at 0x80-0x9f and 0xff (and `& ~w` drops those when only ASCII counts).
constexpr uint64_t controlOrDel(uint64_t w) {
  const uint64_t low = w & kLow7;
  const uint64_t control = ~(low + kOnes * 0x60) & kHighs; // 0x60 + low sets bit 7 iff low >= 0x20
  const uint64_t del = (low + kOnes) & kHighs;             // 0x01 + low sets bit 7 iff low == 0x7f
  return control | del;
}

// Bytes equal to `c`.
constexpr uint64_t equalTo(uint64_t w, unsigned char c) {
  const uint64_t x = w ^ (kOnes * c); // zero exactly in the bytes equal to c
  return ~(((x & kLow7) + kLow7) | x) & kHighs;
}

// Bytes at or above 0x80.
constexpr uint64_t nonAscii(uint64_t w) { return w & kHighs; }

// Whether `test` (one of the word tests above, or an OR of them) flags any of the `n` bytes
// at `d`, reading whole words only: the last word overlaps the one before it, and a string
// shorter than a word is read as overlapping pieces in a word filled with `pad` (a byte
// `test` must not flag). No byte is tested one at a time, so short strings cost about as
// much as one word.
template <class Test>
inline bool anyByte(const char* d, size_t n, unsigned char pad, Test test) {
  if (n >= 8) {
    uint64_t w;
    for (size_t i = 0; i + 8 < n; i += 8) {
      std::memcpy(&w, d + i, 8);
      if (test(w) != 0) {
        return true;
      }
    }
    std::memcpy(&w, d + n - 8, 8);
    return test(w) != 0;
  }
  uint64_t w = kOnes * pad;
  if (n >= 4) {
    uint32_t head;
    uint32_t tail;
    std::memcpy(&head, d, 4);
    std::memcpy(&tail, d + n - 4, 4);
    w = head | (static_cast<uint64_t>(tail) << 32);
  } else if (n > 0) {
    // Bytes 0, n/2 and n-1 cover every byte of a string of 1 to 3.
    w = (w & ~uint64_t{0xffffff}) | static_cast<unsigned char>(d[0]) |
        (static_cast<uint64_t>(static_cast<unsigned char>(d[n / 2])) << 8) |
        (static_cast<uint64_t>(static_cast<unsigned char>(d[n - 1])) << 16);
  }
  return test(w) != 0;
}

} // namespace pounce::swar
