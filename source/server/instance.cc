#include "source/server/instance.h"

#include <event2/event.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "source/common/logger.h"
#include "source/common/reopen.h"
#include "source/common/strings.h"
#include "source/common/version.h"
#include "source/network/listen_socket.h"
#include "source/server/admin/config_state.h"
#include "source/server/admin/control_plane.h"
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

PendingChange::~PendingChange() {
  if (published) {
    return;
  }
  // Never published: the sockets bound for it are ours to close.
  for (const auto& l : added) {
    for (int fd : l->fds) {
      ::close(fd);
    }
    if (l->pipe_inode != 0) {
      network::removeSocketFile(l->config.address, l->pipe_inode);
    }
    l->fds.clear();
  }
}

Instance::~Instance() {
  for (auto* ev : signal_events_) {
    event_free(ev);
  }
  workers_.clear();
  for (const auto& l : listeners_) {
    if (l->config.address.isPipe()) {
      for (int fd : l->fds) {
        ::close(fd);
      }
      network::removeSocketFile(l->config.address, l->pipe_inode);
    }
  }
}

std::string Instance::configDir() const {
  if (config_path_.empty()) {
    return "";
  }
  std::string dir = std::filesystem::path(config_path_).parent_path().string();
  return dir.empty() ? "." : dir;
}

absl::Status Instance::build(bool validate_only) {
  ConfigBuilder builder(*this, configDir(), validate_only);
  if (marks_ == nullptr) {
    marks_ = std::make_shared<config::ConfigErrors>(config_path_.empty() ? "command line"
                                                                         : config_path_);
  }
  config::ConfigErrors& errors = *marks_;
  auto configs = builder.buildListeners(bootstrap_, errors, config_version_, -1,
                                        chain_versions_.empty() ? nullptr : &chain_versions_);
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

absl::Status Instance::bindListener(ListenerShared& listener) {
  auto& config = listener.config;
  if (config.address.isPipe()) {
    auto fd = network::createListenSocket(config.address, static_cast<int>(config.backlog),
                                          config.pipe_mode);
    if (!fd.ok()) {
      return fd.status();
    }
    listener.fds.push_back(*fd);
    listener.pipe_inode = network::socketFileInode(config.address);
    return absl::OkStatus();
  }
  for (uint32_t i = 0; i < concurrency_; ++i) {
    auto fd = network::createListenSocket(config.address, static_cast<int>(config.backlog), 0);
    if (!fd.ok()) {
      for (int open : listener.fds) {
        ::close(open);
      }
      listener.fds.clear();
      return fd.status();
    }
    if (i == 0 && config.address.port() == 0) {
      // The kernel chose a port: every other socket must use the same one.
      config.address = network::Address::local(*fd);
    }
    listener.fds.push_back(*fd);
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
      listeners_[i]->fds = std::move(inherited_fds_[i]);
      listeners_[i]->pipe_inode = 0; // the supervisor owns (and removes) socket files
    }
    inherited_fds_.clear();
    return absl::OkStatus();
  }
  for (auto& l : listeners_) {
    auto status = network::checkAddressFree(l->config.address);
    if (status.ok()) {
      status = bindListener(*l);
    }
    if (!status.ok()) {
      return status;
    }
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
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) {
    auto* ev = evsignal_new(
        main_dispatcher_->base(), sig,
        [](int s, short, void* arg) { static_cast<Instance*>(arg)->onSignal(s); }, this);
    evsignal_add(ev, nullptr);
    signal_events_.push_back(ev);
  }
  for (uint32_t i = 0; i < concurrency_; ++i) {
    auto worker = std::make_unique<Worker>(i, *this, timeSource());
    for (const auto& l : listeners_) {
      const bool pipe = l->config.address.isPipe();
      worker->addListener(l, pipe ? l->fds[0] : l->fds[i], !pipe);
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
  if (sig == SIGUSR1) {
    admin::logReopened("SIGUSR1", reopenFiles());
    return;
  }
  if (sig == SIGHUP) {
    if (reload_handler_) {
      reload_handler_();
      return;
    }
    POUNCE_LOG(Main, Info, "SIGHUP: reloading TLS certificates");
    reloadCertificates().IgnoreError(); // each failure is logged
    return;
  }
  if (++signals_seen_ > 1 || exit_requested_) {
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
  exit_requested_ = true;
  draining_.store(true);
  if (!stop_drain_started_) {
    startStopDrain();
  } else if (drained_) {
    main_dispatcher_->exit();
  }
}

void Instance::drain(bool graceful) {
  draining_.store(true);
  if (!graceful) {
    if (!stop_drain_started_) {
      startStopDrain();
    }
    return;
  }
  for (auto& w : workers_) {
    w->drainConnections();
  }
}

void Instance::startStopDrain() {
  stop_drain_started_ = true;
  std::chrono::milliseconds timeout{0};
  for (const auto& l : listeners_) {
    timeout = std::max(timeout, l->config.settings->shutdown_timeout);
  }
  workers_drained_ = 0;
  for (auto& w : workers_) {
    w->drain(timeout, [this] { main_dispatcher_->post([this] { onWorkerDrained(); }); });
  }
  if (workers_.empty()) {
    drained_ = true;
    if (exit_requested_) {
      main_dispatcher_->exit();
    }
  }
}

void Instance::onWorkerDrained() {
  if (++workers_drained_ != workers_.size()) {
    return;
  }
  drained_ = true;
  if (exit_requested_) {
    main_dispatcher_->exit();
  } else {
    POUNCE_LOG(Main, Info, "listeners drained; exiting on SIGTERM or POST /quitquitquit");
  }
}

std::shared_ptr<ListenerShared> Instance::findListener(const std::string& name) const {
  for (const auto& l : listeners_) {
    if (l->config.name == name) {
      return l;
    }
  }
  return nullptr;
}

std::unique_ptr<PendingChange> Instance::prepare(const Bootstrap& candidate, uint64_t version,
                                                 config::ConfigErrors& errors, bool chains_only) {
  const admin::ConfigDiff diff = admin::diffConfigs(bootstrap_, candidate);
  auto change = std::make_unique<PendingChange>();
  change->version = version;
  change->bootstrap = candidate;
  change->changes = diff.describe();
  if (chains_only && !diff.chainsOnly()) {
    errors.add("listeners", cat("only filter chains can change in place here; these need new "
                                "worker processes: ",
                                [&] {
                                  std::string out;
                                  for (const auto& c : diff.describe()) {
                                    out += out.empty() ? c : ", " + c;
                                  }
                                  return out;
                                }()));
    return nullptr;
  }
  auto in = [](const std::vector<std::string>& names, const std::string& name) {
    return std::find(names.begin(), names.end(), name) != names.end();
  };
  ConfigBuilder builder(*this, configDir(), false);
  for (int i = 0; i < candidate.listeners_size(); ++i) {
    const auto& l = candidate.listeners(i);
    const std::string name = listenerName(l, i);
    std::shared_ptr<ListenerShared> existing = findListener(name);
    if (in(diff.chains, name)) {
      auto chain = builder.buildFilterChain(
          l.filter_chain(), name, cat("listeners[", i, "].filter_chain"), errors, version);
      if (chain != nullptr) {
        change->chains.push_back({existing, std::move(chain)});
      }
      continue;
    }
    const bool replaced = in(diff.replaced, name);
    if (!replaced && !in(diff.moved, name) && !in(diff.added, name)) {
      continue;
    }
    auto configs = builder.buildListeners(candidate, errors, version, i);
    if (configs.empty() || configs[0].chain == nullptr) {
      continue;
    }
    auto shared = std::make_shared<ListenerShared>();
    shared->stats = http::ListenerStats::create(stats(), name);
    shared->config = std::move(configs[0]);
    if (replaced) {
      change->replaced.push_back({existing, std::move(shared)});
      continue;
    }
    auto bound = bindListener(*shared);
    if (!bound.ok()) {
      errors.add(cat("listeners[", i, "].address"), std::string(bound.message()));
      continue;
    }
    change->added.push_back(shared);
    if (existing != nullptr) {
      change->removed.push_back(existing);
    }
  }
  for (const auto& name : diff.removed) {
    if (auto existing = findListener(name)) {
      change->removed.push_back(existing);
    }
  }
  if (!errors.empty()) {
    return nullptr;
  }
  return change;
}

void Instance::commit(std::unique_ptr<PendingChange> change, std::function<void(uint32_t)> done) {
  change->published = true;
  // One acknowledgement per (I/O thread, operation); `done` once all arrived.
  struct Acks {
    size_t expected{0};
    size_t received{0};
    std::function<void(uint32_t)> done;
    std::vector<std::shared_ptr<ListenerShared>> closed_pipes; // close once nobody accepts
  };
  auto acks = std::make_shared<Acks>();
  acks->done = std::move(done);
  const size_t per_worker = change->chains.size() + change->replaced.size() + change->added.size() +
                            change->removed.size();
  acks->expected = per_worker * workers_.size();
  const uint32_t threads = static_cast<uint32_t>(workers_.size());
  auto finish = [acks, threads] {
    for (const auto& l : acks->closed_pipes) {
      for (int fd : l->fds) {
        ::close(fd);
      }
      l->fds.clear();
      network::removeSocketFile(l->config.address, l->pipe_inode);
    }
    acks->done(threads);
  };
  auto ack = [this, acks, finish] {
    main_dispatcher_->post([acks, finish] {
      if (++acks->received == acks->expected) {
        finish();
      }
    });
  };
  for (auto& swap : change->chains) {
    swap.listener->config.chain = swap.chain; // the main thread's copy (new workers, status)
    for (auto& w : workers_) {
      w->setChain(swap.listener->config.name, swap.chain, ack);
    }
  }
  for (auto& r : change->replaced) {
    // The socket changes hands: the Unix socket (ours) moves to the replacement.
    r.listener->fds = r.old_listener->fds;
    r.listener->pipe_inode = r.old_listener->pipe_inode;
    r.old_listener->fds.clear();
    r.old_listener->pipe_inode = 0;
    if (!r.listener->config.address.isPipe() && r.old_listener->config.address.isIp()) {
      r.listener->config.address = r.old_listener->config.address; // the port actually bound
    }
    for (auto& w : workers_) {
      w->replaceListener(r.old_listener.get(), r.listener, r.listener->config.chain, ack);
    }
  }
  for (auto& l : change->added) {
    const bool pipe = l->config.address.isPipe();
    for (size_t i = 0; i < workers_.size(); ++i) {
      workers_[i]->addListenerLive(l, l->config.chain, pipe ? l->fds[0] : l->fds[i], !pipe, ack);
    }
  }
  for (auto& l : change->removed) {
    if (l->config.address.isPipe()) {
      acks->closed_pipes.push_back(l);
    }
    for (auto& w : workers_) {
      w->removeListener(l.get(), ack);
    }
  }
  // The listeners in the new config's order.
  std::vector<std::shared_ptr<ListenerShared>> next;
  for (int i = 0; i < change->bootstrap.listeners_size(); ++i) {
    const std::string name = listenerName(change->bootstrap.listeners(i), i);
    std::shared_ptr<ListenerShared> l;
    for (auto& r : change->replaced) {
      if (r.listener->config.name == name) {
        l = r.listener;
      }
    }
    for (auto& a : change->added) {
      if (a->config.name == name) {
        l = a;
      }
    }
    if (l == nullptr) {
      l = findListener(name);
    }
    if (l != nullptr) {
      next.push_back(std::move(l));
    }
  }
  listeners_ = std::move(next);
  bootstrap_ = std::move(change->bootstrap);
  config_version_ = change->version;
  if (acks->expected == 0) {
    finish();
  }
}

pounce::admin::v1::WorkerStatus Instance::status() const {
  pounce::admin::v1::WorkerStatus out;
  out.set_worker_id(worker_id_);
  out.set_pid(static_cast<int32_t>(::getpid()));
  out.set_concurrency(concurrency_);
  out.set_active_connections(activeConnections());
  out.set_config_version(config_version_);
  out.set_draining(draining());
  out.set_health_check_failed(healthCheckFailed());
  for (const auto& l : listeners_) {
    auto* s = out.add_listeners();
    s->set_name(l->config.name);
    s->set_address(l->config.address.asString());
    s->set_connections_active(l->connections.load(std::memory_order_relaxed));
    if (l->config.chain != nullptr) {
      for (const auto& n : l->config.chain->names()) {
        s->add_filters(n);
      }
      s->set_chain_version(l->config.chain->version());
    }
  }
  return out;
}

} // namespace pounce::server
