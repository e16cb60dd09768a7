#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "source/common/event/dispatcher.h"

namespace pounce::server::admin {

// Watches a config file and calls `on_change` when its content changed (watch_config).
//
// It watches the file's directory (inotify), not the file: editors replace files by
// renaming, and a Kubernetes ConfigMap volume updates by swapping a `..data` symlink in
// that directory, so the file's own inode never sees an event. After any event in the
// directory and a quiet period, the file is read again and compared with what was last
// seen: only a different content counts.
class ConfigWatcher {
public:
  ConfigWatcher(event::Dispatcher& dispatcher, std::string path, std::function<void()> on_change,
                std::chrono::milliseconds quiet = std::chrono::milliseconds(250));
  ~ConfigWatcher();
  bool ok() const { return fd_ >= 0; }

private:
  void onEvents();
  void check();
  std::string read() const;

  event::Dispatcher& dispatcher_;
  std::string path_;
  std::function<void()> on_change_;
  std::chrono::milliseconds quiet_;
  int fd_{-1};
  event::FileEventPtr file_event_;
  event::TimerPtr timer_;
  std::string content_;
};

} // namespace pounce::server::admin
