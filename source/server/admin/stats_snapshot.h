#pragma once

#include <regex>
#include <string>

#include "pounce/admin/v1/control.pb.h"
#include "source/common/stats.h"

namespace pounce::server::admin {

using StatsSnapshot = pounce::admin::v1::StatsSnapshot;

// Every metric of this process, merged across its threads.
StatsSnapshot snapshotStats(const stats::Store& store);

// Adds `from` into `into` (process mode: one snapshot per worker process). Counters,
// gauges and histogram buckets are summed per family and label values.
void mergeStats(StatsSnapshot& into, const StatsSnapshot& from);

// Renderings for /stats and /stats/prometheus. `filter` (optional) keeps the families whose
// name it matches (std::regex_search).
//
// Prometheus text exposition format 0.0.4.
std::string renderPrometheus(const StatsSnapshot& snapshot, const std::regex* filter = nullptr);
// "name{label="v"}: value" lines, sorted; histograms as _count and _sum lines plus
// estimated P50/P90/P99.
std::string renderText(const StatsSnapshot& snapshot, const std::regex* filter = nullptr);
// {"stats":[{"name":..,"type":"counter","help":..,"series":[{"labels":{..},"value":3}]},
//  {"name":..,"type":"histogram",..,"series":[{"labels":{..},"bounds":[..],"counts":[..],
//  "count":12,"sum":0.5}]}]}; histogram counts are per bucket (last = +Inf).
std::string renderJson(const StatsSnapshot& snapshot, const std::regex* filter = nullptr);

// The value below which `q` (0..1) of a histogram's observations fall, interpolated
// within the bucket (Prometheus' histogram_quantile); 0 without observations.
double histogramQuantile(const StatsSnapshot::Family& family, const StatsSnapshot::Series& series,
                         double q);

} // namespace pounce::server::admin
