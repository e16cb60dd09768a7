#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "source/http/http2/codec.h"
#include "test/http/http2/http2_test_client.h"
#include "test/test_common/simulated_time.h"

namespace pounce::http::http2 {
namespace {

using test::clientPreface;
using test::Fields;
using test::frame;
using test::hpack;
using test::TestClient;

std::string fieldValue(const Fields& fields, std::string_view name) {
  for (const auto& [k, v] : fields) {
    if (k == name) {
      return v;
    }
  }
  return "<none>";
}

// What the stream above the codec sees (stands in for ActiveStream).
class TestStream : public RequestDecoder, public StreamCallbacks {
public:
  explicit TestStream(ResponseEncoder& encoder) : encoder(encoder) {
    encoder.setStreamCallbacks(this);
  }

  // RequestDecoder
  void decodeHeaders(RequestHeadersPtr h, bool end_stream) override {
    headers = std::move(h);
    events.push_back(std::string("headers") + (end_stream ? " end" : ""));
    request_complete = end_stream;
    if (on_headers) {
      on_headers(*this);
    }
    maybeRespond();
  }
  void decodeData(Buffer& data, bool end_stream) override {
    body += data.toString();
    data.clear();
    events.push_back("data " + std::to_string(body.size()) + (end_stream ? " end" : ""));
    request_complete = end_stream;
    if (on_data) {
      on_data(*this);
    }
    maybeRespond();
  }
  void decodeTrailers(HeaderMapPtr t) override {
    trailers = std::move(t);
    events.push_back("trailers");
    request_complete = true;
    maybeRespond();
  }
  void onProtocolError(int status, std::string_view details) override {
    protocol_error = status;
    events.push_back("error " + std::to_string(status));
    if (done) {
      return;
    }
    if (response_started) {
      // As ActiveStream does: too late for an answer.
      done = true;
      encoder.setStreamCallbacks(nullptr);
      encoder.resetStream();
      return;
    }
    ResponseHeaders h(status);
    h.add("content-length", "0");
    h.add("connection", "close");
    done = true;
    encoder.encodeHeaders(h, true);
  }

  // StreamCallbacks
  void onResetStream(StreamResetReason r) override {
    reset = true;
    reason = r;
    done = true;
    events.push_back("reset");
  }
  void onAboveWriteBufferHighWatermark() override { ++above; }
  void onBelowWriteBufferLowWatermark() override { ++below; }

  void maybeRespond() {
    if (request_complete && auto_respond && !done) {
      respond(200, "ok");
    }
  }
  void respond(int status, std::string_view body_text, const Fields& extra = {}) {
    ResponseHeaders h(status);
    for (const auto& [k, v] : extra) {
      h.add(k, v);
    }
    done = true;
    if (body_text.empty()) {
      encoder.encodeHeaders(h, true);
      return;
    }
    encoder.encodeHeaders(h, false);
    Buffer b(body_text);
    encoder.encodeData(b, true);
  }

  ResponseEncoder& encoder;
  RequestHeadersPtr headers;
  HeaderMapPtr trailers;
  std::string body;
  std::vector<std::string> events;
  std::function<void(TestStream&)> on_headers;
  std::function<void(TestStream&)> on_data;
  bool request_complete{false};
  bool response_started{false};
  bool auto_respond{true};
  bool done{false};
  bool reset{false};
  StreamResetReason reason{StreamResetReason::LocalReset};
  int protocol_error{0};
  int above{0};
  int below{0};
};

// The codec with a recording connection around it.
class Harness : public ServerConnectionCallbacks {
public:
  explicit Harness(Http2Settings s = {}, CodecLimits l = {}) : settings(s), limits(l) {
    codec = std::make_unique<ServerConnectionImpl>(output, *this, limits, settings, time);
  }

  RequestDecoder& newStream(ResponseEncoder& encoder) override {
    streams.push_back(std::make_unique<TestStream>(encoder));
    TestStream& s = *streams.back();
    s.auto_respond = auto_respond;
    if (configure) {
      configure(s);
    }
    return s;
  }
  void onCodecOutput() override { ++output_signals; }
  void readDisable(bool) override {}
  void closeConnection(bool flush) override {
    closed = true;
    close_flush = flush;
  }

  void feed(std::string_view bytes) {
    Buffer b(bytes);
    codec->dispatch(b);
  }
  std::string takeOutput() {
    std::string out;
    for (size_t i = 0; i < output.segmentCount(); ++i) {
      out += output.segment(i).bytes.toString();
    }
    output.clear();
    return out;
  }
  // Moves bytes both ways until neither side has anything to say.
  void pump(TestClient& client, int rounds = 200) {
    for (int i = 0; i < rounds; ++i) {
      const std::string up = client.take();
      if (!up.empty()) {
        feed(up);
      }
      const std::string down = takeOutput();
      if (!down.empty()) {
        client.give(down);
      }
      if (up.empty() && down.empty()) {
        break;
      }
    }
  }
  TestStream& stream(size_t i) { return *streams.at(i); }

  Http2Settings settings;
  CodecLimits limits;
  pounce::test::SimulatedTimeSource time;
  OutputQueue output;
  std::unique_ptr<ServerConnectionImpl> codec;
  std::vector<std::unique_ptr<TestStream>> streams;
  std::function<void(TestStream&)> configure;
  bool auto_respond{true};
  bool closed{false};
  bool close_flush{false};
  int output_signals{0};
};

TEST(Http2Codec, GetIsDispatchedWithPseudoHeadersAndAnswered) {
  Harness h;
  h.configure = [](TestStream& s) { EXPECT_EQ(s.encoder.protocol(), Protocol::Http2); };
  TestClient client;
  const int32_t id = client.get("/a?b=1", {{"user-agent", "t"}});
  h.pump(client);
  ASSERT_EQ(h.streams.size(), 1u);
  const RequestHeaders& req = *h.stream(0).headers;
  EXPECT_EQ(req.method(), "GET");
  EXPECT_EQ(req.path(), "/a?b=1");
  EXPECT_EQ(req.scheme(), "http");
  EXPECT_EQ(req.authority(), "test.local");
  EXPECT_EQ(req.protocol(), "HTTP/2");
  EXPECT_EQ(req.getOr("host"), "test.local");
  EXPECT_EQ(req.getOr("user-agent"), "t");
  EXPECT_EQ(h.stream(0).events, (std::vector<std::string>{"headers end"}));

  const auto& r = client.response(id);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "ok");
  EXPECT_TRUE(r.complete);
  EXPECT_NE(fieldValue(r.headers, "date"), "<none>");
  EXPECT_EQ(fieldValue(r.headers, "server"), "pounce");
  EXPECT_TRUE(h.codec->idle());
  EXPECT_FALSE(h.closed);
  // The server's SETTINGS.
  EXPECT_EQ(client.settings().at(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS), 100u);
  EXPECT_EQ(client.settings().at(NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL), 1u);
  EXPECT_EQ(client.settings().at(NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES), 1u);
  EXPECT_EQ(client.settings().at(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE), 65536u);
}

TEST(Http2Codec, ManyStreamsOnOneConnection) {
  Harness h;
  TestClient client;
  std::vector<int32_t> ids;
  for (int i = 0; i < 50; ++i) {
    ids.push_back(client.get("/" + std::to_string(i)));
  }
  h.pump(client);
  ASSERT_EQ(h.streams.size(), 50u);
  for (int32_t id : ids) {
    EXPECT_EQ(client.response(id).status, 200);
    EXPECT_EQ(client.response(id).body, "ok");
  }
  EXPECT_EQ(h.codec->activeStreams(), 0u);
}

TEST(Http2Codec, CookieCrumbsAreJoined) {
  Harness h;
  TestClient client;
  client.get("/", {{"cookie", "a=1"}, {"cookie", "b=2"}});
  h.pump(client);
  ASSERT_EQ(h.streams.size(), 1u);
  EXPECT_EQ(h.stream(0).headers->getOr("cookie"), "a=1; b=2");
  EXPECT_EQ(h.stream(0).headers->count("cookie"), 1u);
}

TEST(Http2Codec, RequestBodyAndTrailersReachTheStream) {
  Harness h;
  TestClient client;
  const std::string body(100000, 'x');
  const int32_t id = client.post("/up", body, {}, {{"x-checksum", "abc"}});
  h.pump(client);
  ASSERT_EQ(h.streams.size(), 1u);
  TestStream& s = h.stream(0);
  EXPECT_EQ(s.body, body);
  ASSERT_NE(s.trailers, nullptr);
  EXPECT_EQ(s.trailers->getOr("x-checksum"), "abc");
  EXPECT_EQ(s.events.back(), "trailers");
  EXPECT_EQ(client.response(id).status, 200);
}

TEST(Http2Codec, SplitInputAtEveryByteGivesTheSameEvents) {
  TestClient client;
  client.post("/p", "hello world", {{"x-a", "1"}}, {{"x-t", "2"}});
  const std::string input = client.take();
  std::vector<std::string> reference;
  {
    Harness h;
    h.feed(input);
    ASSERT_EQ(h.streams.size(), 1u);
    reference = h.stream(0).events;
    EXPECT_EQ(h.stream(0).body, "hello world");
  }
  ASSERT_FALSE(reference.empty());
  for (size_t split = 1; split < input.size(); ++split) {
    Harness h;
    h.feed(input.substr(0, split));
    h.feed(input.substr(split));
    ASSERT_EQ(h.streams.size(), 1u) << "split at " << split;
    // A DATA frame is delivered whole however the bytes were split.
    EXPECT_EQ(h.stream(0).events, reference) << "split at " << split;
    EXPECT_EQ(h.stream(0).body, "hello world") << "split at " << split;
    EXPECT_EQ(h.stream(0).headers->getOr("x-a"), "1");
    EXPECT_EQ(h.stream(0).trailers->getOr("x-t"), "2");
    EXPECT_EQ(h.takeOutput().size() > 0, true);
  }
  // One byte at a time.
  Harness h;
  for (char c : input) {
    h.feed(std::string(1, c));
  }
  ASSERT_EQ(h.streams.size(), 1u);
  EXPECT_EQ(h.stream(0).events, reference);
  EXPECT_EQ(reference, (std::vector<std::string>{"headers", "data 11", "trailers"}));
}

TEST(Http2Codec, WindowStaysClosedWhileReadDisabled) {
  Http2Settings settings;
  settings.initial_stream_window_size = 65535;
  Harness h(settings);
  h.auto_respond = false;
  h.configure = [](TestStream& s) {
    // A slow consumer: stops reading at the first body bytes.
    s.on_data = [](TestStream& t) {
      if (t.body.size() > 0 && t.events.size() == 2) {
        t.encoder.readDisable(true);
      }
    };
  };
  TestClient client;
  const std::string body(500000, 'b');
  const int32_t id = client.post("/slow", body);
  h.pump(client);
  ASSERT_EQ(h.streams.size(), 1u);
  TestStream& s = h.stream(0);
  // No more than the stream's window got through; the client cannot send more.
  EXPECT_GT(s.body.size(), 0u);
  EXPECT_LE(s.body.size(), 65535u);
  EXPECT_EQ(nghttp2_session_get_stream_remote_window_size(client.session(), id), 0);
  h.pump(client);
  EXPECT_LE(s.body.size(), 65535u);

  // Reading again opens the window and the whole body arrives.
  s.on_data = nullptr;
  s.encoder.readDisable(false);
  h.pump(client);
  EXPECT_EQ(s.body.size(), body.size());
  EXPECT_TRUE(s.request_complete);
}

TEST(Http2Codec, OneReadDisabledStreamDoesNotBlockOthers) {
  Http2Settings settings;
  settings.initial_stream_window_size = 65535;
  settings.initial_connection_window_size = 65535;
  Harness h(settings);
  h.auto_respond = false;
  h.configure = [](TestStream& s) {
    s.on_headers = [](TestStream& t) {
      if (t.headers->path() == "/slow") {
        t.encoder.readDisable(true);
      }
    };
  };
  TestClient client;
  client.post("/slow", std::string(65535, 's'));
  h.pump(client);
  const int32_t fast = client.post("/fast", std::string(200000, 'f'));
  h.pump(client);
  ASSERT_EQ(h.streams.size(), 2u);
  EXPECT_EQ(h.stream(1).body.size(), 200000u);
  (void)fast;
}

TEST(Http2Codec, PaddingIsGivenBackToTheWindows) {
  Http2Settings settings;
  settings.initial_stream_window_size = 65535;
  settings.initial_connection_window_size = 65535;
  Harness h(settings);
  h.auto_respond = false;
  h.feed(
      clientPreface() +
      frame(
          NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 1,
          hpack({{":method", "POST"}, {":scheme", "http"}, {":authority", "x"}, {":path", "/"}})));
  // 1 byte of data and 199 of padding per frame: 200 KB against 64 KB windows.
  std::string padded(1, '\xc6');
  padded += 'd';
  padded += std::string(198, '\0');
  for (int round = 0; round < 10; ++round) {
    std::string input;
    for (int i = 0; i < 100; ++i) {
      input += frame(NGHTTP2_DATA, NGHTTP2_FLAG_PADDED, 1, padded);
    }
    h.feed(input);
    h.takeOutput();
  }
  EXPECT_EQ(h.codec->goAwayErrorCode(), -1);
  ASSERT_EQ(h.streams.size(), 1u);
  EXPECT_EQ(h.stream(0).body.size(), 1000u);
}

TEST(Http2Codec, DataAfterAStreamClosedDoesNotLeakTheConnectionWindow) {
  CodecLimits limits;
  limits.max_request_bytes = 1000;
  Http2Settings settings;
  settings.initial_stream_window_size = 65535;
  settings.initial_connection_window_size = 65535;
  Harness h(settings, limits);
  TestClient client;
  h.pump(client);
  const int32_t first = client.post("/", std::string(60000, 'x'));
  // The client sends everything before it sees the 413 and the RST_STREAM: most of it
  // arrives for a stream the server already closed.
  std::string up = client.take();
  h.feed(up.substr(0, 3000));
  h.feed(up.substr(3000));
  h.pump(client);
  EXPECT_EQ(client.response(first).status, 413);
  // The connection window was given back: a second upload of the same size gets through.
  h.auto_respond = true;
  const int32_t second = client.post("/", std::string(900, 'y'));
  const int32_t third = client.post("/", std::string(900, 'z'));
  h.pump(client);
  EXPECT_EQ(client.response(second).status, 200);
  EXPECT_EQ(client.response(third).status, 200);
  EXPECT_GE(nghttp2_session_get_remote_window_size(client.session()), 30000);
  EXPECT_EQ(h.codec->goAwayErrorCode(), -1);
}

TEST(Http2Codec, ResponseTrailers) {
  Harness h;
  h.auto_respond = false;
  TestClient client;
  const int32_t id = client.get("/t", {{"te", "trailers"}});
  h.pump(client);
  ASSERT_EQ(h.streams.size(), 1u);
  ResponseEncoder& e = h.stream(0).encoder;
  ResponseHeaders head(200);
  e.encodeHeaders(head, false);
  Buffer b("body");
  e.encodeData(b, false);
  HeaderMap trailers;
  trailers.add("grpc-status", "0");
  trailers.add("connection", "dropped");
  e.encodeTrailers(trailers);
  h.pump(client);
  const auto& r = client.response(id);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "body");
  EXPECT_EQ(fieldValue(r.trailers, "grpc-status"), "0");
  EXPECT_EQ(fieldValue(r.trailers, "connection"), "<none>");
  EXPECT_TRUE(r.complete);
}

// RFC 9113 §8.1.1: DATA must add up to the declared content-length, or the response is
// malformed (clients reset it). The codec keeps to the declared length: extra bytes are
// dropped, a short body resets the stream, and repeated or bad values are mended.
TEST(Http2Codec, ResponsesKeepToTheirContentLength) {
  auto run = [](Fields head, std::vector<std::string> chunks, bool trailers = false) {
    Harness h;
    h.auto_respond = false;
    TestClient client;
    const int32_t id = client.get("/", {{"te", "trailers"}});
    h.pump(client);
    EXPECT_EQ(h.streams.size(), 1u);
    ResponseEncoder& e = h.stream(0).encoder;
    ResponseHeaders response(200);
    for (const auto& [k, v] : head) {
      response.add(k, v);
    }
    e.encodeHeaders(response, chunks.empty() && !trailers);
    for (size_t i = 0; i < chunks.size(); ++i) {
      Buffer b(chunks[i]);
      e.encodeData(b, i + 1 == chunks.size() && !trailers);
    }
    if (trailers) {
      HeaderMap t;
      t.add("content-length", "99");
      t.add("x-sum", "1");
      e.encodeTrailers(t);
    }
    h.pump(client);
    return client.response(id);
  };
  auto longer = run({{"content-length", "3"}}, {"ab", "cdef"});
  EXPECT_TRUE(longer.complete);
  EXPECT_EQ(longer.body, "abc");
  auto shorter = run({{"content-length", "10"}}, {"abc"});
  EXPECT_TRUE(shorter.reset);
  EXPECT_FALSE(shorter.complete);
  auto none = run({{"content-length", "5"}}, {});
  EXPECT_TRUE(none.reset);
  auto same = run({{"content-length", "3"}, {"content-length", "3"}}, {"abc"});
  EXPECT_TRUE(same.complete);
  EXPECT_EQ(fieldValue(same.headers, "content-length"), "3");
  EXPECT_EQ(same.body, "abc");
  for (const Fields& bad : {Fields{{"content-length", "abc"}},
                            Fields{{"content-length", "3"}, {"content-length", "5"}}}) {
    auto r = run(bad, {"abcde"});
    EXPECT_TRUE(r.complete);
    EXPECT_EQ(fieldValue(r.headers, "content-length"), "<none>");
    EXPECT_EQ(r.body, "abcde");
  }
  auto exact = run({{"content-length", "5"}}, {"ab", "cde"}, true);
  EXPECT_TRUE(exact.complete);
  EXPECT_EQ(exact.body, "abcde");
  EXPECT_EQ(fieldValue(exact.trailers, "content-length"), "<none>"); // never in trailers
  EXPECT_EQ(fieldValue(exact.trailers, "x-sum"), "1");
}

TEST(Http2Codec, EarlyHintsBeforeTheResponse) {
  Harness h;
  h.auto_respond = false;
  TestClient client;
  const int32_t id = client.get("/page");
  h.pump(client);
  ResponseEncoder& e = h.stream(0).encoder;
  ResponseHeaders hints(103);
  hints.add("link", "</style.css>; rel=preload; as=style");
  e.encode1xxHeaders(hints);
  h.pump(client);
  ASSERT_EQ(client.response(id).informational.size(), 1u);
  EXPECT_EQ(client.response(id).informational[0].first, 103);
  EXPECT_EQ(fieldValue(client.response(id).informational[0].second, "link"),
            "</style.css>; rel=preload; as=style");
  EXPECT_EQ(client.response(id).status, 0);
  h.stream(0).respond(200, "page");
  h.pump(client);
  EXPECT_EQ(client.response(id).status, 200);
  EXPECT_EQ(client.response(id).body, "page");
}

TEST(Http2Codec, ResponseHeadersAreSanitised) {
  Harness h;
  h.auto_respond = false;
  TestClient client;
  const int32_t id = client.get("/");
  h.pump(client);
  ResponseHeaders head(200);
  head.add("connection", "keep-alive");
  head.add("transfer-encoding", "chunked");
  head.add("x-bad", "a\r\nb");
  head.addLowercase("X-Upper", "kept");
  head.add("x-good", "yes");
  head.add("server", "custom");
  h.stream(0).encoder.encodeHeaders(head, true);
  h.pump(client);
  const auto& r = client.response(id);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(fieldValue(r.headers, "connection"), "<none>");
  EXPECT_EQ(fieldValue(r.headers, "transfer-encoding"), "<none>");
  EXPECT_EQ(fieldValue(r.headers, "x-bad"), "<none>");
  EXPECT_EQ(fieldValue(r.headers, "x-upper"), "kept");
  EXPECT_EQ(fieldValue(r.headers, "x-good"), "yes");
  EXPECT_EQ(fieldValue(r.headers, "server"), "custom");
  EXPECT_EQ(client.recvError(), 0);
}

TEST(Http2Codec, HeadResponseHasNoBody) {
  Harness h;
  TestClient client;
  const int32_t id = client.request(
      {{":method", "HEAD"}, {":scheme", "http"}, {":authority", "x"}, {":path", "/"}});
  h.pump(client);
  EXPECT_EQ(client.response(id).status, 200);
  EXPECT_EQ(client.response(id).body, "");
  EXPECT_TRUE(client.response(id).complete);
  EXPECT_EQ(client.recvError(), 0);
}

TEST(Http2Codec, GoawayOnShutdownNoticeLetsInFlightStreamsFinish) {
  Harness h;
  h.auto_respond = false;
  TestClient client;
  const int32_t first = client.get("/1");
  h.pump(client);
  ASSERT_EQ(h.streams.size(), 1u);
  h.codec->shutdownNotice();
  h.pump(client);
  EXPECT_EQ(client.goawayCode(), NGHTTP2_NO_ERROR);
  EXPECT_EQ(client.goawayLastStreamId(), first);
  EXPECT_FALSE(h.closed);
  EXPECT_FALSE(h.codec->idle());
  // A stream opened after the GOAWAY is not served.
  const std::string late = frame(
      NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 3,
      hpack({{":method", "GET"}, {":scheme", "http"}, {":authority", "x"}, {":path", "/late"}}));
  h.feed(late);
  EXPECT_EQ(h.streams.size(), 1u);
  // nghttp2 drops it without a callback; it is a whole header block all the same, so no
  // request head is open (the header timeout would end the in-flight stream).
  EXPECT_FALSE(h.codec->readingHead());
  // The in-flight stream finishes, then the connection closes.
  h.stream(0).respond(200, "done");
  h.pump(client);
  EXPECT_EQ(client.response(first).body, "done");
  EXPECT_TRUE(h.codec->idle());
  EXPECT_TRUE(h.closed);
  EXPECT_TRUE(h.close_flush);
}

TEST(Http2Codec, RequestHeadTimeoutSendsGoaway) {
  Harness h;
  EXPECT_TRUE(h.codec->readingHead());
  h.feed(clientPreface());
  EXPECT_FALSE(h.codec->readingHead());
  // A HEADERS frame waiting for its CONTINUATION.
  h.feed(frame(NGHTTP2_HEADERS, 0, 1,
               hpack({{":method", "GET"}, {":scheme", "http"}, {":path", "/"}})));
  EXPECT_TRUE(h.codec->readingHead());
  h.codec->onRequestHeadTimeout();
  EXPECT_EQ(h.codec->goAwayErrorCode(), NGHTTP2_NO_ERROR);
  EXPECT_TRUE(h.closed);
}

TEST(Http2Codec, LargeResponseFollowsThePeerWindowAndReportsWatermarks) {
  CodecLimits limits;
  limits.buffer_limit = 64 * 1024;
  Harness h({}, limits);
  h.auto_respond = false;
  // The client holds its windows closed until it consumes.
  TestClient client({}, /*auto_window_update=*/false);
  const int32_t id = client.get("/big");
  h.pump(client);
  ASSERT_EQ(h.streams.size(), 1u);
  TestStream& s = h.stream(0);
  ResponseHeaders head(200);
  s.encoder.encodeHeaders(head, false);
  std::string chunk(50000, 'z');
  for (int i = 0; i < 6; ++i) {
    Buffer b(chunk);
    s.encoder.encodeData(b, false);
  }
  // 300000 bytes waiting, 65535 of them sent: above the 64 KiB limit.
  EXPECT_EQ(s.above, 1);
  EXPECT_TRUE(s.encoder.aboveHighWatermark());
  h.pump(client);
  EXPECT_EQ(client.response(id).body.size(), 65535u);
  EXPECT_EQ(s.below, 0);
  // The client reads: the window opens; once under half the limit the producer resumes.
  for (int i = 0; i < 20 && s.below == 0; ++i) {
    client.consume(id, client.response(id).body.size() - 0);
    h.pump(client);
  }
  EXPECT_EQ(s.below, 1);
  EXPECT_FALSE(s.encoder.aboveHighWatermark());
  Buffer last("!");
  s.encoder.encodeData(last, true);
  for (int i = 0; i < 50 && !client.response(id).complete; ++i) {
    client.consume(id, 1 << 20);
    h.pump(client);
  }
  EXPECT_EQ(client.response(id).body.size(), 300001u);
  EXPECT_TRUE(client.response(id).complete);
}

TEST(Http2Codec, ConnectionWatermarkPausesEveryStream) {
  Harness h;
  h.auto_respond = false;
  TestClient client;
  client.get("/1");
  client.get("/2");
  h.pump(client);
  ASSERT_EQ(h.streams.size(), 2u);
  h.codec->onAboveWriteBufferHighWatermark();
  EXPECT_EQ(h.stream(0).above, 1);
  EXPECT_EQ(h.stream(1).above, 1);
  h.codec->onBelowWriteBufferLowWatermark();
  EXPECT_EQ(h.stream(0).below, 1);
  EXPECT_EQ(h.stream(1).below, 1);
}

TEST(Http2Codec, EncodeFileReadsLazilyPerFrame) {
  char path[] = "/tmp/pounce-h2-file-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  std::string content;
  for (int i = 0; i < 200000; ++i) {
    content.push_back(static_cast<char>('a' + i % 26));
  }
  ASSERT_EQ(write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
  unlink(path);
  auto file = std::make_shared<FileHandle>(fd);

  Harness h;
  h.auto_respond = false;
  TestClient client;
  const int32_t id = client.get("/file");
  h.pump(client);
  ResponseEncoder& e = h.stream(0).encoder;
  EXPECT_FALSE(e.canSendFile());
  ResponseHeaders head(200);
  e.encodeHeaders(head, false);
  Buffer prefix("<<");
  e.encodeData(prefix, false);
  e.encodeFile(file, 10, 150000, true);
  h.pump(client);
  EXPECT_EQ(client.response(id).body, "<<" + content.substr(10, 150000));
  EXPECT_TRUE(client.response(id).complete);
}

TEST(Http2Codec, DeclaredBodyOverLimitGets413) {
  CodecLimits limits;
  limits.max_request_bytes = 1000;
  Harness h({}, limits);
  TestClient client;
  const int32_t id = client.post("/", std::string(5000, 'x'), {{"content-length", "5000"}});
  h.pump(client);
  ASSERT_EQ(h.streams.size(), 1u);
  EXPECT_EQ(h.stream(0).protocol_error, 413);
  EXPECT_EQ(client.response(id).status, 413);
  EXPECT_TRUE(client.response(id).closed);
  EXPECT_EQ(h.codec->activeStreams(), 0u);
  EXPECT_FALSE(h.closed);
}

TEST(Http2Codec, CountedBodyOverLimitGets413ThenReset) {
  CodecLimits limits;
  limits.max_request_bytes = 1000;
  Harness h({}, limits);
  h.auto_respond = false;
  TestClient client;
  // More than the stream window: the client is still sending when the answer comes.
  const int32_t id = client.post("/", std::string(300000, 'x'));
  h.pump(client);
  ASSERT_EQ(h.streams.size(), 1u);
  EXPECT_EQ(h.stream(0).protocol_error, 413);
  EXPECT_LE(h.stream(0).body.size(), 1000u);
  EXPECT_EQ(client.response(id).status, 413);
  // The request body is cut short with RST_STREAM(NO_ERROR) after the complete answer.
  EXPECT_TRUE(client.response(id).reset);
  EXPECT_EQ(client.response(id).error_code, NGHTTP2_NO_ERROR);
  EXPECT_EQ(h.codec->activeStreams(), 0u);
  // The connection goes on.
  const int32_t next = client.get("/next");
  h.auto_respond = true;
  h.pump(client);
  EXPECT_EQ(h.streams.size(), 2u);
  EXPECT_EQ(h.stream(1).headers->path(), "/next");
  EXPECT_EQ(client.response(next).status, 200);
}

// An answer before the body, to a client that holds its body back for a 100 that never came:
// no RST_STREAM with the answer (curl 7.88 takes that as no answer at all); the stream waits
// for the client, without keeping the connection busy, and is reset (NO_ERROR) only if a
// body comes after all.
TEST(Http2Codec, AnAnswerBeforeA100LeavesTheClientItsStream) {
  Harness h;
  h.auto_respond = false;
  h.configure = [](TestStream& s) { s.on_headers = [](TestStream& t) { t.respond(401, "no"); }; };
  TestClient client;
  // A POST whose HEADERS do not end the stream, with `extra` fields.
  auto post = [&client](Fields extra) {
    Fields fields{{":method", "POST"}, {":path", "/"}, {":scheme", "http"}, {":authority", "x"}};
    fields.insert(fields.end(), extra.begin(), extra.end());
    return client.request(fields, nullptr, {}, /*end_stream=*/false);
  };
  const int32_t id = post({{"expect", "100-continue"}, {"content-length", "100000"}});
  h.pump(client);
  EXPECT_EQ(client.response(id).status, 401);
  EXPECT_TRUE(client.response(id).complete);
  EXPECT_TRUE(client.response(id).informational.empty()) << "no 100";
  EXPECT_FALSE(client.response(id).reset);
  EXPECT_EQ(h.codec->activeStreams(), 1u);
  EXPECT_TRUE(h.codec->idle()) << "a stream that waits for the client keeps nothing busy";
  // The client sends the body anyway: it is told to stop.
  client.sendData(id, std::string(1000, 'x'), false);
  h.pump(client);
  EXPECT_TRUE(client.response(id).reset);
  EXPECT_EQ(client.response(id).error_code, NGHTTP2_NO_ERROR);
  EXPECT_EQ(h.codec->activeStreams(), 0u);

  // A client that gives up its body ends the stream itself.
  const int32_t second = post({{"expect", "100-continue"}});
  h.pump(client);
  EXPECT_EQ(client.response(second).status, 401);
  EXPECT_FALSE(client.response(second).reset);
  client.sendData(second, "", true);
  h.pump(client);
  EXPECT_FALSE(client.response(second).reset);
  EXPECT_EQ(h.codec->activeStreams(), 0u);

  // The usual early answer to a client that waits for a 100: 413 for its declared length.
  const int32_t large = post({{"expect", "100-continue"}, {"content-length", "999999999999"}});
  h.pump(client);
  EXPECT_EQ(client.response(large).status, 413);
  EXPECT_FALSE(client.response(large).reset);
  client.sendData(large, "", true);
  h.pump(client);

  // Without Expect, a client sends its body at once: the answer ends it (RFC 9113 §8.1).
  const int32_t third = post({});
  h.pump(client);
  EXPECT_EQ(client.response(third).status, 401);
  EXPECT_TRUE(client.response(third).reset);
  EXPECT_EQ(client.response(third).error_code, NGHTTP2_NO_ERROR);
  EXPECT_FALSE(h.closed);
}

TEST(Http2Codec, AuthorityAndHostFollowTheHttp11Rule) {
  Harness h;
  TestClient client;
  // Refused with 400, or reset by nghttp2 itself (its own check catches "h/x", "h<x>").
  auto refused = [&](int32_t id) {
    return client.response(id).status == 400 ||
           (client.response(id).reset && client.response(id).error_code == NGHTTP2_PROTOCOL_ERROR);
  };
  for (const char* bad : {"u@h", "h:99999", "[zz", ":80", "h/x"}) {
    const int32_t id = client.request(
        {{":method", "GET"}, {":path", "/"}, {":scheme", "http"}, {":authority", bad}});
    h.pump(client);
    EXPECT_TRUE(refused(id)) << bad;
  }
  for (const char* bad : {"h:99999", "u@h", "h<x>"}) {
    const int32_t id =
        client.request({{":method", "GET"}, {":path", "/"}, {":scheme", "http"}, {"host", bad}});
    h.pump(client);
    EXPECT_TRUE(refused(id)) << bad;
  }
  // What nghttp2 lets through, pounce's rule refuses with 400.
  for (const char* bad : {"u@h", "h:99999"}) {
    const int32_t id = client.request(
        {{":method", "GET"}, {":path", "/"}, {":scheme", "http"}, {":authority", bad}});
    h.pump(client);
    EXPECT_EQ(client.response(id).status, 400) << bad;
  }
  const int32_t good = client.request(
      {{":method", "GET"}, {":path", "/"}, {":scheme", "http"}, {":authority", "[::1]:8443"}});
  h.pump(client);
  EXPECT_EQ(client.response(good).status, 200);
  EXPECT_FALSE(h.closed);
}

TEST(Http2Codec, BodyOverLimitAfterResponseStartedCancelsTheStream) {
  CodecLimits limits;
  limits.max_request_bytes = 1000;
  Harness h({}, limits);
  h.auto_respond = false;
  h.configure = [](TestStream& s) {
    s.on_headers = [](TestStream& t) {
      ResponseHeaders head(200);
      t.response_started = true;
      t.encoder.encodeHeaders(head, false);
    };
  };
  // ActiveStream answers a protocol error after the response started with a reset.
  TestClient client;
  const int32_t id = client.post("/", std::string(50000, 'x'));
  h.pump(client);
  ASSERT_EQ(h.streams.size(), 1u);
  EXPECT_EQ(h.stream(0).protocol_error, 413);
  EXPECT_TRUE(client.response(id).reset);
  EXPECT_EQ(client.response(id).error_code, NGHTTP2_CANCEL);
}

TEST(Http2Codec, HeadersOverLimitGet431) {
  CodecLimits limits;
  limits.max_header_bytes = 1024;
  Harness h({}, limits);
  TestClient client;
  const int32_t id = client.get("/", {{"x-big", std::string(1500, 'h')}});
  h.pump(client);
  ASSERT_EQ(h.streams.size(), 1u);
  EXPECT_EQ(h.stream(0).protocol_error, 431);
  EXPECT_EQ(client.response(id).status, 431);
  EXPECT_FALSE(h.closed);
}

TEST(Http2Codec, TooManyHeadersGet431) {
  CodecLimits limits;
  limits.max_headers = 5;
  Harness h({}, limits);
  TestClient client;
  Fields extra;
  for (int i = 0; i < 6; ++i) {
    extra.emplace_back("x-h" + std::to_string(i), "v");
  }
  const int32_t id = client.get("/", extra);
  h.pump(client);
  EXPECT_EQ(client.response(id).status, 431);
}

TEST(Http2Codec, LongPathGets414) {
  CodecLimits limits;
  limits.max_uri_bytes = 100;
  Harness h({}, limits);
  TestClient client;
  const int32_t id = client.get("/" + std::string(200, 'p'));
  h.pump(client);
  EXPECT_EQ(client.response(id).status, 414);
}

TEST(Http2Codec, PlainConnectGets501) {
  Harness h;
  TestClient client;
  const int32_t id = client.request({{":method", "CONNECT"}, {":authority", "example.com:443"}});
  h.pump(client);
  EXPECT_EQ(client.response(id).status, 501);
}

TEST(Http2Codec, MalformedRequestsAreResetWithProtocolError) {
  const std::vector<Fields> bad = {
      {{":method", "GET"}, {":scheme", "http"}, {":authority", "x"}},                 // no path
      {{":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {"Upper", "x"}},      // case
      {{":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {"connection", "x"}}, // conn
      {{":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {"te", "gzip"}},      // te
      {{":method", "GET"}, {":path", "/"}, {":scheme", "http"}, {":bogus", "1"}},     // pseudo
      {{":method", "GET"}, {"x-a", "1"}, {":path", "/"}, {":scheme", "http"}},        // order
  };
  for (const auto& fields : bad) {
    Harness h;
    const std::string input =
        clientPreface() + frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM,
                                1, hpack(fields));
    h.feed(input);
    EXPECT_EQ(h.streams.size(), 0u);
    bool rst = false;
    for (const auto& f : test::parseFrames(h.takeOutput())) {
      rst = rst || (f.type == NGHTTP2_RST_STREAM && f.stream_id == 1 &&
                    f.payload == std::string("\0\0\0\x01", 4));
    }
    EXPECT_TRUE(rst) << fields.size();
    EXPECT_FALSE(h.closed);
  }
}

TEST(Http2Codec, StreamsOverTheLimitAreRefused) {
  Http2Settings settings;
  settings.max_concurrent_streams = 2;
  Harness h(settings);
  h.auto_respond = false;
  TestClient client; // has not seen the server's SETTINGS yet: sends three at once
  client.get("/1");
  client.get("/2");
  const int32_t third = client.get("/3");
  h.pump(client);
  EXPECT_EQ(h.streams.size(), 2u);
  EXPECT_TRUE(client.response(third).reset);
  EXPECT_EQ(client.response(third).error_code, NGHTTP2_REFUSED_STREAM);
}

TEST(Http2Codec, ExtendedConnectCarriesTunnelBytesBothWays) {
  // The tunnel carries more than max_request_bytes over its life: a tunnel is not a request
  // body (RFC 8441 §5), so the body limit does not end it.
  CodecLimits limits;
  limits.max_request_bytes = 10;
  Harness h({}, limits);
  h.auto_respond = false;
  // An echo: every request DATA goes back as response DATA.
  h.configure = [](TestStream& s) {
    s.on_headers = [](TestStream& t) {
      ResponseHeaders head(200);
      t.encoder.encodeHeaders(head, false);
    };
    s.on_data = [](TestStream& t) {
      Buffer echo(t.body);
      t.body.clear();
      t.encoder.encodeData(echo, t.request_complete);
    };
  };
  TestClient client;
  h.pump(client); // SETTINGS exchange: the client learns ENABLE_CONNECT_PROTOCOL
  const std::string none;
  const int32_t id = client.request({{":method", "CONNECT"},
                                     {":protocol", "websocket"},
                                     {":scheme", "http"},
                                     {":path", "/chat"},
                                     {":authority", "x"},
                                     {"sec-websocket-version", "13"}},
                                    &none, {}, /*end_stream=*/false);
  h.pump(client);
  ASSERT_EQ(h.streams.size(), 1u);
  EXPECT_EQ(h.stream(0).headers->method(), "CONNECT");
  EXPECT_EQ(h.stream(0).headers->connectProtocol(), "websocket");
  EXPECT_EQ(h.stream(0).headers->path(), "/chat");
  EXPECT_EQ(client.response(id).status, 200);
  client.sendData(id, "ping-1", false);
  h.pump(client);
  EXPECT_EQ(client.response(id).body, "ping-1");
  client.sendData(id, "ping-2", false);
  h.pump(client);
  EXPECT_EQ(client.response(id).body, "ping-1ping-2");
  client.sendData(id, "ping-3", true); // 18 bytes in all, over the limit of 10
  h.pump(client);
  EXPECT_EQ(client.response(id).body, "ping-1ping-2ping-3");
  EXPECT_FALSE(client.response(id).reset);
  EXPECT_TRUE(client.response(id).complete);
}

TEST(Http2Codec, PriorityHeaderOrdersResponses) {
  Harness h;
  h.auto_respond = false;
  // Both answer at once (in the same dispatch), the background one first.
  h.configure = [](TestStream& s) {
    s.on_headers = [](TestStream& t) { t.respond(200, std::string(60000, 'r')); };
  };
  TestClient client;
  h.pump(client);
  const int32_t background = client.get("/bg", {{"priority", "u=7"}});
  const int32_t urgent = client.get("/urgent", {{"priority", "u=0"}});
  h.feed(client.take());
  ASSERT_EQ(h.streams.size(), 2u);
  client.give(h.takeOutput());
  int32_t first_data = 0;
  for (const auto& [type, id] : client.frames()) {
    if (type == NGHTTP2_DATA) {
      first_data = id;
      break;
    }
  }
  EXPECT_EQ(first_data, urgent);
  EXPECT_NE(background, urgent);
}

TEST(Http2Codec, PriorityUpdateReordersResponses) {
  Harness h;
  h.auto_respond = false;
  h.configure = [](TestStream& s) {
    s.on_headers = [](TestStream& t) { t.respond(200, std::string(60000, 'r')); };
  };
  TestClient client;
  h.pump(client);
  // PRIORITY_UPDATE (RFC 9218 §7.1) for stream 1 before its HEADERS: background.
  std::string update("\0\0\0\x01u=7", 7);
  std::string input = frame(0x10, 0, 0, update);
  const std::string block =
      hpack({{":method", "GET"}, {":scheme", "http"}, {":authority", "x"}, {":path", "/"}});
  input += frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 1, block);
  input += frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 3, block);
  h.feed(input);
  ASSERT_EQ(h.streams.size(), 2u);
  int32_t first_data = 0;
  for (const auto& f : test::parseFrames(h.takeOutput())) {
    if (f.type == NGHTTP2_DATA) {
      first_data = f.stream_id;
      break;
    }
  }
  EXPECT_EQ(first_data, 3);
}

TEST(Http2Codec, ResponsePriorityFieldOverridesTheClient) {
  Harness h;
  h.auto_respond = false;
  // The app marks the first response as background.
  h.configure = [](TestStream& s) {
    s.on_headers = [](TestStream& t) {
      if (t.headers->path() == "/bg") {
        t.respond(200, std::string(60000, 'b'), {{"priority", "u=7"}});
      } else {
        t.respond(200, std::string(60000, 'u'));
      }
    };
  };
  TestClient client;
  h.pump(client);
  client.get("/bg");
  const int32_t other = client.get("/other");
  h.feed(client.take());
  int32_t first_data = 0;
  for (const auto& f : test::parseFrames(h.takeOutput())) {
    if (f.type == NGHTTP2_DATA) {
      first_data = f.stream_id;
      break;
    }
  }
  EXPECT_EQ(first_data, other);
}

TEST(Http2Codec, PriorityFieldParsing) {
  uint32_t u = 3;
  bool i = false;
  EXPECT_TRUE(parsePriority("u=5, i", u, i));
  EXPECT_EQ(u, 5u);
  EXPECT_TRUE(i);
  EXPECT_TRUE(parsePriority("i=?0;x=1, u=0", u, i));
  EXPECT_EQ(u, 0u);
  EXPECT_FALSE(i);
  u = 3;
  EXPECT_FALSE(parsePriority("u=9", u, i));
  EXPECT_FALSE(parsePriority("", u, i));
  EXPECT_EQ(u, 3u);
}

TEST(Http2Codec, MaxRequestsPerConnectionSendsGoaway) {
  CodecLimits limits;
  limits.max_requests_per_connection = 2;
  Harness h({}, limits);
  TestClient client;
  const int32_t a = client.get("/1");
  const int32_t b = client.get("/2");
  const int32_t c = client.get("/3");
  h.pump(client);
  EXPECT_EQ(h.streams.size(), 2u);
  EXPECT_EQ(client.response(a).status, 200);
  EXPECT_EQ(client.response(b).status, 200);
  EXPECT_EQ(client.response(c).status, 0);
  EXPECT_EQ(client.response(c).error_code, NGHTTP2_REFUSED_STREAM);
  EXPECT_EQ(client.goawayCode(), NGHTTP2_NO_ERROR);
  EXPECT_EQ(client.goawayLastStreamId(), b);
  EXPECT_TRUE(h.closed);
}

TEST(Http2Codec, H2cUpgradeServesTheRequestAsStreamOne) {
  TestClient client;
  uint8_t payload[64];
  const nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100}};
  const ssize_t n = nghttp2_pack_settings_payload(payload, sizeof(payload), iv, 1);
  ASSERT_GT(n, 0);
  ASSERT_EQ(nghttp2_session_upgrade2(client.session(), payload, static_cast<size_t>(n), 0, nullptr),
            0);
  Harness h;
  auto request = std::make_unique<RequestHeaders>();
  request->setMethod("GET");
  request->setPath("/upgraded");
  request->add("host", "example.com");
  request->add("connection", "Upgrade, HTTP2-Settings");
  request->add("upgrade", "h2c");
  request->add("http2-settings", "AAMAAABk");
  ASSERT_TRUE(h.codec->upgrade(
      std::string_view(reinterpret_cast<const char*>(payload), static_cast<size_t>(n)),
      std::move(request)));
  ASSERT_EQ(h.streams.size(), 1u);
  const RequestHeaders& req = *h.stream(0).headers;
  EXPECT_EQ(req.path(), "/upgraded");
  EXPECT_EQ(req.protocol(), "HTTP/2");
  EXPECT_EQ(req.authority(), "example.com");
  EXPECT_FALSE(req.has("upgrade"));
  EXPECT_FALSE(req.has("http2-settings"));
  EXPECT_FALSE(req.has("connection"));
  h.pump(client);
  EXPECT_EQ(client.response(1).status, 200);
  EXPECT_EQ(client.response(1).body, "ok");
}

TEST(Http2Codec, SettingsHeaderDecoding) {
  std::string payload;
  EXPECT_TRUE(decodeSettingsHeader("AAMAAABkAAQCAAAAAAIAAAAA", payload));
  ASSERT_EQ(payload.size(), 18u);
  EXPECT_EQ(payload[1], 3); // SETTINGS_MAX_CONCURRENT_STREAMS
  EXPECT_TRUE(decodeSettingsHeader("", payload));
  EXPECT_TRUE(payload.empty());
  EXPECT_FALSE(decodeSettingsHeader("AAMAAAB", payload));  // 5 bytes
  EXPECT_FALSE(decodeSettingsHeader("AA+AAABk", payload)); // not base64url
  EXPECT_FALSE(decodeSettingsHeader("A", payload));
  EXPECT_FALSE(decodeSettingsHeader("AAIAAAAC", payload)); // ENABLE_PUSH 2
  EXPECT_FALSE(decodeSettingsHeader("AAUAAABk", payload)); // MAX_FRAME_SIZE 100
  EXPECT_FALSE(decodeSettingsHeader("AAT_____", payload)); // INITIAL_WINDOW_SIZE 2^32-1
  EXPECT_TRUE(decodeSettingsHeader("AAIAAAAB", payload));  // ENABLE_PUSH 1
  EXPECT_TRUE(decodeSettingsHeader("AGMAAAAC", payload));  // an unknown setting
}

TEST(Http2Codec, BadPrefaceClosesTheConnection) {
  Harness h;
  h.feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(h.closed);
  EXPECT_TRUE(h.codec->wantsClose());
}

TEST(Http2Codec, ConnectionClosedResetsActiveStreams) {
  Harness h;
  h.auto_respond = false;
  TestClient client;
  client.get("/1");
  h.pump(client);
  h.codec->onConnectionClosed();
  EXPECT_TRUE(h.stream(0).reset);
  EXPECT_EQ(h.stream(0).reason, StreamResetReason::ConnectionClosed);
}

TEST(Http2Codec, ClientResetIsReportedToTheStream) {
  Harness h;
  h.auto_respond = false;
  TestClient client;
  const int32_t id = client.get("/1");
  h.pump(client);
  client.resetStream(id);
  h.pump(client);
  EXPECT_TRUE(h.stream(0).reset);
  EXPECT_EQ(h.stream(0).reason, StreamResetReason::RemoteReset);
  EXPECT_EQ(h.codec->activeStreams(), 0u);
}

// --- floods -----------------------------------------------------------------------------

TEST(Http2Flood, RapidResetEndsWithEnhanceYourCalm) {
  Http2Settings settings;
  settings.max_reset_streams = 50;
  Harness h(settings);
  h.auto_respond = false;
  std::string input = clientPreface();
  const std::string block =
      hpack({{":method", "GET"}, {":scheme", "http"}, {":authority", "x"}, {":path", "/"}});
  for (int32_t id = 1; id < 2 * 1000; id += 2) {
    input += frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, id, block);
    input += frame(NGHTTP2_RST_STREAM, 0, id, std::string("\0\0\0\x08", 4));
  }
  h.feed(input);
  EXPECT_EQ(h.codec->goAwayErrorCode(), NGHTTP2_ENHANCE_YOUR_CALM);
  EXPECT_TRUE(h.closed);
  // It stopped at the limit: no more streams than the limit (+1) were ever started.
  EXPECT_LE(h.streams.size(), 51u);
  EXPECT_LT(h.output.length(), 4096u);
}

TEST(Http2Flood, ResetsSpreadOverTimeAreAllowed) {
  Http2Settings settings;
  settings.max_reset_streams = 10;
  settings.flood_window = std::chrono::seconds(1);
  Harness h(settings);
  h.auto_respond = false;
  h.feed(clientPreface());
  const std::string block =
      hpack({{":method", "GET"}, {":scheme", "http"}, {":authority", "x"}, {":path", "/"}});
  int32_t id = 1;
  for (int round = 0; round < 5; ++round) {
    std::string input;
    for (int i = 0; i < 10; ++i, id += 2) {
      input +=
          frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, id, block);
      input += frame(NGHTTP2_RST_STREAM, 0, id, std::string("\0\0\0\x08", 4));
    }
    h.feed(input);
    h.time.advance(std::chrono::milliseconds(1100));
  }
  EXPECT_EQ(h.codec->goAwayErrorCode(), -1);
  EXPECT_FALSE(h.closed);
}

TEST(Http2Flood, MalformedStreamsCountAsResets) {
  // "Made you reset": every stream is reset by the server for a stream error.
  Http2Settings settings;
  settings.max_reset_streams = 20;
  Harness h(settings);
  std::string input = clientPreface();
  const std::string bad = hpack({{":method", "GET"}, {":path", "/"}, {"connection", "x"}});
  for (int32_t id = 1; id < 200; id += 2) {
    input += frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, id, bad);
  }
  h.feed(input);
  EXPECT_EQ(h.codec->goAwayErrorCode(), NGHTTP2_ENHANCE_YOUR_CALM);
  EXPECT_TRUE(h.closed);
}

TEST(Http2Flood, ContinuationFloodEndsWithEnhanceYourCalm) {
  Harness h;
  std::string input = clientPreface();
  input += frame(NGHTTP2_HEADERS, 0, 1,
                 hpack({{":method", "GET"}, {":scheme", "http"}, {":path", "/"}}));
  const std::string more = hpack({{"x-a", std::string(100, 'a')}});
  for (int i = 0; i < 10000; ++i) {
    input += frame(NGHTTP2_CONTINUATION, 0, 1, more);
  }
  h.feed(input);
  EXPECT_EQ(h.codec->goAwayErrorCode(), NGHTTP2_ENHANCE_YOUR_CALM);
  EXPECT_TRUE(h.closed);
  EXPECT_EQ(h.streams.size(), 0u);
  EXPECT_LT(h.output.length(), 4096u);
}

TEST(Http2Flood, EmptyContinuationFramesAreAFlood) {
  Harness h;
  std::string input = clientPreface();
  input += frame(NGHTTP2_HEADERS, 0, 1, hpack({{":method", "GET"}}));
  for (int i = 0; i < 3; ++i) {
    input += frame(NGHTTP2_CONTINUATION, 0, 1, "");
  }
  h.feed(input);
  EXPECT_EQ(h.codec->goAwayErrorCode(), NGHTTP2_ENHANCE_YOUR_CALM);
}

TEST(Http2Flood, EmptyDataFloodEndsWithEnhanceYourCalm) {
  Harness h;
  h.auto_respond = false;
  std::string input = clientPreface();
  input +=
      frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 1,
            hpack({{":method", "POST"}, {":scheme", "http"}, {":authority", "x"}, {":path", "/"}}));
  for (int i = 0; i < 1000; ++i) {
    input += frame(NGHTTP2_DATA, 0, 1, "");
  }
  h.feed(input);
  EXPECT_EQ(h.codec->goAwayErrorCode(), NGHTTP2_ENHANCE_YOUR_CALM);
  EXPECT_TRUE(h.closed);
}

TEST(Http2Flood, PaddingOnlyDataAndControlFramesBetweenEmptyOnesDoNotHideAFlood) {
  // The GOAWAY code after a POST followed by 100 copies of `frames` (-1: none).
  auto goAwayAfter = [](const std::string& frames) {
    Harness h;
    h.auto_respond = false;
    std::string input =
        clientPreface() +
        frame(
            NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 1,
            hpack({{":method", "POST"}, {":scheme", "http"}, {":authority", "x"}, {":path", "/"}}));
    for (int i = 0; i < 100; ++i) {
      input += frames;
    }
    h.feed(input);
    return h.codec->goAwayErrorCode();
  };
  // DATA whose payload is only padding (pad length 10, then 10 zero bytes).
  EXPECT_EQ(goAwayAfter(frame(NGHTTP2_DATA, NGHTTP2_FLAG_PADDED, 1,
                              std::string(1, '\x0a') + std::string(10, '\0'))),
            NGHTTP2_ENHANCE_YOUR_CALM);
  EXPECT_EQ(goAwayAfter(frame(NGHTTP2_DATA, 0, 1, "") + frame(NGHTTP2_PING, 0, 0, "12345678")),
            NGHTTP2_ENHANCE_YOUR_CALM);
  // Padded DATA that carries data, alternating with empty DATA, is an ordinary upload.
  EXPECT_EQ(goAwayAfter(frame(NGHTTP2_DATA, NGHTTP2_FLAG_PADDED, 1,
                              std::string(1, '\x02') + "ab" + std::string(2, '\0')) +
                        frame(NGHTTP2_DATA, 0, 1, "")),
            -1);
}

TEST(Http2Flood, PingFloodInOneReadEndsWithEnhanceYourCalm) {
  Harness h;
  std::string input = clientPreface();
  for (int i = 0; i < 5000; ++i) {
    input += frame(NGHTTP2_PING, 0, 0, "12345678");
  }
  h.feed(input);
  EXPECT_EQ(h.codec->goAwayErrorCode(), NGHTTP2_ENHANCE_YOUR_CALM);
  EXPECT_TRUE(h.closed);
  // At most the allowed number of ACKs (17 bytes each) were queued.
  EXPECT_LT(h.output.length(), 1100u * 17 + 1024);
}

TEST(Http2Flood, PingsToAClientThatDoesNotReadEndWithEnhanceYourCalm) {
  // Each read is under nghttp2's own per-read cap; the ACKs pile up in our output because
  // the client never reads them.
  Harness h;
  h.feed(clientPreface());
  for (int round = 0; round < 30 && !h.closed; ++round) {
    std::string input;
    for (int i = 0; i < 100; ++i) {
      input += frame(NGHTTP2_PING, 0, 0, "abcdefgh");
    }
    h.feed(input);
  }
  EXPECT_EQ(h.codec->goAwayErrorCode(), NGHTTP2_ENHANCE_YOUR_CALM);
  EXPECT_TRUE(h.closed);
  EXPECT_LE(h.codec->queuedOutboundControlFrames(), 1100u);
  EXPECT_LT(h.output.length(), 1100u * 17 + 1024);
}

TEST(Http2Flood, ResponsesPilingUpForAClientThatDoesNotReadEndTheConnection) {
  Http2Settings settings;
  settings.max_outbound_frames = 50;
  Harness h(settings);
  TestClient client;
  for (int i = 0; i < 40; ++i) {
    client.get("/" + std::to_string(i));
  }
  h.feed(client.take()); // the client never reads what comes back
  EXPECT_EQ(h.codec->goAwayErrorCode(), NGHTTP2_ENHANCE_YOUR_CALM);
  EXPECT_TRUE(h.closed);
  EXPECT_LE(h.codec->queuedOutboundFrames(), 60u);
}

TEST(Http2Flood, PingsToAClientThatReadsAreFine) {
  Harness h;
  h.feed(clientPreface());
  for (int round = 0; round < 30; ++round) {
    std::string input;
    for (int i = 0; i < 100; ++i) {
      input += frame(NGHTTP2_PING, 0, 0, "abcdefgh");
    }
    h.feed(input);
    h.takeOutput(); // the client reads
  }
  EXPECT_EQ(h.codec->goAwayErrorCode(), -1);
  EXPECT_FALSE(h.closed);
}

TEST(Http2Flood, SettingsFloodEndsWithEnhanceYourCalm) {
  Harness h;
  h.feed(clientPreface());
  for (int round = 0; round < 30 && !h.closed; ++round) {
    std::string input;
    for (int i = 0; i < 100; ++i) {
      input += frame(NGHTTP2_SETTINGS, 0, 0, "");
    }
    h.feed(input);
  }
  EXPECT_EQ(h.codec->goAwayErrorCode(), NGHTTP2_ENHANCE_YOUR_CALM);
  EXPECT_TRUE(h.closed);
  EXPECT_LT(h.output.length(), 1100u * 9 + 1024);
}

TEST(Http2Flood, HpackBombEndsWithEnhanceYourCalm) {
  // One big literal added to the dynamic table, then referenced over and over: a tiny
  // header block that decodes to megabytes.
  CodecLimits limits;
  limits.max_header_bytes = 8192;
  Harness h({}, limits);
  std::string block =
      hpack({{":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {":authority", "x"}});
  // Literal with incremental indexing, new name "x-bomb" (6), value 3000 bytes.
  block += '\x40';
  block += '\x06';
  block += "x-bomb";
  const std::string value(3000, 'b');
  block += '\x7f'; // 127 + varint
  uint32_t rest = static_cast<uint32_t>(value.size()) - 127;
  while (rest >= 128) {
    block += static_cast<char>((rest & 0x7f) | 0x80);
    rest >>= 7;
  }
  block += static_cast<char>(rest);
  block += value;
  // Indexed field 62 (the newest dynamic entry), many times.
  block += std::string(4000, '\xbe');
  Harness* hp = &h;
  hp->feed(clientPreface() +
           frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 1, block));
  EXPECT_EQ(h.codec->goAwayErrorCode(), NGHTTP2_ENHANCE_YOUR_CALM);
  EXPECT_TRUE(h.closed);
  EXPECT_EQ(h.streams.size(), 0u);
}

TEST(Http2Flood, FloodOnOneConnectionLeavesAnotherUntouched) {
  Harness flooded;
  Harness healthy;
  TestClient client;
  std::string input = clientPreface();
  for (int i = 0; i < 5000; ++i) {
    input += frame(NGHTTP2_PING, 0, 0, "12345678");
  }
  flooded.feed(input);
  const int32_t id = client.get("/");
  healthy.pump(client);
  EXPECT_TRUE(flooded.closed);
  EXPECT_FALSE(healthy.closed);
  EXPECT_EQ(client.response(id).status, 200);
}

} // namespace
} // namespace pounce::http::http2
