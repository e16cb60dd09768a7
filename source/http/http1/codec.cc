#include "source/http/http1/codec.h"

#include <bit>
#include <cstring>
#include <mutex>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "absl/strings/numbers.h"
#include "source/common/byte_set.h"
#include "source/common/logger.h"
#include "source/common/strings.h"

namespace pounce::http::http1 {

namespace {

void appendHex(std::string& out, uint64_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  char buf[16];
  int i = 16;
  do {
    buf[--i] = kHex[n & 0xf];
    n >>= 4;
  } while (n != 0);
  out.append(buf + i, static_cast<size_t>(16 - i));
}

// Bytes a Host value may not hold: controls, space, DEL (also refused earlier, as in every
// field value) and the delimiters that would let the value name a path or user info.
constexpr ByteSet kBadHost = ByteSet::of([](unsigned char c) {
  return c <= 0x20 || c == 0x7f || c == '/' || c == '\\' || c == '@' || c == '?' || c == '#';
});

bool isHopByHop(std::string_view name) {
  return name == "connection" || name == "keep-alive" || name == "transfer-encoding" ||
         name == "proxy-connection" || name == "upgrade";
}

std::string_view trimOws(std::string_view v) {
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) {
    v.remove_suffix(1);
  }
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) {
    v.remove_prefix(1);
  }
  return v;
}

// What the response's own fields say about the head the codec completes.
struct FieldScan {
  bool has_date{false};
  bool has_server{false};
  bool has_content_length{false};
  bool app_wants_close{false};
  size_t lines{0};
};

// Appends "name: value\r\n" for each field that may go out. Names must be RFC 9110 tokens;
// values are checked here only with `check_values` (otherwise the caller checks them all
// at once). A field that fails is dropped and logged.
FieldScan appendFields(const ResponseHeaders& headers, std::string& out, bool upgrade, int status,
                       bool bodyless_status, bool check_values) {
  FieldScan scan;
  const size_t start = out.size();
  out.resize(start + headers.storageBytes() + 4 * headers.size());
  char* p = out.data() + start;
  for (size_t i = 0; i < headers.size(); ++i) {
    const std::string_view name = headers.nameAt(i);
    const std::string_view value = headers.valueAt(i);
    if (!isValidHeaderName(name) || (check_values && !isValidHeaderValue(value))) {
      POUNCE_LOG(Http, Warning, "dropped response header with invalid characters: %s",
                 std::string(name.substr(0, 64)));
      continue;
    }
    if (isHopByHop(name)) {
      if (name == "connection" && hasToken(value, "close")) {
        scan.app_wants_close = true;
      }
      if (!upgrade) {
        continue;
      }
    }
    if (name == "content-length") {
      if (bodyless_status && status != 304) {
        continue;
      }
      scan.has_content_length = true;
    } else if (name == "date") {
      scan.has_date = true;
    } else if (name == "server") {
      scan.has_server = true;
    }
    copyBytes(p, name.data(), name.size()); // (short copies without a call into libc)
    p += name.size();
    *p++ = ':';
    *p++ = ' ';
    copyBytes(p, value.data(), value.size());
    p += value.size();
    *p++ = '\r';
    *p++ = '\n';
    ++scan.lines;
  }
  out.resize(static_cast<size_t>(p - out.data()));
  return scan;
}
} // namespace

// --- HeadScanner ------------------------------------------------------------------------

namespace {

// Bit i set: base[from + i] (i < 16, from + i < size) is a LF, CR or NUL. Reads no byte at
// or past `size`: a block that would is read as the last 16 bytes, shifted into place.
unsigned lineBytesAt(const char* base, size_t from, size_t size) {
#if defined(__SSE2__)
  if (size >= 16) {
    const size_t at = std::min(from, size - 16);
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(base + at));
    const __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('\n')),
                                                  _mm_cmpeq_epi8(v, _mm_set1_epi8('\r'))),
                                     _mm_cmpeq_epi8(v, _mm_setzero_si128()));
    return static_cast<unsigned>(_mm_movemask_epi8(hit)) >> (from - at);
  }
#endif
  unsigned mask = 0;
  for (size_t i = 0; i < 16 && from + i < size; ++i) {
    const char c = base[from + i];
    if (c == '\n' || c == '\r' || c == '\0') {
      mask |= 1u << i;
    }
  }
  return mask;
}

} // namespace

HeadScanner::Result HeadScanner::scan(std::string_view data, uint32_t max_head_bytes,
                                      uint32_t max_request_line) {
  Result r;
  auto error = [&](int status, const char* details) {
    r.kind = Result::Kind::Error;
    r.status = status;
    r.details = details;
    return r;
  };
  const char* base = data.data();
  const size_t size = data.size();
  auto folded = [&](size_t at) { // a header line that starts with SP or HTAB
    return seen_request_line_ && (base[at] == ' ' || base[at] == '\t');
  };
  if (pos_ < size && pos_ == line_start_ && folded(pos_)) {
    return error(400, "obsolete line folding in request head");
  }
  // Only the LF, CR and NUL bytes are visited, found 16 bytes at a time. Per line: a NUL is
  // an error at once; a CR not followed by LF is one (reported after a bare LF of the same
  // line); the line's LF must follow a CR of the line.
  bool bare_cr = false;
  for (size_t block = pos_; block < size; block += 16) {
    for (unsigned mask = lineBytesAt(base, block, size); mask != 0; mask &= mask - 1) {
      const size_t at = block + static_cast<size_t>(std::countr_zero(mask));
      const char c = base[at];
      if (c == '\0') {
        return error(400, "NUL byte in request head");
      }
      if (c == '\r') {
        if (at + 1 < size && base[at + 1] != '\n') {
          bare_cr = true;
        }
        continue;
      }
      if (at == line_start_ || base[at - 1] != '\r') {
        return error(400, "bare LF in request head");
      }
      if (bare_cr) {
        return error(400, "bare CR in request head");
      }
      const size_t line_length = at - 1 - line_start_;
      if (!seen_request_line_ && line_length > max_request_line) {
        return error(414, "request target too long");
      }
      if (at + 1 > max_head_bytes) {
        return error(431, "request head too large");
      }
      pos_ = at + 1;
      if (line_length == 0) {
        if (seen_request_line_) {
          r.kind = Result::Kind::Complete;
          r.head_length = pos_;
          return r;
        }
        // Empty lines before the request line are ignored (RFC 9112 §2.2).
      } else {
        seen_request_line_ = true;
      }
      line_start_ = pos_;
      if (pos_ < size && folded(pos_)) {
        return error(400, "obsolete line folding in request head");
      }
    }
  }
  if (pos_ >= size) {
    return r;
  }
  // An incomplete line; a CR as its last byte is checked again when the LF arrives.
  if (bare_cr) {
    return error(400, "bare CR in request head");
  }
  pos_ = base[size - 1] == '\r' ? size - 1 : size;
  if (!seen_request_line_ && pos_ - line_start_ > max_request_line) {
    return error(414, "request target too long");
  }
  if (size > max_head_bytes) {
    return error(431, "request head too large");
  }
  return r;
}

// --- ChunkScanner -----------------------------------------------------------------------

int64_t ChunkScanner::scan(std::string_view data) {
  size_t i = 0;
  while (i < data.size() && state_ != State::Done) {
    const char c = data[i];
    switch (state_) {
    case State::SizeStart: {
      const int v = hexDigitValue(c);
      if (v < 0) {
        return -1;
      }
      size_ = static_cast<uint64_t>(v);
      digits_ = 1;
      state_ = State::Size;
      break;
    }
    case State::Size: {
      const int v = hexDigitValue(c);
      if (v >= 0) {
        if (++digits_ > 15) {
          return -1;
        }
        size_ = size_ * 16 + static_cast<uint64_t>(v);
      } else if (c == ';') {
        digits_ = 0;
        state_ = State::Ext;
      } else if (c == ' ' || c == '\t') {
        state_ = State::SizeWs;
      } else if (c == '\r') {
        state_ = State::SizeLf;
      } else {
        return -1;
      }
      break;
    }
    case State::SizeWs:
      if (c == ';') {
        digits_ = 0;
        state_ = State::Ext;
      } else if (c != ' ' && c != '\t') {
        return -1;
      }
      break;
    case State::Ext: {
      const auto u = static_cast<unsigned char>(c);
      if (c == '\r') {
        state_ = State::SizeLf;
      } else if ((u < 0x20 && c != '\t') || u == 0x7f || ++digits_ > 4096) {
        return -1;
      }
      break;
    }
    case State::SizeLf:
      if (c != '\n') {
        return -1;
      }
      state_ = size_ == 0 ? State::TrailerStart : State::Data;
      break;
    case State::Data: {
      const uint64_t take = std::min<uint64_t>(size_, data.size() - i);
      i += take;
      size_ -= take;
      if (size_ == 0) {
        state_ = State::DataCr;
      }
      continue;
    }
    case State::DataCr:
      if (c != '\r') {
        return -1;
      }
      state_ = State::DataLf;
      break;
    case State::DataLf:
      if (c != '\n') {
        return -1;
      }
      state_ = State::SizeStart;
      break;
    case State::TrailerStart:
      if (c == '\r') {
        state_ = State::FinalLf;
      } else if (c == ' ' || c == '\t' || c == '\n' || c == '\0') {
        return -1;
      } else {
        state_ = State::Trailer;
        ++trailer_bytes_;
      }
      break;
    case State::Trailer:
      if (c == '\r') {
        state_ = State::TrailerLf;
      } else if (c == '\n' || c == '\0') {
        return -1;
      } else {
        ++trailer_bytes_;
      }
      break;
    case State::TrailerLf:
      if (c != '\n') {
        return -1;
      }
      state_ = State::TrailerStart;
      break;
    case State::FinalLf:
      if (c != '\n') {
        return -1;
      }
      state_ = State::Done;
      break;
    case State::Done:
      break;
    }
    ++i;
  }
  return static_cast<int64_t>(i);
}

// --- ServerConnectionImpl ---------------------------------------------------------------

ServerConnectionImpl::ServerConnectionImpl(OutputQueue& output,
                                           ServerConnectionCallbacks& callbacks,
                                           const CodecLimits& limits, TimeSource& time_source)
    : output_(output), callbacks_(callbacks), limits_(limits), time_source_(time_source) {
  static std::once_flag once;
  std::call_once(once, [] {
    // Our own scanner enforces max_header_bytes; keep the parser's global cap out of the way.
    http_parser_set_max_header_size(64u << 20);
  });
  http_parser_init(&parser_, HTTP_REQUEST);
  parser_.data = this;
}

bool ServerConnectionImpl::feed(std::string_view bytes) {
  static const http_parser_settings kSettings = [] {
    http_parser_settings s;
    http_parser_settings_init(&s);
    s.on_message_begin = &ServerConnectionImpl::onMessageBeginCb;
    s.on_url = &ServerConnectionImpl::onUrlCb;
    s.on_header_field = &ServerConnectionImpl::onHeaderFieldCb;
    s.on_header_value = &ServerConnectionImpl::onHeaderValueCb;
    s.on_headers_complete = &ServerConnectionImpl::onHeadersCompleteCb;
    s.on_body = &ServerConnectionImpl::onBodyCb;
    s.on_message_complete = &ServerConnectionImpl::onMessageCompleteCb;
    return s;
  }();
  const size_t n = http_parser_execute(&parser_, &kSettings, bytes.data(), bytes.size());
  if (error_ || state_ == State::Closed) {
    return false;
  }
  const auto err = HTTP_PARSER_ERRNO(&parser_);
  if (err != HPE_OK) {
    int status = 400;
    if (err == HPE_INVALID_VERSION) {
      status = 505;
    } else if (err == HPE_HEADER_OVERFLOW) {
      status = 431;
    }
    protocolError(status, http_errno_description(err));
    return false;
  }
  if (n != bytes.size() && !parser_.upgrade) {
    protocolError(400, "unexpected bytes after request");
    return false;
  }
  return true;
}

bool ServerConnectionImpl::dispatch(Buffer& data) {
  in_dispatch_ = true;
  while (!data.empty()) {
    if (error_ || state_ == State::Closed) {
      data.clear();
      break;
    }
    if (state_ == State::SwitchedToHttp2) {
      break;
    }
    if (state_ == State::Upgraded) {
      if (decoder_ != nullptr) {
        decoder_->decodeData(data, false);
      }
      data.clear();
      break;
    }
    if (state_ == State::WaitResponse) {
      // A pipelined request (or early bytes of one): it waits in the connection's buffer
      // until the current response is complete. Stop reading meanwhile.
      if (!reading_paused_) {
        reading_paused_ = true;
        callbacks_.readDisable(true);
      }
      break;
    }
    if (state_ == State::Head) {
      head_started_ = true;
      const auto r =
          head_scanner_.scan(data.view(), limits_.max_header_bytes, limits_.max_uri_bytes + 32);
      if (r.kind == HeadScanner::Result::Kind::Error) {
        protocolError(r.status, r.details);
        break;
      }
      if (r.kind == HeadScanner::Result::Kind::NeedMore) {
        break;
      }
      if (!feed(data.view().substr(0, r.head_length))) {
        break;
      }
      data.drain(r.head_length);
      continue;
    }
    // State::Body
    const std::string_view view = data.view();
    size_t n;
    if (chunked_) {
      const int64_t valid = chunk_scanner_.scan(view);
      if (valid < 0) {
        protocolError(400, "malformed chunked encoding");
        break;
      }
      if (chunk_scanner_.trailerBytes() > limits_.max_header_bytes) {
        protocolError(431, "request trailers too large");
        break;
      }
      n = static_cast<size_t>(valid);
    } else {
      n = static_cast<size_t>(std::min<uint64_t>(view.size(), body_remaining_));
    }
    if (n == 0) {
      break;
    }
    if (!feed(view.substr(0, n))) {
      break;
    }
    data.drain(n);
  }
  in_dispatch_ = false;
  return !error_ && state_ != State::Closed;
}

void ServerConnectionImpl::protocolError(int status, const char* details) {
  if (error_ || state_ == State::Closed) {
    return;
  }
  error_ = true;
  close_after_response_ = true;
  POUNCE_LOG(Http, Debug, "http/1.1 protocol error %d: %s", status, details);
  if (response_started_ && !response_complete_) {
    if (stream_callbacks_ != nullptr) {
      stream_callbacks_->onResetStream(StreamResetReason::ProtocolError);
    }
    decoder_ = nullptr;
    stream_callbacks_ = nullptr;
    callbacks_.closeConnection(false);
    return;
  }
  if (response_complete_ && decoder_ == nullptr) {
    // The response already went out (e.g. while discarding the body): just close.
    callbacks_.closeConnection(true);
    return;
  }
  ensureStream();
  decoder_->onProtocolError(status, details);
}

void ServerConnectionImpl::ensureStream() {
  if (decoder_ == nullptr) {
    decoder_ = &callbacks_.newStream(*this);
  }
}

int ServerConnectionImpl::onMessageBeginCb(http_parser* p) {
  auto* self = static_cast<ServerConnectionImpl*>(p->data);
  self->headers_ = std::make_unique<RequestHeaders>();
  self->headers_->reserveBytes(512);
  self->trailers_.reset();
  self->parsing_value_ = false;
  self->field_is_new_ = true;
  self->header_count_ = 0;
  self->content_length_count_ = 0;
  self->host_count_ = 0;
  self->transfer_encoding_count_ = 0;
  self->body_received_ = 0;
  self->body_remaining_ = 0;
  return 0;
}

int ServerConnectionImpl::onUrlCb(http_parser* p, const char* at, size_t len) {
  auto* self = static_cast<ServerConnectionImpl*>(p->data);
  for (size_t i = 0; i < len; ++i) {
    const auto c = static_cast<unsigned char>(at[i]);
    if (c <= 0x20 || c >= 0x7f || c == '#') {
      self->protocolError(400, "invalid character in request target");
      return 1;
    }
  }
  if (self->headers_->path().size() + len > self->limits_.max_uri_bytes) {
    self->protocolError(414, "request target too long");
    return 1;
  }
  self->headers_->appendPath(std::string_view(at, len));
  return 0;
}

int ServerConnectionImpl::onHeaderFieldCb(http_parser* p, const char* at, size_t len) {
  auto* self = static_cast<ServerConnectionImpl*>(p->data);
  const std::string_view name(at, len);
  if (len == 0) {
    return 0;
  }
  if (!isValidHeaderName(name)) {
    self->protocolError(400, "invalid header name");
    return 1;
  }
  HeaderMap* map = self->headers_.get();
  if (map == nullptr) {
    // Chunked trailers arrive after the head was handed to the stream.
    if (!self->trailers_) {
      self->trailers_ = std::make_unique<HeaderMap>();
    }
    map = self->trailers_.get();
  }
  if (self->parsing_value_ || self->field_is_new_) {
    self->parsing_value_ = false;
    self->field_is_new_ = false;
    if (++self->header_count_ > self->limits_.max_headers) {
      self->protocolError(431, "too many headers");
      return 1;
    }
    map->add(name, {});
  } else {
    map->appendToLastName(name);
  }
  return 0;
}

int ServerConnectionImpl::onHeaderValueCb(http_parser* p, const char* at, size_t len) {
  auto* self = static_cast<ServerConnectionImpl*>(p->data);
  std::string_view value(at, len);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) {
    value.remove_suffix(1);
  }
  if (!isValidHeaderValue(value)) {
    self->protocolError(400, "invalid character in header value");
    return 1;
  }
  HeaderMap* map =
      self->headers_ ? static_cast<HeaderMap*>(self->headers_.get()) : self->trailers_.get();
  if (map == nullptr || map->empty()) {
    self->protocolError(400, "header value without a name");
    return 1;
  }
  self->parsing_value_ = true;
  map->appendToLastValue(value);
  return 0;
}

int ServerConnectionImpl::onHeadersCompleteCb(http_parser* p) {
  return static_cast<ServerConnectionImpl*>(p->data)->onHeadersComplete();
}

int ServerConnectionImpl::onHeadersComplete() {
  if (headers_ == nullptr) {
    return 0;
  }
  if (parser_.http_major != 1) {
    protocolError(505, "unsupported HTTP version");
    return 1;
  }
  protocol_ = parser_.http_minor == 0 ? Protocol::Http10 : Protocol::Http11;
  headers_->setProtocol(protocol_ == Protocol::Http10 ? "HTTP/1.0" : "HTTP/1.1");
  headers_->setMethod(http_method_str(static_cast<http_method>(parser_.method)));
  if (parser_.method == HTTP_CONNECT) {
    protocolError(501, "CONNECT is not supported");
    return 1;
  }
  if (headers_->path().empty() || (headers_->path()[0] != '/' && headers_->path() != "*" &&
                                   headers_->path().find("://") == std::string::npos)) {
    protocolError(400, "invalid request target");
    return 1;
  }

  bool has_te = false;
  std::string te_value;
  for (size_t i = 0; i < headers_->size(); ++i) {
    const std::string_view name = headers_->nameAt(i);
    const std::string_view value = headers_->valueAt(i);
    if (name == "host") {
      ++host_count_;
      if (kBadHost.hasAny(value)) {
        protocolError(400, "invalid Host header");
        return 1;
      }
    } else if (name == "content-length") {
      ++content_length_count_;
    } else if (name == "transfer-encoding") {
      has_te = true;
      if (!te_value.empty()) {
        te_value += ',';
      }
      te_value.append(value.data(), value.size());
    } else if (name == "expect") {
      if (equalsIgnoreCase(value, "100-continue")) {
        expect_continue_ = protocol_ == Protocol::Http11;
      } else {
        protocolError(417, "unsupported expectation");
        return 1;
      }
    } else if (name == "te") {
      if (hasToken(value, "trailers")) {
        client_accepts_trailers_ = true;
      }
    }
  }
  if (host_count_ > 1 || (host_count_ == 0 && protocol_ == Protocol::Http11)) {
    protocolError(400, host_count_ > 1 ? "more than one Host header" : "missing Host header");
    return 1;
  }
  if (content_length_count_ > 1) {
    protocolError(400, "more than one Content-Length header");
    return 1;
  }
  if (has_te) {
    if (content_length_count_ > 0) {
      protocolError(400, "both Content-Length and Transfer-Encoding");
      return 1;
    }
    if (protocol_ == Protocol::Http10) {
      protocolError(400, "Transfer-Encoding in an HTTP/1.0 request");
      return 1;
    }
    // Only "chunked", exactly once and last, is accepted.
    int chunked_count = 0;
    bool other = false;
    bool last_chunked = false;
    size_t pos = 0;
    while (pos <= te_value.size()) {
      size_t comma = te_value.find(',', pos);
      if (comma == std::string::npos) {
        comma = te_value.size();
      }
      const std::string_view coding = trimOws(std::string_view(te_value).substr(pos, comma - pos));
      if (equalsIgnoreCase(coding, "chunked")) {
        ++chunked_count;
        last_chunked = true;
      } else {
        other = true;
        last_chunked = false;
      }
      pos = comma + 1;
    }
    if (chunked_count != 1 || !last_chunked) {
      protocolError(400, "invalid Transfer-Encoding");
      return 1;
    }
    if (other) {
      protocolError(501, "unsupported transfer coding");
      return 1;
    }
  }
  if (content_length_count_ == 1) {
    uint64_t cl;
    const std::string_view v = headers_->getOr("content-length");
    if (v.empty() || v.size() > 19 ||
        !std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
        !absl::SimpleAtoi(absl::string_view(v.data(), v.size()), &cl)) {
      protocolError(400, "invalid Content-Length");
      return 1;
    }
    if (cl > limits_.max_request_bytes) {
      protocolError(413, "request body too large");
      return 1;
    }
    body_remaining_ = cl;
  }
  chunked_ = (parser_.flags & F_CHUNKED) != 0;
  request_keep_alive_ = http_should_keep_alive(&parser_) != 0;
  is_head_request_ = parser_.method == HTTP_HEAD;
  upgrade_request_ = (parser_.flags & F_UPGRADE) != 0 &&
                     (parser_.flags & F_CONNECTION_UPGRADE) != 0 && !chunked_ &&
                     body_remaining_ == 0;
  if (upgrade_request_ && protocol_ == Protocol::Http11 &&
      hasToken(headers_->getOr("upgrade"), "h2c")) {
    if (callbacks_.upgradeToHttp2(headers_)) {
      output_.add("HTTP/1.1 101 Switching Protocols\r\n"
                  "connection: Upgrade\r\nupgrade: h2c\r\n\r\n");
      callbacks_.onCodecOutput();
      state_ = State::SwitchedToHttp2;
      return 0;
    }
    // Not taken: an ordinary request (an Upgrade the server does not do is ignored).
    if (equalsIgnoreCase(trimOws(headers_->getOr("upgrade")), "h2c")) {
      upgrade_request_ = false;
    }
  }
  const bool end_stream = !chunked_ && body_remaining_ == 0 && !upgrade_request_;
  if (chunked_ || body_remaining_ > 0) {
    state_ = State::Body;
    chunk_scanner_.reset();
  }
  ensureStream();
  RequestDecoder* decoder = decoder_;
  decoder->decodeHeaders(std::move(headers_), end_stream);
  return 0;
}

int ServerConnectionImpl::onBodyCb(http_parser* p, const char* at, size_t len) {
  return static_cast<ServerConnectionImpl*>(p->data)->onBody(at, len);
}

int ServerConnectionImpl::onBody(const char* at, size_t len) {
  body_received_ += len;
  if (!chunked_) {
    body_remaining_ -= std::min<uint64_t>(len, body_remaining_);
  }
  if (body_received_ > limits_.max_request_bytes) {
    protocolError(413, "request body too large");
    return 1;
  }
  if (discarding_body_ || decoder_ == nullptr) {
    return 0;
  }
  Buffer data(std::string_view(at, len));
  const bool end = !chunked_ && body_remaining_ == 0;
  decoder_->decodeData(data, end);
  return 0;
}

int ServerConnectionImpl::onMessageCompleteCb(http_parser* p) {
  return static_cast<ServerConnectionImpl*>(p->data)->onMessageComplete();
}

int ServerConnectionImpl::onMessageComplete() {
  if (state_ == State::SwitchedToHttp2) {
    return 0;
  }
  request_complete_ = true;
  if (!discarding_body_ && decoder_ != nullptr && !upgrade_request_) {
    if (trailers_) {
      decoder_->decodeTrailers(std::move(trailers_));
    } else if (chunked_) {
      Buffer empty;
      decoder_->decodeData(empty, true);
    }
  }
  if (error_ || state_ == State::Closed) {
    return 0;
  }
  if (upgrade_request_ && !response_complete_) {
    // Bytes after the head belong to the upgraded protocol (if the answer is 101) or to
    // nothing (any other answer closes the connection): hold them until the response.
    state_ = State::WaitResponse;
    return 0;
  }
  if (response_complete_) {
    finishRequestCycle();
  } else {
    state_ = State::WaitResponse;
  }
  return 0;
}

void ServerConnectionImpl::onResponseComplete() {
  response_complete_ = true;
  ++requests_;
  decoder_ = nullptr;
  stream_callbacks_ = nullptr;
  if (stream_read_disabled_) {
    stream_read_disabled_ = false;
    callbacks_.readDisable(false);
  }
  if (state_ == State::Upgraded) {
    callbacks_.closeConnection(true);
    return;
  }
  if (close_after_response_) {
    state_ = State::Closed;
    callbacks_.closeConnection(true);
    return;
  }
  if (request_complete_) {
    if (state_ == State::WaitResponse) {
      finishRequestCycle();
    }
    // Otherwise onMessageComplete() is on the stack and finishes the cycle.
    return;
  }
  // The response finished before the request body: read the rest and drop it, so the
  // connection can carry the next request.
  discarding_body_ = true;
}

void ServerConnectionImpl::finishRequestCycle() {
  state_ = State::Head;
  head_scanner_.reset();
  chunk_scanner_.reset();
  head_started_ = false;
  chunked_ = false;
  expect_continue_ = false;
  upgrade_request_ = false;
  request_complete_ = false;
  is_head_request_ = false;
  client_accepts_trailers_ = false;
  discarding_body_ = false;
  response_started_ = false;
  response_complete_ = false;
  response_chunked_ = false;
  response_has_body_ = true;
  response_close_delimited_ = false;
  if (reading_paused_) {
    reading_paused_ = false;
    callbacks_.readDisable(false);
  }
}

void ServerConnectionImpl::encode1xxHeaders(const ResponseHeaders& headers) {
  if (response_started_ || protocol_ != Protocol::Http11 || state_ == State::Closed) {
    return;
  }
  const int status = headers.status();
  if (status == 100 && !expect_continue_) {
    return;
  }
  std::string out = "HTTP/1.1 ";
  out += std::to_string(status);
  out += ' ';
  out += reasonPhrase(status);
  out += "\r\n";
  for (const auto [name, value] : headers) {
    if (!isValidHeaderName(name) || !isValidHeaderValue(value)) {
      continue;
    }
    out.append(name.data(), name.size());
    out += ": ";
    out.append(value.data(), value.size());
    out += "\r\n";
  }
  out += "\r\n";
  if (status == 100) {
    expect_continue_ = false;
  }
  output_.add(out);
  callbacks_.onCodecOutput();
}

void ServerConnectionImpl::encodeHeaders(const ResponseHeaders& headers, bool end_stream) {
  if (state_ == State::Closed) {
    return;
  }
  response_started_ = true;
  const int status = headers.status();
  const bool upgrade = status == 101 && upgrade_request_;
  const bool bodyless_status = (status >= 100 && status < 200) || status == 204 || status == 304;
  response_has_body_ = !bodyless_status && !is_head_request_;

  // Built in a per-thread scratch string (no allocation once warm), then queued in one go.
  thread_local std::string out;
  out.clear();
  out += "HTTP/1.1 ";
  char code[4] = {static_cast<char>('0' + (status / 100) % 10),
                  static_cast<char>('0' + (status / 10) % 10), static_cast<char>('0' + status % 10),
                  ' '};
  out.append(code, 4);
  out += reasonPhrase(status);
  out += "\r\n";

  // The fields go out without a per-value check; one pass over all of them then counts
  // control bytes, which must be exactly each line's CR LF. Anything else (a CR, LF or NUL
  // smuggled into a value, or a legal HTAB) sends the fields again, checked one by one.
  const size_t fields_start = out.size();
  FieldScan scan = appendFields(headers, out, upgrade, status, bodyless_status, false);
  if (countControlBytes(std::string_view(out).substr(fields_start)) != 2 * scan.lines) {
    out.resize(fields_start);
    scan = appendFields(headers, out, upgrade, status, bodyless_status, true);
  }
  const bool has_date = scan.has_date;
  const bool has_server = scan.has_server;
  const bool has_content_length = scan.has_content_length;
  const bool app_wants_close = scan.app_wants_close;
  if (!has_date) {
    out += "date: ";
    out += httpDate(time_source_);
    out += "\r\n";
  }
  if (!has_server && !limits_.server_header.empty()) {
    out += "server: ";
    out += limits_.server_header;
    out += "\r\n";
  }

  if (upgrade) {
    out += "\r\n";
    output_.add(out);
    state_ = State::Upgraded;
    callbacks_.onCodecOutput();
    if (reading_paused_) {
      // Bytes the client sent after its request head waited for this answer: they belong to
      // the new protocol now.
      reading_paused_ = false;
      callbacks_.readDisable(false);
    }
    return;
  }

  if (!bodyless_status && !has_content_length) {
    if (end_stream) {
      if (!is_head_request_) {
        out += "content-length: 0\r\n";
      }
    } else if (protocol_ == Protocol::Http11) {
      out += "transfer-encoding: chunked\r\n";
      response_chunked_ = response_has_body_;
    } else {
      response_close_delimited_ = true;
      close_after_response_ = true;
    }
  }
  if (expect_continue_ && !request_complete_) {
    // The client may still be waiting for 100 Continue and never send the body.
    close_after_response_ = true;
  }
  if (upgrade_request_) {
    close_after_response_ = true;
  }
  const bool last_allowed = limits_.max_requests_per_connection != 0 &&
                            requests_ + 1 >= limits_.max_requests_per_connection;
  if (!request_keep_alive_ || draining_ || last_allowed || app_wants_close || error_ ||
      close_after_response_) {
    close_after_response_ = true;
    out += "connection: close\r\n";
  } else if (protocol_ == Protocol::Http10) {
    out += "connection: keep-alive\r\n";
  }
  out += "\r\n";
  output_.add(out);
  callbacks_.onCodecOutput();
  if (end_stream) {
    onResponseComplete();
  }
}

void ServerConnectionImpl::encodeData(Buffer& data, bool end_stream) {
  if (state_ == State::Closed) {
    data.clear();
    return;
  }
  if (state_ == State::Upgraded || !response_has_body_) {
    if (state_ == State::Upgraded) {
      output_.move(data);
    } else {
      data.clear();
    }
  } else if (response_chunked_) {
    if (!data.empty()) {
      std::string size;
      appendHex(size, data.length());
      size += "\r\n";
      output_.add(size);
      output_.move(data);
      output_.add("\r\n");
    }
    if (end_stream) {
      output_.add("0\r\n\r\n");
    }
  } else {
    output_.move(data);
  }
  callbacks_.onCodecOutput();
  if (end_stream) {
    onResponseComplete();
  }
}

void ServerConnectionImpl::encodeFile(FileHandleSharedPtr file, uint64_t offset, uint64_t length,
                                      bool end_stream) {
  if (state_ == State::Closed) {
    return;
  }
  if (response_has_body_ && length > 0) {
    if (response_chunked_) {
      std::string size;
      appendHex(size, length);
      size += "\r\n";
      output_.add(size);
      output_.addFile(std::move(file), offset, length);
      output_.add("\r\n");
    } else {
      output_.addFile(std::move(file), offset, length);
    }
  }
  if (end_stream && response_chunked_) {
    output_.add("0\r\n\r\n");
  }
  callbacks_.onCodecOutput();
  if (end_stream) {
    onResponseComplete();
  }
}

void ServerConnectionImpl::encodeTrailers(const HeaderMap& trailers) {
  if (state_ == State::Closed) {
    return;
  }
  if (response_chunked_) {
    std::string out = "0\r\n";
    if (client_accepts_trailers_) {
      for (const auto [name, value] : trailers) {
        if (!isValidHeaderName(name) || !isValidHeaderValue(value)) {
          continue;
        }
        out.append(name.data(), name.size());
        out += ": ";
        out.append(value.data(), value.size());
        out += "\r\n";
      }
    }
    out += "\r\n";
    output_.add(out);
    callbacks_.onCodecOutput();
  }
  onResponseComplete();
}

void ServerConnectionImpl::resetStream() {
  decoder_ = nullptr;
  stream_callbacks_ = nullptr;
  state_ = State::Closed;
  callbacks_.closeConnection(false);
}

void ServerConnectionImpl::readDisable(bool disable) {
  if (disable == stream_read_disabled_) {
    return;
  }
  stream_read_disabled_ = disable;
  callbacks_.readDisable(disable);
}

void ServerConnectionImpl::onRemoteHalfClose() {
  if (state_ == State::Upgraded) {
    if (decoder_ != nullptr) {
      Buffer empty;
      decoder_->decodeData(empty, true);
    }
    return;
  }
  if (state_ == State::WaitResponse) {
    // The whole request arrived; answer it, then close.
    close_after_response_ = true;
    return;
  }
  if (decoder_ != nullptr && !response_complete_) {
    // The client left in the middle of its request.
    if (stream_callbacks_ != nullptr) {
      stream_callbacks_->onResetStream(StreamResetReason::RemoteReset);
    }
    decoder_ = nullptr;
    stream_callbacks_ = nullptr;
  }
  state_ = State::Closed;
  callbacks_.closeConnection(true);
}

void ServerConnectionImpl::onAboveWriteBufferHighWatermark() {
  above_high_watermark_ = true;
  if (stream_callbacks_ != nullptr) {
    stream_callbacks_->onAboveWriteBufferHighWatermark();
  }
}

void ServerConnectionImpl::onBelowWriteBufferLowWatermark() {
  above_high_watermark_ = false;
  if (stream_callbacks_ != nullptr) {
    stream_callbacks_->onBelowWriteBufferLowWatermark();
  }
}

void ServerConnectionImpl::onConnectionClosed() {
  state_ = State::Closed;
  StreamCallbacks* callbacks = stream_callbacks_;
  decoder_ = nullptr;
  stream_callbacks_ = nullptr;
  if (callbacks != nullptr && !response_complete_) {
    callbacks->onResetStream(StreamResetReason::ConnectionClosed);
  }
}

} // namespace pounce::http::http1
