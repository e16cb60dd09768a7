#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "source/http/filter.h"
#include "source/network/address.h"
#include "source/server/admin/control_plane.h"

namespace pounce::server::admin {

// What the admin listener knows besides the control plane.
struct AdminOptions {
  pounce::config::v1::Admin admin; // the admin section as the server started with it
  std::string config_dir;          // for relative paths (token_file, a Unix socket)
  std::string python;              // "CPython 3.11.2 (GIL)"
  bool free_threaded{false};
  network::Address address; // where it listens (set once bound)
};

struct AdminRequest {
  std::string method;
  std::string path;                         // without the query string
  std::map<std::string, std::string> query; // decoded
  bool has_query(const std::string& key) const { return query.count(key) != 0; }
  std::string body;
  std::string content_type;
  std::string peer; // client address, for the log
};

struct AdminResponse {
  int status{200};
  std::string content_type{"text/plain; charset=utf-8"};
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};
using Responder = std::function<void(AdminResponse)>;

// The admin API's endpoints (docs/admin.md): routing, method rules, and the handlers on top
// of a ControlPlane. Host/Origin and token checks happen in the filter before this.
class AdminApi {
public:
  AdminApi(ControlPlane& control, AdminOptions options);

  // `respond` is called once, maybe later (changes answer when every I/O thread took
  // them), always on the control plane's thread.
  void handle(AdminRequest request, Responder respond);

  ControlPlane& control() { return control_; }
  const AdminOptions& options() const { return options_; }
  void setAddress(const network::Address& address) { options_.address = address; }

  // Request checks, shared with the filter. "" = allowed, else why not.
  std::string checkHost(std::string_view host) const;
  std::string checkOrigin(std::string_view origin, std::string_view host) const;
  // The token from admin.token_file, re-read on every request so rotating the file takes
  // effect at once. Empty string: no token configured. Error: unreadable.
  absl::StatusOr<std::string> token() const;

  // The help text (GET /help, 404 bodies).
  static std::string help();

private:
  using Handler = void (AdminApi::*)(AdminRequest&, Responder&);
  struct Route {
    std::string path;
    bool mutates;
    const char* methods; // "GET" or "POST" or "GET,PUT"
    Handler handler;
    const char* help;
  };
  static const std::vector<Route>& routes();

  void dashboard(AdminRequest& request, Responder& respond);
  void helpPage(AdminRequest& request, Responder& respond);
  void serverInfo(AdminRequest& request, Responder& respond);
  void ready(AdminRequest& request, Responder& respond);
  void statsText(AdminRequest& request, Responder& respond);
  void statsPrometheus(AdminRequest& request, Responder& respond);
  void configDump(AdminRequest& request, Responder& respond);
  void listeners(AdminRequest& request, Responder& respond);
  void filterChain(AdminRequest& request, Responder& respond);
  void history(AdminRequest& request, Responder& respond);
  void rollback(AdminRequest& request, Responder& respond);
  void healthFail(AdminRequest& request, Responder& respond);
  void reopenLogs(AdminRequest& request, Responder& respond);
  void healthOk(AdminRequest& request, Responder& respond);
  void drainListeners(AdminRequest& request, Responder& respond);
  void logging(AdminRequest& request, Responder& respond);
  void reload(AdminRequest& request, Responder& respond);
  void quit(AdminRequest& request, Responder& respond);

  void getChain(const std::string& listener, AdminRequest& request, Responder& respond);
  void putChain(const std::string& listener, AdminRequest& request, Responder& respond);
  void stats(AdminRequest& request, Responder& respond, const std::string& format);

  ControlPlane& control_;
  AdminOptions options_;
};

// The admin terminal filter: one per admin stream. Checks Host, Origin and the bearer
// token, reads the request body (up to the listener's max_request_bytes), then hands the
// request to the AdminApi and writes its answer when it comes.
class AdminFilter final : public http::StreamFilter {
public:
  explicit AdminFilter(AdminApi& api) : api_(api), alive_(std::make_shared<bool>(true)) {}

  // http::StreamDecoderFilter
  http::FilterStatus decodeHeaders(http::RequestHeaders& headers, bool end_stream) override;
  http::FilterStatus decodeData(Buffer& data, bool end_stream) override;
  void onDestroy() override { *alive_ = false; }

private:
  void dispatch();
  void reply(AdminResponse response);

  AdminApi& api_;
  AdminRequest request_;
  bool refused_{false};
  bool head_{false};
  // Cleared when the stream ends, so an answer that comes later is dropped.
  std::shared_ptr<bool> alive_;
};

} // namespace pounce::server::admin
