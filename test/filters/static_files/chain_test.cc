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

TEST_F(StaticSiteChain, A206CarriesTheVaryOfThe200ItIsPartOf) {
  // RFC 9110 §15.3.7. One range: the 206 is text/html itself; several: multipart/byteranges,
  // whose parts are of text/html. Either way another Accept-Encoding gets another 200.
  for (const char* range : {"bytes=0-9", "bytes=0-9,20-29"}) {
    auto h = get("/page-5k.html", {{"accept-encoding", "gzip"}, {"range", range}},
                 "precompressed: false");
    EXPECT_EQ(h->response.status, 206) << range;
    EXPECT_EQ(h->response.headers.getOr("vary"), "accept-encoding") << range;
    EXPECT_FALSE(h->response.headers.has("content-encoding")) << range;
  }
  // Parts of a type the filter does not compress: no Vary.
  std::ofstream(root_ + "/blob.bin", std::ios::binary) << page_;
  auto h = get("/blob.bin", {{"accept-encoding", "gzip"}, {"range", "bytes=0-9,20-29"}},
               "precompressed: false");
  EXPECT_EQ(h->response.status, 206);
  EXPECT_FALSE(h->response.headers.has("vary"));
}

TEST_F(StaticSiteChain, A304CarriesTheETagAndVaryOfThe200ItStandsFor) {
  // RFC 9110 §15.4.5. The 200 a gzip client gets is compressed: W/"x" and Vary.
  auto full = get("/page-5k.html", {{"accept-encoding", "gzip"}}, "precompressed: false");
  ASSERT_EQ(full->response.status, 200);
  const std::string weak(full->response.headers.getOr("etag"));
  ASSERT_EQ(weak.rfind("W/\"", 0), 0u) << weak;
  const std::string strong = weak.substr(2);
  const std::string modified(full->response.headers.getOr("last-modified"));

  // By date or by "*", the client's copy is not named: the 304 names the 200 it would get.
  for (const auto& condition : std::vector<std::pair<std::string, std::string>>{
           {"if-modified-since", modified}, {"if-none-match", "*"}, {"if-none-match", weak}}) {
    auto h = get("/page-5k.html", {{"accept-encoding", "gzip"}, condition}, "precompressed: false");
    EXPECT_EQ(h->response.status, 304) << condition.first;
    EXPECT_EQ(h->response.headers.getOr("etag"), weak) << condition.first;
    EXPECT_EQ(h->response.headers.getOr("vary"), "accept-encoding") << condition.first;
  }
  // A client that names the identity copy, or takes no coding, gets the strong tag; the
  // Vary stays (another Accept-Encoding would get another body).
  for (const auto& headers : std::vector<std::vector<std::pair<std::string, std::string>>>{
           {{"accept-encoding", "gzip"}, {"if-none-match", strong}},
           {{"if-modified-since", modified}}}) {
    auto h = get("/page-5k.html", headers, "precompressed: false");
    EXPECT_EQ(h->response.status, 304);
    EXPECT_EQ(h->response.headers.getOr("etag"), strong);
    EXPECT_EQ(h->response.headers.getOr("vary"), "accept-encoding");
  }
}

TEST_F(StaticSiteChain, ManyRangesOfAPrecompressedSiblingGetTheWholeSibling) {
  const std::string gz = "not really gzip, but a sibling all the same";
  std::ofstream(root_ + "/page-5k.html.gz", std::ios::binary) << gz;
  auto h = get("/page-5k.html", {{"accept-encoding", "gzip"}, {"range", "bytes=0-3,10-12"}});
  EXPECT_EQ(h->response.status, 200);
  EXPECT_EQ(h->response.headers.getOr("content-encoding"), "gzip");
  EXPECT_EQ(h->response.body, gz);
  // One range of it is fine: the coding applies to the range's whole body.
  h = get("/page-5k.html", {{"accept-encoding", "gzip"}, {"range", "bytes=0-3"}});
  EXPECT_EQ(h->response.status, 206);
  EXPECT_EQ(h->response.body, gz.substr(0, 4));
}

} // namespace
} // namespace pounce::filters::static_files
