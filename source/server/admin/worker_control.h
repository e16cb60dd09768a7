#pragma once

#include <memory>

#include "source/server/admin/control_channel.h"
#include "source/server/instance.h"

namespace pounce::server::admin {

// The worker-process end of the control channel: carries out the supervisor's requests on
// this process's Instance (build and publish filter chains in two phases, report stats and
// status, health, drain, log levels). Main thread of the worker process.
class WorkerControl {
public:
  WorkerControl(Instance& instance, int fd);

private:
  void onRequest(const ControlRequest& request, std::function<void(ControlResponse)> respond);

  Instance& instance_;
  std::unique_ptr<ControlChannel> channel_;
  std::unique_ptr<PendingChange> pending_;
};

} // namespace pounce::server::admin
