#include "source/filters/server_timing/server_timing.h"
#include "source/http/filter_config.h"

namespace pounce::filters::server_timing {

namespace {

// Takes no configuration.
class Factory : public http::FilterConfigFactory {
public:
  std::string name() const override { return "pounce.filters.server_timing"; }
  std::unique_ptr<google::protobuf::Message> createEmptyConfig() const override { return nullptr; }

  absl::StatusOr<http::FilterFactoryCb> createFilterFactory(const google::protobuf::Message&,
                                                            http::FactoryContext&) const override {
    return http::FilterFactoryCb::inPlace<ServerTimingFilter>(
        [](void* at) { return new (at) ServerTimingFilter(); });
  }
};

POUNCE_REGISTER_FILTER(Factory);

} // namespace

} // namespace pounce::filters::server_timing
