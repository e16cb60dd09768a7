#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "source/http/websocket/utf8.h"

namespace pounce::http::websocket {
namespace {

// Encodes a code point without any checks (so tests can build surrogates and overlongs).
std::string encode(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    s.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    s.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    s.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
  return s;
}

TEST(Utf8, AcceptsBoundaryCodePoints) {
  for (uint32_t cp : {0x0u, 0x7Fu, 0x80u, 0x7FFu, 0x800u, 0xD7FFu, 0xE000u, 0xFFFDu, 0xFFFFu,
                      0x10000u, 0x10FFFFu}) {
    EXPECT_TRUE(Utf8Validator::valid(encode(cp))) << std::hex << cp;
  }
  EXPECT_TRUE(Utf8Validator::valid("κόσμε"));
  EXPECT_TRUE(Utf8Validator::valid("Hello-µ@ßöäüàá-UTF-8!!"));
  EXPECT_TRUE(Utf8Validator::valid(""));
}

TEST(Utf8, RefusesSurrogatesOverlongsAndOutOfRange) {
  const std::vector<std::string> bad = {
      encode(0xD800),
      encode(0xDBFF),
      encode(0xDC00),
      encode(0xDFFF), // surrogates
      "\xC0\x80",
      "\xC1\xBF", // overlong 2-byte
      "\xE0\x80\x80",
      "\xE0\x9F\xBF", // overlong 3-byte
      "\xF0\x80\x80\x80",
      "\xF0\x8F\xBF\xBF", // overlong 4-byte
      "\xF4\x90\x80\x80",
      "\xF5\x80\x80\x80",
      "\xFF",
      "\xFE", // above U+10FFFF
      "\x80",
      "\xBF",
      "a\x80"
      "b", // lone continuation
      "\xC2\x41",
      "\xE1\x80\x41",
      "\xF1\x80\x80\x41", // broken sequences
      "\xED\xA0\x80",     // CESU-style surrogate
  };
  for (const std::string& s : bad) {
    EXPECT_FALSE(Utf8Validator::valid(s)) << testing::PrintToString(s);
  }
}

TEST(Utf8, TruncatedSequenceIsIncompleteNotFailed) {
  Utf8Validator v;
  EXPECT_TRUE(v.feed("ab\xF0\x9F"));
  EXPECT_FALSE(v.complete());
  EXPECT_FALSE(v.failed());
  EXPECT_TRUE(v.feed("\x98\x80"));
  EXPECT_TRUE(v.complete());
}

TEST(Utf8, ValidTextSplitAtEveryByteBoundary) {
  const std::string text = "Hello-µ@ßöäüàá-UTF-8!! κόσμε 😀 \xF4\x8F\xBF\xBF end";
  for (size_t i = 0; i <= text.size(); ++i) {
    Utf8Validator v;
    EXPECT_TRUE(v.feed(text.substr(0, i)));
    EXPECT_TRUE(v.feed(text.substr(i)));
    EXPECT_TRUE(v.complete()) << "split at " << i;
  }
}

TEST(Utf8, FailsAtTheFirstImpossibleByte) {
  // "\xF4\x90" can never start a valid character: refused at the second byte, before any
  // continuation arrives.
  Utf8Validator v;
  EXPECT_TRUE(v.feed("abc\xF4"));
  EXPECT_FALSE(v.feed("\x90"));
  EXPECT_TRUE(v.failed());
  // Stays failed.
  EXPECT_FALSE(v.feed("a"));
  EXPECT_FALSE(v.feed(""));
  v.reset();
  EXPECT_TRUE(v.feed("a"));
}

TEST(Utf8, LongAsciiRunsWithOneBadByteAnywhere) {
  const std::string ascii(100, 'x');
  for (size_t i = 0; i < ascii.size(); ++i) {
    std::string s = ascii;
    s[i] = '\x80';
    EXPECT_FALSE(Utf8Validator::valid(s)) << i;
  }
  EXPECT_TRUE(Utf8Validator::valid(ascii));
}

TEST(Utf8, TruncateKeepsWholeCharacters) {
  EXPECT_EQ(truncateUtf8("abc", 5), "abc");
  EXPECT_EQ(truncateUtf8("abcdef", 3), "abc");
  // "é" is two bytes: cutting after its first byte backs up to before it.
  EXPECT_EQ(truncateUtf8("ab\xC3\xA9", 3), "ab");
  EXPECT_EQ(truncateUtf8("ab\xC3\xA9", 4), "ab\xC3\xA9");
  EXPECT_EQ(truncateUtf8("\xF0\x9F\x98\x80x", 3), "");
  EXPECT_EQ(truncateUtf8("\xF0\x9F\x98\x80x", 4), "\xF0\x9F\x98\x80");
}

} // namespace
} // namespace pounce::http::websocket
