#pragma once

#include <string>
#include <unordered_map>
#include <vector>

namespace pounce::server {

// Recursively watches directories (inotify) for changes to files with given endings.
// Non-blocking: poll() reports whether a relevant change happened since the last call.
class FileWatcher {
public:
  FileWatcher(std::vector<std::string> dirs, std::vector<std::string> endings);
  ~FileWatcher();
  bool ok() const { return fd_ >= 0; }
  // Returns the first changed path since the last call, or "" if none.
  std::string poll();
  const std::vector<std::string>& dirs() const { return dirs_; }

private:
  void watchTree(const std::string& dir);
  bool relevant(const std::string& name) const;

  int fd_{-1};
  std::vector<std::string> dirs_;
  std::vector<std::string> endings_;
  std::unordered_map<int, std::string> watches_;
};

} // namespace pounce::server
