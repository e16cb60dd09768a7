#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "source/filters/static_files/file_open.h"
#include "source/filters/static_files/http_date.h"
#include "test/test_common/filter_harness.h"

namespace pounce::filters::static_files {
namespace {

using test::FilterHarness;
using Headers = std::vector<std::pair<std::string, std::string>>;

void writeFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary);
  out << content;
}

void setMtime(const std::string& path, time_t seconds) {
  timespec times[2] = {{seconds, 0}, {seconds, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW), 0) << path;
}

// The terminal after static_files: records that a request got past it.
class Terminal : public http::StreamFilter {
public:
  explicit Terminal(int& reached) : reached_(reached) {}
  http::FilterStatus decodeHeaders(http::RequestHeaders&, bool) override {
    ++reached_;
    decoder_callbacks_->sendLocalReply(418, "app\n");
    return http::FilterStatus::StopIteration;
  }

private:
  int& reached_;
};

// A site in a temporary directory:
//   root/            index.html style.css data.json big.txt app.js(.gz .br .zst) old.js(.gz)
//                    sub/index.html  empty/  .secret  .well-known/acme  fifo
//                    link_in -> style.css   abs_in -> <root>/style.css
//                    link_out -> ../outside.txt   dir_out -> ../outdir
//   outside.txt  outdir/x.txt
//
// Every test runs with openat2 and with the component walk, each with the file cache off,
// as it is by default (every request checks its file with a stat) and trusting entries for
// an hour (`cached()` for the last two): the cache must not change any answer.
enum class CacheMode { Off, Default, Trusted };

class StaticFilesTest : public testing::TestWithParam<std::tuple<bool, CacheMode>> {
protected:
  bool cached() const { return std::get<1>(GetParam()) != CacheMode::Off; }
  std::string cacheConfig() const {
    switch (std::get<1>(GetParam())) {
    case CacheMode::Off:
      return "\nfile_cache: {enabled: false}\n";
    case CacheMode::Default:
      return "";
    case CacheMode::Trusted:
      return "\nfile_cache: {validity: 3600s}\n";
    }
    return "";
  }

  void SetUp() override {
    setUseOpenat2ForTest(std::get<0>(GetParam()));
    std::string tmpl = testing::TempDir() + "/static_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    base_ = tmpl;
    root_ = base_ + "/root";
    ASSERT_EQ(::mkdir(root_.c_str(), 0755), 0);
    ASSERT_EQ(::mkdir((root_ + "/sub").c_str(), 0755), 0);
    ASSERT_EQ(::mkdir((root_ + "/empty").c_str(), 0755), 0);
    ASSERT_EQ(::mkdir((root_ + "/.well-known").c_str(), 0755), 0);
    ASSERT_EQ(::mkdir((base_ + "/outdir").c_str(), 0755), 0);
    writeFile(root_ + "/index.html", "<h1>home</h1>\n");
    writeFile(root_ + "/style.css", "body { color: red; }\n");
    writeFile(root_ + "/data.json", "{\"a\": 1}\n");
    writeFile(root_ + "/sub/index.html", "<h1>sub</h1>\n");
    writeFile(root_ + "/.secret", "password\n");
    writeFile(root_ + "/.well-known/acme", "token\n");
    writeFile(root_ + "/blob.unknownext", "???");
    writeFile(root_ + "/UPPER.CSS", "p{}");
    writeFile(root_ + "/zero.txt", "");
    big_.reserve(300000);
    for (int i = 0; big_.size() < 300000; ++i) {
      big_ += "line " + std::to_string(i) + " of a larger text file\n";
    }
    writeFile(root_ + "/big.txt", big_);
    writeFile(root_ + "/app.js", "console.log('plain');\n");
    writeFile(root_ + "/app.js.gz", "GZIP-BYTES");
    writeFile(root_ + "/app.js.br", "BROTLI-BYTES");
    writeFile(root_ + "/app.js.zst", "ZSTD-BYTES");
    writeFile(root_ + "/old.js", "new content\n");
    writeFile(root_ + "/old.js.gz", "STALE");
    setMtime(root_ + "/old.js", 2000000000);
    setMtime(root_ + "/old.js.gz", 1000000000);
    writeFile(base_ + "/outside.txt", "outside\n");
    writeFile(base_ + "/outdir/x.txt", "x\n");
    ASSERT_EQ(::symlink("style.css", (root_ + "/link_in").c_str()), 0);
    ASSERT_EQ(::symlink((root_ + "/style.css").c_str(), (root_ + "/abs_in").c_str()), 0);
    ASSERT_EQ(::symlink("../outside.txt", (root_ + "/link_out").c_str()), 0);
    ASSERT_EQ(::symlink("../outdir", (root_ + "/dir_out").c_str()), 0);
    ASSERT_EQ(::mkfifo((root_ + "/fifo").c_str(), 0644), 0);
  }

  void TearDown() override {
    setUseOpenat2ForTest(true);
    std::string cmd = "rm -rf '" + base_ + "'";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
  }

  std::unique_ptr<FilterHarness> harness(const std::string& extra = "",
                                         const std::string& mounts = "") {
    const std::string yaml =
        (mounts.empty() ? "mounts: [{prefix: /static, directory: '" + root_ + "'}]\n" : mounts) +
        extra + cacheConfig();
    auto factories =
        FilterHarness::factoriesFromYaml({{"pounce.filters.static_files", yaml}}, server_);
    EXPECT_TRUE(factories.ok()) << factories.status();
    factories->push_back([this]() { return std::make_unique<Terminal>(reached_); });
    auto h = std::make_unique<FilterHarness>(std::move(*factories));
    // The files are stamped by the real clock; Last-Modified is never later than the
    // stream's time of day, so that is the real one too.
    h->time.setSystemTime(std::chrono::system_clock::now());
    return h;
  }

  std::unique_ptr<FilterHarness> get(const std::string& path, Headers headers = {},
                                     const std::string& extra = "",
                                     const std::string& method = "GET") {
    auto h = harness(extra);
    h->sendHeaders(FilterHarness::request(method, path, std::move(headers)), true);
    return h;
  }

  test::FakeServerContext server_;
  std::string base_;
  std::string root_;
  std::string big_;
  int reached_{0};
};

std::string paramName(const testing::TestParamInfo<std::tuple<bool, CacheMode>>& info) {
  std::string name = std::get<0>(info.param) ? "openat2" : "walk";
  switch (std::get<1>(info.param)) {
  case CacheMode::Off:
    return name + "_nocache";
  case CacheMode::Default:
    return name;
  case CacheMode::Trusted:
    return name + "_trusted";
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(Openat2AndCache, StaticFilesTest,
                         testing::Combine(testing::Bool(),
                                          testing::Values(CacheMode::Off, CacheMode::Default,
                                                          CacheMode::Trusted)),
                         paramName);

TEST_P(StaticFilesTest, ServesAFileWithSendfileAndAllHeaders) {
  auto h = get("/static/style.css");
  const auto& r = h->response;
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "body { color: red; }\n");
  if (cached()) {
    EXPECT_EQ(r.file_bytes, 0u) << "the cache's bytes go out as they are";
  } else {
    EXPECT_EQ(r.file_bytes, r.body.size()) << "the body goes out as a file range (sendfile)";
  }
  EXPECT_EQ(r.headers.getOr("content-type"), "text/css; charset=utf-8");
  EXPECT_EQ(r.headers.getOr("content-length"), "21");
  EXPECT_EQ(r.headers.getOr("cache-control"), "public, max-age=3600");
  EXPECT_EQ(r.headers.getOr("accept-ranges"), "bytes");
  EXPECT_EQ(r.headers.getOr("vary"), "accept-encoding");
  const std::string etag(r.headers.getOr("etag"));
  ASSERT_GE(etag.size(), 2u);
  EXPECT_EQ(etag.front(), '"') << "a strong ETag";
  EXPECT_EQ(etag.back(), '"');
  struct stat st;
  ASSERT_EQ(::stat((root_ + "/style.css").c_str(), &st), 0);
  char date[64];
  std::tm tm;
  gmtime_r(&st.st_mtime, &tm);
  strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  EXPECT_EQ(r.headers.getOr("last-modified"), date);
  EXPECT_FALSE(r.headers.has("content-encoding"));
  EXPECT_EQ(reached_, 0);
}

TEST_P(StaticFilesTest, LargeFileWithoutSendfileGoesThroughTheBoundedReadLoop) {
  auto h = harness();
  h->encoder.can_send_file = false; // e.g. a TLS connection
  h->sendHeaders(FilterHarness::request("GET", "/static/big.txt"), true);
  EXPECT_EQ(h->response.status, 200);
  EXPECT_EQ(h->response.file_bytes, 0u);
  EXPECT_EQ(h->response.body.size(), big_.size());
  EXPECT_TRUE(h->response.body == big_);
  EXPECT_TRUE(h->response.complete);
}

TEST_P(StaticFilesTest, ReadLoopWaitsForTheClientToDrain) {
  auto h = harness();
  h->encoder.can_send_file = false;
  h->encoder.callbacks()->onAboveWriteBufferHighWatermark();
  h->sendHeaders(FilterHarness::request("GET", "/static/big.txt"), true);
  EXPECT_EQ(h->response.status, 200);
  EXPECT_TRUE(h->response.body.empty());
  h->encoder.callbacks()->onBelowWriteBufferLowWatermark();
  EXPECT_TRUE(h->response.body == big_);
  EXPECT_TRUE(h->response.complete);
}

TEST_P(StaticFilesTest, HeadSendsHeadersOnly) {
  auto h = get("/static/data.json", {}, "", "HEAD");
  EXPECT_EQ(h->response.status, 200);
  EXPECT_EQ(h->response.headers.getOr("content-type"), "application/json");
  EXPECT_EQ(h->response.headers.getOr("content-length"), "9");
  EXPECT_TRUE(h->response.body.empty());
  EXPECT_TRUE(h->response.complete);
}

TEST_P(StaticFilesTest, EmptyFile) {
  auto h = get("/static/zero.txt");
  EXPECT_EQ(h->response.status, 200);
  EXPECT_EQ(h->response.headers.getOr("content-length"), "0");
  EXPECT_TRUE(h->response.complete);
}

TEST_P(StaticFilesTest, DirectoriesServeTheirIndexAfterARedirect) {
  auto h = get("/static/");
  EXPECT_EQ(h->response.status, 200);
  EXPECT_EQ(h->response.body, "<h1>home</h1>\n");
  EXPECT_EQ(h->response.headers.getOr("content-type"), "text/html; charset=utf-8");
  h = get("/static/sub/");
  EXPECT_EQ(h->response.body, "<h1>sub</h1>\n");
  h = get("/static");
  EXPECT_EQ(h->response.status, 301);
  EXPECT_EQ(h->response.headers.getOr("location"), "/static/");
  h = get("/static/sub?x=1&y=2");
  EXPECT_EQ(h->response.status, 301);
  EXPECT_EQ(h->response.headers.getOr("location"), "/static/sub/?x=1&y=2");
  // A directory without an index is a miss.
  h = get("/static/empty/");
  EXPECT_EQ(h->response.status, 418);
  // No index file configured: directories are misses.
  h = get("/static/sub/", {}, "index_file: ''");
  EXPECT_EQ(h->response.status, 418);
  h = get("/static/sub/", {}, "index_file: missing.html");
  EXPECT_EQ(h->response.status, 418);
}

TEST_P(StaticFilesTest, RedirectLocationIsEncodedAndStaysOnThisSite) {
  ASSERT_EQ(::mkdir((root_ + "/a b").c_str(), 0755), 0);
  writeFile(root_ + "/a b/index.html", "x");
  auto h = get("/static/a%20b");
  EXPECT_EQ(h->response.status, 301);
  EXPECT_EQ(h->response.headers.getOr("location"), "/static/a%20b/");
  // "//evil.example" must not become a protocol-relative Location.
  ASSERT_EQ(::mkdir((root_ + "/evil.example").c_str(), 0755), 0);
  writeFile(root_ + "/evil.example/index.html", "x");
  auto h2 = harness("", "mounts: [{prefix: /, directory: '" + root_ + "'}]\n");
  h2->sendHeaders(FilterHarness::request("GET", "//evil.example"), true);
  EXPECT_EQ(h2->response.status, 301);
  EXPECT_EQ(h2->response.headers.getOr("location"), "/evil.example/");
}

TEST_P(StaticFilesTest, MissesContinueToTheNextFilter) {
  auto h = get("/static/nope.css");
  EXPECT_EQ(h->response.status, 418);
  EXPECT_EQ(reached_, 1);
  h = get("/api/users"); // outside every mount
  EXPECT_EQ(h->response.status, 418);
  h = get("/staticfoo"); // prefixes match whole segments
  EXPECT_EQ(h->response.status, 418);
  h = get("/static/style.css/"); // a file named like a directory
  EXPECT_EQ(h->response.status, 418);
  EXPECT_EQ(reached_, 4);
  // The mount is matched on the decoded path: an escaped prefix is the same mount, and an
  // escape that decodes to no mount goes on.
  h = get("/%73tatic/style.css");
  EXPECT_EQ(h->response.status, 200);
  h = get("/st%61tic%2Fstyle.css");
  EXPECT_EQ(h->response.status, 404) << "an escaped slash under the mount is refused";
  h = get("/%6fther");
  EXPECT_EQ(h->response.status, 418);
  EXPECT_EQ(reached_, 5);
}

TEST_P(StaticFilesTest, WithoutFallthroughMissesUnderAMountGet404) {
  auto h = get("/static/nope.css", {}, "fallthrough: false");
  EXPECT_EQ(h->response.status, 404);
  h = get("/elsewhere", {}, "fallthrough: false");
  EXPECT_EQ(h->response.status, 418) << "requests outside the mounts still go on";
}

TEST_P(StaticFilesTest, TraversalAttemptsGet404AndNeverReachTheApp) {
  for (const char* path :
       {"/static/../outside.txt", "/static/%2e%2e/outside.txt", "/static/%2E%2E/outside.txt",
        "/static/sub/../../outside.txt", "/static/..%2foutside.txt", "/static/sub%2f..%2f..%2f",
        "/static/..\\outside.txt", "/static/%5c..%5coutside.txt", "/static/style.css%00.txt",
        "/static/bad%zzescape", "/static/.."}) {
    reached_ = 0;
    auto h = get(path);
    EXPECT_EQ(h->response.status, 404) << path;
    EXPECT_EQ(reached_, 0) << path;
    EXPECT_EQ(h->response.body.find("outside"), std::string::npos) << path;
  }
  auto h = harness();
  h->sendHeaders(FilterHarness::request("GET", std::string("/static/style.css\0x", 19)), true);
  EXPECT_EQ(h->response.status, 404);
}

TEST_P(StaticFilesTest, DotfilesAreHiddenExceptWellKnown) {
  auto h = get("/static/.secret");
  EXPECT_EQ(h->response.status, 418);
  h = get("/static/.secret", {}, "fallthrough: false");
  EXPECT_EQ(h->response.status, 404);
  h = get("/static/.well-known/acme");
  EXPECT_EQ(h->response.status, 200);
  EXPECT_EQ(h->response.body, "token\n");
  h = get("/static/.secret", {}, "serve_dotfiles: true");
  EXPECT_EQ(h->response.status, 200);
  EXPECT_EQ(h->response.body, "password\n");
}

TEST_P(StaticFilesTest, SymlinksAreRefusedByDefault) {
  for (const char* path :
       {"/static/link_in", "/static/abs_in", "/static/link_out", "/static/dir_out/x.txt"}) {
    reached_ = 0;
    auto h = get(path);
    EXPECT_EQ(h->response.status, 404) << path;
    EXPECT_EQ(reached_, 0) << path;
  }
}

TEST_P(StaticFilesTest, FollowedSymlinksMustStayInsideTheRoot) {
  auto h = get("/static/link_in", {}, "follow_symlinks: true");
  EXPECT_EQ(h->response.status, 200);
  EXPECT_EQ(h->response.body, "body { color: red; }\n");
  h = get("/static/abs_in", {}, "follow_symlinks: true");
  EXPECT_EQ(h->response.status, 200) << "an absolute link that lands inside the root";
  EXPECT_EQ(h->response.body, "body { color: red; }\n");
  h = get("/static/link_out", {}, "follow_symlinks: true");
  EXPECT_EQ(h->response.status, 404);
  h = get("/static/dir_out/x.txt", {}, "follow_symlinks: true");
  EXPECT_EQ(h->response.status, 404);
}

TEST_P(StaticFilesTest, FifosAreNotServedAndDoNotBlock) {
  const auto start = std::chrono::steady_clock::now();
  auto h = get("/static/fifo");
  EXPECT_EQ(h->response.status, 418);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

TEST_P(StaticFilesTest, OtherMethodsOnAHitGet405) {
  auto h = get("/static/style.css", {}, "", "POST");
  EXPECT_EQ(h->response.status, 405);
  EXPECT_EQ(h->response.headers.getOr("allow"), "GET, HEAD");
  EXPECT_EQ(reached_, 0);
  h = get("/static/nope", {}, "", "POST");
  EXPECT_EQ(h->response.status, 418) << "a miss goes on whatever the method";
}

TEST_P(StaticFilesTest, LongestPrefixWins) {
  const std::string mounts = "mounts: [{prefix: /, directory: '" + base_ +
                             "'}, {prefix: /static/sub/, directory: '" + root_ + "'}]\n";
  auto h = harness("", mounts);
  h->sendHeaders(FilterHarness::request("GET", "/outside.txt"), true);
  EXPECT_EQ(h->response.body, "outside\n");
  h = harness("", mounts);
  h->sendHeaders(FilterHarness::request("GET", "/static/sub/style.css"), true);
  EXPECT_EQ(h->response.body, "body { color: red; }\n");
}

TEST_P(StaticFilesTest, ContentTypes) {
  EXPECT_EQ(get("/static/blob.unknownext")->response.headers.getOr("content-type"),
            "application/octet-stream");
  EXPECT_EQ(get("/static/UPPER.CSS")->response.headers.getOr("content-type"),
            "text/css; charset=utf-8");
  const std::string extra =
      "content_types: [{extension: unknownext, content_type: text/x-custom}]\n"
      "default_content_type: application/x-unknown\n";
  EXPECT_EQ(get("/static/blob.unknownext", {}, extra)->response.headers.getOr("content-type"),
            "text/x-custom");
  EXPECT_EQ(get("/static/zero.txt", {}, extra)->response.headers.getOr("content-type"),
            "text/plain; charset=utf-8");
  EXPECT_EQ(get("/static/.well-known/acme", {}, extra)->response.headers.getOr("content-type"),
            "application/x-unknown");
}

TEST_P(StaticFilesTest, CacheControlFromConfig) {
  auto h = get("/static/style.css", {}, "cache_control: 'no-cache'");
  EXPECT_EQ(h->response.headers.getOr("cache-control"), "no-cache");
  h = get("/static/style.css", {}, "cache_control: ''");
  EXPECT_FALSE(h->response.headers.has("cache-control"));
}

TEST_P(StaticFilesTest, IfNoneMatchGives304) {
  const std::string etag(get("/static/style.css")->response.headers.getOr("etag"));
  for (const std::string& value :
       {etag, "W/" + etag, "\"other\", " + etag, std::string("*"), "\"a,b\"," + etag}) {
    auto h = get("/static/style.css", {{"if-none-match", value}});
    EXPECT_EQ(h->response.status, 304) << value;
    EXPECT_TRUE(h->response.body.empty());
    EXPECT_TRUE(h->response.complete);
    EXPECT_EQ(h->response.headers.getOr("etag"), etag);
    EXPECT_TRUE(h->response.headers.has("last-modified"));
    EXPECT_TRUE(h->response.headers.has("cache-control"));
    EXPECT_EQ(h->response.file_bytes, 0u);
  }
  for (const std::string& value :
       {std::string("\"other\""), std::string("garbage"), etag.substr(0, etag.size() - 1)}) {
    EXPECT_EQ(get("/static/style.css", {{"if-none-match", value}})->response.status, 200) << value;
  }
}

// RFC 9110 §13.1.1, §13.1.4: a client that must not act on another version.
TEST_P(StaticFilesTest, IfMatchAndIfUnmodifiedSinceGive412) {
  const std::string etag(get("/static/style.css")->response.headers.getOr("etag"));
  for (const std::string& value : {etag, "\"other\", " + etag, std::string("*")}) {
    EXPECT_EQ(get("/static/style.css", {{"if-match", value}})->response.status, 200) << value;
  }
  for (const std::string& value : {std::string("\"other\""), "W/" + etag, std::string("junk")}) {
    auto h = get("/static/style.css", {{"if-match", value}});
    EXPECT_EQ(h->response.status, 412) << value; // (a weak tag never matches strongly)
    EXPECT_EQ(h->response.headers.getOr("etag"), etag);
    EXPECT_EQ(reached_, 0);
  }
  setMtime(root_ + "/style.css", 1700000000); // Tue, 14 Nov 2023 22:13:20 GMT
  EXPECT_EQ(get("/static/style.css", {{"if-unmodified-since", "Tue, 14 Nov 2023 22:13:20 GMT"}})
                ->response.status,
            200);
  EXPECT_EQ(get("/static/style.css", {{"if-unmodified-since", "Tue, 14 Nov 2023 22:13:19 GMT"}})
                ->response.status,
            412);
  EXPECT_EQ(get("/static/style.css", {{"if-unmodified-since", "not a date"}})->response.status,
            200);
  // If-Match wins over If-Unmodified-Since, and is checked before If-None-Match.
  const std::string now_etag(get("/static/style.css")->response.headers.getOr("etag"));
  EXPECT_EQ(get("/static/style.css",
                {{"if-match", now_etag}, {"if-unmodified-since", "Tue, 14 Nov 2023 22:13:19 GMT"}})
                ->response.status,
            200);
  EXPECT_EQ(get("/static/style.css", {{"if-match", "\"other\""}, {"if-none-match", now_etag}})
                ->response.status,
            412);
}

TEST_P(StaticFilesTest, IfModifiedSince) {
  setMtime(root_ + "/style.css", 1700000000); // Tue, 14 Nov 2023 22:13:20 GMT
  EXPECT_EQ(get("/static/style.css", {{"if-modified-since", "Tue, 14 Nov 2023 22:13:20 GMT"}})
                ->response.status,
            304);
  EXPECT_EQ(get("/static/style.css", {{"if-modified-since", "Wed, 15 Nov 2023 00:00:00 GMT"}})
                ->response.status,
            304);
  EXPECT_EQ(get("/static/style.css", {{"if-modified-since", "Tue, 14 Nov 2023 22:13:19 GMT"}})
                ->response.status,
            200);
  EXPECT_EQ(get("/static/style.css", {{"if-modified-since", "not a date"}})->response.status, 200);
  // If-None-Match takes precedence over If-Modified-Since.
  EXPECT_EQ(get("/static/style.css", {{"if-none-match", "\"other\""},
                                      {"if-modified-since", "Wed, 15 Nov 2023 00:00:00 GMT"}})
                ->response.status,
            200);
}

// `cp -p`, `rsync -t`, `touch -d`: new bytes of the same size under an old mtime still get
// a new ETag (it holds the change time, which nothing can set back).
TEST_P(StaticFilesTest, TheETagChangesWithTheBytesEvenUnderTheSameSizeAndMtime) {
  const std::string file = root_ + "/same.txt";
  writeFile(file, "AAAA");
  setMtime(file, 1700000000);
  auto first = get("/static/same.txt");
  const std::string etag(first->response.headers.getOr("etag"));
  const std::string modified(first->response.headers.getOr("last-modified"));
  std::this_thread::sleep_for(std::chrono::milliseconds(20)); // a later change time
  writeFile(file, "BBBB");
  setMtime(file, 1700000000);
  auto second = get("/static/same.txt", {{"if-none-match", etag}});
  EXPECT_EQ(second->response.status, 200);
  EXPECT_EQ(second->response.body, "BBBB");
  EXPECT_NE(second->response.headers.getOr("etag"), etag);
  EXPECT_EQ(second->response.headers.getOr("last-modified"), modified);
}

// RFC 9110 §8.8.2.1: Last-Modified is never in the future; a file stamped ahead of the
// clock gets now, so a later If-Modified-Since of that future date cannot hide a change.
TEST_P(StaticFilesTest, AFileStampedInTheFutureIsLastModifiedNow) {
  const std::string file = root_ + "/future.txt";
  writeFile(file, "soon");
  const time_t ahead = ::time(nullptr) + 86400;
  setMtime(file, ahead);
  auto h = get("/static/future.txt");
  time_t modified = 0;
  ASSERT_TRUE(parseHttpDate(h->response.headers.getOr("last-modified"), modified));
  // (The clock the server reads, not time(2): its coarse clock can lag a second behind.)
  const time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  EXPECT_LE(modified, now);
  EXPECT_GE(modified, now - 60);
  char future[kHttpDateLength];
  formatHttpDate(ahead, future);
  EXPECT_NE(h->response.headers.getOr("last-modified"), std::string(future, kHttpDateLength));
}

TEST_P(StaticFilesTest, SingleRangeGives206) {
  auto h = get("/static/big.txt", {{"range", "bytes=100-199"}});
  EXPECT_EQ(h->response.status, 206);
  EXPECT_EQ(h->response.body, big_.substr(100, 100));
  EXPECT_EQ(h->response.file_bytes, 100u);
  EXPECT_EQ(h->response.headers.getOr("content-range"),
            "bytes 100-199/" + std::to_string(big_.size()));
  EXPECT_EQ(h->response.headers.getOr("content-length"), "100");
  h = get("/static/big.txt", {{"range", "bytes=-10"}});
  EXPECT_EQ(h->response.body, big_.substr(big_.size() - 10));
  h = get("/static/big.txt", {{"range", "bytes=0-"}});
  EXPECT_EQ(h->response.status, 206);
  EXPECT_TRUE(h->response.body == big_);
}

TEST_P(StaticFilesTest, UnsatisfiableRangeGives416) {
  auto h = get("/static/style.css", {{"range", "bytes=1000-2000"}});
  EXPECT_EQ(h->response.status, 416);
  EXPECT_EQ(h->response.headers.getOr("content-range"), "bytes */21");
  h = get("/static/zero.txt", {{"range", "bytes=0-"}});
  EXPECT_EQ(h->response.status, 416);
  EXPECT_EQ(h->response.headers.getOr("content-range"), "bytes */0");
}

TEST_P(StaticFilesTest, InvalidOrIgnoredRangesServeTheWholeFile) {
  for (const char* range : {"bytes=5-1", "lines=1-2", "bytes=abc"}) {
    auto h = get("/static/style.css", {{"range", range}});
    EXPECT_EQ(h->response.status, 200) << range;
    EXPECT_EQ(h->response.body.size(), 21u);
  }
  // Range is only for GET.
  auto h = get("/static/style.css", {{"range", "bytes=0-1"}}, "", "HEAD");
  EXPECT_EQ(h->response.status, 200);
  // More ranges than max_ranges.
  h = get("/static/big.txt", {{"range", "bytes=0-0,10-10,20-20"}}, "max_ranges: 2");
  EXPECT_EQ(h->response.status, 200);
}

TEST_P(StaticFilesTest, IfRangeDecidesBetweenPartAndWhole) {
  setMtime(root_ + "/style.css", 1700000000); // Tue, 14 Nov 2023 22:13:20 GMT
  const auto full = get("/static/style.css");
  const std::string etag(full->response.headers.getOr("etag"));
  const std::string modified(full->response.headers.getOr("last-modified"));
  auto h = get("/static/style.css", {{"range", "bytes=0-3"}, {"if-range", etag}});
  EXPECT_EQ(h->response.status, 206);
  EXPECT_EQ(h->response.body, "body");
  h = get("/static/style.css", {{"range", "bytes=0-3"}, {"if-range", modified}});
  EXPECT_EQ(h->response.status, 206);
  h = get("/static/style.css", {{"range", "bytes=0-3"}, {"if-range", "\"old\""}});
  EXPECT_EQ(h->response.status, 200);
  EXPECT_EQ(h->response.body.size(), 21u);
  h = get("/static/style.css", {{"range", "bytes=0-3"}, {"if-range", "W/" + etag}});
  EXPECT_EQ(h->response.status, 200) << "weak validators never match If-Range";
  h = get("/static/style.css",
          {{"range", "bytes=0-3"}, {"if-range", "Thu, 01 Jan 1970 00:00:00 GMT"}});
  EXPECT_EQ(h->response.status, 200);
}

// RFC 9110 §13.1.5, §8.8.2.2: a date is a strong validator only once its second is over; a
// file modified in the current second may change again under the same date, so a range
// asked for with that date gets the whole file.
TEST_P(StaticFilesTest, IfRangeWithADateOfTheCurrentSecondSendsTheWholeFile) {
  const std::string file = root_ + "/fresh.txt";
  writeFile(file, "OLD-CONTENT-0123456789\n");
  // Stamped ahead of the clock: Last-Modified is now, the second that is not over yet.
  setMtime(file, ::time(nullptr) + 86400);
  const auto full = get("/static/fresh.txt");
  const std::string modified(full->response.headers.getOr("last-modified"));
  auto h = get("/static/fresh.txt", {{"range", "bytes=10-"}, {"if-range", modified}});
  EXPECT_EQ(h->response.status, 200);
  EXPECT_EQ(h->response.body, "OLD-CONTENT-0123456789\n");
  // The same file with a date of the past: the part.
  setMtime(file, 1700000000);
  const auto later = get("/static/fresh.txt");
  h = get("/static/fresh.txt",
          {{"range", "bytes=10-"},
           {"if-range", std::string(later->response.headers.getOr("last-modified"))}});
  EXPECT_EQ(h->response.status, 206);
  EXPECT_EQ(h->response.body, "T-0123456789\n");
}

// Splits a multipart/byteranges body into (headers, data) parts.
std::vector<std::pair<std::string, std::string>> parseMultipart(const std::string& body,
                                                                const std::string& boundary) {
  std::vector<std::pair<std::string, std::string>> parts;
  const std::string delimiter = "\r\n--" + boundary;
  size_t pos = body.find(delimiter);
  while (pos != std::string::npos) {
    pos += delimiter.size();
    if (body.compare(pos, 4, "--\r\n") == 0) {
      EXPECT_EQ(pos + 4, body.size()) << "nothing after the closing delimiter";
      break;
    }
    EXPECT_EQ(body.compare(pos, 2, "\r\n"), 0);
    const size_t head_end = body.find("\r\n\r\n", pos);
    const std::string head = body.substr(pos + 2, head_end - pos - 2);
    const size_t next = body.find(delimiter, head_end + 4);
    parts.emplace_back(head, body.substr(head_end + 4, next - head_end - 4));
    pos = next;
  }
  return parts;
}

TEST_P(StaticFilesTest, MultipleRangesGiveMultipartByteranges) {
  auto h = get("/static/big.txt", {{"range", "bytes=0-9, 200000-200099, -5"}});
  EXPECT_EQ(h->response.status, 206);
  const std::string type(h->response.headers.getOr("content-type"));
  const std::string prefix = "multipart/byteranges; boundary=";
  ASSERT_EQ(type.substr(0, prefix.size()), prefix);
  const std::string boundary = type.substr(prefix.size());
  EXPECT_EQ(h->response.headers.getOr("content-length"), std::to_string(h->response.body.size()));
  const auto parts = parseMultipart(h->response.body, boundary);
  ASSERT_EQ(parts.size(), 3u);
  const std::string size = std::to_string(big_.size());
  EXPECT_EQ(parts[0].first,
            "content-type: text/plain; charset=utf-8\r\ncontent-range: bytes 0-9/" + size);
  EXPECT_EQ(parts[0].second, big_.substr(0, 10));
  EXPECT_EQ(parts[1].second, big_.substr(200000, 100));
  EXPECT_EQ(parts[2].first, "content-type: text/plain; charset=utf-8\r\ncontent-range: bytes " +
                                std::to_string(big_.size() - 5) + "-" +
                                std::to_string(big_.size() - 1) + "/" + size);
  EXPECT_EQ(parts[2].second, big_.substr(big_.size() - 5));
  EXPECT_TRUE(h->response.complete);
}

TEST_P(StaticFilesTest, MultipartFollowsTheDownstreamWatermarks) {
  auto h = harness();
  h->encoder.callbacks()->onAboveWriteBufferHighWatermark();
  h->sendHeaders(
      FilterHarness::request("GET", "/static/big.txt", {{"range", "bytes=0-99999,150000-299999"}}),
      true);
  EXPECT_EQ(h->response.status, 206);
  EXPECT_TRUE(h->response.body.empty()) << "nothing read while the client is behind";
  h->encoder.callbacks()->onBelowWriteBufferLowWatermark();
  EXPECT_TRUE(h->response.complete);
  const std::string type(h->response.headers.getOr("content-type"));
  const auto parts = parseMultipart(h->response.body, type.substr(type.find('=') + 1));
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_TRUE(parts[0].second == big_.substr(0, 100000));
  EXPECT_TRUE(parts[1].second == big_.substr(150000, 150000));
}

TEST_P(StaticFilesTest, PrecompressedSiblingsFollowAcceptEncoding) {
  struct Case {
    std::string accept;
    std::string body;
    std::string encoding;
  };
  for (const Case& c : std::vector<Case>{
           {"gzip", "GZIP-BYTES", "gzip"},
           {"br;q=1, gzip;q=0.5", "BROTLI-BYTES", "br"},
           {"gzip, br, zstd", "ZSTD-BYTES", "zstd"}, // equal q: server preference
           {"zstd;q=0, *", "BROTLI-BYTES", "br"},
           {"gzip;q=0.5, identity", "console.log('plain');\n", ""},
           {"deflate", "console.log('plain');\n", ""},
           {"*;q=0", "console.log('plain');\n", ""},
       }) {
    auto h = get("/static/app.js", {{"accept-encoding", c.accept}});
    EXPECT_EQ(h->response.status, 200) << c.accept;
    EXPECT_EQ(h->response.body, c.body) << c.accept;
    EXPECT_EQ(h->response.headers.getOr("content-encoding"), c.encoding) << c.accept;
    EXPECT_EQ(h->response.headers.getOr("content-type"), "text/javascript; charset=utf-8");
    EXPECT_EQ(h->response.headers.getOr("vary"), "accept-encoding");
    EXPECT_EQ(h->response.headers.getOr("content-length"), std::to_string(c.body.size()));
  }
  const std::string plain_etag(get("/static/app.js")->response.headers.getOr("etag"));
  const std::string gzip_etag(
      get("/static/app.js", {{"accept-encoding", "gzip"}})->response.headers.getOr("etag"));
  EXPECT_NE(plain_etag, gzip_etag) << "each variant has its own validator";
  // A variant's ETag revalidates that variant.
  EXPECT_EQ(get("/static/app.js", {{"accept-encoding", "gzip"}, {"if-none-match", gzip_etag}})
                ->response.status,
            304);
}

TEST_P(StaticFilesTest, StaleSiblingsAndDisabledPrecompressionServeTheFile) {
  auto h = get("/static/old.js", {{"accept-encoding", "gzip"}});
  EXPECT_EQ(h->response.body, "new content\n");
  EXPECT_FALSE(h->response.headers.has("content-encoding"));
  h = get("/static/app.js", {{"accept-encoding", "gzip"}}, "precompressed: false");
  EXPECT_EQ(h->response.body, "console.log('plain');\n");
  EXPECT_FALSE(h->response.headers.has("vary"));
}

TEST_P(StaticFilesTest, CountsHitsAndBytes) {
  auto& store = stats::Store::global();
  const int64_t hits = store.valueOf("static_hits_total", {"test"});
  const int64_t bytes = store.valueOf("static_bytes_total", {"test"});
  get("/static/style.css");
  get("/static/style.css", {{"range", "bytes=0-3"}});
  get("/static/style.css", {}, "", "HEAD");
  get("/static/nope");
  EXPECT_EQ(store.valueOf("static_hits_total", {"test"}), hits + 3);
  EXPECT_EQ(store.valueOf("static_bytes_total", {"test"}), bytes + 21 + 4);
}

class StaticFilesConfigTest : public testing::Test {
protected:
  std::string error(const std::string& yaml) {
    auto r = FilterHarness::factoriesFromYaml({{"pounce.filters.static_files", yaml}}, server_);
    EXPECT_FALSE(r.ok()) << yaml;
    return r.ok() ? "" : std::string(r.status().message());
  }
  test::FakeServerContext server_;
};

TEST_F(StaticFilesConfigTest, RejectsBadConfigsWithTheField) {
  const std::string dir = testing::TempDir();
  auto has = [](const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
  };
  EXPECT_TRUE(has(error("{}"), "mounts: at least one mount is needed"));
  EXPECT_TRUE(has(error("mounts: [{prefix: /s, directory: /nonexistent/dir}]"),
                  "mounts[0].directory: cannot use '/nonexistent/dir'"));
  EXPECT_TRUE(has(error("mounts: [{prefix: /s, directory: /etc/hostname}]"),
                  "mounts[0].directory: '/etc/hostname' is not a directory"));
  EXPECT_TRUE(has(error("mounts: [{prefix: s, directory: '" + dir + "'}]"),
                  "mounts[0].prefix: 's' must start with '/'"));
  EXPECT_TRUE(has(error("mounts: [{prefix: /a/../b, directory: '" + dir + "'}]"),
                  "mounts[0].prefix: '/a/../b' has an empty, '.' or '..' segment"));
  EXPECT_TRUE(
      has(error("mounts: [{prefix: '/a?b', directory: '" + dir + "'}]"), "mounts[0].prefix"));
  EXPECT_TRUE(has(error("mounts: [{prefix: /a, directory: '" + dir +
                        "'}, {prefix: /a/, "
                        "directory: '" +
                        dir + "'}]"),
                  "mounts[1].prefix: '/a' is mounted twice"));
  EXPECT_TRUE(has(error("mounts: [{prefix: /a}]"), "mounts[0].directory: must be set"));
  const std::string ok = "mounts: [{prefix: /a, directory: '" + dir + "'}]\n";
  EXPECT_TRUE(has(error(ok + "index_file: a/b.html"), "index_file: 'a/b.html' must be"));
  EXPECT_TRUE(has(error(ok + "max_ranges: 0"), "max_ranges: must be at least 1"));
  EXPECT_TRUE(has(error(ok + "content_types: [{extension: '', content_type: x/y}]"),
                  "content_types[0].extension"));
  EXPECT_TRUE(has(error(ok + "content_types: [{extension: md}]"), "content_types[0].content_type"));
  EXPECT_TRUE(has(error(ok + "default_content_type: ''"), "default_content_type"));
  EXPECT_TRUE(has(error(ok + "file_cache: {max_entries: 0}"),
                  "file_cache.max_entries: must be at least 1"));
  EXPECT_TRUE(has(error(ok + "file_cache: {max_file_bytes: 16777217}"),
                  "file_cache.max_file_bytes: must be at most 16777216"));
  EXPECT_TRUE(
      has(error(ok + "file_cache: {validity: -1s}"), "file_cache.validity: expected a duration"));
}

} // namespace
} // namespace pounce::filters::static_files
