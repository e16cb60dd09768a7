#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "source/common/stats.h"
#include "source/filters/common/accept_encoding.h"
#include "source/filters/compression/compressor.h"
#include "source/http/filter.h"

namespace pounce::filters::compression {

// One entry of the content type allow-list.
struct MediaRange {
  enum class Kind { Exact, AnySubtype, Suffix };
  Kind kind{Kind::Exact};
  std::string type;    // "text", or "" for any type ("*/*+json")
  std::string subtype; // "html"; for Suffix the suffix with its '+' ("+json")

  // Parses "text/html", "text/*", "application/*+json", "*/*+xml" (lowercased).
  static bool parse(std::string_view text, MediaRange& out);
  // `type`/`subtype` are lowercase, without parameters.
  bool matches(std::string_view type, std::string_view subtype) const;
};

// The validated config: built once on the main thread, shared by every stream.
struct Config {
  Config() = default;
  Config(const Config&) = delete; // a copy would share `id` while it could differ
  Config& operator=(const Config&) = delete;

  uint64_t min_bytes{256};
  std::vector<MediaRange> content_types;
  std::vector<Encoding> encodings{Encoding::Zstd, Encoding::Brotli, Encoding::Gzip};
  Compressor::Levels levels;
  // Per encoding (indexed by Encoding): bytes in and out, for this listener.
  const stats::Series* bytes_in[3]{};
  const stats::Series* bytes_out[3]{};

  // Is a Content-Type value (parameters allowed) in the allow-list? Remembers this
  // thread's last answer: an app sends one or two types, so the list is walked once per
  // type rather than once per response.
  bool compressible(std::string_view content_type) const;

  // Tells this config from any other, also from a later one at the same address.
  const uint64_t id{nextId()};

private:
  bool matchesAllowList(std::string_view content_type) const;
  static uint64_t nextId();
};
using ConfigSharedPtr = std::shared_ptr<const Config>;

std::vector<std::string> defaultContentTypes();

// Compresses response bodies as they pass (see the proto for when).
//
// A body the filter gets whole is compressed in one call when the encoding has a one-shot
// path (gzip: WholeBodyCompressor): the first body chunk carries end_stream, or the
// response declared a Content-Length no larger than the stream's buffer limit, whose
// chunks are held until end_stream (a declared length is not a stream). Any other body is
// streamed: each chunk compressed and flushed as it comes (Compressor).
class CompressionFilter final : public http::StreamFilter {
public:
  // `config` belongs to the chain's factory, which outlives every stream on the chain
  // (no reference count per stream).
  explicit CompressionFilter(const Config& config) : config_(&config) {}

  // http::StreamEncoderFilter
  http::FilterStatus encodeHeaders(http::ResponseHeaders& headers, bool end_stream) override;
  http::FilterStatus encodeData(Buffer& data, bool end_stream) override;
  http::FilterStatus encodeTrailers(http::HeaderMap& trailers) override;
  // File ranges must arrive as bytes exactly when this response is being compressed.
  bool needsResponseBodyBytes() const override { return compressing(); }

  void onDestroy() override { compressor_.reset(); }

private:
  // Decides whether this response is compressed; adds Vary when it is compressible.
  // `length` is set to the declared Content-Length (0 when there is none).
  bool shouldCompress(http::ResponseHeaders& headers, bool end_stream, Encoding& encoding,
                      uint64_t& length) const;
  // A 304's ETag and Vary, as the 200 this client holds had them.
  void notModified(http::ResponseHeaders& headers, bool compressible_type, bool has_vary) const;
  // The library failed: the compressed stream cannot go on, so neither can the response.
  http::FilterStatus fail();
  void account(size_t in, size_t out) const;
  // Whether this response is being compressed (whole or streamed).
  bool compressing() const { return whole_ != nullptr || compressor_ != nullptr; }

  const Config* config_;
  // This thread's one-shot compressor, when the encoding has one (null otherwise). While
  // `compressor_` is null the body may still be compressed whole.
  WholeBodyCompressor* whole_{nullptr};
  // The streaming compressor: made in encodeHeaders without a one-shot path, otherwise
  // once the body turns out to be streamed.
  CompressorPtr compressor_;
  // How much body may be held until end_stream (the declared length, or 0).
  uint64_t hold_limit_{0};
  uint64_t length_{0}; // the declared Content-Length, 0 when there is none
  Encoding encoding_{Encoding::Gzip};
  bool finished_{false};
  // While nothing is streamed: the body held so far. Then: each chunk's compressed bytes
  // before they are handed on (one buffer, so a response that is not compressed
  // constructs and destroys one).
  Buffer scratch_;
};

} // namespace pounce::filters::compression
