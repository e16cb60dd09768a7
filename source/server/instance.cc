#include "source/server/instance.h"

#include <event2/event.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>

#include "source/common/logger.h"
#include "source/common/strings.h"
#include "source/common/version.h"
#include "source/network/listen_socket.h"
#include "source/server/cpu.h"

namespace pounce::server {

Instance::Instance(Bootstrap bootstrap, std::string config_path,
                   std::shared_ptr<config::ConfigErrors> marks)
    : bootstrap_(std::move(bootstrap)), config_path_(std::move(config_path)),
      marks_(std::move(marks)),
      main_dispatcher_(std::make_unique<event::Dispatcher>("main", RealTimeSource::instance())),
      start_time_(RealTimeSource::instance().monotonicTime()) {
  concurrency_ = bootstrap_.concurrency() == 0 ? availableCpus() : bootstrap_.concurrency();
}

Instance::~Instance() {
  for (auto* ev : signal_events_) {
    event_free(ev);
  }
  workers_.clear();
  for (size_t i = 0; i < listen_fds_.size() && i < listeners_.size(); ++i) {
    if (listeners_[i]->config.address.isPipe()) {
      for (int fd : listen_fds_[i]) {
        ::close(fd);
      }
      if (i < pipe_inodes_.size()) {
        network::removeSocketFile(listeners_[i]->config.address, pipe_inodes_[i]);
      }
    }
  }
}

absl::Status Instance::build(bool validate_only) {
  std::string dir;
  if (!config_path_.empty()) {
    dir = std::filesystem::path(config_path_).parent_path().string();
    if (dir.empty()) {
      dir = ".";
    }
  }
  ConfigBuilder builder(*this, dir, validate_only);
  if (marks_ == nullptr) {
    marks_ = std::make_shared<config::ConfigErrors>(config_path_.empty() ? "command line"
                                                                         : config_path_);
  }
  config::ConfigErrors& errors = *marks_;
  auto configs = builder.buildListeners(bootstrap_, errors);
  if (!errors.empty()) {
    return errors.status();
  }
  for (auto& c : configs) {
    auto shared = std::make_shared<ListenerShared>();
    shared->stats = http::ListenerStats::create(stats(), c.name);
    shared->config = std::move(c);
    listeners_.push_back(std::move(shared));
  }
  return absl::OkStatus();
}

absl::Status Instance::bind() {
  if (!inherited_fds_.empty()) {
    if (inherited_fds_.size() != listeners_.size()) {
      return absl::InternalError("inherited sockets do not match the listeners");
    }
    for (size_t i = 0; i < listeners_.size(); ++i) {
      auto& config = listeners_[i]->config;
      const size_t want = config.address.isPipe() ? 1 : concurrency_;
      if (inherited_fds_[i].size() != want) {
        return absl::InternalError("inherited sockets do not match the I/O threads");
      }
      if (!config.address.isPipe() && config.address.port() == 0) {
        config.address = network::Address::local(inherited_fds_[i][0]);
      }
      pipe_inodes_.push_back(0); // the supervisor owns (and removes) socket files
    }
    listen_fds_ = std::move(inherited_fds_);
    return absl::OkStatus();
  }
  for (auto& l : listeners_) {
    std::vector<int> fds;
    auto& config = l->config;
    if (config.address.isPipe()) {
      auto fd = network::createListenSocket(config.address, static_cast<int>(config.backlog),
                                            config.pipe_mode);
      if (!fd.ok()) {
        return fd.status();
      }
      fds.push_back(*fd);
      pipe_inodes_.push_back(network::socketFileInode(config.address));
    } else {
      pipe_inodes_.push_back(0);
      for (uint32_t i = 0; i < concurrency_; ++i) {
        auto fd = network::createListenSocket(config.address, static_cast<int>(config.backlog), 0);
        if (!fd.ok()) {
          for (int open : fds) {
            ::close(open);
          }
          return fd.status();
        }
        if (i == 0 && config.address.port() == 0) {
          // The kernel chose a port: every other socket must use the same one.
          config.address = network::Address::local(*fd);
        }
        fds.push_back(*fd);
      }
    }
    listen_fds_.push_back(std::move(fds));
  }
  return absl::OkStatus();
}

uint64_t Instance::activeConnections() const {
  uint64_t n = 0;
  for (const auto& w : workers_) {
    n += w->activeConnections();
  }
  return n;
}

void Instance::printBanner() const {
  POUNCE_LOG(Main, Info, "pounce %s, pid %d, %d I/O thread%s", kVersion, getpid(), concurrency_,
             concurrency_ == 1 ? "" : "s");
  for (const auto& l : listeners_) {
    std::string filters;
    for (const auto& name : l->config.chain->names()) {
      if (!filters.empty()) {
        filters += " -> ";
      }
      filters += name.substr(name.rfind('.') + 1);
    }
    const std::string scheme = l->config.transport->isTls() ? "https" : "http";
    const std::string where = l->config.address.isPipe()
                                  ? l->config.address.asString()
                                  : cat(scheme, "://", l->config.address.asString());
    POUNCE_LOG(Main, Info, "listener %s on %s: %s", l->config.name, where, filters);
  }
}

int Instance::run() {
  // Signals go to the main thread only: install the handlers first (so a SIGTERM right
  // after the ports open drains instead of killing), then start the I/O threads with
  // every signal blocked, then unblock them here.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  ::signal(SIGPIPE, SIG_IGN);
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) {
    auto* ev = evsignal_new(
        main_dispatcher_->base(), sig,
        [](int s, short, void* arg) { static_cast<Instance*>(arg)->onSignal(s); }, this);
    evsignal_add(ev, nullptr);
    signal_events_.push_back(ev);
  }
  for (uint32_t i = 0; i < concurrency_; ++i) {
    auto worker = std::make_unique<Worker>(i, *this, timeSource());
    for (size_t li = 0; li < listeners_.size(); ++li) {
      const bool pipe = listeners_[li]->config.address.isPipe();
      worker->addListener(listeners_[li], pipe ? listen_fds_[li][0] : listen_fds_[li][i], !pipe);
    }
    workers_.push_back(std::move(worker));
  }
  for (auto& w : workers_) {
    w->start();
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  printBanner();
  POUNCE_LOG(Main, Info, "ready");
  if (ready_fd_ >= 0) {
    const char ready = 'R';
    ssize_t rc = ::write(ready_fd_, &ready, 1);
    (void)rc;
    ::close(ready_fd_);
    ready_fd_ = -1;
  }
  main_dispatcher_->run();
  for (auto& w : workers_) {
    w->stop();
    w->join();
  }
  POUNCE_LOG(Main, Info, "stopped");
  return 0;
}

void Instance::onSignal(int sig) {
  if (sig == SIGHUP) {
    POUNCE_LOG(Main, Info, "SIGHUP: reloading TLS certificates");
    reloadCertificates().IgnoreError(); // each failure is logged
    return;
  }
  if (++signals_seen_ > 1 || draining_.load()) {
    POUNCE_LOG(Main, Warning, "second signal: exiting now");
    ::_exit(1);
  }
  POUNCE_LOG(Main, Info, "%s: draining", sig == SIGINT ? "SIGINT" : "SIGTERM");
  drainAndExit();
}

absl::Status Instance::reloadCertificates() {
  std::string failures;
  for (const auto& l : listeners_) {
    auto& transport = *l->config.transport;
    if (!transport.isTls()) {
      continue;
    }
    auto status = transport.reload();
    if (status.ok()) {
      POUNCE_LOG(Tls, Info, "listener %s: certificates reloaded", l->config.name);
      continue;
    }
    POUNCE_LOG(Tls, Error, "listener %s: certificate reload failed, keeping the current ones:\n%s",
               l->config.name, std::string(status.message()));
    failures += failures.empty() ? "" : "\n";
    failures += std::string(status.message());
  }
  return failures.empty() ? absl::OkStatus() : absl::InvalidArgumentError(failures);
}

void Instance::drainAndExit() {
  if (draining_.exchange(true)) {
    return;
  }
  std::chrono::milliseconds timeout{0};
  for (const auto& l : listeners_) {
    timeout = std::max(timeout, l->config.settings->shutdown_timeout);
  }
  workers_drained_ = 0;
  for (auto& w : workers_) {
    w->drain(timeout, [this] {
      main_dispatcher_->post([this] { onWorkerDrained(); });
    });
  }
  if (workers_.empty()) {
    main_dispatcher_->exit();
  }
}

void Instance::onWorkerDrained() {
  if (++workers_drained_ == workers_.size()) {
    main_dispatcher_->exit();
  }
}

} // namespace pounce::server
