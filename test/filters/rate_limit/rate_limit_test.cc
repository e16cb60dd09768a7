#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "source/filters/rate_limit/rate_limit.h"
#include "test/test_common/filter_harness.h"

namespace pounce::filters::rate_limit {
namespace {

using namespace std::chrono_literals;
using test::FilterHarness;

ClientKey key(const std::string& ip, uint32_t prefix = 64) {
  return ClientKey::fromAddress(*network::Address::fromIp(ip, 1), prefix);
}

TEST(ClientBuckets, WorkedExampleFromTheHeader) {
  test::SimulatedTimeSource time;
  ClientBuckets buckets(1.0, 2, 100, time);
  const ClientKey k = key("192.0.2.1");
  auto d = buckets.consume(k);
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.remaining, 1u);
  EXPECT_EQ(d.reset, 1s);
  d = buckets.consume(k);
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.remaining, 0u);
  EXPECT_EQ(d.reset, 2s);
  d = buckets.consume(k);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after, 1s);
  time.advance(500ms);
  d = buckets.consume(k);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after, 500ms);
  time.advance(500ms);
  EXPECT_TRUE(buckets.consume(k).allowed);
  time.advance(2s);
  // Full again: two in a row, not three.
  EXPECT_TRUE(buckets.consume(k).allowed);
  EXPECT_TRUE(buckets.consume(k).allowed);
  EXPECT_FALSE(buckets.consume(k).allowed);
}

TEST(ClientBuckets, RefillNeverExceedsBurst) {
  test::SimulatedTimeSource time;
  ClientBuckets buckets(10.0, 3, 100, time);
  const ClientKey k = key("192.0.2.1");
  time.advance(1h);
  int allowed = 0;
  for (int i = 0; i < 10; ++i) {
    allowed += buckets.consume(k).allowed ? 1 : 0;
  }
  EXPECT_EQ(allowed, 3);
}

TEST(ClientBuckets, FractionalRates) {
  test::SimulatedTimeSource time;
  ClientBuckets buckets(0.5, 1, 100, time); // one request every 2 s
  const ClientKey k = key("192.0.2.1");
  EXPECT_TRUE(buckets.consume(k).allowed);
  auto d = buckets.consume(k);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after, 2s);
  time.advance(1999ms);
  EXPECT_FALSE(buckets.consume(k).allowed);
  time.advance(1ms);
  EXPECT_TRUE(buckets.consume(k).allowed);
}

TEST(ClientBuckets, ClientsHaveSeparateBuckets) {
  test::SimulatedTimeSource time;
  ClientBuckets buckets(1.0, 1, 100, time);
  EXPECT_TRUE(buckets.consume(key("192.0.2.1")).allowed);
  EXPECT_FALSE(buckets.consume(key("192.0.2.1")).allowed);
  EXPECT_TRUE(buckets.consume(key("192.0.2.2")).allowed);
}

TEST(ClientKey, GroupsIpv6ByPrefixAndMapsV4) {
  EXPECT_EQ(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"));
  EXPECT_FALSE(key("2001:db8:1:2::1") == key("2001:db8:1:3::1"));
  EXPECT_FALSE(key("2001:db8:1:2::1", 128) == key("2001:db8:1:2::2", 128));
  EXPECT_EQ(key("2001:db8:1:2::1", 48), key("2001:db8:1:3::1", 48));
  EXPECT_EQ(key("2001:db8:1:2::1", 60), key("2001:db8:1:f::1", 60));
  EXPECT_FALSE(key("2001:db8:1:2::1", 60) == key("2001:db8:1:12::1", 60));
  EXPECT_EQ(key("::ffff:192.0.2.1"), key("192.0.2.1"));
  EXPECT_FALSE(key("192.0.2.1") == key("192.0.2.2"));
}

TEST(ClientBuckets, TableIsBoundedAndForgetsLeastRecentlySeen) {
  test::SimulatedTimeSource time;
  ClientBuckets buckets(1.0, 1, 100, time);
  for (int i = 0; i < 1000; ++i) {
    EXPECT_TRUE(
        buckets.consume(key("10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250)))
            .allowed);
  }
  EXPECT_LE(buckets.trackedClients(), 100u);
  EXPECT_GE(buckets.trackedClients(), 90u);
  // The first client was forgotten: it starts again with a full bucket.
  EXPECT_TRUE(buckets.consume(key("10.0.0.0")).allowed);
}

TEST(ClientBuckets, RefilledBucketsAreEvictedAsNewClientsArrive) {
  test::SimulatedTimeSource time;
  ClientBuckets buckets(1.0, 1, 1000, time);
  for (int i = 0; i < 200; ++i) {
    buckets.consume(key("10.0.0." + std::to_string(i)));
  }
  EXPECT_EQ(buckets.trackedClients(), 200u);
  time.advance(2s); // all of them are full again, i.e. idle
  for (int i = 0; i < 150; ++i) {
    buckets.consume(key("10.1.0." + std::to_string(i)));
  }
  // Each insert dropped up to two idle buckets from the cold end of its shard.
  EXPECT_LT(buckets.trackedClients(), 250u);
}

TEST(ClientBuckets, SharedAcrossThreadsWithoutOverAdmitting) {
  test::SimulatedTimeSource time; // frozen: no refill while the threads run
  ClientBuckets buckets(1.0, 1000, 100000, time);
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 1000; ++i) {
        if (buckets.consume(key("192.0.2.1")).allowed) {
          allowed.fetch_add(1);
        }
        buckets.consume(key("198.51." + std::to_string(t) + "." + std::to_string(i % 200)));
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(allowed.load(), 1000);
}

TEST(CeilSeconds, RoundsUpWithAFloor) {
  EXPECT_EQ(ceilSeconds(1ns, 1), 1u);
  EXPECT_EQ(ceilSeconds(100ms, 1), 1u);
  EXPECT_EQ(ceilSeconds(1s, 1), 1u);
  EXPECT_EQ(ceilSeconds(1001ms, 1), 2u);
  EXPECT_EQ(ceilSeconds(0ns, 1), 1u);
  EXPECT_EQ(ceilSeconds(0ns, 0), 0u);
}

class RateLimitTest : public testing::Test {
protected:
  void configure(const std::string& yaml) {
    auto f = FilterHarness::factoriesFromYaml(
        {{"pounce.filters.rate_limit", yaml}, {"pounce.filters.direct_response", ""}}, server_);
    ASSERT_TRUE(f.ok()) << f.status();
    factories_ = *f;
  }

  std::unique_ptr<FilterHarness> run(const std::string& client = "192.0.2.1") {
    auto h = std::make_unique<FilterHarness>(factories_);
    if (!client.empty()) {
      h->info().client_address = *network::Address::fromIp(client, 1234);
    }
    h->sendHeaders(FilterHarness::request("GET", "/"), true);
    return h;
  }

  int64_t metric(const std::string& name) { return stats::Store::global().valueOf(name, {"test"}); }

  test::FakeServerContext server_;
  std::vector<http::FilterFactoryCb> factories_;
};

TEST_F(RateLimitTest, RejectsWith429AfterBurst) {
  configure("requests_per_second: 2\nburst: 3");
  const int64_t rejected = metric("rate_limit_rejected_total");
  for (int i = 0; i < 3; ++i) {
    auto h = run();
    EXPECT_EQ(h->response.status, 200);
    EXPECT_FALSE(h->response.headers.has("ratelimit-limit")); // only on 429 by default
  }
  auto h = run();
  EXPECT_EQ(h->response.status, 429);
  EXPECT_EQ(h->response.body, "Too Many Requests\n");
  EXPECT_EQ(h->response.headers.getOr("retry-after"), "1");
  EXPECT_EQ(h->response.headers.getOr("ratelimit-limit"), "3");
  EXPECT_EQ(h->response.headers.getOr("ratelimit-remaining"), "0");
  EXPECT_EQ(h->response.headers.getOr("ratelimit-reset"), "2"); // 1.5 s until full
  EXPECT_TRUE(h->info().hasFlag(http::ResponseFlag::RateLimited));
  EXPECT_EQ(metric("rate_limit_rejected_total"), rejected + 1);
}

TEST_F(RateLimitTest, RetryAfterIsWholeSecondsRoundedUp) {
  configure("requests_per_second: 0.25\nburst: 1");
  run();
  auto h = run();
  EXPECT_EQ(h->response.headers.getOr("retry-after"), "4");
  server_.time_.advance(2500ms);
  h = run();
  EXPECT_EQ(h->response.status, 429);
  EXPECT_EQ(h->response.headers.getOr("retry-after"), "2"); // 1.5 s
  server_.time_.advance(1500ms);
  EXPECT_EQ(run()->response.status, 200);
}

TEST_F(RateLimitTest, KeysOnClientAddressNotPeer) {
  configure("requests_per_second: 1\nburst: 1");
  // The harness peer is 10.0.0.1 for every request; proxy_headers would have set these.
  EXPECT_EQ(run("198.51.100.1")->response.status, 200);
  EXPECT_EQ(run("198.51.100.2")->response.status, 200);
  EXPECT_EQ(run("198.51.100.1")->response.status, 429);
}

TEST_F(RateLimitTest, ClientsWithoutIpAreNotLimited) {
  configure("requests_per_second: 1\nburst: 1");
  for (int i = 0; i < 3; ++i) {
    auto h = std::make_unique<FilterHarness>(factories_);
    h->info().client_address = network::Address::fromPipe("/run/x.sock");
    h->sendHeaders(FilterHarness::request("GET", "/"), true);
    EXPECT_EQ(h->response.status, 200);
  }
}

TEST_F(RateLimitTest, ShadowModeCountsButLetsThrough) {
  configure("requests_per_second: 1\nburst: 1\nshadow: true");
  const int64_t shadow = metric("rate_limit_shadow_rejected_total");
  const int64_t rejected = metric("rate_limit_rejected_total");
  for (int i = 0; i < 4; ++i) {
    auto h = run();
    EXPECT_EQ(h->response.status, 200);
    EXPECT_FALSE(h->info().hasFlag(http::ResponseFlag::RateLimited));
  }
  EXPECT_EQ(metric("rate_limit_shadow_rejected_total"), shadow + 3);
  EXPECT_EQ(metric("rate_limit_rejected_total"), rejected);
}

TEST_F(RateLimitTest, ResponseHeadersOnAllowedResponsesWhenAsked) {
  configure("requests_per_second: 1\nburst: 5\nresponse_headers: true");
  auto h = run();
  EXPECT_EQ(h->response.status, 200);
  EXPECT_EQ(h->response.headers.getOr("ratelimit-limit"), "5");
  EXPECT_EQ(h->response.headers.getOr("ratelimit-remaining"), "4");
  EXPECT_EQ(h->response.headers.getOr("ratelimit-reset"), "1");
  h = run();
  EXPECT_EQ(h->response.headers.getOr("ratelimit-remaining"), "3");
  EXPECT_EQ(h->response.headers.getOr("ratelimit-reset"), "2");
}

TEST_F(RateLimitTest, DefaultBurstIsOneSecondOfRequests) {
  configure("requests_per_second: 2.5");
  int ok = 0;
  for (int i = 0; i < 5; ++i) {
    ok += run()->response.status == 200 ? 1 : 0;
  }
  EXPECT_EQ(ok, 3);
}

TEST_F(RateLimitTest, Ipv6ClientsShareTheirSlash64ByDefault) {
  configure("requests_per_second: 1\nburst: 1");
  EXPECT_EQ(run("2001:db8::1")->response.status, 200);
  EXPECT_EQ(run("2001:db8::2")->response.status, 429);
  configure("requests_per_second: 1\nburst: 1\nipv6_prefix_length: 128");
  EXPECT_EQ(run("2001:db8::1")->response.status, 200);
  EXPECT_EQ(run("2001:db8::2")->response.status, 200);
}

TEST(RateLimitConfig, RejectsBadValues) {
  test::FakeServerContext server;
  auto error = [&](const std::string& yaml) {
    auto f = FilterHarness::factoriesFromYaml({{"pounce.filters.rate_limit", yaml}}, server);
    EXPECT_FALSE(f.ok()) << yaml;
    return f.ok() ? std::string() : std::string(f.status().message());
  };
  EXPECT_NE(error("").find("requests_per_second"), std::string::npos);
  EXPECT_NE(error("requests_per_second: -1").find("requests_per_second"), std::string::npos);
  EXPECT_NE(error("requests_per_second: 1\nburst: 0").find("burst"), std::string::npos);
  EXPECT_NE(error("requests_per_second: 0.00001\nburst: 1000").find("year"), std::string::npos);
  EXPECT_NE(error("requests_per_second: 1\nmax_tracked_clients: 0").find("max_tracked_clients"),
            std::string::npos);
  EXPECT_NE(error("requests_per_second: 1\nipv6_prefix_length: 129").find("ipv6_prefix_length"),
            std::string::npos);
}

} // namespace
} // namespace pounce::filters::rate_limit
