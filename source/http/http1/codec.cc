#include "source/http/http1/codec.h"

#include <cstring>

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

// What the response's own fields say about the head the codec completes.
struct FieldScan {
  bool has_date{false};
  bool has_server{false};
  bool has_content_length{false};
  bool app_wants_close{false};
  size_t lines{0};
  ContentLengthFields content_length;
};

// Appends "name: value\r\n" for each field that may go out. Names must be RFC 9110 tokens;
// values are checked here only with `check_values` (otherwise the caller checks them all
// at once). A field that fails is dropped and logged.
FieldScan appendFields(const ResponseHeaders& headers, std::string& out, bool upgrade, int status,
                       bool bodyless_status, bool check_values, bool drop_content_length = false) {
  FieldScan scan;
  const size_t start = out.size();
  out.resize(start + headers.storageBytes() + 4 * headers.size());
  char* p = out.data() + start;
  for (size_t i = 0; i < headers.size(); ++i) {
    const std::string_view name = headers.nameAt(i);
    const std::string_view value = headers.valueAt(i);
    if (!isValidHeaderName(name) || (check_values && !isValidHeaderValue(value))) {
      POUNCE_LOG(Http, Warning, "dropped response header with invalid characters: %s",
                 escapeForLog(name));
      continue;
    }
    if (isConnectionSpecificField(name)) {
      if (name == "connection" && hasToken(value, "close")) {
        scan.app_wants_close = true;
      }
      // A 101 keeps its Upgrade and Connection; a 426 must name the protocol to upgrade to
      // (RFC 9110 §15.5.22).
      if (!upgrade && !(status == 426 && name == "upgrade")) {
        continue;
      }
    }
    if (name == "content-length") {
      if ((bodyless_status && status != 304) || drop_content_length) {
        continue;
      }
      scan.content_length.add(value);
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

// --- ServerConnectionImpl ---------------------------------------------------------------

ServerConnectionImpl::ServerConnectionImpl(OutputQueue& output,
                                           ServerConnectionCallbacks& callbacks,
                                           const CodecLimits& limits, TimeSource& time_source)
    : output_(output), callbacks_(callbacks), limits_(limits), time_source_(time_source) {}

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
    if (state_ == State::WaitResponse ||
        (state_ == State::Head && above_high_watermark_ && requests_ > 0)) {
      // A pipelined request (or early bytes of one): it waits in the connection's buffer
      // until the current response is complete, and, when earlier answers still wait to be
      // written (a client that pipelines and does not read), until they are: otherwise one
      // client could queue answer after answer in memory. Stop reading meanwhile.
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
      // The head's bytes stay in `data` while the stream starts (its headers are a copy).
      const bool ok = onHead(data.view().substr(0, r.head_length));
      if (!ok) {
        break;
      }
      data.drain(r.head_length);
      continue;
    }
    // State::Body
    const std::string_view view = data.view();
    if (chunked_) {
      std::string_view chunk;
      const int64_t used = chunk_decoder_.decode(view, chunk);
      if (used < 0) {
        protocolError(400, "malformed chunked encoding");
        break;
      }
      if (chunk_decoder_.trailers().size() > limits_.max_header_bytes) {
        protocolError(431, "request trailers too large");
        break;
      }
      // A chunk that would take the body over the limit is refused before it is uploaded.
      if (body_received_ + chunk.size() + chunk_decoder_.chunkBytesAhead() >
          limits_.max_request_bytes) {
        protocolError(413, "request body too large");
        break;
      }
      if (!chunk.empty()) {
        onBody(chunk, false);
      }
      if (error_ || state_ == State::Closed) {
        break;
      }
      data.drain(static_cast<size_t>(used));
      if (chunk_decoder_.done()) {
        if (!chunk_decoder_.trailers().empty() && !discarding_body_ && decoder_ != nullptr) {
          trailers_ = std::make_unique<HeaderMap>();
          const ParseError e =
              parseTrailers(chunk_decoder_.trailers(), limits_, header_count_, *trailers_);
          if (e) {
            trailers_.reset();
            protocolError(e.status, e.details);
            break;
          }
        }
        onMessageComplete();
      }
      continue;
    }
    const auto n = static_cast<size_t>(std::min<uint64_t>(view.size(), body_remaining_));
    if (n == 0) {
      break;
    }
    body_remaining_ -= n;
    onBody(view.substr(0, n), body_remaining_ == 0);
    if (error_ || state_ == State::Closed) {
      break;
    }
    data.drain(n);
    if (body_remaining_ == 0) {
      onMessageComplete();
    }
  }
  in_dispatch_ = false;
  return !error_ && state_ != State::Closed;
}

void ServerConnectionImpl::protocolError(int status, const char* details,
                                         RequestHeadersPtr headers) {
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
  if (headers != nullptr) {
    decoder_->onRequestRefused(std::move(headers), status, details);
  } else {
    decoder_->onProtocolError(status, details);
  }
}

void ServerConnectionImpl::ensureStream() {
  if (decoder_ == nullptr) {
    decoder_ = &callbacks_.newStream(*this);
  }
}

bool ServerConnectionImpl::onHead(std::string_view head) {
  RequestHead parsed;
  const ParseError error = parseRequestHead(head, limits_, parsed);
  if (error) {
    protocolError(error.status, error.details,
                  parsed.fields_read ? std::move(parsed.headers) : nullptr);
    return false;
  }
  protocol_ = parsed.protocol;
  header_count_ = parsed.field_count;
  body_received_ = 0;
  body_remaining_ = parsed.content_length;
  chunked_ = parsed.chunked;
  request_keep_alive_ = parsed.keep_alive;
  expect_continue_ = parsed.expect_continue;
  client_accepts_trailers_ = parsed.accepts_trailers;
  is_head_request_ = parsed.is_head;
  upgrade_request_ = parsed.upgrade;
  trailers_.reset();
  RequestHeadersPtr& headers = parsed.headers;
  if (upgrade_request_ && protocol_ == Protocol::Http11 &&
      hasToken(headers->getOr("upgrade"), "h2c")) {
    if (callbacks_.upgradeToHttp2(headers)) {
      output_.add("HTTP/1.1 101 Switching Protocols\r\n"
                  "connection: Upgrade\r\nupgrade: h2c\r\n\r\n");
      callbacks_.onCodecOutput();
      state_ = State::SwitchedToHttp2;
      return true;
    }
  }
  if (upgrade_request_ &&
      (protocol_ != Protocol::Http11 || !hasToken(headers->getOr("upgrade"), "websocket"))) {
    // An Upgrade the server does not do (h2c not taken, any protocol but WebSocket) is
    // ignored, and in HTTP/1.0 always (RFC 9110 §7.8): an ordinary request.
    upgrade_request_ = false;
  }
  const bool has_body = chunked_ || body_remaining_ > 0;
  if (has_body) {
    state_ = State::Body;
    chunk_decoder_.reset();
  }
  ensureStream();
  decoder_->decodeHeaders(std::move(headers), !has_body && !upgrade_request_);
  if (error_ || state_ == State::Closed) {
    return false;
  }
  if (!has_body) {
    onMessageComplete();
  }
  return !error_ && state_ != State::Closed;
}

void ServerConnectionImpl::onBody(std::string_view bytes, bool end) {
  body_received_ += bytes.size();
  if (body_received_ > limits_.max_request_bytes) {
    protocolError(413, "request body too large");
    return;
  }
  if (discarding_body_ || decoder_ == nullptr) {
    return;
  }
  Buffer data(bytes);
  decoder_->decodeData(data, end);
}

void ServerConnectionImpl::onMessageComplete() {
  if (state_ == State::SwitchedToHttp2 || state_ == State::Upgraded) {
    // What follows the head belongs to the new protocol.
    return;
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
    return;
  }
  if (upgrade_request_ && !response_complete_) {
    // Bytes after the head belong to the upgraded protocol (if the answer is 101) or to
    // nothing (any other answer closes the connection): hold them until the response.
    state_ = State::WaitResponse;
    return;
  }
  if (response_complete_) {
    finishRequestCycle();
  } else {
    state_ = State::WaitResponse;
  }
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
  chunk_decoder_.reset();
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
  response_length_known_ = false;
  response_remaining_ = 0;
  if (reading_paused_ && !above_high_watermark_) {
    reading_paused_ = false;
    callbacks_.readDisable(false);
  }
  // (Above the watermark it stays paused; onBelowWriteBufferLowWatermark() resumes it.)
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
  // 205 Reset Content: no content (RFC 9110 §15.3.6), said with Content-Length: 0 (unlike
  // 204 and 304, its framing is not implied), whatever the app sends.
  const bool reset_content = status == 205;
  response_has_body_ = !bodyless_status && !reset_content && !is_head_request_;

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
  FieldScan scan =
      appendFields(headers, out, upgrade, status, bodyless_status, false, reset_content);
  if (countControlBytes(std::string_view(out).substr(fields_start)) != 2 * scan.lines) {
    out.resize(fields_start);
    scan = appendFields(headers, out, upgrade, status, bodyless_status, true, reset_content);
  }
  if (scan.content_length.count > 1 || scan.content_length.bad) [[unlikely]] {
    // RFC 9110 §8.6: one value, of digits. Disagreeing or malformed values are all dropped
    // (the body then goes chunked); copies of one value go out once.
    const bool keep = !scan.content_length.bad;
    const uint64_t value = scan.content_length.value;
    POUNCE_LOG(Http, Warning, "response Content-Length fields %s: %s",
               keep ? "repeated" : "invalid or disagreeing",
               keep ? "sent once" : "dropped; the body is sent chunked");
    out.resize(fields_start);
    scan = appendFields(headers, out, upgrade, status, bodyless_status, true, true);
    if (keep) {
      out += "content-length: ";
      out += std::to_string(value);
      out += "\r\n";
      scan.has_content_length = true;
      scan.content_length = ContentLengthFields{1, value, false};
    }
  }
  const bool has_date = scan.has_date;
  const bool has_server = scan.has_server;
  const bool has_content_length = scan.has_content_length;
  // A declared length is kept to: the body's bytes are counted against it.
  response_length_known_ = has_content_length && response_has_body_;
  response_remaining_ = scan.content_length.value;
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

  if (reset_content) {
    out += "content-length: 0\r\n";
  } else if (!bodyless_status && !has_content_length) {
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
  if (status < 200) {
    // A 1xx cannot be the final answer (RFC 9110 §15.2): the client would wait on for one,
    // or take the next response for it. Closing after it keeps the two from drifting apart.
    POUNCE_LOG(Http, Warning,
               "a %d response is interim, not final: closing the connection after it", status);
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
    endBody();
    onResponseComplete();
  }
}

uint64_t ServerConnectionImpl::countDeclaredBody(uint64_t length) {
  if (length > response_remaining_) [[unlikely]] {
    POUNCE_LOG(Http, Warning,
               "response body longer than its Content-Length: %d bytes dropped, closing the "
               "connection after it",
               length - response_remaining_);
    close_after_response_ = true;
    length = response_remaining_;
  }
  response_remaining_ -= length;
  return length;
}

void ServerConnectionImpl::onShortBody() {
  // The client can only tell a short body by the connection closing.
  POUNCE_LOG(Http, Warning,
             "response body shorter than its Content-Length by %d bytes: closing the connection",
             response_remaining_);
  close_after_response_ = true;
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
    const uint64_t n = countBody(data.length());
    if (n < data.length()) [[unlikely]] {
      Buffer owed;
      owed.move(data, n);
      data.clear();
      output_.move(owed);
    } else {
      output_.move(data);
    }
  }
  callbacks_.onCodecOutput();
  if (end_stream) {
    endBody();
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
    } else if (const uint64_t n = countBody(length); n > 0) {
      output_.addFile(std::move(file), offset, n);
    }
  }
  if (end_stream && response_chunked_) {
    output_.add("0\r\n\r\n");
  }
  callbacks_.onCodecOutput();
  if (end_stream) {
    endBody();
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
  endBody();
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
  // A client's FIN is taken as the client leaving, as nginx does for a proxied request (a TCP peer
  // cannot tell a half-close from a close): a request still being answered is reset, so its
  // app hears http.disconnect at once, and nothing pipelined behind it is read. Answers
  // already queued are still written before the connection closes.
  if (decoder_ != nullptr && !response_complete_) {
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
  if (reading_paused_ && state_ == State::Head) {
    // The next pipelined request waited for earlier answers to be written.
    reading_paused_ = false;
    callbacks_.readDisable(false);
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
