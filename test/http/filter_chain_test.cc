#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "test/test_common/filter_harness.h"

namespace pounce::http {
namespace {

using test::FilterHarness;

// Records every event it sees into a shared log, and can stop iteration on request.
class LoggingFilter : public StreamFilter {
public:
  LoggingFilter(std::string name, std::vector<std::string>& log)
      : name_(std::move(name)), log_(log) {}

  FilterStatus decodeHeaders(RequestHeaders& headers, bool end_stream) override {
    log_.push_back(name_ + ":decodeHeaders" + (end_stream ? ":end" : ""));
    headers.add("x-seen-by", name_);
    return stop_headers ? FilterStatus::StopIteration : FilterStatus::Continue;
  }
  FilterStatus decodeData(Buffer& data, bool end_stream) override {
    log_.push_back(name_ + ":decodeData:" + data.toString() + (end_stream ? ":end" : ""));
    return FilterStatus::Continue;
  }
  FilterStatus decodeTrailers(HeaderMap& trailers) override {
    std::string names;
    for (const auto [name, value] : trailers) {
      names += ":" + std::string(name);
    }
    log_.push_back(name_ + ":decodeTrailers" + names);
    return FilterStatus::Continue;
  }
  FilterStatus encodeHeaders(ResponseHeaders& headers, bool end_stream) override {
    log_.push_back(name_ + ":encodeHeaders:" + std::to_string(headers.status()));
    headers.add("x-encoded-by", name_);
    return FilterStatus::Continue;
  }
  FilterStatus encodeData(Buffer& data, bool end_stream) override {
    log_.push_back(name_ + ":encodeData:" + data.toString() + (end_stream ? ":end" : ""));
    return FilterStatus::Continue;
  }
  void onStreamComplete() override { log_.push_back(name_ + ":complete"); }
  void onDestroy() override { log_.push_back(name_ + ":destroy"); }

  DecoderFilterCallbacks* decoder() { return decoder_callbacks_; }

  bool stop_headers{false};

private:
  std::string name_;
  std::vector<std::string>& log_;
};

// Terminal: echoes the request body once complete.
class EchoFilter : public StreamFilter {
public:
  explicit EchoFilter(std::vector<std::string>& log) : log_(log) {}
  FilterStatus decodeHeaders(RequestHeaders& headers, bool end_stream) override {
    log_.push_back("echo:decodeHeaders" + std::string(end_stream ? ":end" : ""));
    seen_by_ = headers.getJoined("x-seen-by");
    if (end_stream) {
      respond();
    }
    return FilterStatus::StopIteration;
  }
  FilterStatus decodeData(Buffer& data, bool end_stream) override {
    log_.push_back("echo:decodeData:" + data.toString() + (end_stream ? ":end" : ""));
    body_ += data.toString();
    data.clear();
    if (end_stream) {
      respond();
    }
    return FilterStatus::StopIteration;
  }
  void respond() {
    auto h = std::make_unique<ResponseHeaders>(200);
    h->add("x-seen-by", seen_by_);
    decoder_callbacks_->encodeHeaders(std::move(h), false);
    Buffer b(body_.empty() ? "empty" : body_);
    decoder_callbacks_->encodeData(b, true);
  }
  void onDestroy() override { log_.push_back("echo:destroy"); }

private:
  std::vector<std::string>& log_;
  std::string body_;
  std::string seen_by_;
};

struct Chain {
  std::vector<std::string> log;
  std::vector<LoggingFilter*> filters;
  std::vector<FilterFactoryCb> factories(int n) {
    std::vector<FilterFactoryCb> out;
    for (int i = 0; i < n; ++i) {
      out.push_back([this, i]() {
        auto f = std::make_unique<LoggingFilter>("f" + std::to_string(i), log);
        filters.push_back(f.get());
        return f;
      });
    }
    out.push_back([this]() { return std::make_unique<EchoFilter>(log); });
    return out;
  }
};

TEST(FilterChain, DecodesInOrderAndEncodesInReverse) {
  Chain c;
  FilterHarness h(c.factories(2));
  h.sendHeaders(FilterHarness::request("GET", "/"), true);
  EXPECT_EQ(c.log, (std::vector<std::string>{
                       "f0:decodeHeaders:end", "f1:decodeHeaders:end", "echo:decodeHeaders:end",
                       "f1:encodeHeaders:200", "f0:encodeHeaders:200", "f1:encodeData:empty:end",
                       "f0:encodeData:empty:end", "f0:complete", "f1:complete", "f0:destroy",
                       "f1:destroy", "echo:destroy"}));
  EXPECT_EQ(h.response.status, 200);
  EXPECT_EQ(h.response.headers.getOr("x-seen-by"), "f0, f1");
  EXPECT_EQ(h.response.headers.getJoined("x-encoded-by"), "f1, f0");
  EXPECT_TRUE(h.response.complete);
  EXPECT_TRUE(h.stream_done);
}

TEST(FilterChain, FiltersNeverSeeTrailerFieldsThatBelongInTheHead) {
  Chain c;
  FilterHarness h(c.factories(1));
  h.sendHeaders(FilterHarness::request("POST", "/"), false);
  h.sendData("x", false);
  auto trailers = std::make_unique<HeaderMap>();
  trailers->add("host", "evil.example");
  trailers->add("x-checksum", "abc");
  trailers->add("authorization", "Bearer x");
  h.sendTrailers(std::move(trailers));
  EXPECT_NE(std::find(c.log.begin(), c.log.end(), "f0:decodeTrailers:x-checksum"), c.log.end())
      << ::testing::PrintToString(c.log);
}

TEST(FilterChain, StopIterationHoldsHeadersAndBodyUntilContinue) {
  Chain c;
  FilterHarness h2({[&c]() {
                      auto f = std::make_unique<LoggingFilter>("stopper", c.log);
                      f->stop_headers = true;
                      c.filters.push_back(f.get());
                      return f;
                    },
                    [&c]() { return std::make_unique<LoggingFilter>("after", c.log); },
                    [&c]() { return std::make_unique<EchoFilter>(c.log); }});
  c.log.clear();
  h2.sendHeaders(FilterHarness::request("POST", "/"), false);
  h2.sendData("abc", false);
  h2.sendData("def", true);
  EXPECT_EQ(c.log, (std::vector<std::string>{"stopper:decodeHeaders"}));
  EXPECT_EQ(h2.response.status, 0);

  c.filters.back()->decoder()->continueDecoding();
  h2.runPending();
  EXPECT_EQ(c.log,
            (std::vector<std::string>{
                "stopper:decodeHeaders", "after:decodeHeaders", "echo:decodeHeaders",
                "after:decodeData:abcdef:end", "echo:decodeData:abcdef:end",
                "after:encodeHeaders:200", "stopper:encodeHeaders:200",
                "after:encodeData:abcdef:end", "stopper:encodeData:abcdef:end", "stopper:complete",
                "after:complete", "stopper:destroy", "after:destroy", "echo:destroy"}));
  EXPECT_EQ(h2.response.body, "abcdef");
}

class ReplyingFilter : public StreamFilter {
public:
  FilterStatus decodeHeaders(RequestHeaders&, bool) override {
    decoder_callbacks_->sendLocalReply(429, "slow down\n",
                                       [](ResponseHeaders& h) { h.add("retry-after", "1"); });
    return FilterStatus::StopIteration;
  }
};

TEST(FilterChain, LocalReplyPassesEarlierEncodersOnly) {
  Chain c;
  FilterHarness h({[&c]() { return std::make_unique<LoggingFilter>("before", c.log); },
                   []() { return std::make_unique<ReplyingFilter>(); },
                   [&c]() { return std::make_unique<LoggingFilter>("after", c.log); },
                   [&c]() { return std::make_unique<EchoFilter>(c.log); }});
  h.sendHeaders(FilterHarness::request("GET", "/"), true);
  EXPECT_EQ(h.response.status, 429);
  EXPECT_EQ(h.response.body, "slow down\n");
  EXPECT_EQ(h.response.headers.getOr("retry-after"), "1");
  EXPECT_EQ(h.response.headers.getOr("content-type"), "text/plain; charset=utf-8");
  EXPECT_EQ(h.response.headers.getOr("x-encoded-by"), "before");
  // The filters after the replying one never saw the request.
  for (const auto& e : c.log) {
    EXPECT_EQ(e.find("after:decode"), std::string::npos) << e;
    EXPECT_EQ(e.find("echo:decode"), std::string::npos) << e;
  }
  EXPECT_TRUE(h.info().hasFlag(ResponseFlag::LocalReply));
}

TEST(FilterChain, ClientResetDestroysEveryFilterOnce) {
  Chain c;
  FilterHarness h(c.factories(1));
  h.sendHeaders(FilterHarness::request("POST", "/"), false);
  h.clientReset();
  int destroys = 0;
  for (const auto& e : c.log) {
    destroys += e.find(":destroy") != std::string::npos;
  }
  EXPECT_EQ(destroys, 2);
  EXPECT_TRUE(h.info().hasFlag(ResponseFlag::DownstreamReset));
  EXPECT_TRUE(h.stream_done);
}

TEST(FilterChain, BufferedBodyOverLimitPausesTheClient) {
  std::vector<std::string> log;
  HttpSettings settings;
  settings.limits.buffer_limit = 8;
  LoggingFilter* stopper = nullptr;
  FilterHarness h({[&]() {
                     auto f = std::make_unique<LoggingFilter>("stopper", log);
                     f->stop_headers = true;
                     stopper = f.get();
                     return f;
                   },
                   [&]() { return std::make_unique<EchoFilter>(log); }},
                  settings);
  h.sendHeaders(FilterHarness::request("POST", "/"), false);
  h.sendData("0123456789", false);
  EXPECT_EQ(h.response.read_disabled, 1);
  stopper->decoder()->continueDecoding();
  EXPECT_EQ(h.response.read_disabled, 0);
}

class SlowTerminal : public StreamFilter {
public:
  FilterStatus decodeHeaders(RequestHeaders&, bool) override { return FilterStatus::StopIteration; }
  void onDestroy() override { destroyed = true; }
  bool destroyed{false};
};

TEST(FilterChain, ExpectContinueSentWhenRequestReachesTerminal) {
  FilterHarness h({[]() { return std::make_unique<SlowTerminal>(); }});
  h.sendHeaders(FilterHarness::request("POST", "/", {{"expect", "100-continue"}}), false);
  EXPECT_EQ(h.response.informational, std::vector<int>{100});
}

// A terminal that sends the 100 only when it wants the body (as the ASGI filter does).
class OnDemandTerminal : public StreamFilter {
public:
  FilterStatus decodeHeaders(RequestHeaders&, bool) override {
    decoder_callbacks_->holdContinue();
    return FilterStatus::StopIteration;
  }
  DecoderFilterCallbacks* decoder() { return decoder_callbacks_; }
};

// A POST with Expect: 100-continue sent through an OnDemandTerminal (`terminal`).
struct HeldContinue {
  HeldContinue()
      : h({[this]() {
          auto t = std::make_unique<OnDemandTerminal>();
          terminal = t.get();
          return t;
        }}) {
    h.sendHeaders(FilterHarness::request("POST", "/", {{"expect", "100-continue"}}), false);
  }
  OnDemandTerminal* terminal{nullptr};
  FilterHarness h;
};

TEST(FilterChain, AHeldContinueGoesOutWhenTheTerminalWantsTheBody) {
  HeldContinue held;
  auto& [terminal, h] = held;
  EXPECT_TRUE(h.response.informational.empty());
  terminal->decoder()->sendContinue();
  terminal->decoder()->sendContinue();
  EXPECT_EQ(h.response.informational, std::vector<int>{100}) << "once";
}

TEST(FilterChain, AnAnswerBeforeAHeldContinueClosesTheConnection) {
  HeldContinue held;
  auto& [terminal, h] = held;
  terminal->decoder()->sendLocalReply(401, "no\n");
  EXPECT_EQ(h.response.status, 401);
  EXPECT_TRUE(h.response.informational.empty());
  EXPECT_EQ(h.response.headers.getOr("connection"), "close");
}

TEST(FilterChain, ProtocolErrorAnswersWithoutRunningFilters) {
  Chain c;
  FilterHarness h(c.factories(1));
  h.protocolError(431);
  EXPECT_EQ(h.response.status, 431);
  EXPECT_EQ(h.response.headers.getOr("connection"), "close");
  EXPECT_TRUE(h.info().hasFlag(ResponseFlag::ProtocolError));
  for (const auto& e : c.log) {
    EXPECT_EQ(e.find("decode"), std::string::npos) << e;
    EXPECT_EQ(e.find("encode"), std::string::npos) << e;
  }
  // ... but every filter still learns the stream completed (access logs, metrics).
  EXPECT_NE(std::find(c.log.begin(), c.log.end(), "f0:complete"), c.log.end());
}

TEST(FilterChain, RequestTimeoutAnswers504AndDestroysTheTerminal) {
  SlowTerminal* terminal = nullptr;
  HttpSettings settings;
  settings.request_timeout = std::chrono::milliseconds(20);
  FilterHarness h({[&]() {
                    auto t = std::make_unique<SlowTerminal>();
                    terminal = t.get();
                    return t;
                  }},
                  settings);
  h.sendHeaders(FilterHarness::request("GET", "/"), true);
  EXPECT_EQ(h.response.status, 0);
  // The harness dispatcher runs real libevent timers.
  for (int i = 0; i < 100 && h.response.status == 0; ++i) {
    usleep(2000);
    h.runPending();
  }
  EXPECT_EQ(h.response.status, 504);
  EXPECT_TRUE(terminal->destroyed);
  EXPECT_TRUE(h.info().hasFlag(ResponseFlag::RequestTimeout));
}

TEST(FilterChain, RequestTimeoutRunsFromTheLatestBodyBytes) {
  // A long upload is not a slow answer: the timeout counts from the body's latest bytes.
  HttpSettings settings;
  settings.request_timeout = std::chrono::seconds(10);
  FilterHarness h({[]() { return std::make_unique<SlowTerminal>(); }}, settings);
  h.sendHeaders(FilterHarness::request("POST", "/"), false);
  for (int i = 0; i < 5; ++i) {
    h.time.advance(std::chrono::seconds(8));
    h.sendData("chunk", false);
    h.checkRequestTimeout();
    EXPECT_EQ(h.response.status, 0) << "40 s of upload, 8 s between chunks";
  }
  h.sendData("", true);
  h.time.advance(std::chrono::seconds(9));
  h.checkRequestTimeout();
  EXPECT_EQ(h.response.status, 0);
  h.time.advance(std::chrono::seconds(2));
  h.checkRequestTimeout();
  EXPECT_EQ(h.response.status, 504) << "10 s after the last bytes";
}

TEST(FilterChain, ABodyThatStopsComingGets408AndClose) {
  HttpSettings settings;
  settings.request_timeout = std::chrono::seconds(10);
  FilterHarness h({[]() { return std::make_unique<SlowTerminal>(); }}, settings);
  h.sendHeaders(FilterHarness::request("POST", "/"), false);
  h.sendData("part", false);
  h.time.advance(std::chrono::seconds(11));
  h.checkRequestTimeout();
  EXPECT_EQ(h.response.status, 408);
  EXPECT_EQ(h.response.headers.getOr("connection"), "close");
  EXPECT_TRUE(h.info().hasFlag(ResponseFlag::RequestTimeout));
}

// Final filters that each handle a few events; the stream calls only those.
class HoldsHeaders final : public StreamFilter {
public:
  explicit HoldsHeaders(std::vector<std::string>& log) : log_(log) {}
  FilterStatus decodeHeaders(RequestHeaders&, bool) override {
    log_.push_back("hold:decodeHeaders");
    return FilterStatus::StopIteration;
  }
  DecoderFilterCallbacks* decoder() { return decoder_callbacks_; }

private:
  std::vector<std::string>& log_;
};

class CountsResponseBytes final : public StreamFilter {
public:
  explicit CountsResponseBytes(std::vector<std::string>& log) : log_(log) {}
  FilterStatus encodeData(Buffer& data, bool end_stream) override {
    log_.push_back("count:encodeData:" + std::to_string(data.length()) +
                   (end_stream ? ":end" : ""));
    return FilterStatus::Continue;
  }
  void onStreamComplete() override { log_.push_back("count:complete"); }

private:
  std::vector<std::string>& log_;
};

// Overrides through a base: a non-final base means every event, a final leaf the union.
class LogsCompletion : public StreamFilter {
public:
  void onStreamComplete() override {}
};
class LogsCompletionAndDrain final : public LogsCompletion {
public:
  void onDrainStarted() override {}
};

TEST(FilterEvents, AFinalFilterHandlesExactlyTheEventsItOverrides) {
  static_assert(filterEventsOf<HoldsHeaders>() == FilterEvent::DecodeHeaders);
  static_assert(filterEventsOf<CountsResponseBytes>() ==
                (FilterEvent::EncodeData | FilterEvent::StreamComplete));
  static_assert(filterEventsOf<LogsCompletion>() == FilterEvent::All);
  static_assert(filterEventsOf<LogsCompletionAndDrain>() ==
                (FilterEvent::StreamComplete | FilterEvent::DrainStarted));
  static_assert(filterEventsOf<LoggingFilter>() == FilterEvent::All);

  std::vector<std::string> log;
  const FilterFactoryCb exact([&log]() { return std::make_unique<HoldsHeaders>(log); });
  EXPECT_EQ(exact.events(), FilterEvent::DecodeHeaders);
  // A factory that hides the filter's type cannot know: every event is delivered.
  const FilterFactoryCb erased(
      [&log]() -> StreamFilterPtr { return std::make_unique<HoldsHeaders>(log); });
  EXPECT_EQ(erased.events(), FilterEvent::All);
  EXPECT_FALSE(FilterFactoryCb());
  EXPECT_TRUE(exact);
}

// Counts its constructions and destructions; an odd size, to test the slots' rounding.
class Tally final : public StreamFilter {
public:
  Tally(std::vector<std::string>& log, int& alive, std::string name)
      : log_(log), alive_(alive), name_(std::move(name)) {
    ++alive_;
  }
  ~Tally() override { --alive_; }
  FilterStatus decodeHeaders(RequestHeaders& headers, bool) override {
    const bool aligned = reinterpret_cast<uintptr_t>(this) % FilterFactoryCb::kInPlaceAlign == 0;
    log_.push_back(name_ + (aligned ? ":aligned" : ":misaligned"));
    headers.add("x-seen-by", name_);
    return FilterStatus::Continue;
  }

private:
  std::vector<std::string>& log_;
  int& alive_;
  std::string name_;
  char odd_[13]{};
};

TEST(FilterEvents, InPlaceFiltersLiveInTheStreamsBlockBesideHeapOnes) {
  std::vector<std::string> log;
  int alive = 0;
  auto in_place = [&](std::string name) {
    return FilterFactoryCb::inPlace<Tally>(
        [&log, &alive, name](void* at) { return new (at) Tally(log, alive, name); });
  };
  const FilterFactoryCb probe = in_place("probe");
  EXPECT_EQ(probe.inPlaceBytes() % FilterFactoryCb::kInPlaceAlign, 0u);
  EXPECT_GE(probe.inPlaceBytes(), sizeof(Tally));
  EXPECT_EQ(probe.events(), FilterEvent::DecodeHeaders);
  {
    StreamFilterPtr alone = probe(); // outside a stream: on the heap
    EXPECT_EQ(alive, 1);
  }
  EXPECT_EQ(alive, 0);
  {
    FilterHarness h({in_place("a"), [&]() { return std::make_unique<Tally>(log, alive, "heap"); },
                     in_place("b"), in_place("c"),
                     [&log]() { return std::make_unique<EchoFilter>(log); }});
    h.sendHeaders(FilterHarness::request("GET", "/"), true);
    EXPECT_EQ(h.response.status, 200);
    EXPECT_EQ(h.response.headers.getOr("x-seen-by"), "a, heap, b, c");
    EXPECT_EQ(std::count(log.begin(), log.end(), "a:aligned") +
                  std::count(log.begin(), log.end(), "b:aligned") +
                  std::count(log.begin(), log.end(), "c:aligned"),
              3);
    h.runPending();
    EXPECT_TRUE(h.stream_done);
  }
  EXPECT_EQ(alive, 0); // each filter destroyed once, in place or not
}

// A chain lays out how each filter is made: in-place ones by their factory's construct
// function at consecutive offsets of the stream's area, heap ones by their factory.
TEST(FilterEvents, AChainsSlotsPlaceInPlaceFiltersBackToBack) {
  std::vector<std::string> log;
  int alive = 0;
  auto in_place = [&](std::string name) {
    return FilterFactoryCb::inPlace<Tally>(
        [&log, &alive, name](void* at) { return new (at) Tally(log, alive, name); });
  };
  std::vector<FilterChainEntry> entries;
  entries.push_back({"a", in_place("a")});
  entries.push_back({"heap", [&]() { return std::make_unique<Tally>(log, alive, "heap"); }});
  entries.push_back({"b", in_place("b")});
  const FilterChain chain(std::move(entries), 1);
  const FilterChain::Slot* slots = chain.slots();
  const size_t bytes = chain.entries()[0].factory.inPlaceBytes();
  EXPECT_EQ(slots[0].offset, 0u);
  EXPECT_EQ(slots[0].events, FilterEvent::DecodeHeaders);
  EXPECT_EQ(slots[1].construct, nullptr);
  EXPECT_EQ(slots[1].factory, &chain.entries()[1].factory);
  EXPECT_EQ(slots[2].offset, bytes);
  EXPECT_EQ(chain.inPlaceBytes(), 2 * bytes);

  // Made from its slot exactly as the factory would make it, and destroyed in place.
  alignas(FilterFactoryCb::kInPlaceAlign) char area[2 * sizeof(Tally) + 64];
  ASSERT_LE(chain.inPlaceBytes(), sizeof(area));
  StreamFilter* b = slots[2].construct(slots[2].state, area + slots[2].offset);
  EXPECT_EQ(static_cast<void*>(b), area + slots[2].offset);
  EXPECT_EQ(alive, 1);
  RequestHeaders headers;
  b->decodeHeaders(headers, true);
  EXPECT_EQ(headers.getOr("x-seen-by"), "b");
  b->~StreamFilter();
  EXPECT_EQ(alive, 0);
}

TEST(FilterEvents, SkippedEventsKeepBufferingAndResumeExact) {
  std::vector<std::string> log;
  HoldsHeaders* hold = nullptr;
  FilterHarness h({[&]() { return std::make_unique<CountsResponseBytes>(log); },
                   [&]() {
                     auto f = std::make_unique<HoldsHeaders>(log);
                     hold = f.get();
                     return f;
                   },
                   [&]() { return std::make_unique<CountsResponseBytes>(log); },
                   [&]() { return std::make_unique<EchoFilter>(log); }});
  h.sendHeaders(FilterHarness::request("POST", "/"), false);
  h.sendData("abc", false);
  h.sendData("defg", true);
  // The holder takes no body events, but the body still waits for it.
  EXPECT_EQ(log, (std::vector<std::string>{"hold:decodeHeaders"}));
  hold->decoder()->continueDecoding();
  h.runPending();
  EXPECT_EQ(log, (std::vector<std::string>{"hold:decodeHeaders", "echo:decodeHeaders",
                                           "echo:decodeData:abcdefg:end", "count:encodeData:7:end",
                                           "count:encodeData:7:end", "count:complete",
                                           "count:complete", "echo:destroy"}));
  EXPECT_EQ(h.response.status, 200);
  EXPECT_EQ(h.response.body, "abcdefg");
  EXPECT_TRUE(h.stream_done);
}

// Holds the response head (and so the body behind it) until told to go on; takes no data.
class HoldsResponse final : public StreamFilter {
public:
  explicit HoldsResponse(std::vector<std::string>& log) : log_(log) {}
  FilterStatus encodeHeaders(ResponseHeaders& headers, bool) override {
    log_.push_back("holdResponse:encodeHeaders:" + std::to_string(headers.status()));
    return FilterStatus::StopIteration;
  }
  EncoderFilterCallbacks* encoder() { return encoder_callbacks_; }

private:
  std::vector<std::string>& log_;
};

TEST(FilterEvents, ResponseBodyWaitsAtAHolderThatTakesNoData) {
  std::vector<std::string> log;
  HoldsResponse* hold = nullptr;
  FilterHarness h({[&]() { return std::make_unique<CountsResponseBytes>(log); },
                   [&]() {
                     auto f = std::make_unique<HoldsResponse>(log);
                     hold = f.get();
                     return f;
                   },
                   [&]() { return std::make_unique<CountsResponseBytes>(log); },
                   [&]() { return std::make_unique<CountsResponseBytes>(log); },
                   [&]() { return std::make_unique<EchoFilter>(log); }});
  h.sendHeaders(FilterHarness::request("POST", "/"), false);
  h.sendData("abcdefg", true);
  // The body passes the two counters after the holder, then waits at it: the first counter
  // (the next filter that takes data) must not see it before the head.
  EXPECT_EQ(log, (std::vector<std::string>{"echo:decodeHeaders", "echo:decodeData:abcdefg:end",
                                           "holdResponse:encodeHeaders:200",
                                           "count:encodeData:7:end", "count:encodeData:7:end"}));
  EXPECT_EQ(h.response.status, 0);
  log.clear();
  ASSERT_NE(hold, nullptr);
  hold->encoder()->continueEncoding();
  h.runPending();
  EXPECT_EQ(log, (std::vector<std::string>{"count:encodeData:7:end", "count:complete",
                                           "count:complete", "count:complete", "echo:destroy"}));
  EXPECT_EQ(h.response.status, 200);
  EXPECT_EQ(h.response.body, "abcdefg");
  EXPECT_TRUE(h.stream_done);
}

TEST(FilterEvents, TheChainKnowsTheNextAndLastHandlerOfEachEvent) {
  std::vector<std::string> log;
  auto counts = [&]() { return std::make_unique<CountsResponseBytes>(log); };
  auto holds = [&]() { return std::make_unique<HoldsHeaders>(log); };
  std::vector<FilterChainEntry> entries;
  for (const FilterFactoryCb& f : std::vector<FilterFactoryCb>{
           holds, counts, holds, holds, counts, [&]() -> StreamFilterPtr { return counts(); }}) {
    entries.push_back(FilterChainEntry{"f", f, false});
  }
  const FilterChain chain(std::move(entries), 1);
  // DecodeHeaders: filters 0, 2, 3 and 5 (the last hides its type: every event).
  const size_t next_headers[] = {0, 2, 2, 3, 5, 5, 6};
  const int last_headers[] = {0, 0, 2, 3, 3, 5};
  // EncodeData: filters 1, 4 and 5.
  const size_t next_data[] = {1, 1, 4, 4, 4, 5, 6};
  const int last_data[] = {-1, 1, 1, 1, 4, 5};
  for (size_t i = 0; i <= 6; ++i) {
    EXPECT_EQ(chain.nextHandler(FilterEvent::DecodeHeaders, i), next_headers[i]) << i;
    EXPECT_EQ(chain.nextHandler(FilterEvent::EncodeData, i), next_data[i]) << i;
    EXPECT_EQ(chain.nextHandler(FilterEvent::DrainStarted, i), i <= 5 ? 5u : 6u) << i;
  }
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(chain.prevHandler(FilterEvent::DecodeHeaders, i), last_headers[i]) << i;
    EXPECT_EQ(chain.prevHandler(FilterEvent::EncodeData, i), last_data[i]) << i;
    EXPECT_EQ(chain.prevHandler(FilterEvent::DrainStarted, i), i == 5 ? 5 : -1) << i;
  }
  const FilterChain empty({}, 2);
  EXPECT_EQ(empty.nextHandler(FilterEvent::Destroy, 0), 0u);
}

} // namespace
} // namespace pounce::http

namespace pounce::http {
namespace {

// Filter objects of any size are created and destroyed through StreamFilter's per-thread
// block cache: the object is intact while alive, and (without sanitizers, which bypass the
// cache) a freed block is what the next filter of its size class gets.
template <size_t N>
class SizedFilter : public StreamFilter {
public:
  explicit SizedFilter(char fill) { std::fill(std::begin(bytes_), std::end(bytes_), fill); }
  bool intact(char fill) const {
    return std::all_of(std::begin(bytes_), std::end(bytes_), [&](char c) { return c == fill; });
  }

private:
  char bytes_[N];
};

TEST(FilterMemoryTest, BlocksAreReusedWithinASizeClassAndLargeFiltersStillWork) {
  auto small = std::make_unique<SizedFilter<40>>('a');   // 64 bytes with the base
  auto large = std::make_unique<SizedFilter<4000>>('b'); // beyond the cached classes
  auto other = std::make_unique<SizedFilter<200>>('c');
  EXPECT_TRUE(small->intact('a'));
  EXPECT_TRUE(large->intact('b'));
  EXPECT_TRUE(other->intact('c'));
  const void* small_at = small.get();
  StreamFilterPtr erased = std::move(small); // freed through the base: the sized delete
  erased.reset();
  large.reset();
  auto again = std::make_unique<SizedFilter<32>>('d'); // 56 bytes: the 64-byte class, as 64
  static_assert(sizeof(SizedFilter<40>) == 64 && sizeof(SizedFilter<32>) == 56);
  EXPECT_TRUE(again->intact('d'));
  EXPECT_TRUE(other->intact('c'));
#ifndef POUNCE_SANITIZED
  EXPECT_EQ(static_cast<const void*>(again.get()), small_at);
#else
  (void)small_at;
#endif
}

// A filter freed on a thread that never allocated one goes back to the allocator.
TEST(FilterMemoryTest, FreedOnAnotherThread) {
  auto filter = std::make_unique<SizedFilter<100>>('e');
  std::thread([f = std::move(filter)]() mutable {
    EXPECT_TRUE(f->intact('e'));
    f.reset();
  }).join();
}

} // namespace
} // namespace pounce::http
