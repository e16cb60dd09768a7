#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "source/http/codec.h"
#include "source/http/headers.h"

namespace pounce::http::http1 {

// The HTTP/1.1 request parser (RFC 9112), in three sans-I/O pieces the codec drives:
//
//   HeadScanner        finds where a request head ends, across reads, and refuses bad line
//                      framing (bare CR or LF, NUL, obs-fold) and oversized heads;
//   parseRequestHead   turns one complete head into RequestHeaders and message framing;
//   ChunkDecoder       takes a chunked body apart: data, framing errors, trailer lines.
//
// It is strict where leniency lets two parsers disagree about a message (request
// smuggling) and refuses rather than repairs: every refusal carries the status the client
// gets (400, 413, 414, 431, 501, 505).

// Why a request was refused: the status to answer with and a short reason for the debug
// log. A status of 0 means nothing was wrong.
struct ParseError {
  int status{0};
  const char* details{""};
  explicit operator bool() const { return status != 0; }
};

// Checks the bytes of a request head (request line + header lines) as they arrive: CRLF
// line endings only (no bare CR or LF), no NUL, no obs-fold, and the size limits.
class HeadScanner {
public:
  struct Result {
    enum class Kind { NeedMore, Complete, Error };
    Kind kind{Kind::NeedMore};
    size_t head_length{0}; // Complete: bytes up to and including the blank line
    int status{0};         // Error: 400, 414 or 431
    const char* details{""};
  };
  Result scan(std::string_view data, uint32_t max_head_bytes, uint32_t max_request_line);
  void reset() { *this = HeadScanner(); }

private:
  size_t pos_{0};
  size_t line_start_{0};
  bool seen_request_line_{false};
};

// What a request head says about the message that follows it (RFC 9112 §6).
struct RequestHead {
  RequestHeadersPtr headers;
  Protocol protocol{Protocol::Http11};
  uint32_t field_count{0};
  uint64_t content_length{0}; // the declared Content-Length; 0 without one
  bool chunked{false};
  bool keep_alive{true};
  bool upgrade{false}; // Upgrade with Connection: upgrade, on a request without a body
  bool expect_continue{false};
  bool accepts_trailers{false}; // TE: trailers
  bool is_head{false};
  // Every field line was read (an error after this is about the request as a whole: its
  // headers name it in the access log).
  bool fields_read{false};
};

// Parses a complete request head: exactly the bytes HeadScanner called complete (so every
// line ends in CRLF and holds no NUL). The head is copied once, into the request's header
// map, and parsed there in place: names are lowercased where they lie and fields point at
// their bytes.
//
//   request-line = method SP request-target SP HTTP-version CRLF
//   field-line   = field-name ":" OWS field-value OWS CRLF
//
// Methods are capitals, '-' and '_' (every registered method; lowercase is refused, as
// nginx does); CONNECT gets 501. The target is visible ASCII without '#', in origin form,
// absolute form (an http or https URI: its path becomes the path, "/" if it has none, and
// its authority replaces Host) or "*" (OPTIONS only); anything else gets 400, longer than
// max_uri_bytes 414. Versions other than 1.x get
// 505. Field names are tokens with no space before the colon; values hold no control byte
// but HTAB. Message framing follows RFC 9112 §6.1–6.3: one Content-Length of digits only,
// or Transfer-Encoding ending in a single "chunked" (never both, never on HTTP/1.0).
ParseError parseRequestHead(std::string_view head, const CodecLimits& limits, RequestHead& out);

// Parses the trailer section of a chunked body: field lines, each ending in CRLF, without
// the final empty line (what ChunkDecoder collected). `field_count` is the head's count,
// which the trailers add to against limits.max_headers.
ParseError parseTrailers(std::string_view lines, const CodecLimits& limits, uint32_t& field_count,
                         HeaderMap& trailers);

// Takes a chunked body apart (RFC 9112 §7.1): sizes in hex (below 2^60: at most 15
// significant digits, after leading zeros, 64 digits in all), chunk extensions (skipped, at
// most 4 KiB), CRLF after every size line and every chunk, and the trailer section.
// Anything else is an error.
class ChunkDecoder {
public:
  // Consumes bytes from the front of `in`: framing, then (when it gets there) chunk data,
  // which it returns in `data` (a view into `in`) and stops after. Returns how many bytes
  // of `in` it consumed, or -1 on malformed framing. Stops at the end of the body (done()).
  int64_t decode(std::string_view in, std::string_view& data);
  bool done() const { return state_ == State::Done; }
  // The trailer lines seen so far, each with its CRLF.
  const std::string& trailers() const { return trailers_; }
  // The bytes of the current chunk that decode() has not returned yet: all of a chunk whose
  // size line just ended (so a caller can refuse a chunk larger than it will take before
  // any of it arrives).
  uint64_t chunkBytesAhead() const { return state_ == State::Data ? size_ : 0; }
  void reset() { *this = ChunkDecoder(); }

private:
  enum class State {
    SizeStart,
    Size,
    SizeWs,
    Ext,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    TrailerStart,
    Trailer,
    TrailerLf,
    FinalLf,
    Done
  };
  State state_{State::SizeStart};
  uint64_t size_{0};
  int digits_{0};
  std::string trailers_;
};

} // namespace pounce::http::http1
