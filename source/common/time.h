#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace pounce {

using MonotonicTime = std::chrono::steady_clock::time_point;
using SystemTime = std::chrono::system_clock::time_point;

// Where code that measures or schedules gets the time. Production code uses
// RealTimeSource; tests inject a simulated one and move it by hand instead of sleeping.
class TimeSource {
public:
  virtual ~TimeSource() = default;
  virtual MonotonicTime monotonicTime() = 0;
  virtual SystemTime systemTime() = 0;
};

class RealTimeSource : public TimeSource {
public:
  MonotonicTime monotonicTime() override { return std::chrono::steady_clock::now(); }
  SystemTime systemTime() override { return std::chrono::system_clock::now(); }
  static RealTimeSource& instance();
};

// The HTTP Date header value ("Tue, 24 Nov 2026 22:42:12 GMT"), formatted at most once per
// second per thread.
std::string_view httpDate(TimeSource& time_source);

// Formats a duration the way configs write it: "10s", "0.500s".
std::string formatDuration(std::chrono::nanoseconds d);

// Parses "10s", "1.5s", "250ms", "2m", "1h", "100us". Returns false on anything else, and on
// a duration of 292 years or more (`too_long` then says so).
bool parseDuration(std::string_view text, std::chrono::nanoseconds& out, bool* too_long = nullptr);

} // namespace pounce
