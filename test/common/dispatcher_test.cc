#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "source/common/event/dispatcher.h"
#include "source/common/time.h"

namespace pounce::event {
namespace {

// Records its destruction (and may defer more work from its destructor).
class Doomed : public DeferredDeletable {
public:
  Doomed(std::vector<std::string>& log, std::string name, Dispatcher* defer_from = nullptr)
      : log_(log), name_(std::move(name)), defer_from_(defer_from) {}
  ~Doomed() override {
    log_.push_back("delete " + name_);
    if (defer_from_ != nullptr) {
      std::vector<std::string>* log = &log_;
      defer_from_->defer([log] { log->push_back("deferred by a destructor"); });
    }
  }

private:
  std::vector<std::string>& log_;
  std::string name_;
  Dispatcher* defer_from_;
};

TEST(Dispatcher, DeferredWorkRunsInOrderAfterTheCallerUnwindsUntilQuiet) {
  Dispatcher d("test", RealTimeSource::instance());
  std::vector<std::string> log;
  // Each pass's work and deletions come before what they defer, and the buffers emptied by
  // one pass are reused by the next without losing an entry.
  // The second batch runs on a later turn of the loop, when the spare buffers have capacity.
  auto second = [&] {
    d.defer([&] {
      for (int i = 0; i < 40; ++i) {
        d.defer([&log, i] { log.push_back("n" + std::to_string(i)); });
      }
    });
    d.deferredDelete(std::make_unique<Doomed>(log, "y"));
    d.defer([&] { d.exit(); });
  };
  d.post([&] {
    d.defer([&] {
      log.push_back("a");
      d.defer([&] { log.push_back("c (deferred by a)"); });
    });
    d.deferredDelete(std::make_unique<Doomed>(log, "x", &d));
    d.defer([&] {
      log.push_back("b");
      d.post(second);
    });
    log.push_back("posted");
  });
  d.run();
  std::vector<std::string> want = {
      "posted", "a", "b", "delete x", "c (deferred by a)", "deferred by a destructor"};
  ASSERT_GE(log.size(), want.size());
  EXPECT_EQ(std::vector<std::string>(log.begin(), log.begin() + 6), want);
  std::vector<std::string> rest(log.begin() + 6, log.end());
  ASSERT_EQ(rest.size(), 41u);
  EXPECT_EQ(rest[0], "delete y");
  for (int i = 0; i < 40; ++i) {
    EXPECT_EQ(rest[1 + i], "n" + std::to_string(i));
  }
}

TEST(Dispatcher, ManyBatchesFromAnotherThreadAllRunOnce) {
  Dispatcher d("test", RealTimeSource::instance());
  constexpr int kBatches = 200;
  constexpr int kPerBatch = 7;
  std::atomic<int> ran{0};
  int deferred = 0;
  std::thread loop([&] { d.run(); });
  for (int b = 0; b < kBatches; ++b) {
    for (int i = 0; i < kPerBatch; ++i) {
      d.post([&] {
        ran.fetch_add(1);
        d.defer([&] { ++deferred; }); // (only the loop's thread touches `deferred`)
      });
    }
    if (b % 20 == 0) {
      std::this_thread::yield();
    }
  }
  std::atomic<bool> seen{false};
  d.post([&] {
    d.defer([&] {
      seen = true;
      d.exit();
    });
  });
  loop.join();
  EXPECT_TRUE(seen);
  EXPECT_EQ(ran.load(), kBatches * kPerBatch);
  EXPECT_EQ(deferred, kBatches * kPerBatch);
}

TEST(Dispatcher, DestructionRunsWhatIsStillDeferred) {
  std::vector<std::string> log;
  {
    Dispatcher d("test", RealTimeSource::instance());
    d.defer([&] { log.push_back("deferred"); });
    d.deferredDelete(std::make_unique<Doomed>(log, "z"));
  }
  EXPECT_EQ(log, (std::vector<std::string>{"deferred", "delete z"}));
}

} // namespace
} // namespace pounce::event
