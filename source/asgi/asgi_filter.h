#pragma once

#include <memory>

#include "source/asgi/app.h"
#include "source/asgi/bridge.h"
#include "source/asgi/websocket_tunnel.h"
#include "source/common/server_context.h"
#include "source/http/filter.h"

namespace pounce::asgi {

// The terminal filter on the I/O thread: hands each request to a Python loop and applies
// the app's response events to the stream. It never touches Python itself. A WebSocket
// request gets a WebSocketTunnel for its I/O side.
class AsgiFilter final : public http::StreamFilter, public http::DownstreamWatermarkCallbacks {
public:
  // `websocket` and `server` outlive the filter (the chain's factory holds them).
  AsgiFilter(std::shared_ptr<AsgiApp> app, const WebSocketConfig& websocket, ServerContext* server)
      : app_(std::move(app)), websocket_config_(websocket), server_(server) {}
  ~AsgiFilter() override;

  // http::StreamDecoderFilter
  http::FilterStatus decodeHeaders(http::RequestHeaders& headers, bool end_stream) override;
  http::FilterStatus decodeData(Buffer& data, bool end_stream) override;
  http::FilterStatus decodeTrailers(http::HeaderMap& trailers) override;
  void onDestroy() override;
  void onDrainStarted() override;

  // http::DownstreamWatermarkCallbacks
  void onAboveWriteBufferHighWatermark() override;
  void onBelowWriteBufferLowWatermark() override;

  // Applies one response event (IoChannel, I/O thread). `next` is the following event of
  // the same batch, which a response head may be merged with; returns true if it was.
  bool apply(OutEvent& event, OutEvent* next);

private:
  friend class WebSocketTunnel;

  void pushBody(Buffer& data, bool more);
  void maybeWakeSender();
  void recordAppTime();

  std::shared_ptr<AsgiApp> app_;
  const WebSocketConfig& websocket_config_;
  ServerContext* server_;
  std::unique_ptr<WebSocketTunnel> websocket_; // set for a WebSocket request
  StreamRef stream_;
  LoopThread* loop_{nullptr};
  MonotonicTime handed_over_{};
  bool destroyed_{false};
  bool app_time_recorded_{false};
  std::unique_ptr<http::HeaderMap> pending_trailers_;
};

} // namespace pounce::asgi
