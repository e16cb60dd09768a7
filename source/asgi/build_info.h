#pragma once

#include <string>

namespace pounce::asgi {

// "CPython 3.11.2 (GIL)" or "CPython 3.13.0 (free-threaded)", from the headers pounce was
// built against; does not start the interpreter.
std::string pythonBuildInfo();
bool pythonFreeThreaded();

// Calls the functions apps registered with Python's `atexit` (logging's flush, tracing
// exporters...), as a Python process does when it exits, and flushes sys.stdout and
// sys.stderr. Nothing when no app was loaded. The interpreter itself is not finalised: a
// server's exit must not wait on threads an app left running.
void runPythonExitHandlers();

// Runs runPythonExitHandlers() when it goes out of scope: declared before the server's
// objects, it runs after they are gone (and with them the apps' lifespan shutdowns).
class PythonExitHandlers {
public:
  PythonExitHandlers() = default;
  PythonExitHandlers(const PythonExitHandlers&) = delete;
  PythonExitHandlers& operator=(const PythonExitHandlers&) = delete;
  ~PythonExitHandlers() { runPythonExitHandlers(); }
};

} // namespace pounce::asgi
