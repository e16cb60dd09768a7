#include "source/http/http1/parser.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "source/common/byte_set.h"
#include "source/common/strings.h"

namespace pounce::http::http1 {

namespace {

// --- byte classes -------------------------------------------------------------------------

// A field name byte (RFC 9110 tchar) as it is stored: lowercase; 0 for any other byte.
constexpr std::array<char, 256> kNameByte = [] {
  std::array<char, 256> table{};
  for (int c = 0; c < 256; ++c) {
    const bool tchar =
        (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
        std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
    if (tchar) {
      table[c] = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
  }
  return table;
}();

constexpr bool isMethodByte(char c) { return (c >= 'A' && c <= 'Z') || c == '-' || c == '_'; }
constexpr size_t kMaxMethod = 32;

// Both scans below stop at a byte every line has (the CR of its CRLF, or the SP after a
// request target), and read in blocks of 16: the bytes they are given lie in a header
// map's copy, which has HeaderMap::kScanPadding readable bytes past its end.

// The first byte from `p` on that no field value may hold: a control byte other than HTAB,
// or DEL. On a well-formed line that is the line's CR.
inline const char* fieldValueEnd(const char* p) {
#if defined(__SSE2__)
  const __m128i k1f = _mm_set1_epi8(0x1f);
  for (;; p += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i control = _mm_or_si128(_mm_cmpeq_epi8(_mm_min_epu8(v, k1f), v),
                                         _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f)));
    const __m128i bad = _mm_andnot_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('\t')), control);
    if (const auto mask = static_cast<unsigned>(_mm_movemask_epi8(bad)); mask != 0) {
      return p + std::countr_zero(mask);
    }
  }
#else
  for (;; ++p) {
    const auto c = static_cast<unsigned char>(*p);
    if ((c < 0x20 && c != '\t') || c == 0x7f) {
      return p;
    }
  }
#endif
}

// The first byte from `p` on that a request target may not hold: anything but visible
// ASCII, and '#' (a fragment is never sent). On a well-formed line that is the SP after it.
inline const char* targetEnd(const char* p) {
#if defined(__SSE2__)
  for (;; p += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    // A signed "less than '!'" holds for 0x00-0x20 and for every byte from 0x80.
    const __m128i bad = _mm_or_si128(_mm_cmplt_epi8(v, _mm_set1_epi8('!')),
                                     _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f)),
                                                  _mm_cmpeq_epi8(v, _mm_set1_epi8('#'))));
    if (const auto mask = static_cast<unsigned>(_mm_movemask_epi8(bad)); mask != 0) {
      return p + std::countr_zero(mask);
    }
  }
#else
  for (;; ++p) {
    const auto c = static_cast<unsigned char>(*p);
    if (c <= 0x20 || c >= 0x7f || c == '#') {
      return p;
    }
  }
#endif
}

inline bool isOws(char c) { return c == ' ' || c == '\t'; }

// --- field lines --------------------------------------------------------------------------

// Parses field lines from `p` up to and including the empty line that ends them, into
// `map`, whose bytes start at `base` (from assignBytes). `on_field(name, value)` sees each
// field after it is added and may refuse the request.
template <class OnField>
ParseError parseFieldLines(char* base, char*& p, const CodecLimits& limits, uint32_t& count,
                           HeaderMap& map, OnField on_field) {
  while (*p != '\r') {
    char* const name = p;
    // Lowercase the name where it lies; the first byte that is no tchar must be the colon
    // (a space before it, or no colon at all, is refused).
    while (const char lower = kNameByte[static_cast<unsigned char>(*p)]) {
      *p++ = lower;
    }
    if (p == name || *p != ':') {
      return {400, "invalid header name"};
    }
    const auto name_len = static_cast<uint32_t>(p - name);
    ++p;
    while (isOws(*p)) {
      ++p;
    }
    const char* const value = p;
    p = const_cast<char*>(fieldValueEnd(p));
    if (*p != '\r') {
      return {400, "invalid character in header value"};
    }
    const char* value_end = p;
    while (value_end > value && isOws(value_end[-1])) {
      --value_end;
    }
    p += 2; // CRLF (the scanner saw to it that an LF follows every CR)
    if (++count > limits.max_headers) {
      return {431, "too many headers"};
    }
    map.addAt(static_cast<uint32_t>(name - base), name_len, static_cast<uint32_t>(value - base),
              static_cast<uint32_t>(value_end - value));
    if (const ParseError error = on_field(std::string_view(name, name_len),
                                          std::string_view(value, value_end - value))) {
      return error;
    }
  }
  p += 2;
  return {};
}

// The comma-separated elements of a field value, without surrounding whitespace; empty
// elements are skipped.
template <class Fn>
void forEachElement(std::string_view list, Fn fn) {
  size_t pos = 0;
  while (pos < list.size()) {
    size_t comma = list.find(',', pos);
    if (comma == std::string_view::npos) {
      comma = list.size();
    }
    std::string_view element = list.substr(pos, comma - pos);
    while (!element.empty() && isOws(element.front())) {
      element.remove_prefix(1);
    }
    while (!element.empty() && isOws(element.back())) {
      element.remove_suffix(1);
    }
    if (!element.empty()) {
      fn(element);
    }
    pos = comma + 1;
  }
}

bool nameIs(std::string_view name, std::string_view known) {
  return name.size() == known.size() && std::memcmp(name.data(), known.data(), known.size()) == 0;
}

// --- parseRequestHead ---------------------------------------------------------------------

bool startsWithIgnoreCase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && equalsIgnoreCase(s.substr(0, prefix.size()), prefix);
}

// absolute-form (RFC 9112 §3.2.2), "http://host:port/path?query": the path and query become
// the request's path ("/" when the URI has none) and `authority` its host.
ParseError parseAbsoluteForm(std::string_view target, RequestHeaders& headers,
                             std::string_view& authority) {
  std::string_view rest;
  if (startsWithIgnoreCase(target, "http://")) {
    rest = target.substr(7);
  } else if (startsWithIgnoreCase(target, "https://")) {
    rest = target.substr(8);
  } else {
    return {400, "invalid request target"};
  }
  const size_t end = rest.find_first_of("/?");
  authority = rest.substr(0, end);
  if (authority.empty() || !isValidHost(authority)) {
    return {400, "invalid authority in the request target"};
  }
  if (end == std::string_view::npos) {
    headers.setPath("/");
  } else if (rest[end] == '?') {
    headers.setPath("/");
    headers.appendPath(rest.substr(end));
  } else {
    headers.setPath(rest.substr(end));
  }
  return {};
}

} // namespace

ParseError parseRequestHead(std::string_view head, const CodecLimits& limits, RequestHead& out) {
  out.headers = std::make_unique<RequestHeaders>();
  RequestHeaders& headers = *out.headers;
  char* const base = headers.assignBytes(head);
  char* p = base;

  // Empty lines before the request line are ignored (RFC 9112 §2.2).
  while (p[0] == '\r') {
    p += 2;
  }

  // method SP
  const char* const method = p;
  while (isMethodByte(*p)) {
    ++p;
  }
  const auto method_len = static_cast<size_t>(p - method);
  if (method_len == 0 || method_len > kMaxMethod || *p != ' ') {
    return {400, "invalid request method"};
  }
  const std::string_view method_view(method, method_len);
  headers.setMethod(method_view);
  if (method_view == "CONNECT") {
    return {501, "CONNECT is not supported"};
  }
  out.is_head = method_view == "HEAD";
  ++p;

  // request-target SP
  const char* const target = p;
  p = const_cast<char*>(targetEnd(p));
  const auto target_len = static_cast<size_t>(p - target);
  if (*p != ' ') {
    return {400, "invalid character in request target"};
  }
  if (target_len > limits.max_uri_bytes) {
    return {414, "request target too long"};
  }
  const std::string_view target_view(target, target_len);
  // The authority of an absolute-form target, which the server uses instead of Host.
  std::string_view target_authority;
  if (target_len > 0 && target[0] == '/') {
    headers.setPath(target_view); // origin-form, nearly every request
  } else if (target_view == "*") {
    if (method_view != "OPTIONS") { // asterisk-form is for OPTIONS only (RFC 9112 §3.2.4)
      return {400, "invalid request target"};
    }
    headers.setPath(target_view);
  } else {
    const ParseError e = parseAbsoluteForm(target_view, headers, target_authority);
    if (e) {
      return e;
    }
  }
  ++p;

  // HTTP-version CRLF: "HTTP/" DIGIT "." DIGIT
  if (std::memcmp(p, "HTTP/", 5) != 0 || p[5] < '0' || p[5] > '9' || p[6] != '.' || p[7] < '0' ||
      p[7] > '9' || p[8] != '\r') {
    return {400, "invalid HTTP version"};
  }
  if (p[5] != '1') {
    return {505, "unsupported HTTP version"};
  }
  out.protocol = p[7] == '0' ? Protocol::Http10 : Protocol::Http11;
  headers.setProtocol(out.protocol == Protocol::Http10 ? "HTTP/1.0" : "HTTP/1.1");
  p += 10;

  // The fields, and what the framing rules need of them.
  int host_count = 0;
  int content_length_count = 0;
  std::string_view content_length;
  bool has_transfer_encoding = false;
  int chunked_count = 0;
  bool chunked_last = false;
  bool other_coding = false;
  bool connection_close = false;
  bool connection_keep_alive = false;
  bool connection_upgrade = false;
  bool has_upgrade = false;
  const ParseError error = parseFieldLines(
      base, p, limits, out.field_count, headers,
      [&](std::string_view name, std::string_view value) -> ParseError {
        switch (name.size()) {
        case 2:
          if (nameIs(name, "te")) {
            forEachElement(value, [&](std::string_view e) {
              out.accepts_trailers = out.accepts_trailers || equalsIgnoreCase(e, "trailers");
            });
          }
          break;
        case 4:
          if (nameIs(name, "host")) {
            ++host_count;
            if (!isValidHost(value)) {
              return {400, "invalid Host header"};
            }
          }
          break;
        case 6:
          if (nameIs(name, "expect")) {
            if (!equalsIgnoreCase(value, "100-continue")) {
              return {417, "unsupported expectation"};
            }
            out.expect_continue = out.protocol == Protocol::Http11;
          }
          break;
        case 7:
          has_upgrade = has_upgrade || nameIs(name, "upgrade");
          break;
        case 10:
          if (nameIs(name, "connection")) {
            forEachElement(value, [&](std::string_view e) {
              connection_close = connection_close || equalsIgnoreCase(e, "close");
              connection_keep_alive = connection_keep_alive || equalsIgnoreCase(e, "keep-alive");
              connection_upgrade = connection_upgrade || equalsIgnoreCase(e, "upgrade");
            });
          }
          break;
        case 14:
          if (nameIs(name, "content-length")) {
            ++content_length_count;
            content_length = value;
          }
          break;
        case 17:
          if (nameIs(name, "transfer-encoding")) {
            has_transfer_encoding = true;
            // Every coding in every field counts, in order: only one "chunked", and last.
            forEachElement(value, [&](std::string_view coding) {
              if (equalsIgnoreCase(coding, "chunked")) {
                ++chunked_count;
                chunked_last = true;
              } else {
                other_coding = true;
                chunked_last = false;
              }
            });
          }
          break;
        default:
          break;
        }
        return {};
      });
  if (error) {
    return error;
  }
  out.fields_read = true;

  if (host_count > 1 || (host_count == 0 && out.protocol == Protocol::Http11)) {
    return {400, host_count > 1 ? "more than one Host header" : "missing Host header"};
  }
  if (!target_authority.empty()) {
    // RFC 9112 §3.2.2: the target's authority, not Host, names the host. (Both copy the
    // view, which points into the map's bytes, before the map changes.)
    headers.setAuthority(target_authority);
    headers.set("host", target_authority);
  }
  if (content_length_count > 1) {
    return {400, "more than one Content-Length header"};
  }
  if (has_transfer_encoding) {
    if (content_length_count > 0) {
      return {400, "both Content-Length and Transfer-Encoding"};
    }
    if (out.protocol == Protocol::Http10) {
      return {400, "Transfer-Encoding in an HTTP/1.0 request"};
    }
    if (chunked_count != 1 || !chunked_last) {
      return {400, "invalid Transfer-Encoding"};
    }
    if (other_coding) {
      return {501, "unsupported transfer coding"};
    }
    out.chunked = true;
  }
  if (content_length_count == 1) {
    uint64_t length = 0;
    if (!parseUint(content_length, length)) {
      return {400, "invalid Content-Length"};
    }
    if (length > limits.max_request_bytes) {
      return {413, "request body too large"};
    }
    out.content_length = length;
  }
  out.keep_alive = out.protocol == Protocol::Http11 ? !connection_close
                                                    : connection_keep_alive && !connection_close;
  out.upgrade = has_upgrade && connection_upgrade && !out.chunked && out.content_length == 0;
  return {};
}

ParseError parseTrailers(std::string_view lines, const CodecLimits& limits, uint32_t& field_count,
                         HeaderMap& trailers) {
  // The same field-line rules as the head, so the lines get the empty line that ends them.
  std::string section;
  section.reserve(lines.size() + 2);
  section.append(lines.data(), lines.size());
  section += "\r\n";
  char* const base = trailers.assignBytes(section);
  char* p = base;
  return parseFieldLines(base, p, limits, field_count, trailers,
                         [](std::string_view, std::string_view) { return ParseError{}; });
}

// --- HeadScanner --------------------------------------------------------------------------

namespace {

// Bit i set: base[from + i] (i < 16, from + i < size) is a LF, CR or NUL. Reads no byte at
// or past `size`: a block that would is read as the last 16 bytes, shifted into place.
unsigned lineBytesAt(const char* base, size_t from, size_t size) {
#if defined(__SSE2__)
  if (size >= 16) {
    const size_t at = std::min(from, size - 16);
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(base + at));
    const __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('\n')),
                                                  _mm_cmpeq_epi8(v, _mm_set1_epi8('\r'))),
                                     _mm_cmpeq_epi8(v, _mm_setzero_si128()));
    return static_cast<unsigned>(_mm_movemask_epi8(hit)) >> (from - at);
  }
#endif
  unsigned mask = 0;
  for (size_t i = 0; i < 16 && from + i < size; ++i) {
    const char c = base[from + i];
    if (c == '\n' || c == '\r' || c == '\0') {
      mask |= 1u << i;
    }
  }
  return mask;
}

} // namespace

HeadScanner::Result HeadScanner::scan(std::string_view data, uint32_t max_head_bytes,
                                      uint32_t max_request_line) {
  Result r;
  auto error = [&](int status, const char* details) {
    r.kind = Result::Kind::Error;
    r.status = status;
    r.details = details;
    return r;
  };
  const char* base = data.data();
  const size_t size = data.size();
  auto folded = [&](size_t at) { // a header line that starts with SP or HTAB
    return seen_request_line_ && (base[at] == ' ' || base[at] == '\t');
  };
  if (pos_ < size && pos_ == line_start_ && folded(pos_)) {
    return error(400, "obsolete line folding in request head");
  }
  // Only the LF, CR and NUL bytes are visited, found 16 bytes at a time. Per line: a NUL is
  // an error at once; a CR not followed by LF is one (reported after a bare LF of the same
  // line); the line's LF must follow a CR of the line.
  bool bare_cr = false;
  for (size_t block = pos_; block < size; block += 16) {
    for (unsigned mask = lineBytesAt(base, block, size); mask != 0; mask &= mask - 1) {
      const size_t at = block + static_cast<size_t>(std::countr_zero(mask));
      const char c = base[at];
      if (c == '\0') {
        return error(400, "NUL byte in request head");
      }
      if (c == '\r') {
        if (at + 1 < size && base[at + 1] != '\n') {
          bare_cr = true;
        }
        continue;
      }
      if (at == line_start_ || base[at - 1] != '\r') {
        return error(400, "bare LF in request head");
      }
      if (bare_cr) {
        return error(400, "bare CR in request head");
      }
      const size_t line_length = at - 1 - line_start_;
      if (!seen_request_line_ && line_length > max_request_line) {
        return error(414, "request target too long");
      }
      if (at + 1 > max_head_bytes) {
        return error(431, "request head too large");
      }
      pos_ = at + 1;
      if (line_length == 0) {
        if (seen_request_line_) {
          r.kind = Result::Kind::Complete;
          r.head_length = pos_;
          return r;
        }
        // Empty lines before the request line are ignored (RFC 9112 §2.2).
      } else {
        seen_request_line_ = true;
      }
      line_start_ = pos_;
      if (pos_ < size && folded(pos_)) {
        return error(400, "obsolete line folding in request head");
      }
    }
  }
  if (pos_ >= size) {
    return r;
  }
  // An incomplete line; a CR as its last byte is checked again when the LF arrives.
  if (bare_cr) {
    return error(400, "bare CR in request head");
  }
  pos_ = base[size - 1] == '\r' ? size - 1 : size;
  if (!seen_request_line_ && pos_ - line_start_ > max_request_line) {
    return error(414, "request target too long");
  }
  if (size > max_head_bytes) {
    return error(431, "request head too large");
  }
  return r;
}

// --- ChunkDecoder -------------------------------------------------------------------------

int64_t ChunkDecoder::decode(std::string_view in, std::string_view& data) {
  data = {};
  size_t i = 0;
  while (i < in.size() && state_ != State::Done) {
    const char c = in[i];
    switch (state_) {
    case State::SizeStart: {
      const int v = hexDigitValue(c);
      if (v < 0) {
        return -1;
      }
      size_ = static_cast<uint64_t>(v);
      digits_ = 1;
      state_ = State::Size;
      break;
    }
    case State::Size: {
      const int v = hexDigitValue(c);
      if (v >= 0) {
        // At most 15 significant digits (sizes below 2^60), after any number of leading
        // zeros within a size line of 64 digits.
        if (++digits_ > 64 || size_ >= (uint64_t{1} << 56)) {
          return -1;
        }
        size_ = size_ * 16 + static_cast<uint64_t>(v);
      } else if (c == ';') {
        digits_ = 0;
        state_ = State::Ext;
      } else if (c == ' ' || c == '\t') {
        state_ = State::SizeWs;
      } else if (c == '\r') {
        state_ = State::SizeLf;
      } else {
        return -1;
      }
      break;
    }
    case State::SizeWs:
      if (c == ';') {
        digits_ = 0;
        state_ = State::Ext;
      } else if (c != ' ' && c != '\t') {
        return -1;
      }
      break;
    case State::Ext: {
      const auto u = static_cast<unsigned char>(c);
      if (c == '\r') {
        state_ = State::SizeLf;
      } else if ((u < 0x20 && c != '\t') || u == 0x7f || ++digits_ > 4096) {
        return -1;
      }
      break;
    }
    case State::SizeLf:
      if (c != '\n') {
        return -1;
      }
      state_ = size_ == 0 ? State::TrailerStart : State::Data;
      break;
    case State::Data: {
      const auto take = static_cast<size_t>(std::min<uint64_t>(size_, in.size() - i));
      data = in.substr(i, take);
      size_ -= take;
      if (size_ == 0) {
        state_ = State::DataCr;
      }
      return static_cast<int64_t>(i + take);
    }
    case State::DataCr:
      if (c != '\r') {
        return -1;
      }
      state_ = State::DataLf;
      break;
    case State::DataLf:
      if (c != '\n') {
        return -1;
      }
      state_ = State::SizeStart;
      break;
    case State::TrailerStart:
      if (c == '\r') {
        state_ = State::FinalLf;
      } else if (c == ' ' || c == '\t' || c == '\n' || c == '\0') {
        return -1; // obs-fold, a bare LF or a NUL
      } else {
        state_ = State::Trailer;
        trailers_ += c;
      }
      break;
    case State::Trailer:
      if (c == '\r') {
        state_ = State::TrailerLf;
      } else if (c == '\n' || c == '\0') {
        return -1;
      } else {
        trailers_ += c;
      }
      break;
    case State::TrailerLf:
      if (c != '\n') {
        return -1;
      }
      trailers_ += "\r\n";
      state_ = State::TrailerStart;
      break;
    case State::FinalLf:
      if (c != '\n') {
        return -1;
      }
      state_ = State::Done;
      break;
    case State::Done:
      break;
    }
    ++i;
  }
  return static_cast<int64_t>(i);
}

} // namespace pounce::http::http1
