#pragma once

#include <chrono>
#include <cstdint>

#include "google/protobuf/duration.pb.h"

namespace pounce::filters {

// A google.protobuf.Duration of a filter's config as nanoseconds (negative stays negative).
// Beyond what nanoseconds hold (about 292 years either way) it saturates, so a huge value is
// huge, never wrapped into a negative one.
inline std::chrono::nanoseconds toNanos(const google::protobuf::Duration& d) {
  constexpr int64_t kMaxSeconds = INT64_MAX / 1000000000 - 1;
  if (d.seconds() > kMaxSeconds) {
    return std::chrono::nanoseconds::max();
  }
  if (d.seconds() < -kMaxSeconds) {
    return std::chrono::nanoseconds::min();
  }
  return std::chrono::seconds(d.seconds()) + std::chrono::nanoseconds(d.nanos());
}

} // namespace pounce::filters
