#pragma once

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "source/common/output_queue.h"
#include "source/common/time.h"
#include "source/http/codec.h"
#include "source/http/http2/settings.h"

namespace pounce::http::http2 {

// The client connection preface (RFC 9113 §3.4) that starts every HTTP/2 connection.
inline constexpr std::string_view kClientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

// Parses an RFC 9218 Priority field value ("u=1, i"): urgency 0-7 and incremental.
// Returns false if it names neither.
bool parsePriority(std::string_view value, uint32_t& urgency, bool& incremental);

// Decodes the base64url value of an HTTP2-Settings header (RFC 7540 §3.2.1) into a SETTINGS
// payload. Returns false if it is not valid base64url, not a whole number of settings, or
// holds a value a SETTINGS frame may not carry (ENABLE_PUSH 2, MAX_FRAME_SIZE 100...).
bool decodeSettingsHeader(std::string_view value, std::string& payload);

// Server side of one HTTP/2 connection over nghttp2, sans-I/O like the HTTP/1 codec:
// dispatch() feeds bytes to nghttp2_session_mem_recv, and frames are pulled with
// nghttp2_session_mem_send into the connection's OutputQueue once per call into the codec
// (a dispatch, or an encode from a stream outside dispatch), never a write per frame.
//
// Each stream is a ResponseEncoder handed to ServerConnectionCallbacks::newStream when its
// request head is complete, so it runs the filter chain exactly like an HTTP/1 request.
//
// Flow control, both ways:
// - Request bodies: WINDOW_UPDATEs are manual. The connection window is given back as DATA
//   arrives; a stream's window only while the stream is not read-disabled, so a consumer
//   that stops reading (ResponseEncoder::readDisable) closes that stream's window.
// - Response bodies wait in the stream until the peer's window lets nghttp2 take them. A
//   stream whose waiting bytes exceed the buffer limit (or any stream while the connection's
//   output is above its high watermark) reports onAboveWriteBufferHighWatermark to its
//   StreamCallbacks, and onBelowWriteBufferLowWatermark once back under half.
//
// Floods (see Http2Settings) end the connection with GOAWAY(ENHANCE_YOUR_CALM).
class ServerConnectionImpl : public ServerConnection {
public:
  ServerConnectionImpl(OutputQueue& output, ServerConnectionCallbacks& callbacks,
                       const CodecLimits& limits, const Http2Settings& settings,
                       TimeSource& time_source);
  ~ServerConnectionImpl() override;

  // h2c upgrade (RFC 7540 §3.2): `request` was the HTTP/1.1 request (it becomes stream 1,
  // complete, and is dispatched at once); `settings_payload` is the decoded HTTP2-Settings.
  // The 101 response is already queued. Returns false if nghttp2 rejects the settings.
  bool upgrade(std::string_view settings_payload, RequestHeadersPtr request);

  // ServerConnection
  bool dispatch(Buffer& data) override;
  Protocol protocol() const override { return Protocol::Http2; }
  void shutdownNotice() override;
  bool idle() const override { return open_streams_ == unwanted_bodies_; }
  bool readingHead() const override { return !preface_received_ || in_header_block_; }
  bool wantsClose() const override { return closing_; }
  void onRemoteHalfClose() override;
  void onRequestHeadTimeout() override;
  void onAboveWriteBufferHighWatermark() override;
  void onBelowWriteBufferLowWatermark() override;
  void onConnectionClosed() override;

  // Introspection for tests and stats.
  size_t activeStreams() const { return open_streams_; }
  size_t queuedOutboundFrames() const { return outbound_.size(); }
  size_t queuedOutboundControlFrames() const { return outbound_control_; }
  // The GOAWAY error code sent, or -1 if none was.
  int goAwayErrorCode() const { return goaway_code_; }

private:
  class Stream;
  friend class Stream;

  // Calls into the codec nest (a stream encodes while the codec dispatches); the outermost
  // one pulls frames into the output and frees finished streams on its way out.
  class Scope {
  public:
    explicit Scope(ServerConnectionImpl& codec) : codec_(codec) { ++codec_.depth_; }
    ~Scope() {
      if (--codec_.depth_ == 0) {
        codec_.afterTopLevel();
      }
    }

  private:
    ServerConnectionImpl& codec_;
  };

  void afterTopLevel();
  void flush();
  void reap();
  void checkOutboundFlood();
  void terminate(uint32_t error_code, const char* reason);
  bool floodDetected(const char* what);
  // Counts a DATA, HEADERS or CONTINUATION frame of `payload` bytes (padding excluded) for
  // max_consecutive_empty_frames; NGHTTP2_ERR_CALLBACK_FAILURE once that is exceeded.
  int countPayload(size_t payload, bool ends_something);
  bool countPrematureReset();
  Stream* streamFor(int32_t stream_id);
  Stream* createStream(int32_t stream_id);
  void onStreamDead(Stream& stream);
  // Appends `headers` to nva_ as HTTP/2 fields: names lowercased; fields with invalid
  // characters, pseudo-headers and connection-specific fields dropped (and logged).
  void appendFields(const HeaderMap& headers, int status, bool trailers, bool* has_date,
                    bool* has_server);
  void clearFieldScratch();
  // After appendFields of a response head: whether it declares one Content-Length (its
  // value in `declared`). Repeated copies of one value become one field; disagreeing or
  // malformed values are all dropped from nva_.
  bool checkContentLength(uint64_t& declared);

  // nghttp2 callbacks.
  static int onBeginFrame(nghttp2_session*, const nghttp2_frame_hd* hd, void* user);
  static int onBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* user);
  static int onHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t flags,
                      void* user);
  static int onFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user);
  static int onDataChunkRecv(nghttp2_session*, uint8_t flags, int32_t stream_id,
                             const uint8_t* data, size_t len, void* user);
  static int onStreamClose(nghttp2_session*, int32_t stream_id, uint32_t error_code, void* user);
  static int onInvalidFrameRecv(nghttp2_session*, const nghttp2_frame* frame, int error,
                                void* user);
  static int onFrameSend(nghttp2_session*, const nghttp2_frame* frame, void* user);
  static int onFrameNotSend(nghttp2_session*, const nghttp2_frame* frame, int error, void* user);
  static int onSendData(nghttp2_session*, nghttp2_frame* frame, const uint8_t* framehd,
                        size_t length, nghttp2_data_source* source, void* user);
  static ssize_t onReadData(nghttp2_session*, int32_t stream_id, uint8_t* buf, size_t length,
                            uint32_t* flags, nghttp2_data_source* source, void* user);
  static const nghttp2_session_callbacks* sessionCallbacks();

  int beginHeaders(const nghttp2_frame& frame);
  int header(const nghttp2_frame& frame, std::string_view name, std::string_view value);
  int frameRecv(const nghttp2_frame& frame);
  int dataChunk(int32_t stream_id, std::string_view data);
  int streamClose(int32_t stream_id, uint32_t error_code);
  void onFrameQueued(bool control);

  OutputQueue& output_;
  ServerConnectionCallbacks& callbacks_;
  const CodecLimits& limits_;
  const Http2Settings& settings_;
  TimeSource& time_source_;
  nghttp2_session* session_{nullptr};
  const uint32_t max_header_list_size_;
  const uint64_t header_hard_cap_;

  std::list<Stream> streams_;
  std::vector<Stream*> dead_;
  size_t open_streams_{0};
  // Open streams whose response is complete and whose request body is not wanted (see
  // Stream::unwanted_body_): they keep neither the connection from being idle nor a drain
  // from ending.
  size_t unwanted_bodies_{0};
  int depth_{0};

  // Frames written into output_ and not yet on the wire: the cumulative byte offset where
  // each ends. Bytes leave output_ only from the front, so what is gone is known from
  // output_.length().
  std::deque<std::pair<uint64_t, bool>> outbound_;
  size_t outbound_control_{0};
  uint64_t bytes_queued_{0};
  uint8_t last_sent_type_{0};

  // Inbound accounting.
  uint32_t continuation_frames_{0};
  uint64_t header_block_bytes_{0};
  uint32_t empty_frames_{0};
  uint32_t resets_in_window_{0};
  uint32_t requests_{0};
  int32_t goaway_last_stream_id_{0};
  MonotonicTime reset_window_start_{};

  // Reused for every header block we submit (nghttp2 copies the fields).
  std::vector<nghttp2_nv> nva_;
  std::deque<std::string> field_scratch_;
  // The `priority` field of the response head being submitted (RFC 9218).
  std::string_view response_priority_;
  // The Content-Length fields appendFields saw (checkContentLength reads and resets them).
  ContentLengthFields content_length_;
  // Streams whose buffered response fell under the low watermark while frames were sent.
  std::vector<Stream*> watermark_dirty_;

  bool preface_received_{false};
  bool in_header_block_{false};
  bool connection_above_watermark_{false};
  bool draining_{false};
  bool flood_goaway_sent_{false}; // after it, nothing more is sent
  bool closing_{false};
  bool close_requested_{false};
  bool remote_half_closed_{false};
  bool closed_{false};
  bool flood_{false};
  int goaway_code_{-1};
};

} // namespace pounce::http::http2
