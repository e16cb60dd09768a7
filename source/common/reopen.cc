#include "source/common/reopen.h"

#include <mutex>

namespace pounce {
namespace {

struct Hooks {
  std::mutex lock;
  std::vector<ReopenHook> hooks;
};

Hooks& hooks() {
  static Hooks* h = new Hooks; // (never destroyed: hooks may run during exit)
  return *h;
}

} // namespace

void addReopenHook(ReopenHook hook) {
  Hooks& h = hooks();
  std::lock_guard<std::mutex> lock(h.lock);
  h.hooks.push_back(std::move(hook));
}

std::vector<std::string> reopenFiles() {
  std::vector<ReopenHook> run;
  {
    Hooks& h = hooks();
    std::lock_guard<std::mutex> lock(h.lock);
    run = h.hooks;
  }
  std::vector<std::string> problems;
  for (const auto& hook : run) {
    for (auto& p : hook()) {
      problems.push_back(std::move(p));
    }
  }
  return problems;
}

} // namespace pounce
