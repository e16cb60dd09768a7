#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "source/server/config_builder.h"

namespace pounce::server {

// Command line options. Quick-mode flags build the same Bootstrap proto as a config file,
// and override the file when both are given.
struct Options {
  std::string config_path;   // --config-yaml / -c
  std::string mode{"serve"}; // --mode serve|validate
  bool print_config{false};
  bool help{false};
  bool version{false};

  // Quick mode.
  std::optional<std::string> app; // positional APP ("module:attr")
  std::optional<std::string> host;
  std::optional<uint32_t> port;
  std::optional<std::string> uds;
  std::optional<uint32_t> workers;
  std::optional<uint32_t> concurrency;
  std::optional<std::string> log_level;
  std::optional<std::string> log_format;
  std::optional<std::string> root_path;
  bool no_access_log{false};
  std::optional<std::string> header_timeout;
  std::optional<std::string> keep_alive_timeout;
  std::optional<std::string> request_timeout;
  std::optional<uint32_t> max_requests_per_connection;
  std::optional<std::string> ssl_certfile;
  std::optional<std::string> ssl_keyfile;
  std::optional<uint32_t> admin_port;
  bool reload{false};
  std::vector<std::string> reload_dirs;
  std::optional<std::string> reload_include;
};

// Parses argv. Usage errors come back as InvalidArgument with a message for the user.
absl::StatusOr<Options> parseOptions(int argc, char** argv);
std::string usage();

// The config of quick mode (no --config-yaml): one listener on host:port (or uds) serving
// APP through the ASGI filter, with an access log.
absl::StatusOr<Bootstrap> quickModeBootstrap(const Options& options);

// Applies quick-mode flags on top of a loaded config.
absl::Status applyOverrides(const Options& options, Bootstrap& bootstrap);

} // namespace pounce::server
