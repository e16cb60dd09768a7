#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "source/common/time.h"

struct event_base;
struct event;

namespace pounce::event {

// A one-shot timer on a dispatcher's thread.
class Timer {
public:
  virtual ~Timer() = default;
  virtual void enableTimer(std::chrono::milliseconds delay) = 0;
  virtual void disableTimer() = 0;
  virtual bool enabled() const = 0;
};
using TimerPtr = std::unique_ptr<Timer>;

enum FileReadyType : uint32_t { Read = 0x1, Write = 0x2, Closed = 0x4 };

// Edge-triggered readiness of a file descriptor. Both read and write interest stay
// registered for the descriptor's life, so no epoll_ctl happens per request; the owner
// remembers what it has not yet drained.
class FileEvent {
public:
  virtual ~FileEvent() = default;
  // Runs the callback with `events` soon, as if the kernel had reported them.
  virtual void activate(uint32_t events) = 0;
};
using FileEventPtr = std::unique_ptr<FileEvent>;

// An object whose destruction waits until the current callback stack has unwound.
class DeferredDeletable {
public:
  virtual ~DeferredDeletable() = default;
};

// One event loop and the thread that runs it (Envoy's Dispatcher). Everything except
// post() and exit() must be called on that thread.
class Dispatcher {
public:
  Dispatcher(std::string name, TimeSource& time_source);
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  const std::string& name() const { return name_; }
  TimeSource& timeSource() { return time_source_; }
  event_base* base() { return base_; }

  TimerPtr createTimer(std::function<void()> cb);
  // `events`: FileReadyType bits to watch (default both).
  FileEventPtr createFileEvent(int fd, std::function<void(uint32_t)> cb, bool edge = true,
                               uint32_t events = FileReadyType::Read | FileReadyType::Write);

  // Runs `cb` on this dispatcher's thread. Thread-safe.
  void post(std::function<void()> cb);
  // Runs `cb` on this thread after the current callback stack unwinds.
  void defer(std::function<void()> cb);
  void deferredDelete(std::unique_ptr<DeferredDeletable> object);

  // Runs until exit() is called.
  void run();
  // Thread-safe.
  void exit();
  bool isThisThread() const { return std::this_thread::get_id() == thread_id_; }

  MonotonicTime now() { return time_source_.monotonicTime(); }

  // Runs `cb` when this dispatcher is destroyed, before its event loop is freed (for objects
  // that attach events to the loop but may outlive it).
  void addDestroyCallback(std::function<void()> cb) { destroy_callbacks_.push_back(std::move(cb)); }

private:
  static void onPostReady(int fd, short events, void* arg);
  static void onDeferredReady(int fd, short events, void* arg);
  void runPosted();
  void runDeferred();

  const std::string name_;
  TimeSource& time_source_;
  event_base* base_;
  int post_fd_;
  ::event* post_event_;
  ::event* deferred_event_;
  std::mutex post_lock_;
  std::vector<std::function<void()>> posted_;
  std::vector<std::function<void()>> deferred_;
  std::vector<std::unique_ptr<DeferredDeletable>> to_delete_;
  // Emptied buffers kept for their capacity (see runPosted()).
  std::vector<std::function<void()>> spare_posted_;
  std::vector<std::function<void()>> spare_deferred_;
  std::vector<std::unique_ptr<DeferredDeletable>> spare_to_delete_;
  std::vector<std::function<void()>> destroy_callbacks_;
  bool deferred_scheduled_{false};
  std::thread::id thread_id_;
};

using DispatcherPtr = std::unique_ptr<Dispatcher>;

} // namespace pounce::event
