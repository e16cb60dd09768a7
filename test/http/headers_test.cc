#include <gtest/gtest.h>

#include <string>
#include <string_view>

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

TEST(HeaderMap, JoinedValuesSkipEmptyFields) {
  HeaderMap h;
  for (const char* v : {"", "a", "", "", "b", ""}) {
    h.add("x-list", v);
  }
  EXPECT_EQ(h.getJoined("x-list"), "a, b");
  HeaderMap empty;
  empty.add("x-list", "");
  EXPECT_EQ(empty.getJoined("x-list"), "");
  EXPECT_EQ(empty.getJoined("absent"), "");
}

TEST(HeaderMap, CombinedValueCopiesOnlyForSeveralFields) {
  HeaderMap h;
  std::string storage;
  EXPECT_EQ(h.getCombined("x-list", storage), std::nullopt);
  h.add("x-list", "");
  EXPECT_EQ(h.getCombined("x-list", storage), std::string_view());
  h.add("x-list", "a");
  const auto one = h.getCombined("x-list", storage);
  ASSERT_TRUE(one.has_value());
  EXPECT_EQ(*one, "a");
  EXPECT_TRUE(storage.empty()); // a view into the map, no copy
  h.add("x-other", "z");
  h.add("x-list", "");
  h.add("x-list", "b");
  EXPECT_EQ(h.getCombined("x-list", storage), "a, b");
  EXPECT_EQ(storage, "a, b");
  EXPECT_EQ(h.getJoined("x-list"), "a, b");
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

// Every byte value at every offset of a 19-byte value, so both the 8-byte path and the
// byte-at-a-time tail see it: only controls other than HTAB, and DEL, are refused.
TEST(Headers, ValidatesEveryValueByteAtEveryOffset) {
  for (size_t at = 0; at < 19; ++at) {
    for (int c = 0; c < 256; ++c) {
      std::string value(19, 'v');
      value[at] = static_cast<char>(c);
      const bool ok = c == '\t' || (c >= 0x20 && c != 0x7f);
      EXPECT_EQ(isValidHeaderValue(value), ok) << "byte " << c << " at " << at;
    }
  }
}

TEST(Headers, NameCheckSeesEveryByteOfEveryLength) {
  // RFC 9110 tchar, stated byte by byte.
  auto tchar = [](unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != 0 && std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) !=
                          std::string_view::npos);
  };
  // Each byte value at each position of names of every length up to 40 (the block test's
  // pieces, whole blocks and overlapping tails), from a base of letters, digits and dashes
  // in both cases, and one of other token bytes (which the block test leaves to the table).
  const std::string bases[] = {"Content-Type-0123456789-abcdefghijklmnopqrstuvwxyzABCDEFGHIJ",
                               "x_y.z!#$%&'*+^`|~-abc-x_y.z!#$%&'*+^`|~-abc"};
  for (const std::string& base : bases) {
    for (size_t len = 1; len <= 40; ++len) {
      const std::string name = base.substr(0, len);
      ASSERT_TRUE(isValidHeaderName(name)) << name;
      for (size_t at = 0; at < len; ++at) {
        std::string mutated = name;
        for (int c = 0; c < 256; ++c) {
          mutated[at] = static_cast<char>(c);
          ASSERT_EQ(isValidHeaderName(mutated), tchar(static_cast<unsigned char>(c)))
              << "byte " << c << " at " << at << " of " << len;
        }
      }
    }
  }
  // Bytes just outside each range the block test accepts, in a block-sized name.
  for (const char c : {'/', ':', '@', '[', '{', '\x7f', ' ', '\x80', '\xe0'}) {
    EXPECT_FALSE(isValidHeaderName(std::string("content-") + c + "length")) << int(c);
  }
  for (const char c : {'`', '^', '_', '|', '~', '.', '!'}) {
    EXPECT_TRUE(isValidHeaderName(std::string("content-") + c + "length")) << int(c);
  }
}

TEST(Headers, CountsControlBytesExactly) {
  EXPECT_EQ(countControlBytes(""), 0u);
  EXPECT_EQ(countControlBytes("date: x\r\nserver: pounce\r\n"), 4u);
  // Every byte value once: 0x00-0x1f and 0x7f count, nothing else does (obs-text included).
  std::string all;
  for (int c = 0; c < 256; ++c) {
    all.push_back(static_cast<char>(c));
  }
  EXPECT_EQ(countControlBytes(all), 33u);
  // A space right after a control byte is not counted (no borrow between bytes), at every
  // position within an eight-byte word.
  for (size_t at = 0; at < 16; ++at) {
    std::string s(24, 'a');
    s[at] = '\n';
    s[at + 1] = ' ';
    EXPECT_EQ(countControlBytes(s), 1u) << at;
  }
  EXPECT_EQ(countControlBytes(std::string("a\0b\x7f\xff\x80\t", 7)), 3u);
  // Long inputs: lanes are folded before they overflow.
  EXPECT_EQ(countControlBytes(std::string(4096, '\n')), 4096u);
  EXPECT_EQ(countControlBytes(std::string(4099, '\x7f')), 4099u);
  // Every length up to 100 (whole blocks, words and every tail), from every starting offset
  // of a mixed buffer, against a byte-by-byte count.
  std::string mixed;
  uint32_t x = 12345;
  for (int i = 0; i < 300; ++i) {
    x = x * 1103515245u + 12345u;
    const unsigned char kinds[] = {'a', '\r', '\n', 0x7f, 0x00, 0x1f, 0x20, 0x80, 0x9f, 0xff};
    mixed.push_back(static_cast<char>(kinds[(x >> 16) % 10]));
  }
  for (size_t start = 0; start < 32; ++start) {
    for (size_t len = 0; len <= 100; ++len) {
      const std::string_view s = std::string_view(mixed).substr(start, len);
      size_t expected = 0;
      for (const char c : s) {
        const auto u = static_cast<unsigned char>(c);
        expected += (u < 0x20 || u == 0x7f) ? 1 : 0;
      }
      ASSERT_EQ(countControlBytes(s), expected) << start << " " << len;
    }
  }
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

TEST(Headers, TrailersLoseTheFieldsThatBelongInTheHead) {
  HeaderMap t;
  t.add("X-Checksum", "abc");
  t.add("Host", "evil.example");
  t.add("Authorization", "Bearer x");
  t.add("Content-Length", "5");
  t.add("transfer-encoding", "chunked");
  t.add("X-Forwarded-For", "10.0.0.1");
  t.add("grpc-status", "0");
  EXPECT_EQ(removeFieldsNotAllowedInTrailers(t), 5u);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t.getOr("x-checksum"), "abc");
  EXPECT_EQ(t.getOr("grpc-status"), "0");
}

TEST(Headers, ReasonPhrases) {
  EXPECT_EQ(reasonPhrase(431), "Request Header Fields Too Large");
  EXPECT_EQ(reasonPhrase(299), "Unknown");
}

} // namespace
} // namespace pounce::http
