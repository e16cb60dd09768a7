#pragma once

#include <google/protobuf/repeated_ptr_field.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "pounce/config/v1/bootstrap.pb.h"
#include "source/common/config/yaml_proto.h"
#include "source/common/server_context.h"
#include "source/http/conn_manager.h"
#include "source/http/filter_config.h"
#include "source/network/address.h"
#include "source/network/transport_socket.h"

namespace pounce::server {

using Bootstrap = pounce::config::v1::Bootstrap;

// Reads a YAML (or JSON) config file into a Bootstrap, strictly. Errors carry the file,
// line, column and field path of every problem found.
// `marks`, if given, keeps where each field was in the file so later errors (from building
// filter chains) can point at the right line too. `adjust`, if given, changes the config
// read before it is checked (command-line flags that override the file, so that a flag can
// replace a section the file got wrong); an error from it is returned as it is.
absl::StatusOr<Bootstrap>
loadBootstrapFile(const std::string& path, config::ConfigErrors* marks = nullptr,
                  const std::function<absl::Status(Bootstrap&)>& adjust = nullptr);
absl::StatusOr<Bootstrap> loadBootstrapText(std::string_view text, const std::string& source,
                                            config::ConfigErrors* marks = nullptr);

// Checks what the schema cannot: names, addresses, ranges.
void validateBootstrap(const Bootstrap& bootstrap, config::ConfigErrors& errors);

// Everything about a listener that is fixed once built.
struct ListenerConfig {
  std::string name;
  network::Address address;
  uint32_t pipe_mode{0660};
  uint32_t backlog{2048};
  uint32_t max_connections{10000};
  std::shared_ptr<const http::HttpSettings> settings;
  http::FilterChainSharedPtr chain;
  network::TransportSocketFactorySharedPtr transport;
};

// Where a listener listens, without building its filter chain (the supervisor binds
// sockets this way without importing anything).
struct ListenSpec {
  std::string name;
  network::Address address;
  uint32_t pipe_mode{0660};
  uint32_t backlog{2048};
};
std::vector<ListenSpec> listenSpecs(const Bootstrap& bootstrap, const std::string& config_dir);
// A listener's name: its `name`, or "listener_<index>".
std::string listenerName(const pounce::config::v1::Listener& listener, int index);

// Builds filter chains: each filter's config is validated and turned into a factory.
class ConfigBuilder {
public:
  ConfigBuilder(ServerContext& server, std::string config_dir, bool validate_only)
      : server_(server), config_dir_(std::move(config_dir)), validate_only_(validate_only) {}

  // `path` is the chain's field path for messages ("listeners[0].filter_chain").
  http::FilterChainSharedPtr
  buildFilterChain(const google::protobuf::RepeatedPtrField<pounce::config::v1::Filter>& filters,
                   const std::string& listener_name, const std::string& path,
                   config::ConfigErrors& errors, uint64_t version);

  // Builds every listener (or only the one at index `only`), their chains getting
  // `version`, or the version `chain_versions` gives for their name.
  std::vector<ListenerConfig>
  buildListeners(const Bootstrap& bootstrap, config::ConfigErrors& errors, uint64_t version = 1,
                 int only = -1,
                 const std::map<std::string, uint64_t, std::less<>>* chain_versions = nullptr);

  std::string resolvePath(std::string_view path) const;

private:
  ServerContext& server_;
  std::string config_dir_;
  bool validate_only_;
};

http::HttpSettings httpSettingsFrom(const std::string& listener_name,
                                    const pounce::config::v1::HttpOptions& options);

} // namespace pounce::server
