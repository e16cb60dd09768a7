#include "source/filters/proxy_headers/proxy_headers.h"

#include <string>

#include "source/common/strings.h"

namespace pounce::filters::proxy_headers {

namespace {

constexpr std::string_view kXForwardedPrefix = "x-forwarded-";
constexpr std::string_view kXForwardedFor = "x-forwarded-for";
constexpr std::string_view kXForwardedProto = "x-forwarded-proto";
constexpr std::string_view kXForwardedHost = "x-forwarded-host";
constexpr std::string_view kForwarded = "forwarded";
constexpr std::string_view kRequestId = "x-request-id";

bool isOws(char c) { return c == ' ' || c == '\t'; }

// A request field that carries forwarding information (in either spelling).
bool isForwardingName(std::string_view name, bool use_forwarded) {
  return http::readsAsField(name, kXForwardedPrefix, /*prefix=*/true) ||
         http::readsAsField(name, kRequestId) || (use_forwarded && name == kForwarded);
}

// A port RFC 7239 hides: "_" then letters, digits, '.', '_' or '-'.
bool isObfuscatedPort(std::string_view port) {
  if (port.size() < 2 || port.front() != '_') {
    return false;
  }
  for (char c : port) {
    const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) {
      return false;
    }
  }
  return true;
}

// A port of a Host value: 1 to 5 digits, at most 65535.
bool isPort(std::string_view port) {
  uint64_t value = 0;
  return port.size() <= 5 && parseUint(port, value) && value <= 65535; // (digits only)
}

// All values of `name`, joined in order when there is more than one field (the common case
// of one field costs no copy).
std::string_view combinedValue(const http::HeaderMap& headers, std::string_view name,
                               std::string& storage) {
  return headers.getCombined(name, storage).value_or(std::string_view());
}

// The item `trusted_hops` places from the right of a comma list, or the leftmost one if the
// list is shorter; empty if the list has no items.
std::string_view itemFromRight(std::string_view list, uint32_t trusted_hops) {
  HopList items;
  appendListItems(list, items);
  if (items.empty()) {
    return {};
  }
  const size_t n = items.size();
  return items[n >= trusted_hops ? n - trusted_hops : 0];
}

// `host` may point into `headers`: setAuthority copies it before the map changes, and
// HeaderMap::set copies its value first.
void setHost(http::RequestHeaders& headers, std::string_view host) {
  headers.setAuthority(host);
  headers.set("host", host);
}

} // namespace

bool Config::trustsPeer(const network::Address& peer) const {
  if (trust_all) {
    return true;
  }
  if (peer.isPipe()) {
    return trust_unix;
  }
  return isTrustedProxy(peer);
}

bool Config::isTrustedProxy(const network::Address& address) const {
  for (const auto& range : trusted_ranges) {
    if (range.contains(address)) {
      return true;
    }
  }
  return false;
}

void appendListItems(std::string_view value, HopList& out) {
  size_t pos = 0;
  while (pos <= value.size()) {
    size_t comma = value.find(',', pos);
    if (comma == std::string_view::npos) {
      comma = value.size();
    }
    const std::string_view item = trim(value.substr(pos, comma - pos));
    if (!item.empty()) {
      out.push_back(item);
    }
    pos = comma + 1;
  }
}

std::optional<network::Address> parseNode(std::string_view node) {
  std::string_view ip = node;
  std::string_view port_text;
  if (!node.empty() && node.front() == '[') {
    const size_t close = node.find(']');
    if (close == std::string_view::npos) {
      return std::nullopt;
    }
    ip = node.substr(1, close - 1);
    if (ip.find(':') == std::string_view::npos) {
      return std::nullopt; // brackets hold an IPv6 address only
    }
    const std::string_view rest = node.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') {
        return std::nullopt;
      }
      port_text = rest.substr(1);
      if (port_text.empty()) {
        return std::nullopt;
      }
    }
  } else {
    const size_t colon = node.find(':');
    if (colon != std::string_view::npos && node.find(':', colon + 1) == std::string_view::npos) {
      // Exactly one colon: IPv4 with a port.
      ip = node.substr(0, colon);
      port_text = node.substr(colon + 1);
      if (port_text.empty()) {
        return std::nullopt;
      }
    }
  }
  if (ip.empty() || ip.size() > 45) {
    return std::nullopt;
  }
  for (char c : ip) {
    const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
                    c == '.' || c == ':';
    if (!ok) {
      return std::nullopt;
    }
  }
  uint64_t port = 0; // (an obfuscated port hides the number: 0, as for none)
  if (!port_text.empty() && !isObfuscatedPort(port_text) &&
      (!parseUint(port_text, port) || port > 65535)) {
    return std::nullopt;
  }
  auto address = network::Address::fromIp(ip, static_cast<uint16_t>(port));
  if (!address.ok()) {
    return std::nullopt;
  }
  return std::move(*address);
}

size_t selectClientHop(const HopList& hops, const Config& config) {
  const size_t n = hops.size();
  size_t i = n >= config.trusted_hops ? n - config.trusted_hops : 0;
  while (i > 0) {
    const auto address = parseNode(hops[i]);
    if (!address.has_value() || !config.isTrustedProxy(*address)) {
      break;
    }
    --i;
  }
  return i;
}

std::string_view schemeFromProto(std::string_view proto) {
  if (http::equalsIgnoreCase(proto, "https") || http::equalsIgnoreCase(proto, "wss")) {
    return "https";
  }
  if (http::equalsIgnoreCase(proto, "http") || http::equalsIgnoreCase(proto, "ws")) {
    return "http";
  }
  return {};
}

bool isValidForwardedHost(std::string_view host) {
  if (host.empty() || host.size() > 261) {
    return false;
  }
  std::string_view name = host;
  std::string_view port;
  if (host.front() == '[') {
    // An IPv6 literal, then optionally ":port".
    const size_t close = host.find(']');
    if (close == std::string_view::npos) {
      return false;
    }
    if (!network::Address::fromIp(host.substr(1, close - 1), 0).ok() ||
        host.find(':', 1) > close) { // (a bracketed IPv4 is not a literal)
      return false;
    }
    const std::string_view rest = host.substr(close + 1);
    if (!rest.empty() && (rest.front() != ':' || !isPort(rest.substr(1)))) {
      return false;
    }
    return true;
  }
  if (const size_t colon = host.find(':'); colon != std::string_view::npos) {
    name = host.substr(0, colon);
    port = host.substr(colon + 1);
    if (!isPort(port)) { // (digits only: also refuses a second colon)
      return false;
    }
  }
  // A DNS name or an IPv4 address: letters, digits, '-', '.' and '_'.
  if (name.empty()) {
    return false;
  }
  for (char c : name) {
    const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    c == '-' || c == '.' || c == '_';
    if (!ok) {
      return false;
    }
  }
  return true;
}

bool parseForwarded(std::string_view value, std::vector<ForwardedElement>& out) {
  bool all_valid = true;
  ForwardedElement element;
  bool has_pair = false; // (RFC 9110 §5.6.1: empty list members are ignored)
  uint8_t seen = 0;      // the parameters of this element so far
  size_t i = 0;
  const size_t n = value.size();
  auto skipOws = [&] {
    while (i < n && isOws(value[i])) {
      ++i;
    }
  };
  auto endElement = [&] {
    if (has_pair) {
      out.push_back(element);
    }
    element = ForwardedElement{};
    has_pair = false;
    seen = 0;
  };
  // A malformed element keeps its place (empty, not valid); parsing resumes at the next
  // comma after `from`.
  auto malformed = [&](size_t from) {
    all_valid = false;
    element = ForwardedElement{};
    element.valid = false;
    has_pair = true;
    const size_t comma = value.find(',', std::min(from, n));
    i = comma == std::string_view::npos ? n : comma;
  };
  skipOws();
  if (i == n) {
    return false; // an empty field line: no element at all
  }
  while (true) {
    skipOws();
    if (i < n && value[i] != ';' && value[i] != ',' && element.valid) {
      // forwarded-pair = token "=" value
      const size_t name_start = i;
      while (i < n && http::isTokenChar(static_cast<unsigned char>(value[i]))) {
        ++i;
      }
      const std::string_view name = value.substr(name_start, i - name_start);
      std::string_view pair_value;
      bool escaped = false;
      bool ok = !name.empty() && i < n && value[i] == '=';
      if (ok) {
        ++i;
        if (i < n && value[i] == '"') {
          const size_t quote = i++;
          const size_t start = i;
          while (i < n && value[i] != '"') {
            if (value[i] == '\\') {
              escaped = true;
              ++i;
            }
            ++i;
          }
          if (i >= n) {
            malformed(quote + 1); // unclosed: resume after the quote
            continue;
          }
          pair_value = value.substr(start, i - start);
          ++i;
        } else {
          const size_t start = i;
          while (i < n && http::isTokenChar(static_cast<unsigned char>(value[i]))) {
            ++i;
          }
          pair_value = value.substr(start, i - start);
          ok = !pair_value.empty();
        }
      }
      // Each parameter at most once per element (RFC 7239 §4): a second one is malformed,
      // not a choice between the two.
      const uint8_t bit = http::equalsIgnoreCase(name, "for")     ? 1
                          : http::equalsIgnoreCase(name, "proto") ? 2
                          : http::equalsIgnoreCase(name, "host")  ? 4
                          : http::equalsIgnoreCase(name, "by")    ? 8
                                                                  : 0;
      if (!ok || (seen & bit) != 0) {
        malformed(i);
        continue;
      }
      if (escaped) {
        pair_value = {};
      }
      seen |= bit;
      if (bit == 1) {
        element.for_node = pair_value;
      } else if (bit == 2) {
        element.proto = pair_value;
      } else if (bit == 4) {
        element.host = pair_value;
      }
      has_pair = true;
      skipOws();
    }
    if (i >= n) {
      endElement();
      return all_valid;
    }
    if (value[i] == ';' && element.valid) {
      ++i;
      continue;
    }
    if (value[i] == ',') {
      ++i;
      endElement();
      continue;
    }
    malformed(i);
  }
}

http::FilterStatus ProxyHeadersFilter::decodeHeaders(http::RequestHeaders& headers, bool) {
  http::StreamInfo& info = decoder_callbacks_->streamInfo();
  if (!config_->trustsPeer(info.peer_address)) {
    info.peer_trusted = false;
    strip(headers, /*underscored_only=*/false);
    return http::FilterStatus::Continue;
  }
  info.peer_trusted = true;
  // A trusted proxy vouches for the fields it writes, not for a client's `X_Forwarded_For`
  // it passed on (nginx drops such names by default; others do not).
  strip(headers, /*underscored_only=*/true);
  if (!config_->use_forwarded || !applyForwarded(headers, info)) {
    applyXForwarded(headers, info);
  }
  return http::FilterStatus::Continue;
}

void ProxyHeadersFilter::strip(http::RequestHeaders& headers, bool underscored_only) const {
  absl::InlinedVector<std::string, 4> doomed;
  for (size_t i = 0; i < headers.size(); ++i) {
    const std::string_view name = headers.nameAt(i);
    if (underscored_only && name.find('_') == std::string_view::npos) {
      continue;
    }
    if (isForwardingName(name, config_->use_forwarded)) {
      doomed.emplace_back(name);
    }
  }
  for (const auto& name : doomed) {
    headers.remove(name);
  }
}

bool ProxyHeadersFilter::applyForwarded(http::RequestHeaders& headers,
                                        http::StreamInfo& info) const {
  // Field lines are parsed one by one (a quote cannot run from one into the next), their
  // elements in order, as if joined.
  std::vector<ForwardedElement> elements;
  for (size_t i = 0; i < headers.size(); ++i) {
    if (headers.nameAt(i) == kForwarded) {
      parseForwarded(headers.valueAt(i), elements);
    }
  }
  if (elements.empty()) {
    return false; // absent, or only empty members: as if there were none
  }
  HopList hops;
  for (const auto& e : elements) {
    hops.push_back(e.for_node); // (a malformed element's is empty: never a trusted hop)
  }
  const size_t index = selectClientHop(hops, *config_);
  const ForwardedElement& client = elements[index];
  if (!client.valid) {
    return true; // the client's place holds garbage: believe none of it
  }
  if (auto address = parseNode(client.for_node)) {
    info.client_address = std::move(*address);
  }
  const std::string_view scheme = schemeFromProto(client.proto);
  if (!scheme.empty()) {
    headers.setScheme(scheme);
  }
  if (isValidForwardedHost(client.host)) {
    setHost(headers, client.host);
  }
  return true;
}

void ProxyHeadersFilter::applyXForwarded(http::RequestHeaders& headers,
                                         http::StreamInfo& info) const {
  // Most requests carry no X-Forwarded-* field at all: one pass finds that out.
  bool any = false;
  for (size_t i = 0; i < headers.size() && !any; ++i) {
    any = startsWith(headers.nameAt(i), kXForwardedPrefix);
  }
  if (!any) {
    return;
  }
  std::string storage;
  const std::string_view xff = combinedValue(headers, kXForwardedFor, storage);
  if (!xff.empty()) {
    HopList hops;
    appendListItems(xff, hops);
    if (!hops.empty()) {
      if (auto address = parseNode(hops[selectClientHop(hops, *config_)])) {
        info.client_address = std::move(*address);
      }
    }
  }
  const std::string_view proto_list = combinedValue(headers, kXForwardedProto, storage);
  if (!proto_list.empty()) {
    const std::string_view scheme =
        schemeFromProto(itemFromRight(proto_list, config_->trusted_hops));
    if (!scheme.empty()) {
      headers.setScheme(scheme);
    }
  }
  const std::string_view host_list = combinedValue(headers, kXForwardedHost, storage);
  if (!host_list.empty()) {
    const std::string_view host = itemFromRight(host_list, config_->trusted_hops);
    if (isValidForwardedHost(host)) {
      setHost(headers, host);
    }
  }
}

} // namespace pounce::filters::proxy_headers
