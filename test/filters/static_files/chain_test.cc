// static_files in the chain of configs/static-site.yaml (metrics, compression, static_files,
// direct_response): what the benchmarked request costs in body copies.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "test/test_common/filter_harness.h"

namespace pounce::filters::static_files {
namespace {

using test::FilterHarness;

class StaticSiteChain : public testing::Test {
protected:
  static constexpr const char* kNoCache = "file_cache: {enabled: false}";

  void SetUp() override {
    std::string tmpl = testing::TempDir() + "/chain_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    page_.assign(5120, 'p');
    std::ofstream(root_ + "/page-5k.html", std::ios::binary) << page_;
  }
  void TearDown() override { ASSERT_EQ(std::system(("rm -rf '" + root_ + "'").c_str()), 0); }

  // `static_extra`: more static_files settings (the file cache is on unless they say).
  std::unique_ptr<FilterHarness> get(const std::string& path,
                                     std::vector<std::pair<std::string, std::string>> headers,
                                     const std::string& static_extra = kNoCache) {
    auto factories = FilterHarness::factoriesFromYaml(
        {{"pounce.filters.metrics", ""},
         {"pounce.filters.compression", ""},
         {"pounce.filters.static_files",
          "mounts: [{prefix: /, directory: '" + root_ + "'}]\n" + static_extra},
         {"pounce.filters.direct_response", "status: 404"}},
        server_);
    EXPECT_TRUE(factories.ok()) << factories.status();
    auto h = std::make_unique<FilterHarness>(std::move(*factories));
    h->sendHeaders(FilterHarness::request("GET", path, std::move(headers)), true);
    return h;
  }

  test::FakeServerContext server_;
  std::string root_;
  std::string page_;
};

TEST_F(StaticSiteChain, FiveKilobytePageGoesOutAsAFileRangeWithoutCopies) {
  // No Accept-Encoding (as load generators send it): compression stays out of the body
  // path, so the codec gets the file range and the kernel sends it (sendfile).
  auto h = get("/page-5k.html", {});
  EXPECT_EQ(h->response.status, 200);
  EXPECT_EQ(h->response.file_bytes, 5120u);
  EXPECT_EQ(h->response.body, page_);
  EXPECT_EQ(h->response.headers.getOr("vary"), "accept-encoding");
}

TEST_F(StaticSiteChain, WithTheFileCacheOnAsByDefaultThePageComesFromMemory) {
  auto h = get("/page-5k.html", {}, "");
  EXPECT_EQ(h->response.status, 200);
  EXPECT_EQ(h->response.file_bytes, 0u);
  EXPECT_EQ(h->response.body, page_);
  h = get("/page-5k.html", {{"range", "bytes=0-1023"}}, "");
  EXPECT_EQ(h->response.status, 206);
  EXPECT_EQ(h->response.file_bytes, 0u);
  EXPECT_EQ(h->response.body, page_.substr(0, 1024));
}

TEST_F(StaticSiteChain, CompressingClientsGetBytesInstead) {
  auto h = get("/page-5k.html", {{"accept-encoding", "gzip"}});
  EXPECT_EQ(h->response.status, 200);
  EXPECT_EQ(h->response.headers.getOr("content-encoding"), "gzip");
  EXPECT_EQ(h->response.file_bytes, 0u);
  EXPECT_LT(h->response.body.size(), 200u);
}

TEST_F(StaticSiteChain, RangesStayFileRangesEvenForCompressingClients) {
  auto h = get("/page-5k.html", {{"accept-encoding", "gzip"}, {"range", "bytes=0-1023"}});
  EXPECT_EQ(h->response.status, 206);
  EXPECT_EQ(h->response.file_bytes, 1024u);
  EXPECT_FALSE(h->response.headers.has("content-encoding"));
}

} // namespace
} // namespace pounce::filters::static_files
