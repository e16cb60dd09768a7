#include <event2/event.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "source/filters/request_queue/request_queue.h"
#include "test/test_common/filter_harness.h"

namespace pounce::filters::request_queue {
namespace {

using namespace std::chrono_literals;
using test::FilterHarness;

// A timer the test fires by hand.
class FakeTimer : public event::Timer {
public:
  FakeTimer(std::vector<FakeTimer*>& registry, std::function<void()> cb)
      : registry_(registry), cb_(std::move(cb)) {
    registry_.push_back(this);
  }
  ~FakeTimer() override { registry_.erase(std::find(registry_.begin(), registry_.end(), this)); }
  void enableTimer(std::chrono::milliseconds delay) override {
    enabled_ = true;
    delay_ = delay;
  }
  void disableTimer() override { enabled_ = false; }
  bool enabled() const override { return enabled_; }
  void fire() {
    ASSERT_TRUE(enabled_);
    enabled_ = false;
    cb_();
  }
  std::chrono::milliseconds delay_{0};

private:
  std::vector<FakeTimer*>& registry_;
  std::function<void()> cb_;
  bool enabled_{false};
};

// Terminal that keeps the request (and so its queue slot) until the test answers it.
class HoldFilter : public http::StreamFilter {
public:
  explicit HoldFilter(bool& reached) : reached_(reached) {}
  http::FilterStatus decodeHeaders(http::RequestHeaders&, bool) override {
    reached_ = true;
    return http::FilterStatus::StopIteration;
  }
  void respond() {
    auto h = std::make_unique<http::ResponseHeaders>(200);
    h->addLowercase("content-length", "0");
    decoder_callbacks_->encodeHeaders(std::move(h), true);
  }

private:
  bool& reached_;
};

struct Stream {
  std::unique_ptr<FilterHarness> harness;
  HoldFilter* terminal{nullptr};
  bool reached{false};

  void respond() {
    ASSERT_NE(terminal, nullptr);
    terminal->respond();
    harness->runPending();
  }
  int status() const { return harness->response.status; }
};

class RequestQueueTest : public testing::Test {
protected:
  // A fresh listener label per configuration, so metrics start at zero.
  void configure(uint32_t max_concurrent, uint32_t max_queued, bool shadow = false) {
    listener_ = std::string(testing::UnitTest::GetInstance()->current_test_info()->name()) +
                std::to_string(++configs_);
    config_ = std::make_shared<Config>(max_concurrent, max_queued, shadow,
                                       createQueueStats(stats::Store::global(), listener_));
    config_->max_wait = 1000ms;
    config_->time_source = &server_.time_;
    config_->create_timer = [this](event::Dispatcher&, std::function<void()> cb) {
      return std::make_unique<FakeTimer>(timers_, std::move(cb));
    };
  }

  std::unique_ptr<Stream> start() {
    auto s = std::make_unique<Stream>();
    Stream* raw = s.get();
    ConfigSharedPtr config = config_;
    std::vector<http::FilterFactoryCb> chain{
        [config] { return std::make_unique<RequestQueueFilter>(*config); },
        [raw] {
          auto f = std::make_unique<HoldFilter>(raw->reached);
          raw->terminal = f.get();
          return f;
        }};
    s->harness = std::make_unique<FilterHarness>(chain);
    s->harness->sendHeaders(FilterHarness::request("GET", "/"), true);
    return s;
  }

  int64_t metric(const std::string& name) {
    return stats::Store::global().valueOf(name, {listener_});
  }
  const stats::Series& waitSeries() {
    auto& store = stats::Store::global();
    return store.series(
        store.family("queue_wait_seconds", "", stats::Type::Histogram, {"listener"}), {listener_});
  }

  test::FakeServerContext server_;
  ConfigSharedPtr config_;
  std::vector<FakeTimer*> timers_;
  std::string listener_;
  int configs_{0};
};

TEST_F(RequestQueueTest, AdmitsUpToMaxConcurrentThenQueues) {
  configure(2, 2);
  auto s1 = start();
  auto s2 = start();
  auto s3 = start();
  EXPECT_TRUE(s1->reached);
  EXPECT_TRUE(s2->reached);
  EXPECT_FALSE(s3->reached);
  EXPECT_EQ(s3->status(), 0);
  EXPECT_EQ(metric("queue_in_flight"), 2);
  EXPECT_EQ(metric("queue_queued"), 1);
  ASSERT_EQ(timers_.size(), 1u);
  EXPECT_EQ(timers_[0]->delay_, 1000ms);
  EXPECT_EQ(waitSeries().count(), 2u); // the two let through at once
}

// A stream's filter refers to the chain's config without counting references: admitted or
// queued, streams leave the config's count where the chain left it.
TEST_F(RequestQueueTest, StreamsTakeNoReferenceToTheConfig) {
  configure(1, 1);
  bool reached = false;
  const auto chained = [&] {
    std::vector<http::FilterFactoryCb> chain{
        http::FilterFactoryCb::inPlace<RequestQueueFilter>(
            [config = config_](void* at) { return new (at) RequestQueueFilter(*config); }),
        [&reached] { return std::make_unique<HoldFilter>(reached); }};
    return std::make_unique<FilterHarness>(chain);
  };
  auto admitted = chained();
  auto queued = chained();
  const long before = config_.use_count();
  admitted->sendHeaders(FilterHarness::request("GET", "/"), true);
  queued->sendHeaders(FilterHarness::request("GET", "/"), true);
  EXPECT_EQ(metric("queue_in_flight"), 1);
  EXPECT_EQ(metric("queue_queued"), 1);
  EXPECT_EQ(config_.use_count(), before);
  queued->clientReset();
  admitted->clientReset();
  EXPECT_EQ(metric("queue_in_flight"), 0);
  EXPECT_EQ(metric("queue_queued"), 0);
}

TEST_F(RequestQueueTest, CompletedRequestsFreeSlotsInFifoOrder) {
  configure(2, 5);
  auto s1 = start();
  auto s2 = start();
  auto s3 = start();
  auto s4 = start();
  s1->respond();
  EXPECT_EQ(s1->status(), 200);
  // The slot went to s3, resumed on its own dispatcher.
  s4->harness->runPending();
  EXPECT_FALSE(s4->reached);
  s3->harness->runPending();
  EXPECT_TRUE(s3->reached);
  EXPECT_EQ(metric("queue_in_flight"), 2);
  EXPECT_EQ(metric("queue_queued"), 1);
  s2->respond();
  s4->harness->runPending();
  EXPECT_TRUE(s4->reached);
  s3->respond();
  s4->respond();
  EXPECT_EQ(metric("queue_in_flight"), 0);
  EXPECT_EQ(metric("queue_queued"), 0);
  EXPECT_EQ(config_->queue.inFlight(), 0u);
}

TEST_F(RequestQueueTest, ShedsWith503WhenTheQueueIsFull) {
  configure(1, 1);
  auto s1 = start();
  auto s2 = start();
  auto s3 = start();
  EXPECT_EQ(s3->status(), 503);
  EXPECT_EQ(s3->harness->response.body, "Service Unavailable\n");
  EXPECT_EQ(s3->harness->response.headers.getOr("retry-after"), "5");
  EXPECT_TRUE(s3->harness->info().hasFlag(http::ResponseFlag::LoadShed));
  EXPECT_FALSE(s3->reached);
  EXPECT_EQ(metric("queue_shed_total"), 1);
  EXPECT_EQ(metric("queue_queued"), 1);
  s1->respond();
  s2->harness->runPending();
  EXPECT_TRUE(s2->reached);
}

TEST_F(RequestQueueTest, ZeroQueueShedsAtOnce) {
  configure(1, 0);
  auto s1 = start();
  auto s2 = start();
  EXPECT_EQ(s2->status(), 503);
  EXPECT_TRUE(timers_.empty());
}

TEST_F(RequestQueueTest, ShedsAfterMaxWaitAndRecordsTheWait) {
  configure(1, 1);
  config_->retry_after_seconds = 7;
  auto s1 = start();
  auto s2 = start();
  server_.time_.advance(1000ms);
  ASSERT_EQ(timers_.size(), 1u);
  timers_[0]->fire();
  EXPECT_EQ(s2->status(), 503);
  EXPECT_EQ(s2->harness->response.headers.getOr("retry-after"), "7");
  EXPECT_TRUE(s2->harness->info().hasFlag(http::ResponseFlag::LoadShed));
  const auto& timings = s2->harness->info().timings;
  ASSERT_EQ(timings.size(), 1u);
  EXPECT_EQ(timings[0].first, "queue");
  EXPECT_EQ(timings[0].second, 1000ms);
  EXPECT_EQ(metric("queue_queued"), 0);
  EXPECT_EQ(metric("queue_shed_total"), 1);
  // The slot holder is unaffected, and its release frees the slot.
  s1->respond();
  EXPECT_EQ(config_->queue.inFlight(), 0u);
}

TEST_F(RequestQueueTest, RecordsQueueTimingWhenAdmittedAfterWaiting) {
  configure(1, 1);
  auto s1 = start();
  auto s2 = start();
  server_.time_.advance(250ms);
  s1->respond();
  s2->harness->runPending();
  ASSERT_TRUE(s2->reached);
  const auto& timings = s2->harness->info().timings;
  ASSERT_EQ(timings.size(), 1u);
  EXPECT_EQ(timings[0].first, "queue");
  EXPECT_EQ(timings[0].second, 250ms);
  EXPECT_TRUE(s1->harness->info().timings.empty()); // no wait, no entry
  EXPECT_EQ(waitSeries().count(), 2u);
  EXPECT_DOUBLE_EQ(waitSeries().sum(), 0.25);
  EXPECT_FALSE(timers_.empty() || timers_[0]->enabled());
}

TEST_F(RequestQueueTest, ClientThatGoesAwayLeavesTheQueue) {
  configure(1, 2);
  auto s1 = start();
  auto s2 = start();
  auto s3 = start();
  EXPECT_EQ(metric("queue_queued"), 2);
  s2->harness->clientReset();
  EXPECT_EQ(metric("queue_queued"), 1);
  s1->respond();
  s3->harness->runPending();
  EXPECT_TRUE(s3->reached);
  s3->respond();
  EXPECT_EQ(config_->queue.inFlight(), 0u);
  EXPECT_EQ(config_->queue.queued(), 0u);
}

TEST_F(RequestQueueTest, SlotHandedToAStreamThatDiedIsPassedOn) {
  configure(1, 2);
  auto s1 = start();
  auto s2 = start();
  auto s3 = start();
  s1->respond();              // hands the slot to s2: the resume is posted, not yet run
  s2->harness->clientReset(); // s2 dies first (its harness runs the post: nothing happens)
  EXPECT_FALSE(s2->reached);
  s3->harness->runPending();
  EXPECT_TRUE(s3->reached);
  s3->respond();
  EXPECT_EQ(config_->queue.inFlight(), 0u);
  EXPECT_EQ(metric("queue_in_flight"), 0);
}

TEST_F(RequestQueueTest, WaitTimerFiringAfterHandOverDoesNotShed) {
  configure(1, 1);
  auto s1 = start();
  auto s2 = start();
  s1->respond(); // slot handed to s2, resume posted
  ASSERT_EQ(timers_.size(), 1u);
  timers_[0]->fire();
  EXPECT_EQ(s2->status(), 0);
  s2->harness->runPending();
  EXPECT_TRUE(s2->reached);
  EXPECT_EQ(metric("queue_shed_total"), 0);
}

TEST_F(RequestQueueTest, ShadowModeNeverQueuesButCountsWhatItWouldShed) {
  configure(1, 1, /*shadow=*/true);
  auto s1 = start();
  auto s2 = start();
  auto s3 = start();
  EXPECT_TRUE(s1->reached && s2->reached && s3->reached);
  EXPECT_TRUE(timers_.empty());
  EXPECT_EQ(metric("queue_shadow_shed_total"), 1);
  EXPECT_EQ(metric("queue_shed_total"), 0);
  EXPECT_EQ(metric("queue_in_flight"), 3);
  s1->respond();
  s2->respond();
  s3->respond();
  EXPECT_EQ(metric("queue_in_flight"), 0);
}

TEST_F(RequestQueueTest, HandsSlotsToStreamsOfOtherThreads) {
  configure(1, 1);
  auto s1 = start();
  std::atomic<bool> queued{false};
  std::atomic<bool> started{false};
  std::atomic<bool> reached{false};
  std::atomic<bool> release{false};
  std::thread other([&] {
    auto s2 = start();
    queued = !s2->reached;
    started = true;
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!s2->reached && std::chrono::steady_clock::now() < deadline) {
      s2->harness->runPending(); // runs the hand-over posted from the main thread
      std::this_thread::yield();
    }
    reached = s2->reached;
    while (!release && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
    s2->respond();
  });
  // Until the other thread has looked at its stream: the slot freed below could otherwise
  // reach that stream while start() still runs its loop, before it was seen queued.
  while (!started) {
    std::this_thread::yield();
  }
  s1->respond();
  release = true;
  other.join();
  EXPECT_TRUE(queued);
  EXPECT_TRUE(reached);
  EXPECT_EQ(config_->queue.inFlight(), 0u);
}

TEST(AdmissionQueue, ManyThreadsNeverExceedTheLimitAndLoseNoWakeUp) {
  constexpr uint32_t kMax = 2;
  auto stats = createQueueStats(stats::Store::global(), "stress");
  AdmissionQueue queue(kMax, 1000, false, stats);
  test::SimulatedTimeSource time;
  std::atomic<uint32_t> running{0};
  std::atomic<uint32_t> peak{0};
  std::atomic<bool> stuck{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      event::Dispatcher dispatcher("stress", time);
      for (int i = 0; i < 500 && !stuck; ++i) {
        WaiterSharedPtr waiter;
        bool admitted = false;
        const auto result = queue.tryAdmit(dispatcher, &waiter);
        ASSERT_NE(result, AdmissionQueue::Result::Shed);
        if (result == AdmissionQueue::Result::Admitted) {
          admitted = true;
        } else {
          // Set before the hand-over can run: it runs on this thread, from the loop below.
          waiter->resume = [&admitted] { admitted = true; };
        }
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (!admitted) {
          event_base_loop(dispatcher.base(), EVLOOP_NONBLOCK);
          if (std::chrono::steady_clock::now() > deadline) {
            stuck = true;
            return;
          }
        }
        const uint32_t now_running = running.fetch_add(1) + 1;
        uint32_t p = peak.load();
        while (now_running > p && !peak.compare_exchange_weak(p, now_running)) {
        }
        running.fetch_sub(1);
        queue.release();
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_FALSE(stuck);
  EXPECT_LE(peak.load(), kMax);
  EXPECT_EQ(queue.inFlight(), 0u);
  EXPECT_EQ(queue.queued(), 0u);
}

class RequestQueueConfigTest : public testing::Test {
protected:
  absl::StatusOr<std::vector<http::FilterFactoryCb>> build(const std::string& yaml) {
    return FilterHarness::factoriesFromYaml({{"pounce.filters.request_queue", yaml}}, server_);
  }
  test::FakeServerContext server_;
};

TEST_F(RequestQueueConfigTest, RejectsBadValues) {
  auto error = [&](const std::string& yaml) {
    auto f = build(yaml);
    EXPECT_FALSE(f.ok()) << yaml;
    return f.ok() ? std::string() : std::string(f.status().message());
  };
  EXPECT_NE(error("").find("max_concurrent"), std::string::npos);
  EXPECT_NE(error("max_concurrent: 1\nmax_wait: 0s").find("max_wait"), std::string::npos);
  EXPECT_NE(error("max_concurrent: 1\nmax_queued: 2000000").find("max_queued"), std::string::npos);
  // Long durations are long, not wrapped into negative ones.
  auto huge = build("max_concurrent: 1\nmax_wait: 2000000000s\nretry_after: 2000000000s");
  EXPECT_TRUE(huge.ok()) << huge.status();
}

TEST_F(RequestQueueConfigTest, DefaultQueueIsAsLongAsTheConcurrency) {
  auto f = build("max_concurrent: 1");
  ASSERT_TRUE(f.ok()) << f.status();
  std::vector<std::unique_ptr<FilterHarness>> streams;
  bool r0 = false, r1 = false, r2 = false;
  for (bool* flag : {&r0, &r1, &r2}) {
    std::vector<http::FilterFactoryCb> chain{
        (*f)[0], [flag] { return std::make_unique<HoldFilter>(*flag); }};
    streams.push_back(std::make_unique<FilterHarness>(chain));
    streams.back()->sendHeaders(FilterHarness::request("GET", "/"), true);
  }
  EXPECT_TRUE(r0);
  EXPECT_FALSE(r1);
  EXPECT_EQ(streams[1]->response.status, 0); // waiting
  EXPECT_EQ(streams[2]->response.status, 503);
}

} // namespace
} // namespace pounce::filters::request_queue
