#include "source/common/output_queue.h"

#include <unistd.h>

#include <cerrno>

namespace pounce {

FileHandle::~FileHandle() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

bool OutputQueue::readInto(Buffer& out, const FileHandle& file, uint64_t offset, uint64_t length) {
  char* dst = out.reserve(length);
  uint64_t done = 0;
  while (done < length) {
    const ssize_t n =
        ::pread(file.fd(), dst + done, length - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return false;
    }
    done += static_cast<uint64_t>(n);
  }
  out.commit(length);
  return true;
}

void OutputQueue::drained(uint64_t n) {
  length_ -= std::min(n, length_);
  while (n > 0 && head_ < segments_.size()) {
    Segment& s = segments_[head_];
    const uint64_t len = s.length();
    if (n < len) {
      if (s.isFile()) {
        s.offset += n;
        s.file_length -= n;
      } else {
        s.bytes.drain(n);
      }
      return;
    }
    n -= len;
    s.file.reset();
    s.bytes.clear();
    ++head_;
  }
  if (head_ == segments_.size()) {
    // Everything went out: keep the first segment's buffer for the next response.
    segments_.resize(1);
    segments_[0].bytes.clear();
    segments_[0].file.reset();
    segments_[0].offset = 0;
    segments_[0].file_length = 0;
    head_ = 0;
    reusable_ = true;
  } else if (head_ > 16) {
    segments_.erase(segments_.begin(), segments_.begin() + static_cast<long>(head_));
    head_ = 0;
  }
}

} // namespace pounce
