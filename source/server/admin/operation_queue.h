#pragma once

#include <deque>
#include <functional>
#include <memory>

namespace pounce::server::admin {

// Runs operations one at a time, in order: each gets a `done` to call (now or later, once)
// when it finished, and the next one starts then. Single-threaded (the main thread).
class OperationQueue {
public:
  using Operation = std::function<void(std::function<void()> done)>;

  void push(Operation operation) {
    queue_.push_back(std::move(operation));
    if (!running_) {
      runNext();
    }
  }
  bool busy() const { return running_; }

private:
  void runNext() {
    while (!queue_.empty()) {
      Operation next = std::move(queue_.front());
      queue_.pop_front();
      running_ = true;
      struct Step {
        bool returned{false};
        bool finished_inline{false};
      };
      auto step = std::make_shared<Step>();
      next([this, step] {
        if (!step->returned) {
          step->finished_inline = true; // done before returning: the loop goes on
          return;
        }
        running_ = false;
        runNext();
      });
      step->returned = true;
      if (!step->finished_inline) {
        return;
      }
      running_ = false;
    }
  }

  std::deque<Operation> queue_;
  bool running_{false};
};

} // namespace pounce::server::admin
