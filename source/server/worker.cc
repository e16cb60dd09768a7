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
  for (auto& l : listeners_) {
    l->accept_event.reset();
    if (l->owns_fd && l->fd >= 0) {
      ::close(l->fd);
    }
  }
}

void Worker::addListener(std::shared_ptr<ListenerShared> shared, int fd, bool owns_fd) {
  auto l = std::make_unique<ActiveListener>();
  l->runtime = std::make_unique<http::ListenerRuntime>(shared->config.settings, shared->config.chain,
                                                       shared->stats);
  l->shared = std::move(shared);
  l->fd = fd;
  l->owns_fd = owns_fd;
  listeners_.push_back(std::move(l));
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
    ActiveListener* raw = l.get();
    // Level-triggered: a burst larger than one accept batch is picked up next iteration.
    l->accept_event = dispatcher_->createFileEvent(
        l->fd, [this, raw](uint32_t events) {
          if (events & event::FileReadyType::Read) {
            onAccept(*raw);
          }
        },
        /*edge=*/false);
  }
  dispatcher_->run();
  // Loop ended: close whatever is left.
  connections_.clear();
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
      if (errno != EAGAIN && errno != ECONNABORTED) {
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
    active->connection = std::make_unique<network::Connection>(
        *dispatcher_, fd, shared.config.transport->create(),
        network::Address::fromSockaddr(reinterpret_cast<sockaddr*>(&ss), len),
        network::Address::local(fd), id);
    active->manager = std::make_unique<http::ConnectionManager>(
        *active->connection, *listener.runtime, server_, index_);
    active->connection->setOnClosed([this](network::Connection& c) { onConnectionClosed(c.id()); });
    network::Connection& connection = *active->connection;
    connections_.emplace(id, std::move(active));
    active_connections_.fetch_add(1, std::memory_order_relaxed);
    connection.start();
  }
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
  dispatcher_->deferredDelete(std::move(it->second));
  connections_.erase(it);
  active_connections_.fetch_sub(1, std::memory_order_relaxed);
  if (draining_) {
    dispatcher_->defer([this] { checkDrained(); });
  }
}

void Worker::stopAccepting() {
  for (auto& l : listeners_) {
    l->accept_event.reset();
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
    std::vector<http::ConnectionManager*> managers;
    for (auto& [id, c] : connections_) {
      if (c->manager) {
        managers.push_back(c->manager.get());
      }
    }
    for (auto* m : managers) {
      m->startDrain();
    }
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

void Worker::stop() { dispatcher_->exit(); }

} // namespace pounce::server
