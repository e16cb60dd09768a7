#pragma once

// The one place that owns the rules of the Python/C boundary:
// - PyRef holds a strong reference and releases it exactly once (move-only).
// - GilGuard is the only code that attaches a thread to the interpreter (PyGILState_*);
//   on a free-threaded build it attaches the thread state the same way.
// - The interpreter is initialised once per process by Interpreter::start() on the main
//   thread, which then releases the GIL; every other entry into Python goes through a
//   GilGuard.

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace pounce::asgi {

class PyRef {
public:
  PyRef() = default;
  // Takes ownership of a new reference (may be null).
  static PyRef steal(PyObject* o) { return PyRef(o); }
  // Adds a reference to a borrowed one.
  static PyRef borrow(PyObject* o) {
    Py_XINCREF(o);
    return PyRef(o);
  }
  PyRef(const PyRef&) = delete;
  PyRef& operator=(const PyRef&) = delete;
  PyRef(PyRef&& other) noexcept : o_(std::exchange(other.o_, nullptr)) {}
  PyRef& operator=(PyRef&& other) noexcept {
    if (this != &other) {
      Py_XDECREF(o_);
      o_ = std::exchange(other.o_, nullptr);
    }
    return *this;
  }
  ~PyRef() { Py_XDECREF(o_); }

  PyObject* get() const { return o_; }
  // Gives the reference away (for APIs that steal).
  PyObject* release() { return std::exchange(o_, nullptr); }
  explicit operator bool() const { return o_ != nullptr; }
  void reset() { Py_CLEAR(o_); }

private:
  explicit PyRef(PyObject* o) : o_(o) {}
  PyObject* o_{nullptr};
};

// Attaches the calling thread to the interpreter for the guard's lifetime.
class GilGuard {
public:
  GilGuard() : state_(PyGILState_Ensure()) {}
  ~GilGuard() { PyGILState_Release(state_); }
  GilGuard(const GilGuard&) = delete;
  GilGuard& operator=(const GilGuard&) = delete;

private:
  PyGILState_STATE state_;
};

// Releases the GIL for a blocking section on a thread that holds it.
class GilRelease {
public:
  GilRelease() : save_(PyEval_SaveThread()) {}
  ~GilRelease() { PyEval_RestoreThread(save_); }
  GilRelease(const GilRelease&) = delete;
  GilRelease& operator=(const GilRelease&) = delete;

private:
  PyThreadState* save_;
};

class Interpreter {
public:
  // Initialises CPython once (idempotent). `paths` go first on sys.path. After this the
  // main thread does not hold the GIL.
  static absl::Status start(const std::vector<std::string>& paths);
  static bool started();
  // Adds directories to the front of sys.path (takes the GIL).
  static void addPaths(const std::vector<std::string>& paths);
  // Finalisation is left to process exit: app threads may still hold objects.
  static bool freeThreaded();
  static std::string version();
};

// The pending Python exception as "Type: message\n<traceback>", clearing it.
std::string fetchErrorText();
// Logs the pending Python exception (with traceback) at error level, clearing it.
void logPythonError(std::string_view context);

PyObject* internString(const char* s);

} // namespace pounce::asgi
