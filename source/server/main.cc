#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <iostream>

#include "source/asgi/build_info.h"
#include "source/common/config/yaml_proto.h"
#include "source/common/logger.h"
#include "source/common/strings.h"
#include "source/common/version.h"
#include "source/server/admin/admin_server.h"
#include "source/server/admin/config_watcher.h"
#include "source/server/admin/local_control.h"
#include "source/server/admin/worker_control.h"
#include "source/server/cli.h"
#include "source/server/config_builder.h"
#include "source/server/cpu.h"
#include "source/server/instance.h"
#include "source/server/supervisor.h"

namespace {

using pounce::server::Bootstrap;
namespace v1 = pounce::config::v1;

void configureLogging(const Bootstrap& bootstrap) {
  using pounce::log::Level;
  const auto& logging = bootstrap.logging();
  Level level = Level::Info;
  switch (logging.level()) {
  case v1::Logging::TRACE:
    level = Level::Trace;
    break;
  case v1::Logging::DEBUG:
    level = Level::Debug;
    break;
  case v1::Logging::INFO:
    level = Level::Info;
    break;
  case v1::Logging::WARNING:
    level = Level::Warning;
    break;
  case v1::Logging::ERROR:
    level = Level::Error;
    break;
  case v1::Logging::CRITICAL:
    level = Level::Critical;
    break;
  default:
    break;
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
  // SIGUSR1 reopens the log files once the server runs; until then it must not end it.
  ::signal(SIGUSR1, SIG_IGN);
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
    // The flags apply on top of the file before it is checked, so a flag can replace what
    // the file got wrong (--admin-port 0 for a bad admin section).
    absl::Status flags = absl::OkStatus();
    bootstrap =
        pounce::server::loadBootstrapFile(options->config_path, marks.get(), [&](Bootstrap& b) {
          flags = pounce::server::applyOverrides(*options, b);
          return flags;
        });
    if (!flags.ok()) {
      // A flag's value is wrong: a usage error (exit 2), as without a config file.
      return fail(std::string(flags.message()),
                  flags.code() == absl::StatusCode::kInvalidArgument ? 2 : 1);
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
  const std::string config_path = options->config_path;
  const std::string parent_dir = config_path.empty()
                                     ? std::string()
                                     : std::filesystem::path(config_path).parent_path().string();
  const std::string config_dir = parent_dir.empty() ? std::string(".") : parent_dir;

  // Worker model: processes on a GIL build (each with its own interpreter), Python
  // threads in one process on a free-threaded build.
  const auto& workers = bootstrap->workers();
  uint32_t count = workers.has_count() ? workers.count() : 1;
  if (count == 0) {
    count = pounce::server::availableCpus();
  }
  auto mode = workers.mode();
  if (mode == v1::Workers::AUTO) {
    mode = pounce::asgi::pythonFreeThreaded() ? v1::Workers::THREAD : v1::Workers::PROCESS;
  }
  const bool reload = bootstrap->reload().enabled();
  const std::string python = pounce::asgi::pythonBuildInfo();

  // Re-reads the config file as at startup: the file, then the flags on top, checked.
  pounce::server::admin::RereadConfig reread;
  if (!config_path.empty()) {
    reread = [options =
                  *options](pounce::config::ConfigErrors& positions) -> absl::StatusOr<Bootstrap> {
      return pounce::server::loadBootstrapFile(
          options.config_path, &positions,
          [&options](Bootstrap& b) { return pounce::server::applyOverrides(options, b); });
    };
  }
  pounce::server::admin::AdminOptions admin_options;
  admin_options.admin = bootstrap->admin();
  admin_options.config_dir = config_path.empty() ? "" : config_dir;
  admin_options.python = python;
  admin_options.free_threaded = pounce::asgi::pythonFreeThreaded();
  auto startAdmin = [&](pounce::event::Dispatcher& dispatcher,
                        pounce::server::admin::ControlPlane& control)
      -> absl::StatusOr<std::unique_ptr<pounce::server::admin::AdminServer>> {
    if (!bootstrap->has_admin()) {
      return std::unique_ptr<pounce::server::admin::AdminServer>();
    }
    return pounce::server::admin::AdminServer::create(dispatcher, control, admin_options);
  };

  auto serveOne = [&](const Bootstrap& config,
                      std::shared_ptr<pounce::config::ConfigErrors> positions, uint32_t worker_id,
                      std::vector<std::vector<int>> sockets, int ready_fd, uint32_t concurrency,
                      uint64_t config_version = 1, pounce::server::admin::ChainVersions chains = {})
      -> std::unique_ptr<pounce::server::Instance> {
    auto instance = std::make_unique<pounce::server::Instance>(config, config_path, positions);
    instance->setWorkerId(worker_id);
    instance->setConfigVersion(config_version);
    instance->setChainVersions(std::move(chains));
    if (concurrency > 0) {
      instance->setConcurrency(concurrency);
    }
    if (mode == v1::Workers::THREAD) {
      instance->setDefaultAppThreads(count);
    }
    if (!sockets.empty()) {
      instance->setInheritedSockets(std::move(sockets));
    }
    instance->setReadyFd(ready_fd);
    auto status = instance->build(validate);
    if (!status.ok()) {
      fail(std::string(status.message()));
      return nullptr;
    }
    return instance;
  };
  auto bind = [](pounce::server::Instance& instance) {
    auto status = instance.bind();
    if (!status.ok()) {
      fail(std::string(status.message()));
      return false;
    }
    return true;
  };

  if (validate) {
    if (serveOne(*bootstrap, marks, 0, {}, -1, 0) == nullptr) {
      return 1;
    }
    std::printf("%s: configuration is valid\n",
                config_path.empty() ? "command line" : config_path.c_str());
    return 0;
  }
  if (mode == v1::Workers::PROCESS && (count > 1 || reload)) {
    pounce::server::Supervisor::Options so;
    so.workers = count;
    so.concurrency = bootstrap->concurrency() == 0 ? 1 : bootstrap->concurrency();
    if (workers.has_max_restarts()) {
      so.max_restarts = workers.max_restarts();
    }
    if (workers.has_restart_window()) {
      so.restart_window = std::chrono::milliseconds(workers.restart_window().seconds() * 1000 +
                                                    workers.restart_window().nanos() / 1000000);
    }
    so.config_path = config_path;
    so.config_dir = config_path.empty() ? "" : config_dir;
    so.reread = reread;
    so.watch_config = bootstrap->watch_config();
    so.reload = reload;
    for (const auto& d : bootstrap->reload().dirs()) {
      so.reload_dirs.push_back(d);
    }
    if (so.reload_dirs.empty()) {
      so.reload_dirs.push_back(config_path.empty() ? "." : config_dir);
    }
    so.reload_endings = {".py"};
    for (const auto& e : bootstrap->reload().include()) {
      so.reload_endings.push_back(e);
    }
    if (bootstrap->reload().has_delay()) {
      so.reload_delay = std::chrono::milliseconds(bootstrap->reload().delay().seconds() * 1000 +
                                                  bootstrap->reload().delay().nanos() / 1000000);
    }
    POUNCE_LOG(Main, Info, "%s; %d worker process%s, %d I/O thread%s each%s", python, count,
               count == 1 ? "" : "es", so.concurrency, so.concurrency == 1 ? "" : "s",
               reload ? ", reloading on changes" : "");
    const bool per_worker_concurrency = bootstrap->concurrency() == 0;
    pounce::server::Supervisor supervisor(
        std::move(so), *bootstrap, marks,
        [&](pounce::server::Supervisor::WorkerStart start) -> int {
          pounce::asgi::PythonExitHandlers exit_handlers; // after the instance is gone
          auto instance =
              serveOne(*start.bootstrap, start.marks, start.id, std::move(start.sockets),
                       start.ready_fd, per_worker_concurrency ? 1 : 0, start.config_version,
                       std::move(start.chain_versions));
          if (instance == nullptr || !bind(*instance)) {
            return 1;
          }
          instance->setHealthCheckFailed(start.health_check_failed);
          if (start.draining) {
            instance->drain(/*graceful=*/true);
          }
          pounce::server::admin::WorkerControl control(*instance, start.control_fd);
          return instance->run();
        });
    auto admin = startAdmin(supervisor.dispatcher(), supervisor);
    if (!admin.ok()) {
      return fail(std::string(admin.status().message()));
    }
    return supervisor.run();
  }
  if (mode == v1::Workers::THREAD && count > 1 && !pounce::asgi::pythonFreeThreaded()) {
    POUNCE_LOG(Main, Warning,
               "workers.mode thread with %d threads on a GIL build: the threads share one GIL; "
               "use process mode to use more cores",
               count);
  }
  POUNCE_LOG(Main, Info, "%s; one process, %s", python,
             mode == v1::Workers::THREAD
                 ? pounce::cat(count, " Python thread", count == 1 ? "" : "s")
                 : std::string("1 worker"));
  pounce::asgi::PythonExitHandlers exit_handlers; // runs after everything below is gone
  auto instance = serveOne(*bootstrap, marks, 0, {}, -1, 0);
  if (instance == nullptr) {
    return 1;
  }
  pounce::server::admin::LocalControl control(*instance, reread);
  instance->setReloadHandler([&control] {
    control.reload(control.config().path().empty() ? "SIGHUP (certificates only)" : "SIGHUP",
                   [](pounce::server::admin::ApplyResult) {});
  });
  // The admin API listens before the data listeners do: whoever sees the server accept
  // connections can reach its admin API too (and a taken admin port binds nothing else).
  auto admin = startAdmin(instance->mainDispatcher(), control);
  if (!admin.ok()) {
    return fail(std::string(admin.status().message()));
  }
  if (!bind(*instance)) {
    return 1;
  }
  std::unique_ptr<pounce::server::admin::ConfigWatcher> watcher;
  if (bootstrap->watch_config() && !config_path.empty()) {
    watcher = std::make_unique<pounce::server::admin::ConfigWatcher>(
        instance->mainDispatcher(), config_path,
        [&control] { control.reload("watch_config", [](pounce::server::admin::ApplyResult) {}); });
  }
  const int code = instance->run();
  watcher.reset();
  admin->reset();
  return code;
}
