#pragma once

#include <ctime>
#include <string>
#include <string_view>

namespace pounce::filters::static_files {

// The IMF-fixdate form of `t` ("Sun, 06 Nov 1994 08:49:37 GMT", RFC 9110 §5.6.7) is
// always this long (years 1000-9999).
constexpr size_t kHttpDateLength = 29;
// Writes the IMF-fixdate form of `t` to `out` (kHttpDateLength bytes, no terminator).
void formatHttpDate(time_t t, char* out);
void appendHttpDate(std::string& out, time_t t);

// Parses an HTTP-date in any of the three forms a recipient must accept: IMF-fixdate,
// RFC 850 ("Sunday, 06-Nov-94 08:49:37 GMT") and asctime ("Sun Nov  6 08:49:37 1994").
// Returns false for anything else.
bool parseHttpDate(std::string_view text, time_t& out);

} // namespace pounce::filters::static_files
