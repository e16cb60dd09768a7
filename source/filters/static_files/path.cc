#include "source/filters/static_files/path.h"

#include "source/common/strings.h"

namespace pounce::filters::static_files {

namespace {

// RFC 3986 pchar minus '%': unreserved, sub-delims, ':' and '@'.
bool isPathChar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
    return true;
  }
  switch (c) {
  case '-':
  case '.':
  case '_':
  case '~':
  case '!':
  case '$':
  case '&':
  case '\'':
  case '(':
  case ')':
  case '*':
  case '+':
  case ',':
  case ';':
  case '=':
  case ':':
  case '@':
  case '/':
    return true;
  default:
    return false;
  }
}

} // namespace

bool decodePath(std::string_view raw, std::string& out) {
  out.clear();
  out.reserve(raw.size());
  bool clean = true;
  for (size_t i = 0; i < raw.size(); ++i) {
    const char c = raw[i];
    if (c == '%') {
      const int h = i + 1 < raw.size() ? hexDigitValue(raw[i + 1]) : -1;
      const int l = i + 2 < raw.size() ? hexDigitValue(raw[i + 2]) : -1;
      if (h < 0 || l < 0) {
        clean = false;
        out += c;
        continue;
      }
      const char d = static_cast<char>(h * 16 + l);
      if (d == '/' || d == '\\' || d == '\0') {
        clean = false;
      }
      out += d;
      i += 2;
      continue;
    }
    if (c == '\\' || c == '\0') {
      clean = false;
    }
    out += c;
  }
  return clean;
}

PathVerdict relativePath(std::string_view below_mount, bool serve_dotfiles, std::string& out) {
  out.clear();
  PathVerdict verdict = PathVerdict::Ok;
  size_t pos = 0;
  while (pos <= below_mount.size()) {
    size_t slash = below_mount.find('/', pos);
    if (slash == std::string_view::npos) {
      slash = below_mount.size();
    }
    const std::string_view segment = below_mount.substr(pos, slash - pos);
    pos = slash + 1;
    if (segment.empty() || segment == ".") {
      continue;
    }
    if (segment == "..") {
      return PathVerdict::Traversal;
    }
    if (segment[0] == '.' && !serve_dotfiles && segment != ".well-known") {
      // Keep looking: a later ".." is still a traversal attempt.
      verdict = PathVerdict::Hidden;
    }
    if (!out.empty()) {
      out += '/';
    }
    out.append(segment.data(), segment.size());
  }
  return verdict;
}

void appendEncodedPath(std::string& out, std::string_view path) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (char ch : path) {
    const auto c = static_cast<unsigned char>(ch);
    if (isPathChar(c)) {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
}

} // namespace pounce::filters::static_files
