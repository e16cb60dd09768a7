#include "source/asgi/python.h"

#include <mutex>

#include "source/common/logger.h"
#include "source/common/strings.h"

extern "C" PyObject* PyInit__pounce();

namespace pounce::asgi {

namespace {
std::once_flag g_once;
bool g_started = false;
absl::Status g_start_status;
} // namespace

absl::Status Interpreter::start(const std::vector<std::string>& paths) {
  std::call_once(g_once, [&] {
    if (PyImport_AppendInittab("_pounce", &PyInit__pounce) != 0) {
      g_start_status = absl::InternalError("cannot register the _pounce module");
      return;
    }
    PyConfig config;
    PyConfig_InitPythonConfig(&config);
    // pounce owns the process's signals and command line.
    config.install_signal_handlers = 0;
    config.parse_argv = 0;
    config.buffered_stdio = 0;
    PyStatus status = PyConfig_SetString(&config, &config.program_name, L"pounce");
    if (!PyStatus_Exception(status)) {
      wchar_t* argv[] = {const_cast<wchar_t*>(L"pounce")};
      status = PyConfig_SetArgv(&config, 1, argv);
    }
    if (!PyStatus_Exception(status)) {
      status = Py_InitializeFromConfig(&config);
    }
    PyConfig_Clear(&config);
    if (PyStatus_Exception(status)) {
      g_start_status = absl::InternalError(
          cat("cannot start Python: ", status.err_msg ? status.err_msg : "unknown error"));
      return;
    }
    g_started = true;
    // The main thread holds the GIL after initialisation: hand it back so other threads can
    // take it through GilGuard.
    PyEval_SaveThread();
  });
  if (!g_start_status.ok()) {
    return g_start_status;
  }
  addPaths(paths);
  return absl::OkStatus();
}

bool Interpreter::started() { return g_started; }

void Interpreter::addPaths(const std::vector<std::string>& paths) {
  if (paths.empty()) {
    return;
  }
  GilGuard gil;
  PyObject* sys_path = PySys_GetObject("path"); // borrowed
  if (sys_path == nullptr || !PyList_Check(sys_path)) {
    return;
  }
  // Insert in reverse so the first given ends up first.
  for (auto it = paths.rbegin(); it != paths.rend(); ++it) {
    PyRef p = PyRef::steal(PyUnicode_DecodeFSDefault(it->c_str()));
    if (!p) {
      PyErr_Clear();
      continue;
    }
    const int present = PySequence_Contains(sys_path, p.get());
    if (present == 1) {
      // Move it to the front.
      PyRef index = PyRef::steal(PyObject_CallMethod(sys_path, "index", "O", p.get()));
      if (index) {
        PySequence_DelItem(sys_path, PyLong_AsSsize_t(index.get()));
      }
      PyErr_Clear();
    }
    PyList_Insert(sys_path, 0, p.get());
  }
}

bool Interpreter::freeThreaded() {
#ifdef Py_GIL_DISABLED
  return true;
#else
  return false;
#endif
}

std::string Interpreter::version() {
  return cat(PY_MAJOR_VERSION, ".", PY_MINOR_VERSION, ".", PY_MICRO_VERSION,
             freeThreaded() ? "t" : "");
}

std::string fetchErrorText() {
  PyObject* type = nullptr;
  PyObject* value = nullptr;
  PyObject* tb = nullptr;
  PyErr_Fetch(&type, &value, &tb);
  if (type == nullptr) {
    return "";
  }
  PyErr_NormalizeException(&type, &value, &tb);
  PyRef t = PyRef::steal(type), v = PyRef::steal(value), b = PyRef::steal(tb);
  std::string out;
  PyRef module = PyRef::steal(PyImport_ImportModule("traceback"));
  if (module) {
    PyRef lines = PyRef::steal(PyObject_CallMethod(module.get(), "format_exception", "OOO", t.get(),
                                                   v ? v.get() : Py_None, b ? b.get() : Py_None));
    if (lines) {
      PyRef empty = PyRef::steal(PyUnicode_FromString(""));
      PyRef joined = PyRef::steal(PyUnicode_Join(empty.get(), lines.get()));
      if (joined) {
        const char* s = PyUnicode_AsUTF8(joined.get());
        if (s != nullptr) {
          out = s;
        }
      }
    }
  }
  if (out.empty()) {
    PyErr_Clear();
    PyRef s = PyRef::steal(PyObject_Str(v ? v.get() : t.get()));
    const char* c = s ? PyUnicode_AsUTF8(s.get()) : nullptr;
    out = c != nullptr ? c : "unknown Python error";
  }
  PyErr_Clear();
  while (!out.empty() && out.back() == '\n') {
    out.pop_back();
  }
  return out;
}

void logPythonError(std::string_view context) {
  const std::string text = fetchErrorText();
  POUNCE_LOG(Asgi, Error, "%s\n%s", std::string(context), text);
}

PyObject* internString(const char* s) { return PyUnicode_InternFromString(s); }

} // namespace pounce::asgi

#include "source/asgi/build_info.h"

namespace pounce::asgi {

std::string pythonBuildInfo() {
  return cat("CPython ", PY_VERSION, Interpreter::freeThreaded() ? " (free-threaded)" : " (GIL)");
}

bool pythonFreeThreaded() { return Interpreter::freeThreaded(); }

void runPythonExitHandlers() {
  if (!Interpreter::started()) {
    return;
  }
  GilGuard gil;
  PyRef atexit = PyRef::steal(PyImport_ImportModule("atexit"));
  // (_run_exitfuncs prints a failing function's traceback itself and goes on to the next.)
  PyRef ran =
      atexit ? PyRef::steal(PyObject_CallMethod(atexit.get(), "_run_exitfuncs", nullptr)) : PyRef();
  if (!ran) {
    POUNCE_LOG(Asgi, Error, "cannot run the atexit functions: %s", fetchErrorText());
  }
  for (const char* name : {"stdout", "stderr"}) {
    PyObject* stream = PySys_GetObject(name); // borrowed
    if (stream != nullptr && stream != Py_None) {
      PyRef flushed = PyRef::steal(PyObject_CallMethod(stream, "flush", nullptr));
      PyErr_Clear();
    }
  }
}

} // namespace pounce::asgi

// Under LeakSanitizer: CPython keeps allocations alive until the process exits (interned
// strings, type caches, module state); they are not pounce's leaks. pounce's own code is
// still checked. (LSan looks this function up; it is unused in other builds.)
extern "C" const char* __lsan_default_suppressions() {
  return "leak:libpython3\nleak:_PyObject_\nleak:PyMem_\n";
}
