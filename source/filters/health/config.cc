#include "pounce/filters/health/v1/health.pb.h"
#include "source/common/strings.h"
#include "source/filters/health/health.h"
#include "source/http/filter_config.h"

namespace pounce::filters::health {

namespace {

using ProtoConfig = pounce::filters::health::v1::Health;

absl::Status validatePath(std::string_view field, const std::string& path) {
  if (path.empty() || path.front() != '/') {
    return absl::InvalidArgumentError(cat(field, ": must start with '/' (e.g. \"/health\")"));
  }
  if (path.find_first_of("?# \t\r\n") != std::string::npos) {
    return absl::InvalidArgumentError(
        cat(field, ": '", path, "' must be a plain path (no query, fragment or spaces)"));
  }
  return absl::OkStatus();
}

class Factory : public http::FilterConfigFactory {
public:
  std::string name() const override { return "pounce.filters.health"; }
  std::unique_ptr<google::protobuf::Message> createEmptyConfig() const override {
    return std::make_unique<ProtoConfig>();
  }

  absl::StatusOr<http::FilterFactoryCb>
  createFilterFactory(const google::protobuf::Message& message,
                      http::FactoryContext& context) const override {
    const auto& proto = dynamic_cast<const ProtoConfig&>(message);
    if (proto.path().empty()) {
      return absl::InvalidArgumentError("path: required (e.g. \"/health\")");
    }
    if (auto status = validatePath("path", proto.path()); !status.ok()) {
      return status;
    }
    if (!proto.ready_path().empty()) {
      if (auto status = validatePath("ready_path", proto.ready_path()); !status.ok()) {
        return status;
      }
      if (proto.ready_path() == proto.path()) {
        return absl::InvalidArgumentError(
            "ready_path: must differ from path (leave it out for a single endpoint)");
      }
    }
    auto config = std::make_shared<Config>();
    config->path = proto.path();
    config->ready_path = proto.ready_path();
    config->access_log = proto.access_log();
    config->server = &context.server();
    return http::FilterFactoryCb::inPlace<HealthFilter>(
        [config](void* at) { return new (at) HealthFilter(*config); });
  }
};

POUNCE_REGISTER_FILTER(Factory);

} // namespace

} // namespace pounce::filters::health
