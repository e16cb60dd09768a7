#include "source/filters/server_timing/server_timing.h"

#include <charconv>
#include <cstdint>

#include "source/common/strings.h"

namespace pounce::filters::server_timing {

namespace {

// "<name>;dur=<ms with one decimal>", rounded half up, formatted without printf.
void appendEntry(std::string& out, std::string_view name, std::chrono::nanoseconds d) {
  if (!out.empty()) {
    out += ", ";
  }
  const int64_t ns = d.count() < 0 ? 0 : d.count();
  const int64_t tenths = (ns + 50000) / 100000; // tenths of a millisecond
  char buf[32];
  char* p = std::to_chars(buf, buf + sizeof(buf), tenths / 10).ptr;
  *p++ = '.';
  *p++ = static_cast<char>('0' + tenths % 10);
  out.append(name.data(), name.size());
  out += ";dur=";
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
    value = cat(*existing, ", ", value);
    headers.remove("server-timing");
  }
  headers.addLowercase("server-timing", value);
  return http::FilterStatus::Continue;
}

} // namespace pounce::filters::server_timing
