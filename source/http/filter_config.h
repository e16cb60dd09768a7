#pragma once

#include <google/protobuf/message.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "source/common/server_context.h"
#include "source/http/filter_chain.h"

namespace pounce::http {

// What a filter factory may use while turning its config into a FilterFactoryCb. Runs on
// the main thread, at load time and on every chain swap.
class FactoryContext {
public:
  virtual ~FactoryContext() = default;
  virtual ServerContext& server() = 0;
  virtual const std::string& listenerName() const = 0;
  // Resolves a path from the config: relative paths are relative to the config file's
  // directory (or the working directory in quick mode).
  virtual std::string resolvePath(std::string_view path) const = 0;
  // `pounce --mode validate`: build everything, start nothing.
  virtual bool validateOnly() const = 0;
  // The position of this filter in its chain (0-based) and the chain's length.
  virtual size_t filterIndex() const = 0;
  virtual size_t chainLength() const = 0;
};

// One per filter type, registered once per process with POUNCE_REGISTER_FILTER. A factory
// validates its config completely: a config it accepts must not fail later.
class FilterConfigFactory {
public:
  virtual ~FilterConfigFactory() = default;
  // "pounce.filters.<name>".
  virtual std::string name() const = 0;
  // A default instance of the config message, or nullptr if the filter takes no config.
  virtual std::unique_ptr<google::protobuf::Message> createEmptyConfig() const = 0;
  // Terminal filters answer every request that reaches them and must end a chain.
  virtual bool isTerminal() const { return false; }
  // Errors name the field inside the config ("path: must start with '/'"); the loader
  // adds the file, line and the path of the filter.
  virtual absl::StatusOr<FilterFactoryCb>
  createFilterFactory(const google::protobuf::Message& config, FactoryContext& context) const = 0;
};

class FilterRegistry {
public:
  static FilterRegistry& get();
  void add(std::unique_ptr<FilterConfigFactory> factory);
  const FilterConfigFactory* findByName(std::string_view name) const;
  // By config message type, e.g. "pounce.filters.health.v1.Health".
  const FilterConfigFactory* findByConfigType(std::string_view type) const;
  std::vector<const FilterConfigFactory*> all() const;

private:
  std::vector<std::unique_ptr<FilterConfigFactory>> factories_;
};

template <class T>
class RegisterFilterFactory {
public:
  RegisterFilterFactory() { FilterRegistry::get().add(std::make_unique<T>()); }
};

} // namespace pounce::http

#define POUNCE_REGISTER_FILTER(FACTORY)                                                            \
  static ::pounce::http::RegisterFilterFactory<FACTORY> pounce_registered_##FACTORY
