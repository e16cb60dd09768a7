#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "pounce/admin/v1/control.pb.h"
#include "pounce/config/v1/bootstrap.pb.h"
#include "source/common/config/yaml_proto.h"
#include "source/common/logger.h"
#include "source/common/time.h"
#include "source/server/admin/config_state.h"

namespace pounce::server::admin {

using StatsSnapshotProto = pounce::admin::v1::StatsSnapshot;

// The outcome of a configuration change, as the admin API reports it.
struct ApplyResult {
  // 200 applied (or nothing to do); 400 the config is invalid (`errors` says where);
  // 404 no such listener or version; 500 it could not be applied; 503 no worker to take it.
  int status{200};
  std::string message;
  // Field-path errors (with line and column of the request body or file), and the same as
  // the loader prints them ("source:line:col: path: problem", one per line).
  std::vector<config::ConfigErrors::Entry> errors;
  std::string error_text;
  // The current config version afterwards, and what changed.
  uint64_t version{0};
  std::vector<std::string> changes;
  // I/O threads (one process) or worker processes that took the change before the answer.
  uint32_t acknowledged{0};
  std::string acknowledged_by; // "I/O threads", "worker processes"
  std::chrono::microseconds took{0};
  // Fields that only take effect when the server restarts.
  std::vector<std::string> restart_needed;

  static ApplyResult invalid(const config::ConfigErrors& errors, std::string message);
  static ApplyResult failure(int status, std::string message);
  // 503 for a change of listeners while the server drains: a listener added then would
  // never accept, and one rebuilt would start accepting again. Chains may still change.
  static ApplyResult draining(const ConfigDiff& diff);
};
using ApplyCallback = std::function<void(ApplyResult)>;

// Reads the config file again (with the command line's overrides applied and checked with
// validateBootstrap), recording field positions and errors in `positions`.
using RereadConfig = std::function<absl::StatusOr<Bootstrap>(config::ConfigErrors& positions)>;

// Logs the outcome of a change (every change is logged, whoever asked for it).
void logApplyResult(const std::string& source, const ApplyResult& result);
// Logs the outcome of reopening the log files (ControlPlane::reopenLogs).
void logReopened(const std::string& source, const std::vector<std::string>& problems);

// The callback that ends one queued change: gives the result the current config version if
// it has none, logs it, answers the caller (`done`) and lets the operation queue go on
// (`finished`).
ApplyCallback finishChange(const ConfigState& config, std::string source, ApplyCallback done,
                           std::function<void()> finished);

// What the admin API asks of the running server: implemented by the single-process server
// (LocalControl, source/server/admin/local_control.h) and by the supervisor of worker
// processes (Supervisor). Every method runs on the thread the admin listener runs on (the
// main thread); callbacks run later on that thread, exactly once.
//
// Changes are serialized: while one is being applied (built, published, acknowledged), the
// next waits its turn, so each one is validated against the config it will replace.
class ControlPlane {
public:
  virtual ~ControlPlane() = default;

  // "single process" or "process workers".
  virtual std::string mode() const = 0;
  virtual MonotonicTime startTime() const = 0;
  virtual bool draining() const = 0;
  virtual bool healthCheckFailed() const = 0;
  // The effective config and the versions kept for rollback.
  virtual const ConfigState& config() const = 0;

  // Reads gathered from every process that serves traffic (merged by the caller).
  virtual void stats(std::function<void(std::vector<StatsSnapshotProto>)> done) = 0;
  virtual void status(std::function<void(std::vector<pounce::admin::v1::WorkerStatus>)> done) = 0;

  // Makes the candidate config from the current one when the change's turn comes (so
  // concurrent changes never undo each other). nullopt, with `errors` filled: invalid.
  using CandidateFn = std::function<std::optional<Bootstrap>(const Bootstrap& current,
                                                             config::ConfigErrors& errors)>;
  // Applies the candidate as the next config version: everything that differs is built
  // first, then published to every I/O thread of every process; `done` runs once all of
  // them took it. An invalid candidate or a build error changes nothing. `positions` holds
  // where the candidate's fields were written (a request body), so errors point at lines;
  // `source` says what asked for the change (for the history and the log).
  virtual void apply(CandidateFn candidate, std::string source,
                     std::shared_ptr<config::ConfigErrors> positions, ApplyCallback done) = 0;
  // Re-reads the config file and applies it (SIGHUP, POST /reload, watch_config).
  virtual void reload(std::string source, ApplyCallback done) = 0;

  // `done` runs once every process took it.
  virtual void setHealthCheckFailed(bool failed, std::function<void()> done) = 0;
  // Drains every listener (see docs/admin.md, POST /drain_listeners). The process stays up
  // until quit(). `done` runs once every process took it.
  virtual void drain(bool graceful, std::function<void()> done) = 0;
  // Opens the access log files of every process again (log rotation: SIGUSR1, POST
  // /reopen_logs); `done` gets a line per file that could not be.
  virtual void reopenLogs(std::function<void(std::vector<std::string>)> done) = 0;
  // Drains, then exits.
  virtual void quit() = 0;
  // `component` empty: every component.
  virtual void setLogLevel(std::string_view component, log::Level level) = 0;
};

} // namespace pounce::server::admin
