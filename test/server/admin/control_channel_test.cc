#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <optional>
#include <string>

#include "source/server/admin/control_channel.h"

namespace pounce::server::admin {
namespace {

class ControlChannelTest : public testing::Test {
protected:
  ControlChannelTest() { EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds_), 0); }
  // Runs the loop until `done` or a deadline.
  void runUntil(const std::function<bool()>& done) {
    auto timer = dispatcher_.createTimer([this] { dispatcher_.exit(); });
    for (int i = 0; i < 500 && !done(); ++i) {
      timer->enableTimer(std::chrono::milliseconds(10));
      dispatcher_.run();
    }
  }

  event::Dispatcher dispatcher_{"test", RealTimeSource::instance()};
  int fds_[2];
};

TEST_F(ControlChannelTest, RequestsGetTheirResponsesByIdInAnyOrder) {
  std::function<void(ControlResponse)> held;
  ControlChannel worker(
      dispatcher_, fds_[1],
      [&](const ControlRequest& request, std::function<void(ControlResponse)> respond) {
        ControlResponse r;
        r.set_ok(true);
        if (request.has_commit()) {
          r.set_message("commit " + std::to_string(request.commit().version()));
          held = [respond, r](ControlResponse) { respond(r); }; // answer later
          return;
        }
        r.set_message("status");
        respond(r);
      },
      nullptr);
  ControlChannel supervisor(dispatcher_, fds_[0], nullptr, nullptr);
  std::vector<std::string> answers;
  ControlRequest commit;
  commit.mutable_commit()->set_version(7);
  supervisor.call(commit, std::chrono::seconds(5), [&](std::optional<ControlResponse> r) {
    answers.push_back(r ? r->message() : "none");
  });
  ControlRequest status;
  status.set_status(true);
  supervisor.call(status, std::chrono::seconds(5), [&](std::optional<ControlResponse> r) {
    answers.push_back(r ? r->message() : "none");
  });
  runUntil([&] { return answers.size() == 1 && held; });
  EXPECT_EQ(answers, std::vector<std::string>{"status"});
  held(ControlResponse());
  runUntil([&] { return answers.size() == 2; });
  EXPECT_EQ(answers, (std::vector<std::string>{"status", "commit 7"}));
}

TEST_F(ControlChannelTest, LargeMessagesArriveWhole) {
  ControlChannel worker(
      dispatcher_, fds_[1],
      [&](const ControlRequest&, std::function<void(ControlResponse)> respond) {
        ControlResponse r;
        auto* family = r.mutable_stats()->add_families();
        family->set_name("big");
        family->set_help(std::string(8 << 20, 'x')); // far over a socket buffer
        respond(r);
      },
      nullptr);
  ControlChannel supervisor(dispatcher_, fds_[0], nullptr, nullptr);
  std::optional<ControlResponse> got;
  ControlRequest stats;
  stats.set_stats(true);
  supervisor.call(stats, std::chrono::seconds(10),
                  [&](std::optional<ControlResponse> r) { got = r; });
  runUntil([&] { return got.has_value(); });
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->stats().families(0).help().size(), 8u << 20);
}

TEST_F(ControlChannelTest, CallsFailWhenThePeerGoesAwayOrTimesOut) {
  bool closed = false;
  ControlChannel supervisor(dispatcher_, fds_[0], nullptr, [&] { closed = true; });
  int timeouts = 0;
  ControlRequest status;
  status.set_status(true);
  // Nobody answers: the call times out.
  supervisor.call(status, std::chrono::milliseconds(20),
                  [&](std::optional<ControlResponse> r) { timeouts += r.has_value() ? 0 : 1; });
  runUntil([&] { return timeouts == 1; });
  EXPECT_EQ(timeouts, 1);
  // The worker dies: a pending call fails, and the owner hears of it.
  supervisor.call(status, std::chrono::seconds(30),
                  [&](std::optional<ControlResponse> r) { timeouts += r.has_value() ? 0 : 1; });
  ::close(fds_[1]);
  runUntil([&] { return closed && timeouts == 2; });
  EXPECT_TRUE(closed);
  EXPECT_EQ(timeouts, 2);
  EXPECT_FALSE(supervisor.open());
  // Calls on a closed channel fail at once.
  supervisor.call(status, std::chrono::seconds(30),
                  [&](std::optional<ControlResponse> r) { timeouts += r.has_value() ? 0 : 1; });
  EXPECT_EQ(timeouts, 3);
}

TEST_F(ControlChannelTest, ACorruptStreamClosesTheChannel) {
  bool closed = false;
  ControlChannel supervisor(dispatcher_, fds_[0], nullptr, [&] { closed = true; });
  const unsigned char huge[4] = {0xff, 0xff, 0xff, 0xff}; // a length over the limit
  ASSERT_EQ(::write(fds_[1], huge, sizeof(huge)), 4);
  runUntil([&] { return closed; });
  EXPECT_TRUE(closed);
  ::close(fds_[1]);
}

TEST_F(ControlChannelTest, DestroyingTheChannelFailsPendingCallsLater) {
  int failed = 0;
  {
    ControlChannel supervisor(dispatcher_, fds_[0], nullptr, nullptr);
    ControlRequest status;
    status.set_status(true);
    supervisor.call(status, std::chrono::seconds(30),
                    [&](std::optional<ControlResponse> r) { failed += r.has_value() ? 0 : 1; });
  }
  EXPECT_EQ(failed, 0) << "not from inside the destructor";
  runUntil([&] { return failed == 1; });
  EXPECT_EQ(failed, 1);
  ::close(fds_[1]);
}

} // namespace
} // namespace pounce::server::admin
