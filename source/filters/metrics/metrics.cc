#include "source/filters/metrics/metrics.h"

#include <chrono>

#include "source/common/strings.h"

namespace pounce::filters::metrics {

namespace {

constexpr std::string_view kRequests = "http_requests_total";
constexpr std::string_view kDuration = "http_request_duration_seconds";
constexpr std::string_view kInFlight = "http_requests_in_flight";
constexpr std::string_view kRequestBytes = "http_request_bytes_total";
constexpr std::string_view kResponseBytes = "http_response_bytes_total";
constexpr std::string_view kConnections = "http_connections_active";
constexpr std::string_view kCoreConnections = "pounce_listener_connections_active";

constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

stats::Family& requestsFamily(stats::Store& store) {
  return store.family(kRequests, "HTTP requests that passed the filter chain.",
                      stats::Type::Counter, {"listener", "method", "status"});
}

} // namespace

Method parseMethod(std::string_view m) {
  switch (m.size()) {
  case 3:
    if (m == "GET") {
      return Method::Get;
    }
    if (m == "PUT") {
      return Method::Put;
    }
    break;
  case 4:
    if (m == "HEAD") {
      return Method::Head;
    }
    if (m == "POST") {
      return Method::Post;
    }
    break;
  case 5:
    if (m == "PATCH") {
      return Method::Patch;
    }
    if (m == "TRACE") {
      return Method::Trace;
    }
    break;
  case 6:
    if (m == "DELETE") {
      return Method::Delete;
    }
    break;
  case 7:
    if (m == "OPTIONS") {
      return Method::Options;
    }
    if (m == "CONNECT") {
      return Method::Connect;
    }
    break;
  default:
    break;
  }
  return Method::Other;
}

std::string_view methodLabel(Method method) {
  switch (method) {
  case Method::Get:
    return "GET";
  case Method::Head:
    return "HEAD";
  case Method::Post:
    return "POST";
  case Method::Put:
    return "PUT";
  case Method::Delete:
    return "DELETE";
  case Method::Patch:
    return "PATCH";
  case Method::Options:
    return "OPTIONS";
  case Method::Trace:
    return "TRACE";
  case Method::Connect:
    return "CONNECT";
  case Method::Other:
    return "other";
  }
  return "other";
}

const std::vector<double>& defaultBuckets() {
  static const std::vector<double> buckets = {0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25,
                                              0.5,   0.75, 1.0,   2.5,  5.0,   7.5, 10.0};
  return buckets;
}

bool registerFamilies(stats::Store& store, const std::vector<double>& buckets) {
  requestsFamily(store);
  constexpr std::string_view kDurationHelp =
      "Time from the start of a request to the end of its response.";
  const stats::Family* duration =
      &store.family(kDuration, kDurationHelp, stats::Type::Histogram, {"listener"}, buckets);
  if (duration->buckets != buckets) {
    // Other buckets are fine when no metrics filter writes the histogram any more (the
    // last one went with an old chain, or was built by a config that then failed).
    duration = store.replaceUnheld(kDuration, kDurationHelp, stats::Type::Histogram, {"listener"},
                                   buckets);
  }
  store.family(kInFlight, "Requests that have started and not yet finished.", stats::Type::Gauge,
               {"listener"});
  store.family(kRequestBytes, "Request body bytes received.", stats::Type::Counter, {"listener"});
  store.family(kResponseBytes, "Response body bytes sent.", stats::Type::Counter, {"listener"});
  return duration != nullptr;
}

Config::Config(stats::Store& store, std::string listener, std::string path, bool log_scrapes)
    : store_(store), listener_(std::move(listener)), path_(std::move(path)),
      log_scrapes_(log_scrapes), requests_family_(requestsFamily(store)),
      requests_(new std::atomic<const stats::Series*>[kMethodCount * kStatusSlots]) {
  auto family = [&](std::string_view name) -> stats::Family& {
    // Registered by registerFamilies(); the help and type given here are not used.
    return store_.family(name, "", stats::Type::Counter);
  };
  duration_family_ = &family(kDuration);
  duration_family_->holders.fetch_add(1, std::memory_order_acq_rel);
  duration_ = &store_.series(*duration_family_, {listener_});
  in_flight_ = &store_.series(family(kInFlight), {listener_});
  request_bytes_ = &store_.series(family(kRequestBytes), {listener_});
  response_bytes_ = &store_.series(family(kResponseBytes), {listener_});
  for (size_t i = 0; i < kMethodCount * kStatusSlots; ++i) {
    requests_[i].store(nullptr, std::memory_order_relaxed);
  }
}

Config::~Config() { duration_family_->holders.fetch_sub(1, std::memory_order_acq_rel); }

const stats::Series& Config::requests(Method method, int status) const {
  const bool known = status >= 100 && status <= 599;
  const size_t slot = known ? static_cast<size_t>(status - 100) : kStatusSlots - 1;
  auto& cell = requests_[static_cast<size_t>(method) * kStatusSlots + slot];
  const stats::Series* series = cell.load(std::memory_order_acquire);
  if (series == nullptr) {
    // Another thread may register the same series at the same time: the store returns
    // one series for one label set, so both publish the same pointer.
    series = &store_.series(requests_family_, {listener_, std::string(methodLabel(method)),
                                               known ? std::to_string(status) : "0"});
    cell.store(series, std::memory_order_release);
  }
  return *series;
}

std::string Config::render() const {
  std::string out = store_.prometheusText();
  const auto connections = store_.seriesOf(kCoreConnections);
  if (!connections.empty() && store_.seriesOf(kConnections).empty()) {
    out += "# HELP http_connections_active Open client connections of a listener.\n"
           "# TYPE http_connections_active gauge\n";
    for (const stats::Series* series : connections) {
      out += "http_connections_active{listener=\"";
      stats::appendLabelValue(out, series->labelValues().empty() ? "" : series->labelValues()[0]);
      out += "\"} ";
      out += std::to_string(series->value());
      out += '\n';
    }
  }
  return out;
}

http::FilterStatus MetricsFilter::decodeHeaders(http::RequestHeaders& headers, bool) {
  if (headers.pathOnly() == config_->path()) {
    scrape_ = true;
    serveScrape(headers);
    return http::FilterStatus::StopIteration;
  }
  in_flight_ = true;
  config_->inFlight().inc();
  return http::FilterStatus::Continue;
}

void MetricsFilter::serveScrape(const http::RequestHeaders& headers) {
  if (!config_->logScrapes()) {
    decoder_callbacks_->streamInfo().skip_access_log = true;
  }
  const bool head = headers.method() == "HEAD";
  if (!head && headers.method() != "GET") {
    decoder_callbacks_->sendLocalReply(405, "Method Not Allowed\n", [](http::ResponseHeaders& h) {
      h.addLowercase("allow", "GET, HEAD");
    });
    return;
  }
  std::string text = config_->render();
  auto response = std::make_unique<http::ResponseHeaders>(200);
  response->addLowercase("content-type", kContentType);
  response->addLowercase("content-length", std::to_string(text.size()));
  response->addLowercase("cache-control", "no-store");
  if (head) {
    decoder_callbacks_->encodeHeaders(std::move(response), true);
    return;
  }
  decoder_callbacks_->encodeHeaders(std::move(response), false);
  Buffer body(std::move(text));
  decoder_callbacks_->encodeData(body, true);
}

void MetricsFilter::onStreamComplete() {
  if (scrape_) {
    return;
  }
  if (in_flight_) {
    config_->inFlight().dec();
  }
  const http::StreamInfo& info = decoder_callbacks_->streamInfo();
  const Method method =
      info.request_headers != nullptr ? parseMethod(info.request_headers->method()) : Method::Other;
  config_->requests(method, info.response_code).inc();
  config_->duration().observe(std::chrono::duration<double>(info.duration()).count());
  if (info.bytes_received != 0) {
    config_->requestBytes().inc(info.bytes_received);
  }
  if (info.bytes_sent != 0) {
    config_->responseBytes().inc(info.bytes_sent);
  }
}

} // namespace pounce::filters::metrics
