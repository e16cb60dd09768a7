#pragma once

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pounce::http::http2::test {

using Fields = std::vector<std::pair<std::string, std::string>>;

// A frame: 9-byte header + payload (RFC 9113 §4.1), for hand-built (also invalid) input.
std::string frame(uint8_t type, uint8_t flags, int32_t stream_id, std::string_view payload);
// HPACK-encodes `fields` with a fresh encoder (static table and literals only).
std::string hpack(const Fields& fields);
// Connection preface + empty SETTINGS: what a client sends first.
std::string clientPreface();

struct RawFrame {
  uint8_t type;
  uint8_t flags;
  int32_t stream_id;
  std::string payload;
};
// Splits bytes a server sent into frames (a trailing partial frame is dropped).
std::vector<RawFrame> parseFrames(std::string_view bytes);

// An HTTP/2 client over nghttp2's own client session, sans-I/O: take() gives the bytes to
// send, give() feeds it the server's bytes. Records every response.
class TestClient {
public:
  struct Response {
    int status{0};
    Fields headers;
    std::vector<std::pair<int, Fields>> informational; // 1xx responses
    Fields trailers;
    std::string body;
    bool complete{false}; // END_STREAM received
    bool closed{false};
    uint32_t error_code{0}; // of the stream's close (RST_STREAM or GOAWAY)
    bool reset{false};      // RST_STREAM received
  };

  explicit TestClient(std::vector<nghttp2_settings_entry> settings = {},
                      bool auto_window_update = true);
  ~TestClient();

  std::string take();
  void give(std::string_view bytes);

  // Submits a request; `body` is sent as DATA (with `trailers` after it if any).
  int32_t request(const Fields& pseudo_and_headers, const std::string* body = nullptr,
                  const Fields& trailers = {}, bool end_stream = true);
  int32_t get(std::string_view path, const Fields& extra = {});
  int32_t post(std::string_view path, std::string body, const Fields& extra = {},
               const Fields& trailers = {});

  void resetStream(int32_t stream_id, uint32_t code = NGHTTP2_CANCEL);
  // Sends more DATA on a stream opened with end_stream=false (tunnels).
  void sendData(int32_t stream_id, std::string data, bool end_stream);
  void consume(int32_t stream_id, size_t n) { nghttp2_session_consume(session_, stream_id, n); }

  nghttp2_session* session() { return session_; }
  Response& response(int32_t stream_id) { return responses_[stream_id]; }
  bool hasResponse(int32_t stream_id) const { return responses_.count(stream_id) != 0; }
  int goawayCode() const { return goaway_code_; }
  int32_t goawayLastStreamId() const { return goaway_last_; }
  const std::vector<std::pair<uint8_t, int32_t>>& frames() const { return frames_; }
  const std::map<int32_t, uint32_t>& settings() const { return settings_; }
  int recvError() const { return recv_error_; }

private:
  struct Upload {
    std::string data;
    size_t offset{0};
    Fields trailers;
    bool end{true};
    bool deferred{false};
  };

  static int onBeginHeaders(nghttp2_session*, const nghttp2_frame*, void*);
  static int onHeader(nghttp2_session*, const nghttp2_frame*, const uint8_t*, size_t,
                      const uint8_t*, size_t, uint8_t, void*);
  static int onFrameRecv(nghttp2_session*, const nghttp2_frame*, void*);
  static int onDataChunk(nghttp2_session*, uint8_t, int32_t, const uint8_t*, size_t, void*);
  static int onStreamClose(nghttp2_session*, int32_t, uint32_t, void*);
  static ssize_t onRead(nghttp2_session*, int32_t, uint8_t*, size_t, uint32_t*,
                        nghttp2_data_source*, void*);

  nghttp2_session* session_{nullptr};
  std::map<int32_t, Response> responses_;
  std::map<int32_t, std::unique_ptr<Upload>> uploads_;
  std::vector<std::unique_ptr<Upload>> pending_uploads_;
  std::map<int32_t, int> header_block_status_; // status of the block being received
  std::map<int32_t, Fields> header_block_;
  std::map<int32_t, uint32_t> settings_;
  std::vector<std::pair<uint8_t, int32_t>> frames_;
  int goaway_code_{-1};
  int32_t goaway_last_{-1};
  int recv_error_{0};
};

} // namespace pounce::http::http2::test
