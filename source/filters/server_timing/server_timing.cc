#include "source/filters/server_timing/server_timing.h"

#include <charconv>
#include <cstdint>
#include <cstring>

#include "source/common/strings.h"

namespace pounce::filters::server_timing {

namespace {

using Timings = http::StreamInfo::Timings;

// What one entry adds beyond its name: ", " ";dur=" the digits of an int64 '.' one digit.
constexpr size_t kEntryExtra = 2 + 5 + 20 + 2;
// Values up to this size are formatted on the stack.
constexpr size_t kStackValue = 256;

// "<name>;dur=<ms with one decimal>", after ", " unless it is the first entry; rounded half
// up; formatted without printf. Writes at most name.size() + kEntryExtra bytes.
char* putEntry(char* p, bool first, std::string_view name, std::chrono::nanoseconds d) {
  const int64_t ns = d.count() < 0 ? 0 : d.count();
  const int64_t tenths = (ns + 50000) / 100000; // tenths of a millisecond
  if (!first) {
    *p++ = ',';
    *p++ = ' ';
  }
  copyBytes(p, name.data(), name.size());
  p += name.size();
  std::memcpy(p, ";dur=", 5);
  p += 5;
  p = std::to_chars(p, p + 20, tenths / 10).ptr;
  *p++ = '.';
  *p++ = static_cast<char>('0' + tenths % 10);
  return p;
}

// The most bytes putServerTiming writes after `before`.
size_t valueBound(std::string_view before, const Timings& timings) {
  size_t n = before.size() + 5 + kEntryExtra; // "total"
  for (const auto& [name, d] : timings) {
    n += name.size() + kEntryExtra;
  }
  return n;
}

// `before` (the app's own entries, possibly none), then "total" and every timing whose name
// is a token. At most valueBound() bytes.
char* putServerTiming(char* p, std::string_view before, std::chrono::nanoseconds total,
                      const Timings& timings) {
  if (!before.empty()) { // (an empty view's data() may be null: no memcpy from it)
    std::memcpy(p, before.data(), before.size());
    p += before.size();
  }
  p = putEntry(p, before.empty(), "total", total);
  for (const auto& [name, d] : timings) {
    if (http::isValidHeaderName(name)) { // (a metric name is an RFC 9110 token)
      p = putEntry(p, false, name, d);
    }
  }
  return p;
}

} // namespace

std::string formatServerTiming(std::chrono::nanoseconds total, const Timings& timings) {
  std::string out(valueBound({}, timings), '\0');
  out.resize(static_cast<size_t>(putServerTiming(out.data(), {}, total, timings) - out.data()));
  return out;
}

http::FilterStatus ServerTimingFilter::encodeHeaders(http::ResponseHeaders& headers, bool) {
  const http::StreamInfo& info = encoder_callbacks_->streamInfo();
  const auto total = std::chrono::duration_cast<std::chrono::nanoseconds>(
      encoder_callbacks_->dispatcher().now() - info.start_time);
  // What the app reported comes first: its Server-Timing fields, combined.
  std::string joined;
  const auto app = headers.getCombined("server-timing", joined);
  const std::string_view before = app.value_or(std::string_view());
  const size_t bound = valueBound(before, info.timings);
  char stack[kStackValue];
  std::string heap;
  char* out = stack;
  if (bound > sizeof(stack)) {
    heap.resize(bound);
    out = heap.data();
  }
  const std::string_view value(
      out, static_cast<size_t>(putServerTiming(out, before, total, info.timings) - out));
  if (app) { // (`before` is not used past here: it may point into the map)
    headers.remove("server-timing");
  }
  headers.addLowercase("server-timing", value);
  return http::FilterStatus::Continue;
}

} // namespace pounce::filters::server_timing
