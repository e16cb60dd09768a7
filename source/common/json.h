#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace pounce::json {

// Appends `value` as a JSON string literal (quotes included). Bytes that are not valid
// UTF-8 are replaced by U+FFFD so the output always parses.
void appendString(std::string& out, std::string_view value);

std::string quote(std::string_view value);

} // namespace pounce::json
