#include <algorithm>

#include "pounce/filters/request_id/v1/request_id.pb.h"
#include "source/common/strings.h"
#include "source/filters/request_id/request_id.h"
#include "source/http/filter_config.h"

namespace pounce::filters::request_id {

namespace {

using ProtoConfig = pounce::filters::request_id::v1::RequestId;

class Factory : public http::FilterConfigFactory {
public:
  std::string name() const override { return "pounce.filters.request_id"; }
  std::unique_ptr<google::protobuf::Message> createEmptyConfig() const override {
    return std::make_unique<ProtoConfig>();
  }

  absl::StatusOr<http::FilterFactoryCb>
  createFilterFactory(const google::protobuf::Message& message,
                      http::FactoryContext&) const override {
    const auto& proto = dynamic_cast<const ProtoConfig&>(message);
    auto config = std::make_shared<Config>();
    if (!proto.header_name().empty()) {
      if (!http::isValidHeaderName(proto.header_name())) {
        return absl::InvalidArgumentError(
            cat("header_name: '", proto.header_name(), "' is not a valid header name"));
      }
      config->header_name = toLower(proto.header_name());
      config->dashed_name = config->header_name;
      std::replace(config->dashed_name.begin(), config->dashed_name.end(), '_', '-');
      config->name_has_underscore = config->dashed_name != config->header_name;
      // The id is written into both the request and the response: a field that frames,
      // routes or controls either would break them.
      static constexpr std::string_view kReserved[] = {
          "host",   "content-length", "trailer",       "expect", "content-type", "content-encoding",
          "cookie", "set-cookie",     "authorization", "date",   "server"};
      // (Checked as dashed too: the filter removes every spelling that reads as the name,
      // so `content_type` would take the client's Content-Type away.)
      auto reserved = [&](std::string_view name) {
        return http::isConnectionSpecificField(name) ||
               std::find(std::begin(kReserved), std::end(kReserved), name) != std::end(kReserved);
      };
      if (reserved(config->header_name) || reserved(config->dashed_name)) {
        return absl::InvalidArgumentError(cat("header_name: '", proto.header_name(),
                                              "' is a field the server or the HTTP framing "
                                              "needs; choose another (default X-Request-ID)"));
      }
    }
    switch (proto.trust_incoming()) {
    case ProtoConfig::ALWAYS:
      config->trust_incoming = TrustIncoming::Always;
      break;
    case ProtoConfig::NEVER:
      config->trust_incoming = TrustIncoming::Never;
      break;
    default:
      config->trust_incoming = TrustIncoming::TrustedPeers;
      break;
    }
    config->response_header = !proto.has_response_header() || proto.response_header();
    return http::FilterFactoryCb::inPlace<RequestIdFilter>(
        [config](void* at) { return new (at) RequestIdFilter(*config); });
  }
};

POUNCE_REGISTER_FILTER(Factory);

} // namespace

} // namespace pounce::filters::request_id
