#pragma once

#include <cstddef>
#include <functional>
#include <string_view>

namespace pounce {

// A set of byte values built at compile time (token characters, bytes a field may not
// hold, bytes a log line escapes). Membership is one table read; whole strings are tested
// four bytes at a time with the table bits combined and no branch per byte, because the
// answer the hot paths expect (every byte fine) needs every byte read anyway.
class ByteSet {
public:
  // The bytes for which `in(c)` holds.
  template <class Pred>
  static constexpr ByteSet of(Pred in) {
    ByteSet set;
    for (int c = 0; c < 256; ++c) {
      set.in_[c] = in(static_cast<unsigned char>(c));
    }
    return set;
  }

  constexpr bool has(unsigned char c) const { return in_[c]; }

  // Every byte of `s` is in the set (true for an empty `s`).
  bool hasAll(std::string_view s) const { return fold(s, true, std::bit_and<>()); }
  // Some byte of `s` is in the set.
  bool hasAny(std::string_view s) const { return fold(s, false, std::bit_or<>()); }

private:
  // The table entries of every byte of `s` combined with `op` (& or |), four at a time,
  // without a branch per byte.
  template <class Op>
  bool fold(std::string_view s, bool result, Op op) const {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const size_t n = s.size();
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
      result = op(result, op(op(in_[p[i]], in_[p[i + 1]]), op(in_[p[i + 2]], in_[p[i + 3]])));
    }
    for (; i < n; ++i) {
      result = op(result, in_[p[i]]);
    }
    return result;
  }

  bool in_[256] = {};
};

} // namespace pounce
