#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "source/server/admin/operation_queue.h"

namespace pounce::server::admin {
namespace {

TEST(OperationQueue, RunsOneAtATimeInOrder) {
  OperationQueue queue;
  std::vector<std::string> log;
  std::function<void()> finish_first;
  queue.push([&](std::function<void()> done) {
    log.push_back("first starts");
    finish_first = done; // finishes later
  });
  queue.push([&](std::function<void()> done) {
    log.push_back("second");
    done();
  });
  EXPECT_TRUE(queue.busy());
  EXPECT_EQ(log, std::vector<std::string>{"first starts"});
  finish_first();
  EXPECT_EQ(log, (std::vector<std::string>{"first starts", "second"}));
  EXPECT_FALSE(queue.busy());
}

TEST(OperationQueue, OperationsThatFinishAtOnceDoNotRecurse) {
  OperationQueue queue;
  int ran = 0;
  for (int i = 0; i < 100000; ++i) {
    queue.push([&](std::function<void()> done) {
      ++ran;
      done();
    });
  }
  EXPECT_EQ(ran, 100000);
  EXPECT_FALSE(queue.busy());
}

TEST(OperationQueue, AnOperationMayQueueAnother) {
  OperationQueue queue;
  std::vector<int> order;
  queue.push([&](std::function<void()> done) {
    queue.push([&](std::function<void()> inner) {
      order.push_back(2);
      inner();
    });
    order.push_back(1);
    done();
  });
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
}

} // namespace
} // namespace pounce::server::admin
