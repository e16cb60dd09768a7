#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <vector>

#include "pounce/filters/asgi/v1/asgi.pb.h"
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

TEST(ConfigLoader, DirectResponseRefusesFramingHeadersAndBodiesOfBodylessStatuses) {
  auto error = [](const std::string& fields) {
    return errorsOf(R"(listeners:
- name: main
  address: {socket_address: {port_value: 1}}
  filter_chain:
  - name: pounce.filters.direct_response
    typed_config:
      "@type": type.googleapis.com/pounce.filters.direct_response.v1.DirectResponse
      )" + fields + "\n");
  };
  for (const char* name : {"Keep-Alive", "upgrade", "proxy-connection", "TE", "content-length"}) {
    EXPECT_NE(error(std::string("headers: [{name: ") + name + ", value: x}]")
                  .find("is set by the server"),
              std::string::npos)
        << name;
  }
  EXPECT_NE(error("status: 205\n      body: hi").find("a 205 response cannot have a body"),
            std::string::npos);
  EXPECT_EQ(error("status: 205"), "");
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

TEST(ConfigLoader, SizesCountsAndDurationsOutOfRangeAreNamed) {
  const std::string e = errorsOf(R"(listeners:
- name: a
  address: {socket_address: {port_value: 1}}
  backlog: 0
  http: {max_request_bytes: 0}
  filter_chain: [{name: pounce.filters.direct_response}]
- name: b
  address: {socket_address: {port_value: 2}}
  backlog: 70000
  filter_chain: [{name: pounce.filters.direct_response}]
workers: {count: 100000, restart_window: 0s}
)");
  EXPECT_NE(e.find("listeners[0].backlog: must be between 1 and 65535"), std::string::npos) << e;
  EXPECT_NE(e.find("listeners[1].backlog: must be between 1 and 65535"), std::string::npos) << e;
  EXPECT_NE(e.find("listeners[0].http.max_request_bytes: must be at least 1"), std::string::npos)
      << e;
  EXPECT_NE(e.find("workers.count: must be at most 4096"), std::string::npos) << e;
  EXPECT_EQ(e.find("listeners[0].name"), std::string::npos) << e;
  EXPECT_NE(errorsOf(R"(listeners:
- name: _admin
  address: {socket_address: {port_value: 1}}
  filter_chain: [{name: pounce.filters.direct_response}]
)")
                .find("listeners[0].name: listener name '_admin' starts with '_'"),
            std::string::npos);
  EXPECT_NE(e.find("workers.restart_window: must be at least 1ms"), std::string::npos) << e;
  EXPECT_EQ(errorsOf(R"(listeners:
- address: {socket_address: {port_value: 1}}
  backlog: 65535
  http: {max_request_bytes: 1}
  filter_chain: [{name: pounce.filters.direct_response}]
workers: {count: 4096, restart_window: 1s}
reload: {delay: 0s}
)"),
            "");
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

// Parses argv (without the leading "pounce") and applies it over `b`.
void applyFlags(std::vector<const char*> args, Bootstrap& b) {
  args.insert(args.begin(), "pounce");
  auto options = parseOptions(static_cast<int>(args.size()), const_cast<char**>(args.data()));
  ASSERT_TRUE(options.ok()) << options.status();
  ASSERT_TRUE(applyOverrides(*options, b).ok());
}

// The quick-mode config built from argv (without the leading "pounce").
absl::StatusOr<Bootstrap> quickMode(std::vector<const char*> args) {
  args.insert(args.begin(), "pounce");
  auto options = parseOptions(static_cast<int>(args.size()), const_cast<char**>(args.data()));
  if (!options.ok()) {
    return options.status();
  }
  return quickModeBootstrap(*options);
}

pounce::filters::asgi::v1::Asgi asgiOf(const Bootstrap& b, int listener, int filter) {
  pounce::filters::asgi::v1::Asgi asgi;
  EXPECT_TRUE(b.listeners(listener).filter_chain(filter).typed_config().UnpackTo(&asgi));
  return asgi;
}

constexpr const char* kTwoAsgiListeners = R"(
listeners:
- name: a
  address: {socket_address: {address: 127.0.0.1, port_value: 8080}}
  filter_chain:
  - name: pounce.filters.access_log
  - name: pounce.filters.asgi
    typed_config: {"@type": type.googleapis.com/pounce.filters.asgi.v1.Asgi, app: "a:app"}
- name: b
  address: {socket_address: {address: 127.0.0.1, port_value: 8081}}
  http: {header_timeout: 3s}
  filter_chain:
  - name: pounce.filters.asgi
    typed_config: {"@type": type.googleapis.com/pounce.filters.asgi.v1.Asgi, app: "b:app", root_path: /old}
)";

TEST(Cli, WorkersAndConcurrencySetTheBootstrap) {
  auto b = loadBootstrapText(kGood, "test.yaml");
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(b->workers().has_count());
  applyFlags({"--workers", "4", "--concurrency", "3"}, *b);
  ASSERT_TRUE(b->workers().has_count());
  EXPECT_EQ(b->workers().count(), 4u);
  EXPECT_EQ(b->concurrency(), 3u);
  // 0 means one per CPU and is kept as an explicit 0, not dropped.
  applyFlags({"--workers", "0"}, *b);
  ASSERT_TRUE(b->workers().has_count());
  EXPECT_EQ(b->workers().count(), 0u);
}

TEST(Cli, WorkersAndConcurrencyAreBounded) {
  const char* a1[] = {"pounce", "--workers", "4097"};
  EXPECT_FALSE(parseOptions(3, const_cast<char**>(a1)).ok());
  const char* a2[] = {"pounce", "--concurrency", "1025"};
  EXPECT_FALSE(parseOptions(3, const_cast<char**>(a2)).ok());
  const char* a3[] = {"pounce", "--workers", "-1"};
  EXPECT_FALSE(parseOptions(3, const_cast<char**>(a3)).ok());
}

TEST(Cli, UdsMakesTheFirstListenerAUnixSocket) {
  auto b = loadBootstrapText(kTwoAsgiListeners, "test.yaml");
  ASSERT_TRUE(b.ok());
  applyFlags({"--uds", "/tmp/pounce-test.sock"}, *b);
  ASSERT_TRUE(b->listeners(0).address().has_pipe());
  EXPECT_FALSE(b->listeners(0).address().has_socket_address());
  EXPECT_EQ(b->listeners(0).address().pipe().path(), "/tmp/pounce-test.sock");
  // Only the first listener.
  EXPECT_EQ(b->listeners(1).address().socket_address().port_value(), 8081u);
}

TEST(Cli, RootPathAndAppReachEveryAsgiFilter) {
  auto b = loadBootstrapText(kTwoAsgiListeners, "test.yaml");
  ASSERT_TRUE(b.ok());
  applyFlags({"--root-path", "/api", "new:app"}, *b);
  EXPECT_EQ(asgiOf(*b, 0, 1).root_path(), "/api");
  EXPECT_EQ(asgiOf(*b, 1, 0).root_path(), "/api");
  EXPECT_EQ(asgiOf(*b, 0, 1).app(), "new:app");
  EXPECT_EQ(asgiOf(*b, 1, 0).app(), "new:app");
  // The access log is not an ASGI filter and is left alone.
  EXPECT_EQ(b->listeners(0).filter_chain(0).name(), "pounce.filters.access_log");
  EXPECT_FALSE(b->listeners(0).filter_chain(0).has_typed_config());
}

TEST(Cli, TimeoutFlagsTakeSecondsOrDurationsOnEveryListener) {
  auto b = loadBootstrapText(kTwoAsgiListeners, "test.yaml");
  ASSERT_TRUE(b.ok());
  applyFlags({"--header-timeout", "1.5", "--request-timeout", "250ms", "--timeout-keep-alive", "7"},
             *b);
  for (int i = 0; i < 2; ++i) {
    const auto& http = b->listeners(i).http();
    EXPECT_EQ(http.header_timeout().seconds(), 1) << i;
    EXPECT_EQ(http.header_timeout().nanos(), 500000000) << i;
    EXPECT_EQ(http.request_timeout().seconds(), 0) << i;
    EXPECT_EQ(http.request_timeout().nanos(), 250000000) << i;
    EXPECT_EQ(http.keep_alive_timeout().seconds(), 7) << i;
  }
  applyFlags({"--header-timeout=2m"}, *b);
  EXPECT_EQ(b->listeners(1).http().header_timeout().seconds(), 120);
}

TEST(Cli, BadTimeoutsAreUsageErrors) {
  for (const char* flag : {"--header-timeout", "--keep-alive-timeout", "--request-timeout"}) {
    for (const char* value : {"soon", "-1", ""}) {
      const char* argv[] = {"pounce", flag, value};
      auto options = parseOptions(3, const_cast<char**>(argv));
      ASSERT_FALSE(options.ok()) << flag << " " << value;
      EXPECT_NE(std::string(options.status().message()).find("is not a number of seconds"),
                std::string::npos)
          << options.status();
    }
  }
}

TEST(Cli, LogFormatAndLevel) {
  auto b = loadBootstrapText(kGood, "test.yaml");
  ASSERT_TRUE(b.ok());
  applyFlags({"--log-format", "json", "--log-level", "WARN"}, *b);
  EXPECT_EQ(b->logging().format(), pounce::config::v1::Logging::JSON);
  EXPECT_EQ(b->logging().level(), pounce::config::v1::Logging::WARNING);
  applyFlags({"--log-format", "text", "--log-level", "critical"}, *b);
  EXPECT_EQ(b->logging().format(), pounce::config::v1::Logging::TEXT);
  EXPECT_EQ(b->logging().level(), pounce::config::v1::Logging::CRITICAL);

  const char* bad_format[] = {"pounce", "--log-format", "xml"};
  EXPECT_FALSE(parseOptions(3, const_cast<char**>(bad_format)).ok());
  const char* bad_level[] = {"pounce", "--log-level", "loud"};
  auto options = parseOptions(3, const_cast<char**>(bad_level));
  ASSERT_TRUE(options.ok()); // checked when applied
  EXPECT_FALSE(applyOverrides(*options, *b).ok());
}

TEST(Cli, TlsFlagsPutOneAbsoluteCertificateOnTheFirstListener) {
  auto b = loadBootstrapText(kTwoAsgiListeners, "test.yaml");
  ASSERT_TRUE(b.ok());
  applyFlags({"--ssl-certfile", "certs/c.pem", "--ssl-keyfile", "/etc/k.pem"}, *b);
  ASSERT_EQ(b->listeners(0).tls().certificates_size(), 1);
  const auto& cert = b->listeners(0).tls().certificates(0);
  EXPECT_EQ(cert.certificate_chain_file().front(), '/') << cert.certificate_chain_file();
  EXPECT_TRUE(cert.certificate_chain_file().ends_with("/certs/c.pem"))
      << cert.certificate_chain_file();
  EXPECT_EQ(cert.private_key_file(), "/etc/k.pem");
  EXPECT_FALSE(b->listeners(1).has_tls());

  const char* key_only[] = {"pounce", "--ssl-keyfile", "k.pem"};
  EXPECT_FALSE(parseOptions(3, const_cast<char**>(key_only)).ok());
}

TEST(Cli, AdminPortTurnsTheAdminApiOnAndZeroTurnsItOff) {
  auto b = loadBootstrapText(kGood, "test.yaml");
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(b->has_admin());
  applyFlags({"--admin-port", "9911"}, *b);
  ASSERT_TRUE(b->has_admin());
  EXPECT_EQ(b->admin().address().socket_address().address(), "127.0.0.1");
  EXPECT_EQ(b->admin().address().socket_address().port_value(), 9911u);
  applyFlags({"--admin-port", "0"}, *b);
  EXPECT_FALSE(b->has_admin());
}

TEST(Cli, ReloadFlags) {
  auto b = loadBootstrapText(kGood, "test.yaml");
  ASSERT_TRUE(b.ok());
  applyFlags(
      {"--reload-dir", "src", "--reload-dir", "templates", "--reload-include", "html, .css,,"}, *b);
  EXPECT_TRUE(b->reload().enabled());
  ASSERT_EQ(b->reload().dirs_size(), 2);
  // Relative to where pounce runs, not to the config file, so written out absolute.
  const std::string cwd = std::filesystem::current_path().string();
  EXPECT_EQ(b->reload().dirs(0), cwd + "/src");
  EXPECT_EQ(b->reload().dirs(1), cwd + "/templates");
  ASSERT_EQ(b->reload().include_size(), 2);
  EXPECT_EQ(b->reload().include(0), ".html");
  EXPECT_EQ(b->reload().include(1), ".css");

  auto plain = loadBootstrapText(kGood, "test.yaml");
  ASSERT_TRUE(plain.ok());
  applyFlags({"--reload"}, *plain);
  EXPECT_TRUE(plain->reload().enabled());
  EXPECT_EQ(plain->reload().dirs_size(), 0);
}

TEST(Cli, QuickModeDefaults) {
  auto b = quickMode({"probe:app"});
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_EQ(b->listeners_size(), 1);
  const auto& l = b->listeners(0);
  EXPECT_EQ(l.name(), "main");
  EXPECT_EQ(l.address().socket_address().address(), "127.0.0.1");
  EXPECT_EQ(l.address().socket_address().port_value(), 8000u);
  ASSERT_EQ(l.filter_chain_size(), 2);
  EXPECT_EQ(l.filter_chain(0).name(), "pounce.filters.access_log");
  EXPECT_EQ(l.filter_chain(1).name(), "pounce.filters.asgi");
  EXPECT_EQ(asgiOf(*b, 0, 1).app(), "probe:app");
  EXPECT_EQ(asgiOf(*b, 0, 1).root_path(), "");
  // The app is imported from the working directory, written out so that --print-config's
  // output imports the same app wherever the file is saved.
  const std::string cwd = std::filesystem::current_path().string();
  ASSERT_EQ(asgiOf(*b, 0, 1).app_dir_size(), 1);
  EXPECT_EQ(asgiOf(*b, 0, 1).app_dir(0), cwd);
  EXPECT_FALSE(b->has_admin());
  EXPECT_FALSE(b->reload().enabled());

  auto reload = quickMode({"probe:app", "--reload", "--uds", "run/../q.sock"});
  ASSERT_TRUE(reload.ok()) << reload.status();
  ASSERT_EQ(reload->reload().dirs_size(), 1);
  EXPECT_EQ(reload->reload().dirs(0), cwd);
  EXPECT_EQ(reload->listeners(0).address().pipe().path(), cwd + "/q.sock");

  EXPECT_FALSE(quickMode({"--port", "9000"}).ok()) << "no app and no config file";
}

TEST(Cli, QuickModeWithEveryFlag) {
  auto b = quickMode({"probe:app",
                      "--uds",
                      "/tmp/q.sock",
                      "--root-path",
                      "/api",
                      "--workers",
                      "2",
                      "--concurrency",
                      "1",
                      "--no-access-log",
                      "--header-timeout",
                      "4",
                      "--request-timeout",
                      "30s",
                      "--max-requests-per-connection",
                      "100",
                      "--log-format",
                      "json",
                      "--log-level",
                      "error"});
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_EQ(b->listeners_size(), 1);
  const auto& l = b->listeners(0);
  EXPECT_EQ(l.address().pipe().path(), "/tmp/q.sock");
  EXPECT_FALSE(l.address().has_socket_address());
  ASSERT_EQ(l.filter_chain_size(), 1);
  EXPECT_EQ(l.filter_chain(0).name(), "pounce.filters.asgi");
  EXPECT_EQ(asgiOf(*b, 0, 0).app(), "probe:app");
  EXPECT_EQ(asgiOf(*b, 0, 0).root_path(), "/api");
  EXPECT_EQ(l.http().header_timeout().seconds(), 4);
  EXPECT_EQ(l.http().request_timeout().seconds(), 30);
  EXPECT_EQ(l.http().max_requests_per_connection(), 100u);
  EXPECT_EQ(b->workers().count(), 2u);
  EXPECT_EQ(b->concurrency(), 1u);
  EXPECT_EQ(b->logging().format(), pounce::config::v1::Logging::JSON);
  EXPECT_EQ(b->logging().level(), pounce::config::v1::Logging::ERROR);
}

TEST(Cli, InlineValuesAndRepeatedApp) {
  const char* argv[] = {"pounce", "--port=8123", "--host=::1", "a:app"};
  auto options = parseOptions(4, const_cast<char**>(argv));
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->port, 8123u);
  EXPECT_EQ(options->host, "::1");
  EXPECT_EQ(options->app, "a:app");
  const char* two_apps[] = {"pounce", "a:app", "b:app"};
  EXPECT_FALSE(parseOptions(3, const_cast<char**>(two_apps)).ok());
  const char* missing[] = {"pounce", "--root-path"};
  EXPECT_FALSE(parseOptions(2, const_cast<char**>(missing)).ok());
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
