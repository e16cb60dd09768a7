#pragma once

#include <memory>

#include "source/common/stats.h"
#include "source/filters/rate_limit/client_buckets.h"
#include "source/http/filter.h"

namespace pounce::filters::rate_limit {

// The validated config and the buckets: built once per chain, shared by every stream on
// every I/O thread.
struct Config {
  Config(double rate, uint32_t burst, uint32_t max_clients, TimeSource& time_source)
      : buckets(rate, burst, max_clients, time_source) {}

  ClientBuckets buckets;
  uint32_t ipv6_prefix_length{64};
  bool shadow{false};
  bool response_headers{false};
  const stats::Series* rejected{nullptr};        // rate_limit_rejected_total{listener}
  const stats::Series* shadow_rejected{nullptr}; // rate_limit_shadow_rejected_total{listener}
};
using ConfigSharedPtr = std::shared_ptr<Config>;

// Whole seconds for Retry-After / RateLimit-Reset: rounded up, at least `floor`.
uint64_t ceilSeconds(std::chrono::nanoseconds d, uint64_t floor);

// Takes a token for the request's client; answers 429 when there is none.
class RateLimitFilter final : public http::StreamFilter {
public:
  // `config` belongs to the chain's factory, which outlives every stream on the chain
  // (no reference count per stream).
  explicit RateLimitFilter(Config& config) : config_(&config) {}

  // http::StreamDecoderFilter
  http::FilterStatus decodeHeaders(http::RequestHeaders& headers, bool end_stream) override;
  // http::StreamEncoderFilter
  http::FilterStatus encodeHeaders(http::ResponseHeaders& headers, bool end_stream) override;

private:
  void addRateLimitHeaders(http::ResponseHeaders& headers) const;

  Config* config_; // the buckets change: shared by every stream of the chain
  ClientBuckets::Decision decision_;
  bool decided_{false};
};

} // namespace pounce::filters::rate_limit
