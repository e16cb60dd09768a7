#pragma once

#include <string_view>

namespace pounce::filters::static_files {

// The built-in Content-Type for a lowercase file extension without the dot ("css"), or
// an empty view when the table has none. Textual types carry "; charset=utf-8".
std::string_view builtinContentType(std::string_view extension);

// The lowercase-insensitive extension of a file name: "app.min.JS" -> "JS",
// "README" -> "", ".env" -> "" (a leading dot starts no extension).
std::string_view fileExtension(std::string_view name);

} // namespace pounce::filters::static_files
