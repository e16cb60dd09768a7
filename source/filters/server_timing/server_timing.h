#pragma once

#include <chrono>
#include <string>

#include "source/http/filter.h"

namespace pounce::filters::server_timing {

// Formats a Server-Timing value: "total;dur=12.3" then one "<name>;dur=<ms>" per timing
// (milliseconds with one decimal, rounded half up). Timing names that are not tokens are
// skipped.
std::string formatServerTiming(std::chrono::nanoseconds total,
                               const http::StreamInfo::Timings& timings);

// Adds Server-Timing to the response head: the time from the start of the stream to the
// response head, and every StreamInfo::timings entry recorded by then ("queue", "app", ...).
// Place it first in the chain so that it sees every response, local replies included.
class ServerTimingFilter final : public http::StreamFilter {
public:
  // http::StreamEncoderFilter
  http::FilterStatus encodeHeaders(http::ResponseHeaders& headers, bool end_stream) override;
};

} // namespace pounce::filters::server_timing
