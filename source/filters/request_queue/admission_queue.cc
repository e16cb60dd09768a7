#include "source/filters/request_queue/admission_queue.h"

namespace pounce::filters::request_queue {

namespace {

constexpr uint64_t kOneQueued = uint64_t{1} << 32;

uint32_t inFlightOf(uint64_t state) { return static_cast<uint32_t>(state); }
uint32_t queuedOf(uint64_t state) { return static_cast<uint32_t>(state >> 32); }

} // namespace

AdmissionQueue::AdmissionQueue(uint32_t max_concurrent, uint32_t max_queued, bool shadow,
                               QueueStats stats)
    : max_concurrent_(max_concurrent), max_queued_(max_queued), shadow_(shadow), stats_(stats) {}

AdmissionQueue::Result AdmissionQueue::tryAdmit(event::Dispatcher& dispatcher,
                                                WaiterSharedPtr* waiter) {
  if (shadow_) {
    const uint64_t before = state_.fetch_add(1, std::memory_order_acq_rel);
    if (inFlightOf(before) >= static_cast<uint64_t>(max_concurrent_) + max_queued_) {
      stats_.shadow_shed->inc();
    }
    stats_.in_flight->inc();
    return Result::Admitted;
  }
  uint64_t s = state_.load(std::memory_order_acquire);
  while (queuedOf(s) == 0 && inFlightOf(s) < max_concurrent_) {
    if (state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel)) {
      stats_.in_flight->inc();
      return Result::Admitted;
    }
  }
  std::lock_guard<std::mutex> guard(lock_);
  s = state_.load(std::memory_order_acquire);
  while (true) {
    if (queuedOf(s) == 0 && inFlightOf(s) < max_concurrent_) {
      // A slot was freed meanwhile.
      if (state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel)) {
        stats_.in_flight->inc();
        return Result::Admitted;
      }
      continue;
    }
    if (queuedOf(s) >= max_queued_) {
      return Result::Shed;
    }
    // Fails if a lock-free release freed a slot meanwhile; then look again.
    if (state_.compare_exchange_weak(s, s + kOneQueued, std::memory_order_acq_rel)) {
      break;
    }
  }
  auto queued = std::make_shared<Waiter>(dispatcher);
  queued->state = Waiter::State::Queued;
  queued->position = waiters_.insert(waiters_.end(), queued);
  *waiter = std::move(queued);
  stats_.queued->inc();
  return Result::Queued;
}

void AdmissionQueue::release() {
  if (shadow_) {
    state_.fetch_sub(1, std::memory_order_acq_rel);
    stats_.in_flight->dec();
    return;
  }
  uint64_t s = state_.load(std::memory_order_acquire);
  while (queuedOf(s) == 0) {
    if (state_.compare_exchange_weak(s, s - 1, std::memory_order_acq_rel)) {
      stats_.in_flight->dec();
      return;
    }
  }
  std::lock_guard<std::mutex> guard(lock_);
  s = state_.load(std::memory_order_acquire);
  while (queuedOf(s) == 0) {
    if (state_.compare_exchange_weak(s, s - 1, std::memory_order_acq_rel)) {
      stats_.in_flight->dec();
      return;
    }
  }
  // Someone waits. Only holders of lock_ change the queued count while it is non-zero (the
  // lock-free paths require it to be zero), so the list holds exactly that many waiters.
  WaiterSharedPtr next = std::move(waiters_.front());
  waiters_.pop_front();
  state_.fetch_sub(kOneQueued, std::memory_order_acq_rel); // the slot moves to `next`
  next->state = Waiter::State::Admitted;
  stats_.queued->dec();
  // Posted under the lock: the waiter's stream cannot finish tearing down (cancel() takes
  // the lock) until the post is queued, and a dispatcher outlives its streams.
  next->dispatcher.post([next] {
    // Taken out first: the stream clears resume while it runs.
    std::function<void()> resume;
    resume.swap(next->resume);
    if (resume) {
      resume();
    }
  });
}

bool AdmissionQueue::cancel(Waiter& waiter) {
  std::lock_guard<std::mutex> guard(lock_);
  if (waiter.state != Waiter::State::Queued) {
    return waiter.state != Waiter::State::Admitted;
  }
  waiters_.erase(waiter.position);
  waiter.state = Waiter::State::Cancelled;
  state_.fetch_sub(kOneQueued, std::memory_order_acq_rel);
  stats_.queued->dec();
  return true;
}

uint32_t AdmissionQueue::inFlight() const {
  return inFlightOf(state_.load(std::memory_order_acquire));
}

uint32_t AdmissionQueue::queued() const { return queuedOf(state_.load(std::memory_order_acquire)); }

} // namespace pounce::filters::request_queue
