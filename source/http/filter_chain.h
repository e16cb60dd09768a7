#pragma once

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
// skips the others; any other callable gets every event.
class FilterFactoryCb {
public:
  FilterFactoryCb() = default;
  FilterFactoryCb(std::nullptr_t) {}
  template <class Fn, class = std::enable_if_t<std::is_invocable_v<Fn&> &&
                                               !std::is_same_v<std::decay_t<Fn>, FilterFactoryCb>>>
  FilterFactoryCb(Fn make) : make_(std::move(make)), events_(eventsOfResult<std::invoke_result_t<Fn&>>()) {}

  StreamFilterPtr operator()() const { return make_(); }
  explicit operator bool() const { return static_cast<bool>(make_); }
  // FilterEvent bits: the events the filters made here handle.
  uint32_t events() const { return events_; }

private:
  template <class R> static constexpr uint32_t eventsOfResult() {
    if constexpr (IsUniquePtr<R>::value) {
      return filterEventsOf<typename R::element_type>();
    } else {
      return FilterEvent::All;
    }
  }
  template <class R> struct IsUniquePtr : std::false_type {};
  template <class T> struct IsUniquePtr<std::unique_ptr<T>> : std::true_type {};

  std::function<StreamFilterPtr()> make_;
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
  FilterChain(std::vector<FilterChainEntry> entries, uint64_t version)
      : entries_(std::move(entries)), version_(version) {}

  const std::vector<FilterChainEntry>& entries() const { return entries_; }
  size_t size() const { return entries_.size(); }
  uint64_t version() const { return version_; }

  // Names in order, for banners and the admin API.
  std::vector<std::string> names() const;

private:
  std::vector<FilterChainEntry> entries_;
  uint64_t version_;
};
using FilterChainSharedPtr = std::shared_ptr<const FilterChain>;

} // namespace pounce::http
