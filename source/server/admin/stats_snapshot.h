#pragma once

#include <regex.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "pounce/admin/v1/control.pb.h"
#include "source/common/stats.h"

namespace pounce::server::admin {

using StatsSnapshot = pounce::admin::v1::StatsSnapshot;

// Every metric of this process, merged across its threads.
StatsSnapshot snapshotStats(const stats::Store& store);

// Adds `from` into `into` (process mode: one snapshot per worker process). Counters,
// gauges and histogram buckets are summed per family and label values.
void mergeStats(StatsSnapshot& into, const StatsSnapshot& from);

// A metric name filter: a POSIX extended regular expression, found anywhere in the name.
// glibc's matcher takes polynomial time whatever the pattern, unlike std::regex's
// backtracking, which `(\w+)+!` keeps busy for ever: the admin API stays usable.
class NameFilter {
public:
  // The compiled filter, or the compiler's message for a pattern that is not one.
  static absl::StatusOr<std::shared_ptr<const NameFilter>> compile(const std::string& pattern);
  ~NameFilter();
  NameFilter(const NameFilter&) = delete;
  NameFilter& operator=(const NameFilter&) = delete;
  bool matches(const std::string& name) const;

private:
  NameFilter() = default;
  regex_t re_{};
  bool compiled_{false};
};

// Renderings for /stats and /stats/prometheus. `filter` (optional) keeps the families whose
// name it matches.
//
// Prometheus text exposition format 0.0.4.
std::string renderPrometheus(const StatsSnapshot& snapshot, const NameFilter* filter = nullptr);
// "name{label="v"}: value" lines, sorted; histograms as _count and _sum lines plus
// estimated P50/P90/P99.
std::string renderText(const StatsSnapshot& snapshot, const NameFilter* filter = nullptr);
// {"stats":[{"name":..,"type":"counter","help":..,"series":[{"labels":{..},"value":3}]},
//  {"name":..,"type":"histogram",..,"series":[{"labels":{..},"bounds":[..],"counts":[..],
//  "count":12,"sum":0.5}]}]}; histogram counts are per bucket (last = +Inf).
std::string renderJson(const StatsSnapshot& snapshot, const NameFilter* filter = nullptr);

// The value below which `q` (0..1) of a histogram's observations fall, interpolated
// within the bucket (Prometheus' histogram_quantile); 0 without observations.
double histogramQuantile(const StatsSnapshot::Family& family, const StatsSnapshot::Series& series,
                         double q);

} // namespace pounce::server::admin
