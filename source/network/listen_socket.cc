#include "source/network/listen_socket.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "source/common/strings.h"

namespace pounce::network {

namespace {

absl::Status errnoStatus(std::string_view what, const Address& address) {
  const int err = errno;
  std::string hint;
  if (err == EADDRINUSE) {
    hint = " (another process is listening there)";
  } else if (err == EACCES) {
    hint = " (permission denied; ports below 1024 need privileges)";
  } else if (err == EADDRNOTAVAIL) {
    hint = " (no local interface has that address)";
  }
  return absl::UnavailableError(
      cat("cannot ", what, " ", address.asString(), ": ", std::strerror(err), hint));
}

// Is something accepting connections on this Unix socket path?
bool pipeInUse(const Address& address) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return false;
  }
  sockaddr_storage sa;
  const socklen_t len = address.toSockaddr(sa);
  const bool in_use = ::connect(fd, reinterpret_cast<const sockaddr*>(&sa), len) == 0;
  ::close(fd);
  return in_use;
}

} // namespace

absl::Status checkAddressFree(const Address& address) {
  if (!address.isIp() || address.port() == 0) {
    return absl::OkStatus();
  }
  // A probe without SO_REUSEPORT: its bind fails while any socket listens there.
  const int fd = ::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return errnoStatus("create a socket for", address);
  }
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)); // (TIME_WAIT is no owner)
  sockaddr_storage sa;
  const socklen_t sa_len = address.toSockaddr(sa);
  const bool taken =
      ::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sa_len) != 0 && errno == EADDRINUSE;
  ::close(fd);
  if (taken) {
    return absl::UnavailableError(
        cat("cannot listen on ", address.asString(),
            ": a socket already listens there (another process, or another listener or the "
            "admin API of this config)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<int> createListenSocket(const Address& address, int backlog, uint32_t pipe_mode,
                                       bool reuse_port) {
  const int family = address.isPipe() ? AF_UNIX : address.family();
  if (address.isPipe() && address.path().size() > Address::kMaxPipePathBytes) {
    return absl::InvalidArgumentError(
        cat("cannot listen on ", address.asString(), ": the path is ", address.path().size(),
            " bytes; a Unix socket path holds at most ", Address::kMaxPipePathBytes));
  }
  const int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return errnoStatus("create a socket for", address);
  }
  const int one = 1;
  if (address.isPipe()) {
    struct stat st;
    if (::stat(address.path().c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode)) {
        ::close(fd);
        return absl::FailedPreconditionError(
            cat("cannot listen on ", address.asString(), ": the path exists and is not a socket"));
      }
      if (pipeInUse(address)) {
        ::close(fd);
        return absl::UnavailableError(
            cat("cannot listen on ", address.asString(), ": another process is listening there"));
      }
      ::unlink(address.path().c_str()); // stale socket from a previous run
    }
  } else {
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (reuse_port) {
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    }
  }
  sockaddr_storage sa;
  const socklen_t sa_len = address.toSockaddr(sa);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sa_len) != 0) {
    auto status = errnoStatus("bind", address);
    ::close(fd);
    return status;
  }
  if (address.isPipe() && ::chmod(address.path().c_str(), pipe_mode) != 0) {
    auto status = errnoStatus("set the mode of", address);
    ::close(fd);
    return status;
  }
  if (::listen(fd, backlog) != 0) {
    auto status = errnoStatus("listen on", address);
    ::close(fd);
    return status;
  }
  return fd;
}

uint64_t socketFileInode(const Address& address) {
  struct stat st;
  if (!address.isPipe() || ::stat(address.path().c_str(), &st) != 0) {
    return 0;
  }
  return st.st_ino;
}

void removeSocketFile(const Address& address, uint64_t inode) {
  if (address.isPipe() && inode != 0 && socketFileInode(address) == inode) {
    ::unlink(address.path().c_str());
  }
}

bool acceptOutOfResources(int error) {
  return error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM;
}

void pauseAccepting(event::Dispatcher& dispatcher, event::FileEventPtr& accept_event,
                    event::TimerPtr& retry_timer, std::function<void()> restart,
                    std::chrono::milliseconds delay) {
  // (The event may be the one running now: it goes once that callback has returned.)
  dispatcher.defer([old = std::shared_ptr<event::FileEvent>(std::move(accept_event))] {});
  if (retry_timer == nullptr) {
    retry_timer = dispatcher.createTimer(std::move(restart));
  }
  retry_timer->enableTimer(delay);
}

} // namespace pounce::network
