#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "source/common/version.h"
#include "source/filters/health/health.h"
#include "test/test_common/filter_harness.h"

namespace pounce::filters::health {
namespace {

using namespace std::chrono_literals;
using test::FilterHarness;

class HealthTest : public testing::Test {
protected:
  void configure(const std::string& yaml) {
    auto f = FilterHarness::factoriesFromYaml(
        {{"pounce.filters.health", yaml}, {"pounce.filters.direct_response", "body: app"}},
        server_);
    ASSERT_TRUE(f.ok()) << f.status();
    factories_ = *f;
  }

  std::unique_ptr<FilterHarness> run(const std::string& method, const std::string& path) {
    auto h = std::make_unique<FilterHarness>(factories_);
    h->sendHeaders(FilterHarness::request(method, path), true);
    return h;
  }

  test::FakeServerContext server_;
  std::vector<http::FilterFactoryCb> factories_;
};

// Uptime is seconds with one decimal, rounded half up (formatted without printf).
TEST_F(HealthTest, UptimeHasOneDecimalRoundedHalfUp) {
  configure("path: /health");
  // The clock only moves forward: each case advances it to the case's total.
  std::chrono::milliseconds at{0};
  const std::pair<std::chrono::milliseconds, const char*> totals[] = {
      {0ms, "0.0"},   {49ms, "0.0"},   {50ms, "0.1"},         {51ms, "0.1"},
      {951ms, "1.0"}, {2951ms, "3.0"}, {3600000ms, "3600.0"}, {3600049ms, "3600.0"}};
  for (const auto& [total, want] : totals) {
    server_.time_.advance(total - at);
    at = total;
    auto h = run("GET", "/health");
    EXPECT_NE(h->response.body.find(std::string("\"uptime_seconds\":") + want + ","),
              std::string::npos)
        << total.count() << "ms: " << h->response.body;
  }
}

TEST_F(HealthTest, AnswersGetWithJsonBeforeTheApp) {
  configure("path: /health");
  server_.time_.advance(12340ms);
  server_.worker_id = 3;
  server_.active_connections_ = 7;
  auto h = run("GET", "/health");
  EXPECT_EQ(h->response.status, 200);
  EXPECT_EQ(h->response.body,
            std::string("{\"status\":\"ok\",\"uptime_seconds\":12.3,\"worker_id\":3,"
                        "\"active_connections\":7,\"version\":\"") +
                kVersion + "\"}");
  EXPECT_EQ(h->response.headers.getOr("content-type"), "application/json");
  EXPECT_EQ(h->response.headers.getOr("cache-control"), "no-cache, no-store");
  EXPECT_EQ(h->response.headers.getOr("content-length"), std::to_string(h->response.body.size()));
  EXPECT_TRUE(h->info().skip_access_log);
  EXPECT_TRUE(h->response.complete);
}

TEST_F(HealthTest, HeadHasTheHeadersAndNoBody) {
  configure("path: /health");
  auto get = run("GET", "/health");
  auto head = run("HEAD", "/health");
  EXPECT_EQ(head->response.status, 200);
  EXPECT_TRUE(head->response.body.empty());
  EXPECT_TRUE(head->response.complete);
  EXPECT_EQ(head->response.headers.getOr("content-length"),
            get->response.headers.getOr("content-length"));
  EXPECT_EQ(head->response.headers.getOr("content-type"), "application/json");
}

// The access log's and metrics' response bytes are those that reach the client: none for a
// HEAD, whatever body the producer hands on (the codec drops it).
TEST_F(HealthTest, BodyBytesOfAHeadResponseAreNotCountedAsSent) {
  configure("path: /health");
  EXPECT_EQ(run("GET", "/other")->info().bytes_sent, 3u); // the app's "app"
  EXPECT_EQ(run("HEAD", "/other")->info().bytes_sent, 0u);
}

TEST_F(HealthTest, OtherMethodsGet405WithAllow) {
  configure("path: /health");
  auto h = run("POST", "/health");
  EXPECT_EQ(h->response.status, 405);
  EXPECT_EQ(h->response.headers.getOr("allow"), "GET, HEAD");
  EXPECT_TRUE(h->info().skip_access_log);
}

TEST_F(HealthTest, QueryIsIgnoredAndOtherPathsPassThrough) {
  configure("path: /health");
  EXPECT_EQ(run("GET", "/health?verbose=1")->response.headers.getOr("content-type"),
            "application/json");
  auto h = run("GET", "/healthz");
  EXPECT_EQ(h->response.body, "app");
  EXPECT_FALSE(h->info().skip_access_log);
  EXPECT_EQ(run("POST", "/other")->response.body, "app");
}

TEST_F(HealthTest, SingleEndpointGoes503WhileDraining) {
  configure("path: /health");
  server_.draining_ = true;
  auto h = run("GET", "/health");
  EXPECT_EQ(h->response.status, 503);
  EXPECT_EQ(h->response.body.rfind("{\"status\":\"draining\",\"uptime_seconds\":", 0), 0u);
  EXPECT_EQ(run("HEAD", "/health")->response.status, 503);
}

TEST_F(HealthTest, SingleEndpointGoes503WhenTheHealthCheckWasFailed) {
  configure("path: /health");
  server_.health_failed_ = true;
  EXPECT_EQ(run("GET", "/health")->response.status, 503);
  server_.health_failed_ = false;
  EXPECT_EQ(run("GET", "/health")->response.status, 200);
}

TEST_F(HealthTest, WithReadyPathLivenessStaysUpAndReadinessFollowsState) {
  configure("path: /livez\nready_path: /readyz");
  EXPECT_EQ(run("GET", "/livez")->response.status, 200);
  EXPECT_EQ(run("GET", "/readyz")->response.status, 200);
  server_.draining_ = true;
  auto live = run("GET", "/livez");
  EXPECT_EQ(live->response.status, 200);
  EXPECT_EQ(live->response.body.rfind("{\"status\":\"ok\"", 0), 0u);
  EXPECT_EQ(run("GET", "/readyz")->response.status, 503);
  server_.draining_ = false;
  server_.health_failed_ = true;
  EXPECT_EQ(run("GET", "/livez")->response.status, 200);
  auto ready = run("GET", "/readyz");
  EXPECT_EQ(ready->response.status, 503);
  EXPECT_EQ(ready->response.body.rfind("{\"status\":\"draining\"", 0), 0u);
}

TEST_F(HealthTest, AccessLogOptIn) {
  configure("path: /health\naccess_log: true");
  EXPECT_FALSE(run("GET", "/health")->info().skip_access_log);
}

TEST(HealthConfig, RejectsBadPaths) {
  test::FakeServerContext server;
  auto error = [&](const std::string& yaml) {
    auto f = FilterHarness::factoriesFromYaml({{"pounce.filters.health", yaml}}, server);
    EXPECT_FALSE(f.ok()) << yaml;
    return f.ok() ? std::string() : std::string(f.status().message());
  };
  EXPECT_NE(error("").find("path: required"), std::string::npos);
  EXPECT_NE(error("path: health").find("path: must start with '/'"), std::string::npos);
  EXPECT_NE(error("path: /h?x=1").find("path:"), std::string::npos);
  EXPECT_NE(error("path: /h\nready_path: /h").find("ready_path"), std::string::npos);
  EXPECT_NE(error("path: /h\nready_path: r").find("ready_path"), std::string::npos);
}

} // namespace
} // namespace pounce::filters::health
