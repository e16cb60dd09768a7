#include "source/filters/health/health.h"

#include <charconv>
#include <chrono>
#include <cstdint>

#include "source/common/strings.h"
#include "source/common/version.h"

namespace pounce::filters::health {

bool probeHealthy(Probe probe, const ServerContext& server) {
  if (probe == Probe::Liveness) {
    return true;
  }
  return !server.draining() && !server.healthCheckFailed();
}

std::string healthBody(bool healthy, ServerContext& server) {
  // Seconds with one decimal, rounded half up, from integer nanoseconds (printf's
  // floating-point path cost more than the rest of the probe's answer).
  const int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                         server.timeSource().monotonicTime() - server.startTime())
                         .count();
  const int64_t tenths = ns <= 0 ? 0 : (ns + 50'000'000) / 100'000'000;
  return cat("{\"status\":\"", healthy ? "ok" : "draining", "\",\"uptime_seconds\":", tenths / 10,
             '.', static_cast<char>('0' + tenths % 10), ",\"worker_id\":", server.workerId(),
             ",\"active_connections\":", server.activeConnections(), ",\"version\":\"", kVersion,
             "\"}");
}

http::FilterStatus HealthFilter::decodeHeaders(http::RequestHeaders& headers, bool) {
  const std::string_view path = headers.pathOnly();
  Probe probe;
  if (!config_->ready_path.empty() && path == config_->ready_path) {
    probe = Probe::Readiness;
  } else if (path == config_->path) {
    probe = config_->ready_path.empty() ? Probe::Readiness : Probe::Liveness;
  } else {
    return http::FilterStatus::Continue;
  }
  http::StreamInfo& info = decoder_callbacks_->streamInfo();
  info.skip_access_log = !config_->access_log;
  const std::string& method = headers.method();
  const bool head = method == "HEAD";
  if (method != "GET" && !head) {
    decoder_callbacks_->sendLocalReply(405, "Method Not Allowed\n", [](http::ResponseHeaders& h) {
      h.addLowercase("allow", "GET, HEAD");
    });
    return http::FilterStatus::StopIteration;
  }
  const bool healthy = probeHealthy(probe, *config_->server);
  const std::string body = healthBody(healthy, *config_->server);
  auto response = std::make_unique<http::ResponseHeaders>(healthy ? 200 : 503);
  response->addLowercase("content-type", "application/json");
  response->addLowercase("cache-control", "no-cache, no-store");
  response->addLowercase("content-length", std::to_string(body.size()));
  if (head) {
    decoder_callbacks_->encodeHeaders(std::move(response), true);
    return http::FilterStatus::StopIteration;
  }
  decoder_callbacks_->encodeHeaders(std::move(response), false);
  Buffer data(body);
  decoder_callbacks_->encodeData(data, true);
  return http::FilterStatus::StopIteration;
}

} // namespace pounce::filters::health
