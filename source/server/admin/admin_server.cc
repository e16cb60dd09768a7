#include "source/server/admin/admin_server.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "source/common/logger.h"
#include "source/common/strings.h"
#include "source/network/listen_socket.h"
#include "source/network/transport_socket.h"
#include "source/server/worker.h"

namespace pounce::server::admin {

namespace {

constexpr size_t kMaxConnections = 64;
constexpr uint16_t kDefaultPort = 9901;

} // namespace

// The admin listener's view of the server: it never drains and never fails its health
// check, so the admin API stays usable while the data plane drains.
class AdminServer::Context : public ServerContext {
public:
  Context(event::Dispatcher& dispatcher, ControlPlane& control)
      : dispatcher_(dispatcher), control_(control) {}
  TimeSource& timeSource() override { return RealTimeSource::instance(); }
  stats::Store& stats() override { return stats::Store::global(); }
  bool draining() const override { return false; }
  bool healthCheckFailed() const override { return false; }
  uint64_t activeConnections() const override { return connections; }
  MonotonicTime startTime() const override { return control_.startTime(); }
  uint32_t workerId() const override { return 0; }
  uint32_t concurrency() const override { return 1; }
  event::Dispatcher& mainDispatcher() override { return dispatcher_; }

  uint64_t connections{0};

private:
  event::Dispatcher& dispatcher_;
  ControlPlane& control_;
};

struct AdminServer::ActiveConnection {
  ~ActiveConnection() {
    manager.reset();
    connection.reset();
  }
  std::unique_ptr<network::Connection> connection;
  std::unique_ptr<http::ConnectionManager> manager;
};

absl::StatusOr<network::Address> adminAddress(const pounce::config::v1::Admin& admin,
                                              const std::string& config_dir) {
  if (admin.address().has_pipe()) {
    const std::string& path = admin.address().pipe().path();
    return network::Address::fromPipe(
        path.empty() || path[0] == '/' || config_dir.empty() ? path : cat(config_dir, "/", path));
  }
  if (!admin.has_address()) {
    return network::Address::fromIp("127.0.0.1", kDefaultPort);
  }
  const auto& sa = admin.address().socket_address();
  return network::Address::fromIp(sa.address().empty() ? "127.0.0.1" : sa.address(),
                                  static_cast<uint16_t>(sa.port_value()));
}

AdminServer::AdminServer(event::Dispatcher& dispatcher, ControlPlane& control,
                         const AdminOptions& options)
    : dispatcher_(dispatcher), context_(std::make_unique<Context>(dispatcher, control)),
      api_(std::make_unique<AdminApi>(control, options)) {}

absl::StatusOr<std::unique_ptr<AdminServer>> AdminServer::create(event::Dispatcher& dispatcher,
                                                                 ControlPlane& control,
                                                                 const AdminOptions& options) {
  auto address = adminAddress(options.admin, options.config_dir);
  if (!address.ok()) {
    return address.status();
  }
  std::unique_ptr<AdminServer> server(new AdminServer(dispatcher, control, options));
  uint32_t mode = 0600; // the admin API changes the server: owner only by default
  if (options.admin.address().has_pipe() && !options.admin.address().pipe().mode().empty()) {
    mode = static_cast<uint32_t>(std::stoul(options.admin.address().pipe().mode(), nullptr, 8));
  }
  // One socket, not shared through SO_REUSEPORT: a data listener or another process on the
  // same port is an error, not a split of the admin API's connections.
  auto fd = network::createListenSocket(*address, 128, mode, /*reuse_port=*/false);
  if (!fd.ok()) {
    return absl::FailedPreconditionError(cat("admin.address: ", fd.status().message()));
  }
  server->fd_ = *fd;
  server->address_ = address->isPipe() ? *address : network::Address::local(*fd);
  if (address->isPipe()) {
    server->pipe_inode_ = network::socketFileInode(*address);
  }
  server->api_->setAddress(server->address_);

  auto settings = std::make_shared<http::HttpSettings>();
  settings->listener_name = "_admin";
  settings->limits.max_request_bytes = 4u << 20; // chain bodies
  settings->limits.server_header = "pounce-admin";
  settings->request_timeout = std::chrono::milliseconds(0); // a reload may take long
  server->settings_ = settings;
  AdminApi* api = server->api_.get();
  std::vector<http::FilterChainEntry> entries;
  entries.push_back(
      {"pounce.admin", [api]() { return std::make_unique<AdminFilter>(*api); }, true});
  server->runtime_ = std::make_unique<http::ListenerRuntime>(
      settings, std::make_shared<http::FilterChain>(std::move(entries), 1),
      http::ListenerStats::create(stats::Store::global(), "_admin"));
  server->startAccepting();
  POUNCE_LOG(Admin, Info, "admin API on %s%s", server->address_.isPipe() ? "" : "http://",
             server->address_.asString());
  return server;
}

void AdminServer::startAccepting() {
  accept_event_ = dispatcher_.createFileEvent(
      fd_,
      [this](uint32_t events) {
        if (events & event::FileReadyType::Read) {
          onAccept();
        }
      },
      /*edge=*/false, event::FileReadyType::Read);
}

AdminServer::~AdminServer() {
  accept_event_.reset();
  accept_retry_timer_.reset();
  connections_.clear();
  if (fd_ >= 0) {
    ::close(fd_);
  }
  if (address_.isPipe()) {
    network::removeSocketFile(address_, pipe_inode_);
  }
}

void AdminServer::onAccept() {
  for (int i = 0; i < 16; ++i) {
    sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    const int fd =
        ::accept4(fd_, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR) {
        continue;
      }
      if (network::acceptOutOfResources(errno)) {
        POUNCE_LOG(Admin, Warning, "admin accept failed: %s; accepting again in 100 ms",
                   std::strerror(errno));
        network::pauseAccepting(
            dispatcher_, accept_event_, accept_retry_timer_,
            [this] {
              if (accept_event_ == nullptr) {
                startAccepting();
              }
            },
            std::chrono::milliseconds(100));
      }
      return;
    }
    if (connections_.size() >= kMaxConnections) {
      ::close(fd);
      continue;
    }
    if (!address_.isPipe()) {
      const int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    const uint64_t id = nextConnectionId();
    auto active = std::make_unique<ActiveConnection>();
    active->connection = std::make_unique<network::Connection>(
        dispatcher_, fd, std::make_unique<network::RawTransportSocket>(),
        address_.isPipe() ? address_
                          : network::Address::fromSockaddr(reinterpret_cast<sockaddr*>(&ss), len),
        network::Address::local(fd), id);
    active->manager =
        std::make_unique<http::ConnectionManager>(*active->connection, *runtime_, *context_, 0);
    active->connection->setOnClosed([this](network::Connection& c) { onClosed(c.id()); });
    network::Connection& connection = *active->connection;
    connections_.emplace(id, std::move(active));
    context_->connections = connections_.size();
    connection.start();
  }
}

void AdminServer::onClosed(uint64_t id) {
  auto it = connections_.find(id);
  if (it == connections_.end()) {
    return;
  }
  struct Doomed : public event::DeferredDeletable {
    std::unique_ptr<ActiveConnection> connection;
  };
  auto doomed = std::make_unique<Doomed>();
  doomed->connection = std::move(it->second);
  connections_.erase(it);
  context_->connections = connections_.size();
  dispatcher_.deferredDelete(std::move(doomed));
}

} // namespace pounce::server::admin
