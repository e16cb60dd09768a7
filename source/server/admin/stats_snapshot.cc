#include "source/server/admin/stats_snapshot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <unordered_map>

#include "source/common/json.h"
#include "source/common/strings.h"

namespace pounce::server::admin {

namespace {

std::string seriesKey(const StatsSnapshot::Series& s) {
  std::string key;
  for (const auto& v : s.label_values()) {
    key += v;
    key += '\x1f';
  }
  return key;
}

bool keep(const NameFilter* filter, const std::string& name) {
  return filter == nullptr || filter->matches(name);
}

std::string labels(const StatsSnapshot::Family& f, const StatsSnapshot::Series& s,
                   std::string_view extra_name = {}, std::string_view extra_value = {}) {
  if (f.label_names().empty() && extra_name.empty()) {
    return "";
  }
  std::string out = "{";
  for (int i = 0; i < f.label_names_size(); ++i) {
    if (i > 0) {
      out += ',';
    }
    out += f.label_names(i);
    out += "=\"";
    stats::appendLabelValue(out, i < s.label_values_size() ? s.label_values(i) : "");
    out += '"';
  }
  if (!extra_name.empty()) {
    if (f.label_names_size() > 0) {
      out += ',';
    }
    out += extra_name;
    out += "=\"";
    out += extra_value;
    out += '"';
  }
  out += '}';
  return out;
}

std::string_view typeName(StatsSnapshot::Type type) {
  switch (type) {
  case StatsSnapshot::COUNTER:
    return "counter";
  case StatsSnapshot::GAUGE:
    return "gauge";
  default:
    return "histogram";
  }
}

std::vector<const StatsSnapshot::Family*> sortedFamilies(const StatsSnapshot& snapshot,
                                                         const NameFilter* filter) {
  std::vector<const StatsSnapshot::Family*> out;
  for (const auto& f : snapshot.families()) {
    if (keep(filter, f.name())) {
      out.push_back(&f);
    }
  }
  std::sort(out.begin(), out.end(), [](auto* a, auto* b) { return a->name() < b->name(); });
  return out;
}

uint64_t total(const StatsSnapshot::Series& s) {
  uint64_t n = 0;
  for (auto c : s.buckets()) {
    n += c;
  }
  return n;
}

} // namespace

StatsSnapshot snapshotStats(const stats::Store& store) {
  StatsSnapshot out;
  for (const stats::Family* f : store.families()) {
    auto* family = out.add_families();
    family->set_name(f->name);
    family->set_help(f->help);
    family->set_type(f->type == stats::Type::Counter ? StatsSnapshot::COUNTER
                     : f->type == stats::Type::Gauge ? StatsSnapshot::GAUGE
                                                     : StatsSnapshot::HISTOGRAM);
    for (const auto& l : f->label_names) {
      family->add_label_names(l);
    }
    for (double b : f->buckets) {
      family->add_bounds(b);
    }
    for (const stats::Series* s : store.seriesOf(f->name)) {
      auto* series = family->add_series();
      for (const auto& v : s->labelValues()) {
        series->add_label_values(v);
      }
      if (f->type == stats::Type::Histogram) {
        for (uint64_t c : s->bucketCounts()) {
          series->add_buckets(c);
        }
        series->set_sum(s->sum());
      } else {
        series->set_value(s->value());
      }
    }
  }
  return out;
}

void mergeStats(StatsSnapshot& into, const StatsSnapshot& from) {
  std::unordered_map<std::string, int> families;
  for (int i = 0; i < into.families_size(); ++i) {
    families.emplace(into.families(i).name(), i);
  }
  for (const auto& f : from.families()) {
    auto it = families.find(f.name());
    if (it == families.end()) {
      families.emplace(f.name(), into.families_size());
      *into.add_families() = f;
      continue;
    }
    auto* target = into.mutable_families(it->second);
    if (target->type() != f.type() || !std::equal(target->bounds().begin(), target->bounds().end(),
                                                  f.bounds().begin(), f.bounds().end())) {
      // A different binary's metric of the same name, or a histogram whose buckets changed
      // (it starts again): keep the first.
      continue;
    }
    std::unordered_map<std::string, int> series;
    for (int i = 0; i < target->series_size(); ++i) {
      series.emplace(seriesKey(target->series(i)), i);
    }
    for (const auto& s : f.series()) {
      auto sit = series.find(seriesKey(s));
      if (sit == series.end()) {
        series.emplace(seriesKey(s), target->series_size());
        *target->add_series() = s;
        continue;
      }
      auto* t = target->mutable_series(sit->second);
      t->set_value(t->value() + s.value());
      t->set_sum(t->sum() + s.sum());
      for (int b = 0; b < s.buckets_size() && b < t->buckets_size(); ++b) {
        t->set_buckets(b, t->buckets(b) + s.buckets(b));
      }
    }
  }
}

double histogramQuantile(const StatsSnapshot::Family& family, const StatsSnapshot::Series& series,
                         double q) {
  const uint64_t n = total(series);
  if (n == 0) {
    return 0;
  }
  const double rank = q * static_cast<double>(n);
  uint64_t below = 0;
  for (int i = 0; i < series.buckets_size(); ++i) {
    const uint64_t count = series.buckets(i);
    if (static_cast<double>(below + count) >= rank && count > 0) {
      if (i >= family.bounds_size()) {
        // In the +Inf bucket: the best answer is the highest finite bound.
        return family.bounds_size() > 0 ? family.bounds(family.bounds_size() - 1) : 0;
      }
      const double lower = i == 0 ? 0 : family.bounds(i - 1);
      const double upper = family.bounds(i);
      return lower +
             (upper - lower) * ((rank - static_cast<double>(below)) / static_cast<double>(count));
    }
    below += count;
  }
  return family.bounds_size() > 0 ? family.bounds(family.bounds_size() - 1) : 0;
}

absl::StatusOr<std::shared_ptr<const NameFilter>> NameFilter::compile(const std::string& pattern) {
  std::shared_ptr<NameFilter> filter(new NameFilter());
  const int rc = ::regcomp(&filter->re_, pattern.c_str(), REG_EXTENDED | REG_NOSUB);
  if (rc != 0) {
    char message[256];
    ::regerror(rc, &filter->re_, message, sizeof(message));
    filter->re_ = regex_t{}; // (nothing to free after a failed regcomp)
    return absl::InvalidArgumentError(message);
  }
  filter->compiled_ = true;
  return std::shared_ptr<const NameFilter>(std::move(filter));
}

NameFilter::~NameFilter() {
  if (compiled_) {
    ::regfree(&re_);
  }
}

bool NameFilter::matches(const std::string& name) const {
  return ::regexec(&re_, name.c_str(), 0, nullptr, 0) == 0;
}

std::string renderPrometheus(const StatsSnapshot& snapshot, const NameFilter* filter) {
  std::string out;
  for (const auto* f : sortedFamilies(snapshot, filter)) {
    if (f->series().empty() && !f->label_names().empty()) {
      continue;
    }
    out += "# HELP ";
    out += f->name();
    out += ' ';
    stats::appendHelpText(out, f->help());
    out += "\n# TYPE ";
    out += f->name();
    out += ' ';
    out += typeName(f->type());
    out += '\n';
    for (const auto& s : f->series()) {
      if (f->type() != StatsSnapshot::HISTOGRAM) {
        out += cat(f->name(), labels(*f, s), " ", s.value(), "\n");
        continue;
      }
      uint64_t cumulative = 0;
      for (int i = 0; i < s.buckets_size(); ++i) {
        cumulative += s.buckets(i);
        const std::string le =
            i < f->bounds_size() ? stats::formatSampleValue(f->bounds(i)) : "+Inf";
        out += cat(f->name(), "_bucket", labels(*f, s, "le", le), " ", cumulative, "\n");
      }
      out += cat(f->name(), "_sum", labels(*f, s), " ", stats::formatSampleValue(s.sum()), "\n");
      out += cat(f->name(), "_count", labels(*f, s), " ", cumulative, "\n");
    }
  }
  return out;
}

std::string renderText(const StatsSnapshot& snapshot, const NameFilter* filter) {
  std::map<std::string, std::string> lines;
  for (const auto* f : sortedFamilies(snapshot, filter)) {
    for (const auto& s : f->series()) {
      const std::string name = f->name() + labels(*f, s);
      if (f->type() != StatsSnapshot::HISTOGRAM) {
        lines[name] = std::to_string(s.value());
        continue;
      }
      lines[cat(f->name(), "_count", labels(*f, s))] = std::to_string(total(s));
      lines[cat(f->name(), "_sum", labels(*f, s))] = stats::formatSampleValue(s.sum());
      lines[name] = cat("P50 ", stats::formatSampleValue(histogramQuantile(*f, s, 0.5)), " P90 ",
                        stats::formatSampleValue(histogramQuantile(*f, s, 0.9)), " P99 ",
                        stats::formatSampleValue(histogramQuantile(*f, s, 0.99)));
    }
  }
  std::string out;
  for (const auto& [k, v] : lines) {
    out += k;
    out += ": ";
    out += v;
    out += '\n';
  }
  return out;
}

std::string renderJson(const StatsSnapshot& snapshot, const NameFilter* filter) {
  std::string out = "{\"stats\":[";
  bool first_family = true;
  for (const auto* f : sortedFamilies(snapshot, filter)) {
    if (!first_family) {
      out += ',';
    }
    first_family = false;
    out += "{\"name\":";
    json::appendString(out, f->name());
    out += ",\"type\":\"";
    out += typeName(f->type());
    out += "\",\"help\":";
    json::appendString(out, f->help());
    out += ",\"series\":[";
    for (int i = 0; i < f->series_size(); ++i) {
      const auto& s = f->series(i);
      if (i > 0) {
        out += ',';
      }
      out += "{\"labels\":{";
      for (int l = 0; l < f->label_names_size(); ++l) {
        if (l > 0) {
          out += ',';
        }
        json::appendString(out, f->label_names(l));
        out += ':';
        json::appendString(out, l < s.label_values_size() ? s.label_values(l) : "");
      }
      out += '}';
      if (f->type() != StatsSnapshot::HISTOGRAM) {
        out += cat(",\"value\":", s.value(), "}");
        continue;
      }
      out += ",\"bounds\":[";
      for (int b = 0; b < f->bounds_size(); ++b) {
        out += cat(b > 0 ? "," : "", stats::formatSampleValue(f->bounds(b)));
      }
      out += "],\"counts\":[";
      for (int b = 0; b < s.buckets_size(); ++b) {
        out += cat(b > 0 ? "," : "", s.buckets(b));
      }
      out += cat("],\"count\":", total(s), ",\"sum\":", stats::formatSampleValue(s.sum()), "}");
    }
    out += "]}";
  }
  out += "]}";
  return out;
}

} // namespace pounce::server::admin
