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

  // Makes an in-place filter at `at` from the factory's `state` (see constructFn()).
  using ConstructFn = StreamFilter* (*)(const void* state, void* at);

  // `construct(at)` runs `new (at) F(...)` and returns the filter.
  template <class F, class Construct>
  static FilterFactoryCb inPlace(Construct construct) {
    // Exactly an F in exactly its slot: a subclass of F could be larger than the slot.
    static_assert(std::is_final_v<F>, "in-place filters must be final classes");
    static_assert(std::is_same_v<std::invoke_result_t<const Construct&, void*>, F*>,
                  "construct(at) must return the F it made at `at`");
    static_assert(alignof(F) <= kInPlaceAlign);
    FilterFactoryCb cb;
    auto state = std::make_shared<const Construct>(std::move(construct));
    // A plain function of the callable, not a std::function: a stream makes its filters
    // with one direct call each into the callable's own code.
    cb.construct_fn_ = [](const void* s, void* at) -> StreamFilter* {
      return (*static_cast<const Construct*>(s))(at);
    };
    // Outside a stream (tests, tools) the filter goes on the heap like any other.
    cb.make_ = [state]() {
      return StreamFilterPtr((*state)(StreamFilter::operator new(sizeof(F))));
    };
    cb.construct_state_ = std::move(state);
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
  // constructFn()(constructState(), at) constructs the filter at `at` (inPlaceBytes()
  // bytes, aligned to kInPlaceAlign); the caller destroys it with its destructor and frees
  // the memory itself. Null for a factory that allocates its filters itself.
  ConstructFn constructFn() const { return construct_fn_; }
  const void* constructState() const { return construct_state_.get(); }

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
  ConstructFn construct_fn_{nullptr};
  std::shared_ptr<const void> construct_state_; // the callable construct_fn_ calls
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
  // Its slots point at its entries: a chain stays where it was made.
  FilterChain(const FilterChain&) = delete;
  FilterChain& operator=(const FilterChain&) = delete;

  const std::vector<FilterChainEntry>& entries() const { return entries_; }
  size_t size() const { return size_; }
  uint64_t version() const { return version_; }
  // What the chain's in-place filters take together (see FilterFactoryCb::inPlace).
  size_t inPlaceBytes() const { return in_place_bytes_; }

  // How a stream makes filter i, side by side for its per-request loop (the entries hold
  // names and type-erased factories a stream does not need to touch).
  struct Slot {
    // Makes the filter at `offset` in the stream's in-place area from `state`; null for a
    // filter the factory allocates itself (made by `factory`, owned by the stream).
    FilterFactoryCb::ConstructFn construct;
    const void* state;
    const FilterFactoryCb* factory;
    uint32_t offset;
    uint32_t events; // FilterEvent bits
  };
  const Slot* slots() const { return slots_.data(); }

  // Names in order, for banners and the admin API.
  std::vector<std::string> names() const;

  // Where a stream's walk over the filters for `event` (one FilterEvent bit) goes next, so
  // that it steps over the filters that do not handle the event instead of testing each:
  // the first filter at or after `i` (i <= size()) that handles it, or size();
  size_t nextHandler(uint32_t event, size_t i) const {
    return next_[eventSlot(event) * (size_ + 1) + i];
  }
  // and the last filter at or before `i` (i < size()) that handles it, or -1.
  int prevHandler(uint32_t event, int i) const {
    return prev_[eventSlot(event) * size_ + static_cast<size_t>(i)];
  }

private:
  static constexpr size_t kEvents = std::bit_width(FilterEvent::All);
  static constexpr size_t eventSlot(uint32_t event) {
    return static_cast<size_t>(std::countr_zero(event));
  }

  std::vector<FilterChainEntry> entries_;
  size_t size_; // entries_.size(), kept: the walks' table lookups need it
  uint64_t version_;
  size_t in_place_bytes_{0};
  std::vector<Slot> slots_;
  std::vector<uint32_t> next_; // kEvents rows of size() + 1
  std::vector<int32_t> prev_;  // kEvents rows of size()
};
using FilterChainSharedPtr = std::shared_ptr<const FilterChain>;

} // namespace pounce::http
