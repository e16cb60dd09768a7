#include "source/http/filter_config.h"

#include <algorithm>

namespace pounce::http {

FilterRegistry& FilterRegistry::get() {
  static FilterRegistry* registry = new FilterRegistry();
  return *registry;
}

void FilterRegistry::add(std::unique_ptr<FilterConfigFactory> factory) {
  factories_.push_back(std::move(factory));
}

const FilterConfigFactory* FilterRegistry::findByName(std::string_view name) const {
  for (const auto& f : factories_) {
    if (f->name() == name) {
      return f.get();
    }
  }
  return nullptr;
}

const FilterConfigFactory* FilterRegistry::findByConfigType(std::string_view type) const {
  for (const auto& f : factories_) {
    auto config = f->createEmptyConfig();
    if (config != nullptr && config->GetDescriptor()->full_name() == type) {
      return f.get();
    }
  }
  return nullptr;
}

std::vector<const FilterConfigFactory*> FilterRegistry::all() const {
  std::vector<const FilterConfigFactory*> out;
  for (const auto& f : factories_) {
    out.push_back(f.get());
  }
  std::sort(out.begin(), out.end(),
            [](const auto* a, const auto* b) { return a->name() < b->name(); });
  return out;
}

} // namespace pounce::http
