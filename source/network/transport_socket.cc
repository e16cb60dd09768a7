#include "source/network/transport_socket.h"

#include <sys/sendfile.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>

namespace pounce::network {

IoResult RawTransportSocket::doRead(Buffer& buffer, uint64_t max_bytes) {
  IoResult result;
  const int fd = callbacks_->fd();
  while (true) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(max_bytes, 16384));
    char* p = buffer.reserve(want);
    const ssize_t n = ::read(fd, p, want);
    if (n > 0) {
      buffer.commit(static_cast<size_t>(n));
      result.bytes += static_cast<uint64_t>(n);
      max_bytes -= static_cast<uint64_t>(n);
      // A short read means the socket is drained for now (edge-triggered readiness will
      // fire again on new data), so no extra read(2) just to see EAGAIN.
      if (static_cast<size_t>(n) < want || max_bytes == 0) {
        return result;
      }
      continue;
    }
    buffer.commit(0);
    if (n == 0) {
      result.end_stream = true;
      return result;
    }
    if (errno == EINTR) {
      continue;
    }
    if (errno == EAGAIN) {
      result.would_block = true;
      return result;
    }
    result.action = IoResult::Action::Close;
    return result;
  }
}

IoResult RawTransportSocket::doWrite(OutputQueue& queue) {
  IoResult result;
  const int fd = callbacks_->fd();
  while (!queue.empty()) {
    OutputQueue::Segment& first = queue.segment(0);
    ssize_t n;
    if (first.isFile()) {
      off_t offset = static_cast<off_t>(first.offset);
      n = ::sendfile(fd, first.file->fd(), &offset,
                     static_cast<size_t>(std::min<uint64_t>(first.file_length, 1 << 30)));
      if (n == 0) {
        // The file shrank under us: nothing more can be sent for this response.
        result.action = IoResult::Action::Close;
        return result;
      }
    } else {
      iovec iov[16];
      int count = 0;
      for (size_t i = 0; i < queue.segmentCount() && count < 16; ++i) {
        OutputQueue::Segment& s = queue.segment(i);
        if (s.isFile()) {
          break;
        }
        iov[count].iov_base = const_cast<char*>(s.bytes.data());
        iov[count].iov_len = s.bytes.length();
        ++count;
      }
      n = count == 1 ? ::write(fd, iov[0].iov_base, iov[0].iov_len) : ::writev(fd, iov, count);
    }
    if (n > 0) {
      queue.drained(static_cast<uint64_t>(n));
      result.bytes += static_cast<uint64_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && errno == EAGAIN) {
      result.would_block = true;
      return result;
    }
    result.action = IoResult::Action::Close;
    return result;
  }
  return result;
}

} // namespace pounce::network
