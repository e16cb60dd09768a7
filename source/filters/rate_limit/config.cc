#include <cmath>

#include "pounce/filters/rate_limit/v1/rate_limit.pb.h"
#include "source/common/strings.h"
#include "source/filters/rate_limit/rate_limit.h"
#include "source/http/filter_config.h"

namespace pounce::filters::rate_limit {

namespace {

using ProtoConfig = pounce::filters::rate_limit::v1::RateLimit;

constexpr double kMaxRate = 1e9;
constexpr uint32_t kMaxBurst = 1000000000;
constexpr double kMaxRefillSeconds = 365.0 * 86400;

class Factory : public http::FilterConfigFactory {
public:
  std::string name() const override { return "pounce.filters.rate_limit"; }
  std::unique_ptr<google::protobuf::Message> createEmptyConfig() const override {
    return std::make_unique<ProtoConfig>();
  }

  absl::StatusOr<http::FilterFactoryCb>
  createFilterFactory(const google::protobuf::Message& message,
                      http::FactoryContext& context) const override {
    const auto& proto = dynamic_cast<const ProtoConfig&>(message);
    const double rate = proto.requests_per_second();
    if (!(rate > 0) || !std::isfinite(rate) || rate > kMaxRate) {
      return absl::InvalidArgumentError(
          "requests_per_second: required, greater than 0 and at most 1e9 (e.g. 10, or 0.5 for "
          "one request every 2 seconds)");
    }
    uint32_t burst = static_cast<uint32_t>(std::max(1.0, std::ceil(std::min(rate, 1e9))));
    if (proto.has_burst()) {
      if (proto.burst() < 1 || proto.burst() > kMaxBurst) {
        return absl::InvalidArgumentError("burst: must be between 1 and 1000000000");
      }
      burst = proto.burst();
    }
    if (burst / rate > kMaxRefillSeconds) {
      return absl::InvalidArgumentError(cat("burst: a bucket of ", burst,
                                            " tokens would take more than a year to refill at "
                                            "requests_per_second; lower burst or raise the rate"));
    }
    uint32_t max_clients = 100000;
    if (proto.has_max_tracked_clients()) {
      if (proto.max_tracked_clients() < 1) {
        return absl::InvalidArgumentError("max_tracked_clients: must be at least 1");
      }
      max_clients = proto.max_tracked_clients();
    }
    auto config = std::make_shared<Config>(rate, burst, max_clients, context.server().timeSource());
    if (proto.has_ipv6_prefix_length()) {
      if (proto.ipv6_prefix_length() < 1 || proto.ipv6_prefix_length() > 128) {
        return absl::InvalidArgumentError("ipv6_prefix_length: must be between 1 and 128");
      }
      config->ipv6_prefix_length = proto.ipv6_prefix_length();
    }
    config->shadow = proto.shadow();
    config->response_headers = proto.response_headers();
    auto& store = context.server().stats();
    auto& rejected =
        store.family("rate_limit_rejected_total", "Requests answered 429 by the rate limit filter.",
                     stats::Type::Counter, {"listener"});
    auto& shadow = store.family(
        "rate_limit_shadow_rejected_total",
        "Requests the rate limit filter would have rejected, let through in shadow mode.",
        stats::Type::Counter, {"listener"});
    config->rejected = &store.series(rejected, {context.listenerName()});
    config->shadow_rejected = &store.series(shadow, {context.listenerName()});
    return http::FilterFactoryCb::inPlace<RateLimitFilter>(
        [config](void* at) { return new (at) RateLimitFilter(*config); });
  }
};

POUNCE_REGISTER_FILTER(Factory);

} // namespace

} // namespace pounce::filters::rate_limit
