#pragma once

#include <string>

namespace pounce::filters::static_files {

enum class OpenResult {
  Ok,
  // Nothing servable by that name (missing, not a directory on the way, no permission).
  NotFound,
  // The name resolves outside the root, or through a symbolic link that is not allowed.
  Escapes,
  // The system could not open it now (out of descriptors or memory, an I/O error): not an
  // answer about the file, so never remembered.
  Error,
};

// Opens `relative` (no leading '/', no "." or ".." segments; empty = the root itself)
// below the directory `root_fd` for reading, without blocking (O_NONBLOCK, so a FIFO
// cannot stall the I/O thread) and without following symbolic links unless
// `follow_symlinks`; even then the result must lie inside the root. `root_real` is the
// canonical path of the root (used where the kernel cannot check containment itself).
//
// Uses openat2(RESOLVE_BENEATH) when the kernel offers it (one system call), otherwise a
// component-by-component walk with O_NOFOLLOW, or an open followed by a check of the
// file's real path when links are followed.
OpenResult openBeneath(int root_fd, const std::string& root_real, const std::string& relative,
                       bool follow_symlinks, int& fd);

// Tests: force the fallback path that does not use openat2.
void setUseOpenat2ForTest(bool enabled);

} // namespace pounce::filters::static_files
