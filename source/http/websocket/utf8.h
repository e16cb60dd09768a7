#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace pounce::http::websocket {

// An incremental UTF-8 validator (RFC 3629: no overlong forms, no surrogates, nothing above
// U+10FFFF). Feed a message in any number of pieces; the first invalid byte is reported by
// the feed() that contains it, so a bad message is refused as early as its bytes allow.
//
// Example: "\xF0\x9F" then "\x98\x80" is one valid character split across two pieces:
// both feeds return true, and complete() is true only after the second.
class Utf8Validator {
public:
  // Returns false once the bytes seen so far cannot begin a valid UTF-8 string; the
  // validator then stays failed until reset().
  bool feed(const char* data, size_t size);
  bool feed(std::string_view data) { return feed(data.data(), data.size()); }
  // True when the bytes seen so far end on a character boundary (a whole message is valid).
  bool complete() const { return state_ == kAccept; }
  bool failed() const { return state_ == kReject; }
  void reset() { state_ = kAccept; }

  // Whole-string check.
  static bool valid(std::string_view data) {
    Utf8Validator v;
    return v.feed(data) && v.complete();
  }

  // Internal states, public for the transition table.
  static constexpr uint8_t kAccept = 0;
  static constexpr uint8_t kReject = 8;

private:
  uint8_t state_{kAccept};
};

// The longest prefix of `text` of at most `max` bytes that does not cut a UTF-8 character
// in two (for close reasons, which must fit in 123 bytes).
std::string_view truncateUtf8(std::string_view text, size_t max);

} // namespace pounce::http::websocket
