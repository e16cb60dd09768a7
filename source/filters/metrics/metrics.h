#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "source/common/stats.h"
#include "source/http/filter.h"

namespace pounce::filters::metrics {

// The method label: a fixed set, so a client cannot create series at will.
enum class Method : uint8_t { Get, Head, Post, Put, Delete, Patch, Options, Trace, Connect, Other };
constexpr size_t kMethodCount = 10;

Method parseMethod(std::string_view method);
std::string_view methodLabel(Method method); // "GET" ... "other"

// The Prometheus client libraries' default histogram buckets (seconds).
const std::vector<double>& defaultBuckets();

// The validated config of one metrics filter: the series of its listener, built once on
// the main thread and shared by every stream on every I/O thread.
class Config {
public:
  Config(stats::Store& store, std::string listener, std::string path, bool log_scrapes);
  // Lets the duration histogram take other buckets once no config holds it.
  ~Config();
  Config(const Config&) = delete;
  Config& operator=(const Config&) = delete;

  const std::string& path() const { return path_; }
  bool logScrapes() const { return log_scrapes_; }

  // http_requests_total{listener,method,status}. Status 0 (the stream ended without a
  // response: the client went away) and codes outside 100-599 get the label "0".
  // The first use of a (method, status) pair registers the series (under the store's
  // lock); later uses are one acquire load.
  const stats::Series& requests(Method method, int status) const;
  const stats::Series& duration() const { return *duration_; }
  const stats::Series& inFlight() const { return *in_flight_; }
  const stats::Series& requestBytes() const { return *request_bytes_; }
  const stats::Series& responseBytes() const { return *response_bytes_; }

  // The exposition: every family of the store, plus http_connections_active rendered from
  // the core's per-listener connection gauge.
  std::string render() const;

private:
  static constexpr size_t kStatusSlots = 501; // 100..599, and one for "0"

  stats::Store& store_;
  const std::string listener_;
  const std::string path_;
  const bool log_scrapes_;
  stats::Family& requests_family_;
  stats::Family* duration_family_;
  const stats::Series* duration_;
  const stats::Series* in_flight_;
  const stats::Series* request_bytes_;
  const stats::Series* response_bytes_;
  // Lazily filled cache of http_requests_total series, [method][status slot].
  std::unique_ptr<std::atomic<const stats::Series*>[]> requests_;
};
using ConfigSharedPtr = std::shared_ptr<const Config>;

// Registers the families of the metrics filter with these buckets. Returns false when
// http_request_duration_seconds already has other buckets and a metrics filter still
// writes it; with no such filter left, the histogram takes the new buckets (from zero).
bool registerFamilies(stats::Store& store, const std::vector<double>& buckets);

// Counts each stream in onStreamComplete (so local replies of later filters and protocol
// errors are counted too) and answers scrapes on the configured path.
class MetricsFilter final : public http::StreamFilter {
public:
  // `config` belongs to the chain's factory, which outlives every stream on the chain
  // (no reference count per stream).
  explicit MetricsFilter(const Config& config) : config_(&config) {}

  // http::StreamDecoderFilter
  http::FilterStatus decodeHeaders(http::RequestHeaders& headers, bool end_stream) override;

  void onStreamComplete() override;

private:
  void serveScrape(const http::RequestHeaders& headers);

  const Config* config_;
  bool scrape_{false};
  bool in_flight_{false};
};

} // namespace pounce::filters::metrics
