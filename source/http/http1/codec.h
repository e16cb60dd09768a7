#pragma once

#include <http_parser.h>

#include <cstdint>
#include <string>

#include "source/common/output_queue.h"
#include "source/common/time.h"
#include "source/http/codec.h"

namespace pounce::http::http1 {

// Checks the bytes of a request head (request line + header lines) before the parser
// sees them: CRLF line endings only (no bare CR or LF), no NUL, no obs-fold, and the size
// limits. http-parser is lenient about all of these; request smuggling lives in the gaps.
class HeadScanner {
public:
  struct Result {
    enum class Kind { NeedMore, Complete, Error };
    Kind kind{Kind::NeedMore};
    size_t head_length{0}; // Complete: bytes up to and including the blank line
    int status{0};         // Error: 400, 414 or 431
    const char* details{""};
  };
  Result scan(std::string_view data, uint32_t max_head_bytes, uint32_t max_request_line);
  void reset() { *this = HeadScanner(); }

private:
  size_t pos_{0};
  size_t line_start_{0};
  bool seen_request_line_{false};
};

// Checks chunked framing (sizes, extensions, CRLFs, trailer lines) ahead of the parser.
class ChunkScanner {
public:
  // Returns how many bytes of `data` are valid framing or chunk data, or -1 on an error.
  // Stops after the final CRLF of the message.
  int64_t scan(std::string_view data);
  bool done() const { return state_ == State::Done; }
  uint64_t trailerBytes() const { return trailer_bytes_; }
  void reset() { *this = ChunkScanner(); }

private:
  enum class State {
    SizeStart,
    Size,
    SizeWs,
    Ext,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    TrailerStart,
    Trailer,
    TrailerLf,
    FinalLf,
    Done
  };
  State state_{State::SizeStart};
  uint64_t size_{0};
  int digits_{0};
  uint64_t trailer_bytes_{0};
};

// HTTP/1.1 server codec over http-parser. Sans-I/O: dispatch() takes bytes, responses go
// into the OutputQueue. One request is in flight at a time; pipelined requests wait in the
// connection's buffer until the current response is complete, so responses stay in order.
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

  // http-parser callbacks.
  static int onMessageBeginCb(http_parser* p);
  static int onUrlCb(http_parser* p, const char* at, size_t len);
  static int onHeaderFieldCb(http_parser* p, const char* at, size_t len);
  static int onHeaderValueCb(http_parser* p, const char* at, size_t len);
  static int onHeadersCompleteCb(http_parser* p);
  static int onBodyCb(http_parser* p, const char* at, size_t len);
  static int onMessageCompleteCb(http_parser* p);
  int onHeadersComplete();
  int onBody(const char* at, size_t len);
  int onMessageComplete();
  bool finishHeaderField();

  bool feed(std::string_view bytes);
  void protocolError(int status, const char* details);
  void ensureStream();
  void onResponseComplete();
  void finishRequestCycle();
  void startNextRequest();

  OutputQueue& output_;
  ServerConnectionCallbacks& callbacks_;
  const CodecLimits& limits_;
  TimeSource& time_source_;
  http_parser parser_;
  State state_{State::Head};
  HeadScanner head_scanner_;
  ChunkScanner chunk_scanner_;
  Protocol protocol_{Protocol::Http11};

  RequestDecoder* decoder_{nullptr};
  StreamCallbacks* stream_callbacks_{nullptr};
  RequestHeadersPtr headers_;
  HeaderMapPtr trailers_;
  bool parsing_value_{false};
  bool field_is_new_{true};
  uint32_t header_count_{0};
  int content_length_count_{0};
  int host_count_{0};
  int transfer_encoding_count_{0};
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
