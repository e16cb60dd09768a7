#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "source/common/event/dispatcher.h"
#include "source/common/server_context.h"
#include "source/http/conn_manager.h"
#include "source/network/connection.h"
#include "source/server/config_builder.h"

namespace pounce::server {

// Shared by every I/O thread's copy of one listener.
struct ListenerShared {
  ListenerConfig config;
  // Open connections across threads, for max_connections.
  std::atomic<uint64_t> connections{0};
  http::ListenerStats stats;
  // The listening sockets as bound: one per I/O thread (TCP; the workers own and close
  // them once started) or one shared by all (Unix socket; the Instance owns it).
  std::vector<int> fds;
  // Inode of the Unix socket file this process created (0: not ours to remove).
  uint64_t pipe_inode{0};
};

// One I/O thread: its own event loop, its own listening sockets, and every connection it
// accepted. Nothing here is touched by another thread except through post().
class Worker {
public:
  Worker(uint32_t index, ServerContext& server, TimeSource& time_source);
  ~Worker();

  // Before start(): the listening socket this worker accepts on (owned if `owns_fd`).
  void addListener(std::shared_ptr<ListenerShared> shared, int fd, bool owns_fd);
  void start();
  void join();
  uint32_t index() const { return index_; }
  event::Dispatcher& dispatcher() { return *dispatcher_; }

  // Thread-safe. Stops accepting, drains connections, force-closes after `timeout`, then
  // calls `done` (on this worker's thread) once no connection is left.
  void drain(std::chrono::milliseconds timeout, std::function<void()> done);
  // Thread-safe: replaces a listener's chain for new streams (including the next request
  // on a connection that is already open); streams in flight finish on the old chain.
  void setChain(const std::string& listener, http::FilterChainSharedPtr chain,
                std::function<void()> done);

  // Live listener changes (thread-safe; `done` runs on this worker's thread once applied).
  // Each old listener stops accepting and drains its connections (Connection: close on the
  // next response, idle ones closed at once, the rest closed after its shutdown_timeout).
  //
  // Adds a listener that accepts on `fd` (owned if `owns_fd`), using `chain`.
  void addListenerLive(std::shared_ptr<ListenerShared> shared, http::FilterChainSharedPtr chain,
                       int fd, bool owns_fd, std::function<void()> done);
  // Replaces `old` by `replacement` on the same listening socket (no accept gap).
  void replaceListener(const ListenerShared* old, std::shared_ptr<ListenerShared> replacement,
                       http::FilterChainSharedPtr chain, std::function<void()> done);
  // Stops `old` (closing its socket if this worker owns it) and drains its connections.
  void removeListener(const ListenerShared* old, std::function<void()> done);
  // Graceful drain: every open connection drains (Connection: close / GOAWAY, idle ones
  // closed at once) while the listeners keep accepting. Thread-safe.
  void drainConnections();
  void stop();

  uint64_t activeConnections() const { return active_connections_.load(std::memory_order_relaxed); }

private:
  struct ActiveListener {
    std::shared_ptr<ListenerShared> shared;
    // Shared with the listener's connections, which outlive a removed listener.
    std::shared_ptr<http::ListenerRuntime> runtime;
    int fd{-1};
    bool owns_fd{false};
    event::FileEventPtr accept_event;
    // Out of file descriptors: accepting pauses (level-triggered, it would spin) and this
    // timer starts it again.
    event::TimerPtr accept_retry_timer;
    uint64_t connections{0};        // this worker's connections on this listener
    event::TimerPtr shutdown_timer; // a removed listener: closes what is left
  };
  struct ActiveConnection : public event::DeferredDeletable {
    ~ActiveConnection() override {
      manager.reset();
      connection.reset();
    }
    std::shared_ptr<http::ListenerRuntime> runtime; // outlives `manager`, which refers to it
    std::unique_ptr<network::Connection> connection;
    std::unique_ptr<http::ConnectionManager> manager;
    ListenerShared* listener{nullptr};
    ActiveListener* owner{nullptr};
  };

  void pauseAccepting(ActiveListener& listener, int error);
  static std::unique_ptr<ActiveListener> makeListener(std::shared_ptr<ListenerShared> shared,
                                                      http::FilterChainSharedPtr chain, int fd,
                                                      bool owns_fd);
  void run();
  void startAccepting(ActiveListener& listener);
  // Takes `listener` out of service: it stops accepting, its connections drain, and it is
  // deleted with its last connection.
  void retire(std::unique_ptr<ActiveListener> listener);
  void eraseRetired(ActiveListener* listener);
  void onAccept(ActiveListener& listener);
  void reject(int fd, ActiveListener& listener);
  void onConnectionClosed(uint64_t id);
  void stopAccepting();
  // Starts the drain of every open connection (idle ones close, busy ones finish first).
  void startDrainOnEveryConnection();
  void checkDrained();

  const uint32_t index_;
  ServerContext& server_;
  std::unique_ptr<event::Dispatcher> dispatcher_;
  std::vector<std::unique_ptr<ActiveListener>> listeners_;
  // Removed or replaced listeners whose connections are still open.
  std::vector<std::unique_ptr<ActiveListener>> retired_;
  std::unordered_map<uint64_t, std::unique_ptr<ActiveConnection>> connections_;
  std::atomic<uint64_t> active_connections_{0};
  std::thread thread_;
  bool draining_{false};
  std::function<void()> drained_cb_;
  event::TimerPtr drain_timer_;
};

// Next connection id, unique in the process.
uint64_t nextConnectionId();

} // namespace pounce::server
