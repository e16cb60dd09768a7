#include <gtest/gtest.h>

#include "source/network/address.h"

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
    EXPECT_EQ(Address::fromSockaddr(a->sockAddr(), a->sockAddrLen()).ip(), ip);
  }
  // Leading zeros are not part of the canonical text.
  EXPECT_FALSE(Address::fromIp("010.0.0.1", 1).ok());
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

} // namespace
} // namespace pounce::network
