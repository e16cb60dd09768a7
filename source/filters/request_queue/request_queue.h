#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "source/common/time.h"
#include "source/filters/request_queue/admission_queue.h"
#include "source/http/filter.h"

namespace pounce::filters::request_queue {

// Makes the max_wait timer of a waiting stream. Tests replace it to fire timers by hand.
using TimerFactory =
    std::function<event::TimerPtr(event::Dispatcher& dispatcher, std::function<void()> cb)>;

// The validated config and the queue: built once per chain, shared by every stream on every
// I/O thread.
struct Config {
  Config(uint32_t max_concurrent, uint32_t max_queued, bool shadow, QueueStats stats)
      : queue(max_concurrent, max_queued, shadow, stats), stats(stats) {}

  AdmissionQueue queue;
  QueueStats stats;
  std::chrono::milliseconds max_wait{5000};
  uint64_t retry_after_seconds{5};
  TimeSource* time_source{nullptr};
  TimerFactory create_timer;
};
using ConfigSharedPtr = std::shared_ptr<Config>;

// The metric series of one listener's queue (families are created on first use).
QueueStats createQueueStats(stats::Store& store, const std::string& listener);

// Holds a request until it gets a slot of the queue; sheds it with 503 when it cannot.
class RequestQueueFilter final : public http::StreamFilter {
public:
  // `config` belongs to the chain's factory, which outlives every stream on the chain (no
  // reference count per stream: a shared_ptr copy here cost two atomic operations per
  // request). Nothing of the stream refers to it after onDestroy().
  explicit RequestQueueFilter(Config& config) : config_(&config) {}

  // http::StreamDecoderFilter
  http::FilterStatus decodeHeaders(http::RequestHeaders& headers, bool end_stream) override;
  void onDestroy() override;

private:
  void onAdmitted();
  void onWaitTimeout();
  void shed();
  std::chrono::nanoseconds waited() const;

  Config* config_;         // the queue changes: shared by every stream of the chain
  WaiterSharedPtr waiter_; // while queued (or handed a slot not yet taken up)
  event::TimerPtr timer_;
  MonotonicTime queued_at_{};
  bool holds_slot_{false}; // admitted: release the slot when the stream ends
};

} // namespace pounce::filters::request_queue
