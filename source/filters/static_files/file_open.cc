#include "source/filters/static_files/file_open.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <string_view>

namespace pounce::filters::static_files {

namespace {

constexpr int kFileFlags = O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY;

// Cleared once the kernel (or a seccomp policy) turns openat2 down.
std::atomic<bool> use_openat2{true};

OpenResult resultFor(int err) {
  switch (err) {
  case ELOOP:
  case EXDEV:
    return OpenResult::Escapes;
  case EMFILE:
  case ENFILE:
  case ENOMEM:
  case ENOBUFS:
  case EIO:
    return OpenResult::Error;
  default:
    return OpenResult::NotFound;
  }
}

// Opens then checks where the file really is (links followed by the kernel).
OpenResult openFollowedChecked(int root_fd, const std::string& root_real,
                               const std::string& relative, int& fd) {
  const int f = ::openat(root_fd, relative.empty() ? "." : relative.c_str(), kFileFlags);
  if (f < 0) {
    const OpenResult r = resultFor(errno);
    return r == OpenResult::Error ? r : OpenResult::NotFound;
  }
  char link[64];
  snprintf(link, sizeof(link), "/proc/self/fd/%d", f);
  char real[4096];
  const ssize_t n = ::readlink(link, real, sizeof(real) - 1);
  if (n <= 0 || static_cast<size_t>(n) >= sizeof(real) - 1) {
    ::close(f);
    return OpenResult::NotFound;
  }
  const std::string_view path(real, static_cast<size_t>(n));
  const bool inside = path == root_real || (path.size() > root_real.size() &&
                                            path.substr(0, root_real.size()) == root_real &&
                                            (root_real == "/" || path[root_real.size()] == '/'));
  if (!inside) {
    ::close(f);
    return OpenResult::Escapes;
  }
  fd = f;
  return OpenResult::Ok;
}

// Walks the path one component at a time, refusing symbolic links anywhere.
OpenResult openNoFollowWalk(int root_fd, const std::string& relative, int& fd) {
  if (relative.empty()) {
    const int f = ::openat(root_fd, ".", kFileFlags);
    if (f < 0) {
      return resultFor(errno) == OpenResult::Error ? OpenResult::Error : OpenResult::NotFound;
    }
    fd = f;
    return OpenResult::Ok;
  }
  int dir = root_fd;
  size_t pos = 0;
  OpenResult result = OpenResult::NotFound;
  while (true) {
    const size_t slash = relative.find('/', pos);
    const std::string name =
        relative.substr(pos, slash == std::string::npos ? std::string::npos : slash - pos);
    const bool last = slash == std::string::npos;
    const int flags =
        last ? kFileFlags | O_NOFOLLOW : O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    const int next = ::openat(dir, name.c_str(), flags);
    const int err = errno;
    if (next < 0) {
      struct stat st;
      // O_DIRECTORY|O_NOFOLLOW on a link reports ELOOP or ENOTDIR depending on the kernel.
      const bool is_link =
          err == ELOOP ||
          (err == ENOTDIR && ::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
           S_ISLNK(st.st_mode));
      result = is_link                               ? OpenResult::Escapes
               : resultFor(err) == OpenResult::Error ? OpenResult::Error
                                                     : OpenResult::NotFound;
      break;
    }
    if (dir != root_fd) {
      ::close(dir);
      dir = -1;
    }
    if (last) {
      fd = next;
      return OpenResult::Ok;
    }
    dir = next;
    pos = slash + 1;
  }
  if (dir != root_fd && dir >= 0) {
    ::close(dir);
  }
  return result;
}

} // namespace

OpenResult openBeneath(int root_fd, const std::string& root_real, const std::string& relative,
                       bool follow_symlinks, int& fd) {
  fd = -1;
  if (use_openat2.load(std::memory_order_relaxed)) {
    open_how how{};
    how.flags = kFileFlags;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    if (!follow_symlinks) {
      how.resolve |= RESOLVE_NO_SYMLINKS;
    }
    const char* name = relative.empty() ? "." : relative.c_str();
    long f;
    do {
      f = ::syscall(SYS_openat2, root_fd, name, &how, sizeof(how));
    } while (f < 0 && errno == EINTR);
    if (f >= 0) {
      fd = static_cast<int>(f);
      return OpenResult::Ok;
    }
    const int err = errno;
    if (err == ENOSYS || err == EPERM) {
      use_openat2.store(false, std::memory_order_relaxed);
    } else if (err == EXDEV && follow_symlinks) {
      // An absolute link, or one through "..": RESOLVE_BENEATH refuses those even when
      // they end up inside the root, so look where it really goes.
      return openFollowedChecked(root_fd, root_real, relative, fd);
    } else if (err == EAGAIN) {
      // A rename raced with the lookup; the kernel could not vouch for containment.
      return OpenResult::NotFound;
    } else {
      return resultFor(err);
    }
  }
  if (follow_symlinks) {
    return openFollowedChecked(root_fd, root_real, relative, fd);
  }
  return openNoFollowWalk(root_fd, relative, fd);
}

void setUseOpenat2ForTest(bool enabled) { use_openat2.store(enabled); }

} // namespace pounce::filters::static_files
