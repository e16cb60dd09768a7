#include "source/common/strings.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

namespace pounce {

bool parseUint(std::string_view text, uint64_t& out) {
  if (text.empty()) {
    return false;
  }
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') {
      return false;
    }
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  if (text.size() > 19) {
    // Up to 19 digits cannot overflow 64 bits; longer ones (leading zeros, or too large)
    // take the checked conversion.
    auto r = std::from_chars(text.data(), text.data() + text.size(), value);
    if (r.ec != std::errc()) {
      return false;
    }
  }
  out = value;
  return true;
}

bool parseInt(std::string_view text, int64_t& out) {
  if (text.empty()) {
    return false;
  }
  auto r = std::from_chars(text.data(), text.data() + text.size(), out);
  return r.ec == std::errc() && r.ptr == text.data() + text.size();
}

bool parseDouble(std::string_view text, double& out) {
  if (text.empty() || text.size() > 64) {
    return false;
  }
  const std::string s(text);
  char* end = nullptr;
  out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size() && std::isfinite(out);
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (true) {
    const size_t next = s.find(sep, pos);
    if (next == std::string_view::npos) {
      out.push_back(s.substr(pos));
      return out;
    }
    out.push_back(s.substr(pos, next - pos));
    pos = next + 1;
  }
}

std::string escapeForLog(std::string_view s, size_t max) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(std::min(s.size(), max) + 8);
  for (size_t i = 0; i < s.size() && i < max; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c > 0x7e || c == '\\') {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > max) {
    out += "...";
  }
  return out;
}

std::string toLower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c + 32);
    }
  }
  return out;
}

} // namespace pounce
