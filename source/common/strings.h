#pragma once

#include <charconv>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "absl/strings/string_view.h"

namespace pounce {

namespace detail {
inline void appendPiece(std::string& out, std::string_view s) { out.append(s.data(), s.size()); }
inline void appendPiece(std::string& out, const char* s) { out.append(s); }
inline void appendPiece(std::string& out, absl::string_view s) { out.append(s.data(), s.size()); }
inline void appendPiece(std::string& out, const std::string& s) { out.append(s); }
inline void appendPiece(std::string& out, char c) { out.push_back(c); }
template <class T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, char> &&
                                        !std::is_same_v<T, bool>,
                                    int> = 0>
void appendPiece(std::string& out, T v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, r.ptr);
}
inline void appendPiece(std::string& out, bool b) { out.append(b ? "true" : "false"); }

// An upper bound of what appendPiece appends, so a concatenation allocates once.
inline size_t pieceSize(std::string_view s) { return s.size(); }
inline size_t pieceSize(const char* s) { return std::char_traits<char>::length(s); }
inline size_t pieceSize(absl::string_view s) { return s.size(); }
inline size_t pieceSize(const std::string& s) { return s.size(); }
inline size_t pieceSize(char) { return 1; }
template <class T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, char> &&
                                        !std::is_same_v<T, bool>,
                                    int> = 0>
constexpr size_t pieceSize(T) {
  return std::numeric_limits<T>::digits10 + 2; // every digit, and a sign
}
inline size_t pieceSize(bool) { return 5; }
} // namespace detail

// Appends strings, string_views, chars and integers (in decimal) to `out`, growing it at
// most once.
template <class... Args>
void appendCat(std::string& out, const Args&... args) {
  out.reserve(out.size() + (detail::pieceSize(args) + ... + 0));
  (detail::appendPiece(out, args), ...);
}

// Concatenates strings, string_views, chars and integers in one allocation.
template <class... Args>
std::string cat(const Args&... args) {
  std::string out;
  appendCat(out, args...);
  return out;
}

// Strict unsigned decimal: digits only, no sign, no spaces, no overflow.
bool parseUint(std::string_view text, uint64_t& out);
bool parseInt(std::string_view text, int64_t& out);
bool parseDouble(std::string_view text, double& out);

std::string_view trim(std::string_view s);
std::vector<std::string_view> split(std::string_view s, char sep);
std::string toLower(std::string_view s);
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
