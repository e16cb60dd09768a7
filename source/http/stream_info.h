#pragma once

#include <algorithm>
#include <any>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <iosfwd>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "source/common/time.h"
#include "source/network/address.h"
#include "source/network/transport_socket.h"

namespace pounce::http {

class RequestHeaders;

enum class Protocol { Http10, Http11, Http2 };

std::string_view protocolString(Protocol p); // "HTTP/1.0", "HTTP/1.1", "HTTP/2"

// Why a stream ended other than by a normal response (shown in access logs and metrics).
enum ResponseFlag : uint32_t {
  LocalReply = 1u << 0,      // a filter answered (sendLocalReply)
  DownstreamReset = 1u << 1, // the client went away before the response finished
  RequestTimeout = 1u << 2,  // request_timeout fired
  RateLimited = 1u << 3,
  LoadShed = 1u << 4,      // request_queue rejected it
  ProtocolError = 1u << 5, // the codec rejected the request
  StreamReset = 1u << 6,   // a filter or the app reset the stream
  Draining = 1u << 7,
};

// A request id, kept inline: ids are at most kMaxSize bytes (the request_id filter accepts
// no longer incoming ones), so neither a stream nor the app's side of it allocates for one.
class RequestId {
public:
  static constexpr size_t kMaxSize = 200;

  RequestId() = default;
  RequestId(std::string_view id) { assign(id); } // NOLINT: ids are written as strings
  RequestId(const RequestId& other) { assign(other.view()); }
  RequestId& operator=(const RequestId& other) {
    assign(other.view());
    return *this;
  }
  RequestId& operator=(std::string_view id) {
    assign(id);
    return *this;
  }

  // An id longer than kMaxSize keeps its first kMaxSize bytes.
  void assign(std::string_view id) {
    size_ = static_cast<uint8_t>(std::min(id.size(), kMaxSize));
    std::memcpy(data_, id.data(), size_);
  }
  // Makes the id `n` bytes (n <= kMaxSize) for the caller to write at the pointer returned.
  char* overwrite(size_t n) {
    size_ = static_cast<uint8_t>(std::min(n, kMaxSize));
    return data_;
  }

  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  std::string_view view() const { return {data_, size_}; }
  operator std::string_view() const { return view(); } // NOLINT: reads like a string

  friend bool operator==(const RequestId& a, std::string_view b) { return a.view() == b; }
  friend std::ostream& operator<<(std::ostream& out, const RequestId& id);

private:
  uint8_t size_{0};
  char data_[kMaxSize];
};
static_assert(RequestId::kMaxSize <= UINT8_MAX);

// What a response whose head does not describe the representation stands for (a 304, a
// multipart/byteranges 206): set by the filter that answers it (static_files), for filters
// that must give it the fields the 200 would have had (compression: Vary, and a 304's ETag).
struct Representation {
  // Empty: not to be transformed (e.g. already encoded). Points into the answering filter's
  // config, which its stream holds until the stream is done.
  std::string_view content_type;
  uint64_t length{0};
};

// What is known about one request as it moves through the filter chain. Filters read it,
// add to it (request id, client address from proxy headers, timings), and the access log
// and metrics read it when the stream completes.
class StreamInfo {
public:
  MonotonicTime start_time;
  SystemTime start_system_time;
  // When the response head went out / the stream completed (zero until then).
  MonotonicTime response_start_time{};
  MonotonicTime end_time{};

  // The peer of the connection, and the client as the app should see it (proxy_headers
  // replaces the latter when the peer is a trusted proxy).
  network::Address peer_address;
  network::Address client_address;
  network::Address local_address;
  const network::TlsInfo* tls{nullptr};
  bool peer_trusted{false}; // set by proxy_headers: the peer is a trusted proxy

  std::string listener_name;
  uint32_t worker_id{0};
  uint64_t connection_id{0};
  uint64_t stream_id{0};
  Protocol protocol{Protocol::Http11};

  const RequestHeaders* request_headers{nullptr};
  int response_code{0};
  uint64_t bytes_received{0}; // request body bytes
  uint64_t bytes_sent{0};     // response body bytes
  uint32_t response_flags{0};
  RequestId request_id;
  bool skip_access_log{false};
  std::optional<Representation> represents;

  // Named durations for Server-Timing ("app", "queue", ...), in insertion order. The usual
  // two live inside the stream (no allocation per request).
  using Timings = absl::InlinedVector<std::pair<std::string, std::chrono::nanoseconds>, 2>;
  Timings timings;

  // Typed values filters share by key (e.g. "pounce.rate_limit.remaining").
  std::map<std::string, std::any, std::less<>> filter_state;

  void setFlag(ResponseFlag flag) { response_flags |= flag; }
  bool hasFlag(ResponseFlag flag) const { return (response_flags & flag) != 0; }
  std::chrono::nanoseconds duration() const {
    return end_time == MonotonicTime{} ? std::chrono::nanoseconds(0) : end_time - start_time;
  }
};

} // namespace pounce::http
