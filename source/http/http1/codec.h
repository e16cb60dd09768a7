#pragma once

#include <cstdint>
#include <string>

#include "source/common/output_queue.h"
#include "source/common/time.h"
#include "source/http/codec.h"
#include "source/http/http1/parser.h"

namespace pounce::http::http1 {

// HTTP/1.1 server codec over the parser in parser.h. Sans-I/O: dispatch() takes bytes,
// responses go into the OutputQueue. One request is in flight at a time; pipelined
// requests wait in the connection's buffer until the current response is complete, so
// responses stay in order.
class ServerConnectionImpl : public ServerConnection, private ResponseEncoder {
public:
  ServerConnectionImpl(OutputQueue& output, ServerConnectionCallbacks& callbacks,
                       const CodecLimits& limits, TimeSource& time_source);

  // ServerConnection
  bool dispatch(Buffer& data) override;
  Protocol protocol() const override { return protocol_; }
  void shutdownNotice() override { draining_ = true; }
  bool idle() const override {
    return state_ == State::Head && !head_started_ && decoder_ == nullptr;
  }
  bool readingHead() const override { return state_ == State::Head && head_started_; }
  bool wantsClose() const override { return close_after_response_ || error_; }
  void onRemoteHalfClose() override;
  void onRequestHeadTimeout() override { protocolError(408, "request head timeout"); }
  void onAboveWriteBufferHighWatermark() override;
  void onBelowWriteBufferLowWatermark() override;
  void onConnectionClosed() override;

  uint32_t requestsServed() const { return requests_; }

private:
  // SwitchedToHttp2: an `Upgrade: h2c` request was taken; the connection's next codec
  // reads what follows.
  enum class State { Head, Body, WaitResponse, Upgraded, SwitchedToHttp2, Closed };

  // ResponseEncoder
  void setStreamCallbacks(StreamCallbacks* callbacks) override { stream_callbacks_ = callbacks; }
  void encode1xxHeaders(const ResponseHeaders& headers) override;
  void encodeHeaders(const ResponseHeaders& headers, bool end_stream) override;
  void encodeData(Buffer& data, bool end_stream) override;
  void encodeFile(FileHandleSharedPtr file, uint64_t offset, uint64_t length,
                  bool end_stream) override;
  void encodeTrailers(const HeaderMap& trailers) override;
  void resetStream() override;
  void readDisable(bool disable) override;
  bool aboveHighWatermark() const override { return above_high_watermark_; }
  bool canSendFile() const override { return true; }

  // A complete request head (HeadScanner found its end): parse it and start the stream.
  // False when the request was refused.
  bool onHead(std::string_view head);
  // Request body bytes, in order; `end` on the last.
  void onBody(std::string_view data, bool end);
  void onMessageComplete();

  // `headers`: the request's head when it was read whole (kept for the access log).
  void protocolError(int status, const char* details, RequestHeadersPtr headers = nullptr);
  void ensureStream();
  void onResponseComplete();
  void finishRequestCycle();

  OutputQueue& output_;
  ServerConnectionCallbacks& callbacks_;
  const CodecLimits& limits_;
  TimeSource& time_source_;
  State state_{State::Head};
  HeadScanner head_scanner_;
  ChunkDecoder chunk_decoder_;
  Protocol protocol_{Protocol::Http11};

  RequestDecoder* decoder_{nullptr};
  StreamCallbacks* stream_callbacks_{nullptr};
  HeaderMapPtr trailers_; // of a chunked request, parsed when its body ends
  uint32_t header_count_{0};
  bool head_started_{false};
  bool chunked_{false};
  bool expect_continue_{false};
  bool upgrade_request_{false};
  bool request_complete_{false};
  bool request_keep_alive_{true};
  bool is_head_request_{false};
  bool client_accepts_trailers_{false};
  uint64_t body_remaining_{0}; // Content-Length bodies
  uint64_t body_received_{0};
  bool discarding_body_{false};

  // Response state.
  bool response_started_{false};
  bool response_complete_{false};
  bool response_chunked_{false};
  bool response_has_body_{true};
  bool response_close_delimited_{false};
  // Counts `length` body bytes against a declared Content-Length: returns how many may go
  // out (the rest is dropped, and the connection closes after the response).
  uint64_t countBody(uint64_t length) {
    return response_length_known_ ? countDeclaredBody(length) : length;
  }
  uint64_t countDeclaredBody(uint64_t length);
  // The body ended: one shorter than its Content-Length closes the connection.
  void endBody() {
    if (response_length_known_ && response_remaining_ > 0) [[unlikely]] {
      onShortBody();
    }
  }
  [[gnu::cold]] void onShortBody();
  // The response declared a Content-Length (of a body that goes out): the bytes still owed.
  bool response_length_known_{false};
  uint64_t response_remaining_{0};
  bool close_after_response_{false};
  bool draining_{false};
  bool error_{false};
  bool above_high_watermark_{false};
  bool in_dispatch_{false};
  bool reading_paused_{false};
  bool stream_read_disabled_{false};
  uint32_t requests_{0};
};

} // namespace pounce::http::http1
