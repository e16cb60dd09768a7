#include <gtest/gtest.h>

#include <chrono>

#include "source/server/admin/stats_snapshot.h"

namespace pounce::server::admin {
namespace {

StatsSnapshot::Family* find(StatsSnapshot& s, const std::string& name) {
  for (auto& f : *s.mutable_families()) {
    if (f.name() == name) {
      return &f;
    }
  }
  return nullptr;
}

TEST(StatsSnapshot, TakesEveryFamilyOfTheStore) {
  auto& store = stats::Store::global();
  auto& counter =
      store.family("snap_requests_total", "Requests.", stats::Type::Counter, {"listener"});
  store.series(counter, {"main"}).inc(3);
  auto& hist = store.family("snap_duration_seconds", "Duration.", stats::Type::Histogram,
                            {"listener"}, {0.1, 1.0});
  store.series(hist, {"main"}).observe(0.05);
  store.series(hist, {"main"}).observe(0.5);
  store.series(hist, {"main"}).observe(5);
  StatsSnapshot s = snapshotStats(store);
  auto* c = find(s, "snap_requests_total");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->type(), StatsSnapshot::COUNTER);
  ASSERT_EQ(c->series_size(), 1);
  EXPECT_EQ(c->series(0).value(), 3);
  auto* h = find(s, "snap_duration_seconds");
  ASSERT_NE(h, nullptr);
  ASSERT_EQ(h->series(0).buckets_size(), 3);
  EXPECT_EQ(h->series(0).buckets(0), 1u);
  EXPECT_EQ(h->series(0).buckets(1), 1u);
  EXPECT_EQ(h->series(0).buckets(2), 1u);
  EXPECT_DOUBLE_EQ(h->series(0).sum(), 5.55);
}

StatsSnapshot twoProcesses(int64_t a, int64_t b) {
  StatsSnapshot one, two;
  auto add = [](StatsSnapshot& s, int64_t v, const std::string& listener) {
    auto* f = s.add_families();
    f->set_name("requests_total");
    f->set_type(StatsSnapshot::COUNTER);
    f->add_label_names("listener");
    auto* series = f->add_series();
    series->add_label_values(listener);
    series->set_value(v);
    auto* h = s.add_families();
    h->set_name("duration_seconds");
    h->set_type(StatsSnapshot::HISTOGRAM);
    h->add_bounds(0.1);
    auto* hs = h->add_series();
    hs->add_buckets(v);
    hs->add_buckets(1);
    hs->set_sum(0.5);
  };
  add(one, a, "main");
  add(two, b, "main");
  auto* extra = two.mutable_families(0)->add_series();
  extra->add_label_values("api");
  extra->set_value(7);
  mergeStats(one, two);
  return one;
}

TEST(StatsSnapshot, MergeSumsProcessesPerLabelValues) {
  StatsSnapshot merged = twoProcesses(2, 5);
  auto* c = find(merged, "requests_total");
  ASSERT_EQ(c->series_size(), 2);
  EXPECT_EQ(c->series(0).value(), 7);
  EXPECT_EQ(c->series(1).label_values(0), "api");
  auto* h = find(merged, "duration_seconds");
  EXPECT_EQ(h->series(0).buckets(0), 7u);
  EXPECT_EQ(h->series(0).buckets(1), 2u);
  EXPECT_DOUBLE_EQ(h->series(0).sum(), 1.0);
}

TEST(StatsSnapshot, RendersPrometheusTextJsonAndAFilter) {
  StatsSnapshot s = twoProcesses(2, 5);
  const std::string prom = renderPrometheus(s);
  EXPECT_NE(prom.find("# TYPE requests_total counter\n"), std::string::npos) << prom;
  EXPECT_NE(prom.find("requests_total{listener=\"main\"} 7\n"), std::string::npos) << prom;
  EXPECT_NE(prom.find("duration_seconds_bucket{le=\"0.1\"} 7\n"), std::string::npos) << prom;
  EXPECT_NE(prom.find("duration_seconds_bucket{le=\"+Inf\"} 9\n"), std::string::npos) << prom;
  EXPECT_NE(prom.find("duration_seconds_count 9\n"), std::string::npos) << prom;
  // Families come out sorted.
  EXPECT_LT(prom.find("duration_seconds"), prom.find("requests_total"));

  const std::string json = renderJson(s);
  EXPECT_NE(json.find(R"({"name":"requests_total","type":"counter")"), std::string::npos) << json;
  EXPECT_NE(json.find(R"({"labels":{"listener":"api"},"value":7})"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("bounds":[0.1],"counts":[7,2],"count":9,"sum":1})"), std::string::npos)
      << json;

  const auto only_requests = NameFilter::compile("^requests");
  ASSERT_TRUE(only_requests.ok());
  const std::string text = renderText(s, only_requests->get());
  EXPECT_EQ(text, "requests_total{listener=\"api\"}: 7\nrequests_total{listener=\"main\"}: 7\n");
}

// The filter is a POSIX extended expression matched in polynomial time: a pattern that
// makes a backtracking matcher run for ever (`(\w+)+!` on a long name) answers at once.
TEST(StatsSnapshot, NameFiltersCannotHangTheAdminThread) {
  const auto nested = NameFilter::compile("(\\w+)+!");
  ASSERT_TRUE(nested.ok()) << nested.status();
  const std::string name(200, 'a');
  const auto started = std::chrono::steady_clock::now();
  EXPECT_FALSE((*nested)->matches(name));
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(2));
  const auto either = NameFilter::compile("tls|http_requests");
  ASSERT_TRUE(either.ok());
  EXPECT_TRUE((*either)->matches("pounce_http_requests_total"));
  EXPECT_FALSE((*either)->matches("queue_shed_total"));
  const auto bad = NameFilter::compile("(unclosed");
  ASSERT_FALSE(bad.ok());
  EXPECT_FALSE(bad.status().message().empty());
}

TEST(StatsSnapshot, QuantilesInterpolateWithinBuckets) {
  StatsSnapshot::Family f;
  f.add_bounds(0.1);
  f.add_bounds(0.2);
  StatsSnapshot::Series s;
  s.add_buckets(50); // <= 0.1
  s.add_buckets(50); // <= 0.2
  s.add_buckets(0);  // +Inf
  EXPECT_DOUBLE_EQ(histogramQuantile(f, s, 0.5), 0.1);
  EXPECT_DOUBLE_EQ(histogramQuantile(f, s, 0.25), 0.05);
  EXPECT_NEAR(histogramQuantile(f, s, 0.99), 0.198, 1e-9);
  s.set_buckets(2, 100);
  EXPECT_DOUBLE_EQ(histogramQuantile(f, s, 0.99), 0.2) << "+Inf: the highest finite bound";
  EXPECT_DOUBLE_EQ(histogramQuantile(f, StatsSnapshot::Series(), 0.5), 0);
}

} // namespace
} // namespace pounce::server::admin
