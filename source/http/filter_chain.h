#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "source/http/filter.h"

namespace pounce::http {

// Makes one filter instance for a stream. Built once from a validated config (on the main
// thread) and called on I/O threads for every stream, so it must be thread-safe.
using FilterFactoryCb = std::function<StreamFilterPtr()>;

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
