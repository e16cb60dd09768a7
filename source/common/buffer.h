#pragma once

#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>

namespace pounce {

// A byte buffer with cheap removal from the front.
//
// Data is kept contiguous: HTTP messages are small and parsers want one span. Moving a whole
// buffer into an empty one is O(1) (the storage is swapped), which is how request and
// response bodies travel through filter chains without copies.
class Buffer {
public:
  Buffer() = default;
  explicit Buffer(std::string_view data) : data_(data) {}
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&& other) noexcept : data_(std::move(other.data_)), start_(other.start_) {
    other.data_.clear();
    other.start_ = 0;
  }
  Buffer& operator=(Buffer&& other) noexcept {
    data_ = std::move(other.data_);
    start_ = other.start_;
    other.data_.clear();
    other.start_ = 0;
    return *this;
  }

  size_t length() const { return data_.size() - start_; }
  bool empty() const { return length() == 0; }
  const char* data() const { return data_.data() + start_; }
  std::string_view view() const { return {data(), length()}; }
  std::string toString() const { return std::string(view()); }

  void add(std::string_view bytes) {
    if (start_ == data_.size() && start_ != 0) {
      clear();
    }
    data_.append(bytes.data(), bytes.size());
  }
  void add(const void* bytes, size_t n) { add(std::string_view(static_cast<const char*>(bytes), n)); }

  // Appends all of `other`, leaving it empty.
  void move(Buffer& other) {
    if (empty()) {
      std::swap(data_, other.data_);
      std::swap(start_, other.start_);
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
    // Compact when the dead prefix dominates, so a long-lived buffer does not grow forever.
    if (start_ > 65536 && start_ > data_.size() / 2) {
      data_.erase(0, start_);
      start_ = 0;
    }
  }

  void clear() {
    data_.clear();
    start_ = 0;
  }

  // Space for a read(2) straight into the buffer: returns a pointer to `n` writable bytes at
  // the end; commit() the number actually written.
  char* reserve(size_t n) {
    if (start_ == data_.size() && start_ != 0) {
      clear();
    }
    reserved_from_ = data_.size();
    data_.resize(reserved_from_ + n);
    return data_.data() + reserved_from_;
  }
  void commit(size_t n) { data_.resize(reserved_from_ + n); }

  // Gives the storage away (for handing a body to another owner without a copy).
  std::string release() {
    if (start_ != 0) {
      data_.erase(0, start_);
    }
    start_ = 0;
    std::string out;
    std::swap(out, data_);
    return out;
  }

  void prepend(std::string_view bytes) {
    if (start_ >= bytes.size()) {
      start_ -= bytes.size();
      std::memcpy(data_.data() + start_, bytes.data(), bytes.size());
      return;
    }
    data_.insert(start_, bytes.data(), bytes.size());
  }

  bool operator==(std::string_view other) const { return view() == other; }

private:
  std::string data_;
  size_t start_{0};
  size_t reserved_from_{0};
};

} // namespace pounce
