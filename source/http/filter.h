#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <type_traits>

#include "source/common/buffer.h"
#include "source/common/event/dispatcher.h"
#include "source/common/output_queue.h"
#include "source/http/headers.h"
#include "source/http/stream_info.h"

namespace pounce::http {

// The HTTP filter API.
//
// Every request is a stream that passes an ordered chain of filters. Request events
// (decode*) go through the filters in order, ending at the chain's terminal filter, which
// produces the response; response events (encode*) come back through the filters before
// it in reverse order, then to the client. The filters never learn whether HTTP/1.1 or
// HTTP/2 carried the stream.
//
//   client ─► [f0] ─► [f1] ─► [f2 terminal]      decode: in order
//   client ◄─ [f0] ◄─ [f1] ◄──┘                  encode: reverse order
//
// A filter that answers by itself (sendLocalReply, or encodeHeaders on its callbacks)
// ends the decode iteration; its response is encoded through the filters before it.

enum class FilterStatus {
  // Pass the event on to the next filter.
  Continue,
  // Stop here. The filter resumes iteration later with continueDecoding() /
  // continueEncoding(). Events that arrive meanwhile (body data, trailers) are buffered by
  // the stream and handed to the *next* filter on resume; if they exceed the stream's
  // buffer limit, the peer is paused (backpressure), never buffered without bound.
  StopIteration,
};

// Notified when the client side cannot take more response data (the connection's output
// is above its high watermark) and again when it can.
class DownstreamWatermarkCallbacks {
public:
  virtual ~DownstreamWatermarkCallbacks() = default;
  virtual void onAboveWriteBufferHighWatermark() = 0;
  virtual void onBelowWriteBufferLowWatermark() = 0;
};

// Services every filter gets for its stream.
class StreamFilterCallbacks {
public:
  virtual ~StreamFilterCallbacks() = default;
  virtual StreamInfo& streamInfo() = 0;
  virtual event::Dispatcher& dispatcher() = 0;
  // Abandons the stream: HTTP/1.1 closes the connection, HTTP/2 sends RST_STREAM. Every
  // filter's onDestroy() runs.
  virtual void resetStream() = 0;
  // The request head (valid for the stream's life once decodeHeaders ran).
  virtual const RequestHeaders& requestHeaders() const = 0;
  // The connection carrying the stream drains (the server drains, or its listener is being
  // replaced): a long-lived stream that starts now should end soon (onDrainStarted() is
  // called only for streams that exist when the drain begins).
  virtual bool connectionDraining() const = 0;
};

// The decoder and encoder callbacks both extend StreamFilterCallbacks without virtual
// inheritance: the stream implements both in one object whose overrides serve both bases,
// and no call pays for a virtual base's offset.
class DecoderFilterCallbacks : public StreamFilterCallbacks {
public:
  // Resumes decode iteration after this filter returned StopIteration.
  virtual void continueDecoding() = 0;

  // Answers the request from this filter with `status` and a plain-text `body`; the reply
  // passes the encoder filters before this one. `modify` may add headers. If the response
  // already started, the stream is reset instead.
  virtual void sendLocalReply(int status, std::string_view body,
                              const std::function<void(ResponseHeaders&)>& modify = nullptr) = 0;

  // The response path for filters that produce a response (terminal filters, static files,
  // health). Calls must come in order: headers, data*, trailers?; end_stream on the last.
  virtual void encodeHeaders(ResponseHeadersPtr headers, bool end_stream) = 0;
  virtual void encodeData(Buffer& data, bool end_stream) = 0;
  // Sends a file range (sendfile on plain connections, a bounded read loop elsewhere).
  virtual void encodeFile(FileHandleSharedPtr file, uint64_t offset, uint64_t length,
                          bool end_stream) = 0;
  virtual void encodeTrailers(HeaderMapPtr trailers) = 0;
  // An informational response (103 Early Hints); ignored once the final head went out.
  virtual void encode1xxHeaders(ResponseHeadersPtr headers) = 0;
  virtual bool responseStarted() const = 0;
  // The client sent `TE: trailers` (so trailers may be sent).
  virtual bool clientAcceptsTrailers() const = 0;

  // Response-side backpressure for producers (e.g. the ASGI app's send()).
  virtual void addDownstreamWatermarkCallbacks(DownstreamWatermarkCallbacks& callbacks) = 0;
  virtual void removeDownstreamWatermarkCallbacks(DownstreamWatermarkCallbacks& callbacks) = 0;
  virtual bool downstreamAboveHighWatermark() const = 0;

  // Request-side backpressure: a filter holding request body it cannot pass on yet pauses
  // reading from the client (reference counted).
  virtual void pauseRequestBody(bool pause) = 0;
  virtual uint32_t bufferLimit() const = 0;
  // The listener's request_timeout (0: none), for a terminal filter whose work outlives the
  // stream (the ASGI app after its client left).
  virtual std::chrono::nanoseconds requestTimeout() const { return {}; }

  // Expect: 100-continue. The 100 goes out once the request's headers reach the terminal
  // filter, unless that filter reads the body on demand: it calls holdContinue() while it
  // handles the headers, then sendContinue() when it first wants the body. An answer before
  // then spares the client the upload (RFC 9110 §10.1.1): the 100 is never sent, and
  // HTTP/1.1 closes the connection after the answer (the body may or may not follow).
  virtual void holdContinue() = 0;
  virtual void sendContinue() = 0;
};

class EncoderFilterCallbacks : public StreamFilterCallbacks {
public:
  virtual void continueEncoding() = 0;
  // Only from encodeTrailers(): body bytes that must reach the client before the trailers
  // (e.g. the end of a compressed stream whose last chunk came without end_stream). They
  // pass the encoder filters after this one, like encodeData without end_stream.
  virtual void addEncodedData(Buffer& data) = 0;
};

// The base of every filter. All methods are optional: the defaults pass everything on
// (Envoy's PassThroughFilter). A filter overrides the events it cares about.
class StreamFilter {
public:
  virtual ~StreamFilter() = default;

  // Every request creates and destroys its chain's filters: their memory comes from a
  // per-thread cache of recently freed blocks (a pop and a push instead of the
  // allocator's round trip). Sanitizer builds use the plain allocator, so use-after-free
  // of a filter is still caught.
  static void* operator new(size_t size);
  static void operator delete(void* p, size_t size);
  // Construction into memory the stream provides (FilterFactoryCb::inPlace); such a
  // filter is destroyed by its destructor alone.
  static void* operator new(size_t, void* at) noexcept { return at; }
  static void operator delete(void*, void*) noexcept {}

  // http::StreamDecoderFilter
  virtual FilterStatus decodeHeaders(RequestHeaders& headers, bool end_stream) {
    return FilterStatus::Continue;
  }
  virtual FilterStatus decodeData(Buffer& data, bool end_stream) { return FilterStatus::Continue; }
  virtual FilterStatus decodeTrailers(HeaderMap& trailers) { return FilterStatus::Continue; }
  void setDecoderFilterCallbacks(DecoderFilterCallbacks& callbacks) {
    decoder_callbacks_ = &callbacks;
  }

  // http::StreamEncoderFilter
  virtual FilterStatus encodeHeaders(ResponseHeaders& headers, bool end_stream) {
    return FilterStatus::Continue;
  }
  virtual FilterStatus encodeData(Buffer& data, bool end_stream) { return FilterStatus::Continue; }
  virtual FilterStatus encodeTrailers(HeaderMap& trailers) { return FilterStatus::Continue; }
  void setEncoderFilterCallbacks(EncoderFilterCallbacks& callbacks) {
    encoder_callbacks_ = &callbacks;
  }
  // Whether encodeData must see file ranges as bytes (e.g. compression). Plain filters
  // let sendfile ranges pass untouched.
  virtual bool needsResponseBodyBytes() const { return false; }

  // The stream is finishing (response done, or reset). Release resources and complete
  // anything that waits on the stream. Called once, before destruction.
  virtual void onDestroy() {}
  // The stream finished (after the last byte was queued or the stream was reset): the
  // place for logs and metrics. StreamInfo is complete.
  virtual void onStreamComplete() {}
  // The server started draining (SIGTERM) while this stream is open. Requests finish as
  // usual; a stream that can stay open indefinitely (a WebSocket) should wind down now.
  virtual void onDrainStarted() {}

protected:
  DecoderFilterCallbacks* decoder_callbacks_{nullptr};
  EncoderFilterCallbacks* encoder_callbacks_{nullptr};
};
using StreamFilterPtr = std::unique_ptr<StreamFilter>;

// The events of StreamFilter a filter type handles, one bit each. The stream does not call
// an event a filter leaves to StreamFilter's default (which passes it on or does nothing):
// a chain of a dozen filters makes some fifty calls per request, most of them to defaults.
namespace FilterEvent {
inline constexpr uint32_t DecodeHeaders = 1u << 0;
inline constexpr uint32_t DecodeData = 1u << 1;
inline constexpr uint32_t DecodeTrailers = 1u << 2;
inline constexpr uint32_t EncodeHeaders = 1u << 3;
inline constexpr uint32_t EncodeData = 1u << 4;
inline constexpr uint32_t EncodeTrailers = 1u << 5;
inline constexpr uint32_t Destroy = 1u << 6;
inline constexpr uint32_t StreamComplete = 1u << 7;
inline constexpr uint32_t DrainStarted = 1u << 8;
inline constexpr uint32_t All = (1u << 9) - 1;
} // namespace FilterEvent

// The events `F` overrides, worked out at compile time: `&F::decodeData` names
// StreamFilter's member unless F (or a base between them) declares its own. Only a final
// class is known exactly (a subclass could override more), so others get every event.
template <class F>
constexpr uint32_t filterEventsOf() {
  static_assert(std::is_base_of_v<StreamFilter, F>);
  if constexpr (!std::is_final_v<F>) {
    return FilterEvent::All;
  } else {
#define POUNCE_EVENT_IF_OVERRIDDEN(member, bit)                                                    \
  (std::is_same_v<decltype(&F::member), decltype(&StreamFilter::member)> ? 0u : FilterEvent::bit)
    const uint32_t events = POUNCE_EVENT_IF_OVERRIDDEN(decodeHeaders, DecodeHeaders) |
                            POUNCE_EVENT_IF_OVERRIDDEN(decodeData, DecodeData) |
                            POUNCE_EVENT_IF_OVERRIDDEN(decodeTrailers, DecodeTrailers) |
                            POUNCE_EVENT_IF_OVERRIDDEN(encodeHeaders, EncodeHeaders) |
                            POUNCE_EVENT_IF_OVERRIDDEN(encodeData, EncodeData) |
                            POUNCE_EVENT_IF_OVERRIDDEN(encodeTrailers, EncodeTrailers) |
                            POUNCE_EVENT_IF_OVERRIDDEN(onDestroy, Destroy) |
                            POUNCE_EVENT_IF_OVERRIDDEN(onStreamComplete, StreamComplete) |
                            POUNCE_EVENT_IF_OVERRIDDEN(onDrainStarted, DrainStarted);
#undef POUNCE_EVENT_IF_OVERRIDDEN
    return events;
  }
}

} // namespace pounce::http
