#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "source/http/headers.h"

namespace pounce::filters {

// The content codings pounce can produce (compression filter) or serve from disk
// (static_files' pre-compressed siblings).
enum class Encoding : uint8_t { Zstd, Brotli, Gzip };

// "zstd", "br", "gzip": the Content-Encoding value.
std::string_view encodingName(Encoding e);
// ".zst", ".br", ".gz": the file name suffix of a pre-compressed sibling.
std::string_view encodingSuffix(Encoding e);
// Parses "zstd", "br", "gzip" (case-insensitively).
std::optional<Encoding> parseEncoding(std::string_view name);

// What a request's Accept-Encoding allows (RFC 9110 §12.5.3), as q-values in thousandths.
//
//   Accept-Encoding: gzip;q=0.5, br, identity;q=0
//     quality(Gzip) == 500, quality(Brotli) == 1000, quality(Zstd) == 0,
//     identityAcceptable() == false
//
// A coding not listed takes the q of "*" when present, else 0 (not acceptable). Identity
// is acceptable unless "identity;q=0", or "*;q=0" without an identity entry. Malformed
// q-values count as 0. No header at all means identity only.
class AcceptEncoding {
public:
  // Every Accept-Encoding field of `headers`, combined.
  static AcceptEncoding fromHeaders(const http::HeaderMap& headers);
  // fromHeaders(headers).identityAcceptable(), without parsing the usual field: identity can
  // only be refused by a field that names it or '*'.
  static bool identityAcceptableIn(const http::HeaderMap& headers);
  // One field value; may be called for each field of a request.
  void parse(std::string_view value);

  int quality(Encoding e) const;
  bool identityAcceptable() const;
  // The q of identity when the header names it, otherwise -1.
  int explicitIdentityQuality() const { return identity_; }

  // The coding to use among `offered` (server preference order): the highest q > 0, ties
  // going to the earlier one. nullopt means send identity: nothing offered is acceptable,
  // or the client named identity with a higher q than the best coding.
  std::optional<Encoding> choose(const Encoding* offered, size_t count) const;

private:
  int16_t q_[3] = {-1, -1, -1}; // per Encoding; -1 = not listed
  int16_t identity_{-1};
  int16_t star_{-1};
};

} // namespace pounce::filters
