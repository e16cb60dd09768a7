#pragma once

#include <charconv>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "absl/strings/string_view.h"

namespace pounce {

namespace detail {
// One piece of a concatenation as text: strings by reference, integers and chars formatted
// into the piece itself. Lives only as a temporary inside cat()/appendCat().
class Piece {
public:
  Piece(std::string_view s) : view_(s) {}
  Piece(absl::string_view s) : view_(s.data(), s.size()) {}
  Piece(const std::string& s) : view_(s) {}
  Piece(const char* s) : view_(s) {}
  Piece(char c) : view_(buf_, 1) { buf_[0] = c; }
  Piece(bool b) : view_(b ? "true" : "false") {}
  template <class T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, char> &&
                                          !std::is_same_v<T, bool>,
                                      int> = 0>
  Piece(T v) {
    const auto r = std::to_chars(buf_, buf_ + sizeof(buf_), v);
    view_ = std::string_view(buf_, static_cast<size_t>(r.ptr - buf_));
  }
  Piece(const Piece&) = delete;
  Piece& operator=(const Piece&) = delete;

  std::string_view view() const { return view_; }

private:
  std::string_view view_;
  char buf_[24]; // the decimal form of any 64-bit integer, with its sign
};

} // namespace detail

// Appends strings, string_views, chars, bools and integers (in decimal) to `out`, growing
// it at most once. Inlined, so literal pieces are copied with their lengths known.
template <class... Args>
[[gnu::always_inline]] inline void appendCat(std::string& out, const Args&... args) {
  static_assert(sizeof...(Args) > 0, "nothing to append");
  const detail::Piece pieces[] = {args...};
  size_t total = 0;
  for (const detail::Piece& p : pieces) {
    total += p.view().size();
  }
  const size_t start = out.size();
  out.resize(start + total);
  char* dst = out.data() + start;
  const auto put = [&dst](const detail::Piece& p) {
    std::memcpy(dst, p.view().data(), p.view().size());
    dst += p.view().size();
  };
  size_t i = 0;
  (((void)sizeof(Args), put(pieces[i++])), ...); // one copy per piece, not a loop
}

// Concatenates strings, string_views, chars, bools and integers in one allocation.
template <class... Args>
[[gnu::always_inline]] inline std::string cat(const Args&... args) {
  std::string out;
  appendCat(out, args...);
  return out;
}

// Strict unsigned decimal: digits only, no sign, no spaces, no overflow.
bool parseUint(std::string_view text, uint64_t& out);
bool parseInt(std::string_view text, int64_t& out);
bool parseDouble(std::string_view text, double& out);

// `s` without leading and trailing spaces, tabs, CRs and LFs.
inline std::string_view trim(std::string_view s) {
  const auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!s.empty() && blank(s.front())) {
    s.remove_prefix(1);
  }
  while (!s.empty() && blank(s.back())) {
    s.remove_suffix(1);
  }
  return s;
}
std::vector<std::string_view> split(std::string_view s, char sep);
std::string toLower(std::string_view s);
// At most `max` bytes of `s` for a log line: control bytes, '\\' and bytes over 0x7e written
// as \xHH (\r, \n and \t by name), and "..." when cut. Text a client or an app chose
// cannot start a log line of its own or put raw bytes in the log.
std::string escapeForLog(std::string_view s, size_t max = 64);
namespace detail {
// `n` bytes, `sizeof(Word)` <= n <= 2 * sizeof(Word), as two words that may overlap.
template <class Word>
inline void copyTwoWords(char* dst, const char* src, size_t n) {
  Word head;
  Word tail;
  std::memcpy(&head, src, sizeof(Word));
  std::memcpy(&tail, src + n - sizeof(Word), sizeof(Word));
  std::memcpy(dst, &head, sizeof(Word));
  std::memcpy(dst + n - sizeof(Word), &tail, sizeof(Word));
}
} // namespace detail

// memcpy for the short copies of header names and values: up to 16 bytes with two
// overlapping loads and stores instead of a call into libc; longer copies call memcpy.
// The ranges must not overlap.
inline void copyBytes(char* dst, const char* src, size_t n) {
  if (n > 16) {
    std::memcpy(dst, src, n);
  } else if (n >= 8) {
    detail::copyTwoWords<uint64_t>(dst, src, n);
  } else if (n >= 4) {
    detail::copyTwoWords<uint32_t>(dst, src, n);
  } else {
    for (size_t i = 0; i < n; ++i) {
      dst[i] = src[i];
    }
  }
}

inline bool startsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}
// The value of one hexadecimal digit (either case), or -1.
constexpr int hexDigitValue(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

} // namespace pounce
