#include <fstream>
#include <sstream>

#include "pounce/filters/direct_response/v1/direct_response.pb.h"
#include "source/common/strings.h"
#include "source/filters/direct_response/direct_response.h"
#include "source/http/filter_config.h"

namespace pounce::filters::direct_response {

namespace {

using ProtoConfig = pounce::filters::direct_response::v1::DirectResponse;

class Factory : public http::FilterConfigFactory {
public:
  std::string name() const override { return "pounce.filters.direct_response"; }
  std::unique_ptr<google::protobuf::Message> createEmptyConfig() const override {
    return std::make_unique<ProtoConfig>();
  }
  bool isTerminal() const override { return true; }

  absl::StatusOr<http::FilterFactoryCb>
  createFilterFactory(const google::protobuf::Message& message,
                      http::FactoryContext& context) const override {
    const auto& proto = dynamic_cast<const ProtoConfig&>(message);
    auto config = std::make_shared<Config>();
    config->status = proto.has_status() ? static_cast<int>(proto.status()) : 200;
    if (config->status < 200 || config->status > 599) {
      return absl::InvalidArgumentError(
          cat("status: ", config->status, " is not a final HTTP status (200-599)"));
    }
    if (!proto.body_file().empty()) {
      if (!proto.body().empty()) {
        return absl::InvalidArgumentError("body_file: give body or body_file, not both");
      }
      const std::string path = context.resolvePath(proto.body_file());
      std::ifstream in(path, std::ios::binary);
      if (!in) {
        return absl::InvalidArgumentError(
            cat("body_file: cannot read '", path, "': ", std::strerror(errno)));
      }
      std::stringstream ss;
      ss << in.rdbuf();
      config->body = ss.str();
    } else {
      config->body = proto.body();
    }
    bool has_content_type = false;
    for (int i = 0; i < proto.headers_size(); ++i) {
      const auto& h = proto.headers(i);
      if (!http::isValidHeaderName(h.name())) {
        return absl::InvalidArgumentError(
            cat("headers[", i, "].name: '", h.name(), "' is not a valid header name"));
      }
      if (!http::isValidHeaderValue(h.value())) {
        return absl::InvalidArgumentError(
            cat("headers[", i, "].value: contains characters not allowed in a header"));
      }
      const std::string lname = toLower(h.name());
      if (lname == "content-length" || lname == "trailer" ||
          http::isConnectionSpecificField(lname)) {
        return absl::InvalidArgumentError(
            cat("headers[", i, "].name: '", h.name(), "' is set by the server"));
      }
      has_content_type = has_content_type || lname == "content-type";
      config->headers.add(h.name(), h.value());
    }
    if (!has_content_type && !config->body.empty()) {
      config->headers.addLowercase("content-type", "text/plain; charset=utf-8");
    }
    const bool bodyless = config->status == 204 || config->status == 205 || config->status == 304;
    if (bodyless && !config->body.empty()) {
      return absl::InvalidArgumentError(
          cat("body: a ", config->status, " response cannot have a body"));
    }
    if (!bodyless) {
      config->headers.addLowercase("content-length", std::to_string(config->body.size()));
    }
    config->headers.setStatus(config->status);
    return http::FilterFactoryCb::inPlace<DirectResponseFilter>(
        [config](void* at) { return new (at) DirectResponseFilter(*config); });
  }
};

POUNCE_REGISTER_FILTER(Factory);

} // namespace

} // namespace pounce::filters::direct_response
