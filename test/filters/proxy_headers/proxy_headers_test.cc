#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "source/common/logger.h"
#include "source/filters/proxy_headers/proxy_headers.h"
#include "test/test_common/filter_harness.h"

namespace pounce::filters::proxy_headers {
namespace {

using test::FilterHarness;
using Headers = std::vector<std::pair<std::string, std::string>>;

class ProxyHeadersTest : public testing::Test {
protected:
  void configure(const std::string& yaml) {
    auto f = FilterHarness::factoriesFromYaml(
        {{"pounce.filters.proxy_headers", yaml}, {"pounce.filters.direct_response", ""}}, server_);
    ASSERT_TRUE(f.ok()) << f.status();
    factories_ = *f;
  }

  // Runs one request from `peer` (port 5555) through the chain.
  std::unique_ptr<FilterHarness> run(const std::string& peer, const Headers& headers) {
    auto h = std::make_unique<FilterHarness>(factories_);
    auto address = network::Address::fromIp(peer, 5555);
    EXPECT_TRUE(address.ok());
    h->info().peer_address = *address;
    h->info().client_address = *address;
    h->sendHeaders(FilterHarness::request("GET", "/", headers), true);
    EXPECT_EQ(h->response.status, 200);
    return h;
  }

  // The client address the app would see for a request with this X-Forwarded-For.
  std::string clientFor(const std::string& peer, const std::string& xff) {
    auto h = run(peer, {{"x-forwarded-for", xff}});
    return h->info().client_address.ip();
  }

  test::FakeServerContext server_;
  std::vector<http::FilterFactoryCb> factories_;
};

// --- Envoy's eight X-Forwarded-For examples (configuration/http/http_conn_man/headers.rst).
// Envoy's `xff_num_trusted_hops: N` with use_remote_address=false reads the (N+1)-th entry
// from the right; pounce counts the trusted peer's own entry, so it is
// forwarded_for_trusted_hops = N + 1. With use_remote_address=true Envoy reads the N-th
// entry, which is forwarded_for_trusted_hops = N. Envoy's xff_trusted_cidrs are pounce's
// trusted_hosts ranges, skipped while walking from the right.

TEST_F(ProxyHeadersTest, EnvoyExample1EdgeWithoutTrustedProxyIgnoresXff) {
  configure("trusted_hosts: ['10.0.0.0/8']");
  auto h = run("192.0.2.5", {{"x-forwarded-for", "203.0.113.128, 203.0.113.10, 203.0.113.1"}});
  EXPECT_EQ(h->info().client_address.ip(), "192.0.2.5");
  EXPECT_EQ(h->info().client_address.port(), 5555);
  EXPECT_FALSE(h->info().peer_trusted);
  EXPECT_FALSE(h->info().request_headers->has("x-forwarded-for"));
}

TEST_F(ProxyHeadersTest, EnvoyExample2InternalBehindEdgeTakesLastEntry) {
  configure("trusted_hosts: ['10.0.0.0/8']");
  EXPECT_EQ(clientFor("10.11.12.13", "203.0.113.128, 203.0.113.10, 203.0.113.1, 192.0.2.5"),
            "192.0.2.5");
}

TEST_F(ProxyHeadersTest, EnvoyExample3EdgeWithTwoTrustedProxies) {
  configure("trusted_hosts: ['192.0.2.5']\nforwarded_for_trusted_hops: 2");
  EXPECT_EQ(clientFor("192.0.2.5", "203.0.113.128, 203.0.113.10, 203.0.113.1"), "203.0.113.10");
}

TEST_F(ProxyHeadersTest, EnvoyExample4InternalBehindEdgeOfExample3) {
  configure("trusted_hosts: ['10.0.0.0/8']\nforwarded_for_trusted_hops: 3");
  EXPECT_EQ(clientFor("10.11.12.13", "203.0.113.128, 203.0.113.10, 203.0.113.1, 192.0.2.5"),
            "203.0.113.10");
}

TEST_F(ProxyHeadersTest, EnvoyExample4WithTheProxiesListedInsteadOfCounted) {
  configure("trusted_hosts: ['10.0.0.0/8', '192.0.2.5', '203.0.113.1']");
  EXPECT_EQ(clientFor("10.11.12.13", "203.0.113.128, 203.0.113.10, 203.0.113.1, 192.0.2.5"),
            "203.0.113.10");
}

TEST_F(ProxyHeadersTest, EnvoyExample5InternalClientWithoutXff) {
  configure("trusted_hosts: ['10.0.0.0/8']");
  auto h = run("10.20.30.40", {});
  EXPECT_EQ(h->info().client_address.ip(), "10.20.30.40");
  EXPECT_EQ(h->info().client_address.port(), 5555);
  EXPECT_TRUE(h->info().peer_trusted);
}

TEST_F(ProxyHeadersTest, EnvoyExample6InternalProxyForwardingInternalClient) {
  configure("trusted_hosts: ['10.20.30.50']");
  EXPECT_EQ(clientFor("10.20.30.50", "10.20.30.40"), "10.20.30.40");
  // Also when the whole internal range is trusted: the list runs out, leftmost wins.
  configure("trusted_hosts: ['10.0.0.0/8']");
  EXPECT_EQ(clientFor("10.20.30.50", "10.20.30.40"), "10.20.30.40");
}

TEST_F(ProxyHeadersTest, EnvoyExample7OneTrustedCidr) {
  // Envoy's docs list 192.0.2.1 here, but its implementation (and its XffTrustedCidrsTest
  // Recurse test) skip every entry inside a trusted range, as pounce does.
  configure("trusted_hosts: ['192.0.2.0/24']");
  EXPECT_EQ(clientFor("192.0.2.5", "203.0.113.128, 203.0.113.10, 192.0.2.1"), "203.0.113.10");
}

TEST_F(ProxyHeadersTest, EnvoyExample8TwoTrustedCidrs) {
  configure("trusted_hosts: ['192.0.2.0/24', '198.51.100.0/24']");
  EXPECT_EQ(clientFor("192.0.2.5", "203.0.113.128, 203.0.113.10, 198.51.100.1"), "203.0.113.10");
}

// Envoy's XffTrustedCidrsTest vectors (test/extensions/http/original_ip_detection/xff).
TEST_F(ProxyHeadersTest, EnvoyTrustedCidrVectors) {
  configure("trusted_hosts: ['192.0.2.0/24', '198.51.100.0/24', '2001:db8:7e57:1::/64']");
  EXPECT_EQ(clientFor("192.0.2.11", "1.2.3.4,2.2.2.2"), "2.2.2.2");
  EXPECT_EQ(clientFor("2001:db8:7e57:1::1", "1.2.3.4,2.2.2.2"), "2.2.2.2");
  EXPECT_EQ(clientFor("192.0.2.11", "1.2.3.4,2.2.2.2,192.0.2.5, 198.51.100.1"), "2.2.2.2");
  EXPECT_EQ(clientFor("192.0.2.11", "192.0.2.4,192.0.2.5, 198.51.100.1"), "192.0.2.4");
  // Remote not trusted: XFF is not used.
  EXPECT_EQ(clientFor("10.10.11.11", "1.2.3.4,2.2.2.2"), "10.10.11.11");
}

// --- pounce's own rules.

TEST_F(ProxyHeadersTest, ShortChainFallsBackToLeftmostEntry) {
  configure("trusted_hosts: ['10.0.0.1']\nforwarded_for_trusted_hops: 3");
  EXPECT_EQ(clientFor("10.0.0.1", "198.51.100.7"), "198.51.100.7");
  EXPECT_EQ(clientFor("10.0.0.1", "198.51.100.7, 203.0.113.9"), "198.51.100.7");
}

TEST_F(ProxyHeadersTest, BlankEntriesAreIgnored) {
  configure("trusted_hosts: ['10.0.0.1']");
  EXPECT_EQ(clientFor("10.0.0.1", "198.51.100.7, , 203.0.113.9,"), "203.0.113.9");
  configure("trusted_hosts: ['10.0.0.1']\nforwarded_for_trusted_hops: 2");
  EXPECT_EQ(clientFor("10.0.0.1", "198.51.100.7, , 203.0.113.9,"), "198.51.100.7");
}

TEST_F(ProxyHeadersTest, UnparsableClientEntryKeepsThePeer) {
  configure("trusted_hosts: ['10.0.0.1']");
  EXPECT_EQ(clientFor("10.0.0.1", "198.51.100.7, unknown"), "10.0.0.1");
  EXPECT_EQ(clientFor("10.0.0.1", "localhost"), "10.0.0.1");
  EXPECT_EQ(clientFor("10.0.0.1", "1.2.3.4:99999"), "10.0.0.1");
  EXPECT_EQ(clientFor("10.0.0.1", "[::1"), "10.0.0.1");
  EXPECT_EQ(clientFor("10.0.0.1", "[192.0.2.1]"), "10.0.0.1") << "brackets hold IPv6 only";
  EXPECT_EQ(clientFor("10.0.0.1", "[192.0.2.1]:80"), "10.0.0.1");
}

TEST_F(ProxyHeadersTest, ClientPortComesFromTheEntryOrIsZero) {
  configure("trusted_hosts: ['10.0.0.1']");
  auto h = run("10.0.0.1", {{"x-forwarded-for", "[2001:db8::1]:4711"}});
  EXPECT_EQ(h->info().client_address.ip(), "2001:db8::1");
  EXPECT_EQ(h->info().client_address.port(), 4711);
  h = run("10.0.0.1", {{"x-forwarded-for", "192.0.2.1:80"}});
  EXPECT_EQ(h->info().client_address.asString(), "192.0.2.1:80");
  h = run("10.0.0.1", {{"x-forwarded-for", "2001:db8::2"}});
  EXPECT_EQ(h->info().client_address.asString(), "[2001:db8::2]:0");
}

TEST_F(ProxyHeadersTest, SeveralXffFieldsAreOneListInOrder) {
  configure("trusted_hosts: ['10.0.0.1']");
  auto h =
      run("10.0.0.1", {{"x-forwarded-for", "198.51.100.7"}, {"x-forwarded-for", "203.0.113.9"}});
  EXPECT_EQ(h->info().client_address.ip(), "203.0.113.9");
  configure("trusted_hosts: ['10.0.0.1']\nforwarded_for_trusted_hops: 2");
  h = run("10.0.0.1", {{"x-forwarded-for", "198.51.100.7"}, {"x-forwarded-for", "203.0.113.9"}});
  EXPECT_EQ(h->info().client_address.ip(), "198.51.100.7");
}

TEST_F(ProxyHeadersTest, SchemeFromTrustedXForwardedProto) {
  configure("trusted_hosts: ['10.0.0.1']");
  auto scheme = [&](const std::string& proto) {
    auto h = run("10.0.0.1", {{"x-forwarded-proto", proto}});
    return h->info().request_headers->scheme();
  };
  EXPECT_EQ(scheme("https"), "https");
  EXPECT_EQ(scheme("HTTPS"), "https");
  EXPECT_EQ(scheme("wss"), "https");
  EXPECT_EQ(scheme("ws"), "http");
  EXPECT_EQ(scheme("ftp"), "http");
  // The value the nearest trusted proxy appended.
  EXPECT_EQ(scheme("https, http"), "http");
  // Several fields are one list.
  auto h = run("10.0.0.1", {{"x-forwarded-proto", "http"}, {"x-forwarded-proto", "https"}});
  EXPECT_EQ(h->info().request_headers->scheme(), "https");
  h = run("10.0.0.1", {{"x-forwarded-host", "a.example"}, {"x-forwarded-host", "b.example"}});
  EXPECT_EQ(h->info().request_headers->authority(), "b.example");
}

TEST_F(ProxyHeadersTest, HostFromTrustedXForwardedHost) {
  configure("trusted_hosts: ['10.0.0.1']");
  auto h = run("10.0.0.1", {{"x-forwarded-host", "app.example.org:8443"}});
  EXPECT_EQ(h->info().request_headers->authority(), "app.example.org:8443");
  EXPECT_EQ(h->info().request_headers->getOr("host"), "app.example.org:8443");
  EXPECT_EQ(h->info().request_headers->count("host"), 1u);
  h = run("10.0.0.1", {{"x-forwarded-host", "[2001:db8::1]:8080"}});
  EXPECT_EQ(h->info().request_headers->authority(), "[2001:db8::1]:8080");
  h = run("10.0.0.1", {{"x-forwarded-host", "192.0.2.7:65535"}});
  EXPECT_EQ(h->info().request_headers->authority(), "192.0.2.7:65535");
  // Not a host: an empty name, a port that is not digits or over 65535, two ports, other
  // characters, a bracketed IPv4 or a literal that is not an IPv6 address.
  for (const char* bad : {"evil.com/path",
                          "a b",
                          "x@y",
                          "[::1",
                          "x]:80",
                          "",
                          ":80",
                          "ex.com:abc",
                          "ex.com:80:90",
                          "ex.com:99999999",
                          "ex.com:65536",
                          "ex.com:",
                          "*",
                          "%",
                          "a%41.example",
                          "[zz]",
                          "[1.2.3.4]",
                          "[::1]x",
                          "[::1]:",
                          "ex.com;x=y",
                          "[::1]:80:90"}) {
    h = run("10.0.0.1", {{"x-forwarded-host", bad}});
    EXPECT_EQ(h->info().request_headers->authority(), "example.com") << bad;
  }
  for (const char* good : {"a-b.example", "under_score.local", "[::ffff:1.2.3.4]:1"}) {
    EXPECT_TRUE(isValidForwardedHost(good)) << good;
  }
}

TEST_F(ProxyHeadersTest, UntrustedPeerLosesEveryForwardingHeader) {
  configure("trusted_hosts: ['10.0.0.1']");
  auto h = run("192.0.2.99", {{"X-Forwarded-For", "1.2.3.4"},
                              {"x-forwarded-proto", "https"},
                              {"x-forwarded-host", "evil.example"},
                              {"x-forwarded-port", "443"},
                              {"X-Forwarded-Prefix", "/admin"},
                              {"x-request-id", "chosen-by-client"},
                              {"forwarded", "for=1.2.3.4"},
                              {"x-real-ip", "1.2.3.4"},
                              {"user-agent", "test"}});
  const auto& req = *h->info().request_headers;
  for (const char* gone : {"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
                           "x-forwarded-port", "x-forwarded-prefix", "x-request-id"}) {
    EXPECT_FALSE(req.has(gone)) << gone;
  }
  // Forwarded is only policed when use_forwarded is on; unrelated headers stay.
  EXPECT_TRUE(req.has("forwarded"));
  EXPECT_TRUE(req.has("x-real-ip"));
  EXPECT_EQ(req.getOr("user-agent"), "test");
  EXPECT_EQ(req.scheme(), "http");
  EXPECT_EQ(req.authority(), "example.com");
  EXPECT_EQ(h->info().client_address.ip(), "192.0.2.99");
  EXPECT_FALSE(h->info().peer_trusted);
}

// Frameworks read `X_Forwarded_For` as `X-Forwarded-For` (Django's META, WSGI environs): a
// client must not get through with the underscore spelling, from an untrusted peer or
// through a trusted proxy that passes such names on.
TEST_F(ProxyHeadersTest, UnderscoreSpellingsAreStrippedFromEveryPeer) {
  configure("trusted_hosts: ['10.0.0.1']\nuse_forwarded: true");
  const Headers spoofed = {{"x_forwarded_for", "6.6.6.6"},
                           {"x_forwarded-proto", "https"},
                           {"x-forwarded_host", "evil.example"},
                           {"x_request_id", "spoof"},
                           {"x_real_ip", "6.6.6.6"},
                           {"x_forwardedfor", "kept"}};
  for (const char* peer : {"192.0.2.99", "10.0.0.1"}) {
    auto h = run(peer, spoofed);
    const auto& req = *h->info().request_headers;
    for (const char* gone :
         {"x_forwarded_for", "x_forwarded-proto", "x-forwarded_host", "x_request_id"}) {
      EXPECT_FALSE(req.has(gone)) << peer << " " << gone;
    }
    // Names that do not read as a forwarding field stay.
    EXPECT_TRUE(req.has("x_real_ip")) << peer;
    EXPECT_TRUE(req.has("x_forwardedfor")) << peer;
    EXPECT_EQ(req.scheme(), "http") << peer;
    EXPECT_EQ(req.authority(), "example.com") << peer;
    EXPECT_EQ(h->info().client_address.ip(), peer);
  }
  // The trusted proxy's own (dash-spelt) fields are used as before.
  auto h = run("10.0.0.1", {{"x-forwarded-for", "198.51.100.7"}, {"x_forwarded_for", "6.6.6.6"}});
  EXPECT_EQ(h->info().client_address.ip(), "198.51.100.7");
  EXPECT_EQ(h->info().request_headers->getOr("x-forwarded-for"), "198.51.100.7");
  EXPECT_FALSE(h->info().request_headers->has("x_forwarded_for"));
}

TEST_F(ProxyHeadersTest, NoTrustedHostsMeansStripOnly) {
  configure("");
  auto h = run("127.0.0.1", {{"x-forwarded-for", "1.2.3.4"}});
  EXPECT_FALSE(h->info().request_headers->has("x-forwarded-for"));
  EXPECT_EQ(h->info().client_address.ip(), "127.0.0.1");
}

TEST_F(ProxyHeadersTest, TrustedPeerKeepsItsHeaders) {
  configure("trusted_hosts: ['10.0.0.1']");
  auto h = run("10.0.0.1", {{"x-forwarded-for", "1.2.3.4"}, {"x-request-id", "abc"}});
  EXPECT_EQ(h->info().request_headers->getOr("x-forwarded-for"), "1.2.3.4");
  EXPECT_EQ(h->info().request_headers->getOr("x-request-id"), "abc");
}

TEST_F(ProxyHeadersTest, WildcardTrustsEveryPeerAndIsWarnedAbout) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  log::setFd(fds[1]);
  configure("trusted_hosts: ['*']");
  log::setFd(1);
  ::close(fds[1]);
  char buf[4096];
  const ssize_t n = ::read(fds[0], buf, sizeof(buf));
  ::close(fds[0]);
  ASSERT_GT(n, 0);
  const std::string logged(buf, static_cast<size_t>(n));
  EXPECT_NE(logged.find("trusts every peer"), std::string::npos) << logged;
  EXPECT_EQ(clientFor("203.0.113.50", "198.51.100.7"), "198.51.100.7");
}

TEST_F(ProxyHeadersTest, WildcardDoesNotMakeEntriesSkippable) {
  // Otherwise every entry would be "a trusted proxy" and the leftmost, which the client
  // writes, would win.
  configure("trusted_hosts: ['*']");
  EXPECT_EQ(clientFor("203.0.113.50", "6.6.6.6, 198.51.100.7"), "198.51.100.7");
}

TEST_F(ProxyHeadersTest, UnixSocketPeersAreTrustedOnlyWhenListed) {
  auto viaPipe = [&]() {
    auto h = std::make_unique<FilterHarness>(factories_);
    h->info().peer_address = network::Address::fromPipe("/run/pounce.sock");
    h->info().client_address = h->info().peer_address;
    h->sendHeaders(FilterHarness::request("GET", "/", {{"x-forwarded-for", "198.51.100.7"}}), true);
    return h;
  };
  configure("trusted_hosts: ['10.0.0.0/8']");
  EXPECT_TRUE(viaPipe()->info().client_address.isPipe());
  configure("trusted_hosts: ['unix']");
  auto h = viaPipe();
  EXPECT_TRUE(h->info().peer_trusted);
  EXPECT_EQ(h->info().client_address.ip(), "198.51.100.7");
}

TEST_F(ProxyHeadersTest, LocalhostTrustsBothLoopbackAddresses) {
  configure("trusted_hosts: [localhost]");
  EXPECT_EQ(clientFor("127.0.0.1", "198.51.100.7"), "198.51.100.7");
  EXPECT_EQ(clientFor("::1", "198.51.100.7"), "198.51.100.7");
  EXPECT_EQ(clientFor("127.0.0.2", "198.51.100.7"), "127.0.0.2");
}

TEST_F(ProxyHeadersTest, V4MappedPeerMatchesV4Range) {
  configure("trusted_hosts: ['10.0.0.0/8']");
  EXPECT_EQ(clientFor("::ffff:10.1.2.3", "198.51.100.7"), "198.51.100.7");
}

// --- RFC 7239 Forwarded.

TEST_F(ProxyHeadersTest, ForwardedGivesClientSchemeAndHost) {
  configure("trusted_hosts: ['10.0.0.1']\nuse_forwarded: true");
  auto h = run("10.0.0.1", {{"forwarded", "for=192.0.2.43;proto=https;host=app.example"}});
  EXPECT_EQ(h->info().client_address.ip(), "192.0.2.43");
  EXPECT_EQ(h->info().request_headers->scheme(), "https");
  EXPECT_EQ(h->info().request_headers->authority(), "app.example");
}

TEST_F(ProxyHeadersTest, ForwardedWalksElementsLikeXff) {
  configure("trusted_hosts: ['10.0.0.0/8']\nuse_forwarded: true");
  auto h = run("10.0.0.1", {{"forwarded", "for=6.6.6.6;proto=http, "
                                          "For=\"[2001:db8:cafe::17]:4711\";Proto=https, "
                                          "for=10.0.0.2;proto=http"}});
  EXPECT_EQ(h->info().client_address.ip(), "2001:db8:cafe::17");
  EXPECT_EQ(h->info().client_address.port(), 4711);
  // proto comes from the same element as the client.
  EXPECT_EQ(h->info().request_headers->scheme(), "https");
}

TEST_F(ProxyHeadersTest, ForwardedWinsOverXForwarded) {
  configure("trusted_hosts: ['10.0.0.1']\nuse_forwarded: true");
  auto h = run("10.0.0.1", {{"forwarded", "for=192.0.2.43"}, {"x-forwarded-for", "198.51.100.7"}});
  EXPECT_EQ(h->info().client_address.ip(), "192.0.2.43");
  // Without a Forwarded header X-Forwarded-For is used.
  h = run("10.0.0.1", {{"x-forwarded-for", "198.51.100.7"}});
  EXPECT_EQ(h->info().client_address.ip(), "198.51.100.7");
}

TEST_F(ProxyHeadersTest, ForwardedIsIgnoredUnlessEnabled) {
  configure("trusted_hosts: ['10.0.0.1']");
  auto h = run("10.0.0.1", {{"forwarded", "for=192.0.2.43"}});
  EXPECT_EQ(h->info().client_address.ip(), "10.0.0.1");
}

TEST_F(ProxyHeadersTest, MalformedOrHiddenForwardedKeepsThePeer) {
  configure("trusted_hosts: ['10.0.0.1']\nuse_forwarded: true");
  auto h = run("10.0.0.1", {{"forwarded", "for=\"192.0.2.43"}, {"x-forwarded-for", "1.2.3.4"}});
  EXPECT_EQ(h->info().client_address.ip(), "10.0.0.1");
  h = run("10.0.0.1", {{"forwarded", "for=unknown;proto=https"}});
  EXPECT_EQ(h->info().client_address.ip(), "10.0.0.1");
  EXPECT_EQ(h->info().request_headers->scheme(), "https");
  h = run("10.0.0.1", {{"forwarded", "for=_hidden"}});
  EXPECT_EQ(h->info().client_address.ip(), "10.0.0.1");
  // A parameter given twice is malformed: neither value is believed.
  h = run("10.0.0.1", {{"forwarded", "for=192.0.2.43;host=a.example;host=evil.example"}});
  EXPECT_EQ(h->info().client_address.ip(), "10.0.0.1");
  EXPECT_EQ(h->info().request_headers->authority(), "example.com");
}

TEST_F(ProxyHeadersTest, GarbageOnTheLeftDoesNotVoidWhatTheProxyAppended) {
  // The client controls the left of the list; its proxy's element on the right is what
  // the walk reads. Before, the client's garbage voided the whole header, and the client
  // took the proxy's own address.
  configure("trusted_hosts: ['10.0.0.1']\nuse_forwarded: true");
  for (const char* garbage : {"for=\"", "by=x;by=y", "for=1.2.3.4;for=5.6.7.8", "=="}) {
    auto h = run("10.0.0.1", {{"forwarded", garbage},
                              {"forwarded", "for=203.0.113.7;proto=https;host=real.example"}});
    EXPECT_EQ(h->info().client_address.ip(), "203.0.113.7") << garbage;
    EXPECT_EQ(h->info().request_headers->scheme(), "https") << garbage;
    EXPECT_EQ(h->info().request_headers->authority(), "real.example") << garbage;
    // The same on one line, as a proxy that appends with ", " writes it.
    h = run("10.0.0.1", {{"forwarded", std::string(garbage) +
                                           ", for=203.0.113.7;proto=https;host=real.example"}});
    EXPECT_EQ(h->info().client_address.ip(), "203.0.113.7") << garbage;
  }
  // A Forwarded of empty members only is as none: X-Forwarded-For is used.
  for (const char* empty : {"", " ", " , ,"}) {
    auto h = run("10.0.0.1", {{"forwarded", empty}, {"x-forwarded-for", "198.51.100.7"}});
    EXPECT_EQ(h->info().client_address.ip(), "198.51.100.7") << '"' << empty << '"';
  }
  // Garbage where the client's element should be: nothing in it is believed.
  auto h = run("10.0.0.1", {{"forwarded", "for=203.0.113.7, for=1.2.3.4;proto=https;proto=http"},
                            {"x-forwarded-for", "198.51.100.7"}});
  EXPECT_EQ(h->info().client_address.ip(), "10.0.0.1");
  EXPECT_EQ(h->info().request_headers->scheme(), "http");
}

TEST_F(ProxyHeadersTest, ForwardedSkipsEmptyMembersAndTakesObfuscatedPorts) {
  configure("trusted_hosts: ['10.0.0.0/8']\nuse_forwarded: true");
  // RFC 9110 §5.6.1: empty list members are not hops.
  for (const char* value : {"for=192.0.2.43,", "for=192.0.2.43, , for=10.0.0.3", ", for=192.0.2.43",
                            "for=192.0.2.43,,"}) {
    auto h = run("10.0.0.1", {{"forwarded", value}});
    EXPECT_EQ(h->info().client_address.ip(), "192.0.2.43") << value;
  }
  // RFC 7239 §6: an obfuscated port hides the number, not the address.
  auto h = run("10.0.0.1", {{"forwarded", "for=\"192.0.2.43:_hidden\""}});
  EXPECT_EQ(h->info().client_address.ip(), "192.0.2.43");
  EXPECT_EQ(h->info().client_address.port(), 0);
  h = run("10.0.0.1", {{"forwarded", "for=\"[2001:db8::1]:_p-1.x\""}});
  EXPECT_EQ(h->info().client_address.ip(), "2001:db8::1");
  EXPECT_EQ(h->info().client_address.port(), 0);
  // "_" alone, or other characters, is not a port.
  h = run("10.0.0.1", {{"forwarded", "for=\"192.0.2.43:_\""}});
  EXPECT_EQ(h->info().client_address.ip(), "10.0.0.1");
  h = run("10.0.0.1", {{"forwarded", "for=\"192.0.2.43:_a/b\""}});
  EXPECT_EQ(h->info().client_address.ip(), "10.0.0.1");
}

TEST_F(ProxyHeadersTest, UntrustedForwardedIsStrippedWhenEnabled) {
  configure("trusted_hosts: ['10.0.0.1']\nuse_forwarded: true");
  auto h = run("192.0.2.99", {{"forwarded", "for=1.2.3.4"}});
  EXPECT_FALSE(h->info().request_headers->has("forwarded"));
  EXPECT_EQ(h->info().client_address.ip(), "192.0.2.99");
}

TEST(ForwardedParser, ParsesElementsPairsAndQuotedValues) {
  std::vector<ForwardedElement> e;
  ASSERT_TRUE(parseForwarded(
      "for=192.0.2.60;proto=http;by=203.0.113.43, for=\"[2001:db8::1]\";host=\"a.example\"", e));
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[0].for_node, "192.0.2.60");
  EXPECT_EQ(e[0].proto, "http");
  EXPECT_EQ(e[1].for_node, "[2001:db8::1]");
  EXPECT_EQ(e[1].host, "a.example");
  e.clear();
  ASSERT_TRUE(parseForwarded("for=1.2.3.4 ; proto=https ,for=5.6.7.8", e));
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[0].proto, "https");
  // A value needing escapes is not used, but the header is well-formed.
  e.clear();
  ASSERT_TRUE(parseForwarded("for=\"a\\\"b\";proto=https", e));
  EXPECT_TRUE(e[0].for_node.empty());
  EXPECT_EQ(e[0].proto, "https");
}

TEST(ForwardedParser, RejectsMalformedHeaders) {
  std::vector<ForwardedElement> e;
  for (const char* bad : {"", "for", "for=", "for=\"1.2.3.4", "=1.2.3.4", "for=1.2.3.4 x",
                          "for=[::1]", "for=1.2.3.4;FOR=5.6.7.8", "by=a;proto=http;by=b"}) {
    e.clear();
    EXPECT_FALSE(parseForwarded(bad, e)) << bad;
    for (const auto& element : e) {
      EXPECT_FALSE(element.valid) << bad;
    }
  }
  // Empty members are skipped; only commas is well-formed and has no element.
  e.clear();
  ASSERT_TRUE(parseForwarded(" , ,", e));
  EXPECT_TRUE(e.empty());
  ASSERT_TRUE(parseForwarded("for=a, ,for=b", e));
  EXPECT_EQ(e.size(), 2u);
}

TEST(ForwardedParser, AMalformedElementKeepsItsPlaceAndParsingGoesOn) {
  for (const char* value :
       {"for=\", for=203.0.113.7;proto=https", "by=x;by=y, for=203.0.113.7;proto=https",
        "for=1.2.3.4 x, for=203.0.113.7;proto=https",
        "for=[::1];proto=http, for=203.0.113.7;proto=https",
        "=; for=9.9.9.9 ,for=203.0.113.7;proto=https"}) {
    std::vector<ForwardedElement> e;
    EXPECT_FALSE(parseForwarded(value, e)) << value;
    ASSERT_EQ(e.size(), 2u) << value;
    EXPECT_FALSE(e[0].valid) << value;
    EXPECT_TRUE(e[0].for_node.empty() && e[0].proto.empty()) << value;
    EXPECT_TRUE(e[1].valid) << value;
    EXPECT_EQ(e[1].for_node, "203.0.113.7") << value;
    EXPECT_EQ(e[1].proto, "https") << value;
  }
}

TEST(ProxyHeadersConfig, RejectsBadEntries) {
  test::FakeServerContext server;
  auto bad = [&](const std::string& yaml) {
    auto f = FilterHarness::factoriesFromYaml({{"pounce.filters.proxy_headers", yaml}}, server);
    EXPECT_FALSE(f.ok()) << yaml;
    return f.ok() ? std::string() : std::string(f.status().message());
  };
  EXPECT_NE(bad("trusted_hosts: ['10.0.0.0/33']").find("trusted_hosts[0]"), std::string::npos);
  EXPECT_NE(bad("trusted_hosts: ['10.0.0.1', 'proxy.local']").find("trusted_hosts[1]"),
            std::string::npos);
  EXPECT_NE(bad("forwarded_for_trusted_hops: 0").find("forwarded_for_trusted_hops"),
            std::string::npos);
}

} // namespace
} // namespace pounce::filters::proxy_headers
