#pragma once

#include <any>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

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
  std::string request_id;
  bool skip_access_log{false};

  // Named durations for Server-Timing ("app", "queue", ...), in insertion order.
  std::vector<std::pair<std::string, std::chrono::nanoseconds>> timings;

  // Typed values filters share by key (e.g. "pounce.rate_limit.remaining").
  std::map<std::string, std::any, std::less<>> filter_state;

  void setFlag(ResponseFlag flag) { response_flags |= flag; }
  bool hasFlag(ResponseFlag flag) const { return (response_flags & flag) != 0; }
  std::chrono::nanoseconds duration() const {
    return end_time == MonotonicTime{} ? std::chrono::nanoseconds(0) : end_time - start_time;
  }
};

} // namespace pounce::http
