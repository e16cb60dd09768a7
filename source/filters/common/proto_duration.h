#pragma once

#include <chrono>

#include "google/protobuf/duration.pb.h"

namespace pounce::filters {

// A google.protobuf.Duration of a filter's config as nanoseconds (negative stays negative).
inline std::chrono::nanoseconds toNanos(const google::protobuf::Duration& d) {
  return std::chrono::seconds(d.seconds()) + std::chrono::nanoseconds(d.nanos());
}

} // namespace pounce::filters
