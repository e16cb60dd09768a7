#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "pounce/config/v1/listener.pb.h"
#include "source/network/tls/context.h"
#include "source/network/tls/socket.h"

namespace pounce::network::tls {

// Turns a configured path into the one to open (relative to the config file's directory).
using PathResolver = std::function<std::string(std::string_view)>;

// The listener's `tls` block as a TlsConfig. `http2_enabled` says whether the listener can
// serve HTTP/2 (ALPN "h2" is only selected then). Errors: one "field: problem" line each,
// the field relative to the `tls` block.
absl::StatusOr<TlsConfig> tlsConfigFromProto(const pounce::config::v1::Tls& proto,
                                             const PathResolver& resolve, bool http2_enabled);

// tlsConfigFromProto, then every file loaded into a context, then the listener's factory.
// `field_prefix` ("listeners[0].tls") starts the errors of later reloads.
absl::StatusOr<std::shared_ptr<TlsSocketFactory>>
createTlsSocketFactory(const pounce::config::v1::Tls& proto, const PathResolver& resolve,
                       bool http2_enabled, const std::string& listener,
                       const std::string& field_prefix);

} // namespace pounce::network::tls
