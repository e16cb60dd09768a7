#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "source/common/buffer.h"
#include "source/common/output_queue.h"
#include "source/http/headers.h"
#include "source/http/stream_info.h"

namespace pounce::http {

// The interface between a protocol codec (HTTP/1.1, HTTP/2) and the connection manager.
// Codecs are sans-I/O: dispatch() takes bytes, events come out through the callbacks
// below, and response bytes go into an OutputQueue the connection writes.

enum class StreamResetReason { ConnectionClosed, LocalReset, RemoteReset, ProtocolError };

// Per-stream events from the codec to the stream.
class StreamCallbacks {
public:
  virtual ~StreamCallbacks() = default;
  virtual void onResetStream(StreamResetReason reason) = 0;
  virtual void onAboveWriteBufferHighWatermark() = 0;
  virtual void onBelowWriteBufferLowWatermark() = 0;
};

// The codec's side of one stream: where its response goes.
class ResponseEncoder {
public:
  virtual ~ResponseEncoder() = default;
  virtual void setStreamCallbacks(StreamCallbacks* callbacks) = 0;
  virtual void encode1xxHeaders(const ResponseHeaders& headers) = 0;
  virtual void encodeHeaders(const ResponseHeaders& headers, bool end_stream) = 0;
  virtual void encodeData(Buffer& data, bool end_stream) = 0;
  virtual void encodeFile(FileHandleSharedPtr file, uint64_t offset, uint64_t length,
                          bool end_stream) = 0;
  virtual void encodeTrailers(const HeaderMap& trailers) = 0;
  // Abandon the stream (HTTP/1: the connection closes; HTTP/2: RST_STREAM).
  virtual void resetStream() = 0;
  // Stop/resume reading this stream's request body (flow control).
  virtual void readDisable(bool disable) = 0;
  virtual bool aboveHighWatermark() const = 0;
  // File ranges can go to the socket as they are (plain HTTP/1 connection).
  virtual bool canSendFile() const = 0;
  virtual Protocol protocol() const = 0;
};

// The stream's side: request events from the codec.
class RequestDecoder {
public:
  virtual ~RequestDecoder() = default;
  virtual void decodeHeaders(RequestHeadersPtr headers, bool end_stream) = 0;
  virtual void decodeData(Buffer& data, bool end_stream) = 0;
  virtual void decodeTrailers(HeaderMapPtr trailers) = 0;
  // The request is malformed or over a limit; answer with `status` (400, 408, 413, 414,
  // 431, 505...) if the response has not started, then the connection closes.
  virtual void onProtocolError(int status, std::string_view details) = 0;
  // As onProtocolError, for a request whose head was read but is refused before any filter
  // sees it (413 for its declared length, 501 for a transfer coding, a bad Host...): its
  // headers are kept for the access log and metrics (method, path, user agent).
  virtual void onRequestRefused(RequestHeadersPtr headers, int status, std::string_view details) {
    (void)headers;
    onProtocolError(status, details);
  }
};

class ServerConnectionCallbacks {
public:
  virtual ~ServerConnectionCallbacks() = default;
  // A new request begins. The returned decoder lives until the stream completes.
  virtual RequestDecoder& newStream(ResponseEncoder& encoder) = 0;
  // The codec queued output: write it soon.
  virtual void onCodecOutput() = 0;
  // Stop/resume reading from the connection (flow control, pipelining).
  virtual void readDisable(bool disable) = 0;
  // The connection must close: after the queued output (flush) or at once.
  virtual void closeConnection(bool flush) = 0;
  // HTTP/1.1 only: `headers` is a complete request asking to switch to HTTP/2 (`Upgrade:
  // h2c`, no body). Return true to take it (and the headers): the codec then queues
  // "101 Switching Protocols", stops, and leaves the bytes after the request head in the
  // buffer; the caller replaces the codec once dispatch() returns. False: it is served as
  // an ordinary HTTP/1.1 request.
  virtual bool upgradeToHttp2(RequestHeadersPtr& headers) { return false; }
};

// The codec of one connection.
class ServerConnection {
public:
  virtual ~ServerConnection() = default;
  // Consumes what it can of `data` (draining it); the rest waits for more bytes or for the
  // current response (HTTP/1 pipelining). Returns false once the connection must close
  // after the queued output (protocol error, Connection: close...).
  virtual bool dispatch(Buffer& data) = 0;
  virtual Protocol protocol() const = 0;
  // Start draining: HTTP/1 answers the next response with Connection: close, HTTP/2 sends
  // GOAWAY. In-flight streams finish.
  virtual void shutdownNotice() = 0;
  // True when no stream is active and the codec has nothing half-parsed.
  virtual bool idle() const = 0;
  // True when a request has begun but its head is not complete (header timeout applies).
  virtual bool readingHead() const = 0;
  // The connection should close once the output queue is flushed.
  virtual bool wantsClose() const = 0;
  // The peer closed its sending side.
  virtual void onRemoteHalfClose() = 0;
  // A request head did not complete within header_timeout: answer 408 and close.
  virtual void onRequestHeadTimeout() = 0;
  // Output watermark changes of the connection, fanned out to streams.
  virtual void onAboveWriteBufferHighWatermark() = 0;
  virtual void onBelowWriteBufferLowWatermark() = 0;
  // The connection is gone: reset every active stream.
  virtual void onConnectionClosed() = 0;
};
using ServerConnectionPtr = std::unique_ptr<ServerConnection>;

// Limits a codec enforces (from the listener's http options).
struct CodecLimits {
  uint32_t max_header_bytes{65536};
  uint32_t max_headers{100};
  uint64_t max_request_bytes{1 << 20};
  uint32_t max_uri_bytes{8192};
  uint32_t max_requests_per_connection{0};
  uint32_t buffer_limit{1 << 20};
  std::string server_header{"pounce"};
};

} // namespace pounce::http
