#include "source/asgi/app.h"

#include <signal.h>

#include <cstring>
#include <thread>

#include "source/common/logger.h"
#include "source/common/server_context.h"
#include "source/common/strings.h"

namespace pounce::asgi {

extern const char kSupportPy[];

PyObject* supportModule() {
  static PyObject* module = [] {
    PyRef code = PyRef::steal(Py_CompileString(kSupportPy, "<pounce support>", Py_file_input));
    if (!code) {
      logPythonError("cannot compile pounce's Python support code");
      return static_cast<PyObject*>(nullptr);
    }
    PyObject* m = PyImport_ExecCodeModule("_pounce_support", code.get());
    if (m == nullptr) {
      logPythonError("cannot load pounce's Python support code");
      return static_cast<PyObject*>(nullptr);
    }
    // Importing _pounce readies its types (PyInit__pounce).
    PyRef native = PyRef::steal(PyImport_ImportModule("_pounce"));
    if (!native || !py::initNames(m)) {
      logPythonError("cannot initialise the _pounce module");
      return static_cast<PyObject*>(nullptr);
    }
    if (py::accelerateTaskRegistry()) {
      POUNCE_LOG(Asgi, Debug, "asyncio task registry: C add installed");
    }
    return m;
  }();
  return module;
}

namespace {

// The process's signals are pounce's (SIGTERM drains, SIGHUP reloads...). An app imported
// on the main thread may install handlers of its own with signal.signal(); Python's
// handler only sets a flag for a main thread that never runs Python here, so such an
// import (a chain swap, a reload) would leave pounce deaf to SIGTERM. Every disposition
// the import changed is put back, with a warning.
class KeepSignalDispositions {
public:
  explicit KeepSignalDispositions(std::string app) : app_(std::move(app)) {
    for (int sig = 1; sig < kSignals; ++sig) {
      saved_ok_[sig] = ::sigaction(sig, nullptr, &saved_[sig]) == 0;
    }
  }
  ~KeepSignalDispositions() {
    for (int sig = 1; sig < kSignals; ++sig) {
      struct sigaction now {};
      if (!saved_ok_[sig] || ::sigaction(sig, nullptr, &now) != 0 ||
          (now.sa_handler == saved_[sig].sa_handler && now.sa_flags == saved_[sig].sa_flags)) {
        continue;
      }
      ::sigaction(sig, &saved_[sig], nullptr);
      POUNCE_LOG(Asgi, Warning,
                 "app %s set a handler for signal %d (%s) when imported; pounce handles the "
                 "process's signals, so it is not used",
                 app_, sig, strsignal(sig));
    }
  }
  KeepSignalDispositions(const KeepSignalDispositions&) = delete;
  KeepSignalDispositions& operator=(const KeepSignalDispositions&) = delete;

private:
  static constexpr int kSignals = 32; // the standard signals; real-time ones are not used
  std::string app_;
  struct sigaction saved_[kSignals] {};
  bool saved_ok_[kSignals] = {};
};

} // namespace

absl::StatusOr<std::shared_ptr<AsgiApp>> AsgiApp::create(Options options) {
  auto status = Interpreter::start(options.paths);
  if (!status.ok()) {
    return status;
  }
  Interpreter::addPaths(options.paths);
  std::shared_ptr<AsgiApp> app(new AsgiApp(std::move(options)));
  {
    GilGuard gil;
    PyObject* support = supportModule();
    if (support == nullptr) {
      return absl::InternalError("pounce's Python support code failed to load (see the log)");
    }
    PyRef middleware = PyRef::steal(PyList_New(0));
    for (const auto& m : app->options_.settings.middleware) {
      PyRef s = PyRef::steal(PyUnicode_FromString(m.c_str()));
      PyList_Append(middleware.get(), s.get());
    }
    PyObject* loaded = nullptr;
    {
      KeepSignalDispositions keep(app->options_.settings.app_spec);
      loaded = PyObject_CallMethod(support, "load_app", "sO",
                                   app->options_.settings.app_spec.c_str(), middleware.get());
    }
    if (loaded == nullptr) {
      PyObject *t, *v, *tb;
      PyErr_Fetch(&t, &v, &tb);
      PyErr_NormalizeException(&t, &v, &tb);
      PyRef error_type = PyRef::steal(PyObject_GetAttrString(support, "AppLoadError"));
      if (error_type && PyErr_GivenExceptionMatches(t, error_type.get())) {
        PyRef text = PyRef::steal(PyObject_Str(v));
        const char* c = text ? PyUnicode_AsUTF8(text.get()) : nullptr;
        std::string message = c != nullptr ? c : "cannot load the app";
        Py_XDECREF(t);
        Py_XDECREF(v);
        Py_XDECREF(tb);
        PyErr_Clear();
        return absl::InvalidArgumentError(cat("app: ", message));
      }
      PyErr_Restore(t, v, tb);
      return absl::InvalidArgumentError(cat("app: importing '", app->options_.settings.app_spec,
                                            "' raised:\n", fetchErrorText()));
    }
    app->app_ = loaded;
  }
  if (app->options_.validate_only) {
    return app;
  }
  const uint32_t threads = std::max<uint32_t>(1, app->options_.threads);
  for (uint32_t i = 0; i < threads; ++i) {
    app->loops_.push_back(std::make_unique<LoopThread>(app->options_.settings, app->app_, i));
  }
  for (auto& loop : app->loops_) {
    auto started = loop->start();
    if (!started.ok()) {
      return absl::FailedPreconditionError(
          cat("app '", app->options_.settings.app_spec, "': ", started.message()));
    }
  }
  POUNCE_LOG(Asgi, Info, "app %s ready on %d %s loop%s", app->options_.settings.app_spec,
             app->loops_.size(), app->loopName(), app->loops_.size() == 1 ? "" : "s");
  return app;
}

const std::string& AsgiApp::loopName() const {
  static const std::string none = "no";
  return loops_.empty() ? none : loops_[0]->loopName();
}

LoopThread& AsgiApp::pick() {
  if (loops_.size() == 1) {
    return *loops_[0];
  }
  const int io = currentIoThread();
  const uint32_t i = io >= 0 ? static_cast<uint32_t>(io) : next_.fetch_add(1);
  return *loops_[i % loops_.size()];
}

void AsgiApp::shutdown() {
  for (auto& loop : loops_) {
    loop->stop();
  }
  loops_.clear();
  if (app_ != nullptr && Interpreter::started()) {
    GilGuard gil;
    Py_CLEAR(app_);
  }
}

AsgiApp::~AsgiApp() {
  if (currentIoThread() < 0) {
    shutdown();
    return;
  }
  // The last stream of a swapped-out chain ended on an I/O thread: never block it on a
  // lifespan shutdown; finish on a thread of its own.
  auto loops = std::make_shared<std::vector<std::unique_ptr<LoopThread>>>(std::move(loops_));
  PyObject* app = app_;
  app_ = nullptr;
  std::thread([loops, app] {
    for (auto& loop : *loops) {
      loop->stop();
    }
    loops->clear();
    GilGuard gil;
    Py_XDECREF(app);
  }).detach();
}

} // namespace pounce::asgi
