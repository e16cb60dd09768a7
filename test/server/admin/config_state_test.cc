#include <gtest/gtest.h>

#include "source/server/admin/config_state.h"

namespace pounce::server::admin {
namespace {

constexpr const char* kDirect =
    "type.googleapis.com/pounce.filters.direct_response.v1.DirectResponse";

Bootstrap parse(const std::string& yaml) {
  auto node = config::parseYaml(yaml, "test");
  EXPECT_TRUE(node.ok());
  Bootstrap b;
  config::ConfigErrors errors("test");
  config::yamlToMessage(*node, b, "", errors);
  EXPECT_TRUE(errors.empty()) << errors.text();
  return b;
}

Bootstrap twoListeners() {
  return parse(std::string(R"(
concurrency: 2
listeners:
- name: main
  address: {socket_address: {address: 127.0.0.1, port_value: 8000}}
  filter_chain:
  - name: pounce.filters.direct_response
    typed_config: {"@type": )") +
               kDirect + R"(, body: one}
- name: api
  address: {socket_address: {address: 127.0.0.1, port_value: 8001}}
  filter_chain:
  - name: pounce.filters.direct_response
)");
}

TEST(ChainBody, AcceptsAListOrAFilterChainMap) {
  for (const std::string body :
       {std::string("- name: pounce.filters.request_id\n- name: pounce.filters.direct_response\n"),
        std::string("filter_chain:\n- name: pounce.filters.request_id\n"
                    "- name: pounce.filters.direct_response\n"),
        std::string(R"([{"name": "pounce.filters.request_id"},
                        {"name": "pounce.filters.direct_response"}])")}) {
    config::ConfigErrors errors("request body");
    auto filters = parseChainBody(body, 1, errors);
    ASSERT_TRUE(filters.has_value()) << errors.text();
    ASSERT_EQ(filters->size(), 2);
    EXPECT_EQ((*filters)[0].name(), "pounce.filters.request_id");
  }
}

TEST(ChainBody, ErrorsCarryTheLoadersPathAndTheBodysLine) {
  config::ConfigErrors errors("request body");
  const std::string body = std::string("- name: pounce.filters.direct_response\n"
                                       "  typed_config:\n"
                                       "    \"@type\": ") +
                           kDirect + "\n    stauts: 200\n";
  EXPECT_FALSE(parseChainBody(body, 3, errors).has_value());
  ASSERT_EQ(errors.entries().size(), 1u);
  const auto& e = errors.entries()[0];
  EXPECT_EQ(e.path, "listeners[3].filter_chain[0].typed_config.stauts");
  EXPECT_EQ(e.line, 4);
  EXPECT_EQ(e.column, 5);
  EXPECT_NE(e.problem.find("did you mean 'status'"), std::string::npos) << e.problem;
  EXPECT_EQ(
      errors.text().rfind("request body:4:5: listeners[3].filter_chain[0].typed_config.stauts", 0),
      0u)
      << errors.text();
}

TEST(ChainBody, RejectsWhatIsNotAChain) {
  struct Case {
    std::string body;
    std::string path;
    std::string problem;
  };
  for (const auto& c : std::vector<Case>{
           {"[]", "listeners[0].filter_chain", "at least one filter"},
           {"name: x", "listeners[0].name", "unknown field 'name'"},
           {"{}", "listeners[0].filter_chain", "the body is a filter chain"},
           {"42", "listeners[0].filter_chain", "expected a list of filters"},
           {"- [a, b]", "listeners[0].filter_chain[0]", "expected a map"},
           {"- name: a\n  x: [", "", ""},
       }) {
    config::ConfigErrors errors("request body");
    EXPECT_FALSE(parseChainBody(c.body, 0, errors).has_value()) << c.body;
    ASSERT_FALSE(errors.entries().empty()) << c.body;
    EXPECT_EQ(errors.entries()[0].path, c.path) << c.body;
    EXPECT_NE(errors.entries()[0].problem.find(c.problem), std::string::npos)
        << c.body << ": " << errors.entries()[0].problem;
    EXPECT_GT(errors.entries()[0].line, 0) << c.body;
  }
}

TEST(ConfigDiff, TellsChainSettingsAddressAndListenerChangesApart) {
  const Bootstrap base = twoListeners();
  EXPECT_TRUE(diffConfigs(base, base).empty());

  Bootstrap chain = base;
  chain.mutable_listeners(0)->mutable_filter_chain(0)->mutable_typed_config()->set_value("x");
  auto d = diffConfigs(base, chain);
  EXPECT_EQ(d.chains, std::vector<std::string>{"main"});
  EXPECT_TRUE(d.chainsOnly());

  Bootstrap settings = base;
  settings.mutable_listeners(1)->mutable_http()->set_max_headers(20);
  d = diffConfigs(base, settings);
  EXPECT_EQ(d.replaced, std::vector<std::string>{"api"});
  EXPECT_FALSE(d.chainsOnly());

  Bootstrap moved = base;
  moved.mutable_listeners(1)->mutable_address()->mutable_socket_address()->set_port_value(9);
  d = diffConfigs(base, moved);
  EXPECT_EQ(d.moved, std::vector<std::string>{"api"});

  Bootstrap fewer = base;
  fewer.mutable_listeners()->DeleteSubrange(0, 1);
  d = diffConfigs(base, fewer);
  EXPECT_EQ(d.removed, std::vector<std::string>{"main"});
  d = diffConfigs(fewer, base);
  EXPECT_EQ(d.added, std::vector<std::string>{"main"});

  Bootstrap restart = base;
  restart.set_concurrency(4);
  restart.mutable_logging()->set_level(pounce::config::v1::Logging::DEBUG);
  d = diffConfigs(base, restart);
  EXPECT_TRUE(d.logging);
  EXPECT_EQ(d.restart_needed, std::vector<std::string>{"concurrency"});
  EXPECT_EQ(d.describe(), std::vector<std::string>{"logging"});

  // The admin settings read from the current config are a change (applied by recording it);
  // the admin address and token are not (they need a restart).
  Bootstrap hosts = base;
  hosts.mutable_admin()->add_allowed_hosts("myadmin.internal");
  d = diffConfigs(base, hosts);
  EXPECT_FALSE(d.empty());
  EXPECT_EQ(d.describe(), std::vector<std::string>{"admin settings"});
  Bootstrap history = base;
  history.mutable_admin()->set_history_size(5);
  EXPECT_TRUE(diffConfigs(base, history).admin_settings);
}

TEST(ConfigDiff, EquivalentTypedConfigsAreEqual) {
  // The same filter config written differently (JSON vs YAML, key order) is no change.
  const Bootstrap a = twoListeners();
  Bootstrap b = parse(std::string(R"(
concurrency: 2
listeners:
- name: main
  address: {socket_address: {port_value: 8000, address: 127.0.0.1}}
  filter_chain:
  - typed_config: {body: one, "@type": )") +
                      kDirect + R"(}
    name: pounce.filters.direct_response
- name: api
  address: {socket_address: {address: 127.0.0.1, port_value: 8001}}
  filter_chain: [{name: pounce.filters.direct_response}]
)");
  EXPECT_TRUE(diffConfigs(a, b).empty());
}

TEST(ConfigDiff, StartupFieldsStayAsRunning) {
  const Bootstrap running = twoListeners();
  Bootstrap candidate = running;
  candidate.set_concurrency(8);
  candidate.mutable_admin()->mutable_address()->mutable_socket_address()->set_port_value(1);
  candidate.mutable_admin()->set_history_size(5);
  candidate.set_watch_config(true);
  const auto restart = keepStartupFields(running, candidate);
  EXPECT_EQ(restart, (std::vector<std::string>{"concurrency", "admin", "watch_config"}));
  EXPECT_EQ(candidate.concurrency(), 2u);
  EXPECT_FALSE(candidate.watch_config());
  EXPECT_FALSE(candidate.has_admin()) << "the running server has no admin listener";
}

TEST(ConfigStateHistory, KeepsTheLastVersionsAndFindsListeners) {
  Bootstrap b = twoListeners();
  b.mutable_admin()->set_history_size(3);
  ConfigState state(b, "/etc/pounce.yaml");
  EXPECT_EQ(state.version(), 1u);
  EXPECT_EQ(state.history().front().source, "startup");
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(state.record(b, "PUT", {"listener main: filter chain"}),
              static_cast<uint64_t>(i + 2));
  }
  EXPECT_EQ(state.version(), 5u);
  ASSERT_EQ(state.history().size(), 3u);
  EXPECT_EQ(state.find(1), nullptr);
  EXPECT_EQ(state.find(2), nullptr);
  ASSERT_NE(state.find(3), nullptr);
  EXPECT_EQ(state.find(5)->changes[0], "listener main: filter chain");
  EXPECT_EQ(state.listenerIndex("api"), 1);
  EXPECT_EQ(state.listenerIndex("nope"), -1);
  EXPECT_EQ(listenerNames(b), (std::vector<std::string>{"main", "api"}));
}

TEST(ConfigStateHistory, ChainVersionsNameTheVersionThatLastBuiltEachListener) {
  const Bootstrap b = twoListeners();
  ConfigState state(b, "");
  EXPECT_EQ(state.chainVersions(), (ChainVersions{{"main", 1}, {"api", 1}}));

  Bootstrap chain = b; // main's chain changes
  chain.mutable_listeners(0)->mutable_filter_chain(0)->set_name("pounce.filters.direct_response");
  chain.mutable_listeners(0)->mutable_filter_chain(0)->clear_typed_config();
  EXPECT_EQ(state.chainVersionsAfter(chain, 2), (ChainVersions{{"main", 2}, {"api", 1}}));
  state.record(chain, "PUT", {});
  EXPECT_EQ(state.chainVersions(), (ChainVersions{{"main", 2}, {"api", 1}}));

  Bootstrap moved = chain; // api moves, a listener is added, nothing else changes
  moved.mutable_listeners(1)->mutable_address()->mutable_socket_address()->set_port_value(8002);
  auto* extra = moved.add_listeners();
  *extra = moved.listeners(1);
  extra->set_name("extra");
  extra->mutable_address()->mutable_socket_address()->set_port_value(8003);
  state.record(moved, "reload", {});
  EXPECT_EQ(state.chainVersions(), (ChainVersions{{"main", 2}, {"api", 3}, {"extra", 3}}));

  state.record(chain, "rollback to 2", {}); // extra goes, api moves back
  EXPECT_EQ(state.chainVersions(), (ChainVersions{{"main", 2}, {"api", 4}}));
}

} // namespace
} // namespace pounce::server::admin
