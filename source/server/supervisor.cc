#include "source/server/supervisor.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <cerrno>
#include <cstring>

#include "source/common/logger.h"
#include "source/common/strings.h"
#include "source/network/listen_socket.h"

namespace pounce::server {

namespace {

sigset_t supervisedSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGCHLD);
  return set;
}

std::string describeExit(int status) {
  if (WIFEXITED(status)) {
    return cat("exited with code ", WEXITSTATUS(status));
  }
  if (WIFSIGNALED(status)) {
    return cat("was killed by signal ", WTERMSIG(status), " (", strsignal(WTERMSIG(status)), ")");
  }
  return "stopped";
}

} // namespace

Supervisor::Supervisor(Options options, WorkerMain worker_main)
    : options_(std::move(options)), worker_main_(std::move(worker_main)) {}

Supervisor::~Supervisor() {
  for (auto& worker : sockets_) {
    for (auto& listener : worker) {
      for (int fd : listener) {
        ::close(fd);
      }
    }
  }
  for (size_t i = 0; i < options_.listeners.size() && i < pipe_inodes_.size(); ++i) {
    network::removeSocketFile(options_.listeners[i].address, pipe_inodes_[i]);
  }
}

bool Supervisor::bindSockets() {
  sockets_.assign(options_.workers, std::vector<std::vector<int>>(options_.listeners.size()));
  for (size_t li = 0; li < options_.listeners.size(); ++li) {
    ListenSpec& spec = options_.listeners[li];
    if (spec.address.isPipe()) {
      auto fd = network::createListenSocket(spec.address, static_cast<int>(spec.backlog),
                                            spec.pipe_mode);
      if (!fd.ok()) {
        std::fprintf(stderr, "pounce: %s\n", std::string(fd.status().message()).c_str());
        return false;
      }
      pipe_inodes_.push_back(network::socketFileInode(spec.address));
      for (uint32_t w = 0; w < options_.workers; ++w) {
        sockets_[w][li].push_back(w == 0 ? *fd : ::dup(*fd));
      }
      continue;
    }
    pipe_inodes_.push_back(0);
    for (uint32_t w = 0; w < options_.workers; ++w) {
      for (uint32_t t = 0; t < options_.concurrency; ++t) {
        auto fd = network::createListenSocket(spec.address, static_cast<int>(spec.backlog), 0);
        if (!fd.ok()) {
          std::fprintf(stderr, "pounce: %s\n", std::string(fd.status().message()).c_str());
          return false;
        }
        if (spec.address.port() == 0) {
          spec.address = network::Address::local(*fd); // the kernel's port, for everyone
        }
        sockets_[w][li].push_back(*fd);
      }
    }
  }
  return true;
}

pid_t Supervisor::spawn(uint32_t id, int* ready_fd) {
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) {
    return -1;
  }
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(pipefd[0]);
    ::close(pipefd[1]);
    return -1;
  }
  if (pid == 0) {
    // The worker: default signal handling, only its own sockets.
    ::close(pipefd[0]);
    sigset_t none;
    sigemptyset(&none);
    for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGCHLD}) {
      ::signal(sig, SIG_DFL);
    }
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (uint32_t w = 0; w < sockets_.size(); ++w) {
      if (w == id) {
        continue;
      }
      for (auto& listener : sockets_[w]) {
        for (int fd : listener) {
          ::close(fd);
        }
      }
    }
    // Duplicate our fds so the worker owns copies it may close.
    std::vector<std::vector<int>> mine;
    for (auto& listener : sockets_[id]) {
      std::vector<int> fds;
      for (int fd : listener) {
        fds.push_back(::dup(fd));
        ::close(fd);
      }
      mine.push_back(std::move(fds));
    }
    sockets_.clear();
    pipe_inodes_.clear();
    log::setProcessTag(cat("w", id));
    const int code = worker_main_(id, std::move(mine), pipefd[1]);
    std::fflush(stdout);
    std::fflush(stderr);
    ::_exit(code);
  }
  ::close(pipefd[1]);
  *ready_fd = pipefd[0];
  return pid;
}

bool Supervisor::waitReady(pid_t pid, int ready_fd) {
  const auto deadline = std::chrono::steady_clock::now() + options_.startup_timeout;
  bool ready = false;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{ready_fd, POLLIN, 0};
    const int rc = ::poll(&p, 1, 100);
    if (rc > 0) {
      char c;
      ready = ::read(ready_fd, &c, 1) == 1;
      break;
    }
    int status;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      // Died before it was ready: its own error message is already on stderr.
      ::close(ready_fd);
      return false;
    }
  }
  ::close(ready_fd);
  return ready;
}

size_t Supervisor::alive() const {
  size_t n = 0;
  for (const auto& w : workers_) {
    n += w.pid > 0 ? 1 : 0;
  }
  return n;
}

void Supervisor::stopAll(int sig) {
  for (auto& w : workers_) {
    if (w.pid > 0) {
      w.retiring = true;
      ::kill(w.pid, sig);
    }
  }
}

void Supervisor::onCrash(uint32_t id, int status) {
  const auto now = std::chrono::steady_clock::now();
  crashes_.push_back(now);
  while (!crashes_.empty() && now - crashes_.front() > options_.restart_window) {
    crashes_.pop_front();
  }
  if (crashes_.size() > options_.max_restarts) {
    POUNCE_LOG(Main, Critical,
               "worker %d %s; %d crashes within %ds exceed the restart budget (%d): stopping",
               id, describeExit(status), crashes_.size(),
               static_cast<int>(options_.restart_window.count() / 1000), options_.max_restarts);
    failed_ = true;
    exit_code_ = 1;
    stopping_ = true;
    stopAll(SIGTERM);
    return;
  }
  // Back off a little more with each recent crash.
  const auto backoff = std::chrono::milliseconds(
      std::min<int64_t>(5000, 100LL << std::min<size_t>(crashes_.size() - 1, 6)));
  POUNCE_LOG(Main, Warning, "worker %d %s; restarting it in %dms (%d/%d in the window)", id,
             describeExit(status), backoff.count(), crashes_.size(), options_.max_restarts);
  ::usleep(static_cast<useconds_t>(backoff.count() * 1000));
  int ready_fd;
  const pid_t pid = spawn(id, &ready_fd);
  if (pid < 0) {
    POUNCE_LOG(Main, Error, "cannot fork a worker: %s", std::strerror(errno));
    return;
  }
  workers_.push_back({id, pid, false});
  if (!waitReady(pid, ready_fd)) {
    POUNCE_LOG(Main, Error, "restarted worker %d did not become ready", id);
  }
}

void Supervisor::reap() {
  while (true) {
    int status;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) {
      return;
    }
    for (size_t i = 0; i < workers_.size(); ++i) {
      if (workers_[i].pid != pid) {
        continue;
      }
      const Worker w = workers_[i];
      workers_.erase(workers_.begin() + static_cast<long>(i));
      if (w.retiring) {
        if (stopping_ && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
          exit_code_ = 1;
        }
        POUNCE_LOG(Main, Debug, "worker %d (pid %d) %s", w.id, pid, describeExit(status));
      } else if (!stopping_) {
        onCrash(w.id, status);
      }
      break;
    }
  }
}

void Supervisor::rollingRestart(const std::string& why) {
  POUNCE_LOG(Main, Info, "%s: replacing workers one at a time", why);
  std::vector<Worker> old = workers_;
  for (const Worker& w : old) {
    if (stopping_) {
      return;
    }
    int ready_fd;
    const pid_t pid = spawn(w.id, &ready_fd);
    if (pid < 0) {
      POUNCE_LOG(Main, Error, "cannot fork a worker: %s", std::strerror(errno));
      return;
    }
    workers_.push_back({w.id, pid, false});
    if (!waitReady(pid, ready_fd)) {
      POUNCE_LOG(Main, Error, "the new worker %d did not start; keeping the old one", w.id);
      for (auto& x : workers_) {
        if (x.pid == pid) {
          x.retiring = true;
          ::kill(pid, SIGKILL);
        }
      }
      reap();
      return;
    }
    for (auto& x : workers_) {
      if (x.pid == w.pid) {
        x.retiring = true;
        ::kill(w.pid, SIGTERM); // drains, then exits
      }
    }
  }
}

int Supervisor::run() {
  sigset_t set = supervisedSignals();
  sigprocmask(SIG_BLOCK, &set, nullptr);
  if (!bindSockets()) {
    return 1;
  }
  POUNCE_LOG(Main, Info, "supervisor pid %d: starting %d worker process%s", getpid(),
             options_.workers, options_.workers == 1 ? "" : "es");
  for (uint32_t id = 0; id < options_.workers; ++id) {
    int ready_fd;
    const pid_t pid = spawn(id, &ready_fd);
    if (pid < 0) {
      std::fprintf(stderr, "pounce: cannot fork: %s\n", std::strerror(errno));
      stopAll(SIGKILL);
      return 1;
    }
    workers_.push_back({id, pid, false});
    if (!waitReady(pid, ready_fd)) {
      std::fprintf(stderr, "pounce: worker %u failed to start\n", id);
      stopping_ = true;
      stopAll(SIGKILL);
      while (alive() > 0 && ::waitpid(-1, nullptr, 0) > 0) {
        reap();
        workers_.clear();
      }
      return 1;
    }
  }
  POUNCE_LOG(Main, Info, "all %d workers ready", options_.workers);
  if (options_.reload) {
    watcher_ = std::make_unique<FileWatcher>(options_.reload_dirs, options_.reload_endings);
    std::string dirs;
    for (const auto& d : options_.reload_dirs) {
      dirs += (dirs.empty() ? "" : ", ") + d;
    }
    POUNCE_LOG(Main, Info, "reload: watching %s", dirs);
  }
  int signals = 0;
  std::chrono::steady_clock::time_point change_seen{};
  std::string changed_path;
  while (true) {
    if (stopping_ && workers_.empty()) {
      break;
    }
    timespec timeout{0, 100 * 1000 * 1000};
    siginfo_t info;
    const int sig = sigtimedwait(&set, &info, &timeout);
    if (sig == SIGCHLD) {
      reap();
    } else if (sig == SIGTERM || sig == SIGINT) {
      if (++signals > 1) {
        POUNCE_LOG(Main, Warning, "second signal: stopping the workers now");
        stopAll(SIGKILL);
        exit_code_ = 1;
      } else {
        POUNCE_LOG(Main, Info, "%s: draining the workers", sig == SIGINT ? "SIGINT" : "SIGTERM");
        stopping_ = true;
        stopAll(SIGTERM);
      }
    } else if (sig == SIGHUP && !stopping_) {
      rollingRestart("SIGHUP");
    }
    reap();
    if (watcher_ && !stopping_) {
      const std::string path = watcher_->poll();
      if (!path.empty()) {
        if (changed_path.empty()) {
          changed_path = path;
        }
        change_seen = std::chrono::steady_clock::now();
      }
      if (!changed_path.empty() &&
          std::chrono::steady_clock::now() - change_seen >= options_.reload_delay) {
        rollingRestart(cat(changed_path, " changed"));
        changed_path.clear();
      }
    }
  }
  POUNCE_LOG(Main, Info, "supervisor: all workers stopped");
  return failed_ ? 1 : exit_code_;
}

} // namespace pounce::server
