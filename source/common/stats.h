#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace pounce::stats {

// Metrics are written by many threads without locks and merged when read.
//
// Every value lives in a per-thread slot: a thread only ever writes its own slots (plain
// relaxed load + store, no read-modify-write), and a reader sums the slots of all threads.
// Families and series are created under a lock (at config time or the first time a label
// combination is seen) and are never destroyed, so pointers to them stay valid.

enum class Type { Counter, Gauge, Histogram };

class Store;

class Series {
public:
  // Counter / gauge.
  void inc(uint64_t n = 1) const { addSlot(base_, n); }
  void dec(uint64_t n = 1) const {
    addSlot(base_, static_cast<uint64_t>(-static_cast<int64_t>(n)));
  }
  void set(int64_t value) const; // gauges that are set, not moved: kept in slot 0 only
  // Histogram.
  void observe(double value) const;

  int64_t value() const;                      // merged counter/gauge value
  std::vector<uint64_t> bucketCounts() const; // merged, non-cumulative, last = +Inf
  double sum() const;
  uint64_t count() const;

  const std::vector<std::string>& labelValues() const { return label_values_; }

private:
  friend class Store;
  // Inline: a counter's add is a thread-local read, a page read and a store.
  void addSlot(uint32_t slot, uint64_t n) const;
  // The first write of a thread, or to a page it has not used yet.
  void addSlotSlow(uint32_t slot, uint64_t n) const;

  const struct Family* family_{nullptr};
  std::vector<std::string> label_values_;
  uint32_t base_{0}; // first slot; histograms use buckets+1 (inf) + sum slots
  mutable std::atomic<bool> set_mode_{false};
  mutable std::atomic<int64_t> set_value_{0};
};

struct Family {
  std::string name;
  std::string help;
  Type type;
  std::vector<std::string> label_names;
  std::vector<double> buckets; // histogram upper bounds, ascending, without +Inf
  // Configs that write this family's series (see Store::replaceUnheld). Kept by the
  // families that can change shape across config changes; 0 for the others.
  std::atomic<uint32_t> holders{0};
  // Series in creation order.
  std::vector<std::unique_ptr<Series>> series;
  std::unordered_map<std::string, Series*> by_key;
};

class Store {
public:
  static Store& global();

  // Finds or creates a family. A second call with the same name returns the first family
  // (type, labels and buckets of the first call win).
  Family& family(std::string_view name, std::string_view help, Type type,
                 std::vector<std::string> label_names = {}, std::vector<double> buckets = {});
  // Replaces family `name` by a new one of this shape when no config holds it (its
  // `holders` is 0), so a later config can give a histogram other buckets. The old
  // family's series start again at zero; the old objects stay allocated (pointers taken
  // before stay valid) but are no longer listed. Null when the family is held.
  Family* replaceUnheld(std::string_view name, std::string_view help, Type type,
                        std::vector<std::string> label_names, std::vector<double> buckets);
  // Finds or creates the series with these label values (slow path: takes a lock).
  const Series& series(Family& family, const std::vector<std::string>& label_values = {});
  // Convenience for unlabelled metrics.
  const Series& counter(std::string_view name, std::string_view help);
  const Series& gauge(std::string_view name, std::string_view help);

  // Prometheus text exposition format 0.0.4.
  std::string prometheusText() const;
  // {"name{label=\"v\"}": value, ...}; histograms as count/sum.
  std::string jsonText() const;
  // name{labels} value lines, sorted.
  std::string plainText() const;
  // The series of family `name` that exist now (empty if there is no such family). Series
  // live as long as the store, so the pointers stay valid; values are read as usual.
  std::vector<const Series*> seriesOf(std::string_view name) const;
  // Every family, in creation order (the admin API walks them). Families live as long as
  // the store; read their series with seriesOf().
  std::vector<const Family*> families() const;
  // Value of one counter/gauge series (tests, health filter); 0 if absent.
  int64_t valueOf(std::string_view name, const std::vector<std::string>& label_values = {}) const;

  // Per-thread storage (internal): pages of slots, made when first written.
  static constexpr uint32_t kPageSlots = 4096;
  static constexpr uint32_t kMaxPages = 1024;
  struct ThreadBlock {
    std::atomic<std::atomic<uint64_t>*> pages[kMaxPages] = {};

    std::atomic<uint64_t>& slot(uint32_t index);
    uint64_t read(uint32_t index) const {
      auto* page = pages[index / kPageSlots].load(std::memory_order_acquire);
      return page == nullptr ? 0 : page[index % kPageSlots].load(std::memory_order_relaxed);
    }
  };
  // This thread's block of the global store (null until the thread first writes).
  static inline thread_local ThreadBlock* t_block = nullptr;
  ThreadBlock& threadBlock();
  uint64_t readSlot(uint32_t slot) const;
  double readDoubleSlot(uint32_t slot) const; // sum of per-thread doubles

private:
  uint32_t allocateSlots(uint32_t n);

  mutable std::mutex lock_;
  std::vector<std::unique_ptr<Family>> families_;
  std::vector<std::unique_ptr<Family>> replaced_; // kept for readers that still hold them
  std::unordered_map<std::string, Family*> by_name_;
  std::vector<ThreadBlock*> blocks_;
  std::atomic<uint32_t> next_slot_{0};
};

// Pieces of the Prometheus text exposition format (0.0.4), shared by every renderer.
// A label value escapes '\\', '"' and newline; HELP text escapes '\\' and newline.
void appendLabelValue(std::string& out, std::string_view value);
void appendHelpText(std::string& out, std::string_view help);
// A sample value: whole numbers without a fraction, others with 9 significant digits;
// +Inf, -Inf and NaN spelled as Prometheus does.
std::string formatSampleValue(double v);

inline void Series::addSlot(uint32_t slot, uint64_t n) const {
  if (Store::ThreadBlock* block = Store::t_block) {
    // Only this thread writes its pages: a relaxed read of the page pointer it stored.
    if (auto* page = block->pages[slot / Store::kPageSlots].load(std::memory_order_relaxed)) {
      auto& s = page[slot % Store::kPageSlots];
      s.store(s.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
      return;
    }
  }
  addSlotSlow(slot, n);
}

} // namespace pounce::stats
