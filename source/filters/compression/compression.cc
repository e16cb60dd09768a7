#include "source/filters/compression/compression.h"

#include <atomic>

#include "source/common/logger.h"
#include "source/common/strings.h"

namespace pounce::filters::compression {

namespace {

bool endsWithIgnoreCase(std::string_view s, std::string_view suffix) {
  return s.size() > suffix.size() &&
         http::equalsIgnoreCase(s.substr(s.size() - suffix.size()), suffix);
}

// Adds "accept-encoding" to Vary unless it is there already (or Vary is "*"). `present`:
// the response has a Vary field (without one, there is nothing to look through).
void addVary(http::ResponseHeaders& headers, bool present) {
  if (!present) {
    headers.addLowercase("vary", "accept-encoding");
    return;
  }
  for (size_t i = 0; i < headers.size(); ++i) {
    if (headers.nameAt(i) != "vary") {
      continue;
    }
    const std::string_view value = headers.valueAt(i);
    if (http::hasToken(value, "accept-encoding") || http::hasToken(value, "*")) {
      return;
    }
  }
  std::string joined = headers.getJoined("vary");
  joined = trim(joined).empty() ? "accept-encoding" : cat(joined, ", accept-encoding");
  headers.set("vary", joined);
}

// Whether one of the tags of an If-None-Match value is W/`strong` (`strong` with its quotes).
bool listsWeakened(std::string_view if_none_match, std::string_view strong) {
  for (size_t at = if_none_match.find(strong); at != std::string_view::npos;
       at = if_none_match.find(strong, at + 1)) {
    if (at >= 2 && if_none_match.substr(at - 2, 2) == "W/") {
      return true;
    }
  }
  return false;
}

} // namespace

bool MediaRange::parse(std::string_view text, MediaRange& out) {
  text = trim(text);
  const size_t slash = text.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == text.size() ||
      text.find_first_of(" ;,", 0) != std::string_view::npos) {
    return false;
  }
  const std::string type = toLower(text.substr(0, slash));
  const std::string subtype = toLower(text.substr(slash + 1));
  for (const std::string* part : {&type, &subtype}) {
    for (char c : *part) {
      if (!http::isTokenChar(static_cast<unsigned char>(c))) {
        return false;
      }
    }
  }
  if (subtype.size() > 2 && subtype[0] == '*' && subtype[1] == '+') {
    out.kind = Kind::Suffix;
    out.type = type == "*" ? "" : type;
    out.subtype = subtype.substr(1);
    return true;
  }
  if (type == "*") {
    return false; // "*/*" or "*/html": compressing everything is never what is meant
  }
  if (subtype == "*") {
    out.kind = Kind::AnySubtype;
    out.type = type;
    out.subtype.clear();
    return true;
  }
  if (subtype.find('*') != std::string::npos) {
    return false;
  }
  out.kind = Kind::Exact;
  out.type = type;
  out.subtype = subtype;
  return true;
}

bool MediaRange::matches(std::string_view t, std::string_view s) const {
  switch (kind) {
  case Kind::Exact:
    return http::equalsIgnoreCase(t, type) && http::equalsIgnoreCase(s, subtype);
  case Kind::AnySubtype:
    return http::equalsIgnoreCase(t, type);
  case Kind::Suffix:
    return (type.empty() || http::equalsIgnoreCase(t, type)) && endsWithIgnoreCase(s, subtype);
  }
  return false;
}

std::vector<std::string> defaultContentTypes() {
  return {"text/*",          "application/json", "application/javascript",
          "application/xml", "application/wasm", "image/svg+xml",
          "*/*+json",        "*/*+xml"};
}

uint64_t Config::nextId() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

namespace {
struct CompressibleMemo {
  uint64_t config_id{0};
  std::string content_type;
  bool result{false};
};
thread_local CompressibleMemo t_compressible;
constexpr size_t kMaxMemoContentType = 128;
} // namespace

bool Config::compressible(std::string_view content_type) const {
  CompressibleMemo& memo = t_compressible;
  if (memo.config_id == id && memo.content_type == content_type) {
    return memo.result;
  }
  const bool result = matchesAllowList(content_type);
  if (content_type.size() <= kMaxMemoContentType) {
    memo.config_id = id;
    memo.content_type.assign(content_type.data(), content_type.size());
    memo.result = result;
  }
  return result;
}

bool Config::matchesAllowList(std::string_view content_type) const {
  const size_t semi = content_type.find(';');
  const std::string_view media = trim(content_type.substr(0, semi));
  const size_t slash = media.find('/');
  if (slash == std::string_view::npos) {
    return false;
  }
  const std::string_view type = trim(media.substr(0, slash));
  const std::string_view subtype = trim(media.substr(slash + 1));
  if (type.empty() || subtype.empty()) {
    return false; // "text/" names no media type
  }
  for (const MediaRange& range : content_types) {
    if (range.matches(type, subtype)) {
      return true;
    }
  }
  return false;
}

bool CompressionFilter::shouldCompress(http::ResponseHeaders& headers, bool end_stream,
                                       Encoding& encoding, uint64_t& length) const {
  length = 0;
  const int status = headers.status();
  if (status < 200 || status == 204) {
    return false;
  }
  // A 206 (its ranges are of the identity bytes) and a 304 have no body to compress, but
  // must carry the Vary (and a 304 the ETag) that the 200 would have (RFC 9110 §15.3.7,
  // §15.4.5).
  const bool not_modified = status == 304;
  bool partial = status == 206;
  // One pass over the response head collects everything the decision needs. Names are
  // lowercase, and a name's length leaves at most two candidates to compare it with.
  std::string_view content_type;
  std::string_view content_length;
  bool has_type = false;
  bool has_length = false;
  bool has_vary = false;
  for (size_t i = 0; i < headers.size(); ++i) {
    const std::string_view name = headers.nameAt(i);
    switch (name.size()) {
    case 4:
      has_vary = has_vary || name == "vary";
      break;
    case 12:
      if (!has_type && name == "content-type") {
        content_type = headers.valueAt(i);
        has_type = true;
      }
      break;
    case 13:
      if (name == "content-range") {
        partial = true;
      }
      if (name == "cache-control" && http::hasToken(headers.valueAt(i), "no-transform")) {
        return false;
      }
      break;
    case 14:
      if (!has_length && name == "content-length") {
        content_length = headers.valueAt(i);
        has_length = true;
      }
      break;
    case 16:
      if (name == "content-encoding") {
        return false;
      }
      break;
    default:
      break;
    }
  }
  if (not_modified || partial) {
    // A 304 usually has no type and a multipart 206's is multipart/byteranges: the filter
    // that answered may say what they stand for.
    bool compressible_type = has_type && config_->compressible(content_type);
    const auto& represents = encoder_callbacks_->streamInfo().represents;
    if (!compressible_type && represents && !represents->content_type.empty()) {
      compressible_type = config_->compressible(represents->content_type);
    }
    if (not_modified) {
      notModified(headers, compressible_type, has_vary);
    } else if (compressible_type) {
      addVary(headers, has_vary);
    }
    return false;
  }
  if (!has_type || !config_->compressible(content_type)) {
    return false;
  }
  uint64_t declared = 0;
  const bool known_length = has_length && parseUint(trim(content_length), declared);
  // From here on the response is compressible: whatever this client gets, caches must
  // know that another Accept-Encoding may get another body.
  addVary(headers, has_vary); // (may move the header bytes: the views above are unused below)
  if (end_stream) {
    return false;
  }
  const http::RequestHeaders& request = encoder_callbacks_->requestHeaders();
  if (request.method() == "HEAD") {
    return false;
  }
  // A body under min_bytes goes as it is to any client that takes identity (found without
  // parsing the usual Accept-Encoding).
  if (known_length && declared < config_->min_bytes &&
      AcceptEncoding::identityAcceptableIn(request)) {
    return false;
  }
  const AcceptEncoding accept = AcceptEncoding::fromHeaders(request);
  const auto chosen = accept.choose(config_->encodings.data(), config_->encodings.size());
  if (!chosen) {
    return false;
  }
  length = known_length ? declared : 0;
  encoding = *chosen;
  return true;
}

void CompressionFilter::notModified(http::ResponseHeaders& headers, bool compressible_type,
                                    bool has_vary) const {
  // A 304 must carry the ETag and Vary its 200 would have had (RFC 9110 §15.4.5), so that
  // a cache can match it to what it stored (RFC 9111 §4.3.4). It usually has no
  // Content-Type: the filter that answered it may say what it stands for (static_files).
  const http::RequestHeaders& request = encoder_callbacks_->requestHeaders();
  const auto& represents = encoder_callbacks_->streamInfo().represents;
  auto wouldEncode = [&] {
    const AcceptEncoding accept = AcceptEncoding::fromHeaders(request);
    return accept.choose(config_->encodings.data(), config_->encodings.size()).has_value();
  };
  const auto etag = headers.get("etag");
  const auto if_none_match = request.get("if-none-match");
  bool weaken = false;
  if (etag && etag->size() >= 2 && etag->front() == '"') {
    if (if_none_match && listsWeakened(*if_none_match, *etag)) {
      // The client holds W/"x", which only this filter makes of "x": its 200 was
      // compressed, and is again if it still gets an encoding.
      weaken = wouldEncode();
    } else if (compressible_type && represents && (!if_none_match || trim(*if_none_match) == "*")) {
      // The client's copy is not named (If-Modified-Since, If-None-Match: *): the 304 names
      // what this request's 200 would be, compressed when it would be.
      const bool small =
          represents->length < config_->min_bytes && AcceptEncoding::identityAcceptableIn(request);
      weaken = !small && wouldEncode();
    }
  }
  if (weaken) {
    const std::string weak = cat("W/", *etag);
    headers.set("etag", weak);
  }
  if (weaken || compressible_type) {
    addVary(headers, has_vary);
  }
}

http::FilterStatus CompressionFilter::encodeHeaders(http::ResponseHeaders& headers,
                                                    bool end_stream) {
  Encoding encoding;
  uint64_t length;
  if (!shouldCompress(headers, end_stream, encoding, length)) {
    return http::FilterStatus::Continue;
  }
  whole_ = WholeBodyCompressor::forThread(encoding, config_->levels);
  if (whole_ == nullptr) {
    compressor_ = Compressor::create(encoding, config_->levels, length);
    if (compressor_ == nullptr) {
      POUNCE_LOG(Http, Warning, "cannot create a %s compressor; sending the response as it is",
                 std::string(encodingName(encoding)));
      return http::FilterStatus::Continue;
    }
  } else if (length <= decoder_callbacks_->bufferLimit()) {
    // A declared length that fits the stream's buffer limit is held until the body is
    // whole, whatever the chunks it comes in (file reads, an app's body messages).
    hold_limit_ = length;
  }
  encoding_ = encoding;
  length_ = length;
  headers.remove("content-length");
  // Ranges of the compressed body are not offered (its length is not known up front).
  headers.remove("accept-ranges");
  headers.addLowercase("content-encoding", encodingName(encoding));
  if (const auto etag = headers.get("etag"); etag && !etag->empty() && (*etag)[0] == '"') {
    // The bytes differ from the identity representation's: a strong ETag would lie.
    const std::string weak = cat("W/", *etag);
    headers.set("etag", weak);
  }
  return http::FilterStatus::Continue;
}

http::FilterStatus CompressionFilter::encodeData(Buffer& data, bool end_stream) {
  if (!compressing() || finished_) {
    return http::FilterStatus::Continue;
  }
  if (data.empty() && !end_stream) {
    return http::FilterStatus::Continue;
  }
  if (compressor_ == nullptr && !end_stream) {
    // Nothing streamed yet; `scratch_` holds what came so far.
    if (scratch_.length() + data.length() <= hold_limit_) {
      scratch_.move(data); // nothing goes on until end_stream
      return http::FilterStatus::Continue;
    }
    // No declared length, or more than it: stream from here on.
    compressor_ = Compressor::create(encoding_, config_->levels, length_);
    if (compressor_ == nullptr) {
      return fail();
    }
  }
  if (!scratch_.empty()) {
    // The bytes held so far go first.
    scratch_.move(data);
    data.move(scratch_);
  }
  // Without a streaming compressor the body is whole now: one call.
  const bool ok = compressor_ == nullptr ? whole_->compress(data.view(), scratch_)
                                         : compressor_->compress(data.view(), scratch_, end_stream);
  if (!ok) {
    return fail();
  }
  account(data.length(), scratch_.length());
  finished_ = end_stream;
  // Hand the compressed bytes on; `scratch_` keeps the old storage for the next chunk.
  data.clear();
  data.move(scratch_);
  return http::FilterStatus::Continue;
}

http::FilterStatus CompressionFilter::encodeTrailers(http::HeaderMap&) {
  if (!compressing() || finished_) {
    return http::FilterStatus::Continue;
  }
  // The body ended without end_stream: close the compressed stream before the trailers.
  Buffer tail;
  finished_ = true;
  const size_t in = compressor_ == nullptr ? scratch_.length() : 0;
  const bool ok = compressor_ == nullptr ? whole_->compress(scratch_.view(), tail)
                                         : compressor_->compress({}, tail, true);
  if (!ok) {
    return fail();
  }
  scratch_.clear();
  account(in, tail.length());
  encoder_callbacks_->addEncodedData(tail);
  return http::FilterStatus::Continue;
}

http::FilterStatus CompressionFilter::fail() {
  // Content-Encoding went out with the head: the response cannot continue uncompressed.
  POUNCE_LOG(Http, Warning, "%s compression failed; resetting the stream",
             std::string(encodingName(encoding_)));
  compressor_.reset();
  whole_ = nullptr;
  scratch_.clear();
  encoder_callbacks_->resetStream();
  return http::FilterStatus::StopIteration;
}

void CompressionFilter::account(size_t in, size_t out) const {
  const auto i = static_cast<size_t>(encoding_);
  if (in != 0) {
    config_->bytes_in[i]->inc(in);
  }
  if (out != 0) {
    config_->bytes_out[i]->inc(out);
  }
}

} // namespace pounce::filters::compression
