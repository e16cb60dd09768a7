#pragma once

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>

namespace pounce {

// A byte buffer with cheap removal from the front.
//
// Data is kept contiguous: HTTP messages are small and parsers want one span. Moving a whole
// buffer into an empty one is O(1) (the storage is swapped), which is how request and
// response bodies travel through filter chains without copies. Space reserved for a read
// is not zero-filled.
class Buffer {
public:
  Buffer() = default;
  explicit Buffer(std::string_view data) { add(data); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&& other) noexcept { swap(other); }
  Buffer& operator=(Buffer&& other) noexcept {
    if (this != &other) {
      freeStorage();
      swap(other);
    }
    return *this;
  }
  ~Buffer() { freeStorage(); }

  size_t length() const { return end_ - start_; }
  bool empty() const { return end_ == start_; }
  // Bytes of storage held (kept by clear(), given up only by destruction or a move).
  size_t capacity() const { return capacity_; }
  const char* data() const { return data_ + start_; }
  std::string_view view() const { return {data(), length()}; }
  std::string toString() const { return std::string(view()); }

  void add(std::string_view bytes) {
    if (bytes.empty()) {
      return;
    }
    ensure(bytes.size());
    std::memcpy(data_ + end_, bytes.data(), bytes.size());
    end_ += bytes.size();
  }
  void add(const void* bytes, size_t n) {
    add(std::string_view(static_cast<const char*>(bytes), n));
  }

  // Appends all of `other`, leaving it empty.
  void move(Buffer& other) {
    if (empty()) {
      // Take its storage (and keep ours for it: no allocation either way).
      start_ = end_ = 0;
      swap(other);
      other.clear();
      return;
    }
    add(other.view());
    other.clear();
  }

  // Moves the first `n` bytes of `other` to the end of this buffer.
  void move(Buffer& other, size_t n) {
    if (n >= other.length()) {
      move(other);
      return;
    }
    add(std::string_view(other.data(), n));
    other.drain(n);
  }

  void drain(size_t n) {
    if (n >= length()) {
      clear();
      return;
    }
    start_ += n;
  }

  // Keeps the storage for reuse.
  void clear() { start_ = end_ = 0; }

  // Space for a read(2) straight into the buffer: returns a pointer to `n` writable bytes at
  // the end; commit() the number actually written.
  char* reserve(size_t n) {
    ensure(n);
    return data_ + end_;
  }
  void commit(size_t n) { end_ += n; }

  void prepend(std::string_view bytes) {
    if (start_ >= bytes.size()) {
      start_ -= bytes.size();
      std::memcpy(data_ + start_, bytes.data(), bytes.size());
      return;
    }
    Buffer copy;
    copy.ensure(bytes.size() + length());
    copy.add(bytes);
    copy.add(view());
    *this = std::move(copy);
  }

  bool operator==(std::string_view other) const { return view() == other; }

private:
  void swap(Buffer& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(start_, other.start_);
    std::swap(end_, other.end_);
    std::swap(capacity_, other.capacity_);
  }
  void freeStorage() {
    std::free(data_);
    data_ = nullptr;
    start_ = end_ = capacity_ = 0;
  }
  // Room for `n` more bytes at the end.
  void ensure(size_t n) {
    if (end_ + n <= capacity_) {
      return;
    }
    const size_t len = length();
    if (start_ > 0 && len + n <= capacity_ && start_ >= len) {
      // Plenty of dead space in front: slide the data down instead of growing.
      std::memmove(data_, data_ + start_, len);
      start_ = 0;
      end_ = len;
      return;
    }
    size_t cap = capacity_ == 0 ? 256 : capacity_ * 2;
    while (cap < len + n) {
      cap *= 2;
    }
    char* fresh = static_cast<char*>(std::malloc(cap));
    if (len > 0) {
      std::memcpy(fresh, data_ + start_, len);
    }
    std::free(data_);
    data_ = fresh;
    capacity_ = cap;
    start_ = 0;
    end_ = len;
  }

  char* data_{nullptr};
  size_t start_{0};
  size_t end_{0};
  size_t capacity_{0};
};

} // namespace pounce
