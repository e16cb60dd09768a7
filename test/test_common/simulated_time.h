#pragma once

#include "source/common/time.h"

namespace pounce::test {

// Time that moves only when a test says so.
class SimulatedTimeSource : public TimeSource {
public:
  MonotonicTime monotonicTime() override { return mono_; }
  SystemTime systemTime() override { return system_; }
  void advance(std::chrono::nanoseconds d) {
    mono_ += d;
    system_ += std::chrono::duration_cast<SystemTime::duration>(d);
  }
  // Sets the time of day alone (monotonic time stays).
  void setSystemTime(SystemTime t) { system_ = t; }

private:
  MonotonicTime mono_{std::chrono::seconds(1000)};
  SystemTime system_{std::chrono::seconds(1790000000)};
};

} // namespace pounce::test
