#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "source/asgi/bridge.h"
#include "source/asgi/python.h"

namespace pounce::asgi {

// What every loop of one app shares: the app callable and settings.
struct AppSettings {
  std::string app_spec;
  std::vector<std::string> middleware;
  std::string root_path;
  bool root_path_in_path{true}; // scope path and raw_path begin with root_path
  bool debug{false};
  enum class Lifespan { Auto, On, Off } lifespan{Lifespan::Auto};
  enum class Loop { Auto, Asyncio, Uvloop } loop{Loop::Auto};
  bool worker_scopes{true};
  std::chrono::milliseconds startup_timeout{60000};
  std::chrono::milliseconds shutdown_timeout{10000};
  uint32_t worker_id{0};
};

// One Python thread running one asyncio event loop (uvloop when available) that serves
// requests handed over by I/O threads, with its own lifespan (ASGI: once per event loop).
class LoopThread {
public:
  // `app` is a strong reference to the (middleware-wrapped) ASGI callable.
  LoopThread(const AppSettings& settings, PyObject* app, uint32_t index);
  ~LoopThread();

  // Starts the thread and waits for lifespan startup and the worker startup scope.
  // Returns the app's failure message if startup failed.
  absl::Status start();
  // Runs lifespan shutdown, stops the loop and joins the thread. Idempotent.
  void stop();

  // Any thread: queue an event for this loop. Returns true when the loop must be woken
  // (its inbox was empty); the caller wakes it with wake(), typically once per batch.
  bool push(InEvent event);
  void wake();
  // I/O threads: push, and wake the loop once the I/O thread's current batch of events is
  // handled (so one wake-up carries every request of the batch).
  void pushFromIoThread(InEvent event, event::Dispatcher& dispatcher);

  uint32_t index() const { return index_; }
  const std::string& loopName() const { return loop_name_; }

  // --- Python thread only (called from the _pounce types). ---
  void drainInbox();
  void flushOutbox();
  void addOut(OutEvent event);
  PyObject* createFuture();
  PyObject* appObject() const { return app_; }
  const AppSettings& settings() const { return settings_; }
  void onAppFinished(AsgiStream& stream, PyObject* exc_type, PyObject* exc_value, PyObject* exc_tb);
  // onAppFinished with the Python error that is set (calling the app, or starting it, failed).
  void appFailedWithCurrentError(AsgiStream& stream);
  void resolveReceive(AsgiStream& stream);
  void failSend(AsgiStream& stream);
  // Cancels the app's task for `stream` after `after`, unless it ends first.
  void scheduleCancel(AsgiStream& stream, std::chrono::nanoseconds after);

private:
  void run();
  bool setUp();
  void tearDown();
  void startRequest(StreamRef stream);
  PyObject* createTask(PyObject* coro); // new reference; nullptr with a Python error
  void signalStarted(absl::Status status);

  const AppSettings settings_; // a copy: loops may outlive the app object at shutdown
  PyObject* app_;
  const uint32_t index_;
  std::thread thread_;
  int efd_{-1};

  std::mutex lock_;
  std::vector<InEvent> inbox_;
  std::vector<InEvent> work_;
  bool wake_pending_{false};
  bool accepting_{true};

  std::mutex start_lock_;
  std::condition_variable start_cv_;
  bool start_done_{false};
  absl::Status start_status_;
  bool stopped_{false};

  // Python state (GIL).
  bool started_{false}; // lifespan and worker startup succeeded (loop thread only)
  std::string loop_name_;
  PyObject* loop_{nullptr};
  PyObject* handle_{nullptr}; // the _pounce.LoopHandle for this thread
  PyObject* create_future_{nullptr};
  PyObject* create_task_{nullptr};
  PyObject* call_soon_{nullptr};
  // Fast path for a Task per request: asyncio.Task called directly with a shared name,
  // used while the loop has no task factory (see createTask()).
  PyObject* task_type_{nullptr};
  PyObject* task_kwargs_{nullptr};
  PyObject* get_task_factory_{nullptr};

  PyObject* flush_cb_{nullptr};
  PyObject* lifespan_{nullptr};
  PyObject* state_{nullptr}; // lifespan state dict (nullptr without lifespan)
  std::vector<std::pair<IoChannel*, std::vector<OutEvent>>> outbox_;
  bool flush_scheduled_{false};
};

// The _pounce module's Python objects and interned names (module.cc).
namespace py {
bool initTypes();
PyObject* newReceive(LoopThread& loop, const StreamRef& stream);
PyObject* newSend(LoopThread& loop, const StreamRef& stream);
PyObject* newRunner(LoopThread& loop, const StreamRef& stream, PyObject* coro);
PyObject* newLoopHandle(LoopThread& loop);
PyObject* buildScope(LoopThread& loop, const AsgiStream& stream, PyObject* state);
PyObject* disconnectMessage();
// The next http.request message (new reference) from the body received so far.
PyObject* takeBodyMessage(LoopThread& loop, AsgiStream& stream);
PyObject* supportModule();
PyObject* clientDisconnectedError();
PyObject* cancelledError();
bool initNames(PyObject* support);
// Speeds up asyncio's per-Task registration (see module.cc). Returns whether it applied.
bool accelerateTaskRegistry();
// Interned method names: "set_result", "set_exception", "done", "cancel".
PyObject* name(const char* which);
// A new future for a receive() call on `stream`, queued behind the calls already waiting.
PyObject* newReceiveWaiter(LoopThread& loop, AsgiStream& stream);
// Hands events to the receive() calls waiting on `stream`, oldest first, while `next` has
// one: next() returns the next message (new reference), nullptr with a Python error set if
// it could not be made (that call gets the error), or kNoEvent. A call that was cancelled
// meanwhile is dropped before `next` is asked, so its event stays for the next call.
inline PyObject* const kNoEvent = Py_None;
template <class Next>
void resolveReceiveWaiters(AsgiStream& stream, Next next);

// WebSocket streams (websocket_module.cc).
PyObject* newWebSocketReceive(LoopThread& loop, const StreamRef& stream);
PyObject* newWebSocketSend(LoopThread& loop, const StreamRef& stream);
PyObject* buildWebSocketScope(LoopThread& loop, const AsgiStream& stream, PyObject* state);
// Hands a waiting receive() the next message, or websocket.disconnect once the stream is over.
void resolveWebSocketReceive(LoopThread& loop, AsgiStream& stream);
// The app of a WebSocket stream returned (or raised): settles the handshake or the
// connection (500 before accept, close 1000 or 1011 after).
void finishWebSocketApp(LoopThread& loop, AsgiStream& stream, PyObject* exc_type,
                        PyObject* exc_value, PyObject* exc_tb);
template <class Next>
void resolveReceiveWaiters(AsgiStream& stream, Next next) {
  auto& waiters = stream.receive_waiters;
  while (!waiters.empty()) {
    PyObject* fut = waiters.front();
    PyObject* done = PyObject_CallMethodNoArgs(fut, name("done"));
    const bool settled = done == nullptr || done == Py_True;
    Py_XDECREF(done);
    PyErr_Clear();
    if (!settled) {
      PyObject* message = next();
      if (message == kNoEvent) {
        return; // nothing to deliver yet
      }
      if (message != nullptr) {
        PyObject* r = PyObject_CallMethodOneArg(fut, name("set_result"), message);
        Py_XDECREF(r);
        Py_DECREF(message);
      } else {
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        PyErr_NormalizeException(&type, &value, &tb);
        if (value != nullptr) {
          PyObject* r = PyObject_CallMethodOneArg(fut, name("set_exception"), value);
          Py_XDECREF(r);
        }
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
      }
      PyErr_Clear();
    }
    waiters.erase(waiters.begin());
    Py_DECREF(fut);
  }
}

} // namespace py

} // namespace pounce::asgi
