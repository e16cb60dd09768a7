#include <gtest/gtest.h>

#include "source/http/headers.h"

namespace pounce::http {
namespace {

TEST(HeaderMap, KeepsOrderDuplicatesAndLowercasesNames) {
  HeaderMap h;
  h.add("Content-Type", "text/plain");
  h.add("X-A", "1");
  h.add("x-a", "2");
  EXPECT_EQ(h.size(), 3u);
  EXPECT_EQ(h.nameAt(0), "content-type");
  EXPECT_EQ(h.getOr("x-a"), "1");
  EXPECT_EQ(h.getJoined("x-a"), "1, 2");
  EXPECT_EQ(h.count("x-a"), 2u);
}

TEST(HeaderMap, SetReplacesAllAndRemoveCounts) {
  HeaderMap h;
  h.add("a", "1");
  h.add("b", "2");
  h.add("a", "3");
  h.set("A", "9");
  EXPECT_EQ(h.count("a"), 1u);
  EXPECT_EQ(h.getOr("a"), "9");
  EXPECT_EQ(h.remove("b"), 1u);
  EXPECT_FALSE(h.has("b"));
}

TEST(HeaderMap, CopyingAValueOfTheSameMapIsSafe) {
  HeaderMap h;
  h.add("a", std::string(100, 'x'));
  for (int i = 0; i < 20; ++i) {
    h.add("b", *h.get("a"));
  }
  EXPECT_EQ(h.getOr("b"), std::string(100, 'x'));
  h.set("a", *h.get("b"));
  EXPECT_EQ(h.getOr("a"), std::string(100, 'x'));
}

TEST(Headers, ValidatesNamesAndValues) {
  EXPECT_TRUE(isValidHeaderName("x-custom_1"));
  EXPECT_FALSE(isValidHeaderName("bad name"));
  EXPECT_FALSE(isValidHeaderName(""));
  EXPECT_FALSE(isValidHeaderName("a:b"));
  EXPECT_TRUE(isValidHeaderValue("text/html; q=0.9\tok"));
  EXPECT_FALSE(isValidHeaderValue("a\r\nb"));
  EXPECT_FALSE(isValidHeaderValue(std::string("a\0b", 3)));
}

TEST(Headers, TokensInLists) {
  EXPECT_TRUE(hasToken("keep-alive, Upgrade", "upgrade"));
  EXPECT_FALSE(hasToken("keep-alive, upgrades", "upgrade"));
  EXPECT_TRUE(hasToken(" trailers ", "trailers"));
}

TEST(RequestHeaders, SplitsPathAndQuery) {
  RequestHeaders h;
  h.setPath("/a/b?x=1&y");
  EXPECT_EQ(h.pathOnly(), "/a/b");
  EXPECT_EQ(h.query(), "x=1&y");
  h.setPath("/plain");
  EXPECT_EQ(h.query(), "");
}

TEST(Headers, ReasonPhrases) {
  EXPECT_EQ(reasonPhrase(431), "Request Header Fields Too Large");
  EXPECT_EQ(reasonPhrase(299), "Unknown");
}

} // namespace
} // namespace pounce::http
