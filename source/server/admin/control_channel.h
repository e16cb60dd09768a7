#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "pounce/admin/v1/control.pb.h"
#include "source/common/buffer.h"
#include "source/common/event/dispatcher.h"

namespace pounce::server::admin {

using ControlRequest = pounce::admin::v1::ControlRequest;
using ControlResponse = pounce::admin::v1::ControlResponse;

// One end of the control channel between the supervisor and a worker process: a connected
// stream socket (one end of a socketpair) carrying ControlMessages, each a 4-byte
// big-endian length and the serialized message. Either end may call the other; requests
// are answered in any order (by id). Runs on one dispatcher's thread; never blocks.
class ControlChannel {
public:
  // Answers a request: `respond` may be called later, once.
  using RequestHandler =
      std::function<void(const ControlRequest&, std::function<void(ControlResponse)> respond)>;
  // nullopt: the channel closed or the call timed out.
  using ResponseCallback = std::function<void(std::optional<ControlResponse>)>;

  // Takes ownership of `fd` (made non-blocking). `on_closed` runs once when the peer goes
  // away or the stream is corrupt. Calls still waiting when the channel closes or is
  // destroyed get nullopt.
  ControlChannel(event::Dispatcher& dispatcher, int fd, RequestHandler handler,
                 std::function<void()> on_closed);
  ~ControlChannel();
  ControlChannel(const ControlChannel&) = delete;
  ControlChannel& operator=(const ControlChannel&) = delete;

  bool open() const { return fd_ >= 0; }
  // Calls sent and not yet answered (nor timed out).
  size_t outstanding() const { return pending_.size(); }
  // Sends a request; `done` gets the response, or nullopt after `timeout` or when the
  // channel closes first.
  void call(const ControlRequest& request, std::chrono::milliseconds timeout,
            ResponseCallback done);

  // The largest message either side accepts.
  static constexpr uint32_t kMaxMessage = 64u << 20;

private:
  struct Pending {
    ResponseCallback done;
    event::TimerPtr timer;
  };

  void onEvents(uint32_t events);
  void onReadable();
  void onMessage(const std::string& bytes);
  void send(const pounce::admin::v1::ControlMessage& message);
  void flush();
  void closeChannel();

  event::Dispatcher& dispatcher_;
  int fd_;
  RequestHandler handler_;
  std::function<void()> on_closed_;
  event::FileEventPtr file_event_;
  Buffer in_;
  Buffer out_;
  uint64_t next_id_{1};
  std::unordered_map<uint64_t, Pending> pending_;
  // Cleared when the channel is destroyed, so late responders and timers do nothing.
  std::shared_ptr<bool> alive_;
};

} // namespace pounce::server::admin
