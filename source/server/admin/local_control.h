#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "source/common/reopen.h"
#include "source/server/admin/control_plane.h"
#include "source/server/admin/operation_queue.h"
#include "source/server/instance.h"

namespace pounce::server::admin {

// The control plane of a single-process server: changes are built on the main thread and
// published to the Instance's I/O threads; SIGHUP re-reads the config file.
class LocalControl : public ControlPlane {
public:
  // `reread` is empty in quick mode (no file).
  LocalControl(Instance& instance, RereadConfig reread);

  // ControlPlane
  std::string mode() const override { return "single process"; }
  MonotonicTime startTime() const override { return instance_.startTime(); }
  bool draining() const override { return instance_.draining(); }
  bool healthCheckFailed() const override { return instance_.healthCheckFailed(); }
  const ConfigState& config() const override { return config_; }
  void stats(std::function<void(std::vector<StatsSnapshotProto>)> done) override;
  void status(std::function<void(std::vector<pounce::admin::v1::WorkerStatus>)> done) override;
  void apply(CandidateFn candidate, std::string source,
             std::shared_ptr<config::ConfigErrors> positions, ApplyCallback done) override;
  void reload(std::string source, ApplyCallback done) override;
  void setHealthCheckFailed(bool failed, std::function<void()> done) override {
    instance_.setHealthCheckFailed(failed);
    done();
  }
  void drain(bool graceful, std::function<void()> done) override {
    instance_.drain(graceful);
    done();
  }
  void reopenLogs(std::function<void(std::vector<std::string>)> done) override {
    done(reopenFiles());
  }
  void quit() override { instance_.drainAndExit(); }
  void setLogLevel(std::string_view component, log::Level level) override;

private:
  Instance& instance_;
  RereadConfig reread_;
  ConfigState config_;
  OperationQueue queue_;
};

} // namespace pounce::server::admin
