#include "source/common/time.h"

#include <time.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace pounce {

RealTimeSource& RealTimeSource::instance() {
  static RealTimeSource source;
  return source;
}

std::string_view httpDate(TimeSource& time_source) {
  thread_local time_t cached_second = 0;
  thread_local char cached[40];
  thread_local size_t cached_len = 0;
  const time_t now = std::chrono::system_clock::to_time_t(time_source.systemTime());
  if (now != cached_second || cached_len == 0) {
    struct tm tm;
    gmtime_r(&now, &tm);
    cached_len = strftime(cached, sizeof(cached), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    cached_second = now;
  }
  return {cached, cached_len};
}

std::string formatDuration(std::chrono::nanoseconds d) {
  const auto ns = d.count();
  if (ns % 1000000000 == 0) {
    return std::to_string(ns / 1000000000) + "s";
  }
  char buf[64];
  // Up to nanosecond precision, trailing zeros trimmed.
  snprintf(buf, sizeof(buf), "%lld.%09llds", static_cast<long long>(ns / 1000000000),
           static_cast<long long>(std::llabs(ns % 1000000000)));
  std::string out(buf);
  out.pop_back(); // 's'
  while (out.back() == '0') {
    out.pop_back();
  }
  out += 's';
  return out;
}

bool parseDuration(std::string_view text, std::chrono::nanoseconds& out, bool* too_long) {
  if (too_long != nullptr) {
    *too_long = false;
  }
  size_t i = 0;
  while (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || text[i] == '.')) {
    ++i;
  }
  if (i == 0 || i == text.size()) {
    return false;
  }
  const std::string number(text.substr(0, i));
  if (number.find('.') != number.rfind('.') || number == ".") {
    return false;
  }
  char* end = nullptr;
  const double value = std::strtod(number.c_str(), &end);
  if (end != number.c_str() + number.size() || !std::isfinite(value) || value < 0) {
    return false;
  }
  const std::string_view unit = text.substr(i);
  double scale;
  if (unit == "s") {
    scale = 1e9;
  } else if (unit == "ms") {
    scale = 1e6;
  } else if (unit == "us") {
    scale = 1e3;
  } else if (unit == "ns") {
    scale = 1;
  } else if (unit == "m") {
    scale = 60e9;
  } else if (unit == "h") {
    scale = 3600e9;
  } else {
    return false;
  }
  const double ns = value * scale;
  if (ns >= 9.2e18) { // what nanoseconds in 64 bits hold: about 292 years
    if (too_long != nullptr) {
      *too_long = true;
    }
    return false;
  }
  out = std::chrono::nanoseconds(static_cast<long long>(std::llround(ns)));
  return true;
}

} // namespace pounce
