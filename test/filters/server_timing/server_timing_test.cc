#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "source/filters/server_timing/server_timing.h"
#include "test/test_common/filter_harness.h"

namespace pounce::filters::server_timing {
namespace {

using namespace std::chrono_literals;
using test::FilterHarness;

// Terminal that spends simulated time, records timings like the queue and the app do, and
// answers (optionally with its own Server-Timing).
class TimedApp : public http::StreamFilter {
public:
  TimedApp(test::SimulatedTimeSource& time, std::string app_timing)
      : time_(time), app_timing_(std::move(app_timing)) {}
  http::FilterStatus decodeHeaders(http::RequestHeaders&, bool) override {
    auto& info = decoder_callbacks_->streamInfo();
    time_.advance(2500us);
    info.timings.emplace_back("queue", 2500us);
    time_.advance(4340us);
    info.timings.emplace_back("app", 4340us);
    info.timings.emplace_back("bad name", 1ms);
    auto h = std::make_unique<http::ResponseHeaders>(200);
    // '|' separates the fields the app sends.
    for (size_t start = 0; !app_timing_.empty() && start <= app_timing_.size();) {
      const size_t bar = std::min(app_timing_.find('|', start), app_timing_.size());
      h->add("Server-Timing", app_timing_.substr(start, bar - start));
      start = bar + 1;
    }
    h->addLowercase("content-length", "0");
    decoder_callbacks_->encodeHeaders(std::move(h), true);
    return http::FilterStatus::StopIteration;
  }

private:
  test::SimulatedTimeSource& time_;
  std::string app_timing_;
};

TEST(ServerTiming, FormatsTotalAndEachTimingInMilliseconds) {
  EXPECT_EQ(formatServerTiming(12340us, {}), "total;dur=12.3");
  EXPECT_EQ(formatServerTiming(6840us, {{"queue", 2500us}, {"app", 4340us}}),
            "total;dur=6.8, queue;dur=2.5, app;dur=4.3");
  EXPECT_EQ(formatServerTiming(0ns, {{"x y", 1ms}, {"", 1ms}}), "total;dur=0.0");
  // Rounded half up to a tenth of a millisecond.
  EXPECT_EQ(formatServerTiming(12350us, {}), "total;dur=12.4");
  EXPECT_EQ(formatServerTiming(49999ns, {}), "total;dur=0.0");
  EXPECT_EQ(formatServerTiming(50000ns, {}), "total;dur=0.1");
  EXPECT_EQ(formatServerTiming(1234567890ns, {}), "total;dur=1234.6");
  EXPECT_EQ(formatServerTiming(-5ms, {}), "total;dur=0.0");
  // A name longer than the formatting buffer.
  const std::string long_name(200, 'n');
  EXPECT_EQ(formatServerTiming(1ms, {{long_name, 2ms}}),
            "total;dur=1.0, " + long_name + ";dur=2.0");
}

// One GET through server_timing in front of a TimedApp that sends `app_timing` ('|'
// between its Server-Timing fields); the response's Server-Timing fields.
std::vector<std::string> serverTimingOf(const std::string& app_timing) {
  test::FakeServerContext server;
  auto f = FilterHarness::factoriesFromYaml({{"pounce.filters.server_timing", ""}}, server);
  EXPECT_TRUE(f.ok()) << f.status();
  if (!f.ok()) {
    return {};
  }
  test::SimulatedTimeSource* clock = nullptr;
  std::vector<http::FilterFactoryCb> chain{
      (*f)[0], [&clock, app_timing] { return std::make_unique<TimedApp>(*clock, app_timing); }};
  FilterHarness h(chain);
  clock = &h.time;
  h.sendHeaders(FilterHarness::request("GET", "/"), true);
  EXPECT_EQ(h.response.status, 200);
  std::vector<std::string> fields;
  for (size_t i = 0; i < h.response.headers.size(); ++i) {
    if (h.response.headers.nameAt(i) == "server-timing") {
      fields.emplace_back(h.response.headers.valueAt(i));
    }
  }
  return fields;
}

using Fields = std::vector<std::string>;

TEST(ServerTiming, AddsTheHeaderInEncodeHeaders) {
  EXPECT_EQ(serverTimingOf(""), Fields{"total;dur=6.8, queue;dur=2.5, app;dur=4.3"});
}

TEST(ServerTiming, KeepsTheAppsOwnEntries) {
  EXPECT_EQ(serverTimingOf("db;dur=1.5"),
            Fields{"db;dur=1.5, total;dur=6.8, queue;dur=2.5, app;dur=4.3"});
}

TEST(ServerTiming, KeepsEveryFieldTheAppSentAndLongValues) {
  const std::string ours = "total;dur=6.8, queue;dur=2.5, app;dur=4.3";
  const std::string long_entry = "db;desc=\"" + std::string(300, 'q') + "\"";
  EXPECT_EQ(serverTimingOf("db;dur=1.5|cache;desc=hit"),
            Fields{"db;dur=1.5, cache;desc=hit, " + ours});
  EXPECT_EQ(serverTimingOf(long_entry), Fields{long_entry + ", " + ours});
  EXPECT_EQ(serverTimingOf("a;dur=1|" + long_entry + "|c"),
            Fields{"a;dur=1, " + long_entry + ", c, " + ours});
  // Empty fields add no empty entry.
  EXPECT_EQ(serverTimingOf("|db;dur=1||c"), Fields{"db;dur=1, c, " + ours});
}

TEST(ServerTiming, LocalRepliesGetItToo) {
  test::FakeServerContext server;
  auto f = FilterHarness::factoriesFromYaml(
      {{"pounce.filters.server_timing", ""}, {"pounce.filters.direct_response", "status: 404"}},
      server);
  ASSERT_TRUE(f.ok());
  FilterHarness h(*f);
  h.sendHeaders(FilterHarness::request("GET", "/"), true);
  EXPECT_EQ(h.response.status, 404);
  EXPECT_EQ(h.response.headers.getOr("server-timing"), "total;dur=0.0");
}

} // namespace
} // namespace pounce::filters::server_timing
