#include "source/server/admin/control_plane.h"

#include "source/common/strings.h"

namespace pounce::server::admin {
namespace {

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) {
    out += out.empty() ? i : "; " + i;
  }
  return out;
}

} // namespace

void logApplyResult(const std::string& source, const ApplyResult& result) {
  if (result.status != 200) {
    POUNCE_LOG(
        Admin, Warning, "%s: not applied (%d): %s%s%s", source, result.status, result.message,
        result.error_text.empty() ? "" : "\n",
        result.error_text.empty() ? "" : result.error_text.substr(0, result.error_text.size() - 1));
    return;
  }
  if (result.changes.empty()) {
    POUNCE_LOG(Admin, Info, "%s: nothing to change (config version %d)%s", source, result.version,
               result.restart_needed.empty()
                   ? ""
                   : cat("; needs a restart: ", joined(result.restart_needed)));
    return;
  }
  POUNCE_LOG(Admin, Info, "%s: config version %d applied in %.1fms, taken by %d %s: %s%s", source,
             result.version, static_cast<double>(result.took.count()) / 1000.0, result.acknowledged,
             result.acknowledged_by, joined(result.changes),
             result.restart_needed.empty()
                 ? ""
                 : cat("; needs a restart: ", joined(result.restart_needed)));
}

ApplyCallback finishChange(const ConfigState& config, std::string source, ApplyCallback done,
                           std::function<void()> finished) {
  return [&config, source = std::move(source), done = std::move(done),
          finished = std::move(finished)](ApplyResult result) {
    if (result.version == 0) {
      result.version = config.version();
    }
    logApplyResult(source, result);
    done(std::move(result));
    finished();
  };
}

ApplyResult ApplyResult::invalid(const config::ConfigErrors& errors, std::string message) {
  ApplyResult r;
  r.status = 400;
  r.message = std::move(message);
  r.errors = errors.entries();
  r.error_text = errors.text();
  return r;
}

void logReopened(const std::string& source, const std::vector<std::string>& problems) {
  if (problems.empty()) {
    POUNCE_LOG(Main, Info, "%s: log files reopened", source);
    return;
  }
  for (const auto& p : problems) {
    POUNCE_LOG(Main, Error, "%s: %s", source, p);
  }
}

ApplyResult ApplyResult::failure(int status, std::string message) {
  ApplyResult r;
  r.status = status;
  r.message = std::move(message);
  return r;
}

ApplyResult ApplyResult::draining(const ConfigDiff& diff) {
  std::string changes;
  for (const auto& c : diff.describe()) {
    changes += changes.empty() ? c : ", " + c;
  }
  return failure(503, cat("the server is draining: only filter chains can change now, not "
                          "listeners (",
                          changes, "); nothing changed"));
}

} // namespace pounce::server::admin
