#include "source/server/worker.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "source/common/logger.h"
#include "source/common/strings.h"
#include "source/network/listen_socket.h"

namespace pounce::server {

namespace {
constexpr int kAcceptBatch = 64;
constexpr std::string_view kOverloaded =
    "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
    "retry-after: 5\r\ncontent-length: 20\r\nconnection: close\r\n\r\nService Unavailable\n";
} // namespace

uint64_t nextConnectionId() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

Worker::Worker(uint32_t index, ServerContext& server, TimeSource& time_source)
    : index_(index), server_(server),
      dispatcher_(std::make_unique<event::Dispatcher>(cat("worker_", index), time_source)) {}

Worker::~Worker() {
  connections_.clear();
  for (auto* list : {&listeners_, &retired_}) {
    for (auto& l : *list) {
      l->accept_event.reset();
      l->accept_retry_timer.reset();
      l->shutdown_timer.reset();
      if (l->owns_fd && l->fd >= 0) {
        ::close(l->fd);
      }
    }
  }
}

std::unique_ptr<Worker::ActiveListener> Worker::makeListener(std::shared_ptr<ListenerShared> shared,
                                                             http::FilterChainSharedPtr chain,
                                                             int fd, bool owns_fd) {
  auto l = std::make_unique<Worker::ActiveListener>();
  l->runtime = std::make_shared<http::ListenerRuntime>(shared->config.settings, std::move(chain),
                                                       shared->stats);
  l->shared = std::move(shared);
  l->fd = fd;
  l->owns_fd = owns_fd;
  return l;
}

void Worker::addListener(std::shared_ptr<ListenerShared> shared, int fd, bool owns_fd) {
  http::FilterChainSharedPtr chain = shared->config.chain;
  listeners_.push_back(makeListener(std::move(shared), std::move(chain), fd, owns_fd));
}

void Worker::start() {
  thread_ = std::thread([this] { run(); });
}

void Worker::join() {
  if (thread_.joinable()) {
    thread_.join();
  }
}

void Worker::run() {
  setCurrentIoThread(static_cast<int>(index_));
  // Named for top -H, perf and gdb: "pounce-io-<worker>".
  pthread_setname_np(pthread_self(), cat("pounce-io-", index_).substr(0, 15).c_str());
  for (auto& l : listeners_) {
    startAccepting(*l);
  }
  dispatcher_->run();
  // Loop ended: close whatever is left.
  connections_.clear();
}

void Worker::startAccepting(ActiveListener& listener) {
  ActiveListener* raw = &listener;
  // Level-triggered: a burst larger than one accept batch is picked up next iteration.
  listener.accept_event = dispatcher_->createFileEvent(
      listener.fd,
      [this, raw](uint32_t events) {
        if (events & event::FileReadyType::Read) {
          onAccept(*raw);
        }
      },
      /*edge=*/false);
}

void Worker::onAccept(ActiveListener& listener) {
  if (draining_) {
    return;
  }
  for (int i = 0; i < kAcceptBatch; ++i) {
    sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    const int fd = ::accept4(listener.fd, reinterpret_cast<sockaddr*>(&ss), &len,
                             SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR) {
        continue;
      }
      if (network::acceptOutOfResources(errno)) {
        pauseAccepting(listener, errno);
      } else if (errno != EAGAIN && errno != ECONNABORTED) {
        POUNCE_LOG(Conn, Warning, "accept on %s failed: %s",
                   listener.shared->config.address.asString(), std::strerror(errno));
      }
      return;
    }
    ListenerShared& shared = *listener.shared;
    if (shared.connections.fetch_add(1, std::memory_order_relaxed) >=
        shared.config.max_connections) {
      reject(fd, listener);
      continue;
    }
    if (!shared.config.address.isPipe()) {
      const int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    const uint64_t id = nextConnectionId();
    auto active = std::make_unique<ActiveConnection>();
    active->listener = &shared;
    active->owner = &listener;
    active->runtime = listener.runtime;
    ++listener.connections;
    active->connection = std::make_unique<network::Connection>(
        *dispatcher_, fd, shared.config.transport->create(),
        network::Address::fromSockaddr(reinterpret_cast<sockaddr*>(&ss), len),
        network::Address::local(fd), id);
    active->manager = std::make_unique<http::ConnectionManager>(*active->connection,
                                                                *listener.runtime, server_, index_);
    active->connection->setOnClosed([this](network::Connection& c) { onConnectionClosed(c.id()); });
    network::Connection& connection = *active->connection;
    connections_.emplace(id, std::move(active));
    active_connections_.fetch_add(1, std::memory_order_relaxed);
    connection.start();
  }
}

void Worker::pauseAccepting(ActiveListener& listener, int error) {
  // The socket stays readable while connections wait: a level-triggered accept would spin
  // (and log) at full speed until descriptors free up. Pause, as nginx does, and try again
  // shortly; the waiting connections stay in the backlog meanwhile.
  constexpr std::chrono::milliseconds kRetry{100};
  POUNCE_LOG(Conn, Warning, "accept on %s failed: %s; accepting again in %d ms",
             listener.shared->config.address.asString(), std::strerror(error),
             static_cast<int>(kRetry.count()));
  ActiveListener* raw = &listener;
  network::pauseAccepting(
      *dispatcher_, listener.accept_event, listener.accept_retry_timer,
      [this, raw] {
        if (!draining_ && raw->accept_event == nullptr && raw->fd >= 0) {
          startAccepting(*raw);
        }
      },
      kRetry);
}

void Worker::reject(int fd, ActiveListener& listener) {
  // Over max_connections: answer 503 at once and close; never read a request.
  POUNCE_LOG(Conn, Debug, "listener %s at max_connections (%d): rejecting",
             listener.shared->config.name, listener.shared->config.max_connections);
  if (listener.shared->config.transport->isTls()) {
    // A plain-text 503 means nothing to a TLS client, and a handshake costs what the
    // limit protects: just close.
    ::close(fd);
    listener.shared->connections.fetch_sub(1, std::memory_order_relaxed);
    return;
  }
  const uint64_t id = nextConnectionId();
  auto active = std::make_unique<ActiveConnection>();
  active->listener = listener.shared.get();
  active->owner = &listener;
  ++listener.connections;
  active->connection = std::make_unique<network::Connection>(
      *dispatcher_, fd, std::make_unique<network::RawTransportSocket>(), network::Address::peer(fd),
      network::Address::local(fd), id);
  active->connection->setOnClosed([this](network::Connection& c) { onConnectionClosed(c.id()); });
  network::Connection& connection = *active->connection;
  connections_.emplace(id, std::move(active));
  active_connections_.fetch_add(1, std::memory_order_relaxed);
  connection.start();
  connection.output().add(kOverloaded);
  connection.close(network::CloseType::FlushWriteAndLinger);
}

void Worker::onConnectionClosed(uint64_t id) {
  auto it = connections_.find(id);
  if (it == connections_.end()) {
    return;
  }
  it->second->listener->connections.fetch_sub(1, std::memory_order_relaxed);
  ActiveListener* owner = it->second->owner;
  dispatcher_->deferredDelete(std::move(it->second));
  connections_.erase(it);
  active_connections_.fetch_sub(1, std::memory_order_relaxed);
  if (owner != nullptr && --owner->connections == 0) {
    eraseRetired(owner);
  }
  if (draining_) {
    dispatcher_->defer([this] { checkDrained(); });
  }
}

void Worker::eraseRetired(ActiveListener* listener) {
  for (auto it = retired_.begin(); it != retired_.end(); ++it) {
    if (it->get() == listener) {
      // Maybe inside its own shutdown timer's callback: delete it once that returned.
      std::shared_ptr<ActiveListener> doomed(std::move(*it));
      retired_.erase(it);
      dispatcher_->defer([doomed] {});
      return;
    }
  }
}

void Worker::retire(std::unique_ptr<ActiveListener> listener) {
  listener->accept_event.reset();
  listener->accept_retry_timer.reset();
  if (listener->owns_fd && listener->fd >= 0) {
    ::close(listener->fd);
  }
  listener->fd = -1;
  listener->owns_fd = false;
  if (listener->connections == 0) {
    return;
  }
  std::vector<http::ConnectionManager*> managers;
  for (auto& [id, c] : connections_) {
    if (c->owner == listener.get() && c->manager) {
      managers.push_back(c->manager.get());
    }
  }
  ActiveListener* raw = listener.get();
  listener->shutdown_timer = dispatcher_->createTimer([this, raw] {
    std::vector<network::Connection*> open;
    for (auto& [id, c] : connections_) {
      if (c->owner == raw) {
        open.push_back(c->connection.get());
      }
    }
    if (!open.empty()) {
      POUNCE_LOG(Main, Info,
                 "worker %d: listener %s removed: closing %d connection(s) after "
                 "its shutdown_timeout",
                 index_, raw->shared->config.name, open.size());
    }
    for (auto* c : open) {
      c->close(network::CloseType::NoFlush);
    }
  });
  listener->shutdown_timer->enableTimer(listener->shared->config.settings->shutdown_timeout);
  retired_.push_back(std::move(listener));
  // Last: draining may close idle connections at once, erasing the listener.
  for (auto* m : managers) {
    m->startDrain();
  }
}

void Worker::stopAccepting() {
  for (auto& l : listeners_) {
    l->accept_event.reset();
    l->accept_retry_timer.reset();
    if (l->owns_fd && l->fd >= 0) {
      ::close(l->fd);
      l->fd = -1;
    }
  }
}

void Worker::drain(std::chrono::milliseconds timeout, std::function<void()> done) {
  dispatcher_->post([this, timeout, done = std::move(done)]() mutable {
    if (draining_) {
      return;
    }
    draining_ = true;
    drained_cb_ = std::move(done);
    stopAccepting();
    startDrainOnEveryConnection();
    drain_timer_ = dispatcher_->createTimer([this] {
      if (!connections_.empty()) {
        POUNCE_LOG(Main, Warning, "worker %d: shutdown timeout, closing %d connection(s)", index_,
                   connections_.size());
      }
      std::vector<network::Connection*> open;
      for (auto& [id, c] : connections_) {
        open.push_back(c->connection.get());
      }
      for (auto* c : open) {
        c->close(network::CloseType::NoFlush);
      }
      checkDrained();
    });
    drain_timer_->enableTimer(timeout);
    checkDrained();
  });
}

void Worker::checkDrained() {
  if (!draining_ || !connections_.empty() || !drained_cb_) {
    return;
  }
  if (drain_timer_) {
    drain_timer_->disableTimer();
  }
  auto cb = std::move(drained_cb_);
  drained_cb_ = nullptr;
  cb();
}

void Worker::setChain(const std::string& listener, http::FilterChainSharedPtr chain,
                      std::function<void()> done) {
  dispatcher_->post([this, listener, chain = std::move(chain), done = std::move(done)]() {
    for (auto& l : listeners_) {
      if (l->shared->config.name == listener) {
        l->runtime->setChain(chain);
      }
    }
    if (done) {
      done();
    }
  });
}

void Worker::addListenerLive(std::shared_ptr<ListenerShared> shared,
                             http::FilterChainSharedPtr chain, int fd, bool owns_fd,
                             std::function<void()> done) {
  dispatcher_->post([this, shared = std::move(shared), chain = std::move(chain), fd, owns_fd,
                     done = std::move(done)]() mutable {
    auto l = makeListener(std::move(shared), std::move(chain), fd, owns_fd);
    if (!draining_) {
      startAccepting(*l);
    }
    listeners_.push_back(std::move(l));
    if (done) {
      done();
    }
  });
}

void Worker::replaceListener(const ListenerShared* old, std::shared_ptr<ListenerShared> replacement,
                             http::FilterChainSharedPtr chain, std::function<void()> done) {
  dispatcher_->post([this, old, replacement = std::move(replacement), chain = std::move(chain),
                     done = std::move(done)]() mutable {
    for (auto it = listeners_.begin(); it != listeners_.end(); ++it) {
      if ((*it)->shared.get() != old) {
        continue;
      }
      std::unique_ptr<ActiveListener> previous = std::move(*it);
      // The socket changes hands inside this one callback: nothing queued is lost.
      auto l =
          makeListener(std::move(replacement), std::move(chain), previous->fd, previous->owns_fd);
      previous->fd = -1;
      previous->owns_fd = false;
      if (!draining_) {
        startAccepting(*l);
      }
      *it = std::move(l);
      retire(std::move(previous));
      break;
    }
    if (done) {
      done();
    }
  });
}

void Worker::removeListener(const ListenerShared* old, std::function<void()> done) {
  dispatcher_->post([this, old, done = std::move(done)]() {
    for (auto it = listeners_.begin(); it != listeners_.end(); ++it) {
      if ((*it)->shared.get() == old) {
        std::unique_ptr<ActiveListener> previous = std::move(*it);
        listeners_.erase(it);
        retire(std::move(previous));
        break;
      }
    }
    if (done) {
      done();
    }
  });
}

void Worker::drainConnections() {
  dispatcher_->post([this] { startDrainOnEveryConnection(); });
}

void Worker::startDrainOnEveryConnection() {
  // Collected first: a drain may close a connection, which erases it from connections_.
  std::vector<http::ConnectionManager*> managers;
  for (auto& [id, c] : connections_) {
    if (c->manager) {
      managers.push_back(c->manager.get());
    }
  }
  for (auto* m : managers) {
    m->startDrain();
  }
}

void Worker::stop() { dispatcher_->exit(); }

} // namespace pounce::server
