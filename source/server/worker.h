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
  // Thread-safe: replaces a listener's chain for new streams.
  void setChain(const std::string& listener, http::FilterChainSharedPtr chain,
                std::function<void()> done);
  void stop();

  uint64_t activeConnections() const { return active_connections_.load(std::memory_order_relaxed); }

private:
  struct ActiveListener {
    std::shared_ptr<ListenerShared> shared;
    std::unique_ptr<http::ListenerRuntime> runtime;
    int fd{-1};
    bool owns_fd{false};
    event::FileEventPtr accept_event;
  };
  struct ActiveConnection : public event::DeferredDeletable {
    ~ActiveConnection() override {
      manager.reset();
      connection.reset();
    }
    std::unique_ptr<network::Connection> connection;
    std::unique_ptr<http::ConnectionManager> manager;
    ListenerShared* listener{nullptr};
  };

  void run();
  void onAccept(ActiveListener& listener);
  void reject(int fd, ActiveListener& listener);
  void onConnectionClosed(uint64_t id);
  void stopAccepting();
  void checkDrained();

  const uint32_t index_;
  ServerContext& server_;
  std::unique_ptr<event::Dispatcher> dispatcher_;
  std::vector<std::unique_ptr<ActiveListener>> listeners_;
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
