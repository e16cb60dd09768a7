#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "source/common/buffer.h"

namespace pounce {

// An open file shared by the responses that send ranges of it; closed with the last one.
class FileHandle {
public:
  explicit FileHandle(int fd) : fd_(fd) {}
  ~FileHandle();
  FileHandle(const FileHandle&) = delete;
  FileHandle& operator=(const FileHandle&) = delete;
  int fd() const { return fd_; }

private:
  int fd_;
};
using FileHandleSharedPtr = std::shared_ptr<FileHandle>;

// What a connection has yet to write: bytes, and ranges of files that a plain-text
// connection sends with sendfile(2) (a TLS connection reads them through a bounded buffer).
class OutputQueue {
public:
  struct Segment {
    Buffer bytes;
    FileHandleSharedPtr file; // set for a file range
    uint64_t offset{0};
    uint64_t file_length{0};
    bool isFile() const { return file != nullptr; }
    uint64_t length() const { return isFile() ? file_length : bytes.length(); }
  };

  void add(std::string_view bytes) {
    if (bytes.empty()) {
      return;
    }
    tail().add(bytes);
    length_ += bytes.size();
  }
  void move(Buffer& data) {
    if (data.empty()) {
      return;
    }
    length_ += data.length();
    tail().move(data);
  }
  // A file range of at most this many bytes is read into the queue at once: one pread plus
  // one write of head and body beats a write and a sendfile (two TCP segments) for small
  // files, as nginx's default (sendfile off) does. Larger ranges go out by sendfile.
  static constexpr uint64_t kInlineFileBytes = 16 * 1024;

  void addFile(FileHandleSharedPtr file, uint64_t offset, uint64_t length) {
    if (length == 0) {
      return;
    }
    if (length <= kInlineFileBytes && readInto(tail(), *file, offset, length)) {
      length_ += length;
      return;
    }
    if (reusable_) {
      segments_.clear();
      reusable_ = false;
    }
    Segment s;
    s.file = std::move(file);
    s.offset = offset;
    s.file_length = length;
    segments_.push_back(std::move(s));
    length_ += length;
  }

  uint64_t length() const { return length_; }
  bool empty() const { return length_ == 0; }

  // Writers walk segments from the front and call drained() with what went out.
  size_t segmentCount() const { return reusable_ ? 0 : segments_.size() - head_; }
  Segment& segment(size_t i) { return segments_[head_ + i]; }
  void drained(uint64_t n);
  void clear() {
    segments_.clear();
    head_ = 0;
    length_ = 0;
    reusable_ = false;
  }

private:
  // Reads exactly `length` bytes at `offset`; false (nothing added) on a short read or an
  // error, and the range is then left to the sendfile path, which reports it.
  static bool readInto(Buffer& out, const FileHandle& file, uint64_t offset, uint64_t length);

  Buffer& tail() {
    if (reusable_) {
      reusable_ = false;
      return segments_[0].bytes;
    }
    if (segmentCount() == 0 || segments_.back().isFile()) {
      if (head_ > 0 && head_ == segments_.size()) {
        segments_.clear();
        head_ = 0;
      }
      segments_.emplace_back();
    }
    return segments_.back().bytes;
  }

  std::vector<Segment> segments_;
  size_t head_{0};
  uint64_t length_{0};
  // segments_ holds one empty segment kept for its buffer's capacity.
  bool reusable_{false};
};

} // namespace pounce
