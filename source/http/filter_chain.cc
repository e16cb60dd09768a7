#include "source/http/filter_chain.h"

namespace pounce::http {

std::vector<std::string> FilterChain::names() const {
  std::vector<std::string> out;
  out.reserve(entries_.size());
  for (const auto& e : entries_) {
    out.push_back(e.name);
  }
  return out;
}

} // namespace pounce::http
