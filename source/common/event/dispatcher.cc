#include "source/common/event/dispatcher.h"

#include <event2/event.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "source/common/logger.h"

namespace pounce::event {

namespace {

class TimerImpl : public Timer {
public:
  TimerImpl(event_base* base, std::function<void()> cb) : cb_(std::move(cb)) {
    ev_ = evtimer_new(base, &TimerImpl::onFire, this);
  }
  ~TimerImpl() override { event_free(ev_); }

  void enableTimer(std::chrono::milliseconds delay) override {
    struct timeval tv;
    tv.tv_sec = delay.count() / 1000;
    tv.tv_usec = (delay.count() % 1000) * 1000;
    evtimer_add(ev_, &tv);
  }
  void disableTimer() override { evtimer_del(ev_); }
  bool enabled() const override { return evtimer_pending(ev_, nullptr) != 0; }

private:
  static void onFire(int, short, void* arg) { static_cast<TimerImpl*>(arg)->cb_(); }

  std::function<void()> cb_;
  ::event* ev_;
};

class FileEventImpl : public FileEvent {
public:
  FileEventImpl(event_base* base, int fd, std::function<void(uint32_t)> cb, bool edge,
                uint32_t events)
      : cb_(std::move(cb)) {
    short flags = EV_PERSIST;
    if (events & FileReadyType::Read) {
      // With it the peer's FIN is reported (EPOLLRDHUP) even when it came with the last
      // data: an edge-triggered reader that stops at a short read would not see it otherwise.
      flags |= EV_READ | EV_CLOSED;
    }
    if (events & FileReadyType::Write) {
      flags |= EV_WRITE;
    }
    if (edge) {
      flags |= EV_ET;
    }
    ev_ = event_new(base, fd, flags, &FileEventImpl::onReady, this);
    event_add(ev_, nullptr);
  }
  ~FileEventImpl() override { event_free(ev_); }

  void activate(uint32_t events) override {
    short what = 0;
    if (events & FileReadyType::Read) {
      what |= EV_READ;
    }
    if (events & FileReadyType::Write) {
      what |= EV_WRITE;
    }
    event_active(ev_, what, 0);
  }

private:
  static void onReady(int, short what, void* arg) {
    uint32_t events = 0;
    if (what & EV_READ) {
      events |= FileReadyType::Read;
    }
    if (what & EV_WRITE) {
      events |= FileReadyType::Write;
    }
    if (what & EV_CLOSED) {
      events |= FileReadyType::Closed;
    }
    static_cast<FileEventImpl*>(arg)->cb_(events);
  }

  std::function<void(uint32_t)> cb_;
  ::event* ev_;
};

} // namespace

Dispatcher::Dispatcher(std::string name, TimeSource& time_source)
    : name_(std::move(name)), time_source_(time_source) {
  event_config* config = event_config_new();
  event_config_set_flag(config, EVENT_BASE_FLAG_NOLOCK);
  base_ = event_base_new_with_config(config);
  event_config_free(config);
  if (base_ == nullptr) {
    POUNCE_LOG(Main, Critical, "cannot create an event loop");
    std::abort();
  }
  post_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  post_event_ = event_new(base_, post_fd_, EV_READ | EV_PERSIST, &Dispatcher::onPostReady, this);
  event_add(post_event_, nullptr);
  // Deferred work is activated by hand and so joins the end of the current iteration's
  // active queue: it runs after the I/O that is ready now (batching writes and log flushes
  // across many connections), but is never starved by I/O that keeps arriving, as a lower
  // priority would be.
  deferred_event_ = event_new(base_, -1, 0, &Dispatcher::onDeferredReady, this);
  thread_id_ = std::this_thread::get_id();
}

Dispatcher::~Dispatcher() {
  runDeferred();
  for (auto& cb : destroy_callbacks_) {
    cb();
  }
  event_free(post_event_);
  event_free(deferred_event_);
  ::close(post_fd_);
  event_base_free(base_);
}

TimerPtr Dispatcher::createTimer(std::function<void()> cb) {
  return std::make_unique<TimerImpl>(base_, std::move(cb));
}

FileEventPtr Dispatcher::createFileEvent(int fd, std::function<void(uint32_t)> cb, bool edge,
                                         uint32_t events) {
  return std::make_unique<FileEventImpl>(base_, fd, std::move(cb), edge, events);
}

void Dispatcher::post(std::function<void()> cb) {
  bool was_empty;
  {
    std::lock_guard<std::mutex> lock(post_lock_);
    was_empty = posted_.empty();
    posted_.push_back(std::move(cb));
  }
  if (was_empty) {
    uint64_t one = 1;
    ssize_t rc = ::write(post_fd_, &one, sizeof(one));
    (void)rc;
  }
}

void Dispatcher::defer(std::function<void()> cb) {
  deferred_.push_back(std::move(cb));
  if (!deferred_scheduled_) {
    deferred_scheduled_ = true;
    event_active(deferred_event_, EV_TIMEOUT, 0);
  }
}

void Dispatcher::deferredDelete(std::unique_ptr<DeferredDeletable> object) {
  to_delete_.push_back(std::move(object));
  if (!deferred_scheduled_) {
    deferred_scheduled_ = true;
    event_active(deferred_event_, EV_TIMEOUT, 0);
  }
}

void Dispatcher::run() {
  thread_id_ = std::this_thread::get_id();
  event_base_loop(base_, EVLOOP_NO_EXIT_ON_EMPTY);
  runDeferred();
}

void Dispatcher::exit() {
  if (isThisThread()) {
    event_base_loopbreak(base_);
    return;
  }
  post([this] { event_base_loopbreak(base_); });
}

void Dispatcher::onPostReady(int fd, short, void* arg) {
  uint64_t value;
  ssize_t rc = ::read(fd, &value, sizeof(value));
  (void)rc;
  static_cast<Dispatcher*>(arg)->runPosted();
}

void Dispatcher::runPosted() {
  // Two buffers take turns (the spare, empty but with capacity, becomes the queue), so a
  // busy loop does not allocate a new vector every time it runs its work.
  std::vector<std::function<void()>> work = std::move(spare_posted_);
  {
    std::lock_guard<std::mutex> lock(post_lock_);
    work.swap(posted_);
  }
  for (auto& cb : work) {
    cb();
  }
  work.clear();
  spare_posted_ = std::move(work);
}

void Dispatcher::onDeferredReady(int, short, void* arg) {
  static_cast<Dispatcher*>(arg)->runDeferred();
}

void Dispatcher::runDeferred() {
  // Callbacks may defer more work; loop until quiet.
  // The buffers take turns as in runPosted().
  while (!deferred_.empty() || !to_delete_.empty()) {
    std::vector<std::function<void()>> work = std::move(spare_deferred_);
    work.swap(deferred_);
    for (auto& cb : work) {
      cb();
    }
    work.clear();
    spare_deferred_ = std::move(work);
    std::vector<std::unique_ptr<DeferredDeletable>> doomed = std::move(spare_to_delete_);
    doomed.swap(to_delete_);
    doomed.clear();
    spare_to_delete_ = std::move(doomed);
  }
  deferred_scheduled_ = false;
}

} // namespace pounce::event
