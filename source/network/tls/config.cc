#include "source/network/tls/config.h"

#include <vector>

#include "source/common/strings.h"

namespace pounce::network::tls {

namespace v1 = pounce::config::v1;

absl::StatusOr<TlsConfig> tlsConfigFromProto(const v1::Tls& proto, const PathResolver& resolve,
                                             bool http2_enabled) {
  std::vector<std::string> errors;
  TlsConfig config;
  for (int i = 0; i < proto.certificates_size(); ++i) {
    const auto& c = proto.certificates(i);
    const std::string field = cat("certificates[", i, "]");
    CertificateConfig cert;
    if (c.certificate_chain_file().empty()) {
      errors.push_back(cat(field, ".certificate_chain_file: is required"));
    } else {
      cert.certificate_chain_file = resolve(c.certificate_chain_file());
    }
    if (c.private_key_file().empty()) {
      errors.push_back(cat(field, ".private_key_file: is required"));
    } else {
      cert.private_key_file = resolve(c.private_key_file());
    }
    cert.server_names.assign(c.server_names().begin(), c.server_names().end());
    config.certificates.push_back(std::move(cert));
  }
  switch (proto.min_version()) {
  case v1::Tls::DEFAULT:
  case v1::Tls::TLSV1_2:
    config.min_version = kTls12;
    break;
  case v1::Tls::TLSV1_3:
    config.min_version = kTls13;
    break;
  default:
    errors.push_back("min_version: must be TLSv1_2 or TLSv1_3");
    break;
  }
  config.cipher_suites.assign(proto.cipher_suites().begin(), proto.cipher_suites().end());
  if (proto.alpn_size() > 0) {
    config.alpn.assign(proto.alpn().begin(), proto.alpn().end());
  }
  config.http2_enabled = http2_enabled;
  if (proto.has_client_validation()) {
    const auto& v = proto.client_validation();
    if (!v.ca_file().empty()) {
      config.ca_file = resolve(v.ca_file());
    }
    config.require_client_certificate = v.require_client_certificate();
  }
  if (proto.has_handshake_timeout()) {
    const auto& d = proto.handshake_timeout();
    if (d.seconds() < 0 || d.nanos() < 0) {
      errors.push_back("handshake_timeout: must not be negative");
    } else if (d.seconds() == 0 && d.nanos() < 1000000) {
      errors.push_back("handshake_timeout: must be at least 1ms");
    } else {
      config.handshake_timeout =
          std::chrono::milliseconds(d.seconds() * 1000 + d.nanos() / 1000000);
    }
  }
  if (!errors.empty()) {
    std::string message;
    for (const auto& e : errors) {
      message += message.empty() ? e : "\n" + e;
    }
    return absl::InvalidArgumentError(message);
  }
  return config;
}

absl::StatusOr<std::shared_ptr<TlsSocketFactory>>
createTlsSocketFactory(const v1::Tls& proto, const PathResolver& resolve, bool http2_enabled,
                       const std::string& listener, const std::string& field_prefix) {
  auto config = tlsConfigFromProto(proto, resolve, http2_enabled);
  if (!config.ok()) {
    return config.status();
  }
  auto context = TlsContext::create(*config);
  if (!context.ok()) {
    return context.status();
  }
  return std::make_shared<TlsSocketFactory>(std::move(*context), listener, field_prefix);
}

} // namespace pounce::network::tls
