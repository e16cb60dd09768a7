// The HTTP/1.1 codec's Upgrade path, as the ASGI filter's WebSockets use it: after a 101 the
// bytes in both directions are the new protocol's, passed through as body data.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "source/http/http1/codec.h"
#include "test/test_common/simulated_time.h"

namespace pounce::http::http1 {
namespace {

class Tunnel : public ServerConnectionCallbacks, public RequestDecoder {
public:
  RequestDecoder& newStream(ResponseEncoder& encoder) override {
    encoder_ = &encoder;
    return *this;
  }
  void onCodecOutput() override {}
  void readDisable(bool disable) override { read_disabled += disable ? 1 : -1; }
  void closeConnection(bool flush) override { closed = true; }
  void decodeHeaders(RequestHeadersPtr headers, bool end_stream) override {
    headers_end_stream = end_stream;
  }
  void decodeData(Buffer& data, bool end_stream) override {
    received += data.toString();
    data.clear();
    input_ended = input_ended || end_stream;
  }
  void decodeTrailers(HeaderMapPtr) override {}
  void onProtocolError(int status, std::string_view) override { error = status; }

  ResponseEncoder* encoder_{nullptr};
  std::string received;
  int read_disabled{0};
  int error{0};
  bool headers_end_stream{true};
  bool input_ended{false};
  bool closed{false};
};

std::string drain(OutputQueue& q) {
  std::string out;
  for (size_t i = 0; i < q.segmentCount(); ++i) {
    out += q.segment(i).bytes.toString();
  }
  q.clear();
  return out;
}

constexpr std::string_view kUpgrade =
    "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

TEST(Http1Upgrade, BytesAfterTheHeadWaitForThe101ThenFlowAsBody) {
  test::SimulatedTimeSource time;
  OutputQueue output;
  Tunnel tunnel;
  CodecLimits limits;
  ServerConnectionImpl codec(output, tunnel, limits, time);
  Buffer in(std::string(kUpgrade) + "early frames");
  codec.dispatch(in);
  EXPECT_FALSE(tunnel.headers_end_stream); // the request stream stays open for the tunnel
  EXPECT_EQ(tunnel.received, "");
  EXPECT_EQ(in.toString(), "early frames"); // held in the connection's buffer
  EXPECT_EQ(tunnel.read_disabled, 1);

  ResponseHeaders accept(101);
  accept.add("upgrade", "websocket");
  accept.add("connection", "Upgrade");
  tunnel.encoder_->encodeHeaders(accept, false);
  const std::string head = drain(output);
  EXPECT_EQ(head.rfind("HTTP/1.1 101 Switching Protocols\r\n", 0), 0u) << head;
  EXPECT_NE(head.find("upgrade: websocket\r\n"), std::string::npos);
  EXPECT_NE(head.find("connection: Upgrade\r\n"), std::string::npos);
  EXPECT_EQ(head.find("content-length"), std::string::npos);
  EXPECT_EQ(head.find("transfer-encoding"), std::string::npos);
  EXPECT_EQ(tunnel.read_disabled, 0) << "reading resumes after the 101";

  codec.dispatch(in); // the connection re-delivers what it held
  EXPECT_EQ(tunnel.received, "early frames");
  Buffer more("later");
  codec.dispatch(more);
  EXPECT_EQ(tunnel.received, "early frameslater");
  EXPECT_FALSE(codec.readingHead());
  EXPECT_FALSE(codec.idle());

  Buffer reply("raw \r\n bytes");
  tunnel.encoder_->encodeData(reply, false);
  EXPECT_EQ(drain(output), "raw \r\n bytes"); // no chunked framing

  codec.onRemoteHalfClose();
  EXPECT_TRUE(tunnel.input_ended);
  Buffer none;
  tunnel.encoder_->encodeData(none, true);
  EXPECT_TRUE(tunnel.closed) << "the connection closes once the tunnel ends";
}

TEST(Http1Upgrade, RefusedUpgradeIsAnOrdinaryResponseThenClose) {
  test::SimulatedTimeSource time;
  OutputQueue output;
  Tunnel tunnel;
  CodecLimits limits;
  ServerConnectionImpl codec(output, tunnel, limits, time);
  Buffer in{std::string(kUpgrade)};
  codec.dispatch(in);
  ResponseHeaders refuse(403);
  refuse.add("content-length", "0");
  refuse.add("upgrade", "websocket");
  tunnel.encoder_->encodeHeaders(refuse, true);
  const std::string out = drain(output);
  EXPECT_EQ(out.rfind("HTTP/1.1 403 Forbidden\r\n", 0), 0u) << out;
  EXPECT_EQ(out.find("upgrade:"), std::string::npos);
  EXPECT_NE(out.find("connection: close\r\n"), std::string::npos);
  EXPECT_TRUE(tunnel.closed);
}

} // namespace
} // namespace pounce::http::http1
