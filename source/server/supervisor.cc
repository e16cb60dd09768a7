#include "source/server/supervisor.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "source/common/logger.h"
#include "source/common/strings.h"
#include "source/network/listen_socket.h"
#include "source/server/admin/stats_snapshot.h"

namespace pounce::server {

namespace {

constexpr std::chrono::milliseconds kReadTimeout{5000};
constexpr std::chrono::milliseconds kCommitTimeout{30000};

sigset_t supervisedSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGUSR1);
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

// In a new worker: every descriptor the supervisor holds (the admin listener and its
// connections, other workers' sockets and control channels, its event loop) is closed;
// only `keep` stays.
void closeInheritedFds(const std::set<int>& keep) {
  std::vector<int> open;
  if (DIR* dir = ::opendir("/proc/self/fd")) {
    const int own = ::dirfd(dir);
    while (dirent* entry = ::readdir(dir)) {
      uint64_t fd;
      if (parseUint(entry->d_name, fd) && static_cast<int>(fd) != own) {
        open.push_back(static_cast<int>(fd));
      }
    }
    ::closedir(dir);
  }
  for (int fd : open) {
    if (fd > 2 && keep.count(fd) == 0) {
      ::close(fd);
    }
  }
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) {
    out += out.empty() ? i : ", " + i;
  }
  return out;
}

} // namespace

Supervisor::Supervisor(Options options, Bootstrap bootstrap,
                       std::shared_ptr<config::ConfigErrors> marks, WorkerMain worker_main)
    : options_(std::move(options)),
      dispatcher_(std::make_unique<event::Dispatcher>("supervisor", RealTimeSource::instance())),
      worker_main_(std::move(worker_main)), config_(bootstrap, options_.config_path),
      bootstrap_(std::move(bootstrap)), marks_(std::move(marks)),
      start_time_(RealTimeSource::instance().monotonicTime()) {
  bootstrap_version_ = config_.version();
  bootstrap_chain_versions_ = config_.chainVersions();
}

Supervisor::~Supervisor() {
  alive_.reset();
  signal_event_.reset();
  if (signal_fd_ >= 0) {
    ::close(signal_fd_);
  }
  children_.clear();
  for (auto& l : bound_) {
    closeListener(l);
  }
}

void Supervisor::closeListener(BoundListener& listener) {
  for (auto& worker : listener.fds) {
    for (int fd : worker) {
      ::close(fd);
    }
  }
  listener.fds.clear();
  if (listener.pipe_inode != 0) {
    network::removeSocketFile(listener.spec.address, listener.pipe_inode);
    listener.pipe_inode = 0;
  }
}

bool Supervisor::bindFor(const Bootstrap& bootstrap, std::vector<BoundListener>& out,
                         config::ConfigErrors& errors) {
  const auto specs = listenSpecs(bootstrap, options_.config_dir);
  for (size_t li = 0; li < specs.size(); ++li) {
    const ListenSpec& spec = specs[li];
    // Same address as a bound listener (port 0 never matches: it means a new port): keep
    // its sockets, and with them the connections waiting in their queues.
    auto same = std::find_if(bound_.begin(), bound_.end(), [&](const BoundListener& b) {
      return !b.fds.empty() && b.spec.address.asString() == spec.address.asString() &&
             (spec.address.isPipe() || spec.address.port() != 0);
    });
    if (same == bound_.end()) {
      // The listener kept its name and port 0: keep its (kernel-chosen) port too.
      same = std::find_if(bound_.begin(), bound_.end(), [&](const BoundListener& b) {
        return !b.fds.empty() && b.spec.name == spec.name && spec.address.isIp() &&
               spec.address.port() == 0 && b.spec.address.isIp() &&
               b.spec.address.ip() == spec.address.ip();
      });
    }
    if (same != bound_.end()) {
      BoundListener kept;
      kept.spec = same->spec;
      kept.spec.name = spec.name;
      kept.fds = same->fds; // shared with bound_ until the change commits
      kept.pipe_inode = same->pipe_inode;
      out.push_back(std::move(kept));
      continue;
    }
    BoundListener bound;
    bound.spec = spec;
    bound.fds.assign(options_.workers, {});
    auto fail = [&](const absl::Status& status) {
      errors.add(cat("listeners[", li, "].address"), std::string(status.message()));
      closeListener(bound);
    };
    if (spec.address.isPipe()) {
      auto fd =
          network::createListenSocket(spec.address, static_cast<int>(spec.backlog), spec.pipe_mode);
      if (!fd.ok()) {
        fail(fd.status());
        return false;
      }
      bound.pipe_inode = network::socketFileInode(spec.address);
      for (uint32_t w = 0; w < options_.workers; ++w) {
        bound.fds[w].push_back(w == 0 ? *fd : ::dup(*fd));
      }
      out.push_back(std::move(bound));
      continue;
    }
    for (uint32_t w = 0; w < options_.workers; ++w) {
      for (uint32_t t = 0; t < options_.concurrency; ++t) {
        auto fd =
            network::createListenSocket(bound.spec.address, static_cast<int>(spec.backlog), 0);
        if (!fd.ok()) {
          fail(fd.status());
          return false;
        }
        if (bound.spec.address.port() == 0) {
          bound.spec.address = network::Address::local(*fd); // the kernel's port, for everyone
        }
        bound.fds[w].push_back(*fd);
      }
    }
    out.push_back(std::move(bound));
  }
  return true;
}

bool Supervisor::bindAll() {
  config::ConfigErrors errors(options_.config_path.empty() ? "command line" : options_.config_path);
  std::vector<BoundListener> bound;
  const auto specs = listenSpecs(bootstrap_, options_.config_dir);
  bool free = true;
  std::set<std::string> seen; // resolved addresses ("localhost:80" and "127.0.0.1:80" meet)
  for (size_t li = 0; li < specs.size(); ++li) {
    const network::Address& address = specs[li].address;
    if (address.isIp() && address.port() != 0 && !seen.insert(address.asString()).second) {
      errors.add(cat("listeners[", li, "].address"),
                 cat("address ", address.asString(), " is used by another listener"));
      free = false;
    } else if (auto status = network::checkAddressFree(address); !status.ok()) {
      errors.add(cat("listeners[", li, "].address"), std::string(status.message()));
      free = false;
    }
  }
  if (!free || !bindFor(bootstrap_, bound, errors)) {
    for (auto& l : bound) {
      closeListener(l);
    }
    for (const auto& e : errors.entries()) {
      std::fprintf(stderr, "pounce: %s\n", e.problem.c_str());
    }
    return false;
  }
  bound_ = std::move(bound);
  return true;
}

std::vector<std::vector<int>> Supervisor::socketsFor(uint32_t worker) const {
  std::vector<std::vector<int>> out;
  for (const auto& l : bound_) {
    out.push_back(l.fds[worker]);
  }
  return out;
}

Supervisor::Child* Supervisor::find(pid_t pid) {
  for (auto& c : children_) {
    if (c->pid == pid) {
      return c.get();
    }
  }
  return nullptr;
}

std::vector<Supervisor::Child*> Supervisor::ready() {
  std::vector<Child*> out;
  for (auto& c : children_) {
    if (c->state == Child::State::Ready && c->control != nullptr && c->control->open()) {
      out.push_back(c.get());
    }
  }
  return out;
}

void Supervisor::spawn(uint32_t id, std::function<void(bool)> on_started) {
  if (stopping_ || drain_ == Drain::Stop) {
    POUNCE_LOG(Main, Warning, "not starting worker %d: the listeners are drained", id);
    on_started(false);
    return;
  }
  int ready[2];
  int control[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) {
    POUNCE_LOG(Main, Error, "cannot create a pipe: %s", std::strerror(errno));
    on_started(false);
    return;
  }
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, control) != 0) {
    POUNCE_LOG(Main, Error, "cannot create a socketpair: %s", std::strerror(errno));
    ::close(ready[0]);
    ::close(ready[1]);
    on_started(false);
    return;
  }
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    POUNCE_LOG(Main, Error, "cannot fork a worker: %s", std::strerror(errno));
    for (int fd : {ready[0], ready[1], control[0], control[1]}) {
      ::close(fd);
    }
    on_started(false);
    return;
  }
  if (pid == 0) {
    // The worker: default signal handling, only its own descriptors.
    WorkerStart start;
    start.id = id;
    start.sockets = socketsFor(id);
    start.ready_fd = ready[1];
    start.control_fd = control[1];
    start.bootstrap = &bootstrap_;
    start.marks = marks_;
    start.config_version = bootstrap_version_;
    start.chain_versions = bootstrap_chain_versions_;
    start.health_check_failed = health_failed_;
    start.draining = drain_ == Drain::Graceful;
    std::set<int> keep = {ready[1], control[1]};
    for (const auto& listener : start.sockets) {
      keep.insert(listener.begin(), listener.end());
    }
    closeInheritedFds(keep);
    for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGPIPE}) {
      ::signal(sig, SIG_DFL);
    }
    // (Ignored until the worker serves and handles it: a rotation during its start-up,
    // `systemctl kill -s USR1` reaching every process, must not end it.)
    ::signal(SIGUSR1, SIG_IGN);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    log::setProcessTag(cat("w", id));
    const int code = worker_main_(std::move(start));
    std::fflush(stdout);
    std::fflush(stderr);
    ::_exit(code);
  }
  ::close(ready[1]);
  ::close(control[1]);
  auto child = std::make_unique<Child>();
  child->id = id;
  child->pid = pid;
  child->ready_fd = ready[0];
  child->on_started = std::move(on_started);
  Child* raw = child.get();
  child->ready_event = dispatcher_->createFileEvent(
      ready[0], [this, raw](uint32_t) { onReadyPipe(*raw); }, /*edge=*/false,
      event::FileReadyType::Read);
  child->startup_timer = dispatcher_->createTimer([this, raw] {
    POUNCE_LOG(Main, Error, "worker %d (pid %d) did not become ready within %ds: stopping it",
               raw->id, raw->pid, static_cast<int>(options_.startup_timeout.count() / 1000));
    ::kill(raw->pid, SIGKILL);
    started(*raw, false);
  });
  child->startup_timer->enableTimer(options_.startup_timeout);
  child->control =
      std::make_unique<admin::ControlChannel>(*dispatcher_, control[0], nullptr, nullptr);
  children_.push_back(std::move(child));
}

void Supervisor::onReadyPipe(Child& child) {
  char c;
  const ssize_t n = ::read(child.ready_fd, &c, 1);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
    return;
  }
  // A byte: serving. EOF: it died before it was ready (its error is on stderr already).
  started(child, n == 1);
}

void Supervisor::started(Child& child, bool ok) {
  // Called from these events' own callbacks: free them once the callback returned.
  std::shared_ptr<event::FileEvent> ready_event(std::move(child.ready_event));
  std::shared_ptr<event::Timer> startup_timer(std::move(child.startup_timer));
  dispatcher_->defer([ready_event, startup_timer, fd = child.ready_fd]() mutable {
    ready_event.reset();
    if (fd >= 0) {
      ::close(fd);
    }
  });
  child.ready_fd = -1;
  if (child.state == Child::State::Starting) {
    if (ok) {
      child.state = Child::State::Ready;
      child.served = true;
      syncState(child);
    } else {
      // Its exit is expected now: whoever started it decides what a failed start means
      // (a reload keeps the old workers; a crash restart counts it as another crash).
      child.state = Child::State::Retiring;
    }
  }
  if (auto cb = std::move(child.on_started)) {
    child.on_started = nullptr;
    cb(ok);
  }
}

void Supervisor::releaseSockets() {
  // The workers keep their own copies while they drain; once they closed them too, new
  // connections are refused instead of waiting in a queue nobody accepts from.
  for (auto& l : bound_) {
    closeListener(l);
  }
}

void Supervisor::tellStarting(const admin::ControlRequest& request) {
  // A starting worker may already accept connections before its ready byte arrives: it
  // reads this first thing once its loop runs (the answer is not waited for).
  for (auto& c : children_) {
    if (c->state == Child::State::Starting && c->control != nullptr) {
      c->control->call(request, options_.startup_timeout,
                       [](std::optional<admin::ControlResponse>) {});
    }
  }
}

void Supervisor::syncState(Child& child) {
  // It was forked with the state of that moment; an operator may have changed the health
  // check, the drain or log levels while it started.
  auto ignore = [](std::optional<admin::ControlResponse>) {};
  admin::ControlRequest health;
  health.mutable_set_health()->set_failed(health_failed_);
  child.control->call(health, kReadTimeout, ignore);
  if (drain_ != Drain::None) {
    admin::ControlRequest drain;
    drain.mutable_drain()->set_graceful(drain_ == Drain::Graceful);
    child.control->call(drain, kReadTimeout, ignore);
  }
  admin::ControlRequest levels;
  for (int i = 0; i < static_cast<int>(log::Component::Count); ++i) {
    const auto c = static_cast<log::Component>(i);
    auto* l = levels.mutable_set_log_levels()->add_levels();
    l->set_component(std::string(log::componentName(c)));
    l->set_level(std::string(log::levelName(log::level(c))));
  }
  child.control->call(levels, kReadTimeout, ignore);
}

void Supervisor::stopAll(int sig) {
  releaseSockets();
  for (auto& c : children_) {
    if (c->pid > 0) {
      c->state = Child::State::Retiring;
      ::kill(c->pid, sig);
    }
  }
}

void Supervisor::maybeExit() {
  if (stopping_ && children_.empty()) {
    dispatcher_->exit();
  }
}

void Supervisor::onCrash(uint32_t id, const std::string& what) {
  const auto now = std::chrono::steady_clock::now();
  crashes_.push_back(now);
  while (!crashes_.empty() && now - crashes_.front() > options_.restart_window) {
    crashes_.pop_front();
  }
  if (crashes_.size() > options_.max_restarts) {
    POUNCE_LOG(Main, Critical,
               "worker %d %s; %d crashes within %ds exceed the restart budget (%d): stopping", id,
               what, crashes_.size(), static_cast<int>(options_.restart_window.count() / 1000),
               options_.max_restarts);
    failed_ = true;
    exit_code_ = 1;
    stopping_ = true;
    stopAll(SIGTERM);
    maybeExit();
    return;
  }
  if (drain_ == Drain::Stop) {
    POUNCE_LOG(Main, Warning, "worker %d %s; not restarted: the listeners are drained", id, what);
    return;
  }
  // Back off a little more with each recent crash.
  const auto backoff = std::chrono::milliseconds(
      std::min<int64_t>(5000, 100LL << std::min<size_t>(crashes_.size() - 1, 6)));
  POUNCE_LOG(Main, Warning, "worker %d %s; restarting it in %dms (%d/%d in the window)", id, what,
             backoff.count(), crashes_.size(), options_.max_restarts);
  auto timer = dispatcher_->createTimer([this, id] {
    if (stopping_) {
      return;
    }
    queue_.push([this, id](std::function<void()> done) {
      if (stopping_) {
        done();
        return;
      }
      spawn(id, [this, id, done](bool ok) {
        // (Refused because the listeners were drained meanwhile: not a crash.)
        if (!ok && !stopping_ && drain_ != Drain::Stop) {
          onCrash(id, "did not start again");
        }
        done();
      });
    });
  });
  timer->enableTimer(backoff);
  backoff_timers_.erase(std::remove_if(backoff_timers_.begin(), backoff_timers_.end(),
                                       [](const event::TimerPtr& t) { return !t->enabled(); }),
                        backoff_timers_.end());
  backoff_timers_.push_back(std::move(timer));
}

void Supervisor::reap() {
  while (true) {
    int status;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) {
      break;
    }
    auto it = std::find_if(children_.begin(), children_.end(),
                           [pid](const auto& c) { return c->pid == pid; });
    if (it == children_.end()) {
      continue;
    }
    std::unique_ptr<Child> child = std::move(*it);
    children_.erase(it);
    retireStats(pid);
    const Child::State state = child->state;
    if (child->on_started) {
      if (stopping_) {
        POUNCE_LOG(Main, Info, "worker %d (pid %d) %s before it was ready", child->id, pid,
                   describeExit(status));
      } else {
        POUNCE_LOG(Main, Error, "worker %d (pid %d) %s before it was ready", child->id, pid,
                   describeExit(status));
      }
      started(*child, false);
    } else if (state == Child::State::Retiring || stopping_) {
      // (One stopped while it started is not a failed exit: its stop was asked for.)
      if (stopping_ && child->served && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        exit_code_ = 1;
      }
      POUNCE_LOG(Main, Debug, "worker %d (pid %d) %s", child->id, pid, describeExit(status));
    } else {
      onCrash(child->id, describeExit(status));
    }
  }
  maybeExit();
}

void Supervisor::onSignals() {
  signalfd_siginfo info;
  while (::read(signal_fd_, &info, sizeof(info)) == sizeof(info)) {
    const int sig = static_cast<int>(info.ssi_signo);
    if (sig == SIGCHLD) {
      reap();
    } else if (sig == SIGTERM || sig == SIGINT) {
      if (++signals_ > 1) {
        POUNCE_LOG(Main, Warning, "second signal: stopping the workers now");
        stopAll(SIGKILL);
        exit_code_ = 1;
      } else {
        POUNCE_LOG(Main, Info, "%s: draining the workers", sig == SIGINT ? "SIGINT" : "SIGTERM");
        stopping_ = true;
        stopAll(SIGTERM);
        maybeExit();
      }
    } else if (sig == SIGHUP && !stopping_) {
      reload("SIGHUP", [](admin::ApplyResult) {});
    } else if (sig == SIGUSR1) {
      reopenLogs(
          [](std::vector<std::string> problems) { admin::logReopened("SIGUSR1", problems); });
    }
  }
}

int Supervisor::run() {
  sigset_t set = supervisedSignals();
  sigprocmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  signal_fd_ = ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (signal_fd_ < 0) {
    std::fprintf(stderr, "pounce: signalfd: %s\n", std::strerror(errno));
    return 1;
  }
  signal_event_ = dispatcher_->createFileEvent(
      signal_fd_, [this](uint32_t) { onSignals(); }, /*edge=*/false, event::FileReadyType::Read);
  if (!bindAll()) {
    return 1;
  }
  POUNCE_LOG(Main, Info, "supervisor pid %d: starting %d worker process%s", getpid(),
             options_.workers, options_.workers == 1 ? "" : "es");
  queue_.push([this](std::function<void()> done) { startup(std::move(done)); });
  dispatcher_->run();
  backoff_timers_.clear();
  source_timer_.reset();
  config_watcher_.reset();
  POUNCE_LOG(Main, Info, "supervisor: all workers stopped");
  return failed_ ? 1 : exit_code_;
}

void Supervisor::startup(std::function<void()> done) { startWorker(0, std::move(done)); }

void Supervisor::startWorker(uint32_t id, std::function<void()> done) {
  if (id == options_.workers) {
    POUNCE_LOG(Main, Info, "all %d workers ready", options_.workers);
    if (options_.reload) {
      source_watcher_ =
          std::make_unique<FileWatcher>(options_.reload_dirs, options_.reload_endings);
      POUNCE_LOG(Main, Info, "reload: watching %s", joined(options_.reload_dirs));
      source_timer_ = dispatcher_->createTimer([this] {
        const std::string path = source_watcher_->poll();
        if (!path.empty()) {
          changed_path_ = changed_path_.empty() ? path : changed_path_;
          change_seen_ = std::chrono::steady_clock::now();
        }
        if (!changed_path_.empty() && !stopping_ &&
            std::chrono::steady_clock::now() - change_seen_ >= options_.reload_delay) {
          const std::string why = cat(changed_path_, " changed");
          changed_path_.clear();
          queue_.push([this, why](std::function<void()> finished) {
            rollingRestart(why, [finished](bool, size_t) { finished(); });
          });
        }
        source_timer_->enableTimer(std::chrono::milliseconds(100));
      });
      source_timer_->enableTimer(std::chrono::milliseconds(100));
    }
    if (options_.watch_config && !options_.config_path.empty()) {
      config_watcher_ =
          std::make_unique<admin::ConfigWatcher>(*dispatcher_, options_.config_path, [this] {
            reload("watch_config", [](admin::ApplyResult) {});
          });
    }
    done();
    return;
  }
  spawn(id, [this, id, done](bool ok) {
    if (!ok && stopping_) {
      // SIGTERM (or SIGINT) during start-up: a stop that was asked for, not a failure.
      POUNCE_LOG(Main, Info, "stopped during start-up");
      maybeExit();
      done();
      return;
    }
    if (!ok && drain_ == Drain::Stop) {
      // The listeners were drained during start-up: the workers that serve stay (drained,
      // as the admin API asked); the others are not started.
      POUNCE_LOG(Main, Info, "listeners drained during start-up: workers %d to %d not started", id,
                 options_.workers - 1);
      done();
      return;
    }
    if (!ok) {
      std::fprintf(stderr, "pounce: worker %u failed to start\n", id);
      failed_ = true;
      stopping_ = true;
      stopAll(SIGKILL);
      maybeExit();
      done();
      return;
    }
    startWorker(id + 1, done);
  });
}

void Supervisor::rollingRestart(std::string why, std::function<void(bool, size_t)> done) {
  POUNCE_LOG(Main, Info, "%s: replacing workers one at a time", why);
  auto ids = std::make_shared<std::vector<uint32_t>>();
  for (const auto& c : children_) {
    if (c->state == Child::State::Ready) {
      ids->push_back(c->id);
    }
  }
  std::sort(ids->begin(), ids->end());
  replaceNext(ids, 0, std::move(why), std::move(done));
}

void Supervisor::replaceNext(std::shared_ptr<std::vector<uint32_t>> ids, size_t next,
                             std::string why, std::function<void(bool, size_t)> done) {
  if (next == ids->size()) {
    POUNCE_LOG(Main, Info, "%s: %d worker%s replaced", why, ids->size(),
               ids->size() == 1 ? "" : "s");
    done(true, next);
    return;
  }
  if (stopping_) {
    done(false, next);
    return;
  }
  const uint32_t id = (*ids)[next];
  spawn(id, [this, ids, next, id, why, done](bool ok) {
    if (!ok) {
      POUNCE_LOG(Main, Error, "the new worker %d did not start; keeping the old one", id);
      done(false, next);
      return;
    }
    // The new worker serves: the old one with this id drains and exits.
    pid_t newest = -1;
    for (auto& c : children_) {
      if (c->id == id && c->state == Child::State::Ready) {
        newest = std::max(newest, c->pid);
      }
    }
    for (auto& c : children_) {
      if (c->id == id && c->pid != newest && c->state != Child::State::Retiring) {
        c->state = Child::State::Retiring;
        ::kill(c->pid, SIGTERM);
      }
    }
    replaceNext(ids, next + 1, why, done);
  });
}

void Supervisor::broadcast(const admin::ControlRequest& request, std::chrono::milliseconds timeout,
                           std::function<void(Responses)> done) {
  auto targets = ready();
  struct Gather {
    Responses responses;
    size_t left{0};
    std::function<void(Responses)> done;
  };
  auto gather = std::make_shared<Gather>();
  gather->responses.resize(targets.size());
  gather->left = targets.size();
  gather->done = std::move(done);
  if (targets.empty()) {
    gather->done({});
    return;
  }
  for (size_t i = 0; i < targets.size(); ++i) {
    targets[i]->control->call(request, timeout,
                              [gather, i](std::optional<admin::ControlResponse> response) {
                                gather->responses[i] = std::move(response);
                                if (--gather->left == 0) {
                                  gather->done(std::move(gather->responses));
                                }
                              });
  }
}

void Supervisor::stats(std::function<void(std::vector<admin::StatsSnapshotProto>)> done) {
  // Every worker with a control channel answers, draining ones too. The answer is merged
  // from each worker's latest report (the previous one for a worker busy with another call
  // or too slow to answer) and
  // what exited workers reported last: a counter here never goes back, which Prometheus
  // would read as a reset.
  struct Gather {
    std::vector<pid_t> pids;
    Responses responses;
    size_t left{0};
  };
  auto gather = std::make_shared<Gather>();
  std::vector<Child*> targets;
  for (auto& c : children_) {
    if (c->state == Child::State::Starting || c->control == nullptr || !c->control->open()) {
      continue;
    }
    if (c->control->outstanding() > 0 && last_stats_.count(c->pid) != 0) {
      // Busy with an earlier call (building a chain: importing an app can take a minute):
      // its previous report, rather than a scrape that waits for it.
      continue;
    }
    targets.push_back(c.get());
    gather->pids.push_back(c->pid);
  }
  gather->responses.resize(targets.size());
  gather->left = targets.size();
  auto finish = [this, alive = std::weak_ptr<char>(alive_), gather, done]() {
    if (alive.expired()) {
      return; // (the supervisor is gone: nobody waits for the answer)
    }
    for (size_t i = 0; i < gather->pids.size(); ++i) {
      auto& r = gather->responses[i];
      const pid_t pid = gather->pids[i];
      const bool running = std::any_of(children_.begin(), children_.end(),
                                       [pid](const auto& c) { return c->pid == pid; });
      if (!r || !r->ok() || !running) {
        continue; // (a worker reaped meanwhile counts with what it reported before)
      }
      // A worker's copy of the admin listener's series came with fork(): drop it, the
      // supervisor's own count is added below.
      for (auto& family : *r->mutable_stats()->mutable_families()) {
        auto* series = family.mutable_series();
        for (int j = series->size() - 1; j >= 0; --j) {
          const auto& labels = (*series)[j].label_values();
          if (family.label_names_size() > 0 && family.label_names(0) == "listener" &&
              !labels.empty() && labels[0] == "_admin") {
            series->DeleteSubrange(j, 1);
          }
        }
      }
      last_stats_[pid] = std::move(*r->mutable_stats());
    }
    std::vector<admin::StatsSnapshotProto> out;
    out.reserve(last_stats_.size() + 2);
    for (const auto& [pid, snapshot] : last_stats_) {
      out.push_back(snapshot);
    }
    if (retired_stats_.families_size() > 0) {
      out.push_back(retired_stats_);
    }
    out.push_back(admin::snapshotStats(stats::Store::global()));
    done(std::move(out));
  };
  if (targets.empty()) {
    finish();
    return;
  }
  admin::ControlRequest request;
  request.set_stats(true);
  for (size_t i = 0; i < targets.size(); ++i) {
    targets[i]->control->call(request, kReadTimeout,
                              [gather, i, finish](std::optional<admin::ControlResponse> response) {
                                gather->responses[i] = std::move(response);
                                if (--gather->left == 0) {
                                  finish();
                                }
                              });
  }
}

void Supervisor::retireStats(pid_t pid) {
  auto it = last_stats_.find(pid);
  if (it == last_stats_.end()) {
    return;
  }
  // Gauges (connections, requests in flight) ended with the process; counts stay.
  admin::StatsSnapshotProto counts;
  for (auto& family : *it->second.mutable_families()) {
    if (family.type() != admin::StatsSnapshotProto::GAUGE) {
      *counts.add_families() = std::move(family);
    }
  }
  last_stats_.erase(it);
  admin::mergeStats(retired_stats_, counts);
}

void Supervisor::status(std::function<void(std::vector<pounce::admin::v1::WorkerStatus>)> done) {
  admin::ControlRequest request;
  request.set_status(true);
  broadcast(request, kReadTimeout, [done](Responses responses) {
    std::vector<pounce::admin::v1::WorkerStatus> out;
    for (auto& r : responses) {
      if (r && r->ok()) {
        out.push_back(std::move(*r->mutable_status()));
      }
    }
    std::sort(out.begin(), out.end(),
              [](const auto& a, const auto& b) { return a.worker_id() < b.worker_id(); });
    done(std::move(out));
  });
}

void Supervisor::apply(CandidateFn make_candidate, std::string source,
                       std::shared_ptr<config::ConfigErrors> positions, admin::ApplyCallback done) {
  queue_.push([this, make_candidate = std::move(make_candidate), source = std::move(source),
               positions = std::move(positions),
               done = std::move(done)](std::function<void()> finished) mutable {
    auto answer = admin::finishChange(config_, source, done, finished);
    if (stopping_) {
      answer(admin::ApplyResult::failure(503, "the server is stopping"));
      return;
    }
    std::optional<Bootstrap> candidate = make_candidate(config_.current(), *positions);
    if (!candidate || !positions->empty()) {
      answer(
          admin::ApplyResult::invalid(*positions, "the configuration is invalid; nothing changed"));
      return;
    }
    auto restart_needed = admin::keepStartupFields(config_.current(), *candidate);
    const admin::ConfigDiff diff = admin::diffConfigs(config_.current(), *candidate);
    if (diff.empty()) {
      admin::ApplyResult result;
      result.message = "no change";
      result.version = config_.version();
      result.restart_needed = restart_needed;
      answer(std::move(result));
      return;
    }
    if (drain_ != Drain::None && !diff.chainsOnly()) {
      answer(admin::ApplyResult::draining(diff));
      return;
    }
    auto reply = [answer](admin::ApplyResult result) { answer(std::move(result)); };
    if (diff.chainsOnly()) {
      applyInPlace(std::move(*candidate), source, positions, restart_needed, reply, [] {});
    } else {
      applyByRestart(std::move(*candidate), source, positions, restart_needed, reply, [] {});
    }
  });
}

void Supervisor::reload(std::string source, admin::ApplyCallback done) {
  queue_.push([this, source = std::move(source),
               done = std::move(done)](std::function<void()> finished) mutable {
    auto answer = admin::finishChange(config_, source, done, finished);
    if (stopping_) {
      answer(admin::ApplyResult::failure(503, "the server is stopping"));
      return;
    }
    Bootstrap candidate = config_.current();
    auto positions = std::make_shared<config::ConfigErrors>(
        options_.config_path.empty() ? "command line" : options_.config_path);
    std::vector<std::string> restart_needed;
    if (options_.reread) {
      auto reread = options_.reread(*positions);
      if (!reread.ok()) {
        if (positions->empty()) {
          positions->add("", std::string(reread.status().message()));
        }
        answer(
            admin::ApplyResult::invalid(*positions, "the config file is invalid; nothing changed"));
        return;
      }
      candidate = std::move(*reread);
      restart_needed = admin::keepStartupFields(config_.current(), candidate);
    }
    if (drain_ != Drain::None) {
      // Replacing the workers of a drained server would bring back accepting workers.
      answer(admin::ApplyResult::failure(
          503, "the server is draining: its workers are not replaced now; nothing changed"));
      return;
    }
    // A reload always replaces the workers (one at a time), so they import the app's code
    // afresh, as SIGHUP does for gunicorn; the config's changes come with them.
    applyByRestart(std::move(candidate), source, positions, restart_needed, answer, [] {});
  });
}

void Supervisor::applyByRestart(Bootstrap candidate, std::string source,
                                std::shared_ptr<config::ConfigErrors> positions,
                                std::vector<std::string> restart_needed, admin::ApplyCallback done,
                                std::function<void()> finished) {
  const MonotonicTime started = RealTimeSource::instance().monotonicTime();
  const admin::ConfigDiff diff = admin::diffConfigs(config_.current(), candidate);
  // New addresses get their sockets now, before any old one closes.
  std::vector<BoundListener> bound;
  if (!bindFor(candidate, bound, *positions)) {
    for (auto& l : bound) {
      const bool shared = std::any_of(bound_.begin(), bound_.end(), [&](const BoundListener& b) {
        return !b.fds.empty() && !l.fds.empty() && b.fds[0] == l.fds[0];
      });
      if (!shared) {
        closeListener(l);
      }
    }
    done(admin::ApplyResult::invalid(*positions, "a new listener cannot bind; nothing changed"));
    finished();
    return;
  }
  std::vector<BoundListener> previous = std::move(bound_);
  Bootstrap previous_bootstrap = bootstrap_;
  auto previous_marks = marks_;
  const uint64_t previous_version = bootstrap_version_;
  bound_ = std::move(bound);
  bootstrap_ = candidate;
  marks_ = positions;
  bootstrap_version_ = config_.version() + 1;
  bootstrap_chain_versions_ = config_.chainVersionsAfter(candidate, bootstrap_version_);
  if (options_.config_path.empty() || !diff.empty()) {
    admin::applyLoggingConfig(candidate.logging());
  }
  rollingRestart(source, [this, candidate = std::move(candidate), source, diff, restart_needed,
                          started, previous = std::move(previous),
                          previous_bootstrap = std::move(previous_bootstrap), previous_marks,
                          previous_version, done, finished](bool ok, size_t replaced) mutable {
    auto is_current = [this](const BoundListener& l) {
      return std::any_of(bound_.begin(), bound_.end(), [&](const BoundListener& b) {
        return !b.fds.empty() && !l.fds.empty() && b.fds[0] == l.fds[0];
      });
    };
    if (!ok && replaced == 0) {
      // Nothing changed hands: back to the previous config and sockets.
      for (auto& l : bound_) {
        const bool kept =
            std::any_of(previous.begin(), previous.end(), [&](const BoundListener& b) {
              return !b.fds.empty() && !l.fds.empty() && b.fds[0] == l.fds[0];
            });
        if (!kept) {
          closeListener(l);
        }
      }
      bound_ = std::move(previous);
      bootstrap_ = std::move(previous_bootstrap);
      marks_ = previous_marks;
      bootstrap_version_ = previous_version;
      bootstrap_chain_versions_ = config_.chainVersions();
      done(admin::ApplyResult::failure(
          500, "a new worker did not start with this config (see the log); the old workers "
               "keep serving, nothing changed"));
      finished();
      return;
    }
    // The old workers have their own copies: the supervisor's sockets of listeners that
    // are gone can close now.
    for (auto& l : previous) {
      if (!is_current(l)) {
        closeListener(l);
      }
    }
    admin::ApplyResult result;
    std::vector<std::string> changes = diff.describe();
    changes.push_back(cat(replaced, " worker process", replaced == 1 ? "" : "es", " replaced"));
    result.version = config_.record(candidate, source, changes);
    result.changes = changes;
    result.acknowledged = static_cast<uint32_t>(replaced);
    result.acknowledged_by = "new worker processes";
    result.restart_needed = restart_needed;
    result.took = std::chrono::duration_cast<std::chrono::microseconds>(
        RealTimeSource::instance().monotonicTime() - started);
    if (ok) {
      result.message = "applied";
    } else {
      result.status = 500;
      result.message = cat("only ", replaced,
                           " worker(s) were replaced: a new worker did not "
                           "start (see the log)");
    }
    done(std::move(result));
    finished();
  });
}

void Supervisor::applyInPlace(Bootstrap candidate, std::string source,
                              std::shared_ptr<config::ConfigErrors> positions,
                              std::vector<std::string> restart_needed, admin::ApplyCallback done,
                              std::function<void()> finished) {
  const MonotonicTime started = RealTimeSource::instance().monotonicTime();
  const admin::ConfigDiff diff = admin::diffConfigs(config_.current(), candidate);
  const uint64_t version = config_.version() + 1;
  admin::ControlRequest prepare;
  prepare.mutable_prepare()->set_version(version);
  for (int i = 0; i < candidate.listeners_size(); ++i) {
    const std::string name = listenerName(candidate.listeners(i), i);
    if (std::find(diff.chains.begin(), diff.chains.end(), name) == diff.chains.end()) {
      continue;
    }
    auto* update = prepare.mutable_prepare()->add_updates();
    update->set_listener(name);
    update->set_path(cat("listeners[", i, "].filter_chain"));
    *update->mutable_filters() = candidate.listeners(i).filter_chain();
  }
  const size_t workers = ready().size();
  if (workers == 0) {
    done(admin::ApplyResult::failure(503, "no worker process is running to take the change"));
    finished();
    return;
  }
  // Phase 1: every worker builds the chains (filter configs, files, app imports).
  broadcast(prepare, options_.startup_timeout,
            [this, candidate = std::move(candidate), source, positions, restart_needed, diff,
             version, started, done, finished](Responses responses) {
              bool all_ok = !responses.empty();
              std::string failure;
              bool reported = false;
              for (const auto& r : responses) {
                if (r && r->ok()) {
                  continue;
                }
                all_ok = false;
                if (!r) {
                  failure = "a worker process did not answer";
                } else if (!reported && r->errors_size() > 0) {
                  reported = true;
                  for (const auto& e : r->errors()) {
                    positions->add(e.path(), e.problem());
                  }
                } else if (!r->message().empty()) {
                  failure = r->message();
                }
              }
              if (!all_ok) {
                admin::ControlRequest abort;
                abort.mutable_abort()->set_version(version);
                broadcast(abort, kReadTimeout, [](Responses) {});
                done(reported ? admin::ApplyResult::invalid(
                                    *positions, "the filter chain does not build; nothing "
                                                "changed")
                              : admin::ApplyResult::failure(500, failure + "; nothing changed"));
                finished();
                return;
              }
              // Phase 2: all built it; every worker publishes it. New workers start with it from
              // now on.
              bootstrap_ = candidate;
              bootstrap_version_ = version;
              bootstrap_chain_versions_ = config_.chainVersionsAfter(candidate, version);
              marks_ = positions;
              admin::ControlRequest commit;
              commit.mutable_commit()->set_version(version);
              broadcast(commit, kCommitTimeout,
                        [this, candidate, source, restart_needed, diff, started, done,
                         finished](Responses responses) {
                          uint32_t acks = 0;
                          for (const auto& r : responses) {
                            acks += r && r->ok() ? 1 : 0;
                          }
                          admin::ApplyResult result;
                          result.version = config_.record(candidate, source, diff.describe());
                          result.message = "applied";
                          result.changes = diff.describe();
                          result.acknowledged = acks;
                          result.acknowledged_by = "worker processes";
                          result.restart_needed = restart_needed;
                          result.took = std::chrono::duration_cast<std::chrono::microseconds>(
                              RealTimeSource::instance().monotonicTime() - started);
                          if (acks != responses.size()) {
                            POUNCE_LOG(Main, Warning,
                                       "%s: %d of %d workers did not confirm version %d (a worker "
                                       "that went away restarts with it)",
                                       source, responses.size() - acks, responses.size(),
                                       result.version);
                          }
                          done(std::move(result));
                          finished();
                        });
            });
}

void Supervisor::setHealthCheckFailed(bool failed, std::function<void()> done) {
  health_failed_ = failed;
  admin::ControlRequest request;
  request.mutable_set_health()->set_failed(failed);
  tellStarting(request);
  broadcast(request, kReadTimeout, [done](Responses) { done(); });
}

void Supervisor::drain(bool graceful, std::function<void()> done) {
  if (drain_ == Drain::Stop) {
    done();
    return;
  }
  drain_ = graceful ? Drain::Graceful : Drain::Stop;
  if (!graceful) {
    releaseSockets(); // no worker will be started again
  }
  admin::ControlRequest request;
  request.mutable_drain()->set_graceful(graceful);
  tellStarting(request);
  broadcast(request, kReadTimeout, [done](Responses) { done(); });
}

void Supervisor::reopenLogs(std::function<void(std::vector<std::string>)> done) {
  admin::ControlRequest request;
  request.set_reopen_logs(true);
  broadcast(request, kReadTimeout, [done](Responses responses) {
    std::vector<std::string> problems;
    for (const auto& r : responses) {
      if (!r) {
        problems.push_back("a worker process did not answer");
      } else if (!r->ok()) {
        problems.push_back(r->message());
      }
    }
    done(std::move(problems));
  });
}

void Supervisor::quit() {
  if (stopping_) {
    return;
  }
  POUNCE_LOG(Main, Info, "draining the workers, then exiting");
  stopping_ = true;
  stopAll(SIGTERM);
  maybeExit();
}

void Supervisor::setLogLevel(std::string_view component, log::Level level) {
  log::Component c;
  if (component.empty()) {
    log::setLevel(level);
  } else if (log::parseComponent(component, c)) {
    log::setLevel(c, level);
  }
  admin::ControlRequest request;
  auto* l = request.mutable_set_log_levels()->add_levels();
  l->set_component(std::string(component));
  l->set_level(std::string(log::levelName(level)));
  broadcast(request, kReadTimeout, [](Responses) {});
}

} // namespace pounce::server
