#include <gtest/gtest.h>

#include "source/filters/static_files/content_type.h"
#include "source/filters/static_files/http_date.h"
#include "source/filters/static_files/path.h"
#include "source/filters/static_files/range.h"

namespace pounce::filters::static_files {
namespace {

std::vector<ByteRange> ranges(std::string_view value, uint64_t size, RangeStatus expected,
                              size_t max = 16) {
  std::vector<ByteRange> out;
  EXPECT_EQ(evaluateRange(value, size, max, out), expected) << value;
  return out;
}

TEST(Range, WorkedExamples) {
  using V = std::vector<ByteRange>;
  EXPECT_EQ(ranges("bytes=0-99", 1000, RangeStatus::Satisfiable), (V{{0, 99}}));
  EXPECT_EQ(ranges("bytes=-100", 1000, RangeStatus::Satisfiable), (V{{900, 999}}));
  EXPECT_EQ(ranges("bytes=900-", 1000, RangeStatus::Satisfiable), (V{{900, 999}}));
  EXPECT_EQ(ranges("bytes=990-2000", 1000, RangeStatus::Satisfiable), (V{{990, 999}}));
  EXPECT_EQ(ranges("bytes=-5000", 1000, RangeStatus::Satisfiable), (V{{0, 999}}));
  EXPECT_EQ(ranges("bytes=0-10,5-20", 1000, RangeStatus::Satisfiable), (V{{0, 20}}));
  EXPECT_EQ(ranges("bytes=0-9,10-19", 1000, RangeStatus::Satisfiable), (V{{0, 19}}));
  // Parts go in the order asked (RFC 9110 §15.3.7.2); a merged range takes the place of the
  // first of its pieces.
  EXPECT_EQ(ranges("bytes=500-599, 0-9", 1000, RangeStatus::Satisfiable), (V{{500, 599}, {0, 9}}));
  EXPECT_EQ(ranges("bytes=900-999,5-20,0-9", 1000, RangeStatus::Satisfiable),
            (V{{900, 999}, {0, 20}}));
  EXPECT_EQ(ranges("bytes=300-399,500-599,350-520", 1000, RangeStatus::Satisfiable),
            (V{{300, 599}}));
  // A last position past 2^64-1 is still "to the end".
  EXPECT_EQ(ranges("bytes=350-99999999999999999999", 360, RangeStatus::Satisfiable),
            (V{{350, 359}}));
  EXPECT_EQ(ranges(" Bytes = 1-2 ,, ", 1000, RangeStatus::Satisfiable), (V{{1, 2}}));
  // Unsatisfiable ranges are dropped while others remain.
  EXPECT_EQ(ranges("bytes=2000-3000,0-0", 1000, RangeStatus::Satisfiable), (V{{0, 0}}));
}

TEST(Range, UnsatisfiableAndIgnored) {
  ranges("bytes=1000-", 1000, RangeStatus::Unsatisfiable);
  ranges("bytes=-0", 1000, RangeStatus::Unsatisfiable);
  ranges("bytes=0-", 0, RangeStatus::Unsatisfiable);
  // A suffix of an empty file: the whole (empty) file, as no 206 can name its bytes.
  ranges("bytes=-1", 0, RangeStatus::Ignore);
  ranges("bytes=5-1", 1000, RangeStatus::Ignore);
  ranges("items=0-1", 1000, RangeStatus::Ignore);
  ranges("bytes=x", 1000, RangeStatus::Ignore);
  ranges("bytes=1-2-3", 1000, RangeStatus::Ignore);
  ranges("bytes=", 1000, RangeStatus::Ignore);
  ranges("bytes=+1-2", 1000, RangeStatus::Ignore);
  ranges("bytes=99999999999999999999-", 1000, RangeStatus::Unsatisfiable);
  ranges("bytes=0-1,2-3,4-5", 1000, RangeStatus::Ignore, 2);
}

TEST(HttpDate, FormatsImfFixdate) {
  std::string out;
  appendHttpDate(out, 784111777);
  EXPECT_EQ(out, "Sun, 06 Nov 1994 08:49:37 GMT");
}

TEST(HttpDate, ParsesAllThreeForms) {
  time_t t = 0;
  ASSERT_TRUE(parseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT", t));
  EXPECT_EQ(t, 784111777);
  ASSERT_TRUE(parseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT", t));
  EXPECT_EQ(t, 784111777);
  ASSERT_TRUE(parseHttpDate("Sun Nov  6 08:49:37 1994", t));
  EXPECT_EQ(t, 784111777);
  ASSERT_TRUE(parseHttpDate(" Thu, 01 Jan 1970 00:00:00 GMT ", t));
  EXPECT_EQ(t, 0);
}

TEST(HttpDate, RejectsOtherText) {
  time_t t;
  EXPECT_FALSE(parseHttpDate("", t));
  EXPECT_FALSE(parseHttpDate("yesterday", t));
  EXPECT_FALSE(parseHttpDate("Sun, 06 Nov 1994 08:49:37 UTC", t));
  EXPECT_FALSE(parseHttpDate("Sun, 6 Nov 1994 08:49:37 GMT", t));
  EXPECT_FALSE(parseHttpDate("Sun, 06 Foo 1994 08:49:37 GMT", t));
  EXPECT_FALSE(parseHttpDate("Sun, 32 Nov 1994 08:49:37 GMT", t));
  EXPECT_FALSE(parseHttpDate("Sun, 06 Nov 1994 25:49:37 GMT", t));
  EXPECT_FALSE(parseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT extra", t));
}

TEST(Path, DecodesAndFlagsDangerousEscapes) {
  std::string out;
  EXPECT_TRUE(decodePath("/a%20b/%C3%A9.txt", out));
  EXPECT_EQ(out, "/a b/\xC3\xA9.txt");
  EXPECT_TRUE(decodePath("/%2e%2E/x", out));
  EXPECT_EQ(out, "/../x"); // decoded: relativePath() refuses the ".."
  EXPECT_FALSE(decodePath("/a%2fb", out));
  EXPECT_EQ(out, "/a/b");
  EXPECT_FALSE(decodePath("/a%2Fb", out));
  EXPECT_FALSE(decodePath("/a%5cb", out));
  EXPECT_FALSE(decodePath("/a\\b", out));
  EXPECT_FALSE(decodePath("/a%00b", out));
  EXPECT_FALSE(decodePath(std::string_view("/a\0b", 4), out));
  EXPECT_FALSE(decodePath("/a%zzb", out));
  EXPECT_EQ(out, "/a%zzb");
  EXPECT_FALSE(decodePath("/a%2", out));
  EXPECT_FALSE(decodePath("/a%", out));
}

TEST(Path, RelativePathNormalisesAndRefusesTraversal) {
  std::string out;
  EXPECT_EQ(relativePath("/css//./site.css", false, out), PathVerdict::Ok);
  EXPECT_EQ(out, "css/site.css");
  EXPECT_EQ(relativePath("/", false, out), PathVerdict::Ok);
  EXPECT_EQ(out, "");
  EXPECT_EQ(relativePath("", false, out), PathVerdict::Ok);
  EXPECT_EQ(relativePath("/a/../b", false, out), PathVerdict::Traversal);
  EXPECT_EQ(relativePath("/..", false, out), PathVerdict::Traversal);
  EXPECT_EQ(relativePath("/.git/config", false, out), PathVerdict::Hidden);
  EXPECT_EQ(relativePath("/.git/../../x", false, out), PathVerdict::Traversal);
  EXPECT_EQ(relativePath("/a/.env", false, out), PathVerdict::Hidden);
  EXPECT_EQ(relativePath("/a/.env", true, out), PathVerdict::Ok);
  EXPECT_EQ(out, "a/.env");
  EXPECT_EQ(relativePath("/.well-known/acme", false, out), PathVerdict::Ok);
  EXPECT_EQ(relativePath("/...", false, out), PathVerdict::Hidden);
}

TEST(Path, EncodesLocations) {
  std::string out;
  appendEncodedPath(out, "a b/ü?#%x");
  EXPECT_EQ(out, "a%20b/%C3%BC%3F%23%25x");
}

TEST(ContentType, BuiltinTableAndExtensions) {
  EXPECT_EQ(builtinContentType("html"), "text/html; charset=utf-8");
  EXPECT_EQ(builtinContentType("css"), "text/css; charset=utf-8");
  EXPECT_EQ(builtinContentType("js"), "text/javascript; charset=utf-8");
  EXPECT_EQ(builtinContentType("json"), "application/json");
  EXPECT_EQ(builtinContentType("svg"), "image/svg+xml");
  EXPECT_EQ(builtinContentType("woff2"), "font/woff2");
  EXPECT_EQ(builtinContentType("zzz"), "");
  EXPECT_EQ(fileExtension("a/app.min.JS"), "JS");
  EXPECT_EQ(fileExtension("a.b/README"), "");
  EXPECT_EQ(fileExtension(".env"), "");
  EXPECT_EQ(fileExtension("x."), "");
}

} // namespace
} // namespace pounce::filters::static_files
