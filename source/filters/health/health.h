#pragma once

#include <memory>
#include <string>

#include "source/common/server_context.h"
#include "source/http/filter.h"

namespace pounce::filters::health {

// The validated config: built once, shared by every stream.
struct Config {
  std::string path;       // liveness (or the only endpoint)
  std::string ready_path; // readiness; empty when not configured
  bool access_log{false};
  ServerContext* server{nullptr};
};
using ConfigSharedPtr = std::shared_ptr<const Config>;

// Which endpoint a request hit, and what it answers.
enum class Probe { Liveness, Readiness };

// The status a probe reports now:
// - readiness (ready_path, or path when it is the only endpoint): 503 "draining" while the
//   server drains or after the admin API failed the health check, else 200 "ok";
// - liveness (path when ready_path is configured): 200 "ok" as long as the process serves
//   requests. Failing liveness makes orchestrators restart the process, which is the wrong
//   reaction to a drain or a deliberately failed health check.
bool probeHealthy(Probe probe, const ServerContext& server);

// The JSON body: {"status":...,"uptime_seconds":12.3,"worker_id":0,"active_connections":3,
// "version":"0.1.0"}.
std::string healthBody(bool healthy, ServerContext& server);

// Answers GET/HEAD on the configured paths; everything else passes.
class HealthFilter final : public http::StreamFilter {
public:
  // `config` belongs to the chain's factory, which outlives every stream on the chain
  // (no reference count per stream).
  explicit HealthFilter(const Config& config) : config_(&config) {}

  // http::StreamDecoderFilter
  http::FilterStatus decodeHeaders(http::RequestHeaders& headers, bool end_stream) override;

private:
  const Config* config_;
};

} // namespace pounce::filters::health
