#include "source/server/admin/config_watcher.h"

#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "source/common/logger.h"

namespace pounce::server::admin {

ConfigWatcher::ConfigWatcher(event::Dispatcher& dispatcher, std::string path,
                             std::function<void()> on_change, std::chrono::milliseconds quiet)
    : dispatcher_(dispatcher), path_(std::move(path)), on_change_(std::move(on_change)),
      quiet_(quiet) {
  fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd_ < 0) {
    POUNCE_LOG(Config, Warning, "watch_config: inotify unavailable (%s)", std::strerror(errno));
    return;
  }
  std::string dir = std::filesystem::path(path_).parent_path().string();
  if (dir.empty()) {
    dir = ".";
  }
  constexpr uint32_t kMask =
      IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ATTRIB | IN_MODIFY;
  if (inotify_add_watch(fd_, dir.c_str(), kMask) < 0) {
    POUNCE_LOG(Config, Warning, "watch_config: cannot watch %s (%s)", dir, std::strerror(errno));
    ::close(fd_);
    fd_ = -1;
    return;
  }
  content_ = read();
  timer_ = dispatcher_.createTimer([this] { check(); });
  file_event_ = dispatcher_.createFileEvent(
      fd_, [this](uint32_t) { onEvents(); }, /*edge=*/false, event::FileReadyType::Read);
  POUNCE_LOG(Config, Info, "watch_config: reloading when %s changes", path_);
}

ConfigWatcher::~ConfigWatcher() {
  file_event_.reset();
  timer_.reset();
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

void ConfigWatcher::onEvents() {
  alignas(inotify_event) char buf[8192];
  while (::read(fd_, buf, sizeof(buf)) > 0) {
  }
  // Wait for the writer to finish (a ConfigMap swap is several renames).
  timer_->enableTimer(quiet_);
}

std::string ConfigWatcher::read() const {
  std::ifstream in(path_);
  if (!in) {
    return "";
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void ConfigWatcher::check() {
  std::string now = read();
  if (now.empty() || now == content_) {
    return; // gone for a moment (mid-swap), or unchanged
  }
  content_ = std::move(now);
  POUNCE_LOG(Config, Info, "watch_config: %s changed", path_);
  on_change_();
}

} // namespace pounce::server::admin
