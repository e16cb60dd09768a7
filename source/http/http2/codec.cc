#include "source/http/http2/codec.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "source/common/logger.h"
#include "source/common/strings.h"

namespace pounce::http::http2 {

namespace {

bool hasUppercase(std::string_view name) {
  for (char c : name) {
    if (c >= 'A' && c <= 'Z') {
      return true;
    }
  }
  return false;
}

nghttp2_nv makeNv(std::string_view name, std::string_view value) {
  return {reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
          reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(), value.size(),
          NGHTTP2_NV_FLAG_NONE};
}

bool isControlFrame(uint8_t type) {
  return type != NGHTTP2_DATA && type != NGHTTP2_HEADERS && type != NGHTTP2_CONTINUATION &&
         type != NGHTTP2_PUSH_PROMISE;
}

int base64UrlValue(char c) {
  if (c >= 'A' && c <= 'Z') {
    return c - 'A';
  }
  if (c >= 'a' && c <= 'z') {
    return c - 'a' + 26;
  }
  if (c >= '0' && c <= '9') {
    return c - '0' + 52;
  }
  if (c == '-') {
    return 62;
  }
  if (c == '_') {
    return 63;
  }
  return -1;
}

} // namespace

bool parsePriority(std::string_view value, uint32_t& urgency, bool& incremental) {
  bool ok = false;
  size_t pos = 0;
  while (pos <= value.size()) {
    size_t comma = value.find(',', pos);
    if (comma == std::string_view::npos) {
      comma = value.size();
    }
    std::string_view item = value.substr(pos, comma - pos);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) {
      item.remove_prefix(1);
    }
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) {
      item.remove_suffix(1);
    }
    const size_t semi = item.find(';'); // parameters are ignored
    item = item.substr(0, semi);
    if (item.size() == 3 && item[0] == 'u' && item[1] == '=' && item[2] >= '0' && item[2] <= '7') {
      urgency = static_cast<uint32_t>(item[2] - '0');
      ok = true;
    } else if (item == "i" || item == "i=?1") {
      incremental = true;
      ok = true;
    } else if (item == "i=?0") {
      incremental = false;
      ok = true;
    }
    pos = comma + 1;
  }
  return ok;
}

bool decodeSettingsHeader(std::string_view value, std::string& payload) {
  payload.clear();
  while (!value.empty() && (value.back() == '=' || value.back() == ' ' || value.back() == '\t')) {
    value.remove_suffix(1);
  }
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
    value.remove_prefix(1);
  }
  uint32_t acc = 0;
  int bits = 0;
  for (char c : value) {
    const int v = base64UrlValue(c);
    if (v < 0) {
      return false;
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      payload.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  // One character left over (length % 4 == 1) cannot encode a byte.
  if (bits >= 6 || payload.size() % 6 != 0) {
    return false;
  }
  // Values nghttp2 would refuse once the 101 is out, when the request could no longer be
  // served over HTTP/1.1 (RFC 9113 §6.5.2; unknown settings are ignored).
  for (size_t i = 0; i < payload.size(); i += 6) {
    const auto* p = reinterpret_cast<const uint8_t*>(payload.data() + i);
    const uint32_t id = (uint32_t{p[0]} << 8) | p[1];
    const uint32_t value =
        (uint32_t{p[2]} << 24) | (uint32_t{p[3]} << 16) | (uint32_t{p[4]} << 8) | p[5];
    const bool valid =
        (id != NGHTTP2_SETTINGS_ENABLE_PUSH || value <= 1) &&
        (id != NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE || value <= 0x7fffffffu) &&
        (id != NGHTTP2_SETTINGS_MAX_FRAME_SIZE || (value >= 16384 && value <= 16777215)) &&
        (id != NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL || value <= 1);
    if (!valid) {
      return false;
    }
  }
  return true;
}

// --- Stream -------------------------------------------------------------------------------

// One HTTP/2 stream: the request being received and the response waiting for the peer's
// flow-control window. Lives until nghttp2 closed it *and* the stream above (ActiveStream)
// is done with it as a ResponseEncoder; then the codec frees it at the end of its current
// top-level call.
class ServerConnectionImpl::Stream : public ResponseEncoder {
public:
  Stream(ServerConnectionImpl& codec, int32_t id) : codec_(codec), id_(id) {}

  // ResponseEncoder
  void setStreamCallbacks(StreamCallbacks* callbacks) override { callbacks_ = callbacks; }
  void encode1xxHeaders(const ResponseHeaders& headers) override;
  void encodeHeaders(const ResponseHeaders& headers, bool end_stream) override;
  void encodeData(Buffer& data, bool end_stream) override;
  void encodeFile(FileHandleSharedPtr file, uint64_t offset, uint64_t length,
                  bool end_stream) override;
  void encodeTrailers(const HeaderMap& trailers) override;
  void resetStream() override;
  void readDisable(bool disable) override;
  bool aboveHighWatermark() const override { return reported_above_; }
  // ActiveStream reads file ranges in bounded chunks and passes them as data; the stream
  // buffer's watermark paces it. (encodeFile below also works, reading lazily per frame.)
  bool canSendFile() const override { return false; }
  Protocol protocol() const override { return Protocol::Http2; }

  // The stream above is finished with this encoder (response ended, reset either way).
  void encoderDone() {
    if (encoder_done_) {
      return;
    }
    encoder_done_ = true;
    decoder_ = nullptr;
    callbacks_ = nullptr;
    if (closed_) {
      codec_.onStreamDead(*this);
    }
  }
  void updateWatermark();
  void queueResponseBytes();
  // After body bytes or a file range joined pending_: ends the stream's response or updates
  // its watermark, then lets nghttp2 send.
  void bodyQueued(bool end_stream);
  // How many of `length` body bytes may go out under a declared Content-Length (the rest
  // is dropped, with a warning).
  uint64_t countBody(uint64_t length);

  ServerConnectionImpl& codec_;
  const int32_t id_;
  std::list<Stream>::iterator self_;

  // Request.
  RequestHeadersPtr headers_;
  HeaderMapPtr trailers_;
  uint64_t header_bytes_{0};
  uint32_t header_count_{0};
  uint32_t cookie_count_{0};
  bool host_from_authority_{false}; // the request's leading host field is its :authority
  int header_error_{0};
  const char* header_error_details_{""};
  RequestDecoder* decoder_{nullptr};
  StreamCallbacks* callbacks_{nullptr};
  Buffer body_; // the DATA frame being received
  uint64_t body_received_{0};
  uint64_t unconsumed_{0};
  uint32_t reset_code_{NGHTTP2_INTERNAL_ERROR};
  bool read_disabled_{false};
  bool remote_closed_{false};
  bool discard_body_{false};
  // Expect: 100-continue, and no 100 sent: the client holds its body back.
  bool awaits_continue_{false};
  // The response ended while the client still held its body back for a 100 that never
  // came: RST_STREAM(NO_ERROR) waits for a first DATA frame that does not end the stream
  // (RFC 9113 §8.1), if any comes. A client should not send the body after a final status;
  // curl 7.88 takes a RST_STREAM that comes with the response as no response at all.
  bool unwanted_body_{false};
  bool is_head_{false};
  bool tunnel_{false}; // extended CONNECT: DATA is a tunnel's byte stream

  // Response.
  OutputQueue pending_;
  Buffer staged_; // file bytes read for the DATA frame being sent
  bool staged_file_{false};
  HeaderMapPtr response_trailers_;
  bool response_started_{false};
  bool has_body_{true};
  // The response declared a Content-Length (of a body that goes out): the bytes still owed.
  // RFC 9113 §8.1.1: DATA must add up to it, or the message is malformed.
  bool length_known_{false};
  uint64_t remaining_{0};
  bool local_end_{false};
  bool end_sent_{false};
  bool data_deferred_{false};
  bool encoder_done_{true}; // until handed to newStream()
  bool closed_{false};
  bool dead_{false};
  bool reset_by_encoder_{false};
  bool own_above_{false};
  bool reported_above_{false};
  bool watermark_dirty_{false};
};

void ServerConnectionImpl::Stream::updateWatermark() {
  const uint64_t buffered = pending_.length();
  const uint32_t limit = codec_.limits_.buffer_limit;
  if (!own_above_ && buffered > limit) {
    own_above_ = true;
  } else if (own_above_ && buffered <= limit / 2) {
    own_above_ = false;
  }
  const bool above = own_above_ || codec_.connection_above_watermark_;
  if (above == reported_above_) {
    return;
  }
  reported_above_ = above;
  if (callbacks_ == nullptr || encoder_done_) {
    return;
  }
  if (above) {
    callbacks_->onAboveWriteBufferHighWatermark();
  } else {
    callbacks_->onBelowWriteBufferLowWatermark();
  }
}

void ServerConnectionImpl::Stream::queueResponseBytes() {
  if (data_deferred_ && !closed_) {
    data_deferred_ = false;
    nghttp2_session_resume_data(codec_.session_, id_);
  }
}

void ServerConnectionImpl::Stream::encode1xxHeaders(const ResponseHeaders& headers) {
  Scope scope(codec_);
  const int status = headers.status();
  if (encoder_done_ || closed_ || response_started_ || status < 100 || status > 199 ||
      status == 101) {
    return;
  }
  char code[3] = {static_cast<char>('0' + (status / 100) % 10),
                  static_cast<char>('0' + (status / 10) % 10),
                  static_cast<char>('0' + status % 10)};
  auto& nva = codec_.nva_;
  nva.clear();
  nva.push_back(makeNv(":status", std::string_view(code, 3)));
  codec_.appendFields(headers, status, false, nullptr, nullptr);
  const int rv = nghttp2_submit_headers(codec_.session_, NGHTTP2_FLAG_NONE, id_, nullptr,
                                        nva.data(), nva.size(), nullptr);
  codec_.clearFieldScratch();
  if (status == 100) {
    awaits_continue_ = false;
  }
  if (rv != 0) {
    POUNCE_LOG(Http2, Debug, "stream %d: 1xx response not sent: %s", id_, nghttp2_strerror(rv));
  }
}

void ServerConnectionImpl::Stream::encodeHeaders(const ResponseHeaders& headers, bool end_stream) {
  Scope scope(codec_);
  if (encoder_done_ || closed_ || response_started_) {
    return;
  }
  response_started_ = true;
  const int status = headers.status();
  // (205 Reset Content has no content either: RFC 9110 §15.3.6.)
  has_body_ = !is_head_ && status != 204 && status != 205 && status != 304;
  char code[3] = {static_cast<char>('0' + (status / 100) % 10),
                  static_cast<char>('0' + (status / 10) % 10),
                  static_cast<char>('0' + status % 10)};
  auto& nva = codec_.nva_;
  nva.clear();
  nva.push_back(makeNv(":status", std::string_view(code, 3)));
  bool has_date = false;
  bool has_server = false;
  codec_.response_priority_ = {};
  codec_.appendFields(headers, status, false, &has_date, &has_server);
  uint64_t declared = 0;
  length_known_ = codec_.checkContentLength(declared) && has_body_;
  remaining_ = declared;
  if (end_stream && length_known_ && remaining_ > 0) {
    // Declared, and no body at all: the message would be malformed.
    POUNCE_LOG(Http2, Warning,
               "stream %d: response ends %d bytes short of its Content-Length; resetting it", id_,
               remaining_);
    codec_.clearFieldScratch();
    resetStream();
    return;
  }
  if (!codec_.response_priority_.empty()) {
    // RFC 9218 §5: the response's `priority` field overrides what the client asked for.
    uint32_t urgency = NGHTTP2_EXTPRI_DEFAULT_URGENCY;
    bool incremental = false;
    if (parsePriority(codec_.response_priority_, urgency, incremental)) {
      nghttp2_extpri extpri{urgency, incremental ? 1 : 0};
      nghttp2_session_change_extpri_stream_priority(codec_.session_, id_, &extpri, 1);
    }
  }
  if (!has_date) {
    nva.push_back(makeNv("date", httpDate(codec_.time_source_)));
  }
  if (!has_server && !codec_.limits_.server_header.empty()) {
    nva.push_back(makeNv("server", codec_.limits_.server_header));
  }
  int rv;
  if (end_stream) {
    local_end_ = true;
    encoderDone();
    rv = nghttp2_submit_response(codec_.session_, id_, nva.data(), nva.size(), nullptr);
  } else {
    nghttp2_data_provider provider;
    provider.source.ptr = this;
    provider.read_callback = &ServerConnectionImpl::onReadData;
    rv = nghttp2_submit_response(codec_.session_, id_, nva.data(), nva.size(), &provider);
  }
  codec_.clearFieldScratch();
  if (rv != 0) {
    POUNCE_LOG(Http2, Warning, "stream %d: response head not sent: %s", id_, nghttp2_strerror(rv));
    nghttp2_submit_rst_stream(codec_.session_, NGHTTP2_FLAG_NONE, id_, NGHTTP2_INTERNAL_ERROR);
  }
}

void ServerConnectionImpl::Stream::encodeData(Buffer& data, bool end_stream) {
  Scope scope(codec_);
  if (encoder_done_ || closed_) {
    data.clear();
    return;
  }
  if (has_body_) {
    const uint64_t n = countBody(data.length());
    if (n < data.length()) [[unlikely]] {
      Buffer owed;
      owed.move(data, n);
      data.clear();
      pending_.move(owed);
    } else {
      pending_.move(data);
    }
  } else {
    data.clear();
  }
  bodyQueued(end_stream);
}

uint64_t ServerConnectionImpl::Stream::countBody(uint64_t length) {
  if (!length_known_) {
    return length;
  }
  if (length > remaining_) [[unlikely]] {
    POUNCE_LOG(Http2, Warning,
               "stream %d: response body longer than its Content-Length: %d bytes dropped", id_,
               length - remaining_);
    length = remaining_;
  }
  remaining_ -= length;
  return length;
}

void ServerConnectionImpl::Stream::encodeFile(FileHandleSharedPtr file, uint64_t offset,
                                              uint64_t length, bool end_stream) {
  Scope scope(codec_);
  if (encoder_done_ || closed_) {
    return;
  }
  if (has_body_) {
    if (const uint64_t n = countBody(length); n > 0) {
      pending_.addFile(std::move(file), offset, n);
    }
  }
  bodyQueued(end_stream);
}

void ServerConnectionImpl::Stream::bodyQueued(bool end_stream) {
  if (end_stream && length_known_ && remaining_ > 0) [[unlikely]] {
    // The body ended short of its Content-Length: the client is told by a reset.
    POUNCE_LOG(Http2, Warning,
               "stream %d: response ends %d bytes short of its Content-Length; resetting it", id_,
               remaining_);
    resetStream();
    return;
  }
  if (end_stream) {
    local_end_ = true;
    encoderDone();
  } else {
    updateWatermark();
  }
  queueResponseBytes();
}

void ServerConnectionImpl::Stream::encodeTrailers(const HeaderMap& trailers) {
  Scope scope(codec_);
  if (encoder_done_ || closed_) {
    return;
  }
  if (length_known_ && remaining_ > 0) [[unlikely]] {
    POUNCE_LOG(Http2, Warning,
               "stream %d: response ends %d bytes short of its Content-Length; resetting it", id_,
               remaining_);
    resetStream();
    return;
  }
  if (!trailers.empty()) {
    response_trailers_ = std::make_unique<HeaderMap>(trailers);
  }
  local_end_ = true;
  encoderDone();
  queueResponseBytes();
}

void ServerConnectionImpl::Stream::resetStream() {
  Scope scope(codec_);
  if (encoder_done_) {
    return;
  }
  reset_by_encoder_ = true;
  pending_.clear();
  if (!closed_) {
    nghttp2_submit_rst_stream(codec_.session_, NGHTTP2_FLAG_NONE, id_, reset_code_);
  }
  encoderDone();
}

void ServerConnectionImpl::Stream::readDisable(bool disable) {
  Scope scope(codec_);
  if (disable == read_disabled_) {
    return;
  }
  read_disabled_ = disable;
  if (!disable && unconsumed_ > 0 && !closed_) {
    // Give the window back: the peer may send what we held back.
    nghttp2_session_consume_stream(codec_.session_, id_, unconsumed_);
    unconsumed_ = 0;
  }
}

// --- ServerConnectionImpl -----------------------------------------------------------------

ServerConnectionImpl::ServerConnectionImpl(OutputQueue& output,
                                           ServerConnectionCallbacks& callbacks,
                                           const CodecLimits& limits, const Http2Settings& settings,
                                           TimeSource& time_source)
    : output_(output), callbacks_(callbacks), limits_(limits), settings_(settings),
      time_source_(time_source),
      max_header_list_size_(settings.max_header_list_size != 0 ? settings.max_header_list_size
                                                               : limits.max_header_bytes),
      header_hard_cap_(std::max<uint64_t>(4ull * max_header_list_size_, 16384)) {
  bytes_queued_ = output_.length();
  nghttp2_option* option;
  nghttp2_option_new(&option);
  nghttp2_option_set_no_auto_window_update(option, 1);
  nghttp2_option_set_max_continuations(option, settings_.max_continuation_frames);
  nghttp2_option_set_max_outbound_ack(option, settings_.max_outbound_control_frames);
  nghttp2_option_set_builtin_recv_extension_type(option, NGHTTP2_PRIORITY_UPDATE);
  nghttp2_option_set_no_closed_streams(option, 1);
  nghttp2_session_server_new2(&session_, sessionCallbacks(), this, option);
  nghttp2_option_del(option);

  const nghttp2_settings_entry entries[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, settings_.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, settings_.initial_stream_window_size},
      {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, settings_.max_frame_size},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, max_header_list_size_},
      {NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1},
      {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
  };
  int rv = nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, entries,
                                   sizeof(entries) / sizeof(entries[0]));
  if (rv != 0) {
    POUNCE_LOG(Http2, Error, "nghttp2_submit_settings: %s", nghttp2_strerror(rv));
  }
  if (settings_.initial_connection_window_size > NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE) {
    rv = nghttp2_session_set_local_window_size(
        session_, NGHTTP2_FLAG_NONE, 0,
        static_cast<int32_t>(settings_.initial_connection_window_size));
    if (rv != 0) {
      POUNCE_LOG(Http2, Error, "nghttp2_session_set_local_window_size: %s", nghttp2_strerror(rv));
    }
  }
}

ServerConnectionImpl::~ServerConnectionImpl() {
  nghttp2_session_del(session_);
  session_ = nullptr;
  streams_.clear();
}

ServerConnectionImpl::Stream* ServerConnectionImpl::streamFor(int32_t stream_id) {
  return static_cast<Stream*>(nghttp2_session_get_stream_user_data(session_, stream_id));
}

ServerConnectionImpl::Stream* ServerConnectionImpl::createStream(int32_t stream_id) {
  streams_.emplace_back(*this, stream_id);
  Stream* s = &streams_.back();
  s->self_ = std::prev(streams_.end());
  ++open_streams_;
  return s;
}

void ServerConnectionImpl::onStreamDead(Stream& stream) {
  if (!stream.dead_) {
    stream.dead_ = true;
    dead_.push_back(&stream);
  }
}

void ServerConnectionImpl::reap() {
  for (Stream* s : dead_) {
    streams_.erase(s->self_);
  }
  dead_.clear();
}

bool ServerConnectionImpl::upgrade(std::string_view settings_payload, RequestHeadersPtr request) {
  Scope scope(*this);
  const bool head = request->method() == "HEAD";
  Stream* s = createStream(1);
  const int rv =
      nghttp2_session_upgrade2(session_, reinterpret_cast<const uint8_t*>(settings_payload.data()),
                               settings_payload.size(), head ? 1 : 0, s);
  if (rv != 0) {
    POUNCE_LOG(Http2, Debug, "h2c upgrade rejected: %s", nghttp2_strerror(rv));
    --open_streams_;
    streams_.pop_back();
    return false;
  }
  s->remote_closed_ = true;
  s->is_head_ = head;
  // The HTTP/1.1 request becomes stream 1: drop what only meant something to HTTP/1.1.
  for (std::string_view name : {"connection", "upgrade", "http2-settings", "keep-alive",
                                "proxy-connection", "transfer-encoding"}) {
    request->remove(name);
  }
  if (request->has("te") && !equalsIgnoreCase(request->getOr("te"), "trailers")) {
    request->remove("te");
  }
  const std::string host(request->getOr("host"));
  if (!host.empty()) {
    request->setAuthority(host);
  }
  request->setProtocol("HTTP/2");
  s->encoder_done_ = false;
  RequestDecoder& decoder = callbacks_.newStream(*s);
  s->decoder_ = &decoder;
  decoder.decodeHeaders(std::move(request), true);
  return true;
}

bool ServerConnectionImpl::dispatch(Buffer& data) {
  Scope scope(*this);
  if (closing_ || closed_) {
    data.clear();
    return false;
  }
  const ssize_t rv = nghttp2_session_mem_recv(
      session_, reinterpret_cast<const uint8_t*>(data.data()), data.length());
  if (rv < 0) {
    data.clear();
    uint32_t code = NGHTTP2_PROTOCOL_ERROR;
    if (flood_ || rv == NGHTTP2_ERR_FLOODED || rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS) {
      code = NGHTTP2_ENHANCE_YOUR_CALM;
      if (!flood_) {
        flood_ = true;
        POUNCE_LOG(Http2, Info, "HTTP/2 flood: %s; closing the connection",
                   nghttp2_strerror(static_cast<int>(rv)));
      }
    } else if (rv != NGHTTP2_ERR_BAD_CLIENT_MAGIC && rv != NGHTTP2_ERR_CALLBACK_FAILURE) {
      code = NGHTTP2_INTERNAL_ERROR;
    }
    if (!closing_) {
      terminate(code, nghttp2_strerror(static_cast<int>(rv)));
    }
    return false;
  }
  data.drain(static_cast<size_t>(rv));
  return !closing_;
}

void ServerConnectionImpl::terminate(uint32_t error_code, const char* reason) {
  closing_ = true;
  const int32_t last = nghttp2_session_get_last_proc_stream_id(session_);
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, last, error_code,
                        reinterpret_cast<const uint8_t*>(reason), std::strlen(reason));
}

bool ServerConnectionImpl::floodDetected(const char* what) {
  if (!flood_) {
    flood_ = true;
    POUNCE_LOG(Http2, Info, "HTTP/2 flood: %s; closing the connection", what);
    terminate(NGHTTP2_ENHANCE_YOUR_CALM, what);
  }
  return true;
}

bool ServerConnectionImpl::countPrematureReset() {
  const MonotonicTime now = time_source_.monotonicTime();
  if (reset_window_start_ == MonotonicTime{} ||
      now - reset_window_start_ >= settings_.flood_window) {
    reset_window_start_ = now;
    resets_in_window_ = 0;
  }
  return ++resets_in_window_ > settings_.max_reset_streams;
}

void ServerConnectionImpl::shutdownNotice() {
  Scope scope(*this);
  if (draining_ || closing_ || closed_) {
    return;
  }
  draining_ = true;
  goaway_last_stream_id_ = nghttp2_session_get_last_proc_stream_id(session_);
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, goaway_last_stream_id_, NGHTTP2_NO_ERROR,
                        nullptr, 0);
}

void ServerConnectionImpl::onRemoteHalfClose() {
  Scope scope(*this);
  if (closed_) {
    return;
  }
  // No more frames can come: streams still receiving their request will never complete.
  // Streams with a complete request still get their response; then the connection closes.
  remote_half_closed_ = true;
  for (auto& s : streams_) {
    if (!s.remote_closed_ && !s.closed_) {
      s.reset_by_encoder_ = true;
      nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s.id_, NGHTTP2_CANCEL);
      if (!s.encoder_done_) {
        StreamCallbacks* callbacks = s.callbacks_;
        s.encoderDone();
        if (callbacks != nullptr) {
          callbacks->onResetStream(StreamResetReason::RemoteReset);
        }
      }
    }
  }
}

void ServerConnectionImpl::onRequestHeadTimeout() {
  Scope scope(*this);
  if (!closing_ && !closed_) {
    terminate(NGHTTP2_NO_ERROR, "request header timeout");
  }
}

void ServerConnectionImpl::onAboveWriteBufferHighWatermark() {
  Scope scope(*this);
  connection_above_watermark_ = true;
  for (auto& s : streams_) {
    s.updateWatermark();
  }
}

void ServerConnectionImpl::onBelowWriteBufferLowWatermark() {
  Scope scope(*this);
  connection_above_watermark_ = false;
  for (auto& s : streams_) {
    s.updateWatermark();
  }
}

void ServerConnectionImpl::onConnectionClosed() {
  if (closed_) {
    return;
  }
  closed_ = true;
  for (auto& s : streams_) {
    if (!s.encoder_done_) {
      StreamCallbacks* callbacks = s.callbacks_;
      s.encoderDone();
      if (callbacks != nullptr) {
        callbacks->onResetStream(StreamResetReason::ConnectionClosed);
      }
    }
    s.pending_.clear();
  }
}

void ServerConnectionImpl::afterTopLevel() {
  if (closed_) {
    reap();
    return;
  }
  ++depth_;
  flush();
  --depth_;
  reap();
  if (!closing_ &&
      ((!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_)) ||
       (remote_half_closed_ && open_streams_ == 0))) {
    closing_ = true;
  }
  if (!close_requested_ && (closing_ || (draining_ && open_streams_ == unwanted_bodies_))) {
    close_requested_ = true;
    callbacks_.closeConnection(true);
  }
}

void ServerConnectionImpl::flush() {
  // What left output_ since the last look: pop those frames off the outbound accounting.
  const uint64_t written = bytes_queued_ - std::min<uint64_t>(bytes_queued_, output_.length());
  while (!outbound_.empty() && outbound_.front().first <= written) {
    if (outbound_.front().second) {
      --outbound_control_;
    }
    outbound_.pop_front();
  }
  // Telling the connection about new output can call back into streams (watermarks), and
  // streams that drained under their low watermark may produce more: go round until there
  // is nothing more to pull (a few rounds at most; the peer's windows bound the data).
  for (int round = 0; round < 16; ++round) {
    const uint64_t before = output_.length();
    // After a flood only what is ahead of our GOAWAY goes out, then nothing.
    while (!(flood_ && flood_goaway_sent_)) {
      const uint8_t* data = nullptr;
      const ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n < 0) {
        POUNCE_LOG(Http2, Warning, "nghttp2_session_mem_send: %s",
                   nghttp2_strerror(static_cast<int>(n)));
        closing_ = true;
        break;
      }
      if (n == 0) {
        break;
      }
      output_.add(std::string_view(reinterpret_cast<const char*>(data), static_cast<size_t>(n)));
      bytes_queued_ += static_cast<uint64_t>(n);
      onFrameQueued(isControlFrame(last_sent_type_));
    }
    if (output_.length() != before) {
      callbacks_.onCodecOutput();
    }
    if (flood_ || closed_) {
      break;
    }
    std::vector<Stream*> dirty;
    dirty.swap(watermark_dirty_);
    for (Stream* s : dirty) {
      s->watermark_dirty_ = false;
      s->updateWatermark();
    }
    if (watermark_dirty_.empty() && !nghttp2_session_want_write(session_)) {
      break;
    }
  }
}

void ServerConnectionImpl::onFrameQueued(bool control) {
  outbound_.emplace_back(bytes_queued_, control);
  if (control) {
    ++outbound_control_;
  }
  checkOutboundFlood();
}

void ServerConnectionImpl::checkOutboundFlood() {
  if (flood_) {
    return;
  }
  // Frames wait in output_ only while the client does not read them.
  if (outbound_control_ > settings_.max_outbound_control_frames) {
    floodDetected("too many control frames queued for a client that does not read them");
  } else if (outbound_.size() > settings_.max_outbound_frames) {
    floodDetected("too many frames queued for a client that does not read them");
  }
}

void ServerConnectionImpl::appendFields(const HeaderMap& headers, int status, bool trailers,
                                        bool* has_date, bool* has_server) {
  for (size_t i = 0; i < headers.size(); ++i) {
    std::string_view name = headers.nameAt(i);
    std::string_view value = headers.valueAt(i);
    if (name.empty() || name[0] == ':' || !isValidHeaderName(name) || !isValidHeaderValue(value)) {
      POUNCE_LOG(Http2, Warning, "dropped response header with invalid characters: %s",
                 escapeForLog(name));
      continue;
    }
    // RFC 9113 §8.2.1: no whitespace around a value (HTTP/1.1 readers drop it anyway).
    value = trim(value);
    if (hasUppercase(name)) {
      std::string& lowered = field_scratch_.emplace_back(name);
      for (char& c : lowered) {
        if (c >= 'A' && c <= 'Z') {
          c = static_cast<char>(c - 'A' + 'a');
        }
      }
      name = lowered;
    }
    if (isConnectionSpecificField(name)) {
      POUNCE_LOG(Http2, Debug, "dropped connection-specific response header: %s",
                 std::string(name));
      continue;
    }
    if (name == "content-length") {
      if (trailers || status < 200 || status == 204 || status == 205) {
        continue; // (framing fields have no place in trailers: RFC 9110 §6.5.1)
      }
      content_length_.add(value);
    }
    if (!trailers) {
      if (has_date != nullptr && name == "date") {
        *has_date = true;
      } else if (has_server != nullptr && name == "server") {
        *has_server = true;
      } else if (name == "priority") {
        response_priority_ = value;
      }
    }
    nva_.push_back(makeNv(name, value));
  }
}

bool ServerConnectionImpl::checkContentLength(uint64_t& declared) {
  const ContentLengthFields fields = content_length_;
  content_length_ = {};
  const uint32_t count = fields.count;
  const bool bad = fields.bad;
  declared = fields.value;
  if (count <= 1 && !bad) {
    return count == 1;
  }
  // RFC 9110 §8.6: one value, of digits. Disagreeing or malformed values all go (the
  // body's DATA frames then say its length); copies of one value go once.
  POUNCE_LOG(Http2, Warning, "response Content-Length fields %s",
             bad ? "invalid or disagreeing: dropped" : "repeated: sent once");
  nva_.erase(std::remove_if(nva_.begin(), nva_.end(),
                            [](const nghttp2_nv& nv) {
                              return std::string_view(reinterpret_cast<const char*>(nv.name),
                                                      nv.namelen) == "content-length";
                            }),
             nva_.end());
  if (bad) {
    return false;
  }
  field_scratch_.emplace_back(std::to_string(declared));
  nva_.push_back(makeNv("content-length", field_scratch_.back()));
  return true;
}

void ServerConnectionImpl::clearFieldScratch() {
  nva_.clear();
  field_scratch_.clear();
}

// --- nghttp2 callbacks --------------------------------------------------------------------

const nghttp2_session_callbacks* ServerConnectionImpl::sessionCallbacks() {
  static nghttp2_session_callbacks* const callbacks = [] {
    nghttp2_session_callbacks* cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_begin_frame_callback(cb, &onBeginFrame);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, &onBeginHeaders);
    nghttp2_session_callbacks_set_on_header_callback(cb, &onHeader);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, &onFrameRecv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &onDataChunkRecv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, &onStreamClose);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cb, &onInvalidFrameRecv);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, &onFrameSend);
    nghttp2_session_callbacks_set_send_data_callback(cb, &onSendData);
    return cb;
  }();
  return callbacks;
}

int ServerConnectionImpl::onBeginFrame(nghttp2_session*, const nghttp2_frame_hd* hd, void* user) {
  auto& c = *static_cast<ServerConnectionImpl*>(user);
  if (c.flood_ || c.closing_) {
    // Stop parsing: the connection is going away.
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  }
  c.preface_received_ = true;
  switch (hd->type) {
  case NGHTTP2_HEADERS:
    // A header block is open until a frame with END_HEADERS; the header timeout covers a
    // client that stalls between its frames. (Known from the frame's flags, not from a
    // later callback: nghttp2 drops a HEADERS frame for a stream it closed, or after GOAWAY,
    // without one.)
    c.in_header_block_ = !(hd->flags & NGHTTP2_FLAG_END_HEADERS);
    c.continuation_frames_ = 0;
    c.header_block_bytes_ = hd->length;
    break;
  case NGHTTP2_CONTINUATION:
    c.in_header_block_ = !(hd->flags & NGHTTP2_FLAG_END_HEADERS);
    if (++c.continuation_frames_ > c.settings_.max_continuation_frames) {
      c.floodDetected("CONTINUATION flood");
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    c.header_block_bytes_ += hd->length;
    if (c.header_block_bytes_ > c.header_hard_cap_) {
      c.floodDetected("header block far over max_header_list_size");
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    break;
  default:
    c.in_header_block_ = false;
    break;
  }
  switch (hd->type) {
  case NGHTTP2_DATA:
    if (hd->flags & NGHTTP2_FLAG_PADDED) {
      return 0; // how much is padding is known when the frame is complete (frameRecv)
    }
    return c.countPayload(hd->length, (hd->flags & NGHTTP2_FLAG_END_STREAM) != 0);
  case NGHTTP2_HEADERS:
  case NGHTTP2_CONTINUATION:
    return c.countPayload(hd->length, (hd->flags & NGHTTP2_FLAG_END_HEADERS) != 0);
  default:
    // Control frames neither count nor end a run: a client may not reset the count by
    // slipping a PING or WINDOW_UPDATE between its empty frames.
    return 0;
  }
}

int ServerConnectionImpl::countPayload(size_t payload, bool ends_something) {
  // CVE-2019-9518: DATA, HEADERS and CONTINUATION frames that carry nothing and end nothing
  // cost the server work and the client nothing; a run of them is a flood.
  if (payload > 0) {
    empty_frames_ = 0;
  } else if (!ends_something && ++empty_frames_ > settings_.max_consecutive_empty_frames) {
    floodDetected("frames without payload");
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  }
  return 0;
}

int ServerConnectionImpl::onBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* user) {
  return static_cast<ServerConnectionImpl*>(user)->beginHeaders(*frame);
}

int ServerConnectionImpl::beginHeaders(const nghttp2_frame& frame) {
  if (frame.hd.type != NGHTTP2_HEADERS) {
    return 0;
  }
  const int32_t id = frame.hd.stream_id;
  if (frame.headers.cat == NGHTTP2_HCAT_REQUEST) {
    if (draining_ && id > goaway_last_stream_id_) {
      // Beyond the GOAWAY we sent (in the same read): not processed, the client may retry.
      nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_REFUSED_STREAM);
      return 0;
    }
    Stream* s = createStream(id);
    s->headers_ = std::make_unique<RequestHeaders>();
    s->headers_->reserveBytes(256); // one allocation for a typical request's fields
    nghttp2_session_set_stream_user_data(session_, id, s);
    return 0;
  }
  if (frame.headers.cat == NGHTTP2_HCAT_HEADERS) {
    if (Stream* s = streamFor(id)) {
      s->trailers_ = std::make_unique<HeaderMap>();
      s->header_bytes_ = 0;
    }
  }
  return 0;
}

int ServerConnectionImpl::onHeader(nghttp2_session*, const nghttp2_frame* frame,
                                   const uint8_t* name, size_t namelen, const uint8_t* value,
                                   size_t valuelen, uint8_t, void* user) {
  return static_cast<ServerConnectionImpl*>(user)->header(
      *frame, std::string_view(reinterpret_cast<const char*>(name), namelen),
      std::string_view(reinterpret_cast<const char*>(value), valuelen));
}

int ServerConnectionImpl::header(const nghttp2_frame& frame, std::string_view name,
                                 std::string_view value) {
  Stream* s = streamFor(frame.hd.stream_id);
  if (s == nullptr) {
    return 0;
  }
  s->header_bytes_ += name.size() + value.size() + 32;
  if (s->header_bytes_ > header_hard_cap_) {
    // Far over what we advertised: an HPACK bomb, not a client that needs a 431.
    floodDetected("header list far over max_header_list_size (HPACK bomb)");
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  }
  if (s->header_error_ != 0) {
    return 0;
  }
  if (s->header_bytes_ > max_header_list_size_) {
    s->header_error_ = 431;
    s->header_error_details_ = "request headers too large";
    return 0;
  }
  if (frame.headers.cat == NGHTTP2_HCAT_HEADERS) {
    if (s->trailers_ != nullptr) {
      s->trailers_->addLowercase(name, value);
    }
    return 0;
  }
  if (s->headers_ == nullptr) {
    return 0;
  }
  RequestHeaders& h = *s->headers_;
  if (!name.empty() && name[0] == ':') {
    if (name == ":method") {
      h.setMethod(value);
    } else if (name == ":path") {
      h.setPath(value);
    } else if (name == ":scheme") {
      h.setScheme(value);
    } else if (name == ":authority") {
      if (!isValidHost(value)) {
        s->header_error_ = 400;
        s->header_error_details_ = "invalid :authority";
      }
      h.setAuthority(value);
      if (!value.empty()) {
        // HTTP/1.1 code reads the authority from Host: it leads the fields, as it usually
        // does in HTTP/1.1 (pseudo-fields come first, so nothing is there yet).
        h.addLowercase("host", value);
        s->host_from_authority_ = true;
      }
    } else if (name == ":protocol") {
      h.setConnectProtocol(value);
    }
    return 0;
  }
  if (++s->header_count_ > limits_.max_headers) {
    s->header_error_ = 431;
    s->header_error_details_ = "too many request headers";
    return 0;
  }
  if (name == "cookie") {
    ++s->cookie_count_;
  } else if (name == "host" && s->host_from_authority_) {
    // RFC 9113 §8.3.1: a Host that differs from :authority makes the request malformed
    // (routing by Host and an app reading the authority would disagree); one that agrees
    // is already there. (nghttp2 itself resets a stream with two Host fields.)
    if (!equalsIgnoreCase(value, h.authority())) {
      s->header_error_ = 400;
      s->header_error_details_ = "Host and :authority differ";
    }
    return 0;
  } else if (name == "host" && !isValidHost(value)) {
    s->header_error_ = 400;
    s->header_error_details_ = "invalid Host header";
  }
  h.addLowercase(name, value);
  return 0;
}

int ServerConnectionImpl::onFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
  return static_cast<ServerConnectionImpl*>(user)->frameRecv(*frame);
}

int ServerConnectionImpl::frameRecv(const nghttp2_frame& frame) {
  const int32_t id = frame.hd.stream_id;
  const bool end_stream = (frame.hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  if (frame.hd.type == NGHTTP2_DATA) {
    if ((frame.hd.flags & NGHTTP2_FLAG_PADDED) &&
        countPayload(frame.hd.length - frame.data.padlen, end_stream) != 0) {
      return NGHTTP2_ERR_CALLBACK_FAILURE; // only padding
    }
    Stream* s = streamFor(id);
    if (s == nullptr) {
      return 0;
    }
    if (end_stream) {
      s->remote_closed_ = true;
    } else if (s->unwanted_body_ && !s->closed_ && !s->reset_by_encoder_) {
      s->reset_by_encoder_ = true;
      nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_NO_ERROR);
    }
    const size_t n = s->body_.length();
    if (s->decoder_ != nullptr && !s->discard_body_) {
      s->decoder_->decodeData(s->body_, end_stream);
      s->body_.clear();
      if (!s->closed_ && n > 0) {
        if (s->read_disabled_) {
          s->unconsumed_ += n;
        } else {
          nghttp2_session_consume_stream(session_, id, n);
        }
      }
    } else if (n > 0) {
      s->body_.clear();
      if (!s->closed_) {
        nghttp2_session_consume_stream(session_, id, n);
      }
    }
    return 0;
  }
  if (frame.hd.type != NGHTTP2_HEADERS) {
    return 0;
  }
  in_header_block_ = false;
  Stream* s = streamFor(id);
  if (s == nullptr) {
    return 0;
  }
  if (end_stream) {
    s->remote_closed_ = true;
  }
  if (frame.headers.cat == NGHTTP2_HCAT_HEADERS) {
    // Trailers.
    HeaderMapPtr trailers = std::move(s->trailers_);
    if (s->decoder_ == nullptr || s->discard_body_) {
      return 0;
    }
    if (s->header_error_ != 0) {
      s->decoder_->onProtocolError(s->header_error_, s->header_error_details_);
      return 0;
    }
    if (trailers == nullptr) {
      trailers = std::make_unique<HeaderMap>();
    }
    s->decoder_->decodeTrailers(std::move(trailers));
    return 0;
  }
  if (frame.headers.cat != NGHTTP2_HCAT_REQUEST || s->headers_ == nullptr) {
    return 0;
  }
  if (limits_.max_requests_per_connection != 0 &&
      ++requests_ >= limits_.max_requests_per_connection && !draining_) {
    // The last request this connection takes: GOAWAY names it, later streams are ignored.
    draining_ = true;
    goaway_last_stream_id_ = id;
    nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_NO_ERROR, nullptr, 0);
  }
  RequestHeadersPtr headers = std::move(s->headers_);
  headers->setProtocol("HTTP/2");
  s->is_head_ = headers->method() == "HEAD";
  // An extended CONNECT (RFC 8441) carries a tunnel's bytes, not a request body: the body
  // limit does not apply (the tunnel's protocol has its own, e.g. max_message_size).
  s->tunnel_ = headers->method() == "CONNECT" && !headers->connectProtocol().empty();
  s->encoder_done_ = false;
  RequestDecoder& decoder = callbacks_.newStream(*s);
  s->decoder_ = &decoder;

  // (Known before any early answer below: a 413 for a declared length is the usual answer
  // to a client that waits for a 100.)
  s->awaits_continue_ = !end_stream && equalsIgnoreCase(headers->getOr("expect"), "100-continue");
  int status = s->header_error_;
  const char* details = s->header_error_details_;
  if (status == 0 && headers->path().size() > limits_.max_uri_bytes) {
    status = 414;
    details = "request target too long";
  }
  if (status == 0 && headers->method() == "CONNECT" && headers->connectProtocol().empty()) {
    status = 501;
    details = "CONNECT is not supported";
  }
  if (status == 0 && s->tunnel_) {
    // RFC 8441: a 2xx opens a tunnel for the named protocol. Only WebSocket tunnels are
    // served; and a request that ends with its head has no tunnel to carry.
    if (!equalsIgnoreCase(headers->connectProtocol(), "websocket")) {
      status = 501;
      details = "extended CONNECT for a protocol other than websocket";
    } else if (end_stream) {
      status = 400;
      details = "extended CONNECT that ends with its head";
    }
  }
  if (status == 0) {
    if (auto cl = headers->get("content-length")) {
      uint64_t length = 0;
      bool digits = !cl->empty() && cl->size() <= 19;
      for (char c : *cl) {
        digits = digits && c >= '0' && c <= '9';
        length = length * 10 + static_cast<uint64_t>(c - '0');
      }
      if (digits && length > limits_.max_request_bytes) {
        status = 413;
        details = "request body too large";
      }
    }
  }
  if (status != 0) {
    s->discard_body_ = true;
    decoder.onRequestRefused(std::move(headers), status, details);
    return 0;
  }
  if (s->cookie_count_ > 1) {
    // RFC 9113 §8.2.3: crumbs are joined with "; " before HTTP/1.1-style processing.
    std::string joined;
    for (const auto [name, value] : *headers) {
      if (name == "cookie") {
        if (!joined.empty()) {
          joined += "; ";
        }
        joined.append(value.data(), value.size());
      }
    }
    headers->set("cookie", joined);
  }
  decoder.decodeHeaders(std::move(headers), end_stream);
  return 0;
}

int ServerConnectionImpl::onDataChunkRecv(nghttp2_session*, uint8_t, int32_t stream_id,
                                          const uint8_t* data, size_t len, void* user) {
  return static_cast<ServerConnectionImpl*>(user)->dataChunk(
      stream_id, std::string_view(reinterpret_cast<const char*>(data), len));
}

int ServerConnectionImpl::dataChunk(int32_t stream_id, std::string_view data) {
  // The connection window is given back at once: what a stream may hold is bounded by its
  // own window, which is only given back while the stream reads.
  nghttp2_session_consume_connection(session_, data.size());
  Stream* s = streamFor(stream_id);
  if (s == nullptr) {
    return 0;
  }
  s->body_received_ += data.size();
  if (s->decoder_ == nullptr || s->discard_body_) {
    if (!s->closed_) {
      nghttp2_session_consume_stream(session_, stream_id, data.size());
    }
    return 0;
  }
  if (s->body_received_ > limits_.max_request_bytes && !s->tunnel_) {
    s->discard_body_ = true;
    s->body_.clear();
    nghttp2_session_consume_stream(session_, stream_id, data.size());
    // 413 if the response has not started; otherwise the stream is cancelled.
    s->reset_code_ = NGHTTP2_CANCEL;
    s->decoder_->onProtocolError(413, "request body too large");
    return 0;
  }
  s->body_.add(data);
  return 0;
}

int ServerConnectionImpl::onStreamClose(nghttp2_session*, int32_t stream_id, uint32_t error_code,
                                        void* user) {
  return static_cast<ServerConnectionImpl*>(user)->streamClose(stream_id, error_code);
}

int ServerConnectionImpl::streamClose(int32_t stream_id, uint32_t error_code) {
  Stream* s = streamFor(stream_id);
  if (s == nullptr || s->closed_) {
    return 0;
  }
  s->closed_ = true;
  --open_streams_;
  if (s->unwanted_body_) {
    --unwanted_bodies_;
  }
  s->pending_.clear();
  s->staged_.clear();
  s->body_.clear();
  if (!s->end_sent_ && !s->reset_by_encoder_ && !closing_) {
    // Ended before its response: the client reset it, or caused an error that did.
    if (countPrematureReset()) {
      floodDetected("too many streams reset before their response (rapid reset)");
    }
  }
  if (!s->encoder_done_) {
    StreamCallbacks* callbacks = s->callbacks_;
    s->encoderDone();
    if (callbacks != nullptr) {
      StreamResetReason reason = StreamResetReason::RemoteReset;
      if (error_code == NGHTTP2_PROTOCOL_ERROR || error_code == NGHTTP2_FLOW_CONTROL_ERROR ||
          error_code == NGHTTP2_COMPRESSION_ERROR) {
        reason = StreamResetReason::ProtocolError;
      } else if (closing_) {
        reason = StreamResetReason::ConnectionClosed;
      }
      callbacks->onResetStream(reason);
    }
  } else {
    onStreamDead(*s);
  }
  return 0;
}

int ServerConnectionImpl::onInvalidFrameRecv(nghttp2_session*, const nghttp2_frame* frame, int,
                                             void* user) {
  auto& c = *static_cast<ServerConnectionImpl*>(user);
  if (frame->hd.type == NGHTTP2_HEADERS) {
    c.in_header_block_ = false;
  }
  return 0;
}

int ServerConnectionImpl::onFrameSend(nghttp2_session*, const nghttp2_frame* frame, void* user) {
  auto& c = *static_cast<ServerConnectionImpl*>(user);
  c.last_sent_type_ = frame->hd.type;
  if (frame->hd.type == NGHTTP2_GOAWAY) {
    c.goaway_code_ = static_cast<int>(frame->goaway.error_code);
    c.flood_goaway_sent_ = c.flood_goaway_sent_ || c.flood_;
    return 0;
  }
  if ((frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS) &&
      (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
    Stream* s = c.streamFor(frame->hd.stream_id);
    if (s != nullptr) {
      s->end_sent_ = true;
      if (!s->remote_closed_) {
        // The response is complete; the rest of the request is not wanted (RFC 9113 §8.1).
        // A client still waiting for a 100 is told so only if it sends the body anyway.
        if (s->awaits_continue_ && s->body_received_ == 0 && s->body_.empty()) {
          s->unwanted_body_ = true;
          ++c.unwanted_bodies_;
        } else {
          nghttp2_submit_rst_stream(c.session_, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                    NGHTTP2_NO_ERROR);
        }
      }
    }
  }
  return 0;
}

ssize_t ServerConnectionImpl::onReadData(nghttp2_session* session, int32_t stream_id, uint8_t*,
                                         size_t length, uint32_t* flags,
                                         nghttp2_data_source* source, void*) {
  auto* s = static_cast<Stream*>(source->ptr);
  if (s->codec_.flood_) {
    // The connection is going away: no more response bytes behind the GOAWAY.
    return NGHTTP2_ERR_DEFERRED;
  }
  size_t n = 0;
  if (s->pending_.segmentCount() > 0) {
    OutputQueue::Segment& front = s->pending_.segment(0);
    if (front.isFile()) {
      // Read one frame's worth of the file: never more than the window lets out.
      n = static_cast<size_t>(std::min<uint64_t>(length, front.file_length));
      s->staged_.clear();
      char* p = s->staged_.reserve(n);
      size_t got = 0;
      while (got < n) {
        const ssize_t r =
            ::pread(front.file->fd(), p + got, n - got, static_cast<off_t>(front.offset + got));
        if (r < 0 && errno == EINTR) {
          continue;
        }
        if (r <= 0) {
          break;
        }
        got += static_cast<size_t>(r);
      }
      if (got != n) {
        s->staged_.clear();
        POUNCE_LOG(Http2, Warning, "stream %d: file read failed while sending a response",
                   stream_id);
        // The stream is reset with INTERNAL_ERROR.
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
      }
      s->staged_.commit(n);
      s->staged_file_ = true;
      s->pending_.drained(n);
    } else {
      n = std::min(length, front.bytes.length());
      s->staged_file_ = false;
    }
  }
  const uint64_t left = s->pending_.length() - (s->staged_file_ ? 0 : n);
  if (n == 0 && !s->local_end_) {
    s->data_deferred_ = true;
    return NGHTTP2_ERR_DEFERRED;
  }
  if (n > 0) {
    *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
  }
  if (left == 0 && s->local_end_) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (s->response_trailers_ != nullptr) {
      auto& c = s->codec_;
      c.nva_.clear();
      c.appendFields(*s->response_trailers_, 200, true, nullptr, nullptr);
      if (!c.nva_.empty() &&
          nghttp2_submit_trailer(session, stream_id, c.nva_.data(), c.nva_.size()) == 0) {
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      }
      c.clearFieldScratch();
      s->response_trailers_.reset();
    }
  }
  return static_cast<ssize_t>(n);
}

int ServerConnectionImpl::onSendData(nghttp2_session*, nghttp2_frame* frame, const uint8_t* framehd,
                                     size_t length, nghttp2_data_source* source, void* user) {
  auto& c = *static_cast<ServerConnectionImpl*>(user);
  auto* s = static_cast<Stream*>(source->ptr);
  c.output_.add(std::string_view(reinterpret_cast<const char*>(framehd), 9));
  if (length > 0) {
    if (s->staged_file_) {
      c.output_.add(s->staged_.view().substr(0, length));
      s->staged_.clear();
      s->staged_file_ = false;
    } else {
      OutputQueue::Segment& front = s->pending_.segment(0);
      c.output_.add(front.bytes.view().substr(0, length));
      s->pending_.drained(length);
    }
  }
  c.bytes_queued_ += 9 + length;
  c.onFrameQueued(false);
  if (s->own_above_ && !s->watermark_dirty_ && s->pending_.length() <= c.limits_.buffer_limit / 2) {
    s->watermark_dirty_ = true;
    c.watermark_dirty_.push_back(s);
  }
  (void)frame;
  return 0;
}

} // namespace pounce::http::http2
