#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "source/asgi/loop_thread.h"

namespace pounce::asgi {

// One configured ASGI app: the imported (and middleware-wrapped) callable and the Python
// threads whose event loops serve it. Shared by every stream of the chains that use it;
// the last reference (a swapped-out chain's last stream, or server exit) shuts the loops
// down: lifespan shutdown, then the threads end.
class AsgiApp {
public:
  struct Options {
    AppSettings settings;
    std::vector<std::string> paths; // put first on sys.path
    uint32_t threads{1};
    bool validate_only{false};
  };
  // Imports the app (errors carry the Python message and traceback) and, unless
  // validating, starts the loops and waits for lifespan startup.
  static absl::StatusOr<std::shared_ptr<AsgiApp>> create(Options options);
  ~AsgiApp();

  // The loop that serves requests from the calling I/O thread.
  LoopThread& pick();
  const AppSettings& settings() const { return options_.settings; }
  size_t loopCount() const { return loops_.size(); }
  const std::string& loopName() const;

private:
  explicit AsgiApp(Options options) : options_(std::move(options)) {}
  void shutdown();

  Options options_;
  PyObject* app_{nullptr};
  std::vector<std::unique_ptr<LoopThread>> loops_;
  std::atomic<uint32_t> next_{0};
};

// Imports the embedded _pounce_support module once per process (GIL held).
PyObject* supportModule();

} // namespace pounce::asgi
