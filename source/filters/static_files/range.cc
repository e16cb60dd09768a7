#include "source/filters/static_files/range.h"

#include <algorithm>

#include "source/common/strings.h"
#include "source/http/headers.h"

namespace pounce::filters::static_files {

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
      if (!parseUint(b, n)) {
        return RangeStatus::Ignore;
      }
      any = true;
      if (n == 0 || size == 0) {
        continue;
      }
      first = size - std::min(n, size);
      last = size - 1;
    } else {
      if (!parseUint(a, first)) {
        return RangeStatus::Ignore;
      }
      if (b.empty()) {
        last = UINT64_MAX;
      } else if (!parseUint(b, last) || last < first) {
        return RangeStatus::Ignore;
      }
      any = true;
      if (first >= size) {
        continue;
      }
      last = std::min(last, size - 1);
    }
    ranges.push_back({first, last});
  }
  if (!any) {
    return RangeStatus::Ignore;
  }
  if (ranges.empty()) {
    return RangeStatus::Unsatisfiable;
  }
  std::sort(ranges.begin(), ranges.end(),
            [](const ByteRange& x, const ByteRange& y) { return x.first < y.first; });
  size_t out = 0;
  for (size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].first <= ranges[out].last + 1) {
      ranges[out].last = std::max(ranges[out].last, ranges[i].last);
    } else {
      ranges[++out] = ranges[i];
    }
  }
  ranges.resize(out + 1);
  return RangeStatus::Satisfiable;
}

} // namespace pounce::filters::static_files
