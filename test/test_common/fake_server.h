#pragma once

#include "source/common/server_context.h"
#include "test/test_common/simulated_time.h"

namespace pounce::test {

class FakeServerContext : public ServerContext {
public:
  FakeServerContext() : dispatcher_("test-main", time_) {}
  TimeSource& timeSource() override { return time_; }
  stats::Store& stats() override { return stats::Store::global(); }
  bool draining() const override { return draining_; }
  bool healthCheckFailed() const override { return health_failed_; }
  uint64_t activeConnections() const override { return active_connections_; }
  MonotonicTime startTime() const override { return start; }
  uint32_t workerId() const override { return worker_id; }
  uint32_t concurrency() const override { return 1; }
  event::Dispatcher& mainDispatcher() override { return dispatcher_; }

  SimulatedTimeSource time_;
  bool draining_{false};
  bool health_failed_{false};
  uint64_t active_connections_{0};
  MonotonicTime start{time_.monotonicTime()};
  uint32_t worker_id{0};

private:
  event::Dispatcher dispatcher_;
};

} // namespace pounce::test
