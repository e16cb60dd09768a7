#include "source/filters/server_timing/server_timing.h"

#include <cstdio>

namespace pounce::filters::server_timing {

namespace {

void appendEntry(std::string& out, std::string_view name, std::chrono::nanoseconds d) {
  if (!out.empty()) {
    out += ", ";
  }
  const double ms = std::chrono::duration<double, std::milli>(d).count();
  char buf[48];
  const int n = std::snprintf(buf, sizeof(buf), ";dur=%.1f", ms < 0 ? 0.0 : ms);
  out.append(name.data(), name.size());
  out.append(buf, static_cast<size_t>(n));
}

bool isToken(std::string_view name) {
  if (name.empty()) {
    return false;
  }
  for (char c : name) {
    if (!http::isTokenChar(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return true;
}

} // namespace

std::string
formatServerTiming(std::chrono::nanoseconds total,
                   const std::vector<std::pair<std::string, std::chrono::nanoseconds>>& timings) {
  std::string out;
  out.reserve(24 + timings.size() * 24);
  appendEntry(out, "total", total);
  for (const auto& [name, d] : timings) {
    if (isToken(name)) {
      appendEntry(out, name, d);
    }
  }
  return out;
}

http::FilterStatus ServerTimingFilter::encodeHeaders(http::ResponseHeaders& headers, bool) {
  const http::StreamInfo& info = encoder_callbacks_->streamInfo();
  const auto total = encoder_callbacks_->dispatcher().now() - info.start_time;
  std::string value =
      formatServerTiming(std::chrono::duration_cast<std::chrono::nanoseconds>(total), info.timings);
  if (auto existing = headers.get("server-timing")) {
    // Keep what the app reported, ours after it.
    value = std::string(*existing) + ", " + value;
  }
  headers.set("server-timing", value);
  return http::FilterStatus::Continue;
}

} // namespace pounce::filters::server_timing
