#include "source/server/config_builder.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "source/common/strings.h"
#include "source/network/tls/config.h"
#include <google/protobuf/empty.pb.h>

namespace pounce::server {

namespace v1 = pounce::config::v1;

namespace {

std::chrono::milliseconds toMs(const google::protobuf::Duration& d) {
  return std::chrono::milliseconds(d.seconds() * 1000 + d.nanos() / 1000000);
}

class FactoryContextImpl : public http::FactoryContext {
public:
  FactoryContextImpl(ServerContext& server, const ConfigBuilder& builder, std::string listener,
                     bool validate_only, size_t index, size_t length)
      : server_(server), builder_(builder), listener_(std::move(listener)),
        validate_only_(validate_only), index_(index), length_(length) {}
  ServerContext& server() override { return server_; }
  const std::string& listenerName() const override { return listener_; }
  std::string resolvePath(std::string_view path) const override {
    return builder_.resolvePath(path);
  }
  bool validateOnly() const override { return validate_only_; }
  size_t filterIndex() const override { return index_; }
  size_t chainLength() const override { return length_; }

private:
  ServerContext& server_;
  const ConfigBuilder& builder_;
  std::string listener_;
  bool validate_only_;
  size_t index_;
  size_t length_;
};

std::string knownFilters() {
  std::string out;
  for (const auto* f : http::FilterRegistry::get().all()) {
    if (!out.empty()) {
      out += ", ";
    }
    out += f->name();
  }
  return out;
}

} // namespace

absl::StatusOr<Bootstrap> loadBootstrapText(std::string_view text, const std::string& source,
                                            config::ConfigErrors* marks) {
  auto node = config::parseYaml(text, source);
  if (!node.ok()) {
    return node.status();
  }
  Bootstrap bootstrap;
  config::ConfigErrors local(source);
  config::ConfigErrors& errors = marks != nullptr ? *marks : local;
  config::yamlToMessage(*node, bootstrap, "", errors);
  if (errors.empty()) {
    validateBootstrap(bootstrap, errors);
  }
  if (!errors.empty()) {
    return errors.status();
  }
  return bootstrap;
}

absl::StatusOr<Bootstrap> loadBootstrapFile(const std::string& path, config::ConfigErrors* marks,
                                            const std::function<absl::Status(Bootstrap&)>& adjust) {
  auto node = config::parseYamlFile(path);
  if (!node.ok()) {
    return node.status();
  }
  Bootstrap bootstrap;
  config::ConfigErrors local(path);
  config::ConfigErrors& errors = marks != nullptr ? *marks : local;
  config::yamlToMessage(*node, bootstrap, "", errors);
  if (errors.empty() && adjust) {
    if (auto status = adjust(bootstrap); !status.ok()) {
      return status;
    }
  }
  if (errors.empty()) {
    validateBootstrap(bootstrap, errors);
  }
  if (!errors.empty()) {
    return errors.status();
  }
  return bootstrap;
}

namespace {

void validateAddress(const v1::Address& address, const std::string& path,
                     config::ConfigErrors& errors) {
  if (address.has_socket_address()) {
    const auto& sa = address.socket_address();
    if (sa.port_value() > 65535) {
      errors.add(path + ".socket_address.port_value",
                 cat("port ", sa.port_value(), " is out of range (0-65535)"));
    }
    if (!network::Address::fromIp(sa.address().empty() ? "0.0.0.0" : sa.address(), 0).ok()) {
      errors.add(path + ".socket_address.address",
                 cat("'", sa.address(), "' is not an IP address (or \"localhost\")"));
    }
  } else if (address.has_pipe()) {
    const auto& pipe = address.pipe();
    if (pipe.path().empty()) {
      errors.add(path + ".pipe.path", "must not be empty");
    } else if (pipe.path().size() >= sizeof(sockaddr_un::sun_path)) {
      errors.add(path + ".pipe.path", "is too long for a Unix socket path");
    }
    if (!pipe.mode().empty()) {
      uint64_t mode = 0;
      bool ok = pipe.mode().size() <= 4;
      for (char c : pipe.mode()) {
        ok = ok && c >= '0' && c <= '7';
        mode = mode * 8 + static_cast<uint64_t>(c - '0');
      }
      if (!ok || mode > 0777) {
        errors.add(path + ".pipe.mode",
                   cat("'", pipe.mode(), "' is not an octal file mode like \"0660\""));
      }
    }
  } else {
    errors.add(path, "an address needs socket_address or pipe");
  }
}

void validateDuration(const google::protobuf::Duration& d, const std::string& path, bool allow_zero,
                      config::ConfigErrors& errors) {
  if (d.seconds() < 0 || d.nanos() < 0) {
    errors.add(path, "must not be negative");
  } else if (!allow_zero && d.seconds() == 0 && d.nanos() < 1000000) {
    errors.add(path, "must be at least 1ms");
  }
}

// --- HTTP/2 options (listener.http2) ---------------------------------------------------

void validateHttp2(const v1::Http2Options& h2, const std::string& path,
                   config::ConfigErrors& errors) {
  auto range = [&](bool has, uint64_t value, const char* field, uint64_t lo, uint64_t hi) {
    if (has && (value < lo || value > hi)) {
      errors.add(cat(path, ".", field), cat("must be between ", lo, " and ", hi));
    }
  };
  range(h2.has_max_concurrent_streams(), h2.max_concurrent_streams(), "max_concurrent_streams", 1,
        2147483647);
  range(h2.has_initial_stream_window_size(), h2.initial_stream_window_size(),
        "initial_stream_window_size", 65535, 2147483647);
  range(h2.has_initial_connection_window_size(), h2.initial_connection_window_size(),
        "initial_connection_window_size", 65535, 2147483647);
  range(h2.has_max_frame_size(), h2.max_frame_size(), "max_frame_size", 16384, 16777215);
  range(h2.has_max_header_list_size(), h2.max_header_list_size(), "max_header_list_size", 256,
        16u << 20);
  range(h2.has_max_reset_streams(), h2.max_reset_streams(), "max_reset_streams", 1, 1000000000);
  range(h2.has_max_continuation_frames(), h2.max_continuation_frames(), "max_continuation_frames",
        0, 1000000);
  range(h2.has_max_outbound_control_frames(), h2.max_outbound_control_frames(),
        "max_outbound_control_frames", 1, 1000000000);
  range(h2.has_max_outbound_frames(), h2.max_outbound_frames(), "max_outbound_frames", 1,
        1000000000);
  range(h2.has_max_consecutive_empty_frames(), h2.max_consecutive_empty_frames(),
        "max_consecutive_empty_frames", 0, 1000000000);
  if (h2.has_flood_window()) {
    validateDuration(h2.flood_window(), path + ".flood_window", false, errors);
  }
}

void applyHttp2Options(const v1::Http2Options& h2, http::http2::Http2Settings& s) {
  if (h2.has_enabled()) {
    s.enabled = h2.enabled();
  }
  if (h2.has_allow_h2c()) {
    s.allow_h2c = h2.allow_h2c();
  }
  if (h2.has_max_concurrent_streams()) {
    s.max_concurrent_streams = h2.max_concurrent_streams();
  }
  if (h2.has_initial_stream_window_size()) {
    s.initial_stream_window_size = h2.initial_stream_window_size();
  }
  if (h2.has_initial_connection_window_size()) {
    s.initial_connection_window_size = h2.initial_connection_window_size();
  }
  if (h2.has_max_frame_size()) {
    s.max_frame_size = h2.max_frame_size();
  }
  if (h2.has_max_header_list_size()) {
    s.max_header_list_size = h2.max_header_list_size();
  }
  if (h2.has_max_reset_streams()) {
    s.max_reset_streams = h2.max_reset_streams();
  }
  if (h2.has_flood_window()) {
    s.flood_window = toMs(h2.flood_window());
  }
  if (h2.has_max_continuation_frames()) {
    s.max_continuation_frames = h2.max_continuation_frames();
  }
  if (h2.has_max_outbound_control_frames()) {
    s.max_outbound_control_frames = h2.max_outbound_control_frames();
  }
  if (h2.has_max_outbound_frames()) {
    s.max_outbound_frames = h2.max_outbound_frames();
  }
  if (h2.has_max_consecutive_empty_frames()) {
    s.max_consecutive_empty_frames = h2.max_consecutive_empty_frames();
  }
}

} // namespace

void validateBootstrap(const Bootstrap& bootstrap, config::ConfigErrors& errors) {
  if (bootstrap.listeners_size() == 0) {
    errors.add("listeners", "at least one listener is required");
  }
  std::set<std::string> names;
  std::set<std::string> addresses;
  for (int i = 0; i < bootstrap.listeners_size(); ++i) {
    const auto& l = bootstrap.listeners(i);
    const std::string path = cat("listeners[", i, "]");
    const std::string name = l.name().empty() ? cat("listener_", i) : l.name();
    if (!names.insert(name).second) {
      errors.add(path + ".name", cat("listener name '", name, "' is used twice"));
    }
    if (!name.empty() && name[0] == '_') {
      // The admin API's own listener is "_admin" in logs and metrics.
      errors.add(path + ".name", cat("listener name '", name,
                                     "' starts with '_', which is reserved for the server's "
                                     "own listeners"));
    }
    if (!l.has_address()) {
      errors.add(path + ".address", "is required");
    } else {
      validateAddress(l.address(), path + ".address", errors);
      const std::string key = l.address().has_pipe()
                                  ? "unix:" + l.address().pipe().path()
                                  : cat(l.address().socket_address().address(), ":",
                                        l.address().socket_address().port_value());
      if (!(l.address().has_socket_address() && l.address().socket_address().port_value() == 0) &&
          !addresses.insert(key).second) {
        errors.add(path + ".address", cat("address ", key, " is used by another listener"));
      }
    }
    if (l.has_backlog() && (l.backlog() == 0 || l.backlog() > 65535)) {
      errors.add(path + ".backlog", "must be between 1 and 65535");
    }
    if (l.filter_chain_size() == 0) {
      errors.add(path + ".filter_chain", "must have at least one filter (a terminal one last)");
    }
    const auto& h = l.http();
    if (h.has_header_timeout()) {
      validateDuration(h.header_timeout(), path + ".http.header_timeout", false, errors);
    }
    if (h.has_keep_alive_timeout()) {
      validateDuration(h.keep_alive_timeout(), path + ".http.keep_alive_timeout", false, errors);
    }
    if (h.has_request_timeout()) {
      validateDuration(h.request_timeout(), path + ".http.request_timeout", true, errors);
    }
    if (h.has_shutdown_timeout()) {
      validateDuration(h.shutdown_timeout(), path + ".http.shutdown_timeout", true, errors);
    }
    if (h.has_max_header_bytes() &&
        (h.max_header_bytes() < 256 || h.max_header_bytes() > (16u << 20))) {
      errors.add(path + ".http.max_header_bytes", "must be between 256 and 16777216");
    }
    if (h.has_max_headers() && h.max_headers() == 0) {
      errors.add(path + ".http.max_headers", "must be at least 1");
    }
    if (h.has_max_request_bytes() && h.max_request_bytes() == 0) {
      errors.add(path + ".http.max_request_bytes",
                 "must be at least 1 (0 would refuse every request body with 413)");
    }
    if (h.has_max_uri_bytes() && h.max_uri_bytes() < 16) {
      errors.add(path + ".http.max_uri_bytes", "must be at least 16");
    }
    if (h.has_max_connections() && h.max_connections() == 0) {
      errors.add(path + ".http.max_connections", "must be at least 1");
    }
    if (h.has_buffer_limit_bytes() && h.buffer_limit_bytes() < 1024) {
      errors.add(path + ".http.buffer_limit_bytes", "must be at least 1024");
    }
    if (h.has_server_header() && !http::isValidHeaderValue(h.server_header())) {
      errors.add(path + ".http.server_header", "contains characters not allowed in a header");
    }
    validateHttp2(l.http2(), path + ".http2", errors);
  }
  if (bootstrap.concurrency() > 1024) {
    errors.add("concurrency", "must be at most 1024");
  }
  const auto& workers = bootstrap.workers();
  if (workers.has_count() && workers.count() > 4096) {
    errors.add("workers.count", "must be at most 4096");
  }
  if (workers.has_restart_window()) {
    validateDuration(workers.restart_window(), "workers.restart_window", false, errors);
  }
  if (bootstrap.reload().has_delay()) {
    validateDuration(bootstrap.reload().delay(), "reload.delay", true, errors);
  }
  if (bootstrap.has_admin()) {
    const auto& admin = bootstrap.admin();
    if (admin.has_address()) {
      validateAddress(admin.address(), "admin.address", errors);
      if (admin.address().has_socket_address() && !admin.allow_remote()) {
        const std::string& ip = admin.address().socket_address().address();
        auto address = network::Address::fromIp(ip.empty() ? "127.0.0.1" : ip, 0);
        if (address.ok() && !address->isLoopback()) {
          errors.add("admin.address.socket_address.address",
                     cat("'", ip,
                         "' is not a loopback address: the admin API changes the live "
                         "server, so it listens on 127.0.0.1 or ::1 unless "
                         "admin.allow_remote is true (then set admin.token_file too)"));
        }
      }
    }
    if (admin.has_history_size() && admin.history_size() == 0) {
      errors.add("admin.history_size", "must be at least 1");
    }
    for (int i = 0; i < admin.allowed_hosts_size(); ++i) {
      const std::string& host = admin.allowed_hosts(i);
      if (host.empty() || !http::isValidHeaderValue(host) ||
          host.find_first_of(" /,") != std::string::npos) {
        errors.add(cat("admin.allowed_hosts[", i, "]"), "must be a host name such as admin.local");
      }
    }
  }
}

http::HttpSettings httpSettingsFrom(const std::string& listener_name, const v1::HttpOptions& h) {
  http::HttpSettings s;
  s.listener_name = listener_name;
  if (h.has_header_timeout()) {
    s.header_timeout = toMs(h.header_timeout());
  }
  if (h.has_keep_alive_timeout()) {
    s.keep_alive_timeout = toMs(h.keep_alive_timeout());
  }
  if (h.has_request_timeout()) {
    s.request_timeout = toMs(h.request_timeout());
  }
  if (h.has_shutdown_timeout()) {
    s.shutdown_timeout = toMs(h.shutdown_timeout());
  }
  if (h.has_max_header_bytes()) {
    s.limits.max_header_bytes = h.max_header_bytes();
  }
  if (h.has_max_headers()) {
    s.limits.max_headers = h.max_headers();
  }
  if (h.has_max_request_bytes()) {
    s.limits.max_request_bytes = h.max_request_bytes();
  }
  if (h.has_max_uri_bytes()) {
    s.limits.max_uri_bytes = h.max_uri_bytes();
  }
  if (h.has_buffer_limit_bytes()) {
    s.limits.buffer_limit = h.buffer_limit_bytes();
  }
  if (h.has_server_header()) {
    s.limits.server_header = h.server_header();
  }
  s.limits.max_requests_per_connection = h.max_requests_per_connection();
  return s;
}

std::string ConfigBuilder::resolvePath(std::string_view path) const {
  if (path.empty() || path[0] == '/' || config_dir_.empty()) {
    return std::string(path);
  }
  return cat(config_dir_, "/", path);
}

http::FilterChainSharedPtr
ConfigBuilder::buildFilterChain(const google::protobuf::RepeatedPtrField<v1::Filter>& filters,
                                const std::string& listener_name, const std::string& path,
                                config::ConfigErrors& errors, uint64_t version) {
  std::vector<http::FilterChainEntry> entries;
  const size_t before = errors.errors().size();
  if (filters.empty()) {
    errors.add(path, "must have at least one filter (a terminal one last)");
    return nullptr;
  }
  for (int i = 0; i < filters.size(); ++i) {
    const auto& f = filters[i];
    const std::string fpath = cat(path, "[", i, "]");
    const http::FilterConfigFactory* factory = nullptr;
    std::string type;
    if (f.has_typed_config()) {
      type = f.typed_config().type_url();
      const size_t slash = type.rfind('/');
      const std::string type_name = slash == std::string::npos ? type : type.substr(slash + 1);
      factory = http::FilterRegistry::get().findByConfigType(type_name);
      if (factory == nullptr) {
        errors.add(fpath + ".typed_config",
                   cat("no filter takes a config of type '", type_name, "'"));
        continue;
      }
      const auto* by_name = http::FilterRegistry::get().findByName(f.name());
      if (by_name != nullptr && by_name != factory) {
        errors.add(fpath + ".name", cat("'", f.name(), "' does not match typed_config of type '",
                                        type_name, "' (which configures ", factory->name(), ")"));
        continue;
      }
    } else {
      factory = http::FilterRegistry::get().findByName(f.name());
      if (factory == nullptr) {
        errors.add(
            fpath + ".name",
            f.name().empty()
                ? cat("a filter needs a name or a typed_config (known filters: ", knownFilters(),
                      ")")
                : cat("unknown filter '", f.name(), "' (known filters: ", knownFilters(), ")"));
        continue;
      }
    }
    auto config = factory->createEmptyConfig();
    if (f.has_typed_config() && config != nullptr && !f.typed_config().UnpackTo(config.get())) {
      errors.add(fpath + ".typed_config", "cannot decode the filter config");
      continue;
    }
    if (config == nullptr) {
      // A filter without configuration gets an empty message.
      config = std::make_unique<google::protobuf::Empty>();
    }
    FactoryContextImpl context(server_, *this, listener_name, validate_only_,
                               static_cast<size_t>(i), static_cast<size_t>(filters.size()));
    auto cb = factory->createFilterFactory(*config, context);
    if (!cb.ok()) {
      // "field.path: problem" from the factory becomes a full path into the file; any
      // further lines (a Python traceback, say) follow as they are.
      const std::string message(cb.status().message());
      const size_t newline = message.find('\n');
      const std::string_view first = std::string_view(message).substr(0, newline);
      const std::string rest = newline == std::string::npos ? "" : message.substr(newline);
      const size_t colon = first.find(": ");
      const std::string_view field = colon == std::string_view::npos ? "" : first.substr(0, colon);
      const bool is_path = !field.empty() && std::all_of(field.begin(), field.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '[' ||
               c == ']';
      });
      if (is_path) {
        errors.add(cat(fpath, ".typed_config.", field), cat(first.substr(colon + 2), rest));
      } else {
        errors.add(fpath + ".typed_config", message);
      }
      continue;
    }
    const bool last = i == filters.size() - 1;
    if (factory->isTerminal() && !last) {
      errors.add(fpath, cat("terminal filter ", factory->name(),
                            " must be the last in the chain (filters after it would never run)"));
      continue;
    }
    if (last && !factory->isTerminal()) {
      errors.add(fpath, cat("the last filter must be a terminal filter that answers requests "
                            "(such as pounce.filters.asgi or pounce.filters.direct_response); ",
                            factory->name(), " is not"));
      continue;
    }
    entries.push_back({factory->name(), std::move(*cb), factory->isTerminal()});
  }
  if (errors.errors().size() != before) {
    return nullptr;
  }
  return std::make_shared<http::FilterChain>(std::move(entries), version);
}

std::string listenerName(const v1::Listener& listener, int index) {
  return listener.name().empty() ? cat("listener_", index) : listener.name();
}

std::vector<ListenSpec> listenSpecs(const Bootstrap& bootstrap, const std::string& config_dir) {
  std::vector<ListenSpec> out;
  for (int i = 0; i < bootstrap.listeners_size(); ++i) {
    const auto& l = bootstrap.listeners(i);
    ListenSpec spec;
    spec.name = l.name().empty() ? cat("listener_", i) : l.name();
    if (l.address().has_pipe()) {
      const std::string& path = l.address().pipe().path();
      spec.address = network::Address::fromPipe(
          path.empty() || path[0] == '/' || config_dir.empty() ? path : cat(config_dir, "/", path));
      if (!l.address().pipe().mode().empty()) {
        spec.pipe_mode = static_cast<uint32_t>(std::stoul(l.address().pipe().mode(), nullptr, 8));
      }
    } else {
      const auto& sa = l.address().socket_address();
      auto address = network::Address::fromIp(sa.address().empty() ? "0.0.0.0" : sa.address(),
                                              static_cast<uint16_t>(sa.port_value()));
      if (address.ok()) {
        spec.address = *address;
      }
    }
    if (l.has_backlog()) {
      spec.backlog = l.backlog();
    }
    out.push_back(std::move(spec));
  }
  return out;
}

std::vector<ListenerConfig>
ConfigBuilder::buildListeners(const Bootstrap& bootstrap, config::ConfigErrors& errors,
                              uint64_t version, int only,
                              const std::map<std::string, uint64_t, std::less<>>* chain_versions) {
  std::vector<ListenerConfig> out;
  const auto specs = listenSpecs(bootstrap, config_dir_);
  for (int i = 0; i < bootstrap.listeners_size(); ++i) {
    if (only >= 0 && i != only) {
      continue;
    }
    const auto& l = bootstrap.listeners(i);
    ListenerConfig c;
    c.name = specs[i].name;
    c.address = specs[i].address;
    c.pipe_mode = specs[i].pipe_mode;
    c.backlog = specs[i].backlog;
    if (l.http().has_max_connections()) {
      c.max_connections = l.http().max_connections();
    }
    http::HttpSettings settings = httpSettingsFrom(c.name, l.http());
    applyHttp2Options(l.http2(), settings.http2);
    c.settings = std::make_shared<http::HttpSettings>(std::move(settings));
    uint64_t chain_version = version;
    if (chain_versions != nullptr) {
      if (auto it = chain_versions->find(c.name); it != chain_versions->end()) {
        chain_version = it->second;
      }
    }
    c.chain = buildFilterChain(l.filter_chain(), c.name, cat("listeners[", i, "].filter_chain"),
                               errors, chain_version);
    c.transport = std::make_shared<network::RawTransportSocketFactory>();
    if (l.has_tls()) {
      // Certificates are loaded in validate mode too: a bad file must fail validation.
      const std::string tls_path = cat("listeners[", i, "].tls");
      // ALPN offers "h2" only when the listener serves HTTP/2 (http2.enabled).
      const bool http2_enabled = c.settings->http2.enabled;
      auto factory = network::tls::createTlsSocketFactory(
          l.tls(), [this](std::string_view p) { return resolvePath(p); }, http2_enabled, c.name,
          tls_path);
      if (factory.ok()) {
        c.transport = std::move(*factory);
      } else {
        const std::string message(factory.status().message());
        for (auto line : split(message, '\n')) {
          const size_t colon = line.find(": ");
          if (colon == std::string_view::npos) {
            errors.add(tls_path, line);
          } else {
            errors.add(cat(tls_path, ".", line.substr(0, colon)), line.substr(colon + 2));
          }
        }
      }
    }
    out.push_back(std::move(c));
  }
  return out;
}

} // namespace pounce::server
