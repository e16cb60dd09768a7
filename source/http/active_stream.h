#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "source/common/event/dispatcher.h"
#include "source/common/server_context.h"
#include "source/http/codec.h"
#include "source/http/filter.h"
#include "source/http/filter_chain.h"

namespace pounce::http {

struct HttpSettings;
class ActiveStream;
struct ListenerStats;

// What a stream needs from the connection that carries it.
class StreamParent {
public:
  virtual ~StreamParent() = default;
  virtual event::Dispatcher& streamDispatcher() = 0;
  virtual const HttpSettings& streamSettings() const = 0;
  virtual const ListenerStats* streamStats() const { return nullptr; }
  virtual bool streamDraining() const { return false; }
  // The server closed the connection because it drains (its shutdown_timeout ran out):
  // streams it ends are flagged draining, not reset by the client.
  virtual bool closedForDrain() const { return false; }
  // The stream finished (response complete or reset): remove and delete it (deferred).
  virtual void onStreamDone(ActiveStream& stream) = 0;
  // The stream must have a response head by `deadline` (request_timeout): the parent calls
  // ActiveStream::checkRequestTimeout() at or after it. No timer per stream is created.
  virtual void onRequestDeadline(ActiveStream& stream, MonotonicTime deadline) = 0;
};

// One request/response exchange and the filter instances made for it.
//
// Decoding walks the filters in order; a filter that stops is resumed with
// continueDecoding(), and body/trailers that arrive meanwhile pass the filters before it and
// wait in the stream (bounded: above the buffer limit the client is paused). Encoding walks
// from the filter before the one that produced the response down to the codec.
class ActiveStream : public RequestDecoder,
                     public StreamCallbacks,
                     public event::DeferredDeletable {
public:
  ActiveStream(StreamParent& parent, ResponseEncoder& encoder, FilterChainSharedPtr chain,
               StreamInfo info);
  ~ActiveStream() override;

  // RequestDecoder (from the codec)
  void decodeHeaders(RequestHeadersPtr headers, bool end_stream) override;
  void decodeData(Buffer& data, bool end_stream) override;
  void decodeTrailers(HeaderMapPtr trailers) override;
  void onProtocolError(int status, std::string_view details) override;
  void onRequestRefused(RequestHeadersPtr headers, int status, std::string_view details) override;

  // StreamCallbacks (from the codec)
  void onResetStream(StreamResetReason reason) override;
  void onAboveWriteBufferHighWatermark() override;
  void onBelowWriteBufferLowWatermark() override;

  StreamInfo& info() { return info_; }
  // Answers 504 if the response head has not started by the request deadline.
  void checkRequestTimeout(MonotonicTime now);
  // The connection started draining: tells every filter (StreamFilter::onDrainStarted).
  void onDrainStarted();
  MonotonicTime requestDeadline() const { return request_deadline_; }
  bool complete() const { return done_; }
  // The stream has a filter chain reference (for tests and the admin API).
  const FilterChainSharedPtr& chain() const { return chain_; }

private:
  class ActiveFilter;
  friend class ActiveFilter;

  void createFilters();
  // Bytes of the callbacks objects at the start of the filters' block (aligned for the
  // in-place filters after them).
  static size_t filtersHeadBytes(size_t count);
  void iterateDecodeHeaders();
  void iterateDecodeData(size_t from, Buffer& data, bool end_stream);
  void iterateDecodeTrailers(size_t from);
  void iterateEncodeData(int from, Buffer& data, bool end_stream);
  void sendHeadersToCodec();
  bool encodersNeedBytes(int from) const;
  size_t decodeEnd() const;
  // The chain's nextHandler()/prevHandler() for this stream's filters: the first filter at or
  // after `i` that handles `event` (filter_count_ if none), and the last at or before `k`
  // (-1 if none, or if `k` is negative).
  size_t firstHandler(uint32_t event, size_t i) const;
  int lastHandler(uint32_t event, int k) const;
  void bufferRequestData(Buffer& data, bool end_stream);
  void continueDecoding(size_t index);
  void maybeSendContinue();

  void encodeHeaders(int from, ResponseHeadersPtr headers, bool end_stream);
  void encodeData(int from, Buffer& data, bool end_stream);
  void encodeFile(int from, FileHandleSharedPtr file, uint64_t offset, uint64_t length,
                  bool end_stream);
  void encodeTrailers(int from, HeaderMapPtr trailers);
  void addEncodedData(size_t index, Buffer& data);
  void encode1xx(ResponseHeadersPtr headers);
  void continueEncoding(size_t index);
  void sendLocalReply(int from, int status, std::string_view body,
                      const std::function<void(ResponseHeaders&)>& modify);
  void pumpFile();
  void onResponseComplete();
  void finish();
  void reset(bool notify_codec);
  void onRequestTimeout();

  StreamParent& parent_;
  event::Dispatcher& dispatcher_; // the parent's (asked once, not on every filter's call)
  ResponseEncoder& encoder_;
  FilterChainSharedPtr chain_;
  StreamInfo info_;
  // One allocation for every filter's callbacks object and the filters made in place.
  ActiveFilter* filters_{nullptr};
  size_t filter_count_{0};
  RequestHeadersPtr request_headers_;

  // Decode state.
  size_t headers_next_{0};        // next filter to receive decodeHeaders
  size_t decode_limit_{SIZE_MAX}; // filters at or past this index get no more decode events
  int decode_stopped_at_{-1};
  Buffer buffered_request_;
  bool buffered_request_end_{false};
  HeaderMapPtr buffered_trailers_;
  bool request_complete_{false};
  bool request_paused_{false};
  int body_pause_count_{0};
  bool continue_sent_{false};
  bool continue_held_{false}; // the terminal filter sends the 100 when it wants the body

  // Encode state.
  int encode_from_{-1}; // first encoder of the response (index of producer - 1)
  int encode_stopped_at_{-1};
  int trailers_at_{-1}; // the filter whose encodeTrailers is running
  ResponseHeadersPtr response_headers_;
  bool response_headers_end_{false};
  Buffer buffered_response_;
  bool buffered_response_end_{false};
  HeaderMapPtr buffered_response_trailers_;
  bool response_started_{false};   // a filter produced a response head
  bool response_head_sent_{false}; // it reached the codec
  bool body_on_wire_{true}; // the response's body bytes go to the client (not HEAD, 204, 304)
  bool response_complete_{false};
  bool local_reply_{false};
  bool body_needs_bytes_{false};

  // File being read for a path that cannot use sendfile.
  FileHandleSharedPtr pending_file_;
  uint64_t pending_offset_{0};
  uint64_t pending_left_{0};
  bool pending_end_{false};
  int pending_from_{-1};

  std::vector<DownstreamWatermarkCallbacks*> watermark_callbacks_;
  bool above_high_watermark_{false};
  MonotonicTime request_deadline_{}; // zero: none, or the response head went out
  bool done_{false};
  bool in_teardown_{false};
};

} // namespace pounce::http
