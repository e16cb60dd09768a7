#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "source/http/http1/codec.h"
#include "test/test_common/simulated_time.h"

namespace pounce::http::http1 {
namespace {

// Records what the codec reports and answers each complete request with "ok" (or, for a
// protocol error, with the error status), as the connection manager would.
class Recorder : public ServerConnectionCallbacks, public RequestDecoder {
public:
  RequestDecoder& newStream(ResponseEncoder& encoder) override {
    encoder_ = &encoder;
    return *this;
  }
  void onCodecOutput() override {}
  void readDisable(bool disable) override { read_disabled += disable ? 1 : -1; }
  void closeConnection(bool flush) override { closed = true; }

  void decodeHeaders(RequestHeadersPtr headers, bool end_stream) override {
    std::string e =
        "headers " + headers->method() + " " + headers->path() + " " + headers->protocol();
    for (const auto [k, v] : *headers) {
      e += " " + std::string(k) + "=" + std::string(v);
    }
    if (end_stream) {
      e += " end";
    }
    events.push_back(e);
    last_headers = std::move(headers);
    if (end_stream && auto_respond) {
      respond();
    }
  }
  void decodeData(Buffer& data, bool end_stream) override {
    body += data.toString();
    if (end_stream) {
      events.push_back("body " + body + " end");
      body.clear();
      if (auto_respond) {
        respond();
      }
    }
  }
  void decodeTrailers(HeaderMapPtr trailers) override {
    std::string e = "body " + body + " trailers";
    body.clear();
    for (const auto [k, v] : *trailers) {
      e += " " + std::string(k) + "=" + std::string(v);
    }
    events.push_back(e);
    if (auto_respond) {
      respond();
    }
  }
  void onProtocolError(int status, std::string_view details) override {
    events.push_back("error " + std::to_string(status) +
                     (getenv("CODEC_DEBUG") ? std::string(" ") + std::string(details) : ""));
    error_status = status;
    ResponseHeaders h(status);
    h.add("content-length", "0");
    encoder_->encodeHeaders(h, true);
  }

  void respond() {
    ResponseHeaders h(200);
    h.add("content-length", "2");
    encoder_->encodeHeaders(h, false);
    Buffer b("ok");
    encoder_->encodeData(b, true);
  }

  ResponseEncoder* encoder_{nullptr};
  std::vector<std::string> events;
  std::string body;
  RequestHeadersPtr last_headers;
  int error_status{0};
  int read_disabled{0};
  bool closed{false};
  bool auto_respond{true};
};

std::string drain(OutputQueue& q) {
  std::string out;
  for (size_t i = 0; i < q.segmentCount(); ++i) {
    out += q.segment(i).bytes.toString();
  }
  q.clear();
  return out;
}

struct FeedResult {
  std::vector<std::string> events;
  std::string output;
  int error_status{0};
  bool closed{false};
};

// Feeds `input` in the given chunk sizes, as a connection would: unconsumed bytes stay in
// the buffer and more are appended.
FeedResult feed(const std::string& input, const std::vector<size_t>& chunks,
                CodecLimits limits = {}) {
  test::SimulatedTimeSource time;
  OutputQueue output;
  Recorder recorder;
  ServerConnectionImpl codec(output, recorder, limits, time);
  Buffer buffer;
  size_t pos = 0;
  for (size_t n : chunks) {
    buffer.add(input.substr(pos, n));
    pos += n;
    codec.dispatch(buffer);
    // Reading resumes when the codec asked to pause for pipelining and the response is done.
    while (recorder.read_disabled == 0 && !buffer.empty() && !codec.wantsClose() &&
           recorder.error_status == 0) {
      const size_t before = buffer.length();
      codec.dispatch(buffer);
      if (buffer.length() == before) {
        break;
      }
    }
    if (recorder.read_disabled > 0) {
      recorder.read_disabled = 0;
      codec.dispatch(buffer);
    }
  }
  return {recorder.events, drain(output), recorder.error_status, recorder.closed};
}

FeedResult feedWhole(const std::string& input, CodecLimits limits = {}) {
  return feed(input, {input.size()}, limits);
}

int statusOf(const std::string& input, CodecLimits limits = {}) {
  return feedWhole(input, limits).error_status;
}

TEST(Http1Codec, ParsesSimpleGet) {
  auto run = feedWhole("GET /a?b=1 HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\n\r\n");
  ASSERT_EQ(run.events.size(), 1u);
  EXPECT_EQ(run.events[0], "headers GET /a?b=1 HTTP/1.1 host=x user-agent=t end");
  EXPECT_NE(run.output.find("HTTP/1.1 200 OK\r\n"), std::string::npos);
  EXPECT_NE(run.output.find("date: "), std::string::npos);
  EXPECT_NE(run.output.find("server: pounce\r\n"), std::string::npos);
  EXPECT_EQ(run.output.find("connection: close"), std::string::npos);
  EXPECT_FALSE(run.closed);
}

TEST(Http1Codec, KeepsHeaderOrderAndDuplicates) {
  auto run = feedWhole("GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nx-b: 2\r\nX-A: 3\r\n\r\n");
  EXPECT_EQ(run.events[0], "headers GET / HTTP/1.1 host=x x-a=1 x-b=2 x-a=3 end");
}

TEST(Http1Codec, TrimsHeaderWhitespace) {
  auto run = feedWhole("GET / HTTP/1.1\r\nHost:   x  \r\nX:\tv\t\r\n\r\n");
  EXPECT_EQ(run.events[0], "headers GET / HTTP/1.1 host=x x=v end");
}

TEST(Http1Codec, PipelinedRequestsAnsweredInOrder) {
  const std::string input = "GET /1 HTTP/1.1\r\nHost: x\r\n\r\n"
                            "POST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                            "GET /3 HTTP/1.1\r\nHost: x\r\n\r\n";
  auto run = feedWhole(input);
  ASSERT_EQ(run.events.size(), 4u);
  EXPECT_EQ(run.events[0], "headers GET /1 HTTP/1.1 host=x end");
  EXPECT_EQ(run.events[1], "headers POST /2 HTTP/1.1 host=x content-length=3");
  EXPECT_EQ(run.events[2], "body abc end");
  EXPECT_EQ(run.events[3], "headers GET /3 HTTP/1.1 host=x end");
  size_t count = 0;
  for (size_t p = 0; (p = run.output.find("HTTP/1.1 200 OK", p)) != std::string::npos; ++p) {
    ++count;
  }
  EXPECT_EQ(count, 3u);
}

TEST(Http1Codec, ByteByByteAndRandomSplitsGiveTheSameEvents) {
  const std::string input =
      "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTE: trailers\r\n\r\n"
      "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Sum: 11\r\n\r\n"
      "GET /next HTTP/1.1\r\nHost: y\r\nConnection: keep-alive\r\n\r\n"
      "PUT /cl HTTP/1.1\r\nHost: z\r\nContent-Length: 10\r\n\r\n0123456789";
  const FeedResult whole = feedWhole(input);
  ASSERT_EQ(whole.error_status, 0);
  ASSERT_EQ(whole.events.size(), 5u);
  EXPECT_EQ(whole.events[1], "body hello world trailers x-sum=11");

  std::vector<size_t> bytes(input.size(), 1);
  const FeedResult by_byte = feed(input, bytes);
  EXPECT_EQ(by_byte.events, whole.events);
  EXPECT_EQ(by_byte.output, whole.output);

  std::mt19937 rng(42);
  for (int round = 0; round < 200; ++round) {
    std::vector<size_t> chunks;
    size_t left = input.size();
    while (left > 0) {
      const size_t n = std::min<size_t>(left, 1 + rng() % 23);
      chunks.push_back(n);
      left -= n;
    }
    const FeedResult split = feed(input, chunks);
    ASSERT_EQ(split.events, whole.events) << "round " << round;
    ASSERT_EQ(split.output, whole.output) << "round " << round;
  }
}

TEST(Http1Codec, ChunkedResponseWhenNoLength) {
  test::SimulatedTimeSource time;
  OutputQueue output;
  Recorder recorder;
  recorder.auto_respond = false;
  CodecLimits limits;
  ServerConnectionImpl codec(output, recorder, limits, time);
  Buffer in("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  codec.dispatch(in);
  ResponseHeaders h(200);
  recorder.encoder_->encodeHeaders(h, false);
  Buffer a("hello");
  recorder.encoder_->encodeData(a, false);
  Buffer b("!");
  recorder.encoder_->encodeData(b, true);
  const std::string out = drain(output);
  EXPECT_NE(out.find("transfer-encoding: chunked\r\n"), std::string::npos);
  EXPECT_NE(out.find("\r\n\r\n5\r\nhello\r\n1\r\n!\r\n0\r\n\r\n"), std::string::npos);
}

TEST(Http1Codec, TrailersOnlyWhenClientAcceptsThem) {
  for (bool te : {true, false}) {
    test::SimulatedTimeSource time;
    OutputQueue output;
    Recorder recorder;
    recorder.auto_respond = false;
    CodecLimits limits;
    ServerConnectionImpl codec(output, recorder, limits, time);
    Buffer in(te ? "GET / HTTP/1.1\r\nHost: x\r\nTE: trailers\r\n\r\n"
                 : "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    codec.dispatch(in);
    ResponseHeaders h(200);
    recorder.encoder_->encodeHeaders(h, false);
    Buffer a("x");
    recorder.encoder_->encodeData(a, false);
    HeaderMap trailers;
    trailers.add("grpc-status", "0");
    recorder.encoder_->encodeTrailers(trailers);
    const std::string out = drain(output);
    EXPECT_EQ(out.find("grpc-status: 0\r\n") != std::string::npos, te);
    EXPECT_NE(out.find("1\r\nx\r\n0\r\n"), std::string::npos);
  }
}

TEST(Http1Codec, HeadResponseHasNoBody) {
  auto run = feedWhole("HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_NE(run.output.find("content-length: 2\r\n"), std::string::npos);
  EXPECT_EQ(run.output.substr(run.output.size() - 4), "\r\n\r\n");
}

TEST(Http1Codec, ConnectionCloseIsHonoured) {
  auto run = feedWhole("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(run.output.find("connection: close\r\n"), std::string::npos);
  EXPECT_TRUE(run.closed);
}

TEST(Http1Codec, Http10KeepAliveRules) {
  auto plain = feedWhole("GET / HTTP/1.0\r\n\r\n");
  EXPECT_EQ(plain.events[0], "headers GET / HTTP/1.0 end");
  EXPECT_NE(plain.output.find("connection: close\r\n"), std::string::npos);
  EXPECT_TRUE(plain.closed);

  auto keep = feedWhole("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /2 HTTP/1.0\r\n\r\n");
  EXPECT_NE(keep.output.find("connection: keep-alive\r\n"), std::string::npos);
  EXPECT_EQ(keep.events.size(), 2u);
}

TEST(Http1Codec, Expect100ContinueIsSentOnRequest) {
  test::SimulatedTimeSource time;
  OutputQueue output;
  Recorder recorder;
  recorder.auto_respond = false;
  CodecLimits limits;
  ServerConnectionImpl codec(output, recorder, limits, time);
  Buffer in("POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
  codec.dispatch(in);
  recorder.encoder_->encode1xxHeaders(ResponseHeaders(100));
  EXPECT_EQ(drain(output), "HTTP/1.1 100 Continue\r\n\r\n");
  Buffer body("hi");
  codec.dispatch(body);
  EXPECT_EQ(recorder.events.back(), "body hi end");
}

TEST(Http1Codec, EarlyResponseDiscardsTheRestOfTheBody) {
  test::SimulatedTimeSource time;
  OutputQueue output;
  Recorder recorder;
  recorder.auto_respond = false;
  CodecLimits limits;
  ServerConnectionImpl codec(output, recorder, limits, time);
  Buffer in("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nabc");
  codec.dispatch(in);
  recorder.respond();
  Buffer rest("defGET /2 HTTP/1.1\r\nHost: x\r\n\r\n");
  codec.dispatch(rest);
  EXPECT_EQ(recorder.events.back(), "headers GET /2 HTTP/1.1 host=x end");
  EXPECT_FALSE(recorder.closed);
}

// --- limits ---------------------------------------------------------------------------------

TEST(Http1Codec, HeadersOverLimitGet431) {
  CodecLimits limits;
  limits.max_header_bytes = 1024;
  EXPECT_EQ(
      statusOf("GET / HTTP/1.1\r\nHost: x\r\nX: " + std::string(2000, 'a') + "\r\n\r\n", limits),
      431);
}

TEST(Http1Codec, TooManyHeadersGet431) {
  CodecLimits limits;
  limits.max_headers = 5;
  std::string req = "GET / HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 6; ++i) {
    req += "X-" + std::to_string(i) + ": v\r\n";
  }
  EXPECT_EQ(statusOf(req + "\r\n", limits), 431);
}

TEST(Http1Codec, LongTargetGets414) {
  CodecLimits limits;
  limits.max_uri_bytes = 100;
  EXPECT_EQ(statusOf("GET /" + std::string(200, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n", limits),
            414);
}

TEST(Http1Codec, BodyOverLimitGets413WithContentLength) {
  CodecLimits limits;
  limits.max_request_bytes = 10;
  EXPECT_EQ(statusOf("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n", limits), 413);
}

TEST(Http1Codec, BodyOverLimitGets413WhenChunked) {
  CodecLimits limits;
  limits.max_request_bytes = 10;
  EXPECT_EQ(statusOf("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "6\r\nabcdef\r\n6\r\nabcdef\r\n0\r\n\r\n",
                     limits),
            413);
  // A chunk that alone would pass the limit is refused as soon as its size line ends, not
  // once that many bytes have been uploaded.
  auto run = feedWhole("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "4\r\nabcd\r\n7\r\n",
                       limits);
  EXPECT_EQ(run.error_status, 413);
  run = feedWhole("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "4\r\nabcd\r\n6\r\n",
                  limits);
  EXPECT_EQ(run.error_status, 0) << "exactly the limit";
}

// Every byte value at every offset of a Host value: taken exactly when RFC 3986 allows it in
// a reg-name (unreserved, sub-delims), or it is the ':' before an (empty) port at the end.
TEST(Http1Codec, HostValueBytesAreCheckedExactly) {
  for (int c = 0; c < 256; ++c) {
    if (c == '\r' || c == '\n') {
      continue; // these end the line instead
    }
    const bool reg_name =
        std::isalnum(c) != 0 ||
        (c != 0 &&
         std::string_view("-._~!$&'()*+,;=").find(static_cast<char>(c)) != std::string_view::npos);
    for (size_t at = 0; at < 9; ++at) {
      const bool refused = !reg_name && !(c == ':' && at == 8);
      std::string host(9, 'h');
      host[at] = static_cast<char>(c);
      // Leading or trailing blanks are optional whitespace, trimmed before the check.
      const bool trimmed = (c == ' ' || c == '\t') && (at == 0 || at == 8);
      const int status = statusOf("GET / HTTP/1.1\r\nHost: " + host + "\r\n\r\n");
      EXPECT_EQ(status, refused && !trimmed ? 400 : 0) << "byte " << c << " at " << at;
    }
  }
}

TEST(Http1Codec, UnsupportedVersionGets505) {
  EXPECT_EQ(statusOf("GET / HTTP/2.0\r\nHost: x\r\n\r\n"), 505);
}

// --- request smuggling shapes ---------------------------------------------------------------

TEST(Http1Codec, RejectsContentLengthWithTransferEncoding) {
  EXPECT_EQ(statusOf("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            400);
}

TEST(Http1Codec, RejectsDuplicateContentLength) {
  EXPECT_EQ(
      statusOf("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"),
      400);
  EXPECT_EQ(statusOf("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\nabc"), 400);
}

TEST(Http1Codec, RejectsNonNumericContentLength) {
  for (const char* cl : {"abc", "-1", "+3", "0x3", "3 3", "1e3"}) {
    EXPECT_EQ(statusOf(std::string("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ") + cl +
                       "\r\n\r\nabc"),
              400)
        << cl;
  }
}

TEST(Http1Codec, RejectsTransferEncodingOtherThanChunkedLast) {
  EXPECT_EQ(statusOf("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"),
            400);
  EXPECT_EQ(
      statusOf("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"),
      501);
  EXPECT_EQ(statusOf("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            400);
  EXPECT_EQ(statusOf("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n"), 400);
}

TEST(Http1Codec, RejectsBadChunkSizes) {
  for (const char* size : {"0x5", "-5", "+5", "5_0", "g", "fffffffffffffffff", " 5"}) {
    EXPECT_EQ(
        statusOf(std::string("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n") +
                 size + "\r\nhello\r\n0\r\n\r\n"),
        400)
        << size;
  }
}

TEST(Http1Codec, RejectsBareLineEndingsInChunks) {
  EXPECT_EQ(statusOf("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "5\nhello\r\n0\r\n\r\n"),
            400);
  EXPECT_EQ(statusOf("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "5\rXhello\r\n0\r\n\r\n"),
            400);
  EXPECT_EQ(statusOf("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "5\r\nhelloXX0\r\n\r\n"),
            400);
}

TEST(Http1Codec, RejectsBareCrAndLfInHead) {
  EXPECT_EQ(statusOf("GET / HTTP/1.1\nHost: x\r\n\r\n"), 400);
  EXPECT_EQ(statusOf("GET / HTTP/1.1\r\nHost: x\n\r\n"), 400);
  EXPECT_EQ(statusOf("GET / HTTP/1.1\r\nHost: x\rX: y\r\n\r\n"), 400);
}

TEST(Http1Codec, RejectsObsFold) {
  EXPECT_EQ(statusOf("GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n"), 400);
  EXPECT_EQ(statusOf("GET / HTTP/1.1\r\n Host: x\r\n\r\n"), 400);
}

TEST(Http1Codec, RejectsInvalidHeaderNames) {
  EXPECT_EQ(statusOf("GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n"), 400);
  EXPECT_EQ(statusOf("GET / HTTP/1.1\r\nHost : x\r\n\r\n"), 400);
  EXPECT_EQ(statusOf("GET / HTTP/1.1\r\nHost: x\r\nX(y): v\r\n\r\n"), 400);
}

TEST(Http1Codec, RejectsNulBytes) {
  const char in_value[] = "GET / HTTP/1.1\r\nHost: x\r\nX: a\0b\r\n\r\n";
  EXPECT_EQ(statusOf(std::string(in_value, sizeof(in_value) - 1)), 400);
  const char in_target[] = "GET /\0 HTTP/1.1\r\nHost: x\r\n\r\n";
  EXPECT_EQ(statusOf(std::string(in_target, sizeof(in_target) - 1)), 400);
}

TEST(Http1Codec, RejectsFragmentOrSpaceInTarget) {
  EXPECT_EQ(statusOf("GET /a#b HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
  EXPECT_EQ(statusOf("GET /a b HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
  EXPECT_EQ(statusOf("GET /a\x7f HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
}

TEST(Http1Codec, RequiresExactlyOneHostOn11) {
  EXPECT_EQ(statusOf("GET / HTTP/1.1\r\n\r\n"), 400);
  EXPECT_EQ(statusOf("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
  EXPECT_EQ(statusOf("GET / HTTP/1.0\r\n\r\n"), 0);
}

TEST(Http1Codec, RejectsGarbage) {
  const char tls_hello[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n";
  EXPECT_EQ(statusOf(std::string(tls_hello, sizeof(tls_hello) - 1)), 400);
  EXPECT_EQ(statusOf("GET\r\n\r\n"), 400);
  EXPECT_EQ(statusOf("get / HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
}

TEST(Http1Codec, ErrorResponsesCloseTheConnection) {
  auto run = feedWhole("GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(run.error_status, 400);
  EXPECT_EQ(run.events.size(), 1u);
  EXPECT_NE(run.output.find("connection: close"), std::string::npos);
  EXPECT_TRUE(run.closed);
}

TEST(Http1Codec, MaxRequestsPerConnectionClosesAfterTheLast) {
  CodecLimits limits;
  limits.max_requests_per_connection = 2;
  auto run = feedWhole("GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n"
                       "GET /3 HTTP/1.1\r\nHost: x\r\n\r\n",
                       limits);
  EXPECT_EQ(run.events.size(), 2u);
  EXPECT_TRUE(run.closed);
  const size_t first_close = run.output.find("connection: close");
  EXPECT_NE(first_close, std::string::npos);
  EXPECT_GT(first_close, run.output.find("HTTP/1.1 200 OK", 10));
}

TEST(Http1Codec, DropsResponseHeadersWithNewlines) {
  test::SimulatedTimeSource time;
  OutputQueue output;
  Recorder recorder;
  recorder.auto_respond = false;
  CodecLimits limits;
  ServerConnectionImpl codec(output, recorder, limits, time);
  Buffer in("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  codec.dispatch(in);
  ResponseHeaders h(200);
  h.add("x-ok", "fine");
  h.add("x-evil", "a\r\nSet-Cookie: stolen=1");
  h.add("bad name", "v");
  recorder.encoder_->encodeHeaders(h, true);
  const std::string out = drain(output);
  EXPECT_NE(out.find("x-ok: fine\r\n"), std::string::npos);
  EXPECT_EQ(out.find("stolen"), std::string::npos);
  EXPECT_EQ(out.find("bad name"), std::string::npos);
}

// A legal HTAB makes the codec check every field one by one: good fields still go out in
// order, the bad one is still dropped.
TEST(Http1Codec, DropsBadResponseHeaderNextToATab) {
  test::SimulatedTimeSource time;
  OutputQueue output;
  Recorder recorder;
  recorder.auto_respond = false;
  CodecLimits limits;
  ServerConnectionImpl codec(output, recorder, limits, time);
  Buffer in("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  codec.dispatch(in);
  ResponseHeaders h(200);
  h.add("x-tab", "a\tb");
  h.add("x-nul", std::string_view("a\0b", 3));
  h.add("x-after", "ok");
  recorder.encoder_->encodeHeaders(h, true);
  const std::string out = drain(output);
  EXPECT_NE(out.find("x-tab: a\tb\r\nx-after: ok\r\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("x-nul"), std::string::npos);
  EXPECT_NE(out.find("content-length: 0\r\n"), std::string::npos);
}

TEST(Http1Codec, HeadScannerFindsHeadEnd) {
  HeadScanner s;
  auto r = s.scan("GET / HTTP/1.1\r\nHost: x\r\n\r\nrest", 1000, 100);
  EXPECT_EQ(r.kind, HeadScanner::Result::Kind::Complete);
  EXPECT_EQ(r.head_length, 27u);
}

// What a head the scanner accepts must be: CRLF line ends only, no NUL, no line folding,
// ended by an empty line after the request line. Checked byte by byte against every head
// the scanner calls complete, and the scanner must reject every head that breaks a rule,
// for random heads fed whole and split at every point (the scanner keeps its place).
TEST(Http1Codec, HeadScannerAgreesWithTheRulesWholeAndSplit) {
  enum class Verdict { NeedMore, Complete, Error };
  // The rules, one byte at a time, on a whole buffer.
  auto rules = [](std::string_view d, size_t& head_length) {
    size_t line_start = 0;
    bool seen = false;
    for (size_t i = 0; i < d.size(); ++i) {
      const char c = d[i];
      if (i == line_start && seen && (c == ' ' || c == '\t')) {
        return Verdict::Error;
      }
      if (c == '\0') {
        return Verdict::Error;
      }
      if (c == '\r' && i + 1 < d.size() && d[i + 1] != '\n') {
        return Verdict::Error;
      }
      if (c == '\n') {
        if (i == line_start || d[i - 1] != '\r') {
          return Verdict::Error;
        }
        if (i - 1 == line_start) { // an empty line
          if (seen) {
            head_length = i + 1;
            return Verdict::Complete;
          }
        } else {
          seen = true;
        }
        line_start = i + 1;
      }
    }
    return Verdict::NeedMore;
  };
  auto verdict = [](const HeadScanner::Result& r) {
    return r.kind == HeadScanner::Result::Kind::Complete ? Verdict::Complete
           : r.kind == HeadScanner::Result::Kind::Error  ? Verdict::Error
                                                         : Verdict::NeedMore;
  };
  const char alphabet[] = {'a', 'a', 'a', 'a', ':', ' ', '\t', '\r', '\n', '\r', '\n', '\0'};
  uint32_t x = 7;
  auto next = [&x] {
    x = x * 1103515245u + 12345u;
    return x >> 16;
  };
  for (int round = 0; round < 4000; ++round) {
    std::string head = round % 2 == 0 ? "GET / HTTP/1.1\r\n" : "";
    const size_t n = next() % 48;
    for (size_t i = 0; i < n; ++i) {
      head.push_back(alphabet[next() % sizeof(alphabet)]);
    }
    if (round % 3 == 0) {
      head += "\r\n\r\n";
    }
    size_t want_length = 0;
    const Verdict want = rules(head, want_length);
    HeadScanner whole;
    const auto r = whole.scan(head, 100000, 100000);
    ASSERT_EQ(verdict(r), want) << testing::PrintToString(head);
    if (want == Verdict::Complete) {
      ASSERT_EQ(r.head_length, want_length) << testing::PrintToString(head);
    }
    // The same bytes arriving in two reads: the first sees a prefix.
    for (size_t cut = 0; cut < head.size(); ++cut) {
      HeadScanner split;
      const std::string_view prefix = std::string_view(head).substr(0, cut);
      size_t prefix_length = 0;
      const Verdict early = rules(prefix, prefix_length);
      const auto first = split.scan(prefix, 100000, 100000);
      ASSERT_EQ(verdict(first), early) << cut << " " << testing::PrintToString(head);
      if (early != Verdict::NeedMore) {
        continue;
      }
      const auto second = split.scan(head, 100000, 100000);
      ASSERT_EQ(verdict(second), want) << cut << " " << testing::PrintToString(head);
      if (want == Verdict::Complete) {
        ASSERT_EQ(second.head_length, want_length);
      }
    }
  }
}

TEST(Http1Codec, IgnoresLeadingEmptyLines) {
  auto run = feedWhole("\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(run.error_status, 0);
  EXPECT_EQ(run.events.size(), 1u);
}

// A codec with a recorder that does not answer by itself, for tests that answer by hand.
struct Manual {
  Manual() : codec(output, recorder, limits, time) { recorder.auto_respond = false; }
  void feed(const std::string& bytes) {
    Buffer in(bytes);
    codec.dispatch(in);
    rest = in.toString();
  }
  ResponseEncoder& encoder() { return *recorder.encoder_; }
  test::SimulatedTimeSource time;
  OutputQueue output;
  Recorder recorder;
  CodecLimits limits;
  ServerConnectionImpl codec;
  std::string rest; // bytes the codec left (pipelined behind a request being answered)
};

void answer(ResponseEncoder& encoder, const std::string& body) {
  ResponseHeaders h(200);
  h.add("content-length", std::to_string(body.size()));
  encoder.encodeHeaders(h, false);
  Buffer b(body);
  encoder.encodeData(b, true);
}

// Recorded stream resets.
struct ResetRecorder : public StreamCallbacks {
  void onResetStream(StreamResetReason reason) override { resets.push_back(reason); }
  void onAboveWriteBufferHighWatermark() override {}
  void onBelowWriteBufferLowWatermark() override {}
  std::vector<StreamResetReason> resets;
};

// A FIN is the client leaving (as nginx and uvicorn take it): a request still being answered
// is reset at once, so the app stops working for nobody.
TEST(Http1Codec, HalfCloseWhileAnAnswerIsPendingIsTheClientLeaving) {
  Manual m;
  m.feed("GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /behind HTTP/1.1\r\nHost: x\r\n\r\n");
  ResetRecorder stream;
  m.encoder().setStreamCallbacks(&stream);
  m.codec.onRemoteHalfClose();
  ASSERT_EQ(stream.resets.size(), 1u);
  EXPECT_EQ(stream.resets[0], StreamResetReason::RemoteReset);
  EXPECT_TRUE(m.recorder.closed);
  EXPECT_EQ(m.recorder.events.size(), 1u); // nothing pipelined behind it is read
}

// Answers given before the FIN is read are all written (the connection flushes, then closes).
TEST(Http1Codec, HalfCloseAfterAnsweredPipelinedRequestsKeepsTheirAnswers) {
  test::SimulatedTimeSource time;
  OutputQueue output;
  Recorder recorder;
  CodecLimits limits;
  ServerConnectionImpl codec(output, recorder, limits, time);
  Buffer in("GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n"
            "GET /3 HTTP/1.1\r\nHost: x\r\n\r\n");
  codec.dispatch(in);
  codec.onRemoteHalfClose();
  EXPECT_EQ(recorder.events.size(), 3u);
  const std::string out = drain(output);
  size_t count = 0;
  for (size_t p = 0; (p = out.find("HTTP/1.1 200 OK", p)) != std::string::npos; ++p) {
    ++count;
  }
  EXPECT_EQ(count, 3u);
  EXPECT_TRUE(recorder.closed);
}

// RFC 9110 §8.6: the body the client gets is exactly the declared length, or the
// connection closes so the client can tell.
TEST(Http1Codec, ABodyLongerThanItsContentLengthIsCutAndCloses) {
  Manual m;
  m.feed("GET /1 HTTP/1.1\r\nHost: x\r\n\r\n");
  ResponseHeaders h(200);
  h.add("content-length", "3");
  m.encoder().encodeHeaders(h, false);
  Buffer b("abcHTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nEVIL");
  m.encoder().encodeData(b, false);
  Buffer more("more");
  m.encoder().encodeData(more, true);
  const std::string out = drain(m.output);
  EXPECT_EQ(out.substr(out.size() - 7), "\r\n\r\nabc");
  EXPECT_EQ(out.find("EVIL"), std::string::npos);
  EXPECT_TRUE(m.recorder.closed);
}

TEST(Http1Codec, ABodyShorterThanItsContentLengthCloses) {
  Manual m;
  m.feed("GET /1 HTTP/1.1\r\nHost: x\r\n\r\n");
  ResponseHeaders h(200);
  h.add("content-length", "10");
  m.encoder().encodeHeaders(h, false);
  Buffer b("abc");
  m.encoder().encodeData(b, true);
  EXPECT_TRUE(m.recorder.closed);
  // Declared, then no body at all.
  Manual none;
  none.feed("GET /1 HTTP/1.1\r\nHost: x\r\n\r\n");
  ResponseHeaders h2(200);
  h2.add("content-length", "5");
  none.encoder().encodeHeaders(h2, true);
  EXPECT_TRUE(none.recorder.closed);
  // Exactly the length, in pieces, from a file too: the connection stays.
  Manual exact;
  exact.feed("GET /1 HTTP/1.1\r\nHost: x\r\n\r\n");
  ResponseHeaders h3(200);
  h3.add("content-length", "5");
  exact.encoder().encodeHeaders(h3, false);
  Buffer p1("ab");
  exact.encoder().encodeData(p1, false);
  Buffer p2("cde");
  exact.encoder().encodeData(p2, true);
  EXPECT_FALSE(exact.recorder.closed);
  // HEAD and 304 declare a length without a body.
  Manual head;
  head.feed("HEAD /1 HTTP/1.1\r\nHost: x\r\n\r\n");
  ResponseHeaders h4(200);
  h4.add("content-length", "5");
  head.encoder().encodeHeaders(h4, true);
  EXPECT_FALSE(head.recorder.closed);
  EXPECT_NE(drain(head.output).find("content-length: 5\r\n"), std::string::npos);
}

TEST(Http1Codec, APipelinedRequestWaitsWhileEarlierAnswersAreUnwritten) {
  // A client that pipelines and never reads must not make the server queue answer after
  // answer: above the high watermark the next request is not taken until output drains.
  Manual m;
  m.feed("GET /1 HTTP/1.1\r\nHost: x\r\n\r\n");
  m.codec.onAboveWriteBufferHighWatermark(); // the client is not reading
  answer(m.encoder(), "one");
  const std::string second = "GET /2 HTTP/1.1\r\nHost: x\r\n\r\n";
  Buffer next(second);
  m.codec.dispatch(next);
  EXPECT_EQ(m.recorder.events.size(), 1u) << "request 2 waits";
  EXPECT_EQ(next.length(), second.size()) << "its bytes stay in the connection's buffer";
  EXPECT_GT(m.recorder.read_disabled, 0);
  m.codec.onBelowWriteBufferLowWatermark(); // written: reading resumes
  EXPECT_EQ(m.recorder.read_disabled, 0);
  m.codec.dispatch(next);
  ASSERT_EQ(m.recorder.events.size(), 2u);
  EXPECT_EQ(m.recorder.events[1].rfind("headers GET /2", 0), 0u) << m.recorder.events[1];
}

TEST(Http1Codec, ResetContentHasNoContentWhateverTheAppSends) {
  // RFC 9110 §15.3.6: a 205 has no content, and (unlike 204) says so with Content-Length: 0.
  Manual m;
  m.feed("POST /form HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
  ResponseHeaders h(205);
  h.add("content-length", "8");
  m.encoder().encodeHeaders(h, false);
  Buffer b("BODYBODY");
  m.encoder().encodeData(b, true);
  const std::string out = drain(m.output);
  EXPECT_NE(out.find("content-length: 0\r\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("content-length: 8"), std::string::npos) << out;
  EXPECT_EQ(out.find("BODY"), std::string::npos) << out;
  EXPECT_EQ(out.substr(out.size() - 4), "\r\n\r\n");
  EXPECT_FALSE(m.recorder.closed);
}

TEST(Http1Codec, RepeatedOrInvalidResponseContentLengths) {
  auto run = [](std::vector<std::string> values) {
    Manual m;
    m.feed("GET /1 HTTP/1.1\r\nHost: x\r\n\r\n");
    ResponseHeaders h(200);
    for (const auto& v : values) {
      h.add("content-length", v);
    }
    m.encoder().encodeHeaders(h, false);
    Buffer b("abc");
    m.encoder().encodeData(b, true);
    return std::make_pair(drain(m.output), m.recorder.closed);
  };
  // Copies of one value go once.
  auto [same, same_closed] = run({"3", "3"});
  EXPECT_EQ(same.find("content-length: 3\r\n"), same.rfind("content-length"));
  EXPECT_EQ(same.substr(same.size() - 3), "abc");
  EXPECT_FALSE(same_closed);
  // Disagreeing or malformed values all go; the body is chunked.
  for (const auto& bad :
       std::vector<std::vector<std::string>>{{"3", "5"}, {"3, 3"}, {"x"}, {"-1"}}) {
    auto [out, closed] = run(bad);
    EXPECT_EQ(out.find("content-length"), std::string::npos) << bad[0];
    EXPECT_NE(out.find("transfer-encoding: chunked\r\n"), std::string::npos) << bad[0];
    EXPECT_NE(out.find("3\r\nabc\r\n0\r\n\r\n"), std::string::npos) << bad[0];
    EXPECT_FALSE(closed);
  }
}

// A 1xx cannot be the final answer: the connection closes after it instead of carrying the
// next response as the answer to this request.
TEST(Http1Codec, AnInterimStatusAsTheAnswerCloses) {
  Manual m;
  m.feed("GET /1 HTTP/1.1\r\nHost: x\r\n\r\n");
  m.encoder().encodeHeaders(ResponseHeaders(103), true);
  EXPECT_NE(drain(m.output).find("connection: close\r\n"), std::string::npos);
  EXPECT_TRUE(m.recorder.closed);
}

// RFC 9110 §7.8: an Upgrade the server does not do is ignored, and always in HTTP/1.0.
TEST(Http1Codec, UpgradesOtherThanWebSocketAreOrdinaryRequests) {
  for (const char* input :
       {"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: foo\r\nConnection: Upgrade\r\n\r\n",
        "GET / HTTP/1.0\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        "GET / HTTP/1.0\r\nUpgrade: foo\r\nConnection: Upgrade, keep-alive\r\n\r\n"}) {
    auto run = feedWhole(input);
    ASSERT_EQ(run.events.size(), 1u) << input;
    EXPECT_EQ(run.events[0].substr(run.events[0].size() - 4), " end") << input;
    EXPECT_NE(run.output.find("200 OK"), std::string::npos) << input;
  }
  auto keep =
      feedWhole("GET / HTTP/1.0\r\nUpgrade: foo\r\nConnection: Upgrade, keep-alive\r\n\r\n");
  EXPECT_NE(keep.output.find("connection: keep-alive\r\n"), std::string::npos);
  EXPECT_FALSE(keep.closed);
}

// RFC 9112 §3.2: origin form, absolute form (its authority names the host) and asterisk
// form for OPTIONS; nothing else.
TEST(Http1Codec, RequestTargetForms) {
  auto run = feedWhole("GET http://other.example:8080/x?y=1 HTTP/1.1\r\nHost: a\r\n\r\n");
  ASSERT_EQ(run.events.size(), 1u);
  EXPECT_EQ(run.events[0], "headers GET /x?y=1 HTTP/1.1 host=other.example:8080 end");
  run = feedWhole("GET HTTPS://b.example HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(run.events[0], "headers GET / HTTP/1.1 host=b.example end");
  run = feedWhole("GET http://b.example?q HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(run.events[0], "headers GET /?q HTTP/1.1 host=b.example end");
  run = feedWhole("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(run.events[0], "headers OPTIONS * HTTP/1.1 host=a end");
  for (const char* bad :
       {"GET * HTTP/1.1\r\nHost: a\r\n\r\n", "GET a?b=://c HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET foo://bar/ HTTP/1.1\r\nHost: a\r\n\r\n", "GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET http://user@b.example/ HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET http://:80/ HTTP/1.1\r\nHost: a\r\n\r\n", "GET x HTTP/1.1\r\nHost: a\r\n\r\n"}) {
    EXPECT_EQ(statusOf(bad), 400) << bad;
  }
}

} // namespace
} // namespace pounce::http::http1
