#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "source/http/http1/parser.h"

namespace pounce::http::http1 {
namespace {

struct Parsed {
  ParseError error;
  RequestHead head;
};

Parsed parse(const std::string& head, CodecLimits limits = {}) {
  Parsed out;
  out.error = parseRequestHead(head, limits, out.head);
  return out;
}

int statusOf(const std::string& head, CodecLimits limits = {}) {
  return parse(head, limits).error.status;
}

std::string fieldsOf(const HeaderMap& map) {
  std::string out;
  for (const auto [name, value] : map) {
    out += std::string(name) + "=" + std::string(value) + ";";
  }
  return out;
}

TEST(RequestHeadParser, ParsesRequestLineAndFields) {
  const Parsed p = parse("GET /a/b?c=1 HTTP/1.1\r\nHost: example.com\r\nX-Mixed-Case: Some "
                         "Value\r\nAccept:*/*\r\n\r\n");
  ASSERT_EQ(p.error.status, 0) << p.error.details;
  const RequestHeaders& h = *p.head.headers;
  EXPECT_EQ(h.method(), "GET");
  EXPECT_EQ(h.path(), "/a/b?c=1");
  EXPECT_EQ(h.protocol(), "HTTP/1.1");
  EXPECT_EQ(p.head.protocol, Protocol::Http11);
  EXPECT_EQ(fieldsOf(h), "host=example.com;x-mixed-case=Some Value;accept=*/*;");
  EXPECT_EQ(p.head.field_count, 3u);
  EXPECT_TRUE(p.head.keep_alive);
  EXPECT_FALSE(p.head.chunked);
  EXPECT_EQ(p.head.content_length, 0u);
  EXPECT_FALSE(p.head.is_head);
}

TEST(RequestHeadParser, TrimsOptionalWhitespaceButKeepsInnerBlanks) {
  const Parsed p = parse("GET / HTTP/1.1\r\nHost: x\r\nA: \t v  w \t\r\nB:\r\nC:   \r\n\r\n");
  ASSERT_EQ(p.error.status, 0);
  EXPECT_EQ(fieldsOf(*p.head.headers), "host=x;a=v  w;b=;c=;");
}

TEST(RequestHeadParser, IgnoresEmptyLinesBeforeTheRequestLine) {
  const Parsed p = parse("\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_EQ(p.error.status, 0);
  EXPECT_EQ(p.head.headers->path(), "/");
}

TEST(RequestHeadParser, MethodsAreCapitalsDashesAndUnderscores) {
  for (const char* method :
       {"GET", "HEAD", "POST", "PROPFIND", "M-SEARCH", "VERSION_CONTROL", "QUERY", "PURGE"}) {
    const Parsed p = parse(std::string(method) + " / HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(p.error.status, 0) << method;
    EXPECT_EQ(p.head.headers->method(), method);
    EXPECT_EQ(p.head.is_head, std::string(method) == "HEAD");
  }
  for (const char* method : {"get", "Get", "G3T", "GET\t", "", " GET", "G.T"}) {
    EXPECT_EQ(statusOf(std::string(method) + " / HTTP/1.1\r\nHost: x\r\n\r\n"), 400)
        << testing::PrintToString(method);
  }
  EXPECT_EQ(statusOf(std::string(32, 'A') + " / HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
  EXPECT_EQ(statusOf(std::string(33, 'A') + " / HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
  EXPECT_EQ(statusOf("CONNECT example.com:443 HTTP/1.1\r\nHost: x\r\n\r\n"), 501);
}

// Every byte value at the start, middle and end of a target (16 bytes long, so the block
// scan sees it in several positions): refused exactly when it is no visible ASCII or '#'.
TEST(RequestHeadParser, TargetBytesAreCheckedExactly) {
  for (int c = 0; c < 256; ++c) {
    if (c == '\r' || c == '\n' || c == 0) {
      continue; // the scanner refuses these before the parser sees them
    }
    for (size_t at : {1u, 7u, 15u, 16u, 30u}) {
      std::string target = "/" + std::string(31, 'a');
      target[at] = static_cast<char>(c);
      const bool ok = c > 0x20 && c < 0x7f && c != '#';
      const int status = statusOf("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n");
      EXPECT_EQ(status, ok ? 0 : 400) << "byte " << c << " at " << at;
    }
  }
}

TEST(RequestHeadParser, TargetForms) {
  EXPECT_EQ(statusOf("GET http://example.com/a HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
  EXPECT_EQ(statusOf("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
  EXPECT_EQ(statusOf("GET example.com/a HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
  EXPECT_EQ(statusOf("GET  / HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
  EXPECT_EQ(statusOf("GET / HTTP/1.1 \r\nHost: x\r\n\r\n"), 400);
  EXPECT_EQ(statusOf("GET /\r\nHost: x\r\n\r\n"), 400);
  CodecLimits limits;
  limits.max_uri_bytes = 10;
  EXPECT_EQ(statusOf("GET /" + std::string(9, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n", limits), 0);
  EXPECT_EQ(statusOf("GET /" + std::string(10, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n", limits), 414);
}

TEST(RequestHeadParser, Versions) {
  EXPECT_EQ(parse("GET / HTTP/1.0\r\n\r\n").head.protocol, Protocol::Http10);
  EXPECT_EQ(parse("GET / HTTP/1.0\r\n\r\n").head.headers->protocol(), "HTTP/1.0");
  EXPECT_EQ(parse("GET / HTTP/1.9\r\nHost: x\r\n\r\n").head.protocol, Protocol::Http11);
  for (const char* v : {"HTTP/2.0", "HTTP/0.9", "HTTP/3.0"}) {
    EXPECT_EQ(statusOf(std::string("GET / ") + v + "\r\nHost: x\r\n\r\n"), 505) << v;
  }
  for (const char* v :
       {"http/1.1", "HTTP/11", "HTTP/1.", "HTTP/1.1.1", "HTTP/a.1", "HTTP", "HTTP/1,1", ""}) {
    EXPECT_EQ(statusOf(std::string("GET / ") + v + "\r\nHost: x\r\n\r\n"), 400) << v;
  }
}

// Every byte value in a field name: accepted exactly when it is an RFC 9110 tchar, and
// stored lowercase.
TEST(RequestHeadParser, FieldNameBytesAreCheckedExactly) {
  const std::string tchars = "!#$%&'*+-.^_`|~";
  for (int c = 0; c < 256; ++c) {
    if (c == '\r' || c == '\n' || c == 0 || c == ':') {
      continue;
    }
    const bool tchar =
        std::isalnum(c) != 0 || tchars.find(static_cast<char>(c)) != std::string::npos;
    std::string name = "x-ab";
    name[2] = static_cast<char>(c);
    const Parsed p = parse("GET / HTTP/1.1\r\nHost: x\r\n" + name + ": v\r\n\r\n");
    EXPECT_EQ(p.error.status, tchar ? 0 : 400) << "byte " << c;
    if (tchar) {
      const char lower = static_cast<char>(std::tolower(c));
      EXPECT_EQ(p.head.headers->nameAt(1), std::string("x-") + lower + "b");
    }
  }
  EXPECT_EQ(statusOf("GET / HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n"), 400);
  EXPECT_EQ(statusOf("GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n"), 400);
  EXPECT_EQ(statusOf("GET / HTTP/1.1\r\nHost : x\r\n\r\n"), 400);
}

// Every byte value at several offsets of a long value: refused exactly when it is a
// control byte other than HTAB, or DEL; bytes from 0x80 are obs-text and pass.
TEST(RequestHeadParser, FieldValueBytesAreCheckedExactly) {
  for (int c = 0; c < 256; ++c) {
    if (c == '\r' || c == '\n' || c == 0) {
      continue;
    }
    for (size_t at : {0u, 5u, 15u, 16u, 17u, 31u, 40u}) {
      std::string value(41, 'v');
      value[at] = static_cast<char>(c);
      const bool ok = !((c < 0x20 && c != '\t') || c == 0x7f);
      const Parsed p = parse("GET / HTTP/1.1\r\nHost: x\r\nX: " + value + "\r\n\r\n");
      ASSERT_EQ(p.error.status, ok ? 0 : 400) << "byte " << c << " at " << at;
      if (ok) {
        std::string want = value;
        while (!want.empty() && (want.back() == ' ' || want.back() == '\t')) {
          want.pop_back();
        }
        while (!want.empty() && (want.front() == ' ' || want.front() == '\t')) {
          want.erase(0, 1);
        }
        EXPECT_EQ(p.head.headers->valueAt(1), want);
      }
    }
  }
}

TEST(RequestHeadParser, KeepAliveFollowsTheVersionAndConnection) {
  struct Case {
    const char* version;
    const char* connection; // nullptr: no field
    bool keep_alive;
  };
  for (const Case& c : std::vector<Case>{{"1.1", nullptr, true},
                                         {"1.1", "close", false},
                                         {"1.1", "Keep-Alive, CLOSE", false},
                                         {"1.1", "keep-alive", true},
                                         {"1.1", "closed", true},
                                         {"1.0", nullptr, false},
                                         {"1.0", "keep-alive", true},
                                         {"1.0", "foo , Keep-Alive", true},
                                         {"1.0", "keep-alive, close", false}}) {
    std::string head = std::string("GET / HTTP/") + c.version + "\r\nHost: x\r\n";
    if (c.connection != nullptr) {
      head += std::string("Connection: ") + c.connection + "\r\n";
    }
    const Parsed p = parse(head + "\r\n");
    ASSERT_EQ(p.error.status, 0);
    EXPECT_EQ(p.head.keep_alive, c.keep_alive)
        << c.version << " " << (c.connection ? c.connection : "-");
  }
}

TEST(RequestHeadParser, UpgradeNeedsBothFieldsAndNoBody) {
  const std::string base = "GET / HTTP/1.1\r\nHost: x\r\n";
  EXPECT_TRUE(
      parse(base + "Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\r\n").head.upgrade);
  EXPECT_FALSE(parse(base + "Upgrade: websocket\r\n\r\n").head.upgrade);
  EXPECT_FALSE(parse(base + "Connection: upgrade\r\n\r\n").head.upgrade);
  EXPECT_FALSE(
      parse(base + "Upgrade: websocket\r\nConnection: upgrade\r\nContent-Length: 1\r\n\r\n")
          .head.upgrade);
}

TEST(RequestHeadParser, ExpectAndTe) {
  const std::string base = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n";
  EXPECT_TRUE(parse(base + "Expect: 100-Continue\r\n\r\n").head.expect_continue);
  EXPECT_EQ(statusOf(base + "Expect: something-else\r\n\r\n"), 417);
  EXPECT_FALSE(parse("POST / HTTP/1.0\r\nContent-Length: 1\r\nExpect: 100-continue\r\n\r\n")
                   .head.expect_continue);
  EXPECT_TRUE(parse(base + "TE: gzip, trailers\r\n\r\n").head.accepts_trailers);
  EXPECT_FALSE(parse(base + "TE: gzip\r\n\r\n").head.accepts_trailers);
}

TEST(RequestHeadParser, MessageFraming) {
  const std::string base = "POST / HTTP/1.1\r\nHost: x\r\n";
  EXPECT_EQ(parse(base + "Content-Length: 42\r\n\r\n").head.content_length, 42u);
  EXPECT_EQ(parse(base + "Content-Length: 0\r\n\r\n").head.content_length, 0u);
  // 1*DIGIT: leading zeros are digits too, however many (RFC 9110 8.6).
  EXPECT_EQ(parse(base + "Content-Length: 000000000000000000000007\r\n\r\n").head.content_length,
            7u);
  EXPECT_TRUE(parse(base + "Transfer-Encoding: chunked\r\n\r\n").head.chunked);
  EXPECT_TRUE(parse(base + "Transfer-Encoding: Chunked\r\n\r\n").head.chunked);
  for (const char* cl :
       {"", "abc", "-1", "+3", "0x3", "3 3", "1e3", "3, 3", "99999999999999999999"}) {
    EXPECT_EQ(statusOf(base + "Content-Length: " + cl + "\r\n\r\n"), 400) << cl;
  }
  EXPECT_EQ(statusOf(base + "Content-Length: 1\r\nContent-Length: 1\r\n\r\n"), 400);
  EXPECT_EQ(statusOf(base + "Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
  EXPECT_EQ(statusOf(base + "Transfer-Encoding: chunked, gzip\r\n\r\n"), 400);
  EXPECT_EQ(statusOf(base + "Transfer-Encoding: gzip, chunked\r\n\r\n"), 501);
  EXPECT_EQ(statusOf(base + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"),
            400);
  EXPECT_EQ(statusOf(base + "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"), 501);
  EXPECT_EQ(statusOf(base + "Transfer-Encoding: xchunked\r\n\r\n"), 400);
  EXPECT_EQ(statusOf("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
  CodecLimits limits;
  limits.max_request_bytes = 10;
  EXPECT_EQ(statusOf(base + "Content-Length: 10\r\n\r\n", limits), 0);
  EXPECT_EQ(statusOf(base + "Content-Length: 11\r\n\r\n", limits), 413);
}

TEST(RequestHeadParser, HostRules) {
  EXPECT_EQ(statusOf("GET / HTTP/1.1\r\n\r\n"), 400);
  EXPECT_EQ(statusOf("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(statusOf("GET / HTTP/1.0\r\n\r\n"), 0);
  EXPECT_EQ(statusOf("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), 400);
  EXPECT_EQ(statusOf("GET / HTTP/1.1\r\nHost: [::1]:8000\r\n\r\n"), 0);
  // One rule for the Host field and an absolute-form authority (RFC 9110 §4.2.4, §7.2).
  for (const char* bad :
       {"[zz", "[]", "[::1", "h:abc", "h:99999", "h:123456", "h<x>", "h\"", "h{}", "h|", "h^", "h`",
        "\xc3\xa9vil", "a%0", "a%zz", "u@h", "h#", "h\\x", ":80"}) {
    EXPECT_FALSE(isValidHost(bad)) << bad;
    EXPECT_EQ(statusOf(std::string("GET / HTTP/1.1\r\nHost: ") + bad + "\r\n\r\n"), 400) << bad;
    EXPECT_EQ(statusOf(std::string("GET http://") + bad + "/x HTTP/1.1\r\nHost: h\r\n\r\n"), 400)
        << bad;
  }
  for (const char* good :
       {"example.com", "EXAMPLE.com:8080", "h:", "h:65535", "10.0.0.1:80", "[::1]", "[fe80::1]:443",
        "a-b_c~d", "a,b", "h%41", "xn--bcher-kva.ch", "!$&'()*+;="}) {
    EXPECT_TRUE(isValidHost(good)) << good;
    EXPECT_EQ(statusOf(std::string("GET / HTTP/1.1\r\nHost: ") + good + "\r\n\r\n"), 0) << good;
    EXPECT_EQ(statusOf(std::string("GET http://") + good + "/x HTTP/1.1\r\nHost: h\r\n\r\n"), 0)
        << good;
  }
  EXPECT_TRUE(isValidHost("")) << "an empty Host (RFC 9110 §7.2)";
  EXPECT_EQ(statusOf("GET / HTTP/1.1\r\nHost:\r\n\r\n"), 0);
  EXPECT_EQ(statusOf("GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(statusOf("GET http://:80/x HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
}

TEST(RequestHeadParser, FieldCountLimit) {
  CodecLimits limits;
  limits.max_headers = 3;
  EXPECT_EQ(statusOf("GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\n\r\n", limits), 0);
  EXPECT_EQ(statusOf("GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", limits), 431);
}

// Random heads built from the pieces that matter, checked against a plain statement of the
// field-line rules written without the parser's block scans: the same fields, or a refusal
// exactly when a rule is broken.
TEST(RequestHeadParser, FieldLinesAgreeWithAPlainReading) {
  const std::vector<std::string> pieces = {
      "a",    "B",    "-",    "x-y",  " ", "\t", ":",  ":",
      "\x01", "\x7f", "\x80", "\xff", "(", "0",  "zz", std::string(17, 'q')};
  uint32_t x = 11;
  auto next = [&x] {
    x = x * 1103515245u + 12345u;
    return x >> 16;
  };
  for (int round = 0; round < 20000; ++round) {
    std::vector<std::string> lines;
    const size_t n = 1 + next() % 4;
    for (size_t i = 0; i < n; ++i) {
      std::string line;
      const size_t parts = next() % 10;
      for (size_t k = 0; k < parts; ++k) {
        line += pieces[next() % pieces.size()];
      }
      if (line.empty()) {
        line = "k:"; // an empty line would end the head (the scanner cuts it there)
      }
      lines.push_back(line);
    }
    // The plain reading.
    bool want_ok = true;
    std::string want;
    for (const std::string& line : lines) {
      const size_t colon = line.find(':');
      std::string name = line.substr(0, colon == std::string::npos ? line.size() : colon);
      bool ok = colon != std::string::npos && !name.empty();
      for (char& c : name) {
        const auto u = static_cast<unsigned char>(c);
        ok = ok &&
             (std::isalnum(u) != 0 || std::string("!#$%&'*+-.^_`|~").find(c) != std::string::npos);
        c = static_cast<char>(std::tolower(u));
      }
      std::string value = ok ? line.substr(colon + 1) : "";
      for (const char c : value) {
        const auto u = static_cast<unsigned char>(c);
        ok = ok && !((u < 0x20 && c != '\t') || u == 0x7f);
      }
      if (!ok) {
        want_ok = false;
        break;
      }
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
        value.erase(0, 1);
      }
      while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) {
        value.pop_back();
      }
      want += name + "=" + value + ";";
    }
    std::string head = "GET / HTTP/1.0\r\n";
    for (const std::string& line : lines) {
      head += line + "\r\n";
    }
    head += "\r\n";
    const Parsed p = parse(head);
    if (!want_ok) {
      ASSERT_EQ(p.error.status, 400) << testing::PrintToString(head);
      continue;
    }
    // A valid line may still name a field whose value breaks its own rules (Host,
    // Content-Length...); the pieces above cannot spell one.
    ASSERT_EQ(p.error.status, 0) << testing::PrintToString(head) << " " << p.error.details;
    EXPECT_EQ(fieldsOf(*p.head.headers), want) << testing::PrintToString(head);
  }
}

TEST(TrailerParser, ParsesFieldLinesAndCountsOnFromTheHead) {
  CodecLimits limits;
  limits.max_headers = 4;
  HeaderMap trailers;
  uint32_t count = 2;
  EXPECT_EQ(parseTrailers("X-Sum: 11\r\nGrpc-Status:0 \r\n", limits, count, trailers).status, 0);
  EXPECT_EQ(fieldsOf(trailers), "x-sum=11;grpc-status=0;");
  EXPECT_EQ(count, 4u);
  uint32_t more = 3;
  HeaderMap refused;
  EXPECT_EQ(parseTrailers("A: 1\r\nB: 2\r\n", limits, more, refused).status, 431);
  uint32_t none = 0;
  EXPECT_EQ(parseTrailers("Bad Name: 1\r\n", limits, none, refused).status, 400);
  EXPECT_EQ(parseTrailers("A: \x01\r\n", limits, none, refused).status, 400);
}

// Decodes `body` fed in pieces of `step` bytes (bytes a call does not consume are fed
// again with the next piece, as the codec's buffer does). Returns the data, or "error".
std::string decodeChunked(const std::string& body, size_t step, std::string* trailers = nullptr) {
  ChunkDecoder decoder;
  std::string pending;
  std::string data;
  size_t pos = 0;
  while (!decoder.done()) {
    if (pos < body.size()) {
      pending += body.substr(pos, step);
      pos += step;
    }
    bool progress = false;
    while (!pending.empty() && !decoder.done()) {
      std::string_view chunk;
      const int64_t used = decoder.decode(pending, chunk);
      if (used < 0) {
        return "error";
      }
      data.append(chunk.data(), chunk.size());
      pending.erase(0, static_cast<size_t>(used));
      progress = progress || used > 0;
      if (used == 0) {
        break;
      }
    }
    if (!progress && pos >= body.size()) {
      return "incomplete";
    }
  }
  if (trailers != nullptr) {
    *trailers = decoder.trailers();
  }
  if (pos < body.size()) {
    pending += body.substr(pos);
  }
  return data + (pending.empty() ? "" : "|rest=" + pending);
}

TEST(ChunkDecoder, GivesTheDataInEverySplit) {
  const std::string body = "5\r\nhello\r\n6;ext=\"a b\"\r\n world\r\n1a\r\n" +
                           std::string(26, 'z') + "\r\n0\r\nX-Sum: 11\r\nY: 2\r\n\r\nNEXT";
  for (size_t step = 1; step <= body.size(); ++step) {
    std::string trailers;
    EXPECT_EQ(decodeChunked(body, step, &trailers),
              "hello world" + std::string(26, 'z') + "|rest=NEXT")
        << step;
    EXPECT_EQ(trailers, "X-Sum: 11\r\nY: 2\r\n") << step;
  }
}

TEST(ChunkDecoder, RefusesMalformedFraming) {
  for (const char* body :
       {"0x5\r\nhello\r\n0\r\n\r\n", "-5\r\nhello\r\n0\r\n\r\n", "g\r\n\r\n",
        "fffffffffffffffff\r\n", " 5\r\nhello\r\n0\r\n\r\n", "5\nhello\r\n0\r\n\r\n",
        "5\rXhello\r\n0\r\n\r\n", "5\r\nhelloXX0\r\n\r\n", "0\r\n X: folded\r\n\r\n",
        "0\r\nX: a\nb\r\n\r\n", "5;\x01\r\nhello\r\n0\r\n\r\n"}) {
    EXPECT_EQ(decodeChunked(body, 1000), "error") << testing::PrintToString(body);
  }
  EXPECT_EQ(decodeChunked("5 ;a=b\r\nhello\r\n0\r\n\r\n", 1000), "hello");
}

TEST(ChunkDecoder, SizesMayHaveLeadingZerosButNotMoreThan15SignificantDigits) {
  // RFC 9112 §7.1: chunk-size = 1*HEXDIG; what is limited is the value.
  EXPECT_EQ(decodeChunked("0000000000000005\r\nhello\r\n0\r\n\r\n", 1000), "hello");
  EXPECT_EQ(decodeChunked(std::string(63, '0') + "5\r\nhello\r\n0\r\n\r\n", 1000), "hello");
  EXPECT_EQ(decodeChunked(std::string(64, '0') + "5\r\nhello\r\n0\r\n\r\n", 1000), "error");
  EXPECT_EQ(decodeChunked("00000000000000000\r\n\r\n", 1000), "");
  // 15 significant digits are a size (cut short here); 16 are not.
  ChunkDecoder d;
  std::string_view data;
  EXPECT_EQ(d.decode("0fffffffffffffff\r\nab", data), 20);
  EXPECT_EQ(data, "ab");
  EXPECT_EQ(d.chunkBytesAhead(), 0xfffffffffffffffu - 2);
  EXPECT_EQ(decodeChunked("1000000000000000\r\n", 1000), "error");
}

} // namespace
} // namespace pounce::http::http1
