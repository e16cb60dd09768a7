#pragma once

#include <google/protobuf/repeated_ptr_field.h>

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pounce/config/v1/bootstrap.pb.h"
#include "source/common/config/yaml_proto.h"
#include "source/common/time.h"

namespace pounce::server::admin {

using Bootstrap = pounce::config::v1::Bootstrap;
using FilterList = google::protobuf::RepeatedPtrField<pounce::config::v1::Filter>;

// One applied configuration.
struct ConfigVersion {
  uint64_t version{0};
  SystemTime applied_at;
  // What asked for it: "startup", "PUT /listeners/main/filter_chain", "reload (SIGHUP)",
  // "rollback to 3"...
  std::string source;
  // What it changed, for people ("listener main: filter chain").
  std::vector<std::string> changes;
  Bootstrap bootstrap;
};

// Per listener name, the config version whose filter chain the listener serves: the last
// version that built it (added it, changed its chain, other settings or address). Workers
// report it in /listeners; one that disagrees serves another chain.
using ChainVersions = std::map<std::string, uint64_t, std::less<>>;

// The effective config and the last versions applied (admin.history_size), oldest first.
// Owned by the control plane, main thread only.
class ConfigState {
public:
  // `path`: the config file ("" in quick mode).
  ConfigState(Bootstrap initial, std::string path);

  const Bootstrap& current() const { return history_.back().bootstrap; }
  uint64_t version() const { return history_.back().version; }
  const std::string& path() const { return path_; }
  const std::deque<ConfigVersion>& history() const { return history_; }
  // A kept version, or nullptr.
  const ConfigVersion* find(uint64_t version) const;
  // Records `applied` as the next version; returns it.
  uint64_t record(Bootstrap applied, std::string source, std::vector<std::string> changes);
  // The position of listener `name` in the current config, or -1.
  int listenerIndex(std::string_view name) const;
  // The chain versions of the current config's listeners.
  const ChainVersions& chainVersions() const { return chain_versions_; }
  // What they become if `next` is applied as `version`.
  ChainVersions chainVersionsAfter(const Bootstrap& next, uint64_t version) const;

private:
  std::string path_;
  uint64_t next_{1};
  std::deque<ConfigVersion> history_;
  ChainVersions chain_versions_;
};

// Reads the body of PUT /listeners/{name}/filter_chain: YAML or JSON, either a list of
// filter entries or a map {filter_chain: [...]}, exactly as a listener's filter_chain is
// written in a config file. Errors carry the field path the loader would print for
// listener `listener_index` ("listeners[0].filter_chain[1].typed_config.path") and the
// line and column in the body; `errors` keeps those positions for later build errors.
std::optional<FilterList> parseChainBody(std::string_view body, int listener_index,
                                         config::ConfigErrors& errors);

// The names of `bootstrap`'s listeners, in order ("listener_<i>" when unnamed).
std::vector<std::string> listenerNames(const Bootstrap& bootstrap);

// What differs between two configs, per listener (by name).
struct ConfigDiff {
  std::vector<std::string> chains;   // only the filter chain changed
  std::vector<std::string> replaced; // other settings changed, same address
  std::vector<std::string> moved;    // the address changed
  std::vector<std::string> added;
  std::vector<std::string> removed;
  bool logging{false};
  // admin.allowed_hosts or admin.history_size: read from the current config, so they apply
  // once it is recorded.
  bool admin_settings{false};
  // Top-level fields that only apply when the server starts.
  std::vector<std::string> restart_needed;

  bool empty() const;
  // Nothing but filter chains (and log levels) changed.
  bool chainsOnly() const;
  std::vector<std::string> describe() const;
};
ConfigDiff diffConfigs(const Bootstrap& from, const Bootstrap& to);

// Copies into `candidate` the fields of `current` that only take effect when the server
// starts (concurrency, workers, reload, watch_config, the admin address and token), so the
// effective config never claims what is not running. Returns the names of those that
// differed (to report "restart needed").
std::vector<std::string> keepStartupFields(const Bootstrap& current, Bootstrap& candidate);

// Sets log levels and format from a config's `logging` section.
void applyLoggingConfig(const pounce::config::v1::Logging& logging);

} // namespace pounce::server::admin
