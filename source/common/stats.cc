#include "source/common/stats.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <map>

#include "source/common/json.h"

namespace pounce::stats {

namespace {

constexpr uint32_t kPageSlots = Store::kPageSlots;
constexpr uint32_t kMaxPages = Store::kMaxPages;

std::string seriesKey(const std::vector<std::string>& values) {
  std::string key;
  for (const auto& v : values) {
    key += v;
    key += '\x1f';
  }
  return key;
}

std::string labelText(const Family& f, const Series& s, std::string_view extra_name = {},
                      std::string_view extra_value = {}) {
  if (f.label_names.empty() && extra_name.empty()) {
    return "";
  }
  std::string out = "{";
  bool first = true;
  for (size_t i = 0; i < f.label_names.size(); ++i) {
    if (!first) {
      out += ',';
    }
    first = false;
    out += f.label_names[i];
    out += "=\"";
    appendLabelValue(out, s.labelValues()[i]);
    out += '"';
  }
  if (!extra_name.empty()) {
    if (!first) {
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

} // namespace

std::atomic<uint64_t>& Store::ThreadBlock::slot(uint32_t index) {
  auto* page = pages[index / kPageSlots].load(std::memory_order_acquire);
  if (page == nullptr) {
    page = new std::atomic<uint64_t>[kPageSlots];
    for (uint32_t i = 0; i < kPageSlots; ++i) {
      page[i].store(0, std::memory_order_relaxed);
    }
    pages[index / kPageSlots].store(page, std::memory_order_release);
  }
  return page[index % kPageSlots];
}

Store& Store::global() {
  static Store* store = new Store();
  return *store;
}

namespace {
// This thread's block of the global store: every series lives there, so the hot path
// (addSlot, observe) reads one thread-local pointer instead of going through global().
Store::ThreadBlock& currentBlock() {
  Store::ThreadBlock* block = Store::t_block;
  return block != nullptr ? *block : Store::global().threadBlock();
}
} // namespace

Store::ThreadBlock& Store::threadBlock() {
  if (t_block == nullptr) {
    t_block = new ThreadBlock();
    std::lock_guard<std::mutex> lock(lock_);
    blocks_.push_back(t_block);
  }
  return *t_block;
}

uint64_t Store::readSlot(uint32_t slot) const {
  uint64_t total = 0;
  std::lock_guard<std::mutex> lock(lock_);
  for (const auto* block : blocks_) {
    total += block->read(slot);
  }
  return total;
}

double Store::readDoubleSlot(uint32_t slot) const {
  double total = 0;
  std::lock_guard<std::mutex> lock(lock_);
  for (const auto* block : blocks_) {
    const uint64_t bits = block->read(slot);
    double v;
    std::memcpy(&v, &bits, sizeof(v));
    total += v;
  }
  return total;
}

uint32_t Store::allocateSlots(uint32_t n) {
  const uint32_t base = next_slot_.fetch_add(n);
  if (base + n > kPageSlots * kMaxPages) {
    abort(); // over four million series: a label with unbounded values is a bug
  }
  return base;
}

void Series::addSlotSlow(uint32_t slot, uint64_t n) const {
  auto& s = currentBlock().slot(slot);
  s.store(s.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

void Series::set(int64_t value) const {
  set_mode_.store(true, std::memory_order_relaxed);
  set_value_.store(value, std::memory_order_relaxed);
}

void Series::observe(double value) const {
  const auto& buckets = family_->buckets;
  const auto n = static_cast<uint32_t>(buckets.size());
  uint32_t i = 0;
  while (i < n && value > buckets[i]) {
    ++i;
  }
  addSlot(base_ + i, 1);
  // The sum is a double kept in its slot's bits. addSlot made this thread's block; the
  // sum's page is the bucket's but for a histogram that straddles two pages.
  const uint32_t sum_slot = base_ + n + 1;
  Store::ThreadBlock& block = *Store::t_block;
  auto* page = block.pages[sum_slot / Store::kPageSlots].load(std::memory_order_relaxed);
  auto& sum = page != nullptr ? page[sum_slot % Store::kPageSlots] : block.slot(sum_slot);
  double current;
  uint64_t bits = sum.load(std::memory_order_relaxed);
  std::memcpy(&current, &bits, sizeof(current));
  current += value;
  std::memcpy(&bits, &current, sizeof(bits));
  sum.store(bits, std::memory_order_relaxed);
}

int64_t Series::value() const {
  if (set_mode_) {
    return set_value_.load(std::memory_order_relaxed);
  }
  return static_cast<int64_t>(Store::global().readSlot(base_));
}

std::vector<uint64_t> Series::bucketCounts() const {
  std::vector<uint64_t> out(family_->buckets.size() + 1);
  for (uint32_t i = 0; i < out.size(); ++i) {
    out[i] = Store::global().readSlot(base_ + i);
  }
  return out;
}

double Series::sum() const {
  return Store::global().readDoubleSlot(base_ + static_cast<uint32_t>(family_->buckets.size()) + 1);
}

uint64_t Series::count() const {
  uint64_t total = 0;
  for (auto c : bucketCounts()) {
    total += c;
  }
  return total;
}

} // namespace pounce::stats

namespace pounce::stats {

namespace {

std::unique_ptr<Family> makeFamily(std::string_view name, std::string_view help, Type type,
                                   std::vector<std::string> label_names,
                                   std::vector<double> buckets) {
  auto family = std::make_unique<Family>();
  family->name = std::string(name);
  family->help = std::string(help);
  family->type = type;
  family->label_names = std::move(label_names);
  std::sort(buckets.begin(), buckets.end());
  family->buckets = std::move(buckets);
  return family;
}

} // namespace

Family& Store::family(std::string_view name, std::string_view help, Type type,
                      std::vector<std::string> label_names, std::vector<double> buckets) {
  std::lock_guard<std::mutex> lock(lock_);
  auto it = by_name_.find(std::string(name));
  if (it != by_name_.end()) {
    return *it->second;
  }
  auto family = makeFamily(name, help, type, std::move(label_names), std::move(buckets));
  Family& ref = *family;
  by_name_.emplace(ref.name, &ref);
  families_.push_back(std::move(family));
  return ref;
}

Family* Store::replaceUnheld(std::string_view name, std::string_view help, Type type,
                             std::vector<std::string> label_names, std::vector<double> buckets) {
  std::lock_guard<std::mutex> lock(lock_);
  auto it = by_name_.find(std::string(name));
  if (it == by_name_.end()) {
    return nullptr;
  }
  if (it->second->holders.load(std::memory_order_acquire) != 0) {
    return nullptr;
  }
  auto family = makeFamily(name, help, type, std::move(label_names), std::move(buckets));
  Family& ref = *family;
  for (auto& slot : families_) {
    if (slot.get() == it->second) {
      replaced_.push_back(std::move(slot));
      slot = std::move(family); // same place in the creation order
      break;
    }
  }
  it->second = &ref;
  return &ref;
}

const Series& Store::series(Family& family, const std::vector<std::string>& label_values) {
  const std::string key = seriesKey(label_values);
  std::lock_guard<std::mutex> lock(lock_);
  auto it = family.by_key.find(key);
  if (it != family.by_key.end()) {
    return *it->second;
  }
  auto series = std::make_unique<Series>();
  series->family_ = &family;
  series->label_values_ = label_values;
  series->label_values_.resize(family.label_names.size());
  const uint32_t slots =
      family.type == Type::Histogram ? static_cast<uint32_t>(family.buckets.size()) + 2 : 1;
  series->base_ = allocateSlots(slots);
  Series& ref = *series;
  family.by_key.emplace(key, &ref);
  family.series.push_back(std::move(series));
  return ref;
}

const Series& Store::counter(std::string_view name, std::string_view help) {
  return series(family(name, help, Type::Counter));
}

const Series& Store::gauge(std::string_view name, std::string_view help) {
  return series(family(name, help, Type::Gauge));
}

namespace {

struct Snapshot {
  const Family* family;
  std::vector<const Series*> series;
};

} // namespace

std::string Store::prometheusText() const {
  std::vector<Snapshot> snap;
  {
    std::lock_guard<std::mutex> lock(lock_);
    for (const auto& f : families_) {
      Snapshot s{f.get(), {}};
      for (const auto& series : f->series) {
        s.series.push_back(series.get());
      }
      snap.push_back(std::move(s));
    }
  }
  std::sort(snap.begin(), snap.end(),
            [](const Snapshot& a, const Snapshot& b) { return a.family->name < b.family->name; });
  std::string out;
  for (const auto& s : snap) {
    const Family& f = *s.family;
    if (s.series.empty() && !f.label_names.empty()) {
      continue;
    }
    out += "# HELP " + f.name + " ";
    appendHelpText(out, f.help);
    out += "\n# TYPE " + f.name + " ";
    out += f.type == Type::Counter ? "counter" : f.type == Type::Gauge ? "gauge" : "histogram";
    out += '\n';
    for (const Series* series : s.series) {
      if (f.type != Type::Histogram) {
        out += f.name + labelText(f, *series) + " " + std::to_string(series->value()) + "\n";
        continue;
      }
      const auto counts = series->bucketCounts();
      uint64_t cumulative = 0;
      for (size_t i = 0; i < counts.size(); ++i) {
        cumulative += counts[i];
        const std::string le = i < f.buckets.size() ? formatSampleValue(f.buckets[i]) : "+Inf";
        out += f.name + "_bucket" + labelText(f, *series, "le", le) + " " +
               std::to_string(cumulative) + "\n";
      }
      out +=
          f.name + "_sum" + labelText(f, *series) + " " + formatSampleValue(series->sum()) + "\n";
      out += f.name + "_count" + labelText(f, *series) + " " + std::to_string(cumulative) + "\n";
    }
  }
  return out;
}

std::string Store::plainText() const {
  std::map<std::string, std::string> lines;
  std::lock_guard<std::mutex> guard(lock_);
  for (const auto& f : families_) {
    for (const auto& series : f->series) {
      const std::string name = f->name + labelText(*f, *series);
      if (f->type == Type::Histogram) {
        uint64_t count = 0;
        double sum = 0;
        // Read without the store lock held twice: compute from blocks directly.
        for (uint32_t i = 0; i <= f->buckets.size(); ++i) {
          for (const auto* block : blocks_) {
            count += block->read(series->base_ + i);
          }
        }
        for (const auto* block : blocks_) {
          const uint64_t bits = block->read(series->base_ + f->buckets.size() + 1);
          double v;
          std::memcpy(&v, &bits, sizeof(v));
          sum += v;
        }
        lines[name + "_count"] = std::to_string(count);
        lines[name + "_sum"] = formatSampleValue(sum);
      } else {
        int64_t value = 0;
        if (series->set_mode_) {
          value = series->set_value_.load();
        } else {
          for (const auto* block : blocks_) {
            value += static_cast<int64_t>(block->read(series->base_));
          }
        }
        lines[name] = std::to_string(value);
      }
    }
  }
  std::string out;
  for (const auto& [k, v] : lines) {
    out += k + ": " + v + "\n";
  }
  return out;
}

std::string Store::jsonText() const {
  std::string text = plainText();
  std::string out = "{";
  bool first = true;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t nl = text.find('\n', pos);
    const std::string_view line(text.data() + pos, nl - pos);
    pos = nl + 1;
    const size_t colon = line.rfind(": ");
    if (!first) {
      out += ',';
    }
    first = false;
    json::appendString(out, line.substr(0, colon));
    out += ':';
    out += line.substr(colon + 2);
  }
  out += '}';
  return out;
}

std::vector<const Family*> Store::families() const {
  std::lock_guard<std::mutex> lock(lock_);
  std::vector<const Family*> out;
  out.reserve(families_.size());
  for (const auto& f : families_) {
    out.push_back(f.get());
  }
  return out;
}

std::vector<const Series*> Store::seriesOf(std::string_view name) const {
  std::vector<const Series*> out;
  std::lock_guard<std::mutex> lock(lock_);
  auto it = by_name_.find(std::string(name));
  if (it != by_name_.end()) {
    for (const auto& series : it->second->series) {
      out.push_back(series.get());
    }
  }
  return out;
}

int64_t Store::valueOf(std::string_view name, const std::vector<std::string>& label_values) const {
  const Series* series = nullptr;
  {
    std::lock_guard<std::mutex> lock(lock_);
    auto it = by_name_.find(std::string(name));
    if (it == by_name_.end()) {
      return 0;
    }
    auto sit = it->second->by_key.find(seriesKey(label_values));
    if (sit == it->second->by_key.end()) {
      return 0;
    }
    series = sit->second;
  }
  return series->value();
}

} // namespace pounce::stats

namespace pounce::stats {

void appendLabelValue(std::string& out, std::string_view value) {
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

void appendHelpText(std::string& out, std::string_view help) {
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

std::string formatSampleValue(double v) {
  if (std::isinf(v)) {
    return v > 0 ? "+Inf" : "-Inf";
  }
  if (std::isnan(v)) {
    return "NaN";
  }
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    return std::to_string(static_cast<long long>(v));
  }
  // The shortest text that reads back as the same double: two bucket bounds that differ
  // only past the ninth digit stay two labels.
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, r.ptr);
}

} // namespace pounce::stats
