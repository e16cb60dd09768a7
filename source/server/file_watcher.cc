#include "source/server/file_watcher.h"

#include <sys/inotify.h>
#include <unistd.h>

#include <filesystem>

#include "source/common/logger.h"

namespace pounce::server {

namespace {

bool skippedDir(const std::string& name) {
  return name == "__pycache__" || name == ".git" || name == ".hg" || name == ".venv" ||
         name == "venv" || name == "node_modules" || name == ".mypy_cache" ||
         name == ".pytest_cache" || name == ".tox" || (name.size() > 1 && name[0] == '.');
}

constexpr uint32_t kMask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE;

} // namespace

FileWatcher::FileWatcher(std::vector<std::string> dirs, std::vector<std::string> endings)
    : dirs_(std::move(dirs)), endings_(std::move(endings)) {
  fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd_ < 0) {
    POUNCE_LOG(Main, Warning, "reload: inotify unavailable (%s)", std::strerror(errno));
    return;
  }
  for (const auto& d : dirs_) {
    watchTree(d);
  }
}

FileWatcher::~FileWatcher() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

void FileWatcher::watchTree(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return;
  }
  const int wd = inotify_add_watch(fd_, dir.c_str(), kMask);
  if (wd >= 0) {
    watches_[wd] = dir;
  }
  for (auto it = std::filesystem::directory_iterator(dir, ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    if (it->is_directory(ec) && !skippedDir(it->path().filename().string())) {
      watchTree(it->path().string());
    }
  }
}

bool FileWatcher::relevant(const std::string& name) const {
  for (const auto& e : endings_) {
    if (name.size() >= e.size() && name.compare(name.size() - e.size(), e.size(), e) == 0) {
      return true;
    }
  }
  return false;
}

std::string FileWatcher::poll() {
  if (fd_ < 0) {
    return "";
  }
  std::string changed;
  alignas(inotify_event) char buf[16384];
  while (true) {
    const ssize_t n = ::read(fd_, buf, sizeof(buf));
    if (n <= 0) {
      break;
    }
    for (char* p = buf; p < buf + n;) {
      auto* ev = reinterpret_cast<inotify_event*>(p);
      p += sizeof(inotify_event) + ev->len;
      const std::string name = ev->len > 0 ? std::string(ev->name) : "";
      auto dir = watches_.find(ev->wd);
      const std::string path = dir == watches_.end() ? name : dir->second + "/" + name;
      if ((ev->mask & IN_ISDIR) != 0) {
        if ((ev->mask & (IN_CREATE | IN_MOVED_TO)) != 0 && !skippedDir(name)) {
          watchTree(path);
        }
        continue;
      }
      if (changed.empty() && relevant(name)) {
        changed = path;
      }
    }
  }
  return changed;
}

} // namespace pounce::server
