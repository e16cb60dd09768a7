#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <vector>

#include "source/common/event/dispatcher.h"
#include "source/common/server_context.h"
#include "source/common/stats.h"
#include "source/http/active_stream.h"
#include "source/http/codec.h"
#include "source/http/filter.h"
#include "source/http/filter_chain.h"
#include "source/http/http2/settings.h"
#include "source/network/connection.h"

namespace pounce::http {

// A listener's HTTP settings, fixed when the listener is built.
struct HttpSettings {
  std::string listener_name;
  CodecLimits limits;
  std::chrono::milliseconds header_timeout{10000};
  std::chrono::milliseconds keep_alive_timeout{5000};
  std::chrono::milliseconds request_timeout{60000}; // 0 = none
  std::chrono::milliseconds shutdown_timeout{10000};
  http2::Http2Settings http2;
};

// Core counters of one listener.
struct ListenerStats {
  const stats::Series* connections_total;
  const stats::Series* connections_active;
  const stats::Series* requests_total;
  const stats::Series* protocol_errors;
  const stats::Series* responses_by_class[5]; // 1xx..5xx
  const stats::Series* downstream_resets;
  static ListenerStats create(stats::Store& store, const std::string& listener);
};

// One listener's state on one I/O thread. Only that thread touches it, so swapping the
// chain is a pointer store; the admin API posts the new chain to every I/O thread.
class ListenerRuntime {
public:
  ListenerRuntime(std::shared_ptr<const HttpSettings> settings, FilterChainSharedPtr chain,
                  ListenerStats stats)
      : settings_(std::move(settings)), chain_(std::move(chain)), stats_(stats) {}
  const HttpSettings& settings() const { return *settings_; }
  const FilterChainSharedPtr& chain() const { return chain_; }
  void setChain(FilterChainSharedPtr chain) { chain_ = std::move(chain); }
  const ListenerStats& stats() const { return stats_; }

private:
  std::shared_ptr<const HttpSettings> settings_;
  FilterChainSharedPtr chain_;
  ListenerStats stats_;
};

// Envoy's HTTP connection manager: owns the codec of one connection and the streams on it,
// enforces the connection's timeouts, and runs each stream through its filter chain.
class ConnectionManager : public network::ConnectionCallbacks,
                          public ServerConnectionCallbacks,
                          public StreamParent {
public:
  ConnectionManager(network::Connection& connection, ListenerRuntime& listener,
                    ServerContext& server, uint32_t worker_index);
  ~ConnectionManager() override;

  // Begin draining: no new requests after the current ones; close when idle.
  void startDrain();
  bool idle() const { return streams_.empty() && (codec_ == nullptr || codec_->idle()); }

  // network::ConnectionCallbacks
  void onData(Buffer& data, bool end_stream) override;
  void onEvent(network::ConnectionEvent event) override;
  void onAboveWriteBufferHighWatermark() override;
  void onBelowWriteBufferLowWatermark() override;

  // ServerConnectionCallbacks
  RequestDecoder& newStream(ResponseEncoder& encoder) override;
  void onCodecOutput() override;
  void readDisable(bool disable) override;
  void closeConnection(bool flush) override;
  bool upgradeToHttp2(RequestHeadersPtr& headers) override;

  network::Connection& connection() { return connection_; }
  ListenerRuntime& listener() { return listener_; }
  ServerContext& server() { return server_; }
  uint32_t workerIndex() const { return worker_index_; }

  // StreamParent
  event::Dispatcher& streamDispatcher() override { return connection_.dispatcher(); }
  const HttpSettings& streamSettings() const override { return listener_.settings(); }
  const ListenerStats* streamStats() const override { return &listener_.stats(); }
  bool streamDraining() const override { return draining_; }
  bool closedForDrain() const override { return closed_for_drain_; }
  void onStreamDone(ActiveStream& stream) override;
  void onRequestDeadline(ActiveStream& stream, MonotonicTime deadline) override {
    ensureTimerBy(deadline);
  }

private:
  // Picks the codec from the first bytes (and ALPN): false while the bytes could still be
  // the start of the HTTP/2 connection preface.
  bool createCodec(const Buffer& data);
  void switchToHttp2(Buffer& data);
  void onIdleTimer();
  // Makes the idle timer fire no later than `deadline` (re-arms only if it would be late).
  void ensureTimerBy(MonotonicTime deadline);

  network::Connection& connection_;
  ListenerRuntime& listener_;
  ServerContext& server_;
  const uint32_t worker_index_;
  ServerConnectionPtr codec_;
  std::list<std::unique_ptr<ActiveStream>> streams_;
  event::TimerPtr idle_timer_;
  MonotonicTime idle_since_;
  MonotonicTime head_started_at_{};
  MonotonicTime timer_deadline_{};
  uint64_t requests_started_{0};
  uint64_t next_stream_id_{1};
  // An `Upgrade: h2c` request taken by the HTTP/1.1 codec, and its decoded HTTP2-Settings.
  RequestHeadersPtr h2c_request_;
  std::string h2c_settings_;
  // An HTTP/2 flushing close that makes no progress (a client that stopped reading) is cut
  // after header_timeout.
  uint64_t close_bytes_sent_{0};
  MonotonicTime close_checked_at_{};
  bool close_requested_{false};
  // Set when a drain found this HTTP/1.1 connection idle: it closes then, unless a request
  // came meanwhile (answered with Connection: close).
  MonotonicTime drain_idle_deadline_{};
  bool draining_{false};
  bool closed_{false};
  bool closed_for_drain_{false}; // this side closed it while the server drained
};

} // namespace pounce::http
