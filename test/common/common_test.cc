#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstring>

#include "source/common/buffer.h"
#include "source/common/json.h"
#include "source/common/output_queue.h"
#include "source/common/stats.h"
#include "source/common/strings.h"
#include "source/common/swar.h"
#include "source/common/time.h"

namespace pounce {
namespace {

TEST(Buffer, AddDrainMove) {
  Buffer a("hello ");
  Buffer b("world");
  a.move(b);
  EXPECT_EQ(a.view(), "hello world");
  EXPECT_TRUE(b.empty());
  a.drain(6);
  EXPECT_EQ(a.view(), "world");
  a.prepend(">");
  EXPECT_EQ(a.view(), ">world");
  Buffer c;
  c.move(a); // O(1) swap into an empty buffer
  EXPECT_EQ(c.view(), ">world");
  EXPECT_TRUE(a.empty());
}

TEST(OutputQueue, TracksLengthAcrossSegments) {
  OutputQueue q;
  q.add("abc");
  q.add("def");
  EXPECT_EQ(q.length(), 6u);
  EXPECT_EQ(q.segmentCount(), 1u);
  q.drained(4);
  EXPECT_EQ(q.length(), 2u);
  EXPECT_EQ(q.segment(0).bytes.view(), "ef");
  q.drained(2);
  EXPECT_TRUE(q.empty());
}

// A file of `size` bytes ('a' + i % 26) in the test's temporary directory, opened for reading.
FileHandleSharedPtr tempFile(size_t size) {
  std::string path = std::string(::testing::TempDir()) + "/output_queue_XXXXXX";
  const int fd = ::mkstemp(path.data());
  EXPECT_GE(fd, 0);
  ::unlink(path.c_str());
  std::string content(size, '\0');
  for (size_t i = 0; i < size; ++i) {
    content[i] = static_cast<char>('a' + i % 26);
  }
  EXPECT_EQ(::write(fd, content.data(), size), static_cast<ssize_t>(size));
  return std::make_shared<FileHandle>(fd);
}

TEST(OutputQueue, SmallFileRangesAreReadInlineAfterTheHead) {
  OutputQueue q;
  q.add("HEAD\r\n\r\n");
  q.addFile(tempFile(100), 3, 5);
  // One byte segment: the head and the range "defgh" go out in one write.
  ASSERT_EQ(q.segmentCount(), 1u);
  EXPECT_EQ(q.segment(0).bytes.view(), "HEAD\r\n\r\ndefgh");
  EXPECT_EQ(q.length(), 13u);
}

TEST(OutputQueue, LargeFileRangesStayForSendfile) {
  OutputQueue q;
  q.add("HEAD");
  const uint64_t big = OutputQueue::kInlineFileBytes + 1;
  q.addFile(tempFile(big + 10), 10, big);
  ASSERT_EQ(q.segmentCount(), 2u);
  EXPECT_TRUE(q.segment(1).isFile());
  EXPECT_EQ(q.segment(1).offset, 10u);
  EXPECT_EQ(q.length(), 4u + big);
}

TEST(OutputQueue, AShortFileFallsBackToTheFileSegment) {
  // The file shrank after the response head promised 50 bytes: nothing partial is queued;
  // the sendfile path meets the short file and reports it.
  OutputQueue q;
  q.addFile(tempFile(20), 0, 50);
  ASSERT_EQ(q.segmentCount(), 2u);
  EXPECT_EQ(q.segment(0).bytes.length(), 0u);
  EXPECT_TRUE(q.segment(1).isFile());
  EXPECT_EQ(q.length(), 50u);
}

TEST(Duration, ParsesAndFormats) {
  std::chrono::nanoseconds d;
  ASSERT_TRUE(parseDuration("10s", d));
  EXPECT_EQ(d, std::chrono::seconds(10));
  ASSERT_TRUE(parseDuration("250ms", d));
  EXPECT_EQ(d, std::chrono::milliseconds(250));
  ASSERT_TRUE(parseDuration("1.5m", d));
  EXPECT_EQ(d, std::chrono::seconds(90));
  EXPECT_FALSE(parseDuration("10", d));
  EXPECT_FALSE(parseDuration("s", d));
  EXPECT_FALSE(parseDuration("-1s", d));
  EXPECT_FALSE(parseDuration("1.2.3s", d));
  // 64-bit nanoseconds hold about 292 years; longer is refused, never wrapped.
  bool too_long = false;
  ASSERT_TRUE(parseDuration("9000000000s", d, &too_long));
  EXPECT_EQ(d, std::chrono::seconds(9000000000));
  EXPECT_FALSE(too_long);
  EXPECT_FALSE(parseDuration("10000000000s", d, &too_long));
  EXPECT_TRUE(too_long);
  EXPECT_FALSE(parseDuration("1e30s", d, &too_long));
  EXPECT_FALSE(parseDuration("3000000h", d, &too_long));
  EXPECT_TRUE(too_long);
  EXPECT_EQ(formatDuration(std::chrono::seconds(10)), "10s");
  EXPECT_EQ(formatDuration(std::chrono::milliseconds(250)), "0.25s");
}

TEST(Json, EscapesAndReplacesInvalidUtf8) {
  EXPECT_EQ(json::quote("a\"b\\c\n\x01"), "\"a\\\"b\\\\c\\n\\u0001\"");
  EXPECT_EQ(json::quote("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
  EXPECT_EQ(json::quote("bad\xff"), "\"bad\xef\xbf\xbd\"");
}

TEST(Strings, EscapeForLogKeepsALogLineOneLine) {
  EXPECT_EQ(escapeForLog("x-plain"), "x-plain");
  EXPECT_EQ(escapeForLog(std::string_view("a\r\nb\tc\0d\\e\x7f\xff", 12)),
            "a\\r\\nb\\tc\\x00d\\x5ce\\x7f\\xff");
  EXPECT_EQ(escapeForLog("abcdef", 4), "abcd...");
  EXPECT_EQ(escapeForLog("", 4), "");
}

TEST(Strings, ParseUintIsStrict) {
  uint64_t v;
  EXPECT_TRUE(parseUint("42", v));
  EXPECT_EQ(v, 42u);
  EXPECT_FALSE(parseUint("+1", v));
  EXPECT_FALSE(parseUint(" 1", v));
  EXPECT_FALSE(parseUint("99999999999999999999999", v));
  EXPECT_FALSE(parseUint("", v));
  EXPECT_FALSE(parseUint("12a", v));
  // Around the edge of 64 bits, where the digit loop hands over to the checked conversion.
  EXPECT_TRUE(parseUint("9999999999999999999", v)); // 19 digits
  EXPECT_EQ(v, 9999999999999999999u);
  EXPECT_TRUE(parseUint("18446744073709551615", v));
  EXPECT_EQ(v, 18446744073709551615u);
  EXPECT_FALSE(parseUint("18446744073709551616", v));
  EXPECT_TRUE(parseUint("000000000000000000000000042", v)) << "leading zeros are digits";
  EXPECT_EQ(v, 42u);
  v = 7;
  EXPECT_FALSE(parseUint("99999999999999999999", v));
  EXPECT_EQ(v, 7u) << "left alone on failure";
  EXPECT_EQ(cat("a", 1, std::string_view("b"), 'c', -2), "a1bc-2");
}

// Every length a header copy takes, at every source offset: exactly n bytes arrive, and
// nothing around them is touched.
TEST(Strings, CopyBytesCopiesExactlyNBytes) {
  std::string src(64, '\0');
  for (size_t i = 0; i < src.size(); ++i) {
    src[i] = static_cast<char>('A' + i % 50);
  }
  for (size_t n = 0; n <= 40; ++n) {
    for (size_t from = 0; from < 8; ++from) {
      std::string dst(n + 16, '#');
      copyBytes(dst.data() + 8, src.data() + from, n);
      EXPECT_EQ(dst.substr(0, 8), "########") << n;
      EXPECT_EQ(dst.substr(8, n), src.substr(from, n)) << n << " from " << from;
      EXPECT_EQ(dst.substr(8 + n), "########") << n;
    }
  }
}

TEST(Strings, CatAllocatesOnceAndAppendCatAppends) {
  const std::string long_piece(100, 'x');
  const std::string joined =
      cat(long_piece, ':', INT64_MIN, ':', UINT64_MAX, ':', true, "!", std::string_view("sv"));
  EXPECT_EQ(joined, long_piece + ":-9223372036854775808:18446744073709551615:true!sv");
  std::string out = "head ";
  appendCat(out, 7, ' ', long_piece);
  EXPECT_EQ(out, "head 7 " + long_piece);
  // One reservation from the pieces' upper bounds: 100 bytes, 20 digits and a sign.
  std::string grown;
  appendCat(grown, long_piece, INT64_MIN);
  EXPECT_GE(grown.capacity(), long_piece.size() + 20);
  EXPECT_TRUE(startsWith("x-forwarded-for", "x-forwarded-"));
  EXPECT_FALSE(startsWith("x-forward", "x-forwarded-"));
  EXPECT_TRUE(startsWith("abc", ""));
}

// Every byte value in every lane of a word, with every other lane holding a byte that fails
// the test, against the byte-at-a-time definition.
TEST(Swar, ByteTestsAreExactInEveryLane) {
  for (int lane = 0; lane < 8; ++lane) {
    for (int v = 0; v < 256; ++v) {
      for (unsigned char filler : {'a', '\0', '\x7f', '\xff', '"'}) {
        unsigned char bytes[8];
        std::memset(bytes, filler, 8);
        bytes[lane] = static_cast<unsigned char>(v);
        uint64_t w;
        std::memcpy(&w, bytes, 8);
        const uint64_t control = swar::controlOrDel(w);
        const uint64_t quote = swar::equalTo(w, '"');
        const uint64_t high = swar::nonAscii(w);
        for (int i = 0; i < 8; ++i) {
          const unsigned char c = bytes[i];
          const auto bit = [&](uint64_t mask) { return (mask >> (8 * i + 7)) & 1; };
          SCOPED_TRACE(testing::Message() << "lane " << lane << " value " << v << " byte " << i);
          EXPECT_EQ(bit(control), ((c & 0x7f) < 0x20 || (c & 0x7f) == 0x7f) ? 1u : 0u);
          EXPECT_EQ(bit(quote), c == '"' ? 1u : 0u);
          EXPECT_EQ(bit(high), c >= 0x80 ? 1u : 0u);
        }
        EXPECT_EQ((control | quote | high) & ~swar::kHighs, 0u);
      }
    }
  }
}

// anyByte reads words only (overlapping ones, and pieces of short strings in a padded
// word): at every length, a flagged byte at any position is found, and padding or bytes
// outside the string never are.
TEST(Swar, AnyByteSeesEveryByteOfEveryLength) {
  const auto quote = [](uint64_t w) { return swar::equalTo(w, '"'); };
  char buffer[64];
  for (size_t n = 0; n <= 40; ++n) {
    std::memset(buffer, '"', sizeof(buffer)); // flagged bytes around the string
    std::memset(buffer + 8, 'a', n);
    EXPECT_FALSE(swar::anyByte(buffer + 8, n, 'a', quote)) << n;
    for (size_t at = 0; at < n; ++at) {
      buffer[8 + at] = '"';
      EXPECT_TRUE(swar::anyByte(buffer + 8, n, 'a', quote)) << n << " " << at;
      buffer[8 + at] = 'a';
    }
  }
  EXPECT_FALSE(swar::anyByte(nullptr, 0, 'a', quote));
}

TEST(Stats, CountersMergeAcrossThreadsAndRender) {
  auto& store = stats::Store::global();
  auto& family = store.family("test_requests_total", "Requests.", stats::Type::Counter, {"method"});
  const auto& get = store.series(family, {"GET"});
  get.inc();
  std::thread t([&] { get.inc(2); });
  t.join();
  EXPECT_EQ(get.value(), 3);
  auto& hist =
      store.family("test_latency_seconds", "Latency.", stats::Type::Histogram, {}, {0.1, 1.0});
  const auto& h = store.series(hist);
  h.observe(0.05);
  h.observe(0.5);
  h.observe(5);
  const std::string text = store.prometheusText();
  EXPECT_NE(
      text.find("# TYPE test_requests_total counter\ntest_requests_total{method=\"GET\"} 3\n"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("test_latency_seconds_bucket{le=\"0.1\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("test_latency_seconds_bucket{le=\"1\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("test_latency_seconds_bucket{le=\"+Inf\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("test_latency_seconds_sum 5.55\n"), std::string::npos) << text;
  EXPECT_NE(text.find("test_latency_seconds_count 3\n"), std::string::npos) << text;
}

// Sample values and bucket bounds read back as the same double: bounds that differ only past
// the ninth digit stay apart (a duplicate `le` makes Prometheus reject the scrape).
TEST(Stats, SampleValuesAreExactAndShortest) {
  EXPECT_EQ(stats::formatSampleValue(0.1), "0.1");
  EXPECT_EQ(stats::formatSampleValue(0.005), "0.005");
  EXPECT_EQ(stats::formatSampleValue(2.5), "2.5");
  EXPECT_EQ(stats::formatSampleValue(10), "10");
  EXPECT_NE(stats::formatSampleValue(0.1234567891), stats::formatSampleValue(0.1234567892));
  for (double v : {0.1234567891, 1e-7, 12345678901.5, 1.0 / 3}) {
    EXPECT_EQ(std::stod(stats::formatSampleValue(v)), v);
  }
}

// A histogram wider than a page of slots: its first buckets and its sum live on different
// pages, and a thread's first observation must make the sum's page too.
TEST(Stats, AHistogramAcrossTwoPagesKeepsItsSum) {
  auto& store = stats::Store::global();
  std::vector<double> bounds;
  for (int i = 1; i <= 5000; ++i) {
    bounds.push_back(i);
  }
  auto& wide = store.family("test_wide_seconds", "Wide.", stats::Type::Histogram, {}, bounds);
  const auto& h = store.series(wide);
  std::thread t([&] {
    h.observe(0.5);    // first bucket: the first page
    h.observe(4999.5); // last finite bucket: the second page
    h.observe(0.25);
  });
  t.join();
  h.observe(1.5);
  EXPECT_DOUBLE_EQ(h.sum(), 0.5 + 4999.5 + 0.25 + 1.5);
  EXPECT_EQ(h.count(), 4u);
  const auto counts = h.bucketCounts();
  ASSERT_EQ(counts.size(), 5001u);
  EXPECT_EQ(counts[0], 2u);
  EXPECT_EQ(counts[1], 1u);
  EXPECT_EQ(counts[4999], 1u);
}

} // namespace
} // namespace pounce
