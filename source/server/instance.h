#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "pounce/admin/v1/control.pb.h"
#include "source/common/event/dispatcher.h"
#include "source/common/server_context.h"
#include "source/server/config_builder.h"
#include "source/server/worker.h"

struct event;

namespace pounce::server {

// A configuration change built and ready to publish (see Instance::prepare). Destroying
// it unpublished undoes the build: sockets it bound are closed, its chains released.
struct PendingChange {
  PendingChange() = default;
  PendingChange(const PendingChange&) = delete;
  PendingChange& operator=(const PendingChange&) = delete;
  ~PendingChange();

  uint64_t version{0};
  Bootstrap bootstrap; // the config once applied
  struct ChainSwap {
    std::shared_ptr<ListenerShared> listener;
    http::FilterChainSharedPtr chain;
  };
  std::vector<ChainSwap> chains;
  struct Replacement {
    std::shared_ptr<ListenerShared> old_listener;
    std::shared_ptr<ListenerShared> listener; // takes over old_listener's socket
  };
  std::vector<Replacement> replaced;
  std::vector<std::shared_ptr<ListenerShared>> added;   // on newly bound sockets
  std::vector<std::shared_ptr<ListenerShared>> removed; // stop accepting, drain
  std::vector<std::string> changes;                     // for logs and the history
  bool published{false};
};

// The server in one process: the main thread (config, signals, admin) and the I/O threads.
class Instance : public ServerContext {
public:
  // `marks` (optional) holds the source positions of the config's fields, for errors.
  Instance(Bootstrap bootstrap, std::string config_path,
           std::shared_ptr<config::ConfigErrors> marks = nullptr);
  ~Instance() override;

  // Builds every listener and filter chain. Nothing is bound yet.
  absl::Status build(bool validate_only);
  // Binds the listening sockets (errors: address in use, permissions...).
  absl::Status bind();
  // Starts the I/O threads and runs until a drain finishes. Returns the exit code.
  int run();

  const Bootstrap& bootstrap() const { return bootstrap_; }
  const std::vector<std::shared_ptr<ListenerShared>>& listeners() const { return listeners_; }
  // Drains (as SIGTERM does: stop accepting, drain connections, close the rest after
  // shutdown_timeout), then exits.
  void drainAndExit();
  // The admin API's drain: health and readiness go 503, open connections drain (HTTP/1
  // responses say Connection: close, idle connections close at once). `graceful`: the
  // listeners keep accepting (each new connection gets Connection: close); otherwise they
  // stop and what is left is closed after shutdown_timeout. The process stays up until
  // drainAndExit(). Main thread only.
  void drain(bool graceful);

  // --- Live configuration changes (main thread only). ---
  // Builds everything of `candidate` (checked with validateBootstrap) that differs from the
  // running config, as config version `version`: changed filter chains; listeners whose
  // other settings changed (they take over the old socket); listeners on a new address
  // (their sockets are bound now, before anything is closed). Nothing changes for traffic
  // yet. Errors (field paths of `candidate`) go to `errors`, and then nullptr is returned.
  // `chains_only`: refuse any change but filter chains (worker processes: the supervisor
  // replaces them for the rest).
  std::unique_ptr<PendingChange> prepare(const Bootstrap& candidate, uint64_t version,
                                         config::ConfigErrors& errors, bool chains_only = false);
  // Publishes a prepared change to every I/O thread: new streams (including the next
  // request on an open connection) use the new chains, streams in flight finish on the old
  // ones; removed or replaced listeners stop accepting and drain. `done(acks)` runs on the
  // main thread once every I/O thread took it.
  void commit(std::unique_ptr<PendingChange> change, std::function<void(uint32_t acks)> done);
  // The version of the running config (1 at startup), and where it came from.
  uint64_t configVersion() const { return config_version_; }
  void setConfigVersion(uint64_t version) { config_version_ = version; }
  // A worker process started after config changes: the version each listener's chain was
  // built at in the workers that applied them (their /listeners report must agree).
  void setChainVersions(std::map<std::string, uint64_t, std::less<>> versions) {
    chain_versions_ = std::move(versions);
  }
  // This process's state and listeners, for the admin API.
  pounce::admin::v1::WorkerStatus status() const;
  // What SIGHUP does; by default certificates are re-read (reloadCertificates()).
  void setReloadHandler(std::function<void()> handler) { reload_handler_ = std::move(handler); }
  const std::string& configPath() const { return config_path_; }
  // Re-reads every TLS listener's certificates, keys and CA files (SIGHUP does this; the
  // admin API may too). Open connections are untouched; new handshakes use the new files.
  // A listener whose files fail to load keeps its current ones; the error names the field
  // and file. Main thread only.
  absl::Status reloadCertificates();

  // ServerContext
  TimeSource& timeSource() override { return RealTimeSource::instance(); }
  stats::Store& stats() override { return stats::Store::global(); }
  bool draining() const override { return draining_.load(); }
  bool healthCheckFailed() const override { return health_failed_.load(); }
  void setHealthCheckFailed(bool failed) { health_failed_.store(failed); }
  uint64_t activeConnections() const override;
  MonotonicTime startTime() const override { return start_time_; }
  uint32_t workerId() const override { return worker_id_; }
  uint32_t concurrency() const override { return concurrency_; }
  event::Dispatcher& mainDispatcher() override { return *main_dispatcher_; }

  void setWorkerId(uint32_t id) { worker_id_ = id; }
  uint32_t defaultAppThreads() const override { return default_app_threads_; }
  void setDefaultAppThreads(uint32_t n) { default_app_threads_ = n; }
  void setConcurrency(uint32_t n) { concurrency_ = n; }
  // Listening sockets made by a supervisor before fork: per listener, one per I/O thread
  // (TCP) or one shared (Unix socket). bind() then uses them instead of binding.
  void setInheritedSockets(std::vector<std::vector<int>> fds) { inherited_fds_ = std::move(fds); }
  // Written to (one byte) once the server accepts connections; for the supervisor.
  void setReadyFd(int fd) { ready_fd_ = fd; }

private:
  void printBanner() const;
  void onSignal(int signal);
  void onWorkerDrained();
  std::string configDir() const;
  // Binds `listener`'s sockets (one per I/O thread for TCP, one for a Unix socket).
  absl::Status bindListener(ListenerShared& listener);
  std::shared_ptr<ListenerShared> findListener(const std::string& name) const;
  // Stops accepting and drains every connection; `done` when all I/O threads are drained.
  void startStopDrain();

  Bootstrap bootstrap_;
  std::string config_path_;
  std::shared_ptr<config::ConfigErrors> marks_;
  std::unique_ptr<event::Dispatcher> main_dispatcher_;
  std::vector<std::shared_ptr<ListenerShared>> listeners_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<::event*> signal_events_;
  std::atomic<bool> draining_{false};
  std::atomic<bool> health_failed_{false};
  MonotonicTime start_time_;
  uint32_t worker_id_{0};
  uint32_t concurrency_{1};
  uint32_t default_app_threads_{1};
  std::vector<std::vector<int>> inherited_fds_;
  int ready_fd_{-1};
  uint32_t workers_drained_{0};
  int signals_seen_{0};
  bool stop_drain_started_{false};
  bool drained_{false};
  bool exit_requested_{false};
  uint64_t config_version_{1};
  std::map<std::string, uint64_t, std::less<>> chain_versions_;
  std::function<void()> reload_handler_;
};

} // namespace pounce::server
