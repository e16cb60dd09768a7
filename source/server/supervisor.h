#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "source/server/config_builder.h"
#include "source/server/file_watcher.h"

namespace pounce::server {

// Process mode: a supervisor forks N worker processes (each its own interpreter, I/O
// threads and sockets), restarts crashed ones within a budget, forwards SIGTERM/SIGINT for
// a drain, replaces workers one at a time on SIGHUP or a source change (--reload).
//
// The supervisor binds every listening socket before forking and keeps them open, so a
// restarting worker's sockets keep queueing connections: nothing is refused while a
// worker is replaced. It never imports Python.
class Supervisor {
public:
  // Runs one worker process's server: (worker id, its sockets per listener, a fd to write
  // one byte to when ready) → exit code.
  using WorkerMain =
      std::function<int(uint32_t, std::vector<std::vector<int>>, int)>;

  struct Options {
    uint32_t workers{2};
    uint32_t concurrency{1}; // I/O threads per worker
    uint32_t max_restarts{5};
    std::chrono::milliseconds restart_window{60000};
    std::chrono::milliseconds startup_timeout{120000};
    std::vector<ListenSpec> listeners;
    bool reload{false};
    std::vector<std::string> reload_dirs;
    std::vector<std::string> reload_endings;
    std::chrono::milliseconds reload_delay{200};
  };

  Supervisor(Options options, WorkerMain worker_main);
  ~Supervisor();

  // Runs until the workers are gone. Returns the process exit code.
  int run();

private:
  struct Worker {
    uint32_t id;
    pid_t pid{-1};
    bool retiring{false}; // replaced or told to stop: its exit is expected
  };

  bool bindSockets();
  pid_t spawn(uint32_t id, int* ready_fd);
  bool waitReady(pid_t pid, int ready_fd);
  void reap();
  void onCrash(uint32_t id, int status);
  void rollingRestart(const std::string& why);
  void stopAll(int sig);
  size_t alive() const;

  Options options_;
  WorkerMain worker_main_;
  // sockets_[worker][listener] = fds
  std::vector<std::vector<std::vector<int>>> sockets_;
  std::vector<uint64_t> pipe_inodes_;
  std::vector<Worker> workers_;
  std::deque<std::chrono::steady_clock::time_point> crashes_;
  std::unique_ptr<FileWatcher> watcher_;
  bool stopping_{false};
  bool failed_{false};
  int exit_code_{0};
};

} // namespace pounce::server
