#include <gtest/gtest.h>

#include <atomic>
#include <limits>
#include <thread>

#include "source/filters/metrics/metrics.h"
#include "test/test_common/filter_harness.h"

namespace pounce::filters::metrics {
namespace {

using test::FilterHarness;

int64_t requests(const std::string& method, const std::string& status) {
  return stats::Store::global().valueOf("http_requests_total", {"test", method, status});
}

// Terminal: answers when the test says so, with the given status and body.
class ManualTerminal : public http::StreamFilter {
public:
  explicit ManualTerminal(int& reached) : reached_(reached) {}
  http::FilterStatus decodeHeaders(http::RequestHeaders&, bool) override {
    ++reached_;
    return http::FilterStatus::StopIteration;
  }
  http::FilterStatus decodeData(Buffer& data, bool) override {
    data.clear();
    return http::FilterStatus::StopIteration;
  }
  void respond(int status, std::string_view body) {
    auto h = std::make_unique<http::ResponseHeaders>(status);
    h->add("content-length", std::to_string(body.size()));
    decoder_callbacks_->encodeHeaders(std::move(h), body.empty());
    if (!body.empty()) {
      Buffer b(body);
      decoder_callbacks_->encodeData(b, true);
    }
  }

private:
  int& reached_;
};

// Answers every request with a local reply of `status`.
class Rejecter : public http::StreamFilter {
public:
  explicit Rejecter(int status) : status_(status) {}
  http::FilterStatus decodeHeaders(http::RequestHeaders&, bool) override {
    decoder_callbacks_->sendLocalReply(status_, "no\n");
    return http::FilterStatus::StopIteration;
  }

private:
  int status_;
};

class MetricsTest : public testing::Test {
protected:
  // metrics + `middle` filters + a ManualTerminal.
  std::unique_ptr<FilterHarness> harness(std::string yaml = "",
                                         std::vector<http::FilterFactoryCb> middle = {}) {
    auto factories = FilterHarness::factoriesFromYaml({{"pounce.filters.metrics", yaml}}, server_);
    EXPECT_TRUE(factories.ok()) << factories.status();
    for (auto& m : middle) {
      factories->push_back(std::move(m));
    }
    factories->push_back([this]() {
      auto t = std::make_unique<ManualTerminal>(reached_);
      terminal_ = t.get();
      return t;
    });
    return std::make_unique<FilterHarness>(std::move(*factories));
  }

  test::FakeServerContext server_;
  ManualTerminal* terminal_{nullptr};
  int reached_{0}; // requests that got to the terminal
};

TEST_F(MetricsTest, CountsRequestsByMethodAndStatus) {
  const int64_t before = requests("GET", "200");
  auto h = harness();
  h->sendHeaders(FilterHarness::request("GET", "/a"), true);
  terminal_->respond(200, "hello");
  EXPECT_TRUE(h->stream_done);
  EXPECT_EQ(requests("GET", "200"), before + 1);
}

TEST_F(MetricsTest, UnknownMethodsShareTheOtherLabel) {
  const int64_t before = requests("other", "404");
  for (const char* method : {"BREW", "PROPFIND", "get"}) {
    auto h = harness();
    h->sendHeaders(FilterHarness::request(method, "/"), true);
    terminal_->respond(404, "");
  }
  EXPECT_EQ(requests("other", "404"), before + 3);
}

TEST_F(MetricsTest, CountsLocalRepliesOfLaterFilters) {
  const int64_t before = requests("POST", "429");
  auto h = harness("", {[]() { return std::make_unique<Rejecter>(429); }});
  h->sendHeaders(FilterHarness::request("POST", "/"), true);
  EXPECT_EQ(h->response.status, 429);
  EXPECT_EQ(requests("POST", "429"), before + 1);
}

TEST_F(MetricsTest, CountsProtocolErrorReplies) {
  const int64_t before = requests("other", "400");
  auto h = harness();
  h->protocolError(400);
  EXPECT_EQ(h->response.status, 400);
  EXPECT_EQ(requests("other", "400"), before + 1);
}

TEST_F(MetricsTest, StreamWithoutResponseCountsAsStatusZeroAndLeavesFlight) {
  const int64_t before = requests("GET", "0");
  const int64_t flying = stats::Store::global().valueOf("http_requests_in_flight", {"test"});
  auto h = harness();
  h->sendHeaders(FilterHarness::request("GET", "/slow"), true);
  EXPECT_EQ(stats::Store::global().valueOf("http_requests_in_flight", {"test"}), flying + 1);
  h->clientReset();
  EXPECT_EQ(stats::Store::global().valueOf("http_requests_in_flight", {"test"}), flying);
  EXPECT_EQ(requests("GET", "0"), before + 1);
}

TEST_F(MetricsTest, DurationIsObservedInTheRightBucket) {
  const stats::Series& series = stats::Store::global().series(
      stats::Store::global().family("http_request_duration_seconds", "", stats::Type::Histogram),
      {"test"});
  auto h = harness(); // registers the family with the default buckets
  const auto counts_before = series.bucketCounts();
  const double sum_before = series.sum();
  h->sendHeaders(FilterHarness::request("GET", "/"), true);
  h->time.advance(std::chrono::milliseconds(60)); // 0.05 < 0.06 <= 0.075
  terminal_->respond(200, "x");
  const auto counts = series.bucketCounts();
  const auto& buckets = defaultBuckets();
  ASSERT_EQ(counts.size(), buckets.size() + 1);
  for (size_t i = 0; i < counts.size(); ++i) {
    const bool expected = i < buckets.size() && buckets[i] == 0.075;
    EXPECT_EQ(counts[i] - counts_before[i], expected ? 1u : 0u) << "bucket " << i;
  }
  EXPECT_NEAR(series.sum() - sum_before, 0.060, 1e-9);
}

TEST_F(MetricsTest, CountsRequestAndResponseBodyBytes) {
  auto& store = stats::Store::global();
  const int64_t in = store.valueOf("http_request_bytes_total", {"test"});
  const int64_t out = store.valueOf("http_response_bytes_total", {"test"});
  auto h = harness();
  h->sendHeaders(FilterHarness::request("POST", "/up", {{"content-length", "11"}}), false);
  h->sendData("hello ", false);
  h->sendData("world", true);
  terminal_->respond(201, "created\n");
  EXPECT_EQ(store.valueOf("http_request_bytes_total", {"test"}), in + 11);
  EXPECT_EQ(store.valueOf("http_response_bytes_total", {"test"}), out + 8);
}

TEST_F(MetricsTest, ScrapeServesTheExpositionAndIsNotCounted) {
  {
    auto h = harness();
    h->sendHeaders(FilterHarness::request("GET", "/x"), true);
    terminal_->respond(200, "ok");
  }
  const int64_t get_200 = requests("GET", "200");
  auto h = harness();
  reached_ = 0;
  h->sendHeaders(FilterHarness::request("GET", "/metrics?name=x"), true);
  EXPECT_EQ(reached_, 0) << "the scrape never reaches later filters";
  EXPECT_EQ(h->response.status, 200);
  EXPECT_EQ(h->response.headers.getOr("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(h->response.headers.getOr("content-length"), std::to_string(h->response.body.size()));
  const std::string& body = h->response.body;
  EXPECT_NE(body.find("# TYPE http_requests_total counter\n"), std::string::npos);
  EXPECT_NE(body.find("http_requests_total{listener=\"test\",method=\"GET\",status=\"200\"} " +
                      std::to_string(get_200) + "\n"),
            std::string::npos)
      << body;
  EXPECT_NE(body.find("# TYPE http_request_duration_seconds histogram\n"), std::string::npos);
  EXPECT_NE(body.find("http_request_duration_seconds_bucket{listener=\"test\",le=\"+Inf\"}"),
            std::string::npos);
  EXPECT_TRUE(h->info().skip_access_log);
  EXPECT_EQ(requests("GET", "200"), get_200);
}

TEST_F(MetricsTest, HeadScrapeHasHeadersOnly) {
  auto h = harness("path: /stats");
  h->sendHeaders(FilterHarness::request("HEAD", "/stats"), true);
  EXPECT_EQ(h->response.status, 200);
  EXPECT_TRUE(h->response.body.empty());
  EXPECT_TRUE(h->response.complete);
  EXPECT_NE(h->response.headers.getOr("content-length"), "0");
}

TEST_F(MetricsTest, OtherMethodsOnTheScrapePathGet405) {
  auto h = harness();
  h->sendHeaders(FilterHarness::request("POST", "/metrics"), true);
  EXPECT_EQ(h->response.status, 405);
  EXPECT_EQ(h->response.headers.getOr("allow"), "GET, HEAD");
}

TEST_F(MetricsTest, LogScrapesKeepsScrapesInTheAccessLog) {
  auto h = harness("log_scrapes: true");
  h->sendHeaders(FilterHarness::request("GET", "/metrics"), true);
  EXPECT_EQ(h->response.status, 200);
  EXPECT_FALSE(h->info().skip_access_log);
}

TEST_F(MetricsTest, ConnectionsActiveComesFromTheCoreGaugeOnce) {
  const http::ListenerStats core = http::ListenerStats::create(stats::Store::global(), "edge");
  core.connections_active->inc();
  core.connections_active->inc();
  core.connections_active->dec();
  core.connections_active->inc();
  auto h = harness();
  h->sendHeaders(FilterHarness::request("GET", "/metrics"), true);
  const std::string& body = h->response.body;
  EXPECT_NE(body.find("http_connections_active{listener=\"edge\"} 2\n"), std::string::npos) << body;
  const size_t first = body.find("# TYPE http_connections_active gauge");
  ASSERT_NE(first, std::string::npos);
  EXPECT_EQ(body.find("# TYPE http_connections_active gauge", first + 1), std::string::npos);
}

TEST_F(MetricsTest, IncludesFamiliesOfOtherFilters) {
  stats::Store::global().counter("rate_limit_rejected_total", "Requests rejected.").inc(3);
  auto h = harness();
  h->sendHeaders(FilterHarness::request("GET", "/metrics"), true);
  EXPECT_NE(h->response.body.find("rate_limit_rejected_total 3\n"), std::string::npos);
}

TEST_F(MetricsTest, RequestSeriesAreSharedAcrossThreads) {
  auto& store = stats::Store::global();
  ASSERT_TRUE(registerFamilies(store, defaultBuckets()));
  Config config(store, "threads", "/metrics", false);
  constexpr int kThreads = 4;
  constexpr int kEach = 1000;
  std::atomic<const stats::Series*> seen[kThreads];
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t]() {
      for (int i = 0; i < kEach; ++i) {
        const stats::Series& s = config.requests(Method::Delete, 503);
        s.inc();
        seen[t] = &s;
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  for (int t = 1; t < kThreads; ++t) {
    EXPECT_EQ(seen[t].load(), seen[0].load());
  }
  EXPECT_EQ(store.valueOf("http_requests_total", {"threads", "DELETE", "503"}), kThreads * kEach);
}

// A FactoryContext for calling a factory with a proto built in code.
class Context : public http::FactoryContext {
public:
  ServerContext& server() override { return server_; }
  const std::string& listenerName() const override { return name_; }
  std::string resolvePath(std::string_view path) const override { return std::string(path); }
  bool validateOnly() const override { return false; }
  size_t filterIndex() const override { return 0; }
  size_t chainLength() const override { return 2; }

private:
  test::FakeServerContext server_;
  std::string name_{"test"};
};

TEST(MetricsConfig, RejectsInfiniteBuckets) {
  // YAML cannot spell infinity for a double field, but a config built in code can.
  const auto* factory = http::FilterRegistry::get().findByName("pounce.filters.metrics");
  ASSERT_NE(factory, nullptr);
  auto proto = factory->createEmptyConfig();
  auto* reflection = proto->GetReflection();
  const auto* field = proto->GetDescriptor()->FindFieldByName("buckets");
  reflection->AddDouble(proto.get(), field, 0.1);
  reflection->AddDouble(proto.get(), field, std::numeric_limits<double>::infinity());
  Context context;
  auto r = factory->createFilterFactory(*proto, context);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "buckets[1]: must be a finite number (+Inf is always added)");
}

TEST(MetricsMethod, ParsesKnownMethodsOnly) {
  EXPECT_EQ(parseMethod("GET"), Method::Get);
  EXPECT_EQ(parseMethod("OPTIONS"), Method::Options);
  EXPECT_EQ(parseMethod("CONNECT"), Method::Connect);
  EXPECT_EQ(parseMethod("PATCH"), Method::Patch);
  EXPECT_EQ(parseMethod("Get"), Method::Other);
  EXPECT_EQ(parseMethod(""), Method::Other);
  EXPECT_EQ(methodLabel(Method::Other), "other");
}

TEST(MetricsConfig, RejectsBadPathsAndBuckets) {
  test::FakeServerContext server;
  auto check = [&](const std::string& yaml, const std::string& message) {
    auto r = FilterHarness::factoriesFromYaml({{"pounce.filters.metrics", yaml}}, server);
    ASSERT_FALSE(r.ok()) << yaml;
    EXPECT_NE(std::string(r.status().message()).find(message), std::string::npos) << r.status();
  };
  check("path: metrics", "path: 'metrics' must start with '/'");
  check("path: /m?x=1", "must be a plain path");
  check("buckets: [0.1, 0.1]", "buckets[1]: bucket bounds must be strictly ascending");
  check("buckets: [0.5, 0.1]", "buckets[1]: bucket bounds must be strictly ascending");
}

TEST(MetricsConfig, BucketsChangeOnlyWhenNoMetricsFilterHoldsTheHistogram) {
  test::FakeServerContext server;
  const auto build = [&](const std::string& yaml) {
    return FilterHarness::factoriesFromYaml({{"pounce.filters.metrics", yaml}}, server);
  };
  const auto buckets = [] {
    return stats::Store::global()
        .family("http_request_duration_seconds", "", stats::Type::Histogram)
        .buckets;
  };
  {
    auto held = build("path: /metrics"); // the default buckets, held while `held` lives
    ASSERT_TRUE(held.ok()) << held.status();
    auto refused = build("buckets: [1, 2, 3]");
    ASSERT_FALSE(refused.ok());
    EXPECT_NE(std::string(refused.status().message())
                  .find("differ from the buckets http_request_duration_seconds"),
              std::string::npos)
        << refused.status();
    EXPECT_EQ(buckets(), defaultBuckets());
  }
  // The last filter is gone (as after a chain swap, or a config that failed after building
  // it): other buckets are taken, and the histogram starts again from them.
  {
    auto other = build("buckets: [1, 2, 3]");
    ASSERT_TRUE(other.ok()) << other.status();
    EXPECT_EQ(buckets(), (std::vector<double>{1, 2, 3}));
    EXPECT_FALSE(build("path: /metrics").ok()); // the defaults differ now, and [1, 2, 3] is held
    const std::string text = stats::Store::global().prometheusText();
    EXPECT_NE(text.find("http_request_duration_seconds_bucket{listener=\"test\",le=\"3\"} 0"),
              std::string::npos)
        << text;
    EXPECT_EQ(text.find("le=\"0.005\""), std::string::npos) << "the old family is still listed";
  }
  ASSERT_TRUE(registerFamilies(stats::Store::global(), defaultBuckets())); // for other tests
  EXPECT_EQ(buckets(), defaultBuckets());
}

} // namespace
} // namespace pounce::filters::metrics
