#include "source/server/cli.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/reflection.h>

#include <filesystem>

#include "source/common/strings.h"
#include "source/common/time.h"
#include "source/http/filter_config.h"

namespace pounce::server {

namespace v1 = pounce::config::v1;
namespace pb = google::protobuf;

namespace {

constexpr std::string_view kAsgi = "pounce.filters.asgi";
constexpr std::string_view kAccessLog = "pounce.filters.access_log";

absl::Status usageError(std::string_view message) {
  return absl::InvalidArgumentError(cat(message, "\nRun 'pounce --help' for usage."));
}

constexpr double kMaxFlagSeconds = 1e9;

// "5", "2.5" (seconds, as uvicorn takes them) or "5s", "250ms".
bool parseSeconds(const std::string& text, google::protobuf::Duration& out) {
  std::chrono::nanoseconds d;
  if (!parseDuration(text, d)) {
    double seconds;
    // (at most about 31 years: more would overflow the nanoseconds below)
    if (!parseDouble(text, seconds) || seconds < 0 || seconds > kMaxFlagSeconds) {
      return false;
    }
    d = std::chrono::nanoseconds(static_cast<int64_t>(seconds * 1e9));
  }
  out.set_seconds(d.count() / 1000000000);
  out.set_nanos(static_cast<int32_t>(d.count() % 1000000000));
  return true;
}

// A path given on the command line, made absolute against the working directory: "./x/../y"
// and "y" both become "/cwd/y", "." becomes "/cwd".
std::string absolutePath(const std::string& path) {
  std::string out = std::filesystem::absolute(path).lexically_normal().string();
  if (out.size() > 1 && out.back() == '/') {
    out.pop_back();
  }
  return out;
}

// Sets field `field` of the ASGI filter config held in `any` (through reflection, so the CLI
// does not depend on the ASGI filter's proto); a repeated field gets this one value.
absl::Status setAsgiField(pb::Any& any, const std::string& field, const std::string& value) {
  const auto* factory = http::FilterRegistry::get().findByName(kAsgi);
  if (factory == nullptr) {
    return absl::FailedPreconditionError("this pounce was built without the ASGI filter");
  }
  auto config = factory->createEmptyConfig();
  if (any.type_url().empty()) {
    any.PackFrom(*config);
  }
  any.UnpackTo(config.get());
  const auto* f = config->GetDescriptor()->FindFieldByName(field);
  if (f == nullptr) {
    return absl::InternalError(cat("ASGI config has no field ", field));
  }
  if (f->is_repeated()) {
    config->GetReflection()->ClearField(config.get(), f);
    config->GetReflection()->AddString(config.get(), f, value);
  } else {
    config->GetReflection()->SetString(config.get(), f, value);
  }
  any.PackFrom(*config);
  return absl::OkStatus();
}

} // namespace

std::string usage() {
  return R"USAGE(pounce: an HTTP server for Python ASGI apps, with the proxy work built in.

Usage:
  pounce --config-yaml server.yaml [flags]     run from a config file
  pounce APP [flags]                           quick mode: serve APP ("module:attr")
  pounce --config-yaml server.yaml --mode validate

Config:
  -c, --config-yaml PATH       YAML (or JSON) config file; see docs/config.md
  --mode serve|validate        validate: load and build everything, bind nothing,
                               exit 0 if the config is good, 1 with the errors if not
  --print-config               print the effective config (file + flags) as YAML and exit
  -h, --help                   this help
  --version                    print the version

Quick mode (also override the config file when given with --config-yaml):
  APP                          the ASGI app, "module:attr" or "module:factory()"
  --host HOST                  bind address (default 127.0.0.1)
  --port PORT                  bind port (default 8000)
  --uds PATH                   listen on a Unix socket instead
  --workers N                  worker processes (0 = one per CPU)
  --concurrency N              I/O threads per process (0 = one per CPU)
  --log-level LEVEL            trace, debug, info, warning, error, critical
  --log-format text|json
  --root-path PATH             ASGI root_path (when mounted below a prefix)
  --no-access-log              no access log
  --header-timeout SECONDS     time allowed for a request head (default 10)
  --keep-alive-timeout SECONDS idle time between requests (default 5)
  --request-timeout SECONDS    time allowed until the response starts (default 60)
  --max-requests-per-connection N
  --ssl-certfile PATH          TLS certificate chain (PEM); HTTP/2 offered by ALPN
  --ssl-keyfile PATH           TLS private key (PEM)
  --admin-port PORT            admin API on 127.0.0.1:PORT (0 = off)
  --reload                     restart when files change (development)
  --reload-dir DIR             directory to watch (repeatable)
  --reload-include EXTS        extra extensions to watch, e.g. ".html,.css"
)USAGE";
}

absl::StatusOr<Options> parseOptions(int argc, char** argv) {
  Options o;
  std::vector<std::string> args(argv + 1, argv + argc);
  for (size_t i = 0; i < args.size(); ++i) {
    std::string arg = args[i];
    std::string value;
    bool has_inline_value = false;
    if (startsWith(arg, "--") && arg.find('=') != std::string::npos) {
      value = arg.substr(arg.find('=') + 1);
      arg = arg.substr(0, arg.find('='));
      has_inline_value = true;
    }
    auto next = [&]() -> absl::StatusOr<std::string> {
      if (has_inline_value) {
        return value;
      }
      if (i + 1 >= args.size()) {
        return usageError(cat("option ", arg, " needs a value"));
      }
      return args[++i];
    };
    auto next_uint = [&](uint32_t max) -> absl::StatusOr<uint32_t> {
      auto v = next();
      if (!v.ok()) {
        return v.status();
      }
      uint64_t n;
      if (!parseUint(*v, n) || n > max) {
        return usageError(
            cat("option ", arg, " needs a whole number up to ", max, ", got '", *v, "'"));
      }
      return static_cast<uint32_t>(n);
    };
#define POUNCE_TAKE(target, expr)                                                                  \
  do {                                                                                             \
    auto v_ = (expr);                                                                              \
    if (!v_.ok()) {                                                                                \
      return v_.status();                                                                          \
    }                                                                                              \
    target = *v_;                                                                                  \
  } while (0)
    if (arg == "-c" || arg == "--config-yaml" || arg == "--config") {
      POUNCE_TAKE(o.config_path, next());
    } else if (arg == "--mode") {
      POUNCE_TAKE(o.mode, next());
      if (o.mode != "serve" && o.mode != "validate") {
        return usageError(cat("--mode must be serve or validate, got '", o.mode, "'"));
      }
    } else if (arg == "--print-config") {
      o.print_config = true;
    } else if (arg == "-h" || arg == "--help") {
      o.help = true;
    } else if (arg == "--version" || arg == "-V") {
      o.version = true;
    } else if (arg == "--host") {
      POUNCE_TAKE(o.host, next());
    } else if (arg == "--port") {
      POUNCE_TAKE(o.port, next_uint(65535));
    } else if (arg == "--uds") {
      POUNCE_TAKE(o.uds, next());
    } else if (arg == "--workers") {
      POUNCE_TAKE(o.workers, next_uint(4096));
    } else if (arg == "--concurrency") {
      POUNCE_TAKE(o.concurrency, next_uint(1024));
    } else if (arg == "--log-level") {
      POUNCE_TAKE(o.log_level, next());
    } else if (arg == "--log-format") {
      POUNCE_TAKE(o.log_format, next());
    } else if (arg == "--root-path") {
      POUNCE_TAKE(o.root_path, next());
    } else if (arg == "--no-access-log") {
      o.no_access_log = true;
    } else if (arg == "--header-timeout") {
      POUNCE_TAKE(o.header_timeout, next());
    } else if (arg == "--keep-alive-timeout" || arg == "--timeout-keep-alive") {
      POUNCE_TAKE(o.keep_alive_timeout, next());
    } else if (arg == "--request-timeout") {
      POUNCE_TAKE(o.request_timeout, next());
    } else if (arg == "--max-requests-per-connection") {
      POUNCE_TAKE(o.max_requests_per_connection, next_uint(UINT32_MAX));
    } else if (arg == "--ssl-certfile") {
      POUNCE_TAKE(o.ssl_certfile, next());
    } else if (arg == "--ssl-keyfile") {
      POUNCE_TAKE(o.ssl_keyfile, next());
    } else if (arg == "--admin-port") {
      POUNCE_TAKE(o.admin_port, next_uint(65535));
    } else if (arg == "--reload") {
      o.reload = true;
    } else if (arg == "--reload-dir") {
      std::string dir;
      POUNCE_TAKE(dir, next());
      o.reload_dirs.push_back(dir);
    } else if (arg == "--reload-include") {
      POUNCE_TAKE(o.reload_include, next());
    } else if (startsWith(arg, "-") && arg != "-") {
      return usageError(cat("unknown option '", arg, "'"));
    } else if (!o.app) {
      o.app = arg;
    } else {
      return usageError(cat("unexpected argument '", arg, "' (the app is already '", *o.app, "')"));
    }
#undef POUNCE_TAKE
  }
  if (o.host && o.uds) {
    return usageError("--host and --uds cannot be used together");
  }
  if (o.ssl_certfile.has_value() != o.ssl_keyfile.has_value()) {
    return usageError("--ssl-certfile and --ssl-keyfile must be given together");
  }
  if (o.log_format && *o.log_format != "text" && *o.log_format != "json") {
    return usageError("--log-format must be text or json");
  }
  for (const auto* t : {&o.header_timeout, &o.keep_alive_timeout, &o.request_timeout}) {
    google::protobuf::Duration d;
    if (t->has_value() && !parseSeconds(**t, d)) {
      return usageError(cat("'", **t, "' is not a number of seconds from 0 to 1e9"));
    }
  }
  return o;
}

absl::StatusOr<Bootstrap> quickModeBootstrap(const Options& o) {
  if (!o.app) {
    return usageError(
        "give an app (pounce myapp:app) or a config file (pounce --config-yaml FILE)");
  }
  Bootstrap b;
  auto* l = b.add_listeners();
  l->set_name("main");
  if (o.uds) {
    l->mutable_address()->mutable_pipe()->set_path(*o.uds);
  } else {
    auto* sa = l->mutable_address()->mutable_socket_address();
    sa->set_address(o.host.value_or("127.0.0.1"));
    sa->set_port_value(o.port.value_or(8000));
  }
  if (!o.no_access_log) {
    l->add_filter_chain()->set_name(std::string(kAccessLog));
  }
  auto* asgi = l->add_filter_chain();
  asgi->set_name(std::string(kAsgi));
  auto status = setAsgiField(*asgi->mutable_typed_config(), "app", *o.app);
  if (!status.ok()) {
    return status;
  }
  // The app is imported from where pounce runs. Written out, so that --print-config gives a
  // file that imports the same app wherever it is saved (a file's default is its directory).
  status = setAsgiField(*asgi->mutable_typed_config(), "app_dir", absolutePath("."));
  if (!status.ok()) {
    return status;
  }
  if (o.reload && o.reload_dirs.empty()) {
    b.mutable_reload()->add_dirs(absolutePath("."));
  }
  Options rest = o;
  rest.app.reset();
  rest.no_access_log = false;
  status = applyOverrides(rest, b);
  if (!status.ok()) {
    return status;
  }
  return b;
}

absl::Status applyOverrides(const Options& o, Bootstrap& b) {
  if (b.listeners_size() > 0) {
    auto* first = b.mutable_listeners(0);
    if (o.uds) {
      // Paths on the command line are relative to where pounce runs, not to a config file.
      first->mutable_address()->mutable_pipe()->set_path(absolutePath(*o.uds));
    } else if (o.host || o.port) {
      auto* sa = first->mutable_address()->mutable_socket_address();
      if (o.host) {
        sa->set_address(*o.host);
      } else if (sa->address().empty()) {
        sa->set_address("127.0.0.1");
      }
      if (o.port) {
        sa->set_port_value(*o.port);
      }
    }
    if (o.ssl_certfile && o.ssl_keyfile) {
      // TLS on the first listener with this one certificate (the other tls settings of a
      // config file stay). Paths are made absolute: they are relative to where pounce runs,
      // not to the config file.
      auto* tls = first->mutable_tls();
      tls->clear_certificates();
      auto* cert = tls->add_certificates();
      cert->set_certificate_chain_file(absolutePath(*o.ssl_certfile));
      cert->set_private_key_file(absolutePath(*o.ssl_keyfile));
    }
  }
  for (auto& l : *b.mutable_listeners()) {
    auto* http = l.mutable_http();
    if (o.header_timeout) {
      parseSeconds(*o.header_timeout, *http->mutable_header_timeout());
    }
    if (o.keep_alive_timeout) {
      parseSeconds(*o.keep_alive_timeout, *http->mutable_keep_alive_timeout());
    }
    if (o.request_timeout) {
      parseSeconds(*o.request_timeout, *http->mutable_request_timeout());
    }
    if (o.max_requests_per_connection) {
      http->set_max_requests_per_connection(*o.max_requests_per_connection);
    }
    auto* chain = l.mutable_filter_chain();
    if (o.no_access_log) {
      for (int i = chain->size() - 1; i >= 0; --i) {
        if ((*chain)[i].name() == kAccessLog ||
            (*chain)[i].typed_config().type_url().find("pounce.filters.access_log.") !=
                std::string::npos) {
          chain->DeleteSubrange(i, 1);
        }
      }
    }
    for (auto& f : *chain) {
      const bool is_asgi = f.name() == kAsgi || f.typed_config().type_url().find(
                                                    "pounce.filters.asgi.") != std::string::npos;
      if (!is_asgi) {
        continue;
      }
      if (o.app) {
        auto status = setAsgiField(*f.mutable_typed_config(), "app", *o.app);
        if (!status.ok()) {
          return status;
        }
      }
      if (o.root_path) {
        auto status = setAsgiField(*f.mutable_typed_config(), "root_path", *o.root_path);
        if (!status.ok()) {
          return status;
        }
      }
    }
  }
  if (o.workers) {
    b.mutable_workers()->set_count(*o.workers);
  }
  if (o.concurrency) {
    b.set_concurrency(*o.concurrency);
  }
  if (o.log_level) {
    const std::string level = toLower(*o.log_level);
    const auto* e =
        v1::Logging::Level_descriptor()->FindValueByName(level == "warn" ? "WARNING" : [&] {
          std::string u = level;
          for (auto& c : u) {
            c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
          }
          return u;
        }());
    if (e == nullptr) {
      return usageError(cat("unknown log level '", *o.log_level,
                            "' (trace, debug, info, warning, error, critical)"));
    }
    b.mutable_logging()->set_level(static_cast<v1::Logging::Level>(e->number()));
  }
  if (o.log_format) {
    b.mutable_logging()->set_format(*o.log_format == "json" ? v1::Logging::JSON
                                                            : v1::Logging::TEXT);
  }
  if (o.reload || !o.reload_dirs.empty() || o.reload_include) {
    auto* r = b.mutable_reload();
    r->set_enabled(true);
    for (const auto& d : o.reload_dirs) {
      r->add_dirs(absolutePath(d));
    }
    if (o.reload_include) {
      for (auto e : split(*o.reload_include, ',')) {
        e = trim(e);
        if (!e.empty()) {
          r->add_include(e[0] == '.' ? std::string(e) : cat(".", e));
        }
      }
    }
  }
  if (o.admin_port) {
    if (*o.admin_port == 0) {
      b.clear_admin();
    } else {
      auto* sa = b.mutable_admin()->mutable_address()->mutable_socket_address();
      sa->set_address("127.0.0.1");
      sa->set_port_value(*o.admin_port);
    }
  }
  return absl::OkStatus();
}

} // namespace pounce::server
