#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/inlined_vector.h"

namespace pounce::http {

// An ordered multimap of header fields. Names are stored lowercase; order and duplicates
// are kept. All bytes live in one string, so a parsed request costs one allocation.
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
  // All values of `name` joined with ", " (RFC 9110 field combination).
  std::string getJoined(std::string_view name) const;

  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
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

  std::string storage_;
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
  void setPath(std::string_view p) { path_.assign(p.data(), p.size()); }
  void appendPath(std::string_view p) { path_.append(p.data(), p.size()); }
  void setAuthority(std::string_view a) { authority_.assign(a.data(), a.size()); }
  void setScheme(std::string_view s) { scheme_.assign(s.data(), s.size()); }
  void setProtocol(std::string_view p) { protocol_.assign(p.data(), p.size()); }
  void setConnectProtocol(std::string_view p) { connect_protocol_.assign(p.data(), p.size()); }

  // Path without the query string, and the query string without '?'.
  std::string_view pathOnly() const;
  std::string_view query() const;

private:
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
// ASCII case-insensitive equality.
bool equalsIgnoreCase(std::string_view a, std::string_view b);
// Does a comma-separated header value contain `token` (case-insensitively)?
bool hasToken(std::string_view list, std::string_view token);

} // namespace pounce::http
