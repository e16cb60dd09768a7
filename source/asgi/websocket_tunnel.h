#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "source/asgi/bridge.h"
#include "source/common/event/dispatcher.h"
#include "source/common/server_context.h"
#include "source/http/filter.h"
#include "source/http/websocket/handshake.h"
#include "source/http/websocket/session.h"

namespace pounce::asgi {

class AsgiFilter;

// The ASGI filter's WebSocket settings (the `websocket` block of its config).
struct WebSocketConfig {
  bool enabled{true};
  http::websocket::SessionConfig session;
};

// The I/O-thread side of one ASGI WebSocket. The filter creates it for a request that asks
// for a WebSocket; it checks the opening handshake, answers the app's accept with the 101
// (HTTP/1.1) or 200 (HTTP/2 extended CONNECT) through the filter API, and from then on runs
// a websocket::Session over the stream's body bytes in both directions: in HTTP/1.1 these
// are the raw bytes after the 101, in HTTP/2 the stream's DATA. Only what RequestHeaders
// says tells the two apart.
//
// Whole messages go to the app's loop as InEvent::WsMessage; the app's websocket.send,
// accept and close come back as OutEvents. Backpressure both ways reuses the stream's
// counters: queued_out_bytes/downstream_blocked/send_waiter hold the app's send while the
// client does not read, and unconsumed_in_bytes/reading_paused stop reading the client
// while the app does not receive.
class WebSocketTunnel : private http::websocket::SessionCallbacks {
public:
  // Checks the handshake in `headers`. A bad one is answered (400 or 426) here and gives
  // nullptr; the app never sees it.
  static std::unique_ptr<WebSocketTunnel> create(AsgiFilter& filter, const WebSocketConfig& config,
                                                 ServerContext* server,
                                                 const http::RequestHeaders& headers);
  ~WebSocketTunnel() override;

  // The part of the stream handed to Python (subprotocols offered). Called once.
  std::unique_ptr<WebSocketStream> takeStreamState();
  // The stream and its loop, once the filter handed the request over.
  void attach(StreamRef stream, LoopThread& loop);

  // Body bytes from the client (decodeData).
  void onData(Buffer& data, bool end_stream);
  // The app's events. `next` is the following event of the same stream in the batch.
  void accept(OutEvent& event);
  void send(OutEvent& event, const OutEvent* next);
  void close(OutEvent& event);
  // The app caught up with the messages it was given: read the client again.
  void resumeReading();
  // The server is draining: close with 1001 (going away).
  void onDrainStarted();
  // The client's side of the connection is above / back below its output watermark. Above
  // it, the client is not read either: what it sends (pings above all) makes output that
  // would pile up without bound.
  void onOutputBlocked(bool blocked);
  // The stream is ending (closed, reset or timed out). Fills in what websocket.disconnect
  // reports: the session's close code and reason, or 1006 if it never closed cleanly.
  void finish(uint16_t& code, std::string& reason);

private:
  WebSocketTunnel(AsgiFilter& filter, const WebSocketConfig& config, ServerContext* server,
                  http::websocket::HandshakeRequest request);

  // http::websocket::SessionCallbacks
  void onMessage(http::websocket::MessageType type, Buffer& payload) override;
  void onClose(const http::websocket::CloseInfo& info) override;

  http::DecoderFilterCallbacks& callbacks();
  // Gives the session the bytes held back and then `data` (what it does not use is kept).
  void feed(Buffer& data);
  // After every call into the session: writes what it queued, ends the stream once it is
  // closed, and arms the timer for its next deadline.
  void flush();
  void armTimer();
  void onTimer();
  // Pauses reading the client while any reason holds (see the flags below).
  void updateSocketPause();

  AsgiFilter& filter_;
  const WebSocketConfig& config_;
  ServerContext* server_;
  http::websocket::HandshakeRequest request_;
  std::unique_ptr<http::websocket::Session> session_;
  StreamRef stream_;
  LoopThread* loop_{nullptr};
  // Client bytes not yet given to the session: before the accept, or while it is paused.
  Buffer pending_;
  event::TimerPtr timer_;
  MonotonicTime timer_deadline_{};
  std::string close_reason_;
  uint16_t close_code_{http::websocket::close_code::kAbnormal};
  bool closed_{false};      // the session reported onClose
  bool finished_{false};    // the stream ended (finish() ran)
  bool input_ended_{false}; // the client will send nothing more
  bool app_closed_{false};  // the app sent websocket.close: its messages go nowhere now
  bool draining_{false};
  // Reasons to stop reading the client, and whether the stream is paused now.
  bool held_before_accept_{false}; // too much arrived before the app accepted
  bool output_blocked_{false};     // the client does not read what is sent to it
  bool socket_paused_{false};
};

} // namespace pounce::asgi
