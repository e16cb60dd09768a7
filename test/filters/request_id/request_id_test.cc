#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "source/filters/request_id/request_id.h"
#include "test/test_common/filter_harness.h"

namespace pounce::filters::request_id {
namespace {

using test::FilterHarness;
using Headers = std::vector<std::pair<std::string, std::string>>;

bool looksLikeUuid4Hex(std::string_view id) {
  if (id.size() != 32) {
    return false;
  }
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return id[12] == '4' && std::string_view("89ab").find(id[16]) != std::string_view::npos;
}

// Hands out 0x00, 0x01, 0x02, ... so ids are predictable.
class CountingRandom : public RandomSource {
public:
  void fill(uint8_t* out, size_t n) override {
    for (size_t i = 0; i < n; ++i) {
      out[i] = next_++;
    }
  }

private:
  uint8_t next_{0};
};

// Terminal that answers 429 itself, to show local replies of later filters get the id.
class RejectFilter : public http::StreamFilter {
public:
  http::FilterStatus decodeHeaders(http::RequestHeaders&, bool) override {
    decoder_callbacks_->sendLocalReply(429, "no\n");
    return http::FilterStatus::StopIteration;
  }
};

class RequestIdTest : public testing::Test {
protected:
  void configure(const std::string& yaml) {
    auto f = FilterHarness::factoriesFromYaml(
        {{"pounce.filters.request_id", yaml}, {"pounce.filters.direct_response", ""}}, server_);
    ASSERT_TRUE(f.ok()) << f.status();
    factories_ = *f;
  }

  std::unique_ptr<FilterHarness> run(const Headers& headers, bool peer_trusted = false) {
    auto h = std::make_unique<FilterHarness>(factories_);
    h->info().peer_trusted = peer_trusted;
    h->sendHeaders(FilterHarness::request("GET", "/", headers), true);
    return h;
  }

  test::FakeServerContext server_;
  std::vector<http::FilterFactoryCb> factories_;
};

TEST_F(RequestIdTest, GeneratesUuid4HexForEveryRequest) {
  configure("");
  auto h = run({});
  const std::string id(h->info().request_id.view());
  EXPECT_TRUE(looksLikeUuid4Hex(id)) << id;
  // Later filters and the app see it; so does the client.
  EXPECT_EQ(h->info().request_headers->getOr("x-request-id"), id);
  EXPECT_EQ(h->response.headers.getOr("x-request-id"), id);
  EXPECT_EQ(h->response.status, 200);
}

TEST_F(RequestIdTest, IdsAreUnique) {
  configure("");
  std::set<std::string> seen;
  for (int i = 0; i < 2000; ++i) {
    auto h = run({});
    EXPECT_TRUE(seen.insert(std::string(h->info().request_id.view())).second);
  }
}

TEST(Uuid4Hex, SetsVersionAndVariantBits) {
  CountingRandom random;
  // Bytes 00..0f: version nibble forced to 4 in byte 6, variant 10xx in byte 8.
  EXPECT_EQ(uuid4Hex(random), "000102030405460788090a0b0c0d0e0f");
  EXPECT_EQ(uuid4Hex(random), "101112131415461798191a1b1c1d1e1f");
}

TEST(Uuid4Hex, EveryByteValueBecomesItsTwoDigits) {
  // 16 ids of CountingRandom cover bytes 0x00-0xff at every position of an id; the digits
  // must be what printf writes (apart from the version and variant bits).
  CountingRandom random;
  for (int id = 0; id < 16; ++id) {
    char text[kUuidHexSize + 1] = {};
    uuid4Hex(random, text);
    for (int i = 0; i < 16; ++i) {
      int byte = id * 16 + i;
      if (i == 6) {
        byte = (byte & 0x0f) | 0x40;
      } else if (i == 8) {
        byte = (byte & 0x3f) | 0x80;
      }
      char expected[3];
      std::snprintf(expected, sizeof(expected), "%02x", byte);
      EXPECT_EQ(std::string_view(text + 2 * i, 2), expected) << "id " << id << " byte " << i;
    }
  }
}

TEST(RequestId, HoldsUpToItsMaximumInline) {
  http::RequestId id;
  EXPECT_TRUE(id.empty());
  id = "abc";
  EXPECT_EQ(id, "abc");
  const std::string longest(http::RequestId::kMaxSize, 'x');
  id = longest;
  EXPECT_EQ(id, longest);
  const http::RequestId copy = id; // copies only what is held
  EXPECT_EQ(copy, longest);
  id = longest + "yz"; // longer ids keep their first kMaxSize bytes
  EXPECT_EQ(id.size(), http::RequestId::kMaxSize);
  EXPECT_EQ(id, longest);
  id = "";
  EXPECT_TRUE(id.empty());
}

TEST(SystemRandom, OneSystemCallServesManyIds) {
  auto& random = SystemRandom::instance();
  const uint64_t before = SystemRandom::threadRefills();
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) {
    ids.insert(uuid4Hex(random));
  }
  EXPECT_EQ(ids.size(), 1000u);
  // 16000 bytes from 4096-byte blocks.
  EXPECT_LE(SystemRandom::threadRefills() - before, 4u);
  EXPECT_GE(SystemRandom::threadRefills() - before, 3u);
}

TEST(SystemRandom, ForkedChildDoesNotReuseTheParentsBufferedBytes) {
  auto& random = SystemRandom::instance();
  uuid4Hex(random); // the buffer now holds unused bytes
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const std::string id = uuid4Hex(random);
    const ssize_t n = ::write(fds[1], id.data(), id.size());
    ::_exit(n == 32 ? 0 : 1);
  }
  ::close(fds[1]);
  const std::string parent_id = uuid4Hex(random);
  char buf[32];
  ASSERT_EQ(::read(fds[0], buf, sizeof(buf)), 32);
  ::close(fds[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_NE(std::string(buf, 32), parent_id);
}

TEST_F(RequestIdTest, IncomingIdFromUntrustedPeerIsReplaced) {
  configure("");
  auto h = run({{"x-request-id", "client-chosen"}});
  EXPECT_NE(h->info().request_id, "client-chosen");
  EXPECT_TRUE(looksLikeUuid4Hex(h->info().request_id));
  EXPECT_EQ(h->info().request_headers->getOr("x-request-id"), h->info().request_id);
  EXPECT_EQ(h->info().request_headers->count("x-request-id"), 1u);
}

TEST_F(RequestIdTest, IncomingIdFromTrustedPeerIsKept) {
  configure("");
  auto h = run({{"x-request-id", "edge-7f3a"}}, /*peer_trusted=*/true);
  EXPECT_EQ(h->info().request_id, "edge-7f3a");
  EXPECT_EQ(h->response.headers.getOr("x-request-id"), "edge-7f3a");
}

TEST_F(RequestIdTest, TrustIncomingAlwaysAndNever) {
  configure("trust_incoming: always");
  EXPECT_EQ(run({{"x-request-id", "abc"}})->info().request_id, "abc");
  configure("trust_incoming: never");
  EXPECT_NE(run({{"x-request-id", "abc"}}, true)->info().request_id, "abc");
}

TEST_F(RequestIdTest, OnlySaneIncomingIdsAreKept) {
  configure("");
  const std::string max(200, 'a');
  EXPECT_EQ(run({{"x-request-id", max}}, true)->info().request_id, max);
  for (const std::string& bad :
       {std::string(201, 'a'), std::string("has space"), std::string("tab\there"),
        std::string("caf\xc3\xa9"), std::string("")}) {
    auto h = run({{"x-request-id", bad}}, true);
    EXPECT_TRUE(looksLikeUuid4Hex(h->info().request_id)) << bad;
  }
  // Two ids: neither is believed.
  auto h = run({{"x-request-id", "a"}, {"x-request-id", "b"}}, true);
  EXPECT_TRUE(looksLikeUuid4Hex(h->info().request_id));
  EXPECT_EQ(h->info().request_headers->count("x-request-id"), 1u);
}

TEST_F(RequestIdTest, UnderscoreSpellingsOfTheHeaderNeverReachTheApp) {
  // Django, WSGI and CGI read X_Request_Id as X-Request-Id (HTTP_X_REQUEST_ID): left in,
  // a client's value would sit beside the id in use.
  configure("");
  auto h = run({{"x-request-id", "evil1"}, {"x_request_id", "evil2"}, {"x_request-id", "evil3"}});
  EXPECT_TRUE(looksLikeUuid4Hex(h->info().request_id));
  const auto& headers = *h->info().request_headers;
  EXPECT_FALSE(headers.has("x_request_id"));
  EXPECT_FALSE(headers.has("x_request-id"));
  EXPECT_EQ(headers.count("x-request-id"), 1u);
  // From a trusted peer too: its id is kept, a client's underscore spelling is not.
  h = run({{"x-request-id", "edge-1"}, {"x_request_id", "evil"}}, /*peer_trusted=*/true);
  EXPECT_EQ(h->info().request_id, "edge-1");
  EXPECT_FALSE(h->info().request_headers->has("x_request_id"));
  // The configured name's spellings, not only the default's; other names are left alone.
  configure("header_name: X-Correlation-Id");
  h = run({{"x_correlation_id", "evil"}, {"x_other", "kept"}});
  EXPECT_FALSE(h->info().request_headers->has("x_correlation_id"));
  EXPECT_EQ(h->info().request_headers->getOr("x_other"), "kept");
  // A configured name with '_': its dashed spelling is the other one.
  configure("header_name: x_trace_id");
  h = run({{"x-trace-id", "evil"}, {"x_trace-id", "evil2"}});
  EXPECT_FALSE(h->info().request_headers->has("x-trace-id"));
  EXPECT_FALSE(h->info().request_headers->has("x_trace-id"));
  EXPECT_TRUE(looksLikeUuid4Hex(h->info().request_headers->getOr("x_trace_id")));
}

TEST(RequestIdConfig, ANameThatReadsAsAReservedFieldIsRefused) {
  // The filter removes every spelling that reads as its name: `content_type` would take
  // the client's Content-Type away.
  test::FakeServerContext server;
  for (const char* name : {"content_type", "Content_Length", "transfer_encoding", "x-request-id"}) {
    auto f = FilterHarness::factoriesFromYaml(
        {{"pounce.filters.request_id", std::string("header_name: ") + name}}, server);
    EXPECT_EQ(f.ok(), std::string(name) == "x-request-id") << name;
  }
}

TEST(SaneRequestId, Boundaries) {
  EXPECT_TRUE(isSaneRequestId("!"));
  EXPECT_TRUE(isSaneRequestId("~"));
  EXPECT_FALSE(isSaneRequestId(std::string(1, '\x7f')));
  EXPECT_FALSE(isSaneRequestId(" "));
}

TEST_F(RequestIdTest, HeaderNameIsConfigurable) {
  configure("header_name: X-Correlation-ID");
  auto h = run({{"x-correlation-id", "corr-1"}}, true);
  EXPECT_EQ(h->info().request_id, "corr-1");
  EXPECT_EQ(h->response.headers.getOr("x-correlation-id"), "corr-1");
  EXPECT_FALSE(h->response.headers.has("x-request-id"));
}

TEST_F(RequestIdTest, ResponseHeaderCanBeTurnedOff) {
  configure("response_header: false");
  auto h = run({});
  EXPECT_FALSE(h->info().request_id.empty());
  EXPECT_FALSE(h->response.headers.has("x-request-id"));
}

TEST_F(RequestIdTest, LocalRepliesOfLaterFiltersCarryTheId) {
  auto f = FilterHarness::factoriesFromYaml({{"pounce.filters.request_id", ""}}, server_);
  ASSERT_TRUE(f.ok());
  std::vector<http::FilterFactoryCb> chain = *f;
  chain.push_back([] { return std::make_unique<RejectFilter>(); });
  FilterHarness h(chain);
  h.sendHeaders(FilterHarness::request("GET", "/"), true);
  EXPECT_EQ(h.response.status, 429);
  EXPECT_EQ(h.response.headers.getOr("x-request-id"), h.info().request_id);
}

TEST_F(RequestIdTest, InjectedRandomnessGivesPredictableIds) {
  CountingRandom random;
  auto config = std::make_shared<Config>();
  config->random = &random;
  auto f = FilterHarness::factoriesFromYaml({{"pounce.filters.direct_response", ""}}, server_);
  ASSERT_TRUE(f.ok());
  std::vector<http::FilterFactoryCb> chain{
      [config] { return std::make_unique<RequestIdFilter>(*config); }, (*f)[0]};
  FilterHarness h(chain);
  h.sendHeaders(FilterHarness::request("GET", "/"), true);
  EXPECT_EQ(h.info().request_id, "000102030405460788090a0b0c0d0e0f");
}

TEST(RequestIdConfig, RejectsBadHeaderName) {
  test::FakeServerContext server;
  auto f = FilterHarness::factoriesFromYaml(
      {{"pounce.filters.request_id", "header_name: 'x request id'"}}, server);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("header_name"), std::string::npos);
  for (const char* reserved : {"Host", "content-length", "Transfer-Encoding", "connection"}) {
    auto r = FilterHarness::factoriesFromYaml(
        {{"pounce.filters.request_id", std::string("header_name: ") + reserved}}, server);
    ASSERT_FALSE(r.ok()) << reserved;
    EXPECT_NE(r.status().message().find("choose another"), std::string::npos) << reserved;
  }
}

} // namespace
} // namespace pounce::filters::request_id
