#include "source/server/admin/worker_control.h"

#include "source/common/logger.h"
#include "source/common/reopen.h"
#include "source/common/strings.h"
#include "source/server/admin/stats_snapshot.h"

namespace pounce::server::admin {

WorkerControl::WorkerControl(Instance& instance, int fd) : instance_(instance) {
  channel_ = std::make_unique<ControlChannel>(
      instance.mainDispatcher(), fd,
      [this](const ControlRequest& request, std::function<void(ControlResponse)> respond) {
        onRequest(request, std::move(respond));
      },
      [this] {
        // The supervisor is gone: nobody restarts or reconfigures this worker any more.
        if (!instance_.draining()) {
          POUNCE_LOG(Main, Warning, "the supervisor went away: draining and exiting");
          instance_.drainAndExit();
        }
      });
}

void WorkerControl::onRequest(const ControlRequest& request,
                              std::function<void(ControlResponse)> respond) {
  ControlResponse response;
  response.set_ok(true);
  switch (request.kind_case()) {
  case ControlRequest::kPrepare: {
    const auto& prepare = request.prepare();
    Bootstrap candidate = instance_.bootstrap();
    config::ConfigErrors errors("request");
    for (const auto& update : prepare.updates()) {
      bool found = false;
      for (int i = 0; i < candidate.listeners_size(); ++i) {
        if (listenerName(candidate.listeners(i), i) == update.listener()) {
          *candidate.mutable_listeners(i)->mutable_filter_chain() = update.filters();
          found = true;
        }
      }
      if (!found) {
        errors.add(update.path(), cat("this worker has no listener '", update.listener(), "'"));
      }
    }
    pending_.reset();
    if (errors.empty()) {
      pending_ = instance_.prepare(candidate, prepare.version(), errors, /*chains_only=*/true);
    }
    if (pending_ == nullptr) {
      response.set_ok(false);
      for (const auto& e : errors.entries()) {
        auto* error = response.add_errors();
        error->set_path(e.path);
        error->set_problem(e.problem);
      }
    }
    break;
  }
  case ControlRequest::kCommit:
    if (pending_ == nullptr || pending_->version != request.commit().version()) {
      response.set_ok(false);
      response.set_message(cat("version ", request.commit().version(), " was not prepared"));
      break;
    }
    instance_.commit(std::move(pending_), [respond](uint32_t) {
      ControlResponse done;
      done.set_ok(true);
      respond(std::move(done));
    });
    return;
  case ControlRequest::kAbort:
    pending_.reset();
    break;
  case ControlRequest::kStats:
    *response.mutable_stats() = snapshotStats(stats::Store::global());
    break;
  case ControlRequest::kStatus:
    *response.mutable_status() = instance_.status();
    break;
  case ControlRequest::kSetHealth:
    instance_.setHealthCheckFailed(request.set_health().failed());
    break;
  case ControlRequest::kDrain:
    instance_.drain(request.drain().graceful());
    break;
  case ControlRequest::kReopenLogs: {
    const std::vector<std::string> problems = reopenFiles();
    if (!problems.empty()) {
      response.set_ok(false);
      std::string message;
      for (const auto& p : problems) {
        message += message.empty() ? p : "\n" + p;
      }
      response.set_message(std::move(message));
    }
    break;
  }
  case ControlRequest::kSetLogLevels:
    for (const auto& l : request.set_log_levels().levels()) {
      log::Level level;
      log::Component component;
      if (!log::parseLevel(l.level(), level)) {
        continue;
      }
      if (l.component().empty()) {
        log::setLevel(level);
      } else if (log::parseComponent(l.component(), component)) {
        log::setLevel(component, level);
      }
    }
    break;
  default:
    response.set_ok(false);
    response.set_message("unknown request");
    break;
  }
  respond(std::move(response));
}

} // namespace pounce::server::admin
