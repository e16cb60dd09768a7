#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "test/test_common/filter_harness.h"

namespace pounce::filters {
namespace {

using test::FilterHarness;
using Headers = std::vector<std::pair<std::string, std::string>>;

// Terminal that keeps its request (and queue slot) until the test ends.
class HoldFilter : public http::StreamFilter {
public:
  http::FilterStatus decodeHeaders(http::RequestHeaders&, bool) override {
    return http::FilterStatus::StopIteration;
  }
};

bool isGeneratedId(std::string_view id) {
  return id.size() == 32 && id.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

// proxy_headers -> request_id -> rate_limit -> request_queue -> terminal.
class EdgeChainTest : public testing::Test {
protected:
  void SetUp() override {
    auto f = FilterHarness::factoriesFromYaml(
        {{"pounce.filters.proxy_headers", "trusted_hosts: ['10.0.0.0/8']"},
         {"pounce.filters.request_id", ""},
         {"pounce.filters.rate_limit", "requests_per_second: 1\nburst: 2"},
         {"pounce.filters.request_queue", "max_concurrent: 1\nmax_queued: 0"},
         {"pounce.filters.direct_response", "body: app"}},
        server_);
    ASSERT_TRUE(f.ok()) << f.status();
    filters_ = *f;
  }

  std::vector<http::FilterFactoryCb> chain(bool hold) {
    auto c = filters_;
    if (hold) {
      c.back() = [] { return std::make_unique<HoldFilter>(); };
    }
    return c;
  }

  std::unique_ptr<FilterHarness> run(const std::string& peer, const Headers& headers,
                                     bool hold = false) {
    auto h = std::make_unique<FilterHarness>(chain(hold));
    h->info().peer_address = *network::Address::fromIp(peer, 40000);
    h->info().client_address = h->info().peer_address;
    h->sendHeaders(FilterHarness::request("GET", "/", headers), true);
    return h;
  }

  test::FakeServerContext server_;
  std::vector<http::FilterFactoryCb> filters_;
};

TEST_F(EdgeChainTest, RateLimiterKeysOnTheClientFromXForwardedFor) {
  const Headers a{{"x-forwarded-for", "198.51.100.1"}};
  const Headers b{{"x-forwarded-for", "198.51.100.2"}};
  EXPECT_EQ(run("10.0.0.1", a)->response.status, 200);
  EXPECT_EQ(run("10.0.0.2", a)->response.status, 200); // another proxy, same client
  auto limited = run("10.0.0.1", a);
  EXPECT_EQ(limited->response.status, 429);
  EXPECT_EQ(limited->info().client_address.ip(), "198.51.100.1");
  // A different client behind the same proxy has its own bucket.
  EXPECT_EQ(run("10.0.0.1", b)->response.status, 200);
}

TEST_F(EdgeChainTest, SpoofedXForwardedForFromUntrustedPeerDoesNotEscapeTheLimit) {
  EXPECT_EQ(run("203.0.113.5", {{"x-forwarded-for", "1.1.1.1"}})->response.status, 200);
  EXPECT_EQ(run("203.0.113.5", {{"x-forwarded-for", "2.2.2.2"}})->response.status, 200);
  auto h = run("203.0.113.5", {{"x-forwarded-for", "3.3.3.3"}});
  EXPECT_EQ(h->response.status, 429);
  EXPECT_EQ(h->info().client_address.ip(), "203.0.113.5");
}

TEST_F(EdgeChainTest, TheRequestIdIsSetBeforeA429AndAppearsOnIt) {
  const Headers from_edge{{"x-forwarded-for", "198.51.100.9"}, {"x-request-id", "edge-42"}};
  run("10.0.0.1", from_edge);
  run("10.0.0.1", from_edge);
  auto h = run("10.0.0.1", from_edge);
  EXPECT_EQ(h->response.status, 429);
  EXPECT_EQ(h->response.headers.getOr("x-request-id"), "edge-42");
  EXPECT_EQ(h->info().request_id, "edge-42");
  // An untrusted client's id is stripped by proxy_headers and a fresh one is generated.
  const Headers spoof{{"x-request-id", "spoofed"}};
  run("203.0.113.7", spoof);
  run("203.0.113.7", spoof);
  h = run("203.0.113.7", spoof);
  EXPECT_EQ(h->response.status, 429);
  const std::string id(h->response.headers.getOr("x-request-id"));
  EXPECT_TRUE(isGeneratedId(id)) << id;
  EXPECT_EQ(id, h->info().request_id);
}

TEST_F(EdgeChainTest, QueueSheddingComesAfterRateLimitingAndCarriesTheRequestId) {
  auto busy = run("10.0.0.1", {{"x-forwarded-for", "198.51.100.1"}}, /*hold=*/true);
  EXPECT_EQ(busy->response.status, 0); // holding the only slot
  auto shed = run("10.0.0.1", {{"x-forwarded-for", "198.51.100.2"}}, true);
  EXPECT_EQ(shed->response.status, 503);
  EXPECT_TRUE(shed->info().hasFlag(http::ResponseFlag::LoadShed));
  EXPECT_EQ(shed->response.headers.getOr("x-request-id"), shed->info().request_id);
  EXPECT_TRUE(isGeneratedId(shed->info().request_id));
  // A client over its rate gets 429 from the earlier filter and never reaches the queue.
  run("10.0.0.1", {{"x-forwarded-for", "198.51.100.2"}}, true);
  auto limited = run("10.0.0.1", {{"x-forwarded-for", "198.51.100.2"}}, true);
  EXPECT_EQ(limited->response.status, 429);
  EXPECT_FALSE(limited->info().hasFlag(http::ResponseFlag::LoadShed));
}

} // namespace
} // namespace pounce::filters
