#pragma once

#include <memory>
#include <string>
#include <vector>

#include "source/common/event/dispatcher.h"
#include "source/http/active_stream.h"
#include "source/http/conn_manager.h"
#include "source/http/filter_chain.h"
#include "source/http/filter_config.h"
#include "test/test_common/fake_server.h"

namespace pounce::test {

// What the client would have received.
struct RecordedResponse {
  int status{0};
  http::ResponseHeaders headers;
  std::string body;
  bool complete{false};
  bool reset{false};
  std::unique_ptr<http::HeaderMap> trailers;
  std::vector<int> informational; // 1xx statuses
  uint64_t file_bytes{0};         // body bytes that reached the codec as file ranges
  int read_disabled{0};
};

// A ResponseEncoder that records what it is given.
class RecordingEncoder : public http::ResponseEncoder {
public:
  explicit RecordingEncoder(RecordedResponse& out) : out_(out) {}
  void setStreamCallbacks(http::StreamCallbacks* callbacks) override { callbacks_ = callbacks; }
  void encode1xxHeaders(const http::ResponseHeaders& headers) override {
    out_.informational.push_back(headers.status());
  }
  void encodeHeaders(const http::ResponseHeaders& headers, bool end_stream) override {
    out_.status = headers.status();
    out_.headers = headers;
    out_.complete = end_stream;
  }
  void encodeData(Buffer& data, bool end_stream) override {
    out_.body += data.toString();
    data.clear();
    out_.complete = end_stream;
  }
  void encodeFile(FileHandleSharedPtr file, uint64_t offset, uint64_t length,
                  bool end_stream) override;
  void encodeTrailers(const http::HeaderMap& trailers) override {
    out_.trailers = std::make_unique<http::HeaderMap>(trailers);
    out_.complete = true;
  }
  void resetStream() override { out_.reset = true; }
  void readDisable(bool disable) override { out_.read_disabled += disable ? 1 : -1; }
  bool aboveHighWatermark() const override { return false; }
  bool canSendFile() const override { return can_send_file; }
  http::Protocol protocol() const override { return http::Protocol::Http11; }

  http::StreamCallbacks* callbacks() { return callbacks_; }
  bool can_send_file{true};

private:
  RecordedResponse& out_;
  http::StreamCallbacks* callbacks_{nullptr};
};

// Runs a request through a real ActiveStream with the given filters, recording the
// response. Use it to test a filter (or several, in order) without sockets.
class FilterHarness : public http::StreamParent {
public:
  // `factories` in chain order; the last should be terminal.
  explicit FilterHarness(std::vector<http::FilterFactoryCb> factories,
                         http::HttpSettings settings = {});
  ~FilterHarness() override;

  // Builds the chain from registered filter configs written in YAML, e.g.
  //   {"pounce.filters.health", "path: /health"}.
  static absl::StatusOr<std::vector<http::FilterFactoryCb>>
  factoriesFromYaml(const std::vector<std::pair<std::string, std::string>>& filters,
                    ServerContext& server);

  http::StreamInfo& info();
  void sendHeaders(http::RequestHeadersPtr headers, bool end_stream);
  void sendData(std::string_view data, bool end_stream);
  void sendTrailers(http::HeaderMapPtr trailers);
  // The codec rejected the request.
  void protocolError(int status);
  // The client went away.
  void clientReset();
  // Runs deferred and posted work on the harness's dispatcher.
  void runPending();
  // Lets the stream check its request_timeout against the (simulated) time now.
  void checkRequestTimeout();

  static http::RequestHeadersPtr
  request(std::string method, std::string path,
          std::vector<std::pair<std::string, std::string>> headers = {});

  RecordedResponse response;
  RecordingEncoder encoder{response};
  event::Dispatcher dispatcher;
  bool stream_done{false};

  // StreamParent
  event::Dispatcher& streamDispatcher() override { return dispatcher; }
  const http::HttpSettings& streamSettings() const override { return settings_; }
  void onStreamDone(http::ActiveStream& stream) override { stream_done = true; }
  void onRequestDeadline(http::ActiveStream& stream, MonotonicTime deadline) override;

  SimulatedTimeSource time;
  network::Address peer;

private:
  http::HttpSettings settings_;
  std::unique_ptr<http::ActiveStream> stream_;
  event::TimerPtr deadline_timer_;
};

} // namespace pounce::test
