#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "source/common/event/dispatcher.h"
#include "source/common/server_context.h"
#include "source/server/config_builder.h"
#include "source/server/worker.h"

struct event;

namespace pounce::server {

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
  // Starts a graceful drain (as SIGTERM does).
  void drainAndExit();
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

  Bootstrap bootstrap_;
  std::string config_path_;
  std::shared_ptr<config::ConfigErrors> marks_;
  std::unique_ptr<event::Dispatcher> main_dispatcher_;
  std::vector<std::shared_ptr<ListenerShared>> listeners_;
  // Per listener: the socket of each I/O thread (TCP) or one shared socket (UDS).
  std::vector<std::vector<int>> listen_fds_;
  std::vector<uint64_t> pipe_inodes_;
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
};

} // namespace pounce::server
