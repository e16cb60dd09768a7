#include "source/network/address.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

#include "source/common/strings.h"

namespace pounce::network {

namespace {

// The text inet_ntop gives an IPv4 address, without its sprintf (this runs for every accepted
// connection and every client address taken from a proxy header).
std::string formatIpv4(const in_addr& address) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(&address);
  char buf[16];
  char* p = buf;
  for (int i = 0; i < 4; ++i) {
    if (i > 0) {
      *p++ = '.';
    }
    p = std::to_chars(p, buf + sizeof(buf), static_cast<unsigned>(bytes[i])).ptr;
  }
  return std::string(buf, p);
}

} // namespace

absl::StatusOr<Address> Address::fromIp(std::string_view ip_in, uint16_t port) {
  std::string ip(ip_in);
  if (ip == "localhost") {
    ip = "127.0.0.1";
  }
  if (ip.size() > 2 && ip.front() == '[' && ip.back() == ']') {
    ip = ip.substr(1, ip.size() - 2);
  }
  Address a;
  a.type_ = Type::Ip;
  a.port_ = port;
  auto* v4 = &a.ip_.v4;
  auto* v6 = &a.ip_.v6;
  if (inet_pton(AF_INET, ip.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
  } else if (inet_pton(AF_INET6, ip.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
  } else {
    return absl::InvalidArgumentError(cat("'", ip_in, "' is not an IPv4 or IPv6 address"));
  }
  if (v4->sin_family == AF_INET) {
    a.text_ = formatIpv4(v4->sin_addr);
  } else {
    char buf[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, &v6->sin6_addr, buf, sizeof(buf));
    a.text_ = buf;
  }
  return a;
}

Address Address::fromSockaddr(const sockaddr* sa, socklen_t len) {
  Address a;
  if (sa == nullptr || len == 0) {
    return a;
  }
  char buf[INET6_ADDRSTRLEN];
  switch (sa->sa_family) {
  case AF_INET: {
    if (len < sizeof(sockaddr_in)) {
      return a;
    }
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(sa);
    a.ip_.v4 = *v4;
    a.type_ = Type::Ip;
    a.port_ = ntohs(v4->sin_port);
    a.text_ = formatIpv4(v4->sin_addr);
    break;
  }
  case AF_INET6: {
    if (len < sizeof(sockaddr_in6)) {
      return a;
    }
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(sa);
    a.ip_.v6 = *v6;
    a.type_ = Type::Ip;
    a.port_ = ntohs(v6->sin6_port);
    inet_ntop(AF_INET6, &v6->sin6_addr, buf, sizeof(buf));
    a.text_ = buf;
    break;
  }
  case AF_UNIX: {
    const auto* un = reinterpret_cast<const sockaddr_un*>(sa);
    a.type_ = Type::Pipe;
    a.ip_.sa.sa_family = AF_UNIX;
    const size_t max =
        len > offsetof(sockaddr_un, sun_path) ? len - offsetof(sockaddr_un, sun_path) : 0;
    a.text_ = std::string(un->sun_path, strnlen(un->sun_path, max));
    break;
  }
  default:
    break;
  }
  return a;
}

Address Address::fromPipe(std::string_view path) {
  Address a;
  a.type_ = Type::Pipe;
  a.ip_.sa.sa_family = AF_UNIX;
  a.text_ = std::string(path); // whole, even if too long for a socket (toSockaddr() says so)
  return a;
}

Address Address::local(int fd) {
  sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return {};
  }
  return fromSockaddr(reinterpret_cast<sockaddr*>(&ss), len);
}

Address Address::peer(int fd) {
  sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return {};
  }
  return fromSockaddr(reinterpret_cast<sockaddr*>(&ss), len);
}

std::string Address::asString() const {
  switch (type_) {
  case Type::Ip:
    return isV6() ? cat("[", text_, "]:", port_) : cat(text_, ":", port_);
  case Type::Pipe:
    return "unix:" + text_;
  case Type::None:
    break;
  }
  return "";
}

socklen_t Address::toSockaddr(sockaddr_storage& out) const {
  std::memset(&out, 0, sizeof(out));
  switch (family()) {
  case AF_INET:
    std::memcpy(&out, &ip_.v4, sizeof(ip_.v4));
    return sizeof(sockaddr_in);
  case AF_INET6:
    std::memcpy(&out, &ip_.v6, sizeof(ip_.v6));
    return sizeof(sockaddr_in6);
  case AF_UNIX: {
    if (text_.size() > kMaxPipePathBytes) {
      return 0;
    }
    auto* un = reinterpret_cast<sockaddr_un*>(&out);
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, text_.data(), text_.size());
    return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + text_.size() + 1);
  }
  default:
    return 0;
  }
}

std::string_view Address::rawIp() const {
  if (family() == AF_INET) {
    return {reinterpret_cast<const char*>(&ip_.v4.sin_addr), 4};
  }
  if (family() == AF_INET6) {
    return {reinterpret_cast<const char*>(&ip_.v6.sin6_addr), 16};
  }
  return {};
}

bool Address::isLoopback() const {
  if (family() == AF_INET) {
    return static_cast<unsigned char>(rawIp()[0]) == 127;
  }
  if (family() == AF_INET6) {
    return IN6_IS_ADDR_LOOPBACK(&ip_.v6.sin6_addr);
  }
  return type_ == Type::Pipe;
}

absl::StatusOr<CidrRange> CidrRange::parse(std::string_view text) {
  std::string_view ip = text;
  int prefix = -1;
  const size_t slash = text.find('/');
  if (slash != std::string_view::npos) {
    ip = text.substr(0, slash);
    uint64_t n;
    if (!parseUint(text.substr(slash + 1), n) || n > 128) {
      return absl::InvalidArgumentError(cat("'", text, "' has a bad prefix length"));
    }
    prefix = static_cast<int>(n);
  }
  auto address = Address::fromIp(ip, 0);
  if (!address.ok()) {
    return absl::InvalidArgumentError(cat("'", text, "' is not an IP address or CIDR range"));
  }
  CidrRange range;
  range.family_ = address->family();
  const std::string_view raw = address->rawIp();
  std::memcpy(range.bytes_, raw.data(), raw.size());
  const int max = static_cast<int>(raw.size()) * 8;
  if (prefix > max) {
    return absl::InvalidArgumentError(cat("'", text, "': prefix length exceeds ", max));
  }
  range.prefix_len_ = prefix < 0 ? max : prefix;
  static const unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (range.family_ == AF_INET6 && range.prefix_len_ >= 96 &&
      std::memcmp(range.bytes_, kMapped, sizeof(kMapped)) == 0) {
    // ::ffff:a.b.c.d/n is the IPv4 range a.b.c.d/(n-96): an IPv4 peer is in it, as a
    // mapped peer is in an IPv4 range.
    std::memmove(range.bytes_, range.bytes_ + 12, 4);
    std::memset(range.bytes_ + 4, 0, sizeof(range.bytes_) - 4);
    range.family_ = AF_INET;
    range.prefix_len_ -= 96;
  }
  const int bits = range.family_ == AF_INET ? 32 : 128;
  // Zero the host bits so asString() is canonical.
  for (int bit = range.prefix_len_; bit < bits; ++bit) {
    range.bytes_[bit / 8] &= static_cast<unsigned char>(~(0x80 >> (bit % 8)));
  }
  return range;
}

bool CidrRange::contains(const Address& address) const {
  if (!address.isIp()) {
    return false;
  }
  std::string_view raw = address.rawIp();
  unsigned char mapped[4];
  if (family_ == AF_INET && address.family() == AF_INET6) {
    // ::ffff:a.b.c.d matches IPv4 ranges.
    static const unsigned char kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(raw.data(), kPrefix, 12) != 0) {
      return false;
    }
    std::memcpy(mapped, raw.data() + 12, 4);
    raw = std::string_view(reinterpret_cast<const char*>(mapped), 4);
  } else if (family_ != address.family()) {
    return false;
  }
  const int full = prefix_len_ / 8;
  if (std::memcmp(raw.data(), bytes_, full) != 0) {
    return false;
  }
  const int rest = prefix_len_ % 8;
  if (rest == 0) {
    return true;
  }
  const auto mask = static_cast<unsigned char>(0xff << (8 - rest));
  return (static_cast<unsigned char>(raw[full]) & mask) == (bytes_[full] & mask);
}

std::string CidrRange::asString() const {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(family_, bytes_, buf, sizeof(buf));
  return cat(buf, "/", prefix_len_);
}

} // namespace pounce::network
