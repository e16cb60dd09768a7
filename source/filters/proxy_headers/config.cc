#include "pounce/filters/proxy_headers/v1/proxy_headers.pb.h"
#include "source/common/logger.h"
#include "source/common/strings.h"
#include "source/filters/proxy_headers/proxy_headers.h"
#include "source/http/filter_config.h"

namespace pounce::filters::proxy_headers {

namespace {

using ProtoConfig = pounce::filters::proxy_headers::v1::ProxyHeaders;

class Factory : public http::FilterConfigFactory {
public:
  std::string name() const override { return "pounce.filters.proxy_headers"; }
  std::unique_ptr<google::protobuf::Message> createEmptyConfig() const override {
    return std::make_unique<ProtoConfig>();
  }

  absl::StatusOr<http::FilterFactoryCb>
  createFilterFactory(const google::protobuf::Message& message,
                      http::FactoryContext& context) const override {
    const auto& proto = dynamic_cast<const ProtoConfig&>(message);
    auto config = std::make_shared<Config>();
    for (int i = 0; i < proto.trusted_hosts_size(); ++i) {
      const std::string_view entry = trim(proto.trusted_hosts(i));
      if (entry == "*") {
        config->trust_all = true;
        continue;
      }
      if (entry == "unix") {
        config->trust_unix = true;
        continue;
      }
      if (entry == "localhost") {
        // Both loopback addresses: a proxy on this host may connect over either.
        for (std::string_view loopback : {"127.0.0.1", "::1"}) {
          config->trusted_ranges.push_back(*network::CidrRange::parse(loopback));
        }
        continue;
      }
      auto range = network::CidrRange::parse(entry);
      if (!range.ok()) {
        return absl::InvalidArgumentError(
            cat("trusted_hosts[", i, "]: '", proto.trusted_hosts(i),
                "' is not an IP address, a CIDR range (10.0.0.0/8, fd00::/8), \"unix\" or \"*\""));
      }
      config->trusted_ranges.push_back(*range);
    }
    if (config->trust_all) {
      POUNCE_LOG(Config, Warning,
                 "listener '%s': proxy_headers trusts every peer (trusted_hosts: \"*\"): any "
                 "client can set the address, scheme and host the app sees; list the proxies' "
                 "addresses instead unless only trusted proxies can reach this listener",
                 context.listenerName());
    }
    if (proto.has_forwarded_for_trusted_hops()) {
      if (proto.forwarded_for_trusted_hops() < 1) {
        return absl::InvalidArgumentError(
            "forwarded_for_trusted_hops: must be at least 1 (the trusted peer's own entry); "
            "to ignore X-Forwarded-For, do not list the peer in trusted_hosts");
      }
      config->trusted_hops = proto.forwarded_for_trusted_hops();
    }
    config->use_forwarded = proto.use_forwarded();
    return http::FilterFactoryCb::inPlace<ProxyHeadersFilter>(
        [config](void* at) { return new (at) ProxyHeadersFilter(*config); });
  }
};

POUNCE_REGISTER_FILTER(Factory);

} // namespace

} // namespace pounce::filters::proxy_headers
