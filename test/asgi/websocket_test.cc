// The ASGI filter's WebSocket path through a real ActiveStream (FilterHarness) and a real
// Python loop, in the HTTP/2 extended CONNECT shape (RFC 8441): the request is CONNECT with
// :protocol websocket, the answer a 200, the tunnel the stream's DATA. The filter sees only
// what RequestHeaders says, so this is how an HTTP/2 codec will drive it.

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "test/http/websocket/test_util.h"
#include "test/test_common/filter_harness.h"

namespace pounce::asgi {
namespace {

using test::FilterHarness;
namespace wst = http::websocket::test;

// Runs the harness's dispatcher until `done` (the app answers from another thread).
bool waitFor(FilterHarness& h, const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    h.runPending();
    if (done()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

http::RequestHeadersPtr extendedConnect(const std::string& path,
                                        std::vector<std::pair<std::string, std::string>> extra = {
                                            {"sec-websocket-version", "13"}}) {
  auto h = FilterHarness::request("CONNECT", path, std::move(extra));
  h->setConnectProtocol("websocket");
  h->setScheme("https");
  h->setProtocol("HTTP/2");
  return h;
}

class AsgiWebSocketTest : public testing::Test {
protected:
  static void SetUpTestSuite() {
    static test::FakeServerContext server;
    auto f = FilterHarness::factoriesFromYaml(
        {{"pounce.filters.asgi", "app: ws_unit_app:app\n"
                                 "app_dir: [test/asgi]\n"
                                 "lifespan: \"off\"\n"
                                 "worker_scopes: false\n"
                                 "websocket: {ping_interval: 0s}\n"}},
        server);
    ASSERT_TRUE(f.ok()) << f.status();
    factories_ = new std::vector<http::FilterFactoryCb>(*f);
  }

  static std::unique_ptr<FilterHarness> open() {
    auto h = std::make_unique<FilterHarness>(*factories_);
    h->info().protocol = http::Protocol::Http2;
    return h;
  }

  // The server frames in the response body so far.
  static std::vector<wst::ServerFrame> frames(const FilterHarness& h) {
    return wst::parseFrames(h.response.body);
  }

  // The disconnect events the app recorded (a plain HTTP request to the same app).
  static std::string appEvents() {
    FilterHarness h(*factories_);
    h.sendHeaders(FilterHarness::request("GET", "/events"), true);
    EXPECT_TRUE(waitFor(h, [&] { return h.response.complete; }));
    return h.response.body;
  }

  static std::vector<http::FilterFactoryCb>* factories_;
};

std::vector<http::FilterFactoryCb>* AsgiWebSocketTest::factories_ = nullptr;

TEST_F(AsgiWebSocketTest, ExtendedConnectIsAcceptedWith200AndEchoesOverData) {
  {
    auto keep = open();
    FilterHarness& h = *keep;
    h.sendHeaders(extendedConnect("/chat", {{"sec-websocket-version", "13"},
                                            {"sec-websocket-protocol", "chat, superchat"}}),
                  false);
    // DATA right behind the CONNECT, before the app accepted: held, then delivered.
    h.sendData(wst::textFrame("early"), false);
    ASSERT_TRUE(waitFor(h, [&] { return frames(h).size() >= 2; })) << h.response.body;
    EXPECT_EQ(h.response.status, 200);
    EXPECT_FALSE(h.response.headers.has("sec-websocket-accept"));
    EXPECT_FALSE(h.response.headers.has("upgrade"));
    EXPECT_FALSE(h.response.headers.has("connection"));
    EXPECT_EQ(h.response.headers.getOr("sec-websocket-protocol"), "chat");
    EXPECT_FALSE(h.response.complete);
    auto f = frames(h);
    EXPECT_EQ(f[0].opcode, 0x1);
    // (The scheme is the connection's, which is not TLS here, whatever :scheme said.)
    EXPECT_EQ(f[0].payload,
              R"({"http_version": "2", "scheme": "ws", "subprotocols": ["chat", "superchat"]})");
    EXPECT_EQ(f[1].opcode, 0x2);
    EXPECT_EQ(f[1].payload, "early");
    EXPECT_FALSE(f[1].masked);

    h.sendData(wst::binaryFrame(std::string(70000, 'b')), false);
    ASSERT_TRUE(waitFor(h, [&] { return frames(h).size() >= 3; }));
    EXPECT_EQ(frames(h)[2].payload, std::string(70000, 'b'));

    // The client closes: the close is echoed and the stream ends (END_STREAM in HTTP/2).
    h.sendData(wst::closeFrame(4321, "bye"), false);
    ASSERT_TRUE(waitFor(h, [&] { return h.response.complete; }));
    EXPECT_EQ(frames(h).back().opcode, 0x8);
    EXPECT_EQ(frames(h).back().closeCode(), 4321);
    EXPECT_TRUE(h.stream_done);
  }
  EXPECT_NE(appEvents().find(R"({"path": "/chat", "code": 4321, "total": 70005})"),
            std::string::npos)
      << appEvents();
}

TEST_F(AsgiWebSocketTest, StreamEndWithoutCloseFrameIs1006) {
  {
    auto keep = open();
    FilterHarness& h = *keep;
    h.sendHeaders(extendedConnect("/lost"), false);
    ASSERT_TRUE(waitFor(h, [&] { return h.response.status == 200; }));
    h.sendData("", true); // END_STREAM from the client
    ASSERT_TRUE(waitFor(h, [&] { return h.response.complete; }));
  }
  EXPECT_NE(appEvents().find(R"({"path": "/lost", "code": 1006)"), std::string::npos)
      << appEvents();
}

TEST_F(AsgiWebSocketTest, CloseBeforeAcceptIs403) {
  auto keep = open();
  FilterHarness& h = *keep;
  h.sendHeaders(extendedConnect("/deny"), false);
  ASSERT_TRUE(waitFor(h, [&] { return h.response.complete; }));
  EXPECT_EQ(h.response.status, 403);
}

TEST_F(AsgiWebSocketTest, BadHandshakeIsAnsweredWithoutTheApp) {
  auto keep = open();
  FilterHarness& h = *keep;
  h.sendHeaders(extendedConnect("/chat", {{"sec-websocket-version", "8"}}), false);
  EXPECT_TRUE(h.response.complete); // answered synchronously, no trip to Python
  EXPECT_EQ(h.response.status, 426);
  EXPECT_EQ(h.response.headers.getOr("sec-websocket-version"), "13");
  EXPECT_FALSE(h.response.headers.has("upgrade")); // not in HTTP/2
}

TEST_F(AsgiWebSocketTest, ReadingPausesWhileTheAppDoesNotReceive) {
  auto keep = open();
  FilterHarness& h = *keep;
  h.sendHeaders(extendedConnect("/slow"), false);
  ASSERT_TRUE(waitFor(h, [&] { return h.response.status == 200; }));
  // The app sleeps before receiving; two 600 KB messages exceed the 1 MiB buffer limit.
  const std::string big(600 * 1024, 'x');
  h.sendData(wst::binaryFrame(big) + wst::binaryFrame(big) + wst::binaryFrame(big), false);
  EXPECT_EQ(h.response.read_disabled, 1) << "the client must be paused";
  // The app catches up: reading resumes and every message arrives.
  ASSERT_TRUE(waitFor(h, [&] {
    const auto f = frames(h);
    return !f.empty() && f.back().payload == std::to_string(3 * big.size());
  })) << h.response.body.substr(0, 200);
  EXPECT_EQ(h.response.read_disabled, 0);
  h.sendData(wst::closeFrame(1000), false);
  ASSERT_TRUE(waitFor(h, [&] { return h.response.complete; }));
}

} // namespace
} // namespace pounce::asgi
