#include "source/filters/static_files/file_cache.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>

namespace pounce::filters::static_files {

namespace {

bool sameFile(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino && a.st_size == b.st_size &&
         a.st_mode == b.st_mode && a.st_mtim.tv_sec == b.st_mtim.tv_sec &&
         a.st_mtim.tv_nsec == b.st_mtim.tv_nsec && a.st_ctim.tv_sec == b.st_ctim.tv_sec &&
         a.st_ctim.tv_nsec == b.st_ctim.tv_nsec;
}

// Whether `st` changed so recently (or, by a clock that disagrees, in the future) that
// another change in the same tick of the file system's clock could still follow unseen.
bool changedRecently(const struct stat& st, SystemTime wall) {
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(wall.time_since_epoch());
  const auto latest = std::max(st.st_mtim.tv_sec, st.st_ctim.tv_sec);
  return now.count() - latest < FileCache::kRacySeconds;
}

// The whole of a regular file of `size` bytes, or null when it cannot be read as one
// (it changed size under us, or a read failed).
std::shared_ptr<const std::string> readWhole(int fd, size_t size) {
  auto bytes = std::make_shared<std::string>(size, '\0');
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::pread(fd, bytes->data() + done, size - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return nullptr;
    }
    done += static_cast<size_t>(n);
  }
  return bytes;
}

} // namespace

OpenedFile openFile(int root_fd, const std::string& root_real, const std::string& relative,
                    bool follow_symlinks) {
  OpenedFile out;
  int fd = -1;
  out.result = openBeneath(root_fd, root_real, relative, follow_symlinks, fd);
  if (fd >= 0) {
    out.handle = std::make_shared<FileHandle>(fd); // closes it whatever happens next
  }
  if (out.result == OpenResult::Ok && ::fstat(fd, &out.st) != 0) {
    out.result = OpenResult::NotFound;
  }
  if (out.result != OpenResult::Ok) {
    out.handle.reset();
  }
  return out;
}

OpenedFile FileCache::load(int root_fd, const std::string& root_real, const std::string& relative,
                           bool follow_symlinks, const OpenedFile* previous) const {
  OpenedFile out = openFile(root_fd, root_real, relative, follow_symlinks);
  if (out.result != OpenResult::Ok) {
    return out;
  }
  if (previous != nullptr && previous->result == OpenResult::Ok && sameFile(previous->st, out.st)) {
    return *previous; // the same file: its descriptor and bytes are still good
  }
  if (S_ISREG(out.st.st_mode) &&
      static_cast<uint64_t>(out.st.st_size) <= settings_.max_file_bytes) {
    out.bytes = readWhole(out.handle->fd(), static_cast<size_t>(out.st.st_size));
    if (out.bytes != nullptr && checking()) {
      out.handle.reset(); // the bytes answer every request; no descriptor is held
    }
  }
  return out;
}

void FileCache::revalidate(Entry& entry, int root_fd, const std::string& root_real,
                           const std::string& relative, bool follow_symlinks,
                           TimeSource& time) const {
  if (!checking()) {
    entry.checked = time.monotonicTime();
  }
  if (entry.file.result == OpenResult::Ok && !entry.racy) {
    // The path still names the file the entry was opened from (below the root, by the
    // rules openBeneath applied then: whatever the path resolves through now, it ends at
    // that same inode, unchanged).
    struct stat st {};
    const int flags = follow_symlinks ? 0 : AT_SYMLINK_NOFOLLOW;
    if (!relative.empty() && ::fstatat(root_fd, relative.c_str(), &st, flags) == 0 &&
        sameFile(st, entry.file.st)) {
      return;
    }
  }
  entry.file =
      load(root_fd, root_real, relative, follow_symlinks, entry.racy ? nullptr : &entry.file);
  entry.racy =
      entry.file.result == OpenResult::Ok && changedRecently(entry.file.st, time.systemTime());
}

bool FileCache::keeps(const OpenedFile& file) const {
  // A remembered miss, directory or large file saves nothing when each request checks it;
  // a failure to open says nothing about the file.
  return file.result != OpenResult::Error &&
         (!checking() || (file.result == OpenResult::Ok && file.bytes != nullptr));
}

OpenedFile FileCache::lookup(size_t mount_index, int root_fd, const std::string& root_real,
                             const std::string& relative, bool follow_symlinks, TimeSource& time) {
  key_.clear();
  key_.append(reinterpret_cast<const char*>(&mount_index), sizeof(mount_index));
  key_ += relative;
  if (auto it = entries_.find(key_); it != entries_.end()) {
    Entry& entry = it->second;
    if (!trusted(entry, time)) {
      revalidate(entry, root_fd, root_real, relative, follow_symlinks, time);
      if (!keeps(entry.file)) {
        OpenedFile file = std::move(entry.file);
        lru_.erase(entry.age);
        entries_.erase(it);
        return file;
      }
    }
    lru_.splice(lru_.begin(), lru_, entry.age);
    return entry.file;
  }
  OpenedFile file = load(root_fd, root_real, relative, follow_symlinks, nullptr);
  if (!keeps(file)) {
    return file;
  }
  if (entries_.size() >= settings_.max_entries && !lru_.empty()) {
    entries_.erase(lru_.back());
    lru_.pop_back();
  }
  lru_.push_front(key_);
  Entry entry{std::move(file), MonotonicTime{}, false, lru_.begin()};
  if (!checking()) {
    entry.checked = time.monotonicTime();
  }
  entry.racy =
      entry.file.result == OpenResult::Ok && changedRecently(entry.file.st, time.systemTime());
  return entries_.emplace(key_, std::move(entry)).first->second.file;
}

uint64_t FileCaches::nextId() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

FileCache& FileCaches::local() {
  // The last set this thread used, by id: ids are never reused, so a stale pointer of a set
  // that is gone is never followed.
  thread_local uint64_t last_id = 0;
  thread_local FileCache* last = nullptr;
  if (last_id == id_) {
    return *last;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  std::unique_ptr<FileCache>& slot = caches_[std::this_thread::get_id()];
  if (slot == nullptr) {
    slot = std::make_unique<FileCache>(settings_);
  }
  last_id = id_;
  last = slot.get();
  return *slot;
}

} // namespace pounce::filters::static_files
