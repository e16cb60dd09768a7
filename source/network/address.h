#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace pounce::network {

// A socket address: IPv4, IPv6 or a Unix domain socket path.
class Address {
public:
  enum class Type { None, Ip, Pipe };

  Address() = default;
  static absl::StatusOr<Address> fromIp(std::string_view ip, uint16_t port);
  static Address fromSockaddr(const sockaddr* sa, socklen_t len);
  static Address fromPipe(std::string_view path);
  // The local or peer address of a connected/bound socket.
  static Address local(int fd);
  static Address peer(int fd);

  Type type() const { return type_; }
  bool isIp() const { return type_ == Type::Ip; }
  bool isPipe() const { return type_ == Type::Pipe; }
  bool isV6() const { return isIp() && ip_.sa.sa_family == AF_INET6; }
  // AF_INET, AF_INET6, AF_UNIX (pipes), or AF_UNSPEC.
  int family() const { return ip_.sa.sa_family; }

  // "127.0.0.1", "::1" (no brackets); "" for pipes.
  const std::string& ip() const { return text_; }
  uint16_t port() const { return port_; }
  const std::string& path() const { return text_; }
  // "127.0.0.1:8000", "[::1]:8000", "unix:/run/pounce.sock".
  std::string asString() const;

  // Writes the address as a socket address (for bind and connect); returns its length, or
  // 0 when it has none (no address, or a pipe path over kMaxPipePathBytes).
  socklen_t toSockaddr(sockaddr_storage& out) const;
  // The longest path a Unix socket address holds (sun_path less its terminating NUL).
  static constexpr size_t kMaxPipePathBytes = sizeof(sockaddr_un::sun_path) - 1;
  // Raw IPv4 (4 bytes, network order) or IPv6 (16 bytes) address.
  std::string_view rawIp() const;

  bool isLoopback() const;

private:
  // Small enough to copy per request (a stream keeps the peer, client and local address):
  // an IP address in its socket form, a pipe only by its path (in text_).
  union IpSockaddr {
    sockaddr sa;
    sockaddr_in v4;
    sockaddr_in6 v6;
  };
  Type type_{Type::None};
  uint16_t port_{0};
  IpSockaddr ip_{};
  std::string text_;
};

// An IP prefix such as 10.0.0.0/8 or fd00::/8; a bare address is a /32 or /128.
class CidrRange {
public:
  static absl::StatusOr<CidrRange> parse(std::string_view text);
  bool contains(const Address& address) const;
  std::string asString() const;

private:
  int family_{0};
  unsigned char bytes_[16]{};
  int prefix_len_{0};
};

} // namespace pounce::network
