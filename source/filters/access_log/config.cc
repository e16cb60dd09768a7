#include "pounce/filters/access_log/v1/access_log.pb.h"
#include "source/filters/access_log/access_log.h"
#include "source/filters/common/proto_duration.h"
#include "source/http/filter_config.h"

namespace pounce::filters::access_log {

namespace {

using ProtoConfig = pounce::filters::access_log::v1::AccessLog;

class Factory : public http::FilterConfigFactory {
public:
  std::string name() const override { return "pounce.filters.access_log"; }
  std::unique_ptr<google::protobuf::Message> createEmptyConfig() const override {
    return std::make_unique<ProtoConfig>();
  }

  absl::StatusOr<http::FilterFactoryCb>
  createFilterFactory(const google::protobuf::Message& message,
                      http::FactoryContext& context) const override {
    const auto& proto = dynamic_cast<const ProtoConfig&>(message);
    auto config = std::make_shared<Config>();
    config->format = proto.format() == ProtoConfig::JSON ? Format::Json : Format::Text;
    if (proto.has_flush_interval()) {
      const auto ns = toNanos(proto.flush_interval());
      if (ns < std::chrono::nanoseconds(0) || ns > std::chrono::seconds(60)) {
        return absl::InvalidArgumentError("flush_interval: must be from 0s to 60s");
      }
      // Timers have millisecond resolution: round up (a positive interval stays positive).
      config->flush_interval = std::chrono::ceil<std::chrono::milliseconds>(ns);
    }
    const std::string path = proto.path().empty() || proto.path() == "-" || proto.path() == "stderr"
                                 ? proto.path()
                                 : context.resolvePath(proto.path());
    auto sink = Sink::open(path);
    if (!sink.ok()) {
      return sink.status();
    }
    config->sink = *sink;
    return http::FilterFactoryCb::inPlace<AccessLogFilter>(
        [config](void* at) { return new (at) AccessLogFilter(*config); });
  }
};

POUNCE_REGISTER_FILTER(Factory);

} // namespace

} // namespace pounce::filters::access_log
