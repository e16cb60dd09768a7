#pragma once

#include <string>
#include <string_view>

namespace pounce::filters::static_files {

// Percent-decodes a request path (without its query). Returns false when the path must
// never reach the file system: an encoded '/' (%2F), a backslash (raw or %5C), NUL (raw or
// %00) or a malformed escape. `out` holds the decoded path either way (malformed escapes
// kept as they are), so the caller can still tell which mount it was aimed at.
bool decodePath(std::string_view raw, std::string& out);

enum class PathVerdict {
  Ok,
  // A dotfile or dot-directory while they are hidden: treat as missing.
  Hidden,
  // A ".." segment: an attempt to leave the mount.
  Traversal,
};

// Turns the part of a decoded path below its mount ("/css//./site.css") into a path
// relative to the mount's directory ("css/site.css"): empty and "." segments are dropped,
// ".." is refused. Segments starting with '.' are Hidden unless `serve_dotfiles`, except
// ".well-known" (RFC 8615).
PathVerdict relativePath(std::string_view below_mount, bool serve_dotfiles, std::string& out);

// Appends `path` percent-encoded for use in a Location header (segments' '/' kept).
void appendEncodedPath(std::string& out, std::string_view path);

} // namespace pounce::filters::static_files
