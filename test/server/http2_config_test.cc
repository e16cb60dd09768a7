#include <gtest/gtest.h>

#include "source/common/config/yaml_proto.h"
#include "source/server/config_builder.h"
#include "test/test_common/fake_server.h"

namespace pounce::server {
namespace {

std::string listenerYaml(const std::string& http2) {
  return R"(
listeners:
- name: main
  address: {socket_address: {address: 127.0.0.1, port_value: 8080}}
  http: {max_header_bytes: 4096}
  http2: )" +
         http2 + R"(
  filter_chain:
  - name: pounce.filters.direct_response
)";
}

struct Built {
  std::string errors;
  std::shared_ptr<const http::HttpSettings> settings;
};

Built build(const std::string& yaml) {
  config::ConfigErrors errors("test.yaml");
  auto b = loadBootstrapText(yaml, "test.yaml", &errors);
  if (!b.ok()) {
    return {std::string(b.status().message()), nullptr};
  }
  test::FakeServerContext server;
  ConfigBuilder builder(server, "", true);
  auto listeners = builder.buildListeners(*b, errors);
  return {errors.text(), listeners.empty() ? nullptr : listeners[0].settings};
}

TEST(Http2Config, DefaultsWithoutAnHttp2Block) {
  const Built b = build(listenerYaml("{}"));
  ASSERT_EQ(b.errors, "");
  const auto& h2 = b.settings->http2;
  EXPECT_TRUE(h2.enabled);
  EXPECT_TRUE(h2.allow_h2c);
  EXPECT_EQ(h2.max_concurrent_streams, 100u);
  EXPECT_EQ(h2.initial_stream_window_size, 262144u);
  EXPECT_EQ(h2.initial_connection_window_size, 1048576u);
  EXPECT_EQ(h2.max_frame_size, 16384u);
  // 0: the codec uses the listener's max_header_bytes.
  EXPECT_EQ(h2.max_header_list_size, 0u);
  EXPECT_EQ(h2.max_reset_streams, 200u);
  EXPECT_EQ(h2.flood_window, std::chrono::seconds(10));
  EXPECT_EQ(h2.max_continuation_frames, 8u);
  EXPECT_EQ(h2.max_outbound_control_frames, 1000u);
  EXPECT_EQ(h2.max_outbound_frames, 10000u);
  EXPECT_EQ(h2.max_consecutive_empty_frames, 1u);
}

TEST(Http2Config, EveryFieldIsBuilt) {
  const Built b = build(listenerYaml(R"({enabled: false, allow_h2c: false,
    max_concurrent_streams: 7, initial_stream_window_size: 70000,
    initial_connection_window_size: 900000, max_frame_size: 32768, max_header_list_size: 2048,
    max_reset_streams: 9, flood_window: 3s, max_continuation_frames: 2,
    max_outbound_control_frames: 50, max_outbound_frames: 500,
    max_consecutive_empty_frames: 4})"));
  ASSERT_EQ(b.errors, "");
  const auto& h2 = b.settings->http2;
  EXPECT_FALSE(h2.enabled);
  EXPECT_FALSE(h2.allow_h2c);
  EXPECT_EQ(h2.max_concurrent_streams, 7u);
  EXPECT_EQ(h2.initial_stream_window_size, 70000u);
  EXPECT_EQ(h2.initial_connection_window_size, 900000u);
  EXPECT_EQ(h2.max_frame_size, 32768u);
  EXPECT_EQ(h2.max_header_list_size, 2048u);
  EXPECT_EQ(h2.max_reset_streams, 9u);
  EXPECT_EQ(h2.flood_window, std::chrono::seconds(3));
  EXPECT_EQ(h2.max_continuation_frames, 2u);
  EXPECT_EQ(h2.max_outbound_control_frames, 50u);
  EXPECT_EQ(h2.max_outbound_frames, 500u);
  EXPECT_EQ(h2.max_consecutive_empty_frames, 4u);
}

TEST(Http2Config, OutOfRangeValuesAreNamed) {
  const Built b = build(listenerYaml(R"({max_frame_size: 100, initial_stream_window_size: 10,
    max_concurrent_streams: 0, flood_window: 0s, max_header_list_size: 3})"));
  EXPECT_NE(b.errors.find("listeners[0].http2.max_frame_size: must be between 16384 and 16777215"),
            std::string::npos)
      << b.errors;
  EXPECT_NE(b.errors.find("listeners[0].http2.initial_stream_window_size: must be between 65535"),
            std::string::npos)
      << b.errors;
  EXPECT_NE(b.errors.find("listeners[0].http2.max_concurrent_streams: must be between 1"),
            std::string::npos)
      << b.errors;
  EXPECT_NE(b.errors.find("listeners[0].http2.flood_window: must be at least 1ms"),
            std::string::npos)
      << b.errors;
  EXPECT_NE(b.errors.find("listeners[0].http2.max_header_list_size: must be between 256"),
            std::string::npos)
      << b.errors;
}

TEST(Http2Config, UnknownFieldIsNamed) {
  const Built b = build(listenerYaml("{max_streams: 3}"));
  EXPECT_NE(b.errors.find("listeners[0].http2.max_streams: unknown field"), std::string::npos)
      << b.errors;
}

} // namespace
} // namespace pounce::server
