#include "pounce/filters/request_queue/v1/request_queue.pb.h"
#include "source/common/strings.h"
#include "source/filters/common/proto_duration.h"
#include "source/filters/request_queue/request_queue.h"
#include "source/http/filter_config.h"

namespace pounce::filters::request_queue {

namespace {

using ProtoConfig = pounce::filters::request_queue::v1::RequestQueue;

constexpr uint32_t kMaxSlots = 1000000;

class Factory : public http::FilterConfigFactory {
public:
  std::string name() const override { return "pounce.filters.request_queue"; }
  std::unique_ptr<google::protobuf::Message> createEmptyConfig() const override {
    return std::make_unique<ProtoConfig>();
  }

  absl::StatusOr<http::FilterFactoryCb>
  createFilterFactory(const google::protobuf::Message& message,
                      http::FactoryContext& context) const override {
    const auto& proto = dynamic_cast<const ProtoConfig&>(message);
    if (proto.max_concurrent() < 1 || proto.max_concurrent() > kMaxSlots) {
      return absl::InvalidArgumentError(
          "max_concurrent: required, between 1 and 1000000 (requests let through at once)");
    }
    const uint32_t max_queued =
        proto.has_max_queued() ? proto.max_queued() : proto.max_concurrent();
    if (max_queued > kMaxSlots) {
      return absl::InvalidArgumentError("max_queued: must be at most 1000000");
    }
    std::chrono::milliseconds max_wait{5000};
    if (proto.has_max_wait()) {
      const auto ns = toNanos(proto.max_wait());
      if (ns <= std::chrono::nanoseconds(0)) {
        return absl::InvalidArgumentError("max_wait: must be greater than 0");
      }
      // Timers have millisecond resolution: round up.
      max_wait = std::chrono::ceil<std::chrono::milliseconds>(ns);
    }
    uint64_t retry_after = 5;
    if (proto.has_retry_after()) {
      const auto ns = toNanos(proto.retry_after());
      if (ns < std::chrono::nanoseconds(0)) {
        return absl::InvalidArgumentError("retry_after: must not be negative");
      }
      retry_after = std::max<uint64_t>(
          1, static_cast<uint64_t>(std::chrono::ceil<std::chrono::seconds>(ns).count()));
    }

    const QueueStats stats = createQueueStats(context.server().stats(), context.listenerName());
    auto config =
        std::make_shared<Config>(proto.max_concurrent(), max_queued, proto.shadow(), stats);
    config->max_wait = max_wait;
    config->retry_after_seconds = retry_after;
    config->time_source = &context.server().timeSource();
    config->create_timer = [](event::Dispatcher& dispatcher, std::function<void()> cb) {
      return dispatcher.createTimer(std::move(cb));
    };
    return http::FilterFactoryCb::inPlace<RequestQueueFilter>(
        [config](void* at) { return new (at) RequestQueueFilter(*config); });
  }
};

POUNCE_REGISTER_FILTER(Factory);

} // namespace

} // namespace pounce::filters::request_queue
