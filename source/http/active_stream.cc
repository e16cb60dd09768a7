#include "source/http/active_stream.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "source/common/logger.h"
#include "source/http/conn_manager.h"

namespace pounce::http {

namespace {
constexpr uint64_t kFileReadChunk = 64 * 1024;
} // namespace

// The callbacks object of one filter: it knows its position, which decides where resumed
// iteration and responses it produces start.
// Final, and its destructor leaves the filter alone (destroyFilter() does that), so the
// stream's teardown destroys it without a call.
class ActiveStream::ActiveFilter final : public DecoderFilterCallbacks,
                                         public EncoderFilterCallbacks {
public:
  // `owned`: the filter came from the heap (deleted by destroyFilter()); otherwise it lives
  // in the stream's block (only destroyed there).
  ActiveFilter(ActiveStream& stream, size_t index, StreamFilter* filter, bool owned,
               uint32_t events)
      : stream_(stream), index_(index), filter_(filter), events_(events), owned_(owned) {}
  ~ActiveFilter() override = default;
  ActiveFilter(const ActiveFilter&) = delete;
  ActiveFilter& operator=(const ActiveFilter&) = delete;

  void destroyFilter() {
    if (owned_) {
      delete filter_;
    } else {
      filter_->~StreamFilter();
    }
  }

  StreamFilter& filter() { return *filter_; }
  // Whether the filter handles `event` (a FilterEvent bit); the stream skips it otherwise.
  bool handles(uint32_t event) const { return (events_ & event) != 0; }

  // StreamFilterCallbacks
  StreamInfo& streamInfo() override { return stream_.info_; }
  event::Dispatcher& dispatcher() override { return stream_.dispatcher_; }
  void resetStream() override { stream_.reset(true); }
  const RequestHeaders& requestHeaders() const override { return *stream_.request_headers_; }
  bool connectionDraining() const override { return stream_.parent_.streamDraining(); }

  // DecoderFilterCallbacks
  void continueDecoding() override { stream_.continueDecoding(index_); }
  void sendLocalReply(int status, std::string_view body,
                      const std::function<void(ResponseHeaders&)>& modify) override {
    stream_.sendLocalReply(producer(), status, body, modify);
  }
  void encodeHeaders(ResponseHeadersPtr headers, bool end_stream) override {
    stream_.encodeHeaders(producer(), std::move(headers), end_stream);
  }
  void encodeData(Buffer& data, bool end_stream) override {
    stream_.encodeData(producer(), data, end_stream);
  }
  void encodeFile(FileHandleSharedPtr file, uint64_t offset, uint64_t length,
                  bool end_stream) override {
    stream_.encodeFile(producer(), std::move(file), offset, length, end_stream);
  }
  void encodeTrailers(HeaderMapPtr trailers) override {
    stream_.encodeTrailers(producer(), std::move(trailers));
  }
  void encode1xxHeaders(ResponseHeadersPtr headers) override {
    stream_.encode1xx(std::move(headers));
  }
  bool responseStarted() const override { return stream_.response_started_; }
  bool clientAcceptsTrailers() const override {
    return stream_.request_headers_ != nullptr &&
           (stream_.info_.protocol == Protocol::Http2 ||
            hasToken(stream_.request_headers_->getOr("te"), "trailers"));
  }
  void addDownstreamWatermarkCallbacks(DownstreamWatermarkCallbacks& callbacks) override {
    stream_.watermark_callbacks_.push_back(&callbacks);
  }
  void removeDownstreamWatermarkCallbacks(DownstreamWatermarkCallbacks& callbacks) override {
    auto& v = stream_.watermark_callbacks_;
    v.erase(std::remove(v.begin(), v.end(), &callbacks), v.end());
  }
  bool downstreamAboveHighWatermark() const override { return stream_.above_high_watermark_; }
  void pauseRequestBody(bool pause) override {
    if (pause == paused_ || stream_.done_) {
      return;
    }
    paused_ = pause;
    stream_.body_pause_count_ += pause ? 1 : -1;
    if (pause && stream_.body_pause_count_ == 1) {
      stream_.encoder_.readDisable(true);
    } else if (!pause && stream_.body_pause_count_ == 0) {
      stream_.encoder_.readDisable(false);
    }
  }
  void holdContinue() override { stream_.continue_held_ = true; }
  void sendContinue() override { stream_.maybeSendContinue(); }
  uint32_t bufferLimit() const override {
    return stream_.parent_.streamSettings().limits.buffer_limit;
  }
  std::chrono::nanoseconds requestTimeout() const override {
    return stream_.parent_.streamSettings().request_timeout;
  }

  // EncoderFilterCallbacks
  void continueEncoding() override { stream_.continueEncoding(index_); }
  void addEncodedData(Buffer& data) override { stream_.addEncodedData(index_, data); }

private:
  // A response made by this filter passes the encoders before it.
  int producer() const { return static_cast<int>(index_) - 1; }

  ActiveStream& stream_;
  const size_t index_;
  StreamFilter* const filter_;
  const uint32_t events_;
  const bool owned_;
  bool paused_{false};
};

ActiveStream::ActiveStream(StreamParent& parent, ResponseEncoder& encoder,
                           FilterChainSharedPtr chain, StreamInfo info)
    : parent_(parent), dispatcher_(parent.streamDispatcher()), encoder_(encoder),
      chain_(std::move(chain)), info_(std::move(info)) {
  encoder_.setStreamCallbacks(this);
}

ActiveStream::~ActiveStream() {
  for (size_t i = 0; i < filter_count_; ++i) {
    filters_[i].destroyFilter();
    filters_[i].~ActiveFilter();
  }
  ::operator delete(filters_);
}

size_t ActiveStream::filtersHeadBytes(size_t count) {
  constexpr size_t kAlign = FilterFactoryCb::kInPlaceAlign;
  static_assert(alignof(ActiveFilter) <= kAlign);
  // The block comes from plain operator new: its alignment must suit the in-place slots.
  static_assert(__STDCPP_DEFAULT_NEW_ALIGNMENT__ >= kAlign);
  return (sizeof(ActiveFilter) * count + kAlign - 1) / kAlign * kAlign;
}

void ActiveStream::createFilters() {
  if (filters_ != nullptr || chain_ == nullptr || chain_->size() == 0) {
    return;
  }
  // One block: the callbacks objects, then the filters made in place.
  const size_t count = chain_->size();
  const size_t head = filtersHeadBytes(count);
  char* block = static_cast<char*>(::operator new(head + chain_->inPlaceBytes()));
  filters_ = reinterpret_cast<ActiveFilter*>(block);
  char* area = block + head;
  const FilterChain::Slot* slots = chain_->slots();
  for (size_t i = 0; i < count; ++i) {
    const FilterChain::Slot& slot = slots[i];
    const bool owned = slot.construct == nullptr;
    StreamFilter* made =
        owned ? (*slot.factory)().release() : slot.construct(slot.state, area + slot.offset);
    ActiveFilter* filter = new (&filters_[i]) ActiveFilter(*this, i, made, owned, slot.events);
    filter_count_ = i + 1; // (a factory that throws leaves the ones before it to destroy)
    made->setDecoderFilterCallbacks(*filter);
    made->setEncoderFilterCallbacks(*filter);
  }
}

size_t ActiveStream::decodeEnd() const { return std::min(filter_count_, decode_limit_); }

size_t ActiveStream::firstHandler(uint32_t event, size_t i) const {
  return filter_count_ == 0 ? 0 : chain_->nextHandler(event, i);
}

int ActiveStream::lastHandler(uint32_t event, int k) const {
  return k < 0 ? -1 : chain_->prevHandler(event, k);
}

// --- decoding -----------------------------------------------------------------------------

void ActiveStream::decodeHeaders(RequestHeadersPtr headers, bool end_stream) {
  request_headers_ = std::move(headers);
  // The scheme is the connection's, whatever an HTTP/2 client put in :scheme (a cleartext
  // client must not make the app believe it is secure); proxy_headers may set it from a
  // trusted proxy's fields.
  const std::string_view scheme = info_.tls != nullptr ? "https" : "http";
  if (request_headers_->scheme() != scheme) {
    request_headers_->setScheme(scheme);
  }
  info_.request_headers = request_headers_.get();
  request_complete_ = end_stream;
  if (const ListenerStats* stats = parent_.streamStats()) {
    stats->requests_total->inc();
  }
  createFilters();
  const auto timeout = parent_.streamSettings().request_timeout;
  if (timeout.count() > 0) {
    request_deadline_ = info_.start_time + timeout;
    parent_.onRequestDeadline(*this, request_deadline_);
  }
  iterateDecodeHeaders();
}

void ActiveStream::iterateDecodeHeaders() {
  // Whether the headers end the request cannot change while filters see them (body bytes
  // arrive only after this returns), so it is worked out once for the whole pass.
  const bool end = request_complete_ && buffered_request_.empty() && !buffered_request_end_ &&
                   buffered_trailers_ == nullptr;
  while (headers_next_ < decodeEnd()) {
    // Filters that do not handle the headers are stepped over (they let them through).
    const size_t i = chain_->nextHandler(FilterEvent::DecodeHeaders, headers_next_);
    if (i >= decodeEnd()) {
      headers_next_ = decodeEnd();
      break;
    }
    headers_next_ = i + 1;
    const FilterStatus status = filters_[i].filter().decodeHeaders(*request_headers_, end);
    if (done_) {
      return;
    }
    if (status == FilterStatus::StopIteration && headers_next_ < decodeEnd()) {
      decode_stopped_at_ = static_cast<int>(i);
      return;
    }
  }
  if (headers_next_ >= filter_count_ && !continue_held_) {
    maybeSendContinue();
  }
}

void ActiveStream::maybeSendContinue() {
  if (continue_sent_ || response_started_ || request_complete_ || request_headers_ == nullptr) {
    return;
  }
  if (!equalsIgnoreCase(request_headers_->getOr("expect"), "100-continue")) {
    return;
  }
  continue_sent_ = true;
  encoder_.encode1xxHeaders(ResponseHeaders(100));
}

void ActiveStream::decodeData(Buffer& data, bool end_stream) {
  info_.bytes_received += data.length();
  if (request_deadline_ != MonotonicTime{} && !response_started_ && data.length() > 0) {
    // A body still arriving is not a request waiting for its answer: request_timeout runs
    // from its latest bytes, so a long upload is not cut while a stalled one still ends.
    request_deadline_ = parent_.streamDispatcher().now() + parent_.streamSettings().request_timeout;
  }
  if (end_stream) {
    request_complete_ = true;
  }
  if (done_) {
    data.clear();
    return;
  }
  iterateDecodeData(0, data, end_stream);
}

void ActiveStream::iterateDecodeData(size_t from, Buffer& data, bool end_stream) {
  const size_t last = decodeEnd();
  const size_t stop = decode_stopped_at_ >= 0 ? static_cast<size_t>(decode_stopped_at_) : SIZE_MAX;
  for (size_t i = from; i < last; ++i) {
    if (i == stop || i >= headers_next_) {
      // This filter has not let the headers through yet: hold the data for it.
      bufferRequestData(data, end_stream);
      return;
    }
    if (!filters_[i].handles(FilterEvent::DecodeData)) {
      continue;
    }
    const FilterStatus status = filters_[i].filter().decodeData(data, end_stream);
    if (done_) {
      return;
    }
    if (status == FilterStatus::StopIteration && i + 1 < decodeEnd()) {
      decode_stopped_at_ = static_cast<int>(i);
      bufferRequestData(data, end_stream);
      return;
    }
  }
  data.clear();
}

void ActiveStream::bufferRequestData(Buffer& data, bool end_stream) {
  buffered_request_.move(data);
  buffered_request_end_ = buffered_request_end_ || end_stream;
  if (!request_paused_ &&
      buffered_request_.length() > parent_.streamSettings().limits.buffer_limit) {
    request_paused_ = true;
    encoder_.readDisable(true);
  }
}

void ActiveStream::decodeTrailers(HeaderMapPtr trailers) {
  request_complete_ = true;
  if (done_) {
    return;
  }
  if (const size_t removed = removeFieldsNotAllowedInTrailers(*trailers); removed > 0) {
    POUNCE_LOG(Http, Debug, "dropped %zu request trailer field(s) that belong in the head",
               removed);
  }
  buffered_trailers_ = std::move(trailers);
  if (decode_stopped_at_ >= 0 || headers_next_ < decodeEnd()) {
    return;
  }
  iterateDecodeTrailers(0);
}

void ActiveStream::iterateDecodeTrailers(size_t from) {
  if (buffered_trailers_ == nullptr) {
    return;
  }
  HeaderMapPtr trailers = std::move(buffered_trailers_);
  for (size_t i = from; i < decodeEnd(); ++i) {
    if (!filters_[i].handles(FilterEvent::DecodeTrailers)) {
      continue;
    }
    const FilterStatus status = filters_[i].filter().decodeTrailers(*trailers);
    if (done_) {
      return;
    }
    if (status == FilterStatus::StopIteration && i + 1 < decodeEnd()) {
      decode_stopped_at_ = static_cast<int>(i);
      buffered_trailers_ = std::move(trailers);
      return;
    }
  }
}

void ActiveStream::continueDecoding(size_t index) {
  if (done_ || decode_stopped_at_ != static_cast<int>(index)) {
    return;
  }
  decode_stopped_at_ = -1;
  if (headers_next_ < decodeEnd()) {
    // An empty end-of-stream marker folds into the headers' end_stream.
    if (buffered_request_.empty() && buffered_request_end_ && buffered_trailers_ == nullptr) {
      buffered_request_end_ = false;
    }
    iterateDecodeHeaders();
    if (done_ || decode_stopped_at_ >= 0) {
      return;
    }
  }
  if (!buffered_request_.empty() || buffered_request_end_) {
    Buffer data(std::move(buffered_request_));
    const bool end = buffered_request_end_;
    buffered_request_end_ = false;
    if (request_paused_) {
      request_paused_ = false;
      encoder_.readDisable(false);
    }
    iterateDecodeData(index + 1, data, end);
    if (done_ || decode_stopped_at_ >= 0) {
      return;
    }
  }
  if (buffered_trailers_ != nullptr) {
    iterateDecodeTrailers(index + 1);
  }
}

void ActiveStream::onProtocolError(int status, std::string_view details) {
  info_.setFlag(ResponseFlag::ProtocolError);
  if (const ListenerStats* stats = parent_.streamStats()) {
    stats->protocol_errors->inc();
  }
  if (request_headers_ == nullptr) {
    request_headers_ = std::make_unique<RequestHeaders>();
    request_headers_->setMethod("-");
    request_headers_->setPath("-");
    info_.request_headers = request_headers_.get();
  }
  createFilters();
  decode_limit_ = 0;
  if (response_started_) {
    reset(true);
    return;
  }
  std::string body(reasonPhrase(status));
  body += '\n';
  sendLocalReply(-1, status, body, [](ResponseHeaders& h) { h.set("connection", "close"); });
}

void ActiveStream::onRequestRefused(RequestHeadersPtr headers, int status,
                                    std::string_view details) {
  if (request_headers_ == nullptr && headers != nullptr) {
    request_headers_ = std::move(headers);
    const std::string_view scheme = info_.tls != nullptr ? "https" : "http";
    if (request_headers_->scheme() != scheme) {
      request_headers_->setScheme(scheme);
    }
    info_.request_headers = request_headers_.get();
  }
  onProtocolError(status, details);
}

// --- encoding -----------------------------------------------------------------------------

void ActiveStream::sendLocalReply(int from, int status, std::string_view body,
                                  const std::function<void(ResponseHeaders&)>& modify) {
  if (done_) {
    return;
  }
  if (response_started_) {
    // Too late for a clean answer.
    reset(true);
    return;
  }
  local_reply_ = true;
  info_.setFlag(ResponseFlag::LocalReply);
  auto headers = std::make_unique<ResponseHeaders>(status);
  if (!body.empty()) {
    headers->addLowercase("content-type", "text/plain; charset=utf-8");
  }
  headers->addLowercase("content-length", std::to_string(body.size()));
  if (modify) {
    modify(*headers);
  }
  const bool has_body = !body.empty();
  encodeHeaders(from, std::move(headers), !has_body);
  if (has_body && !done_) {
    Buffer data(body);
    encodeData(from, data, true);
  }
}

void ActiveStream::encodeHeaders(int from, ResponseHeadersPtr headers, bool end_stream) {
  if (done_ || response_started_) {
    return;
  }
  response_started_ = true;
  encode_from_ = from;
  // Filters after the producer never see this request again.
  decode_limit_ = std::min<size_t>(decode_limit_, static_cast<size_t>(from + 2));
  request_deadline_ = MonotonicTime{};
  response_headers_ = std::move(headers);
  response_headers_end_ = end_stream;
  for (int k = lastHandler(FilterEvent::EncodeHeaders, from); k >= 0;
       k = lastHandler(FilterEvent::EncodeHeaders, k - 1)) {
    const FilterStatus status = filters_[k].filter().encodeHeaders(*response_headers_, end_stream);
    if (done_) {
      return;
    }
    if (status == FilterStatus::StopIteration) {
      encode_stopped_at_ = k;
      return;
    }
  }
  sendHeadersToCodec();
}

void ActiveStream::sendHeadersToCodec() {
  response_head_sent_ = true;
  info_.response_code = response_headers_->status();
  // Body bytes of a HEAD, 1xx, 204 or 304 response never reach the client (the codec drops
  // them), so they are not counted as sent. After a 101 the bytes are the upgraded
  // protocol's (WebSocket frames), counted as the request's are.
  const int status = info_.response_code;
  body_on_wire_ = (status >= 200 || status == 101) && status != 204 && status != 205 &&
                  status != 304 &&
                  (request_headers_ == nullptr || request_headers_->method() != "HEAD");
  info_.response_start_time = dispatcher_.now();
  if (continue_held_ && !continue_sent_ && !request_complete_ &&
      info_.protocol != Protocol::Http2) {
    // Answered before the 100: an HTTP/1.1 client may send its body anyway or never; only a
    // close leaves no doubt where the next request starts. (HTTP/2 resets the stream.)
    response_headers_->set("connection", "close");
  }
  encoder_.encodeHeaders(*response_headers_, response_headers_end_);
  if (response_headers_end_) {
    onResponseComplete();
  }
}

void ActiveStream::encodeData(int from, Buffer& data, bool end_stream) {
  if (done_ || !response_started_) {
    data.clear();
    return;
  }
  iterateEncodeData(from, data, end_stream);
}

void ActiveStream::iterateEncodeData(int from, Buffer& data, bool end_stream) {
  for (int k = from; k >= 0; --k) {
    const int handler = lastHandler(FilterEvent::EncodeData, k);
    if (encode_stopped_at_ >= 0 && encode_stopped_at_ >= handler && encode_stopped_at_ <= k) {
      // The filter holding the response head is reached first (it may take no data).
      buffered_response_.move(data);
      buffered_response_end_ = buffered_response_end_ || end_stream;
      return;
    }
    if (handler < 0) {
      break;
    }
    k = handler;
    const FilterStatus status = filters_[k].filter().encodeData(data, end_stream);
    if (done_) {
      return;
    }
    if (status == FilterStatus::StopIteration) {
      encode_stopped_at_ = k;
      buffered_response_.move(data);
      buffered_response_end_ = buffered_response_end_ || end_stream;
      return;
    }
  }
  if (!response_head_sent_) {
    buffered_response_.move(data);
    buffered_response_end_ = buffered_response_end_ || end_stream;
    return;
  }
  if (body_on_wire_) {
    info_.bytes_sent += data.length();
  }
  encoder_.encodeData(data, end_stream);
  if (end_stream) {
    onResponseComplete();
  }
}

bool ActiveStream::encodersNeedBytes(int from) const {
  for (int k = std::min<int>(from, static_cast<int>(filter_count_) - 1); k >= 0; --k) {
    if (filters_[k].filter().needsResponseBodyBytes()) {
      return true;
    }
  }
  return false;
}

void ActiveStream::encodeFile(int from, FileHandleSharedPtr file, uint64_t offset, uint64_t length,
                              bool end_stream) {
  if (done_ || !response_started_) {
    return;
  }
  if (encoder_.canSendFile() && response_head_sent_ && encode_stopped_at_ < 0 &&
      buffered_response_.empty() && !encodersNeedBytes(from) && pending_file_ == nullptr) {
    if (body_on_wire_) {
      info_.bytes_sent += length;
    }
    encoder_.encodeFile(std::move(file), offset, length, end_stream);
    if (end_stream) {
      onResponseComplete();
    }
    return;
  }
  pending_file_ = std::move(file);
  pending_offset_ = offset;
  pending_left_ = length;
  pending_end_ = end_stream;
  pending_from_ = from;
  pumpFile();
}

void ActiveStream::pumpFile() {
  const uint32_t limit = parent_.streamSettings().limits.buffer_limit;
  while (pending_file_ != nullptr && !done_ && !above_high_watermark_ &&
         buffered_response_.length() < limit) {
    if (pending_left_ == 0) {
      pending_file_.reset();
      if (pending_end_) {
        Buffer empty;
        iterateEncodeData(pending_from_, empty, true);
      }
      return;
    }
    const uint64_t want = std::min(pending_left_, kFileReadChunk);
    Buffer chunk;
    char* p = chunk.reserve(static_cast<size_t>(want));
    ssize_t n;
    do {
      n = ::pread(pending_file_->fd(), p, static_cast<size_t>(want),
                  static_cast<off_t>(pending_offset_));
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
      chunk.commit(0);
      POUNCE_LOG(Http, Warning, "file read failed while sending a response; resetting stream");
      pending_file_.reset();
      reset(true);
      return;
    }
    chunk.commit(static_cast<size_t>(n));
    pending_offset_ += static_cast<uint64_t>(n);
    pending_left_ -= static_cast<uint64_t>(n);
    const bool last = pending_left_ == 0;
    if (last) {
      pending_file_.reset();
    }
    iterateEncodeData(pending_from_, chunk, last && pending_end_);
  }
}

void ActiveStream::encodeTrailers(int from, HeaderMapPtr trailers) {
  if (done_ || !response_started_) {
    return;
  }
  if (encode_stopped_at_ >= 0 || !response_head_sent_) {
    buffered_response_trailers_ = std::move(trailers);
    return;
  }
  for (int k = from; k >= 0; --k) {
    if (!filters_[k].handles(FilterEvent::EncodeTrailers)) {
      continue;
    }
    trailers_at_ = k;
    filters_[k].filter().encodeTrailers(*trailers);
    trailers_at_ = -1;
    if (done_) {
      return;
    }
    if (encode_stopped_at_ >= 0) {
      // Data the filter added is held by a later filter: the trailers wait behind it.
      buffered_response_trailers_ = std::move(trailers);
      return;
    }
  }
  if (const size_t removed = removeFieldsNotAllowedInTrailers(*trailers, /*response=*/true);
      removed > 0) {
    POUNCE_LOG(Http, Warning,
               "dropped %zu response trailer field(s) that belong in the head (framing, "
               "routing, cookies, content format; RFC 9110 §6.5.1)",
               removed);
  }
  encoder_.encodeTrailers(*trailers);
  onResponseComplete();
}

void ActiveStream::addEncodedData(size_t index, Buffer& data) {
  if (done_ || trailers_at_ != static_cast<int>(index)) {
    data.clear();
    return;
  }
  iterateEncodeData(static_cast<int>(index) - 1, data, false);
}

void ActiveStream::encode1xx(ResponseHeadersPtr headers) {
  if (done_ || response_head_sent_) {
    return;
  }
  encoder_.encode1xxHeaders(*headers);
}

void ActiveStream::continueEncoding(size_t index) {
  if (done_ || encode_stopped_at_ != static_cast<int>(index)) {
    return;
  }
  encode_stopped_at_ = -1;
  if (!response_head_sent_) {
    for (int k = lastHandler(FilterEvent::EncodeHeaders, static_cast<int>(index) - 1); k >= 0;
         k = lastHandler(FilterEvent::EncodeHeaders, k - 1)) {
      const FilterStatus status =
          filters_[k].filter().encodeHeaders(*response_headers_, response_headers_end_);
      if (done_) {
        return;
      }
      if (status == FilterStatus::StopIteration) {
        encode_stopped_at_ = k;
        return;
      }
    }
    sendHeadersToCodec();
    if (done_) {
      return;
    }
  }
  if (!buffered_response_.empty() || buffered_response_end_) {
    Buffer data(std::move(buffered_response_));
    const bool end = buffered_response_end_;
    buffered_response_end_ = false;
    iterateEncodeData(static_cast<int>(index) - 1, data, end);
    if (done_ || encode_stopped_at_ >= 0) {
      return;
    }
  }
  if (buffered_response_trailers_ != nullptr) {
    encodeTrailers(static_cast<int>(index) - 1, std::move(buffered_response_trailers_));
    return;
  }
  pumpFile();
}

// --- lifecycle ----------------------------------------------------------------------------

void ActiveStream::onResponseComplete() {
  response_complete_ = true;
  finish();
}

void ActiveStream::checkRequestTimeout(MonotonicTime now) {
  if (request_deadline_ != MonotonicTime{} && now >= request_deadline_) {
    request_deadline_ = MonotonicTime{};
    onRequestTimeout();
  }
}

void ActiveStream::onDrainStarted() {
  for (size_t i = 0; i < filter_count_ && !done_; ++i) {
    if (filters_[i].handles(FilterEvent::DrainStarted)) {
      filters_[i].filter().onDrainStarted();
    }
  }
}

void ActiveStream::onRequestTimeout() {
  if (done_ || response_started_) {
    return;
  }
  info_.setFlag(ResponseFlag::RequestTimeout);
  // The client stopped sending its body: that is its timeout (408, RFC 9110 §15.5.9), and
  // the connection closes (the rest of the body may never come). Otherwise the app did not
  // answer in time (504).
  // (A WebSocket handshake's request never completes: its "body" is the tunnel.)
  const bool tunnel = request_headers_ != nullptr &&
                      (request_headers_->method() == "CONNECT" || request_headers_->has("upgrade"));
  const bool client_stalled = !request_complete_ && !tunnel;
  POUNCE_LOG(
      Http, Warning, "%s %s: %s within request_timeout (%lld ms); answering %d",
      std::string(request_headers_ != nullptr ? request_headers_->method() : "-"),
      std::string(request_headers_ != nullptr ? request_headers_->path().substr(0, 200) : "-"),
      client_stalled ? "no more request body" : "no response",
      static_cast<long long>(parent_.streamSettings().request_timeout.count()),
      client_stalled ? 408 : 504);
  // Answer as if from the terminal filter: every filter before it encodes it.
  const int from = static_cast<int>(filter_count_) - 2;
  if (client_stalled) {
    sendLocalReply(from, 408, "Request Timeout\n",
                   [](ResponseHeaders& h) { h.set("connection", "close"); });
  } else {
    sendLocalReply(from, 504, "Gateway Timeout\n", nullptr);
  }
}

void ActiveStream::reset(bool notify_codec) {
  if (done_) {
    return;
  }
  info_.setFlag(notify_codec ? ResponseFlag::StreamReset : ResponseFlag::DownstreamReset);
  if (!notify_codec) {
    if (const ListenerStats* stats = parent_.streamStats()) {
      stats->downstream_resets->inc();
    }
  }
  if (notify_codec) {
    encoder_.setStreamCallbacks(nullptr);
    encoder_.resetStream();
  }
  finish();
}

void ActiveStream::onResetStream(StreamResetReason reason) {
  if (reason == StreamResetReason::ConnectionClosed && parent_.closedForDrain()) {
    if (!done_) {
      info_.setFlag(ResponseFlag::Draining); // not the client's doing
      finish();
    }
    return;
  }
  reset(false);
}

void ActiveStream::onAboveWriteBufferHighWatermark() {
  above_high_watermark_ = true;
  for (size_t i = 0; i < watermark_callbacks_.size(); ++i) {
    watermark_callbacks_[i]->onAboveWriteBufferHighWatermark();
  }
}

void ActiveStream::onBelowWriteBufferLowWatermark() {
  above_high_watermark_ = false;
  for (size_t i = 0; i < watermark_callbacks_.size(); ++i) {
    watermark_callbacks_[i]->onBelowWriteBufferLowWatermark();
  }
  pumpFile();
}

void ActiveStream::finish() {
  if (done_) {
    return;
  }
  done_ = true;
  info_.end_time = dispatcher_.now();
  request_deadline_ = MonotonicTime{};
  pending_file_.reset();
  if (const ListenerStats* stats = parent_.streamStats()) {
    const int code = info_.response_code;
    if (code >= 100 && code < 600) {
      stats->responses_by_class[code / 100 - 1]->inc();
    }
  }
  for (size_t i = firstHandler(FilterEvent::StreamComplete, 0); i < filter_count_;
       i = firstHandler(FilterEvent::StreamComplete, i + 1)) {
    filters_[i].filter().onStreamComplete();
  }
  for (size_t i = firstHandler(FilterEvent::Destroy, 0); i < filter_count_;
       i = firstHandler(FilterEvent::Destroy, i + 1)) {
    filters_[i].filter().onDestroy();
  }
  watermark_callbacks_.clear();
  parent_.onStreamDone(*this);
}

} // namespace pounce::http
