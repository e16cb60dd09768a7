#include "source/server/admin/local_control.h"

#include "source/common/strings.h"
#include "source/server/admin/stats_snapshot.h"

namespace pounce::server::admin {

LocalControl::LocalControl(Instance& instance, RereadConfig reread)
    : instance_(instance), reread_(std::move(reread)),
      config_(instance.bootstrap(), instance.configPath()) {
  instance_.setConfigVersion(config_.version());
}

void LocalControl::stats(std::function<void(std::vector<StatsSnapshotProto>)> done) {
  std::vector<StatsSnapshotProto> out;
  out.push_back(snapshotStats(stats::Store::global()));
  done(std::move(out));
}

void LocalControl::status(std::function<void(std::vector<pounce::admin::v1::WorkerStatus>)> done) {
  done({instance_.status()});
}

void LocalControl::apply(CandidateFn make_candidate, std::string source,
                         std::shared_ptr<config::ConfigErrors> positions, ApplyCallback done) {
  queue_.push([this, make_candidate = std::move(make_candidate), source = std::move(source),
               positions = std::move(positions),
               done = std::move(done)](std::function<void()> finished) mutable {
    const MonotonicTime started = RealTimeSource::instance().monotonicTime();
    auto answer = finishChange(config_, source, done, finished);
    config::ConfigErrors& errors = *positions;
    std::optional<Bootstrap> candidate = make_candidate(config_.current(), errors);
    if (!candidate || !errors.empty()) {
      answer(ApplyResult::invalid(errors, "the configuration is invalid; nothing changed"));
      return;
    }
    const std::vector<std::string> restart_needed =
        keepStartupFields(config_.current(), *candidate);
    const ConfigDiff diff = diffConfigs(config_.current(), *candidate);
    if (diff.empty()) {
      ApplyResult result;
      result.message = "no change";
      result.version = config_.version();
      result.restart_needed = restart_needed;
      answer(std::move(result));
      return;
    }
    if (instance_.draining() && !diff.chainsOnly()) {
      answer(ApplyResult::draining(diff));
      return;
    }
    const uint64_t version = config_.version() + 1;
    auto change = instance_.prepare(*candidate, version, errors);
    if (change == nullptr) {
      answer(ApplyResult::invalid(errors, "the configuration does not build; nothing changed"));
      return;
    }
    if (diff.logging) {
      applyLoggingConfig(candidate->logging());
    }
    instance_.commit(std::move(change), [this, candidate = std::move(*candidate), source, diff,
                                         restart_needed, started, answer](uint32_t acks) mutable {
      ApplyResult result;
      result.version = config_.record(std::move(candidate), source, diff.describe());
      result.changes = diff.describe();
      result.acknowledged = acks;
      result.message = "applied";
      result.acknowledged_by = acks == 1 ? "I/O thread" : "I/O threads";
      result.restart_needed = restart_needed;
      result.took = std::chrono::duration_cast<std::chrono::microseconds>(
          RealTimeSource::instance().monotonicTime() - started);
      answer(std::move(result));
    });
  });
}

void LocalControl::reload(std::string source, ApplyCallback done) {
  if (!reread_) {
    const absl::Status certificates = instance_.reloadCertificates();
    ApplyResult result =
        certificates.ok()
            ? ApplyResult::failure(
                  400, "no config file to re-read (quick mode); TLS certificates were reloaded")
            : ApplyResult::failure(500, cat("no config file to re-read (quick mode); TLS "
                                            "certificates could not be reloaded: ",
                                            certificates.message(),
                                            "; the previous certificates stay in use"));
    logApplyResult(source, result);
    done(std::move(result));
    return;
  }
  auto positions = std::make_shared<config::ConfigErrors>(config_.path());
  apply(
      [this](const Bootstrap&, config::ConfigErrors& errors) -> std::optional<Bootstrap> {
        auto bootstrap = reread_(errors);
        if (!bootstrap.ok()) {
          if (errors.empty()) {
            errors.add("", std::string(bootstrap.status().message()));
          }
          return std::nullopt;
        }
        return std::move(*bootstrap);
      },
      std::move(source), positions,
      [this, done = std::move(done)](ApplyResult result) {
        // Certificate files may have changed without the config: re-read them. A failure
        // keeps the old ones and is logged, and the answer says so (500) while still
        // reporting the config version that was applied.
        // A config that is refused still lets the running one's certificates be renewed
        // (SIGHUP is how operators rotate them, and a typo elsewhere must not block that).
        const absl::Status certificates = instance_.reloadCertificates();
        if (result.status == 200) {
          if (!certificates.ok()) {
            result.status = 500;
            result.message = cat(result.message.empty() ? "" : cat(result.message, "; "),
                                 "TLS certificates could not be reloaded: ", certificates.message(),
                                 "; the previous certificates stay in use");
          }
        } else {
          result.message =
              cat(result.message.empty() ? "" : cat(result.message, "; "),
                  certificates.ok() ? "the running config's TLS certificates were re-read"
                                    : cat("the running config's TLS certificates could not be "
                                          "reloaded either: ",
                                          certificates.message()));
        }
        done(std::move(result));
      });
}

void LocalControl::setLogLevel(std::string_view component, log::Level level) {
  log::Component c;
  if (component.empty()) {
    log::setLevel(level);
  } else if (log::parseComponent(component, c)) {
    log::setLevel(c, level);
  }
}

} // namespace pounce::server::admin
