// The HTTP/1.1 codec's side of `Upgrade: h2c` (RFC 7540 §3.2): it offers the request to the
// connection, answers 101 when taken and leaves what follows for the HTTP/2 codec.
#include <gtest/gtest.h>

#include <string>

#include "source/http/http1/codec.h"
#include "test/test_common/simulated_time.h"

namespace pounce::http::http1 {
namespace {

class UpgradeRecorder : public ServerConnectionCallbacks, public RequestDecoder {
public:
  RequestDecoder& newStream(ResponseEncoder& encoder) override {
    encoder_ = &encoder;
    ++streams;
    return *this;
  }
  void onCodecOutput() override {}
  void readDisable(bool) override {}
  void closeConnection(bool) override { closed = true; }
  bool upgradeToHttp2(RequestHeadersPtr& headers) override {
    ++offers;
    if (!accept) {
      return false;
    }
    taken = std::move(headers);
    return true;
  }
  void decodeHeaders(RequestHeadersPtr headers, bool end_stream) override {
    header_end_stream = end_stream;
    ResponseHeaders h(200);
    h.add("content-length", "2");
    encoder_->encodeHeaders(h, false);
    Buffer b("ok");
    encoder_->encodeData(b, true);
  }
  void decodeData(Buffer&, bool) override {}
  void decodeTrailers(HeaderMapPtr) override {}
  void onProtocolError(int, std::string_view) override {}

  ResponseEncoder* encoder_{nullptr};
  RequestHeadersPtr taken;
  bool accept{true};
  bool closed{false};
  bool header_end_stream{false};
  int offers{0};
  int streams{0};
};

std::string drain(OutputQueue& q) {
  std::string out;
  for (size_t i = 0; i < q.segmentCount(); ++i) {
    out += q.segment(i).bytes.toString();
  }
  q.clear();
  return out;
}

constexpr const char* kUpgrade =
    "GET /u HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
    "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABk\r\n\r\n";

TEST(H2cUpgrade, TakenRequestGets101AndLeavesTheRestInTheBuffer) {
  pounce::test::SimulatedTimeSource time;
  OutputQueue output;
  UpgradeRecorder recorder;
  CodecLimits limits;
  ServerConnectionImpl codec(output, recorder, limits, time);
  Buffer data(std::string(kUpgrade) + "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
  codec.dispatch(data);
  EXPECT_EQ(recorder.offers, 1);
  EXPECT_EQ(recorder.streams, 0);
  ASSERT_NE(recorder.taken, nullptr);
  EXPECT_EQ(recorder.taken->path(), "/u");
  EXPECT_EQ(recorder.taken->getOr("http2-settings"), "AAMAAABk");
  EXPECT_EQ(drain(output),
            "HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: h2c\r\n\r\n");
  EXPECT_EQ(data.view(), "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
  EXPECT_FALSE(recorder.closed);
}

TEST(H2cUpgrade, RefusedUpgradeIsAnOrdinaryRequest) {
  pounce::test::SimulatedTimeSource time;
  OutputQueue output;
  UpgradeRecorder recorder;
  recorder.accept = false;
  CodecLimits limits;
  ServerConnectionImpl codec(output, recorder, limits, time);
  Buffer data(kUpgrade);
  codec.dispatch(data);
  EXPECT_EQ(recorder.offers, 1);
  EXPECT_EQ(recorder.streams, 1);
  EXPECT_TRUE(recorder.header_end_stream);
  const std::string out = drain(output);
  EXPECT_EQ(out.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << out;
  EXPECT_EQ(out.find("connection: close"), std::string::npos) << out;
  EXPECT_FALSE(recorder.closed);
}

TEST(H2cUpgrade, RequestsWithABodyAreNotOffered) {
  pounce::test::SimulatedTimeSource time;
  OutputQueue output;
  UpgradeRecorder recorder;
  CodecLimits limits;
  ServerConnectionImpl codec(output, recorder, limits, time);
  Buffer data("POST /u HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
              "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABk\r\nContent-Length: 2\r\n\r\nhi");
  codec.dispatch(data);
  EXPECT_EQ(recorder.offers, 0);
  EXPECT_EQ(recorder.streams, 1);
}

} // namespace
} // namespace pounce::http::http1
