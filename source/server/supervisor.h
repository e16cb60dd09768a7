#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "source/common/event/dispatcher.h"
#include "source/server/admin/config_watcher.h"
#include "source/server/admin/control_channel.h"
#include "source/server/admin/control_plane.h"
#include "source/server/admin/operation_queue.h"
#include "source/server/config_builder.h"
#include "source/server/file_watcher.h"

namespace pounce::server {

// Process mode: a supervisor forks N worker processes (each its own interpreter, I/O
// threads and sockets), restarts crashed ones within a budget, forwards SIGTERM/SIGINT for
// a drain, replaces workers one at a time on SIGHUP, POST /reload, a config change
// (watch_config) or a source change (--reload).
//
// The supervisor binds every listening socket before forking and keeps them open, so a
// restarting worker's sockets keep queueing connections: nothing is refused while a
// worker is replaced. It never imports Python, so it cannot build filter chains: it is the
// control plane (ControlPlane, for the admin API) and has the workers build and publish
// changes over a control channel each (a socketpair carrying ControlMessages). A chain
// swap is two-phase: every worker builds the chain (Prepare), and only when all succeeded
// do they publish it (Commit); the answer comes once all took it. Reads (stats, status)
// are gathered from every worker. Everything runs on one thread, an event loop; changes,
// rolling restarts and respawns are serialized, so a worker is never forked in the middle
// of a change and a change never misses a worker.
class Supervisor : public admin::ControlPlane {
public:
  // What a new worker process starts with.
  struct WorkerStart {
    uint32_t id{0};
    std::vector<std::vector<int>> sockets; // per listener: per I/O thread (TCP) or one (UDS)
    int ready_fd{-1};                      // write one byte once serving
    int control_fd{-1};                    // the worker's end of its control channel
    const Bootstrap* bootstrap{nullptr};   // the effective config
    std::shared_ptr<config::ConfigErrors> marks;
    uint64_t config_version{1};
    admin::ChainVersions chain_versions; // see Instance::setChainVersions
    bool health_check_failed{false};
    bool draining{false}; // a graceful drain is on
  };
  // Runs one worker process's server → exit code.
  using WorkerMain = std::function<int(WorkerStart)>;

  struct Options {
    uint32_t workers{2};
    uint32_t concurrency{1}; // I/O threads per worker
    uint32_t max_restarts{5};
    std::chrono::milliseconds restart_window{60000};
    std::chrono::milliseconds startup_timeout{120000};
    // The config file ("" in quick mode) and how to read it again.
    std::string config_path;
    std::string config_dir;
    admin::RereadConfig reread;
    bool watch_config{false};
    // Development: replace the workers when source files change.
    bool reload{false};
    std::vector<std::string> reload_dirs;
    std::vector<std::string> reload_endings;
    std::chrono::milliseconds reload_delay{200};
  };

  Supervisor(Options options, Bootstrap bootstrap, std::shared_ptr<config::ConfigErrors> marks,
             WorkerMain worker_main);
  ~Supervisor() override;

  // Runs until the workers are gone. Returns the process exit code.
  int run();
  // The supervisor's event loop (the admin listener runs on it too).
  event::Dispatcher& dispatcher() { return *dispatcher_; }

  // admin::ControlPlane
  std::string mode() const override { return "process workers"; }
  MonotonicTime startTime() const override { return start_time_; }
  bool draining() const override { return drain_ != Drain::None; }
  bool healthCheckFailed() const override { return health_failed_; }
  const admin::ConfigState& config() const override { return config_; }
  void stats(std::function<void(std::vector<admin::StatsSnapshotProto>)> done) override;
  void status(std::function<void(std::vector<pounce::admin::v1::WorkerStatus>)> done) override;
  void apply(CandidateFn candidate, std::string source,
             std::shared_ptr<config::ConfigErrors> positions, admin::ApplyCallback done) override;
  void reload(std::string source, admin::ApplyCallback done) override;
  void setHealthCheckFailed(bool failed, std::function<void()> done) override;
  void drain(bool graceful, std::function<void()> done) override;
  void reopenLogs(std::function<void(std::vector<std::string>)> done) override;
  void quit() override;
  void setLogLevel(std::string_view component, log::Level level) override;

private:
  enum class Drain { None, Graceful, Stop };
  struct Child {
    uint32_t id{0};
    pid_t pid{-1};
    enum class State { Starting, Ready, Retiring } state{State::Starting};
    bool served{false}; // became ready at some point
    int ready_fd{-1};
    event::FileEventPtr ready_event;
    event::TimerPtr startup_timer;
    std::unique_ptr<admin::ControlChannel> control;
    std::function<void(bool)> on_started; // runs once: ready, or failed to start
  };
  // One listener's sockets: [worker][I/O thread] (TCP) or [worker][0] (a shared UDS).
  struct BoundListener {
    ListenSpec spec;
    std::vector<std::vector<int>> fds;
    uint64_t pipe_inode{0};
  };
  using Responses = std::vector<std::optional<admin::ControlResponse>>;

  bool bindAll();
  // The sockets of `bootstrap`'s listeners: kept from bound_ when the address is the same,
  // bound anew otherwise (errors name the listener's address field).
  bool bindFor(const Bootstrap& bootstrap, std::vector<BoundListener>& out,
               config::ConfigErrors& errors);
  static void closeListener(BoundListener& listener);
  void releaseSockets();
  std::vector<std::vector<int>> socketsFor(uint32_t worker) const;

  void spawn(uint32_t id, std::function<void(bool)> on_started);
  void onReadyPipe(Child& child);
  void started(Child& child, bool ok);
  void syncState(Child& child);
  void tellStarting(const admin::ControlRequest& request);
  Child* find(pid_t pid);
  void onSignals();
  void reap();
  void onCrash(uint32_t id, const std::string& what);
  void stopAll(int sig);
  void maybeExit();
  std::vector<Child*> ready();
  // Sends `request` to every ready worker; `done` gets one entry per worker (nullopt: no
  // answer in time).
  void broadcast(const admin::ControlRequest& request, std::chrono::milliseconds timeout,
                 std::function<void(Responses)> done);

  // Operations (serialized through queue_).
  void startup(std::function<void()> done);
  // Starts worker `id`, then the next ones in turn (startup is sequential).
  void startWorker(uint32_t id, std::function<void()> done);
  void rollingRestart(std::string why, std::function<void(bool ok, size_t replaced)> done);
  void replaceNext(std::shared_ptr<std::vector<uint32_t>> ids, size_t next, std::string why,
                   std::function<void(bool, size_t)> done);
  // Applies `candidate` by replacing the workers (listener changes, reloads).
  void applyByRestart(Bootstrap candidate, std::string source,
                      std::shared_ptr<config::ConfigErrors> positions,
                      std::vector<std::string> restart_needed, admin::ApplyCallback done,
                      std::function<void()> finished);
  // Applies a chains-only change with a two-phase swap on the running workers.
  void applyInPlace(Bootstrap candidate, std::string source,
                    std::shared_ptr<config::ConfigErrors> positions,
                    std::vector<std::string> restart_needed, admin::ApplyCallback done,
                    std::function<void()> finished);

  Options options_;
  std::unique_ptr<event::Dispatcher> dispatcher_;
  WorkerMain worker_main_;
  admin::ConfigState config_;
  Bootstrap bootstrap_; // the effective config new workers start with
  std::shared_ptr<config::ConfigErrors> marks_;
  uint64_t bootstrap_version_{1};
  admin::ChainVersions bootstrap_chain_versions_;
  std::vector<BoundListener> bound_;
  std::vector<std::unique_ptr<Child>> children_;
  // What each running worker last reported to stats() (by pid), and what the workers that
  // exited reported last (counters and histograms only), so the merged counts never go
  // back when a worker is replaced, crashes, drains or is too busy to answer.
  std::map<pid_t, admin::StatsSnapshotProto> last_stats_;
  // Expires when the supervisor goes: answers that arrive after it find nothing to update.
  std::shared_ptr<char> alive_{std::make_shared<char>()};
  admin::StatsSnapshotProto retired_stats_;
  void retireStats(pid_t pid);
  std::deque<std::chrono::steady_clock::time_point> crashes_;
  admin::OperationQueue queue_;
  std::vector<event::TimerPtr> backoff_timers_;
  int signal_fd_{-1};
  event::FileEventPtr signal_event_;
  std::unique_ptr<FileWatcher> source_watcher_;
  event::TimerPtr source_timer_;
  std::chrono::steady_clock::time_point change_seen_{};
  std::string changed_path_;
  std::unique_ptr<admin::ConfigWatcher> config_watcher_;
  MonotonicTime start_time_;
  Drain drain_{Drain::None};
  bool health_failed_{false};
  bool stopping_{false};
  bool failed_{false};
  int signals_{0};
  int exit_code_{0};
};

} // namespace pounce::server
