#include "source/filters/rate_limit/rate_limit.h"

#include <string>

namespace pounce::filters::rate_limit {

uint64_t ceilSeconds(std::chrono::nanoseconds d, uint64_t floor) {
  const int64_t ns = d.count();
  const uint64_t seconds = ns <= 0 ? 0 : static_cast<uint64_t>((ns + 999999999) / 1000000000);
  return std::max(seconds, floor);
}

http::FilterStatus RateLimitFilter::decodeHeaders(http::RequestHeaders&, bool) {
  http::StreamInfo& info = decoder_callbacks_->streamInfo();
  if (!info.client_address.isIp()) {
    return http::FilterStatus::Continue;
  }
  decision_ = config_->buckets.consume(
      ClientKey::fromAddress(info.client_address, config_->ipv6_prefix_length));
  decided_ = true;
  if (decision_.allowed) {
    return http::FilterStatus::Continue;
  }
  if (config_->shadow) {
    config_->shadow_rejected->inc();
    return http::FilterStatus::Continue;
  }
  config_->rejected->inc();
  info.setFlag(http::ResponseFlag::RateLimited);
  decoder_callbacks_->sendLocalReply(429, "Too Many Requests\n", [this](http::ResponseHeaders& h) {
    h.addLowercase("retry-after", std::to_string(ceilSeconds(decision_.retry_after, 1)));
    addRateLimitHeaders(h);
  });
  return http::FilterStatus::StopIteration;
}

http::FilterStatus RateLimitFilter::encodeHeaders(http::ResponseHeaders& headers, bool) {
  if (config_->response_headers && decided_) {
    addRateLimitHeaders(headers);
  }
  return http::FilterStatus::Continue;
}

void RateLimitFilter::addRateLimitHeaders(http::ResponseHeaders& headers) const {
  headers.set("ratelimit-limit", std::to_string(config_->buckets.burst()));
  headers.set("ratelimit-remaining", std::to_string(decision_.remaining));
  headers.set("ratelimit-reset", std::to_string(ceilSeconds(decision_.reset, 0)));
}

} // namespace pounce::filters::rate_limit
