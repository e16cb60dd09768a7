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

// Overlapping and adjacent ranges become one, which takes the place of the first asked of
// them; otherwise the parts stay in the order asked (RFC 9110 §15.3.7.2).
void mergeInRequestOrder(std::vector<ByteRange>& ranges) {
  struct Part {
    ByteRange range;
    size_t asked; // position in the header
  };
  std::vector<Part> parts;
  parts.reserve(ranges.size());
  for (size_t i = 0; i < ranges.size(); ++i) {
    parts.push_back({ranges[i], i});
  }
  std::sort(parts.begin(), parts.end(),
            [](const Part& x, const Part& y) { return x.range.first < y.range.first; });
  size_t out = 0;
  for (size_t i = 1; i < parts.size(); ++i) {
    Part& merged = parts[out];
    if (parts[i].range.first <= merged.range.last + 1) {
      merged.range.last = std::max(merged.range.last, parts[i].range.last);
      merged.asked = std::min(merged.asked, parts[i].asked);
    } else {
      parts[++out] = parts[i];
    }
  }
  parts.resize(out + 1);
  std::sort(parts.begin(), parts.end(),
            [](const Part& x, const Part& y) { return x.asked < y.asked; });
  ranges.clear();
  for (const Part& p : parts) {
    ranges.push_back(p.range);
  }
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
  }
  if (!any) {
    return RangeStatus::Ignore;
  }
  if (ranges.empty()) {
    return RangeStatus::Unsatisfiable;
  }
  if (ranges.size() > 1) {
    mergeInRequestOrder(ranges);
  }
  return RangeStatus::Satisfiable;
}

} // namespace pounce::filters::static_files
