#include "source/http/headers.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "source/common/byte_set.h"
#include "source/common/swar.h"

namespace pounce::http {

namespace {

inline char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

// RFC 9110 tchar.
constexpr ByteSet kToken = ByteSet::of([](unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
});

} // namespace

bool HeaderMap::pointsInside(std::string_view bytes) const {
  return !bytes.empty() && bytes.data() >= storage_.data() &&
         bytes.data() < storage_.data() + storage_.size();
}

void HeaderBytes::grow(size_t need) {
  size_t capacity = std::max<size_t>(capacity_ * 2, 512);
  while (capacity < need) {
    capacity *= 2;
  }
  std::unique_ptr<char[]> bigger(new char[capacity]);
  if (size_ != 0) {
    std::memcpy(bigger.get(), data_.get(), size_);
  }
  data_ = std::move(bigger);
  capacity_ = capacity;
}

uint32_t HeaderMap::append(std::string_view bytes) {
  const auto off = static_cast<uint32_t>(storage_.size());
  if (pointsInside(bytes)) {
    const std::string copy(bytes);
    storage_.append(copy.data(), copy.size());
  } else {
    storage_.append(bytes.data(), bytes.size());
  }
  return off;
}

void HeaderMap::add(std::string_view name, std::string_view value) {
  if (pointsInside(name) || pointsInside(value)) {
    // Appending may move storage_: copy first.
    const std::string n(name), v(value);
    add(n, v);
    return;
  }
  Entry e;
  e.name_off = append(name);
  e.name_len = static_cast<uint32_t>(name.size());
  for (uint32_t i = 0; i < e.name_len; ++i) {
    storage_[e.name_off + i] = lower(storage_[e.name_off + i]);
  }
  e.value_off = append(value);
  e.value_len = static_cast<uint32_t>(value.size());
  entries_.push_back(e);
}

void HeaderMap::addLowercase(std::string_view name, std::string_view value) {
  if (pointsInside(name) || pointsInside(value)) {
    const std::string n(name), v(value);
    addLowercase(n, v);
    return;
  }
  // Name and value with one capacity check (the common case of a filter adding a field).
  const auto off = static_cast<uint32_t>(storage_.size());
  char* p = storage_.prepare(name.size() + value.size());
  copyBytes(p, name.data(), name.size());
  copyBytes(p + name.size(), value.data(), value.size());
  storage_.commit(name.size() + value.size());
  entries_.push_back(Entry{off, static_cast<uint32_t>(name.size()),
                           off + static_cast<uint32_t>(name.size()),
                           static_cast<uint32_t>(value.size())});
}

char* HeaderMap::assignBytes(std::string_view bytes) {
  entries_.clear();
  storage_.clear();
  char* p = storage_.prepare(bytes.size() + kScanPadding);
  if (!bytes.empty()) {
    std::memcpy(p, bytes.data(), bytes.size());
  }
  std::memset(p + bytes.size(), 0, kScanPadding);
  storage_.commit(bytes.size());
  return p;
}

void HeaderMap::appendToLastName(std::string_view more) {
  // Names arrive before values, so the last name is at the end of storage.
  Entry& e = entries_.back();
  const uint32_t off = append(more);
  for (uint32_t i = 0; i < more.size(); ++i) {
    storage_[off + i] = lower(storage_[off + i]);
  }
  e.name_len += static_cast<uint32_t>(more.size());
  e.value_off = static_cast<uint32_t>(storage_.size());
}

void HeaderMap::appendToLastValue(std::string_view more) {
  Entry& e = entries_.back();
  append(more);
  e.value_len += static_cast<uint32_t>(more.size());
}

void HeaderMap::set(std::string_view name, std::string_view value) {
  std::string lname(name);
  for (auto& c : lname) {
    c = lower(c);
  }
  // Keep the value alive if it points into this map.
  const std::string v(value);
  remove(lname);
  addLowercase(lname, v);
}

size_t HeaderMap::remove(std::string_view name) {
  const size_t before = entries_.size();
  entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                [&](const Entry& e) {
                                  return equalsIgnoreCase(
                                      std::string_view(storage_.data() + e.name_off, e.name_len),
                                      name);
                                }),
                 entries_.end());
  return before - entries_.size();
}

std::optional<std::string_view> HeaderMap::get(std::string_view name) const {
  for (const Entry& e : entries_) {
    if (e.name_len == name.size() &&
        std::string_view(storage_.data() + e.name_off, e.name_len) == name) {
      return std::string_view(storage_.data() + e.value_off, e.value_len);
    }
  }
  return std::nullopt;
}

size_t HeaderMap::count(std::string_view name) const {
  size_t n = 0;
  for (const Entry& e : entries_) {
    if (e.name_len == name.size() &&
        std::string_view(storage_.data() + e.name_off, e.name_len) == name) {
      ++n;
    }
  }
  return n;
}

std::string HeaderMap::getJoined(std::string_view name) const {
  std::string storage;
  return std::string(getCombined(name, storage).value_or(std::string_view()));
}

std::optional<std::string_view> HeaderMap::getCombined(std::string_view name,
                                                       std::string& storage) const {
  std::optional<std::string_view> out;
  bool joined = false;
  for (const Entry& e : entries_) {
    if (e.name_len != name.size() ||
        std::string_view(storage_.data() + e.name_off, e.name_len) != name) {
      continue;
    }
    const std::string_view value(storage_.data() + e.value_off, e.value_len);
    if (!out || out->empty()) {
      out = value;
      continue;
    }
    if (value.empty()) {
      continue;
    }
    if (!joined) {
      storage.assign(out->data(), out->size());
      joined = true;
    }
    storage += ", ";
    storage.append(value.data(), value.size());
  }
  if (joined) {
    out = storage;
  }
  return out;
}

size_t HeaderMap::byteSize() const {
  size_t n = 0;
  for (const Entry& e : entries_) {
    n += e.name_len + e.value_len;
  }
  return n;
}

void HeaderMap::clear() {
  storage_.clear();
  entries_.clear();
}

std::string_view RequestHeaders::authority() const {
  if (!authority_.empty()) {
    return authority_;
  }
  return getOr("host");
}

std::string_view RequestHeaders::pathOnly() const {
  return std::string_view(path_).substr(0, queryAt());
}

std::string_view RequestHeaders::query() const {
  const size_t q = queryAt();
  return q == path_.size() ? std::string_view() : std::string_view(path_).substr(q + 1);
}

std::string_view reasonPhrase(int status) {
  switch (status) {
  case 100:
    return "Continue";
  case 101:
    return "Switching Protocols";
  case 103:
    return "Early Hints";
  case 200:
    return "OK";
  case 201:
    return "Created";
  case 202:
    return "Accepted";
  case 203:
    return "Non-Authoritative Information";
  case 204:
    return "No Content";
  case 205:
    return "Reset Content";
  case 206:
    return "Partial Content";
  case 207:
    return "Multi-Status";
  case 300:
    return "Multiple Choices";
  case 301:
    return "Moved Permanently";
  case 302:
    return "Found";
  case 303:
    return "See Other";
  case 304:
    return "Not Modified";
  case 307:
    return "Temporary Redirect";
  case 308:
    return "Permanent Redirect";
  case 400:
    return "Bad Request";
  case 401:
    return "Unauthorized";
  case 402:
    return "Payment Required";
  case 403:
    return "Forbidden";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 406:
    return "Not Acceptable";
  case 407:
    return "Proxy Authentication Required";
  case 408:
    return "Request Timeout";
  case 409:
    return "Conflict";
  case 410:
    return "Gone";
  case 411:
    return "Length Required";
  case 412:
    return "Precondition Failed";
  case 413:
    return "Content Too Large";
  case 414:
    return "URI Too Long";
  case 415:
    return "Unsupported Media Type";
  case 416:
    return "Range Not Satisfiable";
  case 417:
    return "Expectation Failed";
  case 418:
    return "I'm a teapot";
  case 421:
    return "Misdirected Request";
  case 422:
    return "Unprocessable Content";
  case 425:
    return "Too Early";
  case 426:
    return "Upgrade Required";
  case 428:
    return "Precondition Required";
  case 429:
    return "Too Many Requests";
  case 431:
    return "Request Header Fields Too Large";
  case 451:
    return "Unavailable For Legal Reasons";
  case 500:
    return "Internal Server Error";
  case 501:
    return "Not Implemented";
  case 502:
    return "Bad Gateway";
  case 503:
    return "Service Unavailable";
  case 504:
    return "Gateway Timeout";
  case 505:
    return "HTTP Version Not Supported";
  case 507:
    return "Insufficient Storage";
  case 511:
    return "Network Authentication Required";
  default:
    return "Unknown";
  }
}

bool isTokenChar(unsigned char c) { return kToken.has(c); }

namespace {

#if defined(__SSE2__)
// Every one of the 16 bytes of `v` is a letter, a digit or '-': the bytes of nearly every
// field name. (v | 0x20) folds the capitals onto the small letters and maps no other byte
// into a-z; an unsigned "at most" is a saturating subtraction that gives zero.
inline bool allAlnumOrDash(__m128i v) {
  const __m128i zero = _mm_setzero_si128();
  const __m128i letter = _mm_sub_epi8(_mm_or_si128(v, _mm_set1_epi8(0x20)), _mm_set1_epi8('a'));
  const __m128i digit = _mm_sub_epi8(v, _mm_set1_epi8('0'));
  const __m128i ok =
      _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(_mm_subs_epu8(letter, _mm_set1_epi8(25)), zero),
                                _mm_cmpeq_epi8(_mm_subs_epu8(digit, _mm_set1_epi8(9)), zero)),
                   _mm_cmpeq_epi8(v, _mm_set1_epi8('-')));
  return _mm_movemask_epi8(ok) == 0xffff;
}

// The same for a whole name of at least 4 bytes, reading none past it: shorter than 16, it
// is read as overlapping pieces that fill one block (a byte may be tested twice).
bool nameIsAlnumOrDash(const char* d, size_t n) {
  if (n < 8) {
    uint32_t head;
    uint32_t tail;
    std::memcpy(&head, d, 4);
    std::memcpy(&tail, d + n - 4, 4);
    return allAlnumOrDash(_mm_set1_epi64x(static_cast<int64_t>(head | uint64_t{tail} << 32)));
  }
  if (n < 16) {
    uint64_t head;
    uint64_t tail;
    std::memcpy(&head, d, 8);
    std::memcpy(&tail, d + n - 8, 8);
    return allAlnumOrDash(_mm_set_epi64x(static_cast<int64_t>(tail), static_cast<int64_t>(head)));
  }
  for (size_t i = 0; i + 16 < n; i += 16) {
    if (!allAlnumOrDash(_mm_loadu_si128(reinterpret_cast<const __m128i*>(d + i)))) {
      return false;
    }
  }
  return allAlnumOrDash(_mm_loadu_si128(reinterpret_cast<const __m128i*>(d + n - 16)));
}
#endif

} // namespace

bool isValidHeaderName(std::string_view name) {
#if defined(__SSE2__)
  // The common names pass the block test; any other name (other token bytes, fewer than 4
  // bytes, or a byte that is no token at all) gets the byte-by-byte answer.
  if (name.size() >= 4 && nameIsAlnumOrDash(name.data(), name.size())) {
    return true;
  }
#endif
  return !name.empty() && kToken.hasAll(name);
}

size_t countControlBytes(std::string_view bytes) {
  size_t count = 0;
  size_t i = 0;
#if defined(__SSE2__)
  // Sixteen bytes at a time: v <= 0x1f (unsigned) or v == 0x7f gives 0xff in a lane, and
  // subtracting it adds 1 to that lane's count, folded into `count` before it could pass 255.
  // The last partial block is a load of the final 16 bytes with the overlap shifted away.
  if (bytes.size() >= 16) {
    const __m128i k1f = _mm_set1_epi8(0x1f);
    const __m128i k7f = _mm_set1_epi8(0x7f);
    auto flags = [&](size_t at) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes.data() + at));
      return _mm_or_si128(_mm_cmpeq_epi8(_mm_min_epu8(v, k1f), v), _mm_cmpeq_epi8(v, k7f));
    };
    while (i + 16 <= bytes.size()) {
      const size_t blocks = std::min<size_t>((bytes.size() - i) / 16, 255);
      __m128i lanes = _mm_setzero_si128();
      for (size_t b = 0; b < blocks; ++b, i += 16) {
        lanes = _mm_sub_epi8(lanes, flags(i));
      }
      const __m128i sums = _mm_sad_epu8(lanes, _mm_setzero_si128());
      count += static_cast<size_t>(_mm_cvtsi128_si32(sums)) +
               static_cast<size_t>(_mm_extract_epi16(sums, 4));
    }
    if (i < bytes.size()) {
      const auto tail = static_cast<unsigned>(_mm_movemask_epi8(flags(bytes.size() - 16)));
      count += static_cast<size_t>(std::popcount(tail >> (16 - (bytes.size() - i))));
    }
    return count;
  }
#endif
  // Eight bytes at a time: each ASCII control or DEL byte's 0/1 is summed in a lane of
  // `lanes` (at most 8 * 31 = 248 before it is folded into `count`).
  uint64_t lanes = 0;
  int words = 0;
  for (; i + 8 <= bytes.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, bytes.data() + i, 8);
    lanes += (swar::controlOrDel(w) & ~w) >> 7;
    if (++words == 31) {
      count += static_cast<size_t>((lanes * swar::kOnes) >> 56);
      lanes = 0;
      words = 0;
    }
  }
  count += static_cast<size_t>((lanes * swar::kOnes) >> 56);
  for (; i < bytes.size(); ++i) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    count += (c < 0x20 || c == 0x7f) ? 1 : 0;
  }
  return count;
}

bool isValidHeaderValue(std::string_view value) {
  // Eight bytes at a time: a word with no ASCII control and no DEL is fine (bytes from 0x80
  // are obs-text); otherwise look closer (HTAB is allowed).
  size_t i = 0;
  for (; i + 8 <= value.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, value.data() + i, 8);
    if ((swar::controlOrDel(w) & ~w) != 0) {
      break;
    }
  }
  for (; i < value.size(); ++i) {
    const auto c = static_cast<unsigned char>(value[i]);
    if ((c < 0x20 && c != '\t') || c == 0x7f) {
      return false;
    }
  }
  return true;
}

size_t removeFieldsNotAllowedInTrailers(HeaderMap& trailers, bool response) {
  static constexpr std::string_view kHeadOnly[] = {
      // framing and connection
      "content-length", "transfer-encoding", "trailer", "te", "connection", "keep-alive",
      "proxy-connection", "upgrade",
      // routing and forwarding
      "host", "forwarded", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
      "x-forwarded-port", "x-request-id",
      // authentication
      "authorization", "proxy-authorization", "cookie",
      // request modifiers and controls
      "expect", "range", "if-range", "if-match", "if-none-match", "if-modified-since",
      "if-unmodified-since", "max-forwards", "cache-control", "pragma",
      // content format
      "content-type", "content-encoding", "content-range", "content-location"};
  static constexpr std::string_view kResponseHeadOnly[] = {
      "set-cookie",   "www-authenticate", "proxy-authenticate",
      "location",     "retry-after",      "vary",
      "age",          "expires",          "date",
      "accept-ranges"};
  size_t removed = 0;
  for (std::string_view name : kHeadOnly) {
    removed += trailers.remove(name);
  }
  if (response) {
    for (std::string_view name : kResponseHeadOnly) {
      removed += trailers.remove(name);
    }
  }
  return removed;
}

namespace {

// RFC 3986 §3.2.2 reg-name bytes, without '%' (pct-encoded, checked apart): unreserved and
// sub-delims.
constexpr ByteSet kRegNameByte = ByteSet::of([](unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         std::string_view("-._~!$&'()*+,;=").find(static_cast<char>(c)) != std::string_view::npos;
});

} // namespace

bool isValidHost(std::string_view host) {
  size_t i = 0;
  if (!host.empty() && host[0] == '[') {
    const size_t close = host.find(']');
    if (close == std::string_view::npos || close == 1) {
      return false;
    }
    for (i = 1; i < close; ++i) {
      if (host[i] != ':' && !kRegNameByte.has(static_cast<unsigned char>(host[i]))) {
        return false;
      }
    }
    i = close + 1;
  } else {
    for (; i < host.size() && host[i] != ':'; ++i) {
      if (host[i] == '%') {
        if (i + 2 >= host.size() || hexDigitValue(host[i + 1]) < 0 ||
            hexDigitValue(host[i + 2]) < 0) {
          return false;
        }
        i += 2;
      } else if (!kRegNameByte.has(static_cast<unsigned char>(host[i]))) {
        return false;
      }
    }
    if (i == 0 && i < host.size()) {
      return false; // ":80": a port without a host (RFC 9110 §4.2.1)
    }
  }
  if (i == host.size()) {
    return true;
  }
  if (host[i] != ':' || host.size() - i - 1 > 5) {
    return false;
  }
  uint32_t port = 0;
  for (++i; i < host.size(); ++i) {
    if (host[i] < '0' || host[i] > '9') {
      return false;
    }
    port = port * 10 + static_cast<uint32_t>(host[i] - '0');
  }
  return port <= 65535;
}

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) {
      return false;
    }
  }
  return true;
}

bool hasToken(std::string_view list, std::string_view token) {
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t comma = list.find(',', pos);
    if (comma == std::string_view::npos) {
      comma = list.size();
    }
    std::string_view item = list.substr(pos, comma - pos);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) {
      item.remove_prefix(1);
    }
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) {
      item.remove_suffix(1);
    }
    if (equalsIgnoreCase(item, token)) {
      return true;
    }
    pos = comma + 1;
  }
  return false;
}

} // namespace pounce::http
