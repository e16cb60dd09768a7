#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>

#include "source/common/event/dispatcher.h"
#include "source/common/stats.h"

namespace pounce::filters::request_queue {

// A request waiting for a slot. Created by the stream's filter on the stream's I/O thread.
struct Waiter {
  explicit Waiter(event::Dispatcher& d) : dispatcher(d) {}

  // The I/O thread that owns the stream: the slot is handed over through its post().
  event::Dispatcher& dispatcher;
  // Resumes the stream. Set and cleared only on the owning thread; cleared when the stream
  // goes away, so a hand-over that arrives late does nothing.
  std::function<void()> resume;

  // Guarded by the queue's mutex.
  enum class State { New, Queued, Admitted, Cancelled };
  State state{State::New};
  std::list<std::shared_ptr<Waiter>>::iterator position;
};
using WaiterSharedPtr = std::shared_ptr<Waiter>;

// Per-listener metric series of one queue.
struct QueueStats {
  const stats::Series* in_flight{nullptr};   // queue_in_flight (gauge)
  const stats::Series* queued{nullptr};      // queue_queued (gauge)
  const stats::Series* shed{nullptr};        // queue_shed_total
  const stats::Series* shadow_shed{nullptr}; // queue_shadow_shed_total
  const stats::Series* wait{nullptr};        // queue_wait_seconds (histogram)
};

// At most `max_concurrent` slots, and a first-in-first-out queue of at most `max_queued`
// waiters, shared by every I/O thread of a process.
//
// Streams live on their own I/O thread, so a slot freed on one thread is handed to a waiter
// of another by posting to the waiter's dispatcher; the slot belongs to the waiter from the
// moment it is handed over (state Admitted), even before the post runs, so the order of
// admission is the order of arrival across all threads.
//
// The counts sit in one atomic word (queued << 32 | in flight). While nobody waits, admitting
// and releasing are a single compare-and-swap; the mutex is taken only when the queue is (or
// is about to become) non-empty. Invariant: while anyone waits, every slot is taken.
class AdmissionQueue {
public:
  enum class Result { Admitted, Queued, Shed };

  AdmissionQueue(uint32_t max_concurrent, uint32_t max_queued, bool shadow, QueueStats stats);

  // A new request from a stream on `dispatcher`'s thread. Admitted: it holds a slot
  // (release() it when done). Queued: `*waiter` is set to the request's place in the queue;
  // a later release() hands it a slot by posting waiter->resume to `dispatcher`. Shed: no
  // slot and no room to wait. In shadow mode every request is admitted; those that would
  // have been shed are counted. Only a queued request costs an allocation.
  Result tryAdmit(event::Dispatcher& dispatcher, WaiterSharedPtr* waiter);
  // Gives up a slot: to the oldest waiter if there is one, otherwise frees it.
  void release();
  // Takes a waiter out of the queue (its client went away, or it waited too long). Returns
  // false if it had already been handed a slot, which the caller then owns; true otherwise.
  bool cancel(Waiter& waiter);

  uint32_t inFlight() const;
  uint32_t queued() const;

private:
  const uint32_t max_concurrent_;
  const uint32_t max_queued_;
  const bool shadow_;
  const QueueStats stats_;
  std::atomic<uint64_t> state_{0};
  std::mutex lock_;
  std::list<WaiterSharedPtr> waiters_; // guarded by lock_
};

} // namespace pounce::filters::request_queue
