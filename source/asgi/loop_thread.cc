#include "source/asgi/loop_thread.h"

#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>

#include "source/common/logger.h"
#include "source/common/server_context.h"
#include "source/common/strings.h"

namespace pounce::asgi {

namespace {

double seconds(std::chrono::milliseconds ms) { return static_cast<double>(ms.count()) / 1000.0; }

} // namespace

LoopThread::LoopThread(const AppSettings& settings, PyObject* app, uint32_t index)
    : settings_(settings), app_(app), index_(index) {
  efd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

LoopThread::~LoopThread() {
  stop();
  if (efd_ >= 0) {
    ::close(efd_);
  }
}

absl::Status LoopThread::start() {
  // Python threads never take the process's signals: the main thread handles them.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  thread_ = std::thread([this] { run(); });
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  std::unique_lock<std::mutex> lock(start_lock_);
  start_cv_.wait(lock, [this] { return start_done_; });
  return start_status_;
}

void LoopThread::signalStarted(absl::Status status) {
  std::lock_guard<std::mutex> lock(start_lock_);
  start_status_ = std::move(status);
  start_done_ = true;
  start_cv_.notify_all();
}

void LoopThread::stop() {
  {
    std::lock_guard<std::mutex> lock(lock_);
    if (stopped_) {
      return;
    }
    stopped_ = true;
    accepting_ = false;
  }
  if (thread_.joinable()) {
    {
      GilGuard gil;
      if (loop_ != nullptr) {
        PyRef stop = PyRef::steal(PyObject_GetAttrString(loop_, "stop"));
        PyRef r = PyRef::steal(
            stop ? PyObject_CallMethod(loop_, "call_soon_threadsafe", "O", stop.get()) : nullptr);
        if (!r) {
          PyErr_Clear();
        }
      }
    }
    thread_.join();
  }
}

bool LoopThread::push(InEvent event) {
  std::lock_guard<std::mutex> lock(lock_);
  if (!accepting_) {
    return false; // the loop is gone; the stream is answered by the I/O side's own timeout
  }
  inbox_.push_back(std::move(event));
  if (!wake_pending_) {
    wake_pending_ = true;
    return true;
  }
  return false;
}

void LoopThread::wake() {
  const uint64_t one = 1;
  ssize_t rc = ::write(efd_, &one, sizeof(one));
  (void)rc;
}

namespace {

// Loops an I/O thread has queued events for during its current batch.
struct PendingWakes {
  std::vector<LoopThread*> loops;
  bool scheduled{false};
};
thread_local PendingWakes t_wakes;

} // namespace

void LoopThread::pushFromIoThread(InEvent event, event::Dispatcher& dispatcher) {
  if (!push(std::move(event))) {
    return;
  }
  t_wakes.loops.push_back(this);
  if (!t_wakes.scheduled) {
    t_wakes.scheduled = true;
    dispatcher.defer([] {
      t_wakes.scheduled = false;
      for (LoopThread* loop : t_wakes.loops) {
        loop->wake();
      }
      t_wakes.loops.clear();
    });
  }
}

void LoopThread::run() {
  pthread_setname_np(pthread_self(), cat("pounce-py-", index_).substr(0, 15).c_str());
  GilGuard gil;
  if (!setUp()) {
    tearDown();
    return;
  }
  PyRef r = PyRef::steal(PyObject_CallMethod(loop_, "run_forever", nullptr));
  if (!r) {
    logPythonError("the ASGI event loop stopped with an error");
  }
  tearDown();
}

bool LoopThread::setUp() {
  PyObject* support = py::supportModule();
  const char* kind = settings_.loop == AppSettings::Loop::Uvloop    ? "uvloop"
                     : settings_.loop == AppSettings::Loop::Asyncio ? "asyncio"
                                                                    : "auto";
  PyRef pair = PyRef::steal(PyObject_CallMethod(support, "new_loop", "s", kind));
  if (!pair) {
    signalStarted(absl::FailedPreconditionError(fetchErrorText()));
    return false;
  }
  loop_ = PyTuple_GetItem(pair.get(), 0);
  Py_INCREF(loop_);
  loop_name_ = PyUnicode_AsUTF8(PyTuple_GetItem(pair.get(), 1));
  PyRef asyncio = PyRef::steal(PyImport_ImportModule("asyncio"));
  PyRef set = PyRef::steal(
      asyncio ? PyObject_CallMethod(asyncio.get(), "set_event_loop", "O", loop_) : nullptr);
  create_future_ = PyObject_GetAttrString(loop_, "create_future");
  create_task_ = PyObject_GetAttrString(loop_, "create_task");
  call_soon_ = PyObject_GetAttrString(loop_, "call_soon");
  get_task_factory_ = PyObject_GetAttrString(loop_, "get_task_factory");
  task_type_ = asyncio ? PyObject_GetAttrString(asyncio.get(), "Task") : nullptr;
  task_kwargs_ = Py_BuildValue("{sOss}", "loop", loop_, "name", "pounce.asgi");

  handle_ = py::newLoopHandle(*this);
  flush_cb_ = handle_ ? PyObject_GetAttrString(handle_, "_flush") : nullptr;
  PyRef drain = PyRef::steal(handle_ ? PyObject_GetAttrString(handle_, "_drain") : nullptr);
  PyRef reader = PyRef::steal(
      drain ? PyObject_CallMethod(loop_, "add_reader", "iO", efd_, drain.get()) : nullptr);
  if (!set || !create_future_ || !create_task_ || !call_soon_ || !get_task_factory_ ||
      !task_type_ || !task_kwargs_ || !flush_cb_ || !reader) {
    signalStarted(absl::InternalError(cat("cannot set up the event loop: ", fetchErrorText())));
    return false;
  }

  if (settings_.lifespan != AppSettings::Lifespan::Off) {
    lifespan_ =
        PyObject_CallMethod(support, "Lifespan", "OsO", app_,
                            settings_.lifespan == AppSettings::Lifespan::On ? "on" : "auto", loop_);
    PyRef coro = PyRef::steal(lifespan_ ? PyObject_CallMethod(lifespan_, "startup", "d",
                                                              seconds(settings_.startup_timeout))
                                        : nullptr);
    PyRef failed = PyRef::steal(
        coro ? PyObject_CallMethod(loop_, "run_until_complete", "O", coro.get()) : nullptr);
    if (!failed) {
      signalStarted(
          absl::FailedPreconditionError(cat("ASGI lifespan startup raised:\n", fetchErrorText())));
      return false;
    }
    if (failed.get() != Py_None) {
      signalStarted(absl::FailedPreconditionError(
          cat("ASGI lifespan startup failed: ", PyUnicode_AsUTF8(failed.get()))));
      return false;
    }
    PyRef supported = PyRef::steal(PyObject_GetAttrString(lifespan_, "supported"));
    if (supported && PyObject_IsTrue(supported.get()) == 1) {
      state_ = PyObject_GetAttrString(lifespan_, "state");
    }
  }
  if (settings_.worker_scopes) {
    PyRef coro = PyRef::steal(PyObject_CallMethod(support, "worker_scope", "OsIId", app_,
                                                  "pounce.worker.startup", settings_.worker_id,
                                                  index_, seconds(settings_.startup_timeout)));
    PyRef note = PyRef::steal(
        coro ? PyObject_CallMethod(loop_, "run_until_complete", "O", coro.get()) : nullptr);
    if (!note) {
      PyErr_Clear();
    } else if (note.get() != Py_None) {
      POUNCE_LOG(Asgi, Debug, "pounce.worker.startup: %s", PyUnicode_AsUTF8(note.get()));
    }
  }
  started_ = true;
  signalStarted(absl::OkStatus());
  return true;
}

void LoopThread::tearDown() {
  if (loop_ != nullptr) {
    PyRef r = PyRef::steal(PyObject_CallMethod(loop_, "remove_reader", "i", efd_));
    if (!r) {
      PyErr_Clear();
    }
    {
      // Requests still running (past their listener's shutdown_timeout) are cancelled, so
      // their `finally` blocks and context managers run, rather than abandoned.
      PyRef coro = PyRef::steal(PyObject_CallMethod(py::supportModule(), "cancel_requests", "d",
                                                    seconds(settings_.shutdown_timeout)));
      PyRef count = PyRef::steal(
          coro ? PyObject_CallMethod(loop_, "run_until_complete", "O", coro.get()) : nullptr);
      if (!count) {
        logPythonError("cancelling the running ASGI requests at shutdown raised");
      } else if (PyLong_AsLong(count.get()) > 0) {
        POUNCE_LOG(Asgi, Warning, "cancelled %ld ASGI request(s) still running at shutdown",
                   PyLong_AsLong(count.get()));
      }
    }
    // Shutdown answers a startup that succeeded: after a failed one the app gets none (as
    // the ASGI lifespan spec has it), and its startup task was already cancelled.
    if (started_ && settings_.worker_scopes) {
      PyRef coro = PyRef::steal(PyObject_CallMethod(
          py::supportModule(), "worker_scope", "OsIId", app_, "pounce.worker.shutdown",
          settings_.worker_id, index_, seconds(settings_.shutdown_timeout)));
      PyRef note = PyRef::steal(
          coro ? PyObject_CallMethod(loop_, "run_until_complete", "O", coro.get()) : nullptr);
      if (!note) {
        PyErr_Clear();
      }
    }
    if (started_ && lifespan_ != nullptr) {
      PyRef coro = PyRef::steal(
          PyObject_CallMethod(lifespan_, "shutdown", "d", seconds(settings_.shutdown_timeout)));
      PyRef failed = PyRef::steal(
          coro ? PyObject_CallMethod(loop_, "run_until_complete", "O", coro.get()) : nullptr);
      if (!failed) {
        logPythonError("ASGI lifespan shutdown raised");
      } else if (failed.get() != Py_None) {
        POUNCE_LOG(Asgi, Error, "ASGI lifespan shutdown failed: %s",
                   PyUnicode_AsUTF8(failed.get()));
      }
    }
    PyRef closed = PyRef::steal(PyObject_CallMethod(loop_, "close", nullptr));
    if (!closed) {
      PyErr_Clear();
    }
  }
  Py_CLEAR(state_);
  Py_CLEAR(lifespan_);
  Py_CLEAR(flush_cb_);
  Py_CLEAR(handle_);
  Py_CLEAR(call_soon_);

  Py_CLEAR(create_task_);
  Py_CLEAR(get_task_factory_);
  Py_CLEAR(task_type_);
  Py_CLEAR(task_kwargs_);
  Py_CLEAR(create_future_);
  Py_CLEAR(loop_);
  {
    std::lock_guard<std::mutex> lock(lock_);
    accepting_ = false;
    inbox_.clear();
  }
  if (!start_done_) {
    signalStarted(absl::InternalError("the ASGI event loop ended before it started"));
  }
}

PyObject* LoopThread::createFuture() { return PyObject_CallNoArgs(create_future_); }

void LoopThread::drainInbox() {
  uint64_t value;
  ssize_t rc = ::read(efd_, &value, sizeof(value));
  (void)rc;
  {
    std::lock_guard<std::mutex> lock(lock_);
    work_.swap(inbox_);
    wake_pending_ = false;
  }
  for (InEvent& ev : work_) {
    AsgiStream& s = *ev.stream;
    switch (ev.kind) {
    case InEvent::Kind::Request:
      startRequest(std::move(ev.stream));
      break;
    case InEvent::Kind::Body:
      if (!ev.data.empty()) {
        s.body.push_back(std::move(ev.data));
      }
      if (!ev.more) {
        s.body_complete = true;
      }
      resolveReceive(s);
      break;
    case InEvent::Kind::Disconnect:
      s.disconnected = true;
      resolveReceive(s);
      failSend(s);
      if (ev.cancel_after.count() > 0 && !s.response_started && s.task != nullptr &&
          s.cancel_timer == nullptr) {
        // The client left before its answer: request_timeout still bounds the app's work
        // for it, as it would have with the client there (then with a 504).
        scheduleCancel(s, ev.cancel_after);
      }
      break;
    case InEvent::Kind::Cancel:
      if (s.ws != nullptr) {
        s.ws->close_code = ev.code;
      }
      s.disconnected = true;
      resolveReceive(s);
      failSend(s);
      if (s.task != nullptr) {
        PyRef r = PyRef::steal(PyObject_CallMethodNoArgs(s.task, py::name("cancel")));
        if (!r) {
          PyErr_Clear();
        }
      }
      break;
    case InEvent::Kind::WsMessage:
      s.ws->received.push_back(WebSocketStream::Message{std::move(ev.data), ev.more});
      resolveReceive(s);
      break;
    case InEvent::Kind::WsDisconnect:
      s.ws->close_code = ev.code;
      s.ws->close_reason.assign(ev.data.data(), ev.data.length());
      s.disconnected = true;
      resolveReceive(s);
      failSend(s);
      break;
    case InEvent::Kind::Writable:
      if (s.send_future != nullptr) {
        PyObject* fut = s.send_future;
        s.send_future = nullptr;
        PyRef done = PyRef::steal(PyObject_CallMethodNoArgs(fut, py::name("done")));
        if (done && done.get() == Py_False) {
          PyRef r = PyRef::steal(PyObject_CallMethodOneArg(fut, py::name("set_result"), Py_None));
          if (!r) {
            PyErr_Clear();
          }
        }
        PyErr_Clear();
        Py_DECREF(fut);
      }
      break;
    }
  }
  work_.clear();
}

void LoopThread::startRequest(StreamRef stream) {
  AsgiStream& s = *stream;
  s.body_complete = !s.request_has_body;
  const bool ws = s.ws != nullptr;
  PyRef scope = PyRef::steal(ws ? py::buildWebSocketScope(*this, s, state_)
                                : py::buildScope(*this, s, state_));
  PyRef receive = PyRef::steal(!scope ? nullptr
                               : ws   ? py::newWebSocketReceive(*this, stream)
                                      : py::newReceive(*this, stream));
  PyRef send = PyRef::steal(!receive ? nullptr
                            : ws     ? py::newWebSocketSend(*this, stream)
                                     : py::newSend(*this, stream));
  if (!send) {
    logPythonError("cannot build the ASGI scope");
    OutEvent ev;
    ev.kind = OutEvent::Kind::Error;
    ev.stream = stream;
    ev.status = 500;
    addOut(std::move(ev));
    return;
  }
  PyObject* args[3] = {scope.get(), receive.get(), send.get()};
  PyRef coro = PyRef::steal(PyObject_Vectorcall(app_, args, 3, nullptr));
  if (!coro) {
    appFailedWithCurrentError(s);
    return;
  }
  if (!PyCoro_CheckExact(coro.get())) {
    // The app is an async callable: what it returned is awaited. Anything but a coroutine
    // (an object with __await__, a Future, or not awaitable at all, which then raises
    // TypeError as the app's error) goes through a coroutine that awaits it.
    coro = PyRef::steal(PyObject_CallMethod(py::supportModule(), "await_result", "O", coro.get()));
    if (!coro) {
      appFailedWithCurrentError(s);
      return;
    }
  }
  PyRef runner = PyRef::steal(py::newRunner(*this, stream, coro.get()));
  PyRef task = PyRef::steal(runner ? createTask(runner.get()) : nullptr);
  if (!task) {
    appFailedWithCurrentError(s);
    return;
  }
  Py_XDECREF(s.task);
  s.task = task.release();
}

// loop.create_task(coro) on uvloop and asyncio both end in asyncio.Task(coro, loop=loop)
// when no task factory is set; calling the type directly with a prebuilt keyword dict skips
// the loop's wrapper and CPython 3.11's per-task "Task-%d" name formatting (together about
// a tenth of the Python thread's work on a small request). With a factory installed (by the
// app, e.g. in lifespan startup) the loop's create_task is used, so the factory still runs.
PyObject* LoopThread::createTask(PyObject* coro) {
  PyObject* factory = PyObject_CallNoArgs(get_task_factory_);
  if (factory == nullptr) {
    return nullptr;
  }
  const bool plain = factory == Py_None;
  Py_DECREF(factory);
  if (!plain) {
    return PyObject_CallOneArg(create_task_, coro);
  }
  PyRef args = PyRef::steal(PyTuple_Pack(1, coro));
  return args ? PyObject_Call(task_type_, args.get(), task_kwargs_) : nullptr;
}

void LoopThread::appFailedWithCurrentError(AsgiStream& s) {
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  PyErr_NormalizeException(&type, &value, &tb);
  onAppFinished(s, type, value, tb);
  Py_XDECREF(type);
  Py_XDECREF(value);
  Py_XDECREF(tb);
}

void LoopThread::resolveReceive(AsgiStream& s) {
  if (s.receive_waiters.empty()) {
    return;
  }
  if (s.ws != nullptr) {
    py::resolveWebSocketReceive(*this, s);
    return;
  }
  py::resolveReceiveWaiters(s, [this, &s]() -> PyObject* {
    if (!s.body.empty() || (s.body_complete && !s.body_delivered)) {
      return py::takeBodyMessage(*this, s);
    }
    if (s.disconnected || (s.body_delivered && s.response_complete)) {
      return py::disconnectMessage();
    }
    return py::kNoEvent;
  });
}

void LoopThread::failSend(AsgiStream& s) {
  if (s.send_future == nullptr) {
    return;
  }
  PyObject* fut = s.send_future;
  s.send_future = nullptr;
  PyRef done = PyRef::steal(PyObject_CallMethodNoArgs(fut, py::name("done")));
  if (done && done.get() == Py_False) {
    PyRef exc = PyRef::steal(
        PyObject_CallFunction(py::clientDisconnectedError(), "s", "the client disconnected"));
    PyRef r = PyRef::steal(
        exc ? PyObject_CallMethodOneArg(fut, py::name("set_exception"), exc.get()) : nullptr);
    if (!r) {
      PyErr_Clear();
    }
  }
  PyErr_Clear();
  Py_DECREF(fut);
}

void LoopThread::onAppFinished(AsgiStream& s, PyObject* exc_type, PyObject* exc_value,
                               PyObject* exc_tb) {
  if (s.ws != nullptr) {
    py::finishWebSocketApp(*this, s, exc_type, exc_value, exc_tb);
    return;
  }
  s.app_done = true;
  bool quiet = false;
  if (exc_type != nullptr) {
    if (s.disconnected && (PyErr_GivenExceptionMatches(exc_type, py::clientDisconnectedError()) ||
                           PyErr_GivenExceptionMatches(exc_type, py::cancelledError()) ||
                           PyErr_GivenExceptionMatches(exc_type, PyExc_GeneratorExit))) {
      quiet = true; // the client left or the request timed out: not an app error
    }
    if (!quiet) {
      Py_XINCREF(exc_type);
      Py_XINCREF(exc_value);
      Py_XINCREF(exc_tb);
      PyErr_Restore(exc_type, exc_value, exc_tb);
      logPythonError(
          cat("Exception in ASGI application (", s.headers.method(), " ", s.headers.path(), ")"));
    }
    if (!s.response_started) {
      OutEvent ev;
      ev.kind = OutEvent::Kind::Error;
      ev.stream = StreamRef(&s);
      ev.status = 500;
      if (settings_.debug && exc_value != nullptr && !quiet) {
        if (exc_tb != nullptr) {
          PyException_SetTraceback(exc_value, exc_tb);
        }
        PyRef headers = PyRef::steal(PyList_New(0));
        for (size_t i = 0; headers && i < s.headers.size(); ++i) {
          const auto n = s.headers.nameAt(i);
          const auto v = s.headers.valueAt(i);
          PyRef pair =
              PyRef::steal(Py_BuildValue("(y#y#)", n.data(), static_cast<Py_ssize_t>(n.size()),
                                         v.data(), static_cast<Py_ssize_t>(v.size())));
          if (pair) {
            PyList_Append(headers.get(), pair.get());
          }
        }
        PyRef page = PyRef::steal(PyObject_CallMethod(
            py::supportModule(), "debug_page", "OssO", exc_value, s.headers.method().c_str(),
            s.headers.path().c_str(), headers ? headers.get() : Py_None));
        if (page && PyBytes_Check(page.get())) {
          ev.body.add(std::string_view(PyBytes_AS_STRING(page.get()),
                                       static_cast<size_t>(PyBytes_GET_SIZE(page.get()))));
          ev.more = true; // marks an HTML body
        } else {
          PyErr_Clear();
        }
      }
      addOut(std::move(ev));
    } else if (!s.response_complete) {
      OutEvent ev;
      ev.kind = OutEvent::Kind::Reset;
      ev.stream = StreamRef(&s);
      addOut(std::move(ev));
    }
  } else if (!s.response_started) {
    if (!s.disconnected) {
      POUNCE_LOG(Asgi, Error, "ASGI app returned without starting a response (%s %s)",
                 s.headers.method(), s.headers.path());
    }
    OutEvent ev;
    ev.kind = OutEvent::Kind::Error;
    ev.stream = StreamRef(&s);
    ev.status = 500;
    addOut(std::move(ev));
  } else if (!s.response_complete) {
    if (!s.disconnected) {
      POUNCE_LOG(Asgi, Error, "ASGI app returned without completing its response (%s %s)",
                 s.headers.method(), s.headers.path());
    }
    OutEvent ev;
    ev.kind = OutEvent::Kind::Reset;
    ev.stream = StreamRef(&s);
    addOut(std::move(ev));
  }
  s.response_complete = true;
  PyErr_Clear();
  // Nothing can wait on this request any more.
  if (!s.receive_waiters.empty()) {
    s.disconnected = true;
    resolveReceive(s);
  }
  Py_CLEAR(s.send_future);
  Py_CLEAR(s.task);
  s.cancelTimer();
}

void LoopThread::scheduleCancel(AsgiStream& s, std::chrono::nanoseconds after) {
  PyRef cancel = PyRef::steal(PyObject_GetAttrString(s.task, "cancel"));
  PyRef handle = cancel ? PyRef::steal(PyObject_CallMethod(
                              loop_, "call_later", "dO",
                              std::chrono::duration<double>(after).count(), cancel.get()))
                        : PyRef();
  if (!handle) {
    PyErr_Clear();
    return;
  }
  s.cancel_timer = handle.release();
}

void LoopThread::addOut(OutEvent event) {
  IoChannel* channel = event.stream->io.get();
  std::vector<OutEvent>* batch = nullptr;
  for (auto& [c, events] : outbox_) {
    if (c == channel) {
      batch = &events;
      break;
    }
  }
  if (batch == nullptr) {
    outbox_.emplace_back(channel, std::vector<OutEvent>());
    batch = &outbox_.back().second;
  }
  batch->push_back(std::move(event));
  if (!flush_scheduled_) {
    // Flush once the callbacks already queued in this loop turn have run, so the replies
    // of a whole batch of requests travel together.
    flush_scheduled_ = true;
    PyRef r = PyRef::steal(PyObject_CallOneArg(call_soon_, flush_cb_));
    if (!r) {
      PyErr_Clear();
      flushOutbox();
    }
  }
}

void LoopThread::flushOutbox() {
  flush_scheduled_ = false;
  for (auto& [channel, events] : outbox_) {
    if (!events.empty()) {
      channel->push(events);
    }
  }
}

} // namespace pounce::asgi
