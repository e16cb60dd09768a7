#include "source/http/websocket/deflate.h"

#include <algorithm>

#include "source/common/strings.h"
#include "source/http/headers.h"

namespace pounce::http::websocket {

namespace {

constexpr char kTail[4] = {'\x00', '\x00', '\xff', '\xff'};

// A cursor over one Sec-WebSocket-Extensions value (RFC 6455 §9.1 grammar: tokens,
// ";"-separated parameters, values as token or quoted-string, optional whitespace).
class ExtensionLexer {
public:
  explicit ExtensionLexer(std::string_view s) : s_(s) {}

  bool atEnd() const { return i_ >= s_.size(); }
  char peek() const { return s_[i_]; }
  void advance() { ++i_; }
  void skipSpace() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t')) {
      ++i_;
    }
  }
  std::string_view token() {
    const size_t start = i_;
    while (i_ < s_.size() && isTokenChar(static_cast<unsigned char>(s_[i_]))) {
      ++i_;
    }
    return s_.substr(start, i_ - start);
  }
  // At an opening quote: reads the quoted-string, unescaping "\x". False if unterminated.
  bool quoted(std::string& out) {
    ++i_;
    while (i_ < s_.size()) {
      const char c = s_[i_++];
      if (c == '"') {
        return true;
      }
      if (c == '\\') {
        if (i_ >= s_.size()) {
          return false;
        }
        out.push_back(s_[i_++]);
      } else {
        out.push_back(c);
      }
    }
    return false;
  }
  // Skips to just after the next "," outside a quoted string (or to the end).
  void skipElement() {
    bool in_quotes = false;
    while (i_ < s_.size()) {
      const char c = s_[i_++];
      if (in_quotes) {
        if (c == '\\') {
          ++i_;
        } else if (c == '"') {
          in_quotes = false;
        }
      } else if (c == '"') {
        in_quotes = true;
      } else if (c == ',') {
        return;
      }
    }
  }

private:
  std::string_view s_;
  size_t i_{0};
};

// Parses one element at the lexer's position; false if it is not well formed.
bool parseElement(ExtensionLexer& lex, ExtensionOffer& offer) {
  const std::string_view name = lex.token();
  if (name.empty()) {
    return false;
  }
  offer.name.assign(name.data(), name.size());
  while (true) {
    lex.skipSpace();
    if (lex.atEnd()) {
      return true;
    }
    if (lex.peek() == ',') {
      lex.advance();
      return true;
    }
    if (lex.peek() != ';') {
      return false;
    }
    lex.advance();
    lex.skipSpace();
    const std::string_view param = lex.token();
    if (param.empty()) {
      return false;
    }
    lex.skipSpace();
    std::optional<std::string> value;
    if (!lex.atEnd() && lex.peek() == '=') {
      lex.advance();
      lex.skipSpace();
      value.emplace();
      if (!lex.atEnd() && lex.peek() == '"') {
        // RFC 6455 §9.1: a quoted value must still be a token once unquoted.
        if (!lex.quoted(*value) || value->empty()) {
          return false;
        }
        for (char c : *value) {
          if (!isTokenChar(static_cast<unsigned char>(c))) {
            return false;
          }
        }
      } else {
        const std::string_view v = lex.token();
        if (v.empty()) {
          return false;
        }
        value->assign(v.data(), v.size());
      }
    }
    offer.params.emplace_back(std::string(param), std::move(value));
  }
}

// RFC 7692 §7.1.2: "8".."15", no leading zeros, no sign.
bool parseWindowBits(const std::string& value, int& out) {
  uint64_t v = 0;
  if (value.empty() || value[0] == '0' || !parseUint(value, v) || v < 8 || v > 15) {
    return false;
  }
  out = static_cast<int>(v);
  return true;
}

std::optional<DeflateParams> acceptOffer(const ExtensionOffer& offer, const DeflateConfig& config) {
  bool server_nct = false, client_nct = false;
  bool has_server_bits = false, has_client_bits = false;
  int server_bits = 15, client_bits = 15;
  for (const auto& [name, value] : offer.params) {
    if (name == "server_no_context_takeover" || name == "client_no_context_takeover") {
      bool& flag = name[0] == 's' ? server_nct : client_nct;
      if (flag || value.has_value()) {
        return std::nullopt;
      }
      flag = true;
    } else if (name == "server_max_window_bits") {
      if (has_server_bits || !value.has_value() || !parseWindowBits(*value, server_bits)) {
        return std::nullopt;
      }
      has_server_bits = true;
    } else if (name == "client_max_window_bits") {
      if (has_client_bits || (value.has_value() && !parseWindowBits(*value, client_bits))) {
        return std::nullopt;
      }
      has_client_bits = true;
    } else {
      return std::nullopt;
    }
  }

  DeflateParams p;
  p.server_no_context_takeover = server_nct || config.server_no_context_takeover;
  p.client_no_context_takeover = client_nct || config.client_no_context_takeover;

  // zlib cannot produce raw deflate with a 256-byte window.
  const int our_server_bits = std::clamp(config.server_max_window_bits, 9, 15);
  if (has_server_bits) {
    if (server_bits < 9) {
      return std::nullopt;
    }
    p.server_max_window_bits = std::min(server_bits, our_server_bits);
    p.send_server_max_window_bits = true;
  } else {
    p.server_max_window_bits = our_server_bits;
    p.send_server_max_window_bits = our_server_bits < 15;
  }

  // client_max_window_bits may appear in the response only if the client offered it.
  if (has_client_bits) {
    p.client_max_window_bits =
        std::min(client_bits, std::clamp(config.client_max_window_bits, 8, 15));
    p.send_client_max_window_bits = p.client_max_window_bits < 15;
  }
  return p;
}

} // namespace

std::vector<ExtensionOffer> parseExtensions(std::string_view header) {
  std::vector<ExtensionOffer> offers;
  ExtensionLexer lex(header);
  while (true) {
    lex.skipSpace();
    if (lex.atEnd()) {
      return offers;
    }
    if (lex.peek() == ',') {
      lex.advance();
      continue;
    }
    ExtensionOffer offer;
    if (parseElement(lex, offer)) {
      offers.push_back(std::move(offer));
    } else {
      lex.skipElement();
    }
  }
}

std::optional<DeflateParams> negotiateDeflate(std::string_view header,
                                              const DeflateConfig& config) {
  if (!config.enabled || header.empty()) {
    return std::nullopt;
  }
  for (const ExtensionOffer& offer : parseExtensions(header)) {
    if (!equalsIgnoreCase(offer.name, "permessage-deflate")) {
      continue;
    }
    if (auto params = acceptOffer(offer, config)) {
      return params;
    }
  }
  return std::nullopt;
}

std::string formatDeflateResponse(const DeflateParams& params) {
  std::string out = "permessage-deflate";
  if (params.server_no_context_takeover) {
    out += "; server_no_context_takeover";
  }
  if (params.client_no_context_takeover) {
    out += "; client_no_context_takeover";
  }
  if (params.send_server_max_window_bits) {
    out += cat("; server_max_window_bits=", params.server_max_window_bits);
  }
  if (params.send_client_max_window_bits) {
    out += cat("; client_max_window_bits=", params.client_max_window_bits);
  }
  return out;
}

// --- MessageCompressor ---------------------------------------------------------------------

MessageCompressor::MessageCompressor(int window_bits, bool no_context_takeover, int level,
                                     int memory_level)
    : window_bits_(std::clamp(window_bits, 9, 15)), no_context_takeover_(no_context_takeover),
      level_(std::clamp(level, 0, 9)), memory_level_(std::clamp(memory_level, 1, 9)) {}

MessageCompressor::~MessageCompressor() {
  if (initialized_) {
    deflateEnd(&stream_);
  }
}

bool MessageCompressor::compress(std::string_view message, std::string& out) {
  if (message.empty()) {
    // An empty stored block (00, plus the 00 00 ff ff the receiver appends). zlib emits
    // nothing for a second sync flush without input, and an empty payload would leave a
    // receiver's inflater in the middle of a block header.
    out.push_back('\0');
    return true;
  }
  if (!initialized_) {
    if (deflateInit2(&stream_, level_, Z_DEFLATED, -window_bits_, memory_level_,
                     Z_DEFAULT_STRATEGY) != Z_OK) {
      return false;
    }
    initialized_ = true;
  }
  const size_t start = out.size();
  stream_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(message.data()));
  stream_.avail_in = static_cast<uInt>(message.size());
  // deflateBound() covers a finished stream; a sync flush adds at most a few bytes more.
  size_t room = deflateBound(&stream_, static_cast<uLong>(message.size())) + 16;
  while (true) {
    const size_t used = out.size();
    out.resize(used + room);
    stream_.next_out = reinterpret_cast<Bytef*>(out.data() + used);
    stream_.avail_out = static_cast<uInt>(room);
    const int rc = deflate(&stream_, Z_SYNC_FLUSH);
    out.resize(used + room - stream_.avail_out);
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      out.resize(start);
      deflateReset(&stream_);
      return false;
    }
    // Output space left over means the flush is complete.
    if (stream_.avail_out != 0 && stream_.avail_in == 0) {
      break;
    }
    room = std::max<size_t>(room, 64);
  }
  // A sync flush ends with an empty stored block: 00 00 ff ff. RFC 7692 §7.2.1 removes it.
  if (out.size() - start >= 4 &&
      std::string_view(out).substr(out.size() - 4) == std::string_view(kTail, 4)) {
    out.resize(out.size() - 4);
  }
  if (no_context_takeover_) {
    deflateReset(&stream_);
  }
  return true;
}

// --- MessageDecompressor -------------------------------------------------------------------

MessageDecompressor::MessageDecompressor(int window_bits, bool no_context_takeover)
    // zlib-based peers compress with at least a 512-byte window even when told 256.
    : window_bits_(std::clamp(window_bits, 9, 15)), no_context_takeover_(no_context_takeover) {}

MessageDecompressor::~MessageDecompressor() {
  if (initialized_) {
    inflateEnd(&stream_);
  }
}

bool MessageDecompressor::ensureInitialized() {
  if (!initialized_) {
    if (inflateInit2(&stream_, -window_bits_) != Z_OK) {
      return false;
    }
    initialized_ = true;
  }
  return true;
}

// Out of line so the 32 KiB window copy does not grow the stack of every inflate call.
__attribute__((noinline)) void MessageDecompressor::restartKeepingWindow() {
  Bytef window[32768];
  uInt window_size = 0;
  inflateGetDictionary(&stream_, window, &window_size);
  Bytef* rest = stream_.next_in;
  const uInt rest_size = stream_.avail_in;
  inflateReset(&stream_);
  if (window_size > 0) {
    inflateSetDictionary(&stream_, window, window_size);
  }
  stream_.next_in = rest;
  stream_.avail_in = rest_size;
}

MessageDecompressor::Result MessageDecompressor::inflateInto(const char* data, size_t size,
                                                             Buffer& out, uint64_t limit) {
  if (!ensureInitialized()) {
    return Result::Invalid;
  }
  stream_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data));
  stream_.avail_in = static_cast<uInt>(size);
  while (true) {
    if (out.length() > limit) {
      return Result::TooBig;
    }
    // Room for what this input probably inflates to, but never more than one byte past
    // the limit: producing that byte is how an oversized message is detected.
    const uint64_t headroom = limit - out.length();
    const size_t guess = std::clamp<size_t>(size * 4, 1024, 65536);
    const size_t room = headroom >= guess ? guess : static_cast<size_t>(headroom + 1);
    char* dst = out.reserve(room);
    stream_.next_out = reinterpret_cast<Bytef*>(dst);
    stream_.avail_out = static_cast<uInt>(room);
    int rc = inflate(&stream_, Z_SYNC_FLUSH);
    out.commit(room - stream_.avail_out);
    if (rc == Z_STREAM_END) {
      // The sender ended the deflate stream (BFINAL). What follows, in this message or the
      // next, is a new stream that may still refer to the window: carry it over.
      restartKeepingWindow();
      // If the message ends here, the 00 00 ff ff tail belongs to nothing: finish() skips it.
      stream_ended_ = stream_.avail_in == 0;
      rc = Z_OK;
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      return Result::Invalid;
    }
    if (out.length() > limit) {
      return Result::TooBig;
    }
    if (stream_.avail_in == 0 && stream_.avail_out != 0) {
      return Result::Ok;
    }
    if (rc == Z_BUF_ERROR && stream_.avail_out != 0) {
      // No progress possible with input left: cannot happen with valid zlib use.
      return Result::Invalid;
    }
  }
}

MessageDecompressor::Result MessageDecompressor::feed(const char* data, size_t size, Buffer& out,
                                                      uint64_t limit) {
  if (size == 0) {
    return Result::Ok;
  }
  stream_ended_ = false;
  received_data_ = true;
  return inflateInto(data, size, out, limit);
}

MessageDecompressor::Result MessageDecompressor::finish(Buffer& out, uint64_t limit) {
  // Nothing to finish after an empty payload (some senders compress an empty message to
  // nothing), or after a final deflate block.
  const Result r = (stream_ended_ || !received_data_)
                       ? Result::Ok
                       : inflateInto(kTail, sizeof(kTail), out, limit);
  stream_ended_ = false;
  received_data_ = false;
  if (r != Result::Ok || no_context_takeover_) {
    abandon();
  }
  return r;
}

void MessageDecompressor::abandon() {
  stream_ended_ = false;
  received_data_ = false;
  if (initialized_) {
    inflateReset(&stream_);
  }
}

} // namespace pounce::http::websocket
