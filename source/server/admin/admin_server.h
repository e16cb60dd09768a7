#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "absl/status/statusor.h"
#include "pounce/config/v1/bootstrap.pb.h"
#include "source/common/event/dispatcher.h"
#include "source/common/server_context.h"
#include "source/http/conn_manager.h"
#include "source/network/address.h"
#include "source/network/connection.h"
#include "source/server/admin/admin_api.h"

namespace pounce::server::admin {

// The admin listener: pounce's own HTTP stack (connection manager, HTTP/1.1 codec, a
// filter chain) whose only filter is the admin terminal filter, on the control plane's
// dispatcher (the main thread, or the supervisor's). It is never drained with the data
// plane, so an operator can watch a drain and stop the server through it.
class AdminServer {
public:
  // Binds the admin address (default 127.0.0.1:9901).
  static absl::StatusOr<std::unique_ptr<AdminServer>>
  create(event::Dispatcher& dispatcher, ControlPlane& control, const AdminOptions& options);
  ~AdminServer();

  const network::Address& address() const { return address_; }

private:
  class Context;
  struct ActiveConnection;

  AdminServer(event::Dispatcher& dispatcher, ControlPlane& control, const AdminOptions& options);
  void onAccept();
  void startAccepting();
  void onClosed(uint64_t id);

  event::Dispatcher& dispatcher_;
  std::unique_ptr<Context> context_;
  std::unique_ptr<AdminApi> api_;
  std::shared_ptr<http::HttpSettings> settings_;
  std::unique_ptr<http::ListenerRuntime> runtime_;
  network::Address address_;
  uint64_t pipe_inode_{0};
  int fd_{-1};
  event::FileEventPtr accept_event_;
  event::TimerPtr accept_retry_timer_;
  std::unordered_map<uint64_t, std::unique_ptr<ActiveConnection>> connections_;
};

// Where the admin API listens: `admin.address`, 127.0.0.1:9901 when absent, 127.0.0.1 for
// an empty IP. Unix socket paths are relative to `config_dir`.
absl::StatusOr<network::Address> adminAddress(const pounce::config::v1::Admin& admin,
                                              const std::string& config_dir);

} // namespace pounce::server::admin
