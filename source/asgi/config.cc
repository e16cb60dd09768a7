#include <map>
#include <mutex>

#include "pounce/filters/asgi/v1/asgi.pb.h"
#include "source/asgi/app.h"
#include "source/asgi/asgi_filter.h"
#include "source/common/strings.h"
#include "source/http/filter_config.h"

namespace pounce::asgi {

namespace {

using ProtoConfig = pounce::filters::asgi::v1::Asgi;

std::chrono::milliseconds toMs(const google::protobuf::Duration& d) {
  return std::chrono::milliseconds(d.seconds() * 1000 + d.nanos() / 1000000);
}

// Chains that configure the same app share one running instance (one import, one set of
// loops and lifespans), e.g. two listeners, or a chain swap that keeps the app.
std::mutex g_apps_lock;
std::map<std::string, std::weak_ptr<AsgiApp>>& runningApps() {
  static auto* apps = new std::map<std::string, std::weak_ptr<AsgiApp>>();
  return *apps;
}

class Factory : public http::FilterConfigFactory {
public:
  std::string name() const override { return "pounce.filters.asgi"; }
  std::unique_ptr<google::protobuf::Message> createEmptyConfig() const override {
    return std::make_unique<ProtoConfig>();
  }
  bool isTerminal() const override { return true; }

  absl::StatusOr<http::FilterFactoryCb>
  createFilterFactory(const google::protobuf::Message& message,
                      http::FactoryContext& context) const override {
    const auto& proto = dynamic_cast<const ProtoConfig&>(message);
    if (proto.app().empty()) {
      return absl::InvalidArgumentError("app: is required (\"module:attribute\")");
    }
    if (proto.app().find(':') == std::string::npos) {
      return absl::InvalidArgumentError(
          cat("app: '", proto.app(), "' must look like 'module:attribute'"));
    }
    if (!proto.root_path().empty() &&
        (proto.root_path()[0] != '/' || proto.root_path().back() == '/')) {
      return absl::InvalidArgumentError(
          "root_path: must start with '/' and not end with '/' (e.g. \"/api\")");
    }
    if (proto.threads() > 256) {
      return absl::InvalidArgumentError("threads: must be at most 256");
    }
    AsgiApp::Options options;
    AppSettings& s = options.settings;
    s.app_spec = proto.app();
    s.middleware.assign(proto.middleware().begin(), proto.middleware().end());
    s.root_path = proto.root_path();
    s.debug = proto.debug();
    s.lifespan = proto.lifespan() == ProtoConfig::ON    ? AppSettings::Lifespan::On
                 : proto.lifespan() == ProtoConfig::OFF ? AppSettings::Lifespan::Off
                                                        : AppSettings::Lifespan::Auto;
    s.loop = proto.loop() == ProtoConfig::UVLOOP    ? AppSettings::Loop::Uvloop
             : proto.loop() == ProtoConfig::ASYNCIO ? AppSettings::Loop::Asyncio
                                                    : AppSettings::Loop::Auto;
    s.worker_scopes = !proto.has_worker_scopes() || proto.worker_scopes();
    if (proto.has_timeout_graceful_shutdown()) {
      s.shutdown_timeout = toMs(proto.timeout_graceful_shutdown());
    }
    if (proto.has_startup_timeout()) {
      s.startup_timeout = toMs(proto.startup_timeout());
    }
    s.worker_id = context.server().workerId();
    if (proto.app_dir().empty()) {
      options.paths.push_back(context.resolvePath("."));
    }
    for (const auto& dir : proto.app_dir()) {
      options.paths.push_back(context.resolvePath(dir));
    }
    options.threads = proto.threads() == 0 ? context.server().defaultAppThreads() : proto.threads();
    options.validate_only = context.validateOnly();

    const std::string key = cat(proto.SerializeAsString(), "|", s.worker_id, "|",
                                options.validate_only, "|", options.paths.empty() ? "" : options.paths[0]);
    std::shared_ptr<AsgiApp> app;
    {
      std::lock_guard<std::mutex> lock(g_apps_lock);
      app = runningApps()[key].lock();
    }
    if (app == nullptr) {
      auto created = AsgiApp::create(std::move(options));
      if (!created.ok()) {
        return created.status();
      }
      app = *created;
      std::lock_guard<std::mutex> lock(g_apps_lock);
      runningApps()[key] = app;
    }
    return http::FilterFactoryCb([app]() { return std::make_unique<AsgiFilter>(app); });
  }
};

POUNCE_REGISTER_FILTER(Factory);

} // namespace

} // namespace pounce::asgi
