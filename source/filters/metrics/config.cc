#include <cmath>

#include "pounce/filters/metrics/v1/metrics.pb.h"
#include "source/common/strings.h"
#include "source/filters/metrics/metrics.h"
#include "source/http/filter_config.h"

namespace pounce::filters::metrics {

namespace {

using ProtoConfig = pounce::filters::metrics::v1::Metrics;

std::string formatBuckets(const std::vector<double>& buckets) {
  std::string out;
  for (double b : buckets) {
    if (!out.empty()) {
      out += ", ";
    }
    char buf[32];
    snprintf(buf, sizeof(buf), "%g", b);
    out += buf;
  }
  return out;
}

class Factory : public http::FilterConfigFactory {
public:
  std::string name() const override { return "pounce.filters.metrics"; }
  std::unique_ptr<google::protobuf::Message> createEmptyConfig() const override {
    return std::make_unique<ProtoConfig>();
  }

  absl::StatusOr<http::FilterFactoryCb>
  createFilterFactory(const google::protobuf::Message& message,
                      http::FactoryContext& context) const override {
    const auto& proto = dynamic_cast<const ProtoConfig&>(message);
    const std::string path = proto.has_path() ? proto.path() : "/metrics";
    if (path.empty() || path[0] != '/') {
      return absl::InvalidArgumentError(cat("path: '", path, "' must start with '/'"));
    }
    if (path.find_first_of("?#") != std::string::npos || !http::isValidHeaderValue(path)) {
      return absl::InvalidArgumentError(
          cat("path: '", path, "' must be a plain path (no query, fragment or control bytes)"));
    }
    std::vector<double> buckets(proto.buckets().begin(), proto.buckets().end());
    if (buckets.empty()) {
      buckets = defaultBuckets();
    }
    for (size_t i = 0; i < buckets.size(); ++i) {
      if (!std::isfinite(buckets[i])) {
        return absl::InvalidArgumentError(
            cat("buckets[", i, "]: must be a finite number (+Inf is always added)"));
      }
      if (i > 0 && buckets[i] <= buckets[i - 1]) {
        return absl::InvalidArgumentError(
            cat("buckets[", i, "]: bucket bounds must be strictly ascending"));
      }
    }
    stats::Store& store = context.server().stats();
    if (!registerFamilies(store, buckets)) {
      const auto& existing =
          store.family("http_request_duration_seconds", "", stats::Type::Histogram).buckets;
      return absl::InvalidArgumentError(
          cat("buckets: [", formatBuckets(buckets),
              "] differ from the buckets http_request_duration_seconds already uses in this "
              "process ([",
              formatBuckets(existing),
              "]); the metrics filters of a process share one histogram, whose buckets can "
              "change only when no metrics filter is running (remove them first, or restart)"));
    }
    auto config =
        std::make_shared<const Config>(store, context.listenerName(), path, proto.log_scrapes());
    return http::FilterFactoryCb::inPlace<MetricsFilter>(
        [config](void* at) { return new (at) MetricsFilter(*config); });
  }
};

POUNCE_REGISTER_FILTER(Factory);

} // namespace

} // namespace pounce::filters::metrics
