#include "source/http/filter_chain.h"

namespace pounce::http {

FilterChain::FilterChain(std::vector<FilterChainEntry> entries, uint64_t version)
    : entries_(std::move(entries)), size_(entries_.size()), version_(version) {
  const size_t n = size_;
  next_.resize(kEvents * (n + 1));
  prev_.resize(kEvents * n);
  for (size_t e = 0; e < kEvents; ++e) {
    const uint32_t event = 1u << e;
    uint32_t* next = next_.data() + e * (n + 1);
    next[n] = static_cast<uint32_t>(n);
    for (size_t i = n; i-- > 0;) {
      next[i] =
          (entries_[i].factory.events() & event) != 0 ? static_cast<uint32_t>(i) : next[i + 1];
    }
    // data() + offset, not &prev_[...]: a chain of no filters has an empty table.
    int32_t* prev = prev_.data() + e * n;
    for (size_t i = 0; i < n; ++i) {
      const int32_t before = i == 0 ? -1 : prev[i - 1];
      prev[i] = (entries_[i].factory.events() & event) != 0 ? static_cast<int32_t>(i) : before;
    }
  }
  slots_.reserve(n);
  for (const auto& e : entries_) {
    const FilterFactoryCb& f = e.factory;
    const bool in_place = f.inPlaceBytes() != 0;
    slots_.push_back(Slot{in_place ? f.constructFn() : nullptr, f.constructState(), &f,
                          static_cast<uint32_t>(in_place_bytes_), f.events()});
    in_place_bytes_ += f.inPlaceBytes();
  }
}

std::vector<std::string> FilterChain::names() const {
  std::vector<std::string> out;
  out.reserve(entries_.size());
  for (const auto& e : entries_) {
    out.push_back(e.name);
  }
  return out;
}

} // namespace pounce::http
