#include "source/server/admin/admin_api.h"

#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>

#include "source/common/json.h"
#include "source/common/logger.h"
#include "source/common/strings.h"
#include "source/common/version.h"
#include "source/server/admin/config_state.h"
#include "source/server/admin/stats_snapshot.h"
#include "source/server/config_builder.h"

namespace pounce::server::admin {

extern const char kDashboardHtml[];

namespace v1 = pounce::config::v1;

namespace {

constexpr std::string_view kJson = "application/json";
constexpr std::string_view kYaml = "application/yaml; charset=utf-8";
constexpr std::string_view kHtml = "text/html; charset=utf-8";

AdminResponse text(int status, std::string body) {
  AdminResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

AdminResponse jsonResponse(int status, std::string body) {
  AdminResponse r;
  r.status = status;
  r.content_type = std::string(kJson);
  r.body = std::move(body);
  r.body += '\n';
  return r;
}

std::string quote(std::string_view s) { return json::quote(s); }

std::string stringList(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    out += i > 0 ? "," : "";
    out += quote(items[i]);
  }
  return out + "]";
}

std::string isoTime(SystemTime t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm;
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string formatMs(std::chrono::microseconds d) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3f", static_cast<double>(d.count()) / 1000.0);
  return buf;
}

std::string state(const ControlPlane& control) {
  if (control.draining()) {
    return "DRAINING";
  }
  if (control.healthCheckFailed()) {
    return "HEALTH_CHECK_FAILED";
  }
  return "LIVE";
}

// The answer to a configuration change.
AdminResponse applyResponse(const ApplyResult& result) {
  std::string out = "{";
  const char* status = result.status == 200   ? (result.changes.empty() ? "unchanged" : "applied")
                       : result.status == 400 ? "invalid"
                                              : "failed";
  out += cat("\"status\":\"", status, "\",\"message\":", quote(result.message),
             ",\"version\":", result.version);
  if (result.status == 200) {
    out +=
        cat(",\"changes\":", stringList(result.changes), ",\"acknowledged\":", result.acknowledged,
            ",\"acknowledged_by\":", quote(result.acknowledged_by),
            ",\"took_ms\":", formatMs(result.took),
            ",\"restart_needed\":", stringList(result.restart_needed));
  }
  if (!result.errors.empty()) {
    out += ",\"errors\":[";
    for (size_t i = 0; i < result.errors.size(); ++i) {
      const auto& e = result.errors[i];
      out += cat(i > 0 ? "," : "", "{\"path\":", quote(e.path), ",\"line\":", e.line,
                 ",\"column\":", e.column, ",\"message\":", quote(e.problem), "}");
    }
    out += "]";
  }
  if (!result.error_text.empty()) {
    out += cat(",\"text\":", quote(result.error_text));
  }
  out += "}";
  return jsonResponse(result.status, std::move(out));
}

std::string percentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() &&
               std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
               std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

bool isIpLiteral(std::string_view host) {
  if (!host.empty() && host.front() == '[' && host.back() == ']') {
    return network::Address::fromIp(host.substr(1, host.size() - 2), 0).ok();
  }
  if (host == "localhost") {
    return false; // fromIp accepts it; callers handle it by name
  }
  return network::Address::fromIp(host, 0).ok();
}

// "host:port" → "host"; "[::1]:9901" → "[::1]".
std::string_view hostPart(std::string_view authority) {
  if (!authority.empty() && authority.front() == '[') {
    const size_t end = authority.find(']');
    return end == std::string_view::npos ? authority : authority.substr(0, end + 1);
  }
  const size_t colon = authority.rfind(':');
  return colon == std::string_view::npos ? authority : authority.substr(0, colon);
}

bool constantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size() || b.empty()) {
    return false;
  }
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return diff == 0;
}

} // namespace

AdminApi::AdminApi(ControlPlane& control, AdminOptions options)
    : control_(control), options_(std::move(options)) {}

const std::vector<AdminApi::Route>& AdminApi::routes() {
  static const std::vector<Route> table = {
      {"/", false, "GET", &AdminApi::dashboard, "the dashboard (HTML)"},
      {"/help", false, "GET", &AdminApi::helpPage, "this list"},
      {"/server_info", false, "GET", &AdminApi::serverInfo,
       "version, uptime, state, workers, Python, config version (JSON)"},
      {"/ready", false, "GET", &AdminApi::ready, "200 LIVE, or 503 while draining or failed"},
      {"/stats", false, "GET", &AdminApi::statsText,
       "every metric; ?format=json|text|prometheus, ?filter=REGEX"},
      {"/stats/prometheus", false, "GET", &AdminApi::statsPrometheus,
       "every metric, Prometheus text format"},
      {"/config_dump", false, "GET", &AdminApi::configDump,
       "the effective config, as --config-yaml reads it; ?format=json|yaml, ?version=N"},
      {"/listeners", false, "GET", &AdminApi::listeners,
       "listeners, addresses, filter chains, connections (JSON)"},
      {"/listeners/{name}/filter_chain", true, "GET,PUT", &AdminApi::filterChain,
       "GET a listener's filter chain (?format=json|yaml); PUT a new one (YAML or JSON)"},
      {"/config/history", false, "GET", &AdminApi::history, "the config versions kept (JSON)"},
      {"/config/rollback", true, "POST", &AdminApi::rollback,
       "apply a kept version again: ?version=N"},
      {"/healthcheck/fail", true, "POST", &AdminApi::healthFail,
       "health filters and /ready answer 503"},
      {"/healthcheck/ok", true, "POST", &AdminApi::healthOk, "undo /healthcheck/fail"},
      {"/drain_listeners", true, "POST", &AdminApi::drainListeners,
       "drain every listener (?graceful: keep accepting)"},
      {"/logging", true, "GET,POST", &AdminApi::logging,
       "GET the log levels; POST ?level=L, ?COMPONENT=L or ?paths=c:L,c:L"},
      {"/reload", true, "POST", &AdminApi::reload, "re-read the config file (as SIGHUP)"},
      {"/reopen_logs", true, "POST", &AdminApi::reopenLogs,
       "open the access log files again after rotation (as SIGUSR1)"},
      {"/quitquitquit", true, "POST", &AdminApi::quit, "drain, then exit"},
  };
  return table;
}

std::string AdminApi::help() {
  std::string out = "pounce admin API (docs/admin.md)\n\n";
  for (const auto& r : routes()) {
    char line[256];
    std::snprintf(line, sizeof(line), "  %-8s %-32s %s\n", r.methods, r.path.c_str(), r.help);
    out += line;
  }
  return out;
}

std::string AdminApi::checkHost(std::string_view authority) const {
  if (authority.empty() || options_.address.isPipe()) {
    return ""; // HTTP/1.0, or a Unix socket (its file mode is the access control)
  }
  const std::string host = toLower(hostPart(authority));
  if (host == "localhost" || isIpLiteral(host)) {
    return "";
  }
  for (const auto& allowed : options_.admin.allowed_hosts()) {
    if (toLower(allowed) == host) {
      return "";
    }
  }
  for (const auto& allowed : control_.config().current().admin().allowed_hosts()) {
    if (toLower(allowed) == host) {
      return "";
    }
  }
  return cat("Host '", host,
             "' is not allowed (IP literals, localhost and admin.allowed_hosts "
             "are)");
}

std::string AdminApi::checkOrigin(std::string_view origin, std::string_view authority) const {
  if (origin.empty()) {
    return "";
  }
  if (authority.empty() || toLower(origin) != cat("http://", toLower(authority))) {
    return cat("requests from origin '", origin,
               "' are refused: the admin API only answers its own pages");
  }
  return "";
}

absl::StatusOr<std::string> AdminApi::token() const {
  const std::string& file = options_.admin.token_file();
  if (file.empty()) {
    return std::string();
  }
  const std::string path =
      file[0] == '/' || options_.config_dir.empty() ? file : cat(options_.config_dir, "/", file);
  std::ifstream in(path);
  if (!in) {
    return absl::UnavailableError(cat("admin.token_file ", path, " cannot be read"));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string token(trim(ss.str()));
  if (token.empty()) {
    return absl::UnavailableError(cat("admin.token_file ", path, " is empty"));
  }
  return token;
}

void AdminApi::handle(AdminRequest request, Responder respond) {
  const Route* route = nullptr;
  std::string listener;
  const std::string prefix = "/listeners/";
  const std::string suffix = "/filter_chain";
  if (startsWith(request.path, prefix) && request.path.size() > prefix.size() + suffix.size() &&
      request.path.compare(request.path.size() - suffix.size(), suffix.size(), suffix) == 0) {
    listener = percentDecode(
        request.path.substr(prefix.size(), request.path.size() - prefix.size() - suffix.size()));
    for (const auto& r : routes()) {
      if (r.path == "/listeners/{name}/filter_chain") {
        route = &r;
      }
    }
  } else {
    for (const auto& r : routes()) {
      if (r.path == request.path) {
        route = &r;
      }
    }
  }
  if (route == nullptr) {
    respond(text(404, cat("no admin endpoint ", request.path, "\n\n", help())));
    return;
  }
  const std::string method = request.method == "HEAD" ? "GET" : request.method;
  bool allowed = false;
  for (auto m : split(route->methods, ',')) {
    allowed = allowed || m == method;
  }
  if (!allowed) {
    std::string header;
    for (auto m : split(route->methods, ',')) {
      header += cat(header.empty() ? "" : ", ", m);
    }
    AdminResponse r = text(405, cat("method ", request.method, " is not allowed on ", route->path,
                                    ": use ", header, "\n"));
    r.headers.emplace_back("allow", header);
    respond(std::move(r));
    return;
  }
  if (method != "GET") {
    POUNCE_LOG(Admin, Info, "admin: %s %s%s from %s", request.method, request.path,
               request.query.empty() ? "" : " (with a query)", request.peer);
  }
  if (!listener.empty()) {
    request.query["__listener"] = listener;
  }
  (this->*route->handler)(request, respond);
}

void AdminApi::dashboard(AdminRequest&, Responder& respond) {
  AdminResponse r;
  r.content_type = std::string(kHtml);
  r.body = kDashboardHtml;
  r.headers.emplace_back("cache-control", "no-store");
  r.headers.emplace_back("content-security-policy",
                         "default-src 'none'; script-src 'unsafe-inline'; style-src "
                         "'unsafe-inline'; connect-src 'self'; img-src 'self' data:; "
                         "frame-ancestors 'none'");
  r.headers.emplace_back("x-frame-options", "DENY");
  respond(std::move(r));
}

void AdminApi::helpPage(AdminRequest&, Responder& respond) { respond(text(200, help())); }

void AdminApi::serverInfo(AdminRequest&, Responder& respond) {
  ControlPlane* control = &control_;
  const AdminOptions* options = &options_;
  control_.status([control, options, respond](std::vector<pounce::admin::v1::WorkerStatus> all) {
    const auto uptime = std::chrono::duration<double>(RealTimeSource::instance().monotonicTime() -
                                                      control->startTime());
    char up[32];
    std::snprintf(up, sizeof(up), "%.1f", uptime.count());
    std::string out = cat(
        "{\"version\":", quote(kVersion), ",\"state\":\"", state(*control),
        "\",\"uptime_seconds\":", up, ",\"pid\":", static_cast<int>(::getpid()),
        ",\"mode\":", quote(control->mode()), ",\"python\":", quote(options->python),
        ",\"gil\":", !options->free_threaded, ",\"config_version\":", control->config().version(),
        ",\"config_path\":", quote(control->config().path()),
        ",\"admin_address\":", quote(options->address.asString()), ",\"workers\":[");
    for (size_t i = 0; i < all.size(); ++i) {
      const auto& w = all[i];
      out += cat(i > 0 ? "," : "", "{\"worker_id\":", w.worker_id(), ",\"pid\":", w.pid(),
                 ",\"io_threads\":", w.concurrency(),
                 ",\"active_connections\":", w.active_connections(),
                 ",\"config_version\":", w.config_version(), ",\"draining\":", w.draining(),
                 ",\"health_check_failed\":", w.health_check_failed(), "}");
    }
    out += "]}";
    respond(jsonResponse(200, std::move(out)));
  });
}

void AdminApi::ready(AdminRequest&, Responder& respond) {
  const std::string s = state(control_);
  respond(text(s == "LIVE" ? 200 : 503, s + "\n"));
}

void AdminApi::stats(AdminRequest& request, Responder& respond, const std::string& format) {
  std::shared_ptr<const NameFilter> filter;
  if (request.has_query("filter") && !request.query["filter"].empty()) {
    auto compiled = NameFilter::compile(request.query["filter"]);
    if (!compiled.ok()) {
      respond(text(400, cat("filter: '", request.query["filter"],
                            "' is not a regular expression: ", compiled.status().message(), "\n")));
      return;
    }
    filter = std::move(*compiled);
  }
  if (format != "json" && format != "text" && format != "prometheus") {
    respond(text(400, cat("format: '", format, "' is not one of json, text, prometheus\n")));
    return;
  }
  control_.stats([respond, filter, format](std::vector<StatsSnapshotProto> snapshots) {
    StatsSnapshotProto merged;
    for (const auto& s : snapshots) {
      mergeStats(merged, s);
    }
    AdminResponse r;
    if (format == "json") {
      r.content_type = std::string(kJson);
      r.body = renderJson(merged, filter.get()) + "\n";
    } else if (format == "prometheus") {
      r.content_type = "text/plain; version=0.0.4; charset=utf-8";
      r.body = renderPrometheus(merged, filter.get());
    } else {
      r.body = renderText(merged, filter.get());
    }
    r.headers.emplace_back("cache-control", "no-store");
    respond(std::move(r));
  });
}

void AdminApi::statsText(AdminRequest& request, Responder& respond) {
  stats(request, respond, request.has_query("format") ? request.query["format"] : "text");
}

void AdminApi::statsPrometheus(AdminRequest& request, Responder& respond) {
  stats(request, respond, "prometheus");
}

void AdminApi::configDump(AdminRequest& request, Responder& respond) {
  const ConfigState& config = control_.config();
  const ConfigVersion* version = &config.history().back();
  if (request.has_query("version")) {
    uint64_t n = 0;
    if (!parseUint(request.query["version"], n)) {
      respond(text(400, "version: must be a version number (GET /config/history lists them)\n"));
      return;
    }
    version = config.find(n);
    if (version == nullptr) {
      respond(text(404, cat("version ", n, " is not kept (GET /config/history lists them)\n")));
      return;
    }
  }
  const std::string format = request.has_query("format") ? request.query["format"] : "json";
  AdminResponse r;
  if (format == "yaml") {
    r.content_type = std::string(kYaml);
    r.body = config::messageToYaml(version->bootstrap);
  } else if (format == "json") {
    r.content_type = std::string(kJson);
    r.body = config::messageToJson(version->bootstrap);
  } else {
    respond(text(400, cat("format: '", format, "' is not json or yaml\n")));
    return;
  }
  r.headers.emplace_back("x-pounce-config-version", std::to_string(version->version));
  respond(std::move(r));
}

void AdminApi::listeners(AdminRequest&, Responder& respond) {
  ControlPlane* control = &control_;
  control_.status([control, respond](std::vector<pounce::admin::v1::WorkerStatus> all) {
    const auto names = listenerNames(control->config().current());
    std::string out =
        "{\"config_version\":" + std::to_string(control->config().version()) + ",\"listeners\":[";
    bool first = true;
    for (const auto& name : names) {
      const pounce::admin::v1::WorkerStatus::Listener* sample = nullptr;
      uint64_t connections = 0;
      std::vector<uint64_t> versions;
      for (const auto& w : all) {
        for (const auto& l : w.listeners()) {
          if (l.name() == name) {
            sample = sample == nullptr ? &l : sample;
            connections += l.connections_active();
            versions.push_back(l.chain_version());
          }
        }
      }
      out += first ? "" : ",";
      first = false;
      out += cat("{\"name\":", quote(name));
      if (sample != nullptr) {
        std::vector<std::string> filters(sample->filters().begin(), sample->filters().end());
        out += cat(",\"address\":", quote(sample->address()), ",\"filters\":", stringList(filters),
                   ",\"chain_version\":", sample->chain_version());
      }
      out += cat(",\"connections_active\":", connections, ",\"processes\":", versions.size());
      const bool consistent = std::all_of(versions.begin(), versions.end(),
                                          [&](uint64_t v) { return v == versions.front(); });
      out += cat(",\"consistent\":", consistent, "}");
    }
    out += "]}";
    respond(jsonResponse(200, std::move(out)));
  });
}

void AdminApi::filterChain(AdminRequest& request, Responder& respond) {
  const std::string listener = request.query["__listener"];
  request.query.erase("__listener");
  if (control_.config().listenerIndex(listener) < 0) {
    respond(text(404, cat("no listener named '", listener, "' (GET /listeners lists them)\n")));
    return;
  }
  if (request.method == "PUT") {
    putChain(listener, request, respond);
  } else {
    getChain(listener, request, respond);
  }
}

void AdminApi::getChain(const std::string& listener, AdminRequest& request, Responder& respond) {
  const Bootstrap& current = control_.config().current();
  v1::Listener only;
  *only.mutable_filter_chain() =
      current.listeners(control_.config().listenerIndex(listener)).filter_chain();
  const std::string format = request.has_query("format") ? request.query["format"] : "json";
  AdminResponse r;
  if (format == "yaml") {
    r.content_type = std::string(kYaml);
    r.body = config::messageToYaml(only);
  } else if (format == "json") {
    r.content_type = std::string(kJson);
    r.body = config::messageToJson(only);
  } else {
    respond(text(400, cat("format: '", format, "' is not json or yaml\n")));
    return;
  }
  r.headers.emplace_back("x-pounce-config-version", std::to_string(control_.config().version()));
  respond(std::move(r));
}

void AdminApi::putChain(const std::string& listener, AdminRequest& request, Responder& respond) {
  auto positions = std::make_shared<config::ConfigErrors>("request body");
  const int index = control_.config().listenerIndex(listener);
  auto filters = parseChainBody(request.body, index, *positions);
  if (!filters) {
    ApplyResult invalid =
        ApplyResult::invalid(*positions, "the filter chain is invalid; nothing changed");
    invalid.version = control_.config().version();
    logApplyResult(cat("PUT /listeners/", listener, "/filter_chain"), invalid);
    respond(applyResponse(invalid));
    return;
  }
  FilterList chain = std::move(*filters);
  control_.apply(
      [listener, chain](const Bootstrap& current,
                        config::ConfigErrors& errors) -> std::optional<Bootstrap> {
        Bootstrap candidate = current;
        for (int i = 0; i < candidate.listeners_size(); ++i) {
          if (listenerName(candidate.listeners(i), i) == listener) {
            *candidate.mutable_listeners(i)->mutable_filter_chain() = chain;
            validateBootstrap(candidate, errors);
            return errors.empty() ? std::optional<Bootstrap>(std::move(candidate)) : std::nullopt;
          }
        }
        errors.add("listeners", cat("listener '", listener, "' no longer exists"));
        return std::nullopt;
      },
      cat("PUT /listeners/", listener, "/filter_chain"), positions,
      [respond](ApplyResult result) { respond(applyResponse(result)); });
}

void AdminApi::history(AdminRequest&, Responder& respond) {
  const ConfigState& config = control_.config();
  std::string out = cat("{\"current\":", config.version(), ",\"versions\":[");
  const auto& all = config.history();
  for (size_t i = all.size(); i-- > 0;) {
    const auto& v = all[i];
    out += cat(i + 1 == all.size() ? "" : ",", "{\"version\":", v.version,
               ",\"applied_at\":", quote(isoTime(v.applied_at)), ",\"source\":", quote(v.source),
               ",\"changes\":", stringList(v.changes), "}");
  }
  out += "]}";
  respond(jsonResponse(200, std::move(out)));
}

void AdminApi::rollback(AdminRequest& request, Responder& respond) {
  uint64_t n = 0;
  if (!request.has_query("version") || !parseUint(request.query["version"], n)) {
    respond(text(400, "give the version to return to: POST /config/rollback?version=N\n"));
    return;
  }
  if (control_.config().find(n) == nullptr) {
    respond(text(404, cat("version ", n, " is not kept (GET /config/history lists them)\n")));
    return;
  }
  ControlPlane* control = &control_;
  control_.apply(
      [control, n](const Bootstrap&, config::ConfigErrors& errors) -> std::optional<Bootstrap> {
        const ConfigVersion* v = control->config().find(n);
        if (v == nullptr) {
          errors.add("", cat("version ", n, " is no longer kept"));
          return std::nullopt;
        }
        return v->bootstrap;
      },
      cat("rollback to version ", n), std::make_shared<config::ConfigErrors>(cat("version ", n)),
      [respond](ApplyResult result) { respond(applyResponse(result)); });
}

void AdminApi::healthFail(AdminRequest&, Responder& respond) {
  POUNCE_LOG(Admin, Info, "health check failed by the admin API: health filters answer 503");
  control_.setHealthCheckFailed(true, [respond] { respond(text(200, "OK\n")); });
}

void AdminApi::reopenLogs(AdminRequest&, Responder& respond) {
  control_.reopenLogs([respond](std::vector<std::string> problems) {
    logReopened("POST /reopen_logs", problems);
    if (problems.empty()) {
      respond(text(200, "OK\n"));
      return;
    }
    std::string body;
    for (const auto& p : problems) {
      body += p + "\n";
    }
    respond(text(500, body));
  });
}

void AdminApi::healthOk(AdminRequest&, Responder& respond) {
  POUNCE_LOG(Admin, Info, "health check restored by the admin API");
  control_.setHealthCheckFailed(false, [respond] { respond(text(200, "OK\n")); });
}

void AdminApi::drainListeners(AdminRequest& request, Responder& respond) {
  const bool graceful = request.has_query("graceful");
  POUNCE_LOG(Admin, Info, "draining the listeners (%s) on the admin API's request",
             graceful ? "graceful: still accepting" : "no new connections");
  control_.drain(graceful, [respond] { respond(text(200, "OK\n")); });
}

void AdminApi::logging(AdminRequest& request, Responder& respond) {
  if (request.method == "POST") {
    std::vector<std::pair<std::string, std::string>> changes;
    if (request.has_query("level")) {
      changes.emplace_back("", request.query["level"]); // first: components refine it
    }
    for (const auto& [key, value] : request.query) {
      if (key == "level") {
        continue;
      } else if (key == "paths") {
        for (auto item : split(value, ',')) {
          const size_t colon = item.find(':');
          if (colon == std::string_view::npos) {
            respond(text(400, cat("paths: '", item, "' is not component:level\n")));
            return;
          }
          changes.emplace_back(std::string(trim(item.substr(0, colon))),
                               std::string(trim(item.substr(colon + 1))));
        }
      } else {
        changes.emplace_back(key, value);
      }
    }
    if (changes.empty()) {
      respond(text(400, "give ?level=LEVEL, ?COMPONENT=LEVEL or ?paths=COMPONENT:LEVEL,...\n"));
      return;
    }
    for (const auto& [component, level] : changes) {
      log::Level l;
      log::Component c;
      if (!log::parseLevel(toLower(level), l)) {
        respond(text(400, cat("unknown level '", level,
                              "' (trace, debug, info, warning, error, critical, off)\n")));
        return;
      }
      if (!component.empty() && !log::parseComponent(toLower(component), c)) {
        std::string names;
        for (int i = 0; i < static_cast<int>(log::Component::Count); ++i) {
          names += cat(i > 0 ? ", " : "", log::componentName(static_cast<log::Component>(i)));
        }
        respond(text(400, cat("unknown component '", component, "' (", names, ")\n")));
        return;
      }
    }
    for (const auto& [component, level] : changes) {
      log::Level l;
      log::parseLevel(toLower(level), l);
      // Logged before the change, so lowering the level still leaves a trace.
      POUNCE_LOG(Admin, Warning, "log level of %s set to %s by the admin API",
                 component.empty() ? "every component" : component, log::levelName(l));
      control_.setLogLevel(toLower(component), l);
    }
  }
  std::string out = "{\"levels\":{";
  for (int i = 0; i < static_cast<int>(log::Component::Count); ++i) {
    const auto c = static_cast<log::Component>(i);
    out += cat(i > 0 ? "," : "", quote(log::componentName(c)), ":",
               quote(log::levelName(log::level(c))));
  }
  out += "}}";
  respond(jsonResponse(200, std::move(out)));
}

void AdminApi::reload(AdminRequest&, Responder& respond) {
  control_.reload("POST /reload",
                  [respond](ApplyResult result) { respond(applyResponse(result)); });
}

void AdminApi::quit(AdminRequest&, Responder& respond) {
  POUNCE_LOG(Admin, Info, "quitquitquit: draining, then exiting");
  respond(text(200, "OK\n"));
  control_.quit();
}

// --- the filter ---------------------------------------------------------------------------

http::FilterStatus AdminFilter::decodeHeaders(http::RequestHeaders& headers, bool end_stream) {
  request_.method = headers.method();
  head_ = request_.method == "HEAD";
  request_.path = std::string(headers.pathOnly());
  for (auto pair : split(headers.query(), '&')) {
    if (pair.empty()) {
      continue;
    }
    const size_t eq = pair.find('=');
    request_.query[percentDecode(pair.substr(0, eq))] =
        eq == std::string_view::npos ? "" : percentDecode(pair.substr(eq + 1));
  }
  request_.content_type = std::string(headers.getOr("content-type"));
  const auto& peer = decoder_callbacks_->streamInfo().client_address;
  request_.peer = peer.isPipe() ? "the admin socket" : peer.asString();

  const std::string_view authority = headers.authority();
  std::string refused = api_.checkHost(authority);
  if (refused.empty()) {
    refused = api_.checkOrigin(headers.getOr("origin"), authority);
  }
  if (!refused.empty()) {
    POUNCE_LOG(Admin, Warning, "admin: refused %s %s from %s: %s", request_.method, request_.path,
               request_.peer, refused);
    refused_ = true;
    reply(AdminResponse{403, "text/plain; charset=utf-8", refused + "\n", {}});
    return http::FilterStatus::StopIteration;
  }
  const bool open = (request_.path == "/" || request_.path == "/ready") &&
                    (request_.method == "GET" || request_.method == "HEAD");
  if (!open) {
    auto token = api_.token();
    if (!token.ok()) {
      POUNCE_LOG(Admin, Error, "admin: %s", std::string(token.status().message()));
      refused_ = true;
      reply(AdminResponse{503,
                          "text/plain; charset=utf-8",
                          "the admin token file cannot be read (see the log)\n",
                          {}});
      return http::FilterStatus::StopIteration;
    }
    if (!token->empty()) {
      const std::string_view auth = headers.getOr("authorization");
      const bool bearer = auth.size() > 7 && http::equalsIgnoreCase(auth.substr(0, 7), "bearer ");
      if (!bearer || !constantTimeEquals(trim(auth.substr(7)), *token)) {
        POUNCE_LOG(Admin, Warning, "admin: %s %s from %s without a valid token", request_.method,
                   request_.path, request_.peer);
        refused_ = true;
        reply(AdminResponse{401,
                            "text/plain; charset=utf-8",
                            "a bearer token is required (Authorization: Bearer ...)\n",
                            {{"www-authenticate", "Bearer realm=\"pounce-admin\""}}});
        return http::FilterStatus::StopIteration;
      }
    }
  }
  if (end_stream) {
    dispatch();
  }
  return http::FilterStatus::StopIteration;
}

http::FilterStatus AdminFilter::decodeData(Buffer& data, bool end_stream) {
  if (!refused_) {
    request_.body.append(data.data(), data.length());
  }
  data.clear();
  if (end_stream && !refused_) {
    dispatch();
  }
  return http::FilterStatus::StopIteration;
}

void AdminFilter::dispatch() {
  std::weak_ptr<bool> alive = alive_;
  AdminFilter* self = this;
  api_.handle(std::move(request_), [alive, self](AdminResponse response) {
    auto still = alive.lock();
    if (still && *still) {
      self->reply(std::move(response));
    }
  });
}

void AdminFilter::reply(AdminResponse response) {
  if (decoder_callbacks_->responseStarted()) {
    return;
  }
  auto headers = std::make_unique<http::ResponseHeaders>(response.status);
  headers->set("content-type", response.content_type);
  headers->set("x-content-type-options", "nosniff");
  for (const auto& [name, value] : response.headers) {
    headers->add(name, value);
  }
  const bool head = head_;
  if (response.body.empty() || head) {
    if (head) {
      headers->set("content-length", std::to_string(response.body.size()));
    }
    decoder_callbacks_->encodeHeaders(std::move(headers), true);
    return;
  }
  headers->set("content-length", std::to_string(response.body.size()));
  decoder_callbacks_->encodeHeaders(std::move(headers), false);
  Buffer body(response.body);
  decoder_callbacks_->encodeData(body, true);
}

} // namespace pounce::server::admin
