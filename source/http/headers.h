#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "source/common/strings.h"

namespace pounce::http {

// The bytes of a header map's names and values, back to back. A request head is dozens of
// small appends; here each is a capacity check and a memcpy, inline (std::string's append
// is an out-of-line call). Grows by doubling from 512 bytes, so a typical head costs one
// allocation.
class HeaderBytes {
public:
  HeaderBytes() = default;
  HeaderBytes(const HeaderBytes& other) { append(other.data(), other.size_); }
  HeaderBytes& operator=(const HeaderBytes& other) {
    if (this != &other) {
      size_ = 0;
      append(other.data(), other.size_);
    }
    return *this;
  }
  HeaderBytes(HeaderBytes&& other) noexcept
      : data_(std::move(other.data_)), size_(other.size_), capacity_(other.capacity_) {
    other.size_ = other.capacity_ = 0;
  }
  HeaderBytes& operator=(HeaderBytes&& other) noexcept {
    data_ = std::move(other.data_);
    size_ = other.size_;
    capacity_ = other.capacity_;
    other.size_ = other.capacity_ = 0;
    return *this;
  }

  const char* data() const { return data_.get(); }
  char* data() { return data_.get(); }
  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  char& operator[](size_t i) { return data_[i]; }
  void clear() { size_ = 0; }
  void reserve(size_t n) {
    if (n > capacity_) {
      grow(n);
    }
  }
  // Room for `n` more bytes at the end; the caller writes them, then calls commit(n).
  char* prepare(size_t n) {
    if (size_ + n > capacity_) {
      grow(size_ + n);
    }
    return data_.get() + size_;
  }
  void commit(size_t n) { size_ += n; }
  void append(const char* bytes, size_t n) {
    if (size_ + n > capacity_) {
      grow(size_ + n);
    }
    copyBytes(data_.get() + size_, bytes, n);
    size_ += n;
  }

private:
  void grow(size_t need);

  std::unique_ptr<char[]> data_;
  size_t size_{0};
  size_t capacity_{0};
};

// An ordered multimap of header fields. Names are stored lowercase; order and duplicates
// are kept. All bytes live in one buffer, so a parsed request costs one allocation.
// Views returned by get() are valid until the map is next modified.
class HeaderMap {
public:
  HeaderMap() = default;
  HeaderMap(const HeaderMap&) = default;
  HeaderMap& operator=(const HeaderMap&) = default;
  virtual ~HeaderMap() = default;

  // `name` is lowercased on the way in.
  void add(std::string_view name, std::string_view value);
  // Replaces every field called `name` with one.
  void set(std::string_view name, std::string_view value);
  // Returns how many fields were removed.
  size_t remove(std::string_view name);
  // The first value of `name` (lowercase).
  std::optional<std::string_view> get(std::string_view name) const;
  std::string_view getOr(std::string_view name, std::string_view fallback = {}) const {
    auto v = get(name);
    return v ? *v : fallback;
  }
  bool has(std::string_view name) const { return get(name).has_value(); }
  size_t count(std::string_view name) const;
  // All values of `name` joined with ", " (RFC 9110 field combination; empty values add
  // no empty element).
  std::string getJoined(std::string_view name) const;
  // The same combination without a copy in the usual case: the one non-empty value as it
  // is, or (several) the values joined into `storage`. nullopt when no field is called
  // `name`. The view is valid until the map or `storage` changes.
  std::optional<std::string_view> getCombined(std::string_view name, std::string& storage) const;

  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  // At least the sum of every name and value length (removed fields may leave their bytes
  // behind): a cheap bound for sizing an encoder's output.
  size_t storageBytes() const { return storage_.size(); }
  // Sum of name and value lengths (for limits).
  size_t byteSize() const;
  void clear();
  void reserveBytes(size_t n) { storage_.reserve(n); }

  class Iterator {
  public:
    Iterator(const HeaderMap* map, size_t i) : map_(map), i_(i) {}
    std::pair<std::string_view, std::string_view> operator*() const {
      return {map_->nameAt(i_), map_->valueAt(i_)};
    }
    Iterator& operator++() {
      ++i_;
      return *this;
    }
    bool operator!=(const Iterator& other) const { return i_ != other.i_; }

  private:
    const HeaderMap* map_;
    size_t i_;
  };
  Iterator begin() const { return {this, 0}; }
  Iterator end() const { return {this, entries_.size()}; }

  std::string_view nameAt(size_t i) const {
    return {storage_.data() + entries_[i].name_off, entries_[i].name_len};
  }
  std::string_view valueAt(size_t i) const {
    return {storage_.data() + entries_[i].value_off, entries_[i].value_len};
  }

  // For parsers: append a field whose name is already lowercase.
  void addLowercase(std::string_view name, std::string_view value);
  // For parsers that work on a copy in place: the map becomes empty and holds a copy of
  // `bytes`, followed by kScanPadding zero bytes that are not part of it (so a block scan
  // may read up to 16 bytes past the last one). Returns where the copy starts; it stays
  // there until the map is next modified by anything but addAt().
  static constexpr size_t kScanPadding = 16;
  char* assignBytes(std::string_view bytes);
  // Appends a field whose lowercase name and value already lie in the map's bytes, as
  // offsets from the start of what assignBytes() returned.
  void addAt(uint32_t name_off, uint32_t name_len, uint32_t value_off, uint32_t value_len) {
    entries_.push_back(Entry{name_off, name_len, value_off, value_len});
  }
  // For parsers that receive a value in pieces: extend the last field's value.
  void appendToLastValue(std::string_view more);
  void appendToLastName(std::string_view more); // lowercases

private:
  struct Entry {
    uint32_t name_off;
    uint32_t name_len;
    uint32_t value_off;
    uint32_t value_len;
  };
  uint32_t append(std::string_view bytes);
  bool pointsInside(std::string_view bytes) const;

  HeaderBytes storage_;
  // Most requests have fewer than 16 headers: no allocation for the index.
  absl::InlinedVector<Entry, 16> entries_;
};
using HeaderMapPtr = std::unique_ptr<HeaderMap>;

// A request head. HTTP/2 pseudo-headers and the HTTP/1 request line become fields here;
// the rest of the headers are in the map (for HTTP/1, Host stays in the map as well).
class RequestHeaders : public HeaderMap {
public:
  const std::string& method() const { return method_; }
  // The request target as sent ("/a%20b?x=1").
  const std::string& path() const { return path_; }
  // Host header or :authority.
  std::string_view authority() const;
  // "http" or "https" as the server sees it (proxy_headers may change it).
  const std::string& scheme() const { return scheme_; }
  // "HTTP/1.0", "HTTP/1.1", "HTTP/2".
  const std::string& protocol() const { return protocol_; }
  // RFC 8441 extended CONNECT: the :protocol pseudo-header ("websocket").
  const std::string& connectProtocol() const { return connect_protocol_; }

  void setMethod(std::string_view m) { method_.assign(m.data(), m.size()); }
  void setPath(std::string_view p) {
    path_.assign(p.data(), p.size());
    query_at_ = kQueryUnknown;
  }
  void appendPath(std::string_view p) {
    path_.append(p.data(), p.size());
    query_at_ = kQueryUnknown;
  }
  void setAuthority(std::string_view a) { authority_.assign(a.data(), a.size()); }
  void setScheme(std::string_view s) { scheme_.assign(s.data(), s.size()); }
  void setProtocol(std::string_view p) { protocol_.assign(p.data(), p.size()); }
  void setConnectProtocol(std::string_view p) { connect_protocol_.assign(p.data(), p.size()); }

  // Path without the query string, and the query string without '?'.
  std::string_view pathOnly() const;
  std::string_view query() const;

private:
  static constexpr size_t kQueryUnknown = SIZE_MAX;
  // Where '?' is in path_ (path_.size() if nowhere), found once: several filters ask.
  size_t queryAt() const {
    if (query_at_ == kQueryUnknown) {
      const size_t q = path_.find('?');
      query_at_ = q == std::string::npos ? path_.size() : q;
    }
    return query_at_;
  }
  mutable size_t query_at_{kQueryUnknown};

  std::string method_;
  std::string path_;
  std::string authority_;
  std::string scheme_{"http"};
  std::string protocol_{"HTTP/1.1"};
  std::string connect_protocol_;
};
using RequestHeadersPtr = std::unique_ptr<RequestHeaders>;

class ResponseHeaders : public HeaderMap {
public:
  ResponseHeaders() = default;
  explicit ResponseHeaders(int status) : status_(status) {}
  int status() const { return status_; }
  void setStatus(int status) { status_ = status; }

private:
  int status_{200};
};
using ResponseHeadersPtr = std::unique_ptr<ResponseHeaders>;

// Reason phrase for a status code ("Not Found"); "Unknown" if none is defined.
std::string_view reasonPhrase(int status);

// RFC 9110 token characters (header names, methods).
bool isTokenChar(unsigned char c);
bool isValidHeaderName(std::string_view name);
// Field values: visible ASCII, obs-text, SP and HTAB; no CR, LF or NUL.
bool isValidHeaderValue(std::string_view value);
// How many bytes of `bytes` are control characters (below 0x20, HTAB included, or 0x7f).
// Eight bytes per step; used to check a whole encoded head at once.
size_t countControlBytes(std::string_view bytes);
// ASCII case-insensitive equality.
bool equalsIgnoreCase(std::string_view a, std::string_view b);

// Is `host` a valid Host field value or request authority: uri-host [":" port] (RFC 9110
// §4.2.4, §7.2; RFC 3986 §3.2.2-3), a reg-name or IPv4 address (unreserved, sub-delims,
// %XX) or a bracketed IP literal, then optionally ":" and a port up to 65535. No userinfo,
// path or non-ASCII byte. Empty is valid (a Host without one); a port without a host is not.
bool isValidHost(std::string_view host);

// Whether lowercase `name`, with every '_' read as '-', is `field` (or, with `prefix`, starts
// with it). Django's META, WSGI and CGI turn both spellings into one key (X_Request_Id and
// X-Request-Id are both HTTP_X_REQUEST_ID), so a filter that polices a field must police
// its underscore spelling too.
inline bool readsAsField(std::string_view name, std::string_view field, bool prefix = false) {
  if (name.size() < field.size() || (!prefix && name.size() != field.size())) {
    return false;
  }
  for (size_t i = 0; i < field.size(); ++i) {
    if ((name[i] == '_' ? '-' : name[i]) != field[i]) {
      return false;
    }
  }
  return true;
}

// A connection-specific field (RFC 9110 §7.6.1; RFC 9113 §8.2.2): it describes one hop, so
// a codec writes it (or drops it) and no filter or app may set it. `name` is lowercase.
inline bool isConnectionSpecificField(std::string_view name) {
  return name == "connection" || name == "keep-alive" || name == "transfer-encoding" ||
         name == "proxy-connection" || name == "upgrade" || name == "te";
}

// Removes from a request's trailers the fields that only mean something before the content
// (RFC 9110 §6.5.1: framing, routing, authentication, request modifiers, content format),
// so no filter can take a late Host or Authorization for the head's. Returns how many.
// `response`: a response's trailers, which also lose the response's own control data and
// authentication (Set-Cookie, Location, Vary, Retry-After, WWW-Authenticate...), so both
// codecs send the same trailers whatever the app put there.
size_t removeFieldsNotAllowedInTrailers(HeaderMap& trailers, bool response = false);

// The Content-Length fields of a response, as a codec writes its head out: how many, their
// value, and whether one is not a number or they disagree (RFC 9110 §8.6). Both codecs keep
// the body to the value, send copies of it once and drop bad ones.
struct ContentLengthFields {
  uint32_t count{0};
  uint64_t value{0};
  bool bad{false};

  void add(std::string_view field_value) {
    uint64_t length = 0;
    if (!parseUint(trim(field_value), length) || (count > 0 && length != value)) {
      bad = true;
    }
    value = length;
    ++count;
  }
};
// Does a comma-separated header value contain `token` (case-insensitively)?
bool hasToken(std::string_view list, std::string_view token);

} // namespace pounce::http
