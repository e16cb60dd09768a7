#pragma once

#include <sys/stat.h>

#include <chrono>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "source/common/output_queue.h"
#include "source/common/time.h"
#include "source/filters/static_files/file_open.h"

namespace pounce::filters::static_files {

// A file looked up below a mount: what opening it gave and, when it was found, the open
// descriptor, its metadata and (when the file cache keeps them) its bytes.
struct OpenedFile {
  OpenResult result{OpenResult::NotFound};
  FileHandleSharedPtr handle;
  struct stat st {};
  std::shared_ptr<const std::string> bytes; // the whole file, or null
};

// Opens `relative` below `root_fd` (see openBeneath) and stats it; the handle is set only
// when the result is Ok. What a request does without the cache.
OpenedFile openFile(int root_fd, const std::string& root_real, const std::string& relative,
                    bool follow_symlinks);

// Remembers files for one I/O thread so that a file asked for again costs at most one
// system call. Two modes, by `validity`:
//
// - 0 (the default): every lookup checks its file with one stat of its path. When the path
//   still names the same file (device, inode, mode, size, modification and change times),
//   the remembered bytes answer the request; otherwise the file is opened and read again.
//   Only files up to `max_file_bytes` are kept, as bytes, without a descriptor; anything
//   else (larger files, directories, lookups that found nothing) is opened as without the
//   cache, as there would be no system call to save. A change on disk is seen at once.
// - over 0: an entry is trusted for `validity` without looking at the disk, then checked as
//   above. Entries keep their descriptor and metadata (as nginx's open_file_cache does),
//   small files' bytes, and lookups that found nothing (a missing pre-compressed sibling
//   then costs no open per request). A file changed on disk is served as it was for at most
//   `validity`.
//
// A file changed within the last kRacySeconds (by its modification or change time, against
// the time of day) is never vouched for by the stat check: a second write in the same tick
// of the file system's clock could leave every field the check compares unchanged. Such an
// entry is opened and read again at each check until the file has been quiet for that long.
//
// At most `max_entries` are kept; the least recently used goes first.
//
// Used from one thread only; FileCaches hands each thread its own.
class FileCache {
public:
  struct Settings {
    uint32_t max_entries{1000};
    uint64_t max_file_bytes{16 * 1024};
    std::chrono::nanoseconds validity{0};
  };
  static constexpr int kRacySeconds = 2;
  explicit FileCache(const Settings& settings) : settings_(settings) {}

  // The file `relative` below `root_fd` (see openBeneath), from the cache while its entry is
  // trusted (or its path still names the same file). `time` is read only when needed: the
  // monotonic clock for a validity over 0, the time of day after a file was (re)loaded.
  // `mount_index` tells mounts apart in the cache's keys.
  OpenedFile lookup(size_t mount_index, int root_fd, const std::string& root_real,
                    const std::string& relative, bool follow_symlinks, TimeSource& time);

  size_t size() const { return entries_.size(); }

private:
  struct Entry {
    OpenedFile file;
    MonotonicTime checked;                // kept only when validity is over 0
    bool racy{false};                     // changed too recently for the stat check to vouch for it
    std::list<std::string>::iterator age; // position in lru_
  };
  // Opens and stats the file; keeps `previous` (its bytes) when it is the same file.
  OpenedFile load(int root_fd, const std::string& root_real, const std::string& relative,
                  bool follow_symlinks, const OpenedFile* previous) const;
  // Brings `entry` up to date: one stat when that shows the same file, else a load.
  void revalidate(Entry& entry, int root_fd, const std::string& root_real,
                  const std::string& relative, bool follow_symlinks, TimeSource& time) const;
  bool trusted(const Entry& entry, TimeSource& time) const {
    return !checking() && time.monotonicTime() - entry.checked < settings_.validity;
  }
  // Validity 0: every lookup checks its file.
  bool checking() const { return settings_.validity.count() == 0; }
  // Whether `file` is worth an entry.
  bool keeps(const OpenedFile& file) const;

  const Settings settings_;
  std::unordered_map<std::string, Entry> entries_;
  std::list<std::string> lru_; // keys, most recently used first
  std::string key_;            // scratch for building a key
};

// One FileCache per I/O thread for one config. The caches live as long as the config;
// each thread finds its own without a lock after its first lookup.
class FileCaches {
public:
  explicit FileCaches(const FileCache::Settings& settings) : settings_(settings) {}

  // This thread's cache.
  FileCache& local();

private:
  static uint64_t nextId();

  const FileCache::Settings settings_;
  const uint64_t id_{
      nextId()}; // tells this set from any other, also a later one at the same address
  std::mutex mutex_;
  std::unordered_map<std::thread::id, std::unique_ptr<FileCache>> caches_;
};

} // namespace pounce::filters::static_files
