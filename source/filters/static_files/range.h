#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace pounce::filters::static_files {

// One satisfiable byte range, inclusive at both ends (as in Content-Range).
struct ByteRange {
  uint64_t first;
  uint64_t last;
  uint64_t length() const { return last - first + 1; }
  bool operator==(const ByteRange& o) const { return first == o.first && last == o.last; }
};

enum class RangeStatus {
  // Not a valid "bytes=" range set, or more ranges than allowed: serve the whole file.
  Ignore,
  // Valid, but no range overlaps the file: 416 with "Content-Range: bytes */size".
  Unsatisfiable,
  // `ranges` holds the satisfiable ranges in the order asked, overlapping and adjacent ones
  // merged (in the place of the first of them).
  Satisfiable,
};

// Evaluates a Range header value (RFC 9110 §14.1.2) against a representation of `size`
// bytes. For a 1000-byte file:
//   "bytes=0-99"        -> Satisfiable [0-99]
//   "bytes=-100"        -> Satisfiable [900-999]      (the last 100 bytes)
//   "bytes=900-"        -> Satisfiable [900-999]
//   "bytes=990-2000"    -> Satisfiable [990-999]      (clamped to the end)
//   "bytes=0-10,5-20"   -> Satisfiable [0-20]         (merged)
//   "bytes=500-599,0-9" -> Satisfiable [500-599, 0-9] (the order asked)
//   "bytes=0-99999999999999999999" -> Satisfiable [0-999] (a huge last position)
//   "bytes=1000-"       -> Unsatisfiable
//   "bytes=-5" of an empty file -> Ignore            (the whole, empty, file)
//   "bytes=5-1", "items=0-1", "bytes=x" -> Ignore
RangeStatus evaluateRange(std::string_view value, uint64_t size, size_t max_ranges,
                          std::vector<ByteRange>& ranges);

} // namespace pounce::filters::static_files
