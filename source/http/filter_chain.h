#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "source/http/filter.h"

namespace pounce::http {

// Makes one filter instance for a stream. Built once from a validated config (on the main
// thread) and called on I/O threads for every stream, so it must be thread-safe.
//
// Built from a callable. When the callable returns `std::unique_ptr<F>` of a final filter
// class F, the factory also knows which events F handles (filterEventsOf) and the stream
// skips the others; any other callable gets every event. Built with inPlace<F>(), the
// factory constructs F into memory the stream provides: a stream then makes all of its
// filters in the one block it allocates anyway, instead of one allocation (and one free)
// per filter.
class FilterFactoryCb {
public:
  // Memory for in-place filters is handed out in multiples of this (and aligned to it).
  static constexpr size_t kInPlaceAlign = alignof(std::max_align_t);

  FilterFactoryCb() = default;
  FilterFactoryCb(std::nullptr_t) {}
  template <class Fn, class = std::enable_if_t<std::is_invocable_v<Fn&> &&
                                               !std::is_same_v<std::decay_t<Fn>, FilterFactoryCb>>>
  FilterFactoryCb(Fn make)
      : make_(std::move(make)), events_(eventsOfResult<std::invoke_result_t<Fn&>>()) {}

  // `construct(at)` runs `new (at) F(...)` and returns the filter.
  template <class F, class Construct>
  static FilterFactoryCb inPlace(Construct construct) {
    // Exactly an F in exactly its slot: a subclass of F could be larger than the slot.
    static_assert(std::is_final_v<F>, "in-place filters must be final classes");
    static_assert(std::is_same_v<std::invoke_result_t<Construct&, void*>, F*>,
                  "construct(at) must return the F it made at `at`");
    static_assert(alignof(F) <= kInPlaceAlign);
    FilterFactoryCb cb;
    cb.construct_ = [construct = std::move(construct)](void* at) -> StreamFilter* {
      return construct(at);
    };
    // Outside a stream (tests, tools) the filter goes on the heap like any other.
    cb.make_ = [construct = cb.construct_]() {
      return StreamFilterPtr(construct(StreamFilter::operator new(sizeof(F))));
    };
    cb.in_place_bytes_ = (sizeof(F) + kInPlaceAlign - 1) / kInPlaceAlign * kInPlaceAlign;
    cb.events_ = filterEventsOf<F>();
    return cb;
  }

  StreamFilterPtr operator()() const { return make_(); }
  explicit operator bool() const { return static_cast<bool>(make_); }
  // FilterEvent bits: the events the filters made here handle.
  uint32_t events() const { return events_; }
  // The bytes an in-place filter takes in the stream's block (a multiple of
  // kInPlaceAlign), or 0 for a factory that allocates its filters itself.
  size_t inPlaceBytes() const { return in_place_bytes_; }
  // Constructs the filter at `at` (inPlaceBytes() bytes, aligned to kInPlaceAlign). The
  // caller destroys it with its destructor and frees the memory itself.
  StreamFilter* constructAt(void* at) const { return construct_(at); }

private:
  template <class R>
  struct IsUniquePtr : std::false_type {};
  template <class T>
  struct IsUniquePtr<std::unique_ptr<T>> : std::true_type {};
  template <class R>
  static constexpr uint32_t eventsOfResult() {
    if constexpr (IsUniquePtr<R>::value) {
      return filterEventsOf<typename R::element_type>();
    } else {
      return FilterEvent::All;
    }
  }

  std::function<StreamFilterPtr()> make_;
  std::function<StreamFilter*(void*)> construct_;
  size_t in_place_bytes_{0};
  uint32_t events_{FilterEvent::All};
};

struct FilterChainEntry {
  std::string name; // e.g. "pounce.filters.health"
  FilterFactoryCb factory;
  bool terminal{false};
};

// An immutable, ordered list of filter factories. Streams keep a reference to the chain
// they started on, so a chain swapped on a live listener serves new streams while streams
// in flight finish on the old one; the old chain (and what its filters hold) is released
// with the last of them.
class FilterChain {
public:
  FilterChain(std::vector<FilterChainEntry> entries, uint64_t version);

  const std::vector<FilterChainEntry>& entries() const { return entries_; }
  size_t size() const { return entries_.size(); }
  uint64_t version() const { return version_; }
  // What the chain's in-place filters take together (see FilterFactoryCb::inPlace).
  size_t inPlaceBytes() const { return in_place_bytes_; }

  // Names in order, for banners and the admin API.
  std::vector<std::string> names() const;

  // Where a stream's walk over the filters for `event` (one FilterEvent bit) goes next, so
  // that it steps over the filters that do not handle the event instead of testing each:
  // the first filter at or after `i` (i <= size()) that handles it, or size();
  size_t nextHandler(uint32_t event, size_t i) const {
    return next_[eventSlot(event) * (entries_.size() + 1) + i];
  }
  // and the last filter at or before `i` (i < size()) that handles it, or -1.
  int prevHandler(uint32_t event, int i) const {
    return prev_[eventSlot(event) * entries_.size() + static_cast<size_t>(i)];
  }

private:
  static constexpr size_t kEvents = std::bit_width(FilterEvent::All);
  static constexpr size_t eventSlot(uint32_t event) {
    return static_cast<size_t>(std::countr_zero(event));
  }

  std::vector<FilterChainEntry> entries_;
  uint64_t version_;
  size_t in_place_bytes_{0};
  std::vector<uint32_t> next_; // kEvents rows of size() + 1
  std::vector<int32_t> prev_;  // kEvents rows of size()
};
using FilterChainSharedPtr = std::shared_ptr<const FilterChain>;

} // namespace pounce::http
