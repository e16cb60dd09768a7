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

// The `websocket` block: validated, with the defaults of docs/filters/asgi.md.
absl::StatusOr<WebSocketConfig> webSocketConfig(const ProtoConfig& proto) {
  const auto& p = proto.websocket();
  WebSocketConfig c;
  http::websocket::SessionConfig& s = c.session;
  c.enabled = !p.has_enabled() || p.enabled();
  s.max_message_size = p.has_max_message_size() ? p.max_message_size() : 16 * 1024 * 1024;
  if (s.max_message_size == 0) {
    return absl::InvalidArgumentError("websocket.max_message_size: must be at least 1");
  }
  auto duration = [](const google::protobuf::Duration& d, const char* field,
                     std::chrono::milliseconds& out) -> absl::Status {
    if (d.seconds() < 0 || d.nanos() < 0) {
      return absl::InvalidArgumentError(cat("websocket.", field, ": must not be negative"));
    }
    out = toMs(d);
    return absl::OkStatus();
  };
  s.ping_interval = std::chrono::seconds(20);
  s.ping_timeout = std::chrono::seconds(20);
  s.close_timeout = std::chrono::seconds(5);
  if (p.has_ping_interval()) {
    if (auto st = duration(p.ping_interval(), "ping_interval", s.ping_interval); !st.ok()) {
      return st;
    }
  }
  if (p.has_ping_timeout()) {
    if (auto st = duration(p.ping_timeout(), "ping_timeout", s.ping_timeout); !st.ok()) {
      return st;
    }
    if (s.ping_timeout.count() == 0) {
      return absl::InvalidArgumentError(
          "websocket.ping_timeout: must be positive (turn pings off with ping_interval: 0s)");
    }
  }
  if (p.has_close_timeout()) {
    if (auto st = duration(p.close_timeout(), "close_timeout", s.close_timeout); !st.ok()) {
      return st;
    }
    if (s.close_timeout.count() == 0) {
      return absl::InvalidArgumentError("websocket.close_timeout: must be positive");
    }
  }
  s.fragment_size = p.fragment_size();
  s.auto_pong = true;

  const auto& d = p.per_message_deflate();
  http::websocket::DeflateConfig& deflate = s.deflate;
  deflate.enabled = !d.has_enabled() || d.enabled();
  auto ranged = [](bool has, uint32_t value, int fallback, uint32_t lo, uint32_t hi,
                   const char* field, int& out) -> absl::Status {
    if (!has) {
      out = fallback;
      return absl::OkStatus();
    }
    if (value < lo || value > hi) {
      return absl::InvalidArgumentError(cat("websocket.per_message_deflate.", field, ": must be ",
                                            lo, "..", hi, " (got ", value, ")"));
    }
    out = static_cast<int>(value);
    return absl::OkStatus();
  };
  for (auto st : {ranged(d.has_server_max_window_bits(), d.server_max_window_bits(), 12, 9, 15,
                         "server_max_window_bits", deflate.server_max_window_bits),
                  ranged(d.has_client_max_window_bits(), d.client_max_window_bits(), 12, 8, 15,
                         "client_max_window_bits", deflate.client_max_window_bits),
                  ranged(d.has_compression_level(), d.compression_level(), 1, 0, 9,
                         "compression_level", deflate.compression_level),
                  ranged(d.has_memory_level(), d.memory_level(), 5, 1, 9, "memory_level",
                         deflate.memory_level)}) {
    if (!st.ok()) {
      return st;
    }
  }
  deflate.server_no_context_takeover = d.server_no_context_takeover();
  deflate.client_no_context_takeover = d.client_no_context_takeover();
  deflate.min_compress_size = d.min_compress_size();
  return c;
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
    auto websocket = webSocketConfig(proto);
    if (!websocket.ok()) {
      return websocket.status();
    }
    AsgiApp::Options options;
    AppSettings& s = options.settings;
    s.app_spec = proto.app();
    s.middleware.assign(proto.middleware().begin(), proto.middleware().end());
    s.root_path = proto.root_path();
    s.root_path_in_path = !proto.has_root_path_in_path() || proto.root_path_in_path();
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

    const std::string key =
        cat(proto.SerializeAsString(), "|", s.worker_id, "|", options.validate_only, "|",
            options.paths.empty() ? "" : options.paths[0]);
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
    auto ws = std::make_shared<const WebSocketConfig>(std::move(*websocket));
    ServerContext* server = &context.server();
    return http::FilterFactoryCb::inPlace<AsgiFilter>(
        [app, ws, server](void* at) { return new (at) AsgiFilter(app, *ws, server); });
  }
};

POUNCE_REGISTER_FILTER(Factory);

} // namespace

} // namespace pounce::asgi
