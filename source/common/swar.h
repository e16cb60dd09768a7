#pragma once

#include <cstdint>

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

} // namespace pounce::swar
