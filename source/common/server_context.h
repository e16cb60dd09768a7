#pragma once

#include <cstdint>
#include <string>

#include "source/common/event/dispatcher.h"
#include "source/common/stats.h"
#include "source/common/time.h"

namespace pounce {

// What filters and listeners may ask of the running server. Implemented by
// server::Instance; tests provide fakes.
class ServerContext {
public:
  virtual ~ServerContext() = default;
  virtual TimeSource& timeSource() = 0;
  virtual stats::Store& stats() = 0;
  // The server is draining (SIGTERM, /drain_listeners): health says so, HTTP/1 responses
  // carry Connection: close, HTTP/2 sends GOAWAY.
  virtual bool draining() const = 0;
  // The operator failed the health check through the admin API.
  virtual bool healthCheckFailed() const = 0;
  // Open client connections in this process.
  virtual uint64_t activeConnections() const = 0;
  virtual MonotonicTime startTime() const = 0;
  // Index of this worker process (0 in single-process mode).
  virtual uint32_t workerId() const = 0;
  // I/O threads in this process.
  virtual uint32_t concurrency() const = 0;
  // Python threads an app gets when its config does not say (workers.count in thread
  // mode, else 1).
  virtual uint32_t defaultAppThreads() const { return 1; }
  // The main thread's dispatcher (admin, config, signals).
  virtual event::Dispatcher& mainDispatcher() = 0;
};

// The I/O thread index of the calling thread (0..concurrency-1), or -1 off I/O threads.
int currentIoThread();
void setCurrentIoThread(int index);

} // namespace pounce
