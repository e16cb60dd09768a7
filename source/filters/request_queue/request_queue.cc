#include "source/filters/request_queue/request_queue.h"

#include <string>

namespace pounce::filters::request_queue {

QueueStats createQueueStats(stats::Store& store, const std::string& listener) {
  const std::vector<std::string> labels{listener};
  QueueStats stats;
  stats.in_flight =
      &store.series(store.family("queue_in_flight", "Requests past the request_queue filter.",
                                 stats::Type::Gauge, {"listener"}),
                    labels);
  stats.queued =
      &store.series(store.family("queue_queued", "Requests waiting in the request_queue filter.",
                                 stats::Type::Gauge, {"listener"}),
                    labels);
  stats.shed = &store.series(
      store.family("queue_shed_total",
                   "Requests the request_queue filter answered 503 (queue full or waited too "
                   "long).",
                   stats::Type::Counter, {"listener"}),
      labels);
  stats.shadow_shed = &store.series(
      store.family("queue_shadow_shed_total",
                   "Requests the request_queue filter would have shed, let through in shadow "
                   "mode.",
                   stats::Type::Counter, {"listener"}),
      labels);
  stats.wait = &store.series(
      store.family("queue_wait_seconds",
                   "Time requests waited in the request_queue filter (0 when let through at "
                   "once).",
                   stats::Type::Histogram, {"listener"},
                   {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}),
      labels);
  return stats;
}

http::FilterStatus RequestQueueFilter::decodeHeaders(http::RequestHeaders&, bool) {
  WaiterSharedPtr waiter;
  switch (config_->queue.tryAdmit(decoder_callbacks_->dispatcher(), &waiter)) {
  case AdmissionQueue::Result::Admitted:
    holds_slot_ = true;
    config_->stats.wait->observe(0);
    return http::FilterStatus::Continue;
  case AdmissionQueue::Result::Shed:
    shed();
    return http::FilterStatus::StopIteration;
  case AdmissionQueue::Result::Queued:
    break;
  }
  waiter_ = std::move(waiter);
  queued_at_ = config_->time_source->monotonicTime();
  waiter_->resume = [this] { onAdmitted(); };
  timer_ = config_->create_timer(decoder_callbacks_->dispatcher(), [this] { onWaitTimeout(); });
  timer_->enableTimer(config_->max_wait);
  return http::FilterStatus::StopIteration;
}

void RequestQueueFilter::onAdmitted() {
  // On this stream's thread, from the post of the release() that handed over the slot.
  waiter_->resume = nullptr;
  waiter_.reset();
  timer_->disableTimer();
  holds_slot_ = true;
  const auto wait = waited();
  config_->stats.wait->observe(std::chrono::duration<double>(wait).count());
  decoder_callbacks_->streamInfo().timings.emplace_back("queue", wait);
  decoder_callbacks_->continueDecoding();
}

void RequestQueueFilter::onWaitTimeout() {
  if (waiter_ == nullptr || !config_->queue.cancel(*waiter_)) {
    // A slot was handed over just now; its post will resume the stream.
    return;
  }
  waiter_->resume = nullptr;
  waiter_.reset();
  const auto wait = waited();
  config_->stats.wait->observe(std::chrono::duration<double>(wait).count());
  decoder_callbacks_->streamInfo().timings.emplace_back("queue", wait);
  shed();
}

void RequestQueueFilter::shed() {
  config_->stats.shed->inc();
  decoder_callbacks_->streamInfo().setFlag(http::ResponseFlag::LoadShed);
  const std::string retry_after = std::to_string(config_->retry_after_seconds);
  decoder_callbacks_->sendLocalReply(
      503, "Service Unavailable\n",
      [&retry_after](http::ResponseHeaders& h) { h.addLowercase("retry-after", retry_after); });
}

void RequestQueueFilter::onDestroy() {
  if (timer_ != nullptr) {
    timer_->disableTimer();
  }
  if (waiter_ != nullptr) {
    waiter_->resume = nullptr;
    if (!config_->queue.cancel(*waiter_)) {
      // Handed a slot that this stream will never use: pass it on.
      config_->queue.release();
    }
    waiter_.reset();
  }
  if (holds_slot_) {
    holds_slot_ = false;
    config_->queue.release();
  }
}

std::chrono::nanoseconds RequestQueueFilter::waited() const {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
      config_->time_source->monotonicTime() - queued_at_);
}

} // namespace pounce::filters::request_queue
