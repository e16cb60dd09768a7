#include <cstdio>
#include <iostream>

#include "source/common/config/yaml_proto.h"
#include "source/common/logger.h"
#include "source/common/version.h"
#include "source/server/cli.h"
#include "source/server/config_builder.h"
#include "source/server/instance.h"

namespace {

using pounce::server::Bootstrap;
namespace v1 = pounce::config::v1;

void configureLogging(const Bootstrap& bootstrap) {
  using pounce::log::Level;
  const auto& logging = bootstrap.logging();
  Level level = Level::Info;
  switch (logging.level()) {
  case v1::Logging::TRACE: level = Level::Trace; break;
  case v1::Logging::DEBUG: level = Level::Debug; break;
  case v1::Logging::INFO: level = Level::Info; break;
  case v1::Logging::WARNING: level = Level::Warning; break;
  case v1::Logging::ERROR: level = Level::Error; break;
  case v1::Logging::CRITICAL: level = Level::Critical; break;
  default: break;
  }
  pounce::log::setLevel(level);
  pounce::log::setFormat(logging.format() == v1::Logging::JSON ? pounce::log::Format::Json
                                                               : pounce::log::Format::Text);
}

int fail(const std::string& message, int code = 1) {
  std::fprintf(stderr, "pounce: %s\n", message.c_str());
  return code;
}

} // namespace

int main(int argc, char** argv) {
  auto options = pounce::server::parseOptions(argc, argv);
  if (!options.ok()) {
    return fail(std::string(options.status().message()), 2);
  }
  if (options->help) {
    std::fputs(pounce::server::usage().c_str(), stdout);
    return 0;
  }
  if (options->version) {
    std::printf("pounce %s\n", pounce::kVersion);
    return 0;
  }

  absl::StatusOr<Bootstrap> bootstrap;
  auto marks = std::make_shared<pounce::config::ConfigErrors>(
      options->config_path.empty() ? "command line" : options->config_path);
  if (!options->config_path.empty()) {
    bootstrap = pounce::server::loadBootstrapFile(options->config_path, marks.get());
    if (bootstrap.ok()) {
      auto status = pounce::server::applyOverrides(*options, *bootstrap);
      if (!status.ok()) {
        return fail(std::string(status.message()));
      }
      // Flags may have changed what the file said: check again.
      pounce::config::ConfigErrors errors(options->config_path);
      pounce::server::validateBootstrap(*bootstrap, errors);
      if (!errors.empty()) {
        return fail(errors.text());
      }
    }
  } else {
    bootstrap = pounce::server::quickModeBootstrap(*options);
    if (bootstrap.ok()) {
      pounce::config::ConfigErrors errors("command line");
      pounce::server::validateBootstrap(*bootstrap, errors);
      if (!errors.empty()) {
        return fail(errors.text());
      }
    }
  }
  if (!bootstrap.ok()) {
    const bool usage = bootstrap.status().code() == absl::StatusCode::kInvalidArgument &&
                       options->config_path.empty();
    return fail(std::string(bootstrap.status().message()), usage ? 2 : 1);
  }
  if (options->print_config) {
    std::fputs(pounce::config::messageToYaml(*bootstrap).c_str(), stdout);
    return 0;
  }
  configureLogging(*bootstrap);

  const bool validate = options->mode == "validate";
  pounce::server::Instance instance(*bootstrap, options->config_path, marks);
  auto status = instance.build(validate);
  if (!status.ok()) {
    return fail(std::string(status.message()));
  }
  if (validate) {
    std::printf("%s: configuration is valid\n",
                options->config_path.empty() ? "command line" : options->config_path.c_str());
    return 0;
  }
  status = instance.bind();
  if (!status.ok()) {
    return fail(std::string(status.message()));
  }
  return instance.run();
}
