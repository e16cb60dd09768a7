#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "source/http/filter.h"
#include "source/network/address.h"

namespace pounce::filters::proxy_headers {

// The validated config: built once, shared by every stream.
struct Config {
  std::vector<network::CidrRange> trusted_ranges;
  bool trust_all{false};  // "*"
  bool trust_unix{false}; // "unix": peers on Unix domain sockets
  uint32_t trusted_hops{1};
  bool use_forwarded{false};

  // May this peer's forwarding headers be believed?
  bool trustsPeer(const network::Address& peer) const;
  // Is this X-Forwarded-For / Forwarded entry one of our own proxies, to be skipped when
  // looking for the client? Only explicit addresses and ranges count ("*" does not: with it
  // every entry would be skipped and the client could pick its own address).
  bool isTrustedProxy(const network::Address& address) const;
};
using ConfigSharedPtr = std::shared_ptr<const Config>;

// Comma-separated list items, trimmed, empty items dropped, left to right.
using HopList = absl::InlinedVector<std::string_view, 8>;
void appendListItems(std::string_view value, HopList& out);

// Parses one node of a forwarding header: "192.0.2.1", "192.0.2.1:4711", "2001:db8::1",
// "[2001:db8::1]" or "[2001:db8::1]:4711". The port is 0 when absent. Anything else
// ("unknown", "_hidden", host names) gives nullopt.
std::optional<network::Address> parseNode(std::string_view node);

// Which hop (an index into `hops`, which lists node addresses left to right as proxies
// appended them) is the client: the `trusted_hops`-th from the right, then further left
// past entries that are trusted proxies; the leftmost entry if the list runs out.
// `hops` must not be empty.
size_t selectClientHop(const HopList& hops, const Config& config);

// A trusted X-Forwarded-Proto / Forwarded proto value, as the scheme to use ("http" or
// "https"; "ws"/"wss" map to these), or empty if the value is not one of them.
std::string_view schemeFromProto(std::string_view proto);
// Is `host` a plausible Host value: a name (letters, digits, '-', '.', '_'), an IPv4
// address or an [IPv6] literal, then optionally ":" and a port (digits, at most 65535)?
bool isValidForwardedHost(std::string_view host);

// One element of an RFC 7239 Forwarded header (views into the header value; quoted values
// are unquoted; a value that needs backslash escapes is treated as absent). A malformed
// element (bad syntax, a parameter given twice: RFC 7239 §4) is kept as a place in the
// list with `valid` false and nothing in it.
struct ForwardedElement {
  std::string_view for_node;
  std::string_view proto;
  std::string_view host;
  bool valid{true};
};
// Parses one Forwarded field line into `out` (appending); returns false if any element is
// malformed. Parsing goes on after a malformed element, at the next comma (after an
// unclosed quote: the next comma after the quote), so garbage a client put on the left
// cannot void the elements its proxies appended on the right. Empty list members are
// skipped.
bool parseForwarded(std::string_view value, std::vector<ForwardedElement>& out);

// Applies the proxy-header policy to one request (see the proto for the behaviour).
class ProxyHeadersFilter final : public http::StreamFilter {
public:
  // `config` belongs to the chain's factory, which outlives every stream on the chain
  // (no reference count per stream).
  explicit ProxyHeadersFilter(const Config& config) : config_(&config) {}

  // http::StreamDecoderFilter
  http::FilterStatus decodeHeaders(http::RequestHeaders& headers, bool end_stream) override;

private:
  // Removes the forwarding fields (x-forwarded-*, x-request-id, forwarded when used), in
  // either spelling ('-' or '_'); with `underscored_only`, only those spelt with '_'.
  void strip(http::RequestHeaders& headers, bool underscored_only) const;
  // Returns true if a Forwarded header was present and used.
  bool applyForwarded(http::RequestHeaders& headers, http::StreamInfo& info) const;
  void applyXForwarded(http::RequestHeaders& headers, http::StreamInfo& info) const;

  const Config* config_;
};

} // namespace pounce::filters::proxy_headers
