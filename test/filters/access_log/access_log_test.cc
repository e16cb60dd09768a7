#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "gtest/gtest.h"
#include "source/common/event/dispatcher.h"
#include "source/common/time.h"
#include "source/filters/access_log/access_log.h"
#include "source/http/headers.h"
#include "test/test_common/filter_harness.h"

namespace pounce::filters::access_log {
namespace {

using std::chrono::microseconds;
using std::chrono::nanoseconds;

class FormatLineTest : public testing::Test {
protected:
  FormatLineTest() {
    headers_.setMethod("GET");
    headers_.setPath("/a?b=1");
    headers_.add("User-Agent", "curl/8.0");
    info_.request_headers = &headers_;
    info_.client_address = *network::Address::fromIp("192.0.2.7", 40000);
    info_.protocol = http::Protocol::Http11;
    info_.response_code = 200;
    info_.bytes_sent = 1234;
    info_.bytes_received = 5;
    info_.listener_name = "main";
    // 2026-11-24T22:42:12.345Z
    info_.start_system_time = SystemTime(std::chrono::milliseconds(1795560132345));
    info_.start_time = MonotonicTime(std::chrono::seconds(100));
    info_.end_time = info_.start_time + microseconds(1500);
  }

  http::RequestHeaders headers_;
  http::StreamInfo info_;
};

TEST_F(FormatLineTest, TextIsCombinedLogFormatWithDurationAndRequestId) {
  info_.request_id = "abc";
  EXPECT_EQ(formatLine(info_, Format::Text),
            "192.0.2.7 - - [24/Nov/2026:22:42:12 +0000] \"GET /a?b=1 HTTP/1.1\" 200 1234 "
            "0.001500 \"-\" \"curl/8.0\" abc\n");
}

TEST_F(FormatLineTest, StatusIsWrittenAsItsDigits) {
  const std::pair<int, const char*> cases[] = {
      {100, " 100 1234 "},   {200, " 200 1234 "}, {204, " 204 1234 "},
      {404, " 404 1234 "},   {599, " 599 1234 "}, {999, " 999 1234 "},
      {1000, " 1000 1234 "}, {42, " 42 1234 "},   {0, " - 1234 "},
  };
  for (const auto& [code, text] : cases) {
    info_.response_code = code;
    EXPECT_NE(formatLine(info_, Format::Text).find(text), std::string::npos) << code;
  }
}

TEST_F(FormatLineTest, DurationIsRoundedToMicroseconds) {
  info_.end_time = info_.start_time + nanoseconds(2'345'678'501);
  EXPECT_NE(formatLine(info_, Format::Text).find(" 2.345679 "), std::string::npos);
  info_.end_time = info_.start_time + nanoseconds(499);
  EXPECT_NE(formatLine(info_, Format::Text).find(" 0.000000 "), std::string::npos);
  info_.end_time = info_.start_time + std::chrono::seconds(61);
  EXPECT_NE(formatLine(info_, Format::Text).find(" 61.000000 "), std::string::npos);
  // Every digit position, in both formats.
  const std::pair<int64_t, const char*> cases[] = {
      {1'000, "0.000001"},         {12'000, "0.000012"},      {123'000, "0.000123"},
      {1'234'000, "0.001234"},     {12'345'000, "0.012345"},  {123'456'000, "0.123456"},
      {9'999'999'000, "9.999999"}, {100'000'000, "0.100000"}, {10'000'000'000, "10.000000"},
  };
  for (const auto& [ns, text] : cases) {
    info_.end_time = info_.start_time + nanoseconds(ns);
    EXPECT_NE(formatLine(info_, Format::Text).find(std::string(" ") + text + " "),
              std::string::npos)
        << text;
    EXPECT_NE(formatLine(info_, Format::Json).find(std::string("\"duration\":") + text + ","),
              std::string::npos)
        << text;
  }
}

TEST_F(FormatLineTest, TextEscapesQuotesBackslashesAndControlBytes) {
  headers_.setPath("/x\"y\\z\x01\xff");
  headers_.set("referer", "a\"b");
  const std::string line = formatLine(info_, Format::Text);
  EXPECT_NE(line.find("\"GET /x\\\"y\\\\z\\x01\\xff HTTP/1.1\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"a\\\"b\""), std::string::npos) << line;
  EXPECT_EQ(line.find('\n'), line.size() - 1);
}

TEST_F(FormatLineTest, FirstRefererAndUserAgentCountInEitherOrder) {
  headers_.remove("user-agent");
  headers_.add("referer", "https://one.example/");
  headers_.add("user-agent", "first/1");
  headers_.add("referer", "https://two.example/");
  headers_.add("user-agent", "second/2");
  const std::string line = formatLine(info_, Format::Text);
  EXPECT_NE(line.find("\"https://one.example/\" \"first/1\""), std::string::npos) << line;
  const std::string json = formatLine(info_, Format::Json);
  EXPECT_NE(json.find("\"user_agent\":\"first/1\",\"referer\":\"https://one.example/\""),
            std::string::npos)
      << json;
}

// Clean text is scanned 8 bytes at a time: each byte value, at each position of a word
// and in the tail after the last whole word, is escaped exactly when it must be.
TEST_F(FormatLineTest, TextEscapesEveryByteValueAtEveryOffset) {
  for (int c = 0; c < 256; ++c) {
    const bool escapes = c < 0x20 || c >= 0x7f || c == '"' || c == '\\';
    char hex[8];
    std::snprintf(hex, sizeof(hex), "\\x%02x", c);
    const std::string want = c == '"' || c == '\\' ? std::string("\\") + static_cast<char>(c)
                             : escapes             ? std::string(hex)
                                                   : std::string(1, static_cast<char>(c));
    for (size_t at = 0; at < 19; ++at) {
      std::string agent(19, 'a');
      agent[at] = static_cast<char>(c);
      headers_.set("user-agent", agent);
      const std::string line = formatLine(info_, Format::Text);
      const std::string expected =
          "\"" + std::string(at, 'a') + want + std::string(18 - at, 'a') + "\" -";
      ASSERT_NE(line.find(expected), std::string::npos)
          << "byte " << c << " at " << at << ": " << line;
    }
  }
}

// Fields of every length are copied whole when clean and escaped exactly where they are not
// (short ones are checked as pieces of one word, long ones as overlapping words).
TEST_F(FormatLineTest, TextFieldsOfEveryLengthEscapeExactly) {
  for (size_t n = 1; n <= 24; ++n) {
    headers_.set("user-agent", std::string(n, 'b'));
    ASSERT_NE(formatLine(info_, Format::Text).find("\"" + std::string(n, 'b') + "\" -"),
              std::string::npos)
        << n;
    for (size_t at = 0; at < n; ++at) {
      std::string agent(n, 'b');
      agent[at] = '"';
      headers_.set("user-agent", agent);
      const std::string expected =
          "\"" + std::string(at, 'b') + "\\\"" + std::string(n - 1 - at, 'b') + "\" -";
      ASSERT_NE(formatLine(info_, Format::Text).find(expected), std::string::npos)
          << n << " " << at;
    }
  }
}

TEST_F(FormatLineTest, NoResponseIsADash) {
  info_.response_code = 0;
  info_.setFlag(http::ResponseFlag::DownstreamReset);
  const std::string line = formatLine(info_, Format::Text);
  EXPECT_NE(line.find("HTTP/1.1\" - 1234 "), std::string::npos) << line;
  EXPECT_NE(line.find(" - client_reset\n"), std::string::npos) << line;
}

// Lines are formatted straight after the ones already pending in a sink's buffer; a long,
// fully escaped user agent still fits the line's worst-case size.
TEST_F(FormatLineTest, TextAppendsAfterPendingLines) {
  Buffer pending;
  pending.add("earlier line\n");
  const std::string agent(300, '\x01');
  headers_.set("user-agent", agent);
  info_.setFlag(http::ResponseFlag::RateLimited);
  info_.setFlag(http::ResponseFlag::LocalReply);
  appendLine(pending, info_, Format::Text);
  appendLine(pending, info_, Format::Text);
  std::string escaped;
  for (int i = 0; i < 300; ++i) {
    escaped += "\\x01";
  }
  const std::string one = "192.0.2.7 - - [24/Nov/2026:22:42:12 +0000] \"GET /a?b=1 HTTP/1.1\" "
                          "200 1234 0.001500 \"-\" \"" +
                          escaped + "\" - local_reply,rate_limited\n";
  EXPECT_EQ(pending.toString(), "earlier line\n" + one + one);
}

// The sink's buffer gets the same bytes as a string, after what it already holds, in both
// formats; the worst-case space it reserves is not part of the line.
TEST_F(FormatLineTest, ABufferGetsTheSameLineAsAString) {
  headers_.set("user-agent", std::string(300, '\x01'));
  headers_.add("referer", "http://a/\"q\"");
  info_.request_id = "rid";
  info_.setFlag(http::ResponseFlag::LocalReply);
  for (const Format format : {Format::Text, Format::Json}) {
    Buffer buffer;
    buffer.add("earlier line\n");
    appendLine(buffer, info_, format);
    appendLine(buffer, info_, format);
    const std::string line = formatLine(info_, format);
    EXPECT_EQ(buffer.view(), "earlier line\n" + line + line);
  }
}

TEST_F(FormatLineTest, JsonHasEveryField) {
  info_.request_id = "rid";
  EXPECT_EQ(formatLine(info_, Format::Json),
            "{\"time\":\"2026-11-24T22:42:12.345Z\",\"client\":\"192.0.2.7\",\"method\":\"GET\","
            "\"path\":\"/a?b=1\",\"protocol\":\"HTTP/1.1\",\"status\":200,\"bytes\":1234,"
            "\"request_bytes\":5,\"duration\":0.001500,\"listener\":\"main\","
            "\"request_id\":\"rid\",\"user_agent\":\"curl/8.0\"}\n");
}

TEST_F(FormatLineTest, JsonTimeKeepsMillisecondsWithinTheCachedSecond) {
  formatLine(info_, Format::Json);
  info_.start_system_time += std::chrono::milliseconds(7);
  EXPECT_NE(formatLine(info_, Format::Json).find("\"time\":\"2026-11-24T22:42:12.352Z\""),
            std::string::npos);
  info_.start_system_time += std::chrono::milliseconds(1000);
  EXPECT_NE(formatLine(info_, Format::Json).find("\"time\":\"2026-11-24T22:42:13.352Z\""),
            std::string::npos);
}

// --- batching -----------------------------------------------------------------------------

// A file sink in a fresh directory, and what has reached the file so far.
class SinkTest : public testing::Test {
protected:
  SinkTest() {
    char dir[] = "/tmp/pounce-access-log-XXXXXX";
    dir_ = mkdtemp(dir);
    path_ = dir_ + "/access.log";
    sink_ = *Sink::open(path_);
  }
  ~SinkTest() override {
    sink_.reset();
    std::remove(path_.c_str());
    rmdir(dir_.c_str());
  }

  std::string written() const {
    std::ifstream in(path_);
    std::stringstream out;
    out << in.rdbuf();
    return out.str();
  }

  // Runs the loop for `d`, then stops it.
  static void runFor(event::Dispatcher& dispatcher, std::chrono::milliseconds d) {
    auto stop = dispatcher.createTimer([&] { dispatcher.exit(); });
    stop->enableTimer(d);
    dispatcher.run();
  }

  std::string dir_;
  std::string path_;
  SinkSharedPtr sink_;
};

TEST_F(SinkTest, AZeroIntervalWritesAtTheEndOfTheLoopTurn) {
  event::Dispatcher d("test", RealTimeSource::instance());
  d.post([&] {
    sink_->write(d, "one\n", std::chrono::milliseconds(0));
    sink_->write(d, "two\n", std::chrono::milliseconds(0));
    EXPECT_EQ(written(), ""); // (still this turn)
    d.defer([&] { d.exit(); });
  });
  d.run();
  EXPECT_EQ(written(), "one\ntwo\n");
}

TEST_F(SinkTest, LinesWaitForTheIntervalThenGoInOneWrite) {
  event::Dispatcher d("test", RealTimeSource::instance());
  const auto interval = std::chrono::milliseconds(150);
  d.post([&] { sink_->write(d, "first\n", interval); });
  runFor(d, std::chrono::milliseconds(40));
  EXPECT_EQ(written(), ""); // several loop turns later, not yet due
  d.post([&] { sink_->write(d, "second\n", interval); });
  runFor(d, std::chrono::milliseconds(400));
  EXPECT_EQ(written(), "first\nsecond\n");
  // After a flush the next line starts a new wait.
  d.post([&] { sink_->write(d, "third\n", interval); });
  runFor(d, std::chrono::milliseconds(20));
  EXPECT_EQ(written(), "first\nsecond\n");
  runFor(d, std::chrono::milliseconds(400));
  EXPECT_EQ(written(), "first\nsecond\nthird\n");
}

TEST_F(SinkTest, AShorterIntervalBringsTheFlushForward) {
  event::Dispatcher d("test", RealTimeSource::instance());
  const auto start = std::chrono::steady_clock::now();
  d.post([&] {
    sink_->write(d, "slow\n", std::chrono::seconds(30));
    sink_->write(d, "fast\n", std::chrono::milliseconds(20));
  });
  auto poll = d.createTimer([] {});
  std::function<void()> check = [&] {
    if (written() == "slow\nfast\n" ||
        std::chrono::steady_clock::now() - start > std::chrono::seconds(10)) {
      d.exit();
      return;
    }
    poll->enableTimer(std::chrono::milliseconds(5));
  };
  poll = d.createTimer([&] { check(); });
  poll->enableTimer(std::chrono::milliseconds(5));
  d.run();
  EXPECT_EQ(written(), "slow\nfast\n");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST_F(SinkTest, SixtyFourKibibytesAreWrittenAtOnce) {
  event::Dispatcher d("test", RealTimeSource::instance());
  const std::string line(999, 'x');
  size_t sent = 0;
  d.post([&] {
    while (written().empty() && sent < 100 * 1024) {
      sink_->write(d, line + "\n", std::chrono::seconds(30));
      sent += line.size() + 1;
    }
    d.exit();
  });
  d.run();
  EXPECT_GE(sent, 64u * 1024);
  EXPECT_LT(sent, 66u * 1024);
  EXPECT_EQ(written().size(), sent); // every line so far, in the one write
}

// The next batch after a 64 KiB write starts in the memory of the last one instead of
// growing a buffer from nothing again.
TEST_F(SinkTest, TheNextBatchReusesTheMemoryOfTheLast) {
  event::Dispatcher d("test", RealTimeSource::instance());
  const std::string line(999, 'x');
  d.post([&] {
    while (written().empty()) {
      sink_->write(d, line + "\n", std::chrono::seconds(30));
    }
    EXPECT_EQ(sink_->threadBufferCapacity(), 0u); // written: the entry is gone
    sink_->write(d, "next\n", std::chrono::seconds(30));
    EXPECT_GE(sink_->threadBufferCapacity(), 64u * 1024);
    d.exit();
  });
  d.run();
}

TEST_F(SinkTest, ALineOfMoreThanSixtyFourKibibytesIsWrittenAtOnce) {
  event::Dispatcher d("test", RealTimeSource::instance());
  const std::string big(70 * 1024, 'y');
  d.post([&] {
    sink_->write(d, big + "\n", std::chrono::seconds(30));
    EXPECT_EQ(written().size(), big.size() + 1); // the first line of its batch
    sink_->write(d, "small\n", std::chrono::milliseconds(10));
  });
  runFor(d, std::chrono::milliseconds(300));
  EXPECT_EQ(written(), big + "\nsmall\n");
}

TEST_F(SinkTest, LinesStillWaitingWhenTheThreadEndsAreWritten) {
  std::thread t([&] {
    event::Dispatcher d("worker", RealTimeSource::instance());
    d.post([&] {
      sink_->write(d, "last words\n", std::chrono::seconds(30));
      d.exit();
    });
    d.run();
  }); // (the loop is gone before the thread ends; the line is still waiting)
  t.join();
  EXPECT_EQ(written(), "last words\n");
}

TEST_F(SinkTest, ANewLoopOnTheSameThreadGetsItsOwnTimer) {
  {
    event::Dispatcher first("first", RealTimeSource::instance());
    first.post([&] {
      sink_->write(first, "a\n", std::chrono::milliseconds(10));
      first.exit();
    });
    first.run();
  } // destroyed with the line waiting and its timer armed
  event::Dispatcher second("second", RealTimeSource::instance());
  second.post([&] { sink_->write(second, "b\n", std::chrono::milliseconds(10)); });
  runFor(second, std::chrono::milliseconds(300));
  EXPECT_EQ(written(), "a\nb\n");
}

TEST(AccessLogConfig, FlushIntervalIsFromZeroToSixtySeconds) {
  test::FakeServerContext server;
  auto build = [&](const std::string& yaml) {
    return test::FilterHarness::factoriesFromYaml({{"pounce.filters.access_log", yaml}}, server);
  };
  for (const char* ok : {"flush_interval: 0s", "flush_interval: 1ms", "flush_interval: 60s",
                         "format: json\nflush_interval: 0.5s"}) {
    EXPECT_TRUE(build(ok).ok()) << ok;
  }
  for (const char* bad : {"flush_interval: -1s", "flush_interval: 61s"}) {
    auto f = build(bad);
    ASSERT_FALSE(f.ok()) << bad;
    EXPECT_NE(std::string(f.status().message()).find("flush_interval"), std::string::npos)
        << f.status();
  }
}

} // namespace
} // namespace pounce::filters::access_log
