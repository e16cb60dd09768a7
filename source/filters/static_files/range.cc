#include "source/filters/static_files/range.h"

#include <algorithm>

#include "source/common/strings.h"
#include "source/http/headers.h"

namespace pounce::filters::static_files {

namespace {

// A byte position: one or more digits. A value past 2^64-1 is taken as 2^64-1 (any file is
// shorter), so "bytes=0-99999999999999999999" is the rest of the file, not a bad header.
bool parsePosition(std::string_view text, uint64_t& out) {
  if (text.empty()) {
    return false;
  }
  out = 0;
  for (char c : text) {
    if (c < '0' || c > '9') {
      return false;
    }
    const auto digit = static_cast<uint64_t>(c - '0');
    out = out > (UINT64_MAX - digit) / 10 ? UINT64_MAX : out * 10 + digit;
  }
  return true;
}

} // namespace

RangeStatus evaluateRange(std::string_view value, uint64_t size, size_t max_ranges,
                          std::vector<ByteRange>& ranges) {
  ranges.clear();
  value = trim(value);
  const size_t eq = value.find('=');
  if (eq == std::string_view::npos || !http::equalsIgnoreCase(trim(value.substr(0, eq)), "bytes")) {
    return RangeStatus::Ignore;
  }
  size_t specs = 0;
  bool any = false;
  // The request's order of each range (its position in the header), kept through merging.
  std::vector<size_t> order;
  for (std::string_view spec : split(value.substr(eq + 1), ',')) {
    spec = trim(spec);
    if (spec.empty()) {
      continue; // empty list elements are allowed
    }
    if (++specs > max_ranges) {
      ranges.clear();
      return RangeStatus::Ignore;
    }
    const size_t dash = spec.find('-');
    if (dash == std::string_view::npos) {
      return RangeStatus::Ignore;
    }
    const std::string_view a = spec.substr(0, dash);
    const std::string_view b = spec.substr(dash + 1);
    uint64_t first = 0;
    uint64_t last = 0;
    if (a.empty()) {
      // Suffix range: the last N bytes.
      uint64_t n = 0;
      if (!parsePosition(b, n)) {
        return RangeStatus::Ignore;
      }
      any = true;
      if (n > 0 && size == 0) {
        // Satisfiable (RFC 9110 §14.1.1), but no 206 can say "bytes 0 to -1": the whole,
        // empty, representation is the answer.
        ranges.clear();
        return RangeStatus::Ignore;
      }
      if (n == 0) {
        continue;
      }
      first = size - std::min(n, size);
      last = size - 1;
    } else {
      if (!parsePosition(a, first)) {
        return RangeStatus::Ignore;
      }
      if (b.empty()) {
        last = UINT64_MAX;
      } else if (!parsePosition(b, last) || last < first) {
        return RangeStatus::Ignore;
      }
      any = true;
      if (first >= size) {
        continue;
      }
      last = std::min(last, size - 1);
    }
    ranges.push_back({first, last});
    order.push_back(specs);
  }
  if (!any) {
    return RangeStatus::Ignore;
  }
  if (ranges.empty()) {
    return RangeStatus::Unsatisfiable;
  }
  // Overlapping and adjacent ranges become one, which takes the place of the earliest
  // requested of them; otherwise the parts go in the order asked (RFC 9110 §15.3.7.2).
  std::vector<size_t> by_start(ranges.size());
  for (size_t i = 0; i < by_start.size(); ++i) {
    by_start[i] = i;
  }
  std::sort(by_start.begin(), by_start.end(),
            [&](size_t x, size_t y) { return ranges[x].first < ranges[y].first; });
  std::vector<std::pair<size_t, ByteRange>> merged; // (request order, range)
  for (size_t i : by_start) {
    if (!merged.empty() && ranges[i].first <= merged.back().second.last + 1) {
      merged.back().second.last = std::max(merged.back().second.last, ranges[i].last);
      merged.back().first = std::min(merged.back().first, order[i]);
    } else {
      merged.push_back({order[i], ranges[i]});
    }
  }
  std::sort(merged.begin(), merged.end(),
            [](const auto& x, const auto& y) { return x.first < y.first; });
  ranges.clear();
  for (const auto& m : merged) {
    ranges.push_back(m.second);
  }
  return RangeStatus::Satisfiable;
}

} // namespace pounce::filters::static_files
