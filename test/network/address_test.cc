#include <gtest/gtest.h>

#include "source/network/address.h"
#include "source/network/listen_socket.h"

namespace pounce::network {
namespace {

TEST(Address, ParsesV4V6AndFormats) {
  auto a = Address::fromIp("127.0.0.1", 80);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->asString(), "127.0.0.1:80");
  EXPECT_TRUE(a->isLoopback());
  auto b = Address::fromIp("::1", 8080);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->asString(), "[::1]:8080");
  EXPECT_TRUE(b->isV6());
  EXPECT_FALSE(Address::fromIp("300.1.1.1", 1).ok());
  EXPECT_EQ(Address::fromIp("localhost", 1)->ip(), "127.0.0.1");
  EXPECT_EQ(Address::fromPipe("/run/x.sock").asString(), "unix:/run/x.sock");
}

TEST(Address, FormatsV4LikeInetNtop) {
  for (const char* ip : {"0.0.0.0", "255.255.255.255", "10.0.200.3", "192.168.1.10"}) {
    auto a = Address::fromIp(ip, 1);
    ASSERT_TRUE(a.ok()) << ip;
    EXPECT_EQ(a->ip(), ip);
    sockaddr_storage sa;
    const socklen_t len = a->toSockaddr(sa);
    EXPECT_EQ(Address::fromSockaddr(reinterpret_cast<const sockaddr*>(&sa), len).ip(), ip);
  }
  // Leading zeros are not part of the canonical text.
  EXPECT_FALSE(Address::fromIp("010.0.0.1", 1).ok());
}

// Every kind survives the trip through its socket form (bind and connect use it), and stays
// small enough to copy per request.
TEST(Address, RoundTripsThroughItsSocketForm) {
  static_assert(sizeof(Address) <= 72, "a stream copies three addresses per request");
  for (const auto& a : {*Address::fromIp("10.1.2.3", 8000), *Address::fromIp("2001:db8::7", 443),
                        *Address::fromIp("::ffff:10.9.9.9", 1), Address::fromPipe("/run/p.sock")}) {
    sockaddr_storage sa;
    const socklen_t len = a.toSockaddr(sa);
    ASSERT_GT(len, 0u);
    const Address back = Address::fromSockaddr(reinterpret_cast<const sockaddr*>(&sa), len);
    EXPECT_EQ(back.asString(), a.asString());
    EXPECT_EQ(back.family(), a.family());
    EXPECT_EQ(back.rawIp(), a.rawIp());
    EXPECT_EQ(back.isLoopback(), a.isLoopback());
  }
  EXPECT_EQ(Address::fromPipe("/run/p.sock").family(), AF_UNIX);
  sockaddr_storage sa;
  EXPECT_EQ(Address().toSockaddr(sa), 0u);
  // A socket address shorter than its family's is not read past its end.
  sockaddr_in short_v4{};
  short_v4.sin_family = AF_INET;
  EXPECT_FALSE(Address::fromSockaddr(reinterpret_cast<const sockaddr*>(&short_v4), 4).isIp());
}

TEST(Address, APipePathTooLongForASocketIsRefusedNotCut) {
  const std::string fits = "/tmp/" + std::string(Address::kMaxPipePathBytes - 5, 'a');
  const std::string over = fits + "b";
  sockaddr_storage sa;
  EXPECT_GT(Address::fromPipe(fits).toSockaddr(sa), 0u);
  const Address a = Address::fromPipe(over);
  EXPECT_EQ(a.path(), over) << "kept whole, so nothing binds a shorter path by mistake";
  EXPECT_EQ(a.toSockaddr(sa), 0u);
  const auto fd = createListenSocket(a, 16, 0);
  ASSERT_FALSE(fd.ok());
  EXPECT_NE(fd.status().message().find("a Unix socket path holds at most 107"), std::string::npos)
      << fd.status();
}

TEST(CidrRange, MatchesV4AndV6) {
  auto r = CidrRange::parse("10.0.0.0/8");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->contains(*Address::fromIp("10.1.2.3", 0)));
  EXPECT_FALSE(r->contains(*Address::fromIp("11.1.2.3", 0)));
  EXPECT_TRUE(r->contains(*Address::fromIp("::ffff:10.9.9.9", 0)));
  auto v6 = CidrRange::parse("fd00::/8");
  ASSERT_TRUE(v6.ok());
  EXPECT_TRUE(v6->contains(*Address::fromIp("fd12::1", 0)));
  EXPECT_FALSE(v6->contains(*Address::fromIp("fe80::1", 0)));
  EXPECT_FALSE(v6->contains(*Address::fromIp("10.0.0.1", 0)));
  auto single = CidrRange::parse("192.168.1.7");
  ASSERT_TRUE(single.ok());
  EXPECT_EQ(single->asString(), "192.168.1.7/32");
  EXPECT_TRUE(single->contains(*Address::fromIp("192.168.1.7", 0)));
  EXPECT_FALSE(single->contains(*Address::fromIp("192.168.1.8", 0)));
  auto odd = CidrRange::parse("172.16.0.0/12");
  EXPECT_TRUE(odd->contains(*Address::fromIp("172.31.255.255", 0)));
  EXPECT_FALSE(odd->contains(*Address::fromIp("172.32.0.0", 0)));
  EXPECT_FALSE(CidrRange::parse("10.0.0.0/33").ok());
  EXPECT_FALSE(CidrRange::parse("nope/8").ok());
}

TEST(CidrRange, AnIpv4MappedRangeIsItsIpv4Range) {
  // Written either way, a range holds the same peers: IPv4 ones and their mapped forms.
  for (const char* text : {"::ffff:127.0.0.1", "::ffff:127.0.0.0/104", "::ffff:7f00:1"}) {
    auto r = CidrRange::parse(text);
    ASSERT_TRUE(r.ok()) << text;
    EXPECT_TRUE(r->contains(*Address::fromIp("127.0.0.1", 0))) << text;
    EXPECT_TRUE(r->contains(*Address::fromIp("::ffff:127.0.0.1", 0))) << text;
    EXPECT_FALSE(r->contains(*Address::fromIp("10.0.0.1", 0))) << text;
  }
  EXPECT_EQ(CidrRange::parse("::ffff:10.1.2.3/120")->asString(), "10.1.2.0/24");
  // A range wider than the mapped block stays IPv6.
  EXPECT_EQ(CidrRange::parse("::ffff:0:0/80")->asString(), "::/80");
}

} // namespace
} // namespace pounce::network
