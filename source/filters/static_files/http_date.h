#pragma once

#include <ctime>
#include <string>
#include <string_view>

namespace pounce::filters::static_files {

// Appends the IMF-fixdate form of `t` ("Sun, 06 Nov 1994 08:49:37 GMT", RFC 9110 §5.6.7).
void appendHttpDate(std::string& out, time_t t);

// Parses an HTTP-date in any of the three forms a recipient must accept: IMF-fixdate,
// RFC 850 ("Sunday, 06-Nov-94 08:49:37 GMT") and asctime ("Sun Nov  6 08:49:37 1994").
// Returns false for anything else.
bool parseHttpDate(std::string_view text, time_t& out);

} // namespace pounce::filters::static_files
