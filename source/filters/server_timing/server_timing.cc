#include "source/filters/server_timing/server_timing.h"

#include <charconv>
#include <cstdint>
#include <cstring>

#include "source/common/strings.h"

namespace pounce::filters::server_timing {

namespace {

// "<name>;dur=<ms with one decimal>", rounded half up, formatted without printf.
void appendEntry(std::string& out, std::string_view name, std::chrono::nanoseconds d) {
  const int64_t ns = d.count() < 0 ? 0 : d.count();
  const int64_t tenths = (ns + 50000) / 100000; // tenths of a millisecond
  // ", <name>;dur=<digits>.<digit>" assembled here and appended once.
  char buf[96];
  if (name.size() > sizeof(buf) - 40) {
    out += out.empty() ? "" : ", ";
    out.append(name.data(), name.size());
    appendEntry(out, "", d); // the ";dur=" part alone
    return;
  }
  char* p = buf;
  if (!out.empty() && !name.empty()) {
    *p++ = ',';
    *p++ = ' ';
  }
  std::memcpy(p, name.data(), name.size());
  p += name.size();
  std::memcpy(p, ";dur=", 5);
  p += 5;
  p = std::to_chars(p, buf + sizeof(buf), tenths / 10).ptr;
  *p++ = '.';
  *p++ = static_cast<char>('0' + tenths % 10);
  out.append(buf, static_cast<size_t>(p - buf));
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

void appendServerTiming(
    std::string& out, std::chrono::nanoseconds total,
    const std::vector<std::pair<std::string, std::chrono::nanoseconds>>& timings) {
  appendEntry(out, "total", total); // after ", " when `out` holds the app's entries
  for (const auto& [name, d] : timings) {
    if (isToken(name)) {
      appendEntry(out, name, d);
    }
  }
}

} // namespace

std::string
formatServerTiming(std::chrono::nanoseconds total,
                   const std::vector<std::pair<std::string, std::chrono::nanoseconds>>& timings) {
  std::string out;
  appendServerTiming(out, total, timings);
  return out;
}

http::FilterStatus ServerTimingFilter::encodeHeaders(http::ResponseHeaders& headers, bool) {
  const http::StreamInfo& info = encoder_callbacks_->streamInfo();
  const auto total = std::chrono::duration_cast<std::chrono::nanoseconds>(
      encoder_callbacks_->dispatcher().now() - info.start_time);
  // Formatted in a per-thread scratch string (no allocation once warm); the map copies it.
  thread_local std::string value;
  value.clear();
  if (auto existing = headers.get("server-timing")) {
    // Keep what the app reported, ours after it.
    value.assign(existing->data(), existing->size());
    headers.remove("server-timing");
  }
  appendServerTiming(value, total, info.timings);
  headers.addLowercase("server-timing", value);
  return http::FilterStatus::Continue;
}

} // namespace pounce::filters::server_timing
