#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "source/common/config/yaml_proto.h"
#include "source/server/cli.h"
#include "source/server/config_builder.h"
#include "test/test_common/fake_server.h"

namespace pounce::server {
namespace {

constexpr const char* kGood = R"(
listeners:
- name: main
  address: {socket_address: {address: 127.0.0.1, port_value: 8080}}
  http: {header_timeout: 5s, keep_alive_timeout: 250ms, max_request_bytes: 2048}
  filter_chain:
  - name: pounce.filters.access_log
    typed_config: {"@type": type.googleapis.com/pounce.filters.access_log.v1.AccessLog, format: json}
  - name: pounce.filters.direct_response
    typed_config:
      "@type": type.googleapis.com/pounce.filters.direct_response.v1.DirectResponse
      status: 201
      body: hi
)";

std::string errorsOf(const std::string& yaml) {
  config::ConfigErrors errors("test.yaml");
  auto b = loadBootstrapText(yaml, "test.yaml", &errors);
  if (!b.ok()) {
    return std::string(b.status().message());
  }
  test::FakeServerContext server;
  ConfigBuilder builder(server, "", true);
  builder.buildListeners(*b, errors);
  return errors.text();
}

TEST(ConfigLoader, LoadsAGoodFile) {
  auto b = loadBootstrapText(kGood, "test.yaml");
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_EQ(b->listeners_size(), 1);
  EXPECT_EQ(b->listeners(0).http().header_timeout().seconds(), 5);
  EXPECT_EQ(b->listeners(0).http().keep_alive_timeout().nanos(), 250000000);
  EXPECT_EQ(b->listeners(0).http().max_request_bytes(), 2048u);
  EXPECT_EQ(errorsOf(kGood), "");
}

TEST(ConfigLoader, UnknownFieldNamesPathLineAndSuggestion) {
  const std::string e = errorsOf(R"(listeners:
- name: main
  htp: {}
)");
  EXPECT_NE(e.find("test.yaml:3:3: listeners[0].htp: unknown field 'htp' (did you mean 'http'?)"),
            std::string::npos)
      << e;
}

TEST(ConfigLoader, WrongTypeIsNamed) {
  const std::string e = errorsOf(R"(listeners:
- name: main
  address: {socket_address: {address: 127.0.0.1, port_value: eighty}}
  filter_chain: [{name: pounce.filters.direct_response}]
)");
  EXPECT_NE(e.find("listeners[0].address.socket_address.port_value: expected a non-negative "
                   "integer, got 'eighty'"),
            std::string::npos)
      << e;
}

TEST(ConfigLoader, BadDurationIsNamed) {
  const std::string e = errorsOf(R"(listeners:
- name: main
  address: {socket_address: {port_value: 1}}
  http: {header_timeout: 10 seconds}
  filter_chain: [{name: pounce.filters.direct_response}]
)");
  EXPECT_NE(e.find("listeners[0].http.header_timeout: expected a duration such as \"10s\" or "
                   "\"250ms\", got '10 seconds'"),
            std::string::npos)
      << e;
}

TEST(ConfigLoader, UnknownFilterTypeIsNamed) {
  const std::string e = errorsOf(R"(listeners:
- name: main
  address: {socket_address: {port_value: 1}}
  filter_chain:
  - name: pounce.filters.nope
)");
  EXPECT_NE(e.find("listeners[0].filter_chain[0].name: unknown filter 'pounce.filters.nope' (known "
                   "filters: "),
            std::string::npos)
      << e;
}

TEST(ConfigLoader, UnknownAtTypeIsNamed) {
  const std::string e = errorsOf(R"(listeners:
- name: main
  address: {socket_address: {port_value: 1}}
  filter_chain:
  - name: x
    typed_config: {"@type": type.googleapis.com/pounce.filters.none.v1.None}
)");
  EXPECT_NE(e.find("test.yaml:6:29: listeners[0].filter_chain[0].typed_config.@type: unknown type "
                   "'type.googleapis.com/pounce.filters.none.v1.None'"),
            std::string::npos)
      << e;
}

TEST(ConfigLoader, MissingTerminalFilter) {
  const std::string e = errorsOf(R"(listeners:
- name: main
  address: {socket_address: {port_value: 1}}
  filter_chain:
  - name: pounce.filters.access_log
)");
  EXPECT_NE(e.find("listeners[0].filter_chain[0]: the last filter must be a terminal filter"),
            std::string::npos)
      << e;
}

TEST(ConfigLoader, TerminalFilterNotLast) {
  const std::string e = errorsOf(R"(listeners:
- name: main
  address: {socket_address: {port_value: 1}}
  filter_chain:
  - name: pounce.filters.direct_response
  - name: pounce.filters.direct_response
)");
  EXPECT_NE(e.find("listeners[0].filter_chain[0]: terminal filter pounce.filters.direct_response "
                   "must be the last"),
            std::string::npos)
      << e;
}

TEST(ConfigLoader, FilterConfigErrorsGetTheFullPath) {
  const std::string e = errorsOf(R"(listeners:
- name: main
  address: {socket_address: {port_value: 1}}
  filter_chain:
  - name: pounce.filters.direct_response
    typed_config:
      "@type": type.googleapis.com/pounce.filters.direct_response.v1.DirectResponse
      status: 99
)");
  EXPECT_NE(e.find("test.yaml:8:15: listeners[0].filter_chain[0].typed_config.status: 99 is not a "
                   "final HTTP status"),
            std::string::npos)
      << e;
}

TEST(ConfigLoader, ReportsEveryErrorInOneRun) {
  const std::string e = errorsOf(R"(listeners:
- name: a
  address: {socket_address: {port_value: 70000}}
  http: {max_headers: 0}
  filter_chain: [{name: pounce.filters.direct_response}]
- name: a
  filter_chain: [{name: pounce.filters.direct_response}]
)");
  EXPECT_NE(e.find("port 70000 is out of range"), std::string::npos) << e;
  EXPECT_NE(e.find("max_headers: must be at least 1"), std::string::npos) << e;
  EXPECT_NE(e.find("listener name 'a' is used twice"), std::string::npos) << e;
  EXPECT_NE(e.find("listeners[1].address: is required"), std::string::npos) << e;
}

TEST(ConfigLoader, YamlSyntaxErrorHasLineAndColumn) {
  auto b = loadBootstrapText("listeners: [\n  {name: a\n", "bad.yaml");
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(std::string(b.status().message()).rfind("bad.yaml:", 0), 0u) << b.status();
}

TEST(ConfigLoader, EnumsAreCaseInsensitiveAndOneofsExclusive) {
  auto b = loadBootstrapText(R"(logging: {level: DEBUG, format: json}
workers: {mode: Process}
listeners:
- name: main
  address: {pipe: {path: /tmp/x.sock}, socket_address: {port_value: 1}}
  filter_chain: [{name: pounce.filters.direct_response}]
)",
                             "t.yaml");
  ASSERT_FALSE(b.ok());
  EXPECT_NE(std::string(b.status().message()).find("only one of 'pipe' and 'socket_address'"),
            std::string::npos)
      << b.status();
}

TEST(ConfigLoader, PrintedConfigLoadsBackTheSame) {
  auto b = loadBootstrapText(kGood, "test.yaml");
  ASSERT_TRUE(b.ok());
  const std::string yaml = config::messageToYaml(*b);
  auto again = loadBootstrapText(yaml, "printed.yaml");
  ASSERT_TRUE(again.ok()) << again.status() << "\n" << yaml;
  EXPECT_EQ(again->SerializeAsString(), b->SerializeAsString());
  const std::string json = config::messageToJson(*b);
  auto from_json = loadBootstrapText(json, "printed.json");
  ASSERT_TRUE(from_json.ok()) << from_json.status() << "\n" << json;
  EXPECT_EQ(from_json->SerializeAsString(), b->SerializeAsString());
}

TEST(Cli, QuickModeFlagsOverrideTheFile) {
  auto b = loadBootstrapText(kGood, "test.yaml");
  ASSERT_TRUE(b.ok());
  const char* argv[] = {"pounce",
                        "--port",
                        "9999",
                        "--host",
                        "0.0.0.0",
                        "--no-access-log",
                        "--keep-alive-timeout",
                        "2.5",
                        "--max-requests-per-connection",
                        "7",
                        "--log-level",
                        "debug"};
  auto options = parseOptions(12, const_cast<char**>(argv));
  ASSERT_TRUE(options.ok()) << options.status();
  ASSERT_TRUE(applyOverrides(*options, *b).ok());
  EXPECT_EQ(b->listeners(0).address().socket_address().port_value(), 9999u);
  EXPECT_EQ(b->listeners(0).address().socket_address().address(), "0.0.0.0");
  EXPECT_EQ(b->listeners(0).filter_chain_size(), 1);
  EXPECT_EQ(b->listeners(0).http().keep_alive_timeout().seconds(), 2);
  EXPECT_EQ(b->listeners(0).http().keep_alive_timeout().nanos(), 500000000);
  EXPECT_EQ(b->listeners(0).http().max_requests_per_connection(), 7u);
  EXPECT_EQ(b->logging().level(), pounce::config::v1::Logging::DEBUG);
}

TEST(Cli, UsageErrors) {
  const char* a1[] = {"pounce", "--port", "99999"};
  EXPECT_FALSE(parseOptions(3, const_cast<char**>(a1)).ok());
  const char* a2[] = {"pounce", "--bogus"};
  EXPECT_FALSE(parseOptions(2, const_cast<char**>(a2)).ok());
  const char* a3[] = {"pounce", "--host", "x", "--uds", "/tmp/s"};
  EXPECT_FALSE(parseOptions(5, const_cast<char**>(a3)).ok());
  const char* a4[] = {"pounce", "--ssl-certfile", "c.pem"};
  EXPECT_FALSE(parseOptions(3, const_cast<char**>(a4)).ok());
}

} // namespace
} // namespace pounce::server
