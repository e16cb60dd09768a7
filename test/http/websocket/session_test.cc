// Session tests, grouped after the Autobahn TestSuite's case categories: 1 framing,
// 2 pings/pongs, 3 reserved bits, 4 opcodes, 5 fragmentation, 6 UTF-8 handling, 7 close
// handling, 9 limits, 12/13 compression; plus keepalive, sending and flow control.
#include <gtest/gtest.h>
#include <zlib.h>

#include <memory>
#include <string>
#include <vector>

#include "source/http/websocket/session.h"
#include "test/http/websocket/test_util.h"
#include "test/test_common/simulated_time.h"

namespace pounce::http::websocket::test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class SessionTest : public ::testing::Test {
protected:
  void SetUp() override { make(); }

  void make(std::optional<DeflateParams> deflate = std::nullopt) {
    recorder_ = Recorder();
    session_ = std::make_unique<Session>(config_, recorder_, time_, deflate);
    recorder_.session = session_.get();
  }

  // Feeds bytes in one piece; the session must use all of them.
  void feed(std::string_view bytes) {
    Buffer b(bytes);
    session_->onBytes(b);
    EXPECT_TRUE(b.empty());
  }

  // Everything the session wrote so far, as frames (and cleared).
  std::vector<ServerFrame> sent() {
    std::string rest;
    auto frames = parseFrames(session_->output().toString(), &rest);
    EXPECT_TRUE(rest.empty()) << "partial frame in output";
    session_->output().clear();
    for (const auto& f : frames) {
      EXPECT_FALSE(f.masked) << "server frames are never masked";
    }
    return frames;
  }

  // The session failed the connection with `code`: one close frame with it went out, the
  // session is closed, and the owner was told.
  void expectFailedWith(uint16_t code) {
    EXPECT_TRUE(session_->isClosed());
    EXPECT_EQ(recorder_.close_count, 1);
    EXPECT_EQ(recorder_.close_code, code);
    EXPECT_EQ(recorder_.close_cause, CloseCause::ProtocolError);
    auto frames = sent();
    ASSERT_FALSE(frames.empty());
    EXPECT_EQ(frames.back().opcode, 0x8);
    EXPECT_EQ(frames.back().closeCode(), code);
  }

  // Feeds `input` split in two at every position, and byte by byte; each time the events
  // and output must equal those of feeding it whole.
  void expectSplitInvariant(const std::string& input) {
    make(deflate_);
    feed(input);
    const auto events = recorder_.events;
    const std::string output = session_->output().toString();
    for (size_t i = 0; i <= input.size(); ++i) {
      make(deflate_);
      feed(input.substr(0, i));
      feed(input.substr(i));
      ASSERT_EQ(recorder_.events, events) << "split at " << i;
      ASSERT_EQ(session_->output().toString(), output) << "split at " << i;
    }
    make(deflate_);
    for (char c : input) {
      feed(std::string(1, c));
    }
    EXPECT_EQ(recorder_.events, events) << "byte by byte";
    EXPECT_EQ(session_->output().toString(), output) << "byte by byte";
  }

  SessionConfig config_;
  std::optional<DeflateParams> deflate_;
  pounce::test::SimulatedTimeSource time_;
  Recorder recorder_;
  std::unique_ptr<Session> session_;
};

// === 1. Framing ============================================================================

using Framing = SessionTest;

TEST_F(Framing, TextAndBinaryOfEveryLengthEncoding) {
  for (size_t len : {0u, 1u, 125u, 126u, 127u, 128u, 65535u, 65536u, 300000u}) {
    make();
    const std::string payload(len, 'x');
    feed(textFrame(payload));
    feed(binaryFrame(payload));
    ASSERT_EQ(recorder_.messages.size(), 2u) << len;
    EXPECT_EQ(recorder_.messages[0], payload);
    EXPECT_EQ(recorder_.messages[1], payload);
    EXPECT_EQ(recorder_.events[0].substr(0, 5), "text:");
    EXPECT_EQ(recorder_.events[1].substr(0, 7), "binary:");
    EXPECT_TRUE(session_->isOpen());
    EXPECT_TRUE(sent().empty());
  }
}

TEST_F(Framing, BinaryPayloadWithEveryByteValue) {
  std::string payload;
  for (int i = 0; i < 256; ++i) {
    payload.push_back(static_cast<char>(i));
  }
  feed(binaryFrame(payload));
  ASSERT_EQ(recorder_.messages.size(), 1u);
  EXPECT_EQ(recorder_.messages[0], payload);
}

TEST_F(Framing, SplitAtEveryByteBoundary) {
  const std::string input = textFrame("Hello, κόσμε!") + binaryFrame(std::string(130, 'b')) +
                            clientFrame(0x9, "ping") + textFrame("frag-", false) +
                            clientFrame(0xA, "pong") + continuationFrame("ment") +
                            closeFrame(1000, "bye");
  expectSplitInvariant(input);
  EXPECT_EQ(recorder_.events,
            (std::vector<std::string>{"text:Hello, κόσμε!", "binary:130 bytes", "ping:ping",
                                      "pong:pong", "text:frag-ment", "close:1000:bye:PeerClosed"}));
}

TEST_F(Framing, LargeFrameWith64BitLengthSplitInChunks) {
  const std::string payload(70000, 'z');
  const std::string frame = binaryFrame(payload);
  for (size_t step : {1000u, 4096u, 65536u}) {
    make();
    for (size_t pos = 0; pos < frame.size(); pos += step) {
      feed(frame.substr(pos, step));
    }
    ASSERT_EQ(recorder_.messages.size(), 1u);
    EXPECT_EQ(recorder_.messages[0], payload);
  }
}

TEST_F(Framing, UnmaskedClientFrameIs1002) {
  feed(clientFrame(0x1, "hello", true, 0, /*masked=*/false));
  expectFailedWith(1002);
  EXPECT_TRUE(recorder_.messages.empty());
}

TEST_F(Framing, EveryMaskKeyUnmasksCorrectly) {
  const std::string payload = "mask me, every byte of me, all 37 bytes";
  for (int k = 0; k < 256; k += 17) {
    const uint8_t key[4] = {static_cast<uint8_t>(k), static_cast<uint8_t>(255 - k),
                            static_cast<uint8_t>(k * 3), static_cast<uint8_t>(k ^ 0x5a)};
    feed(clientFrame(0x2, payload, true, 0, true, key));
  }
  for (const std::string& m : recorder_.messages) {
    EXPECT_EQ(m, payload);
  }
  EXPECT_EQ(recorder_.messages.size(), 16u);
}

TEST_F(Framing, LengthWithTheTopBitSetIs1002) {
  std::string frame = "\x82\xff";
  frame += std::string("\x80\x00\x00\x00\x00\x00\x00\x01", 8);
  frame += "abcd";
  feed(frame);
  expectFailedWith(1002);
}

TEST_F(Framing, NonMinimalLengthEncodingIsAccepted) {
  // RFC 6455 asks senders for the shortest form; receivers here are lenient about it.
  std::string frame = "\x81\xfe";
  frame += std::string("\x00\x03", 2);
  frame += std::string("\x00\x00\x00\x00", 4);
  frame += "abc";
  feed(frame);
  ASSERT_EQ(recorder_.messages.size(), 1u);
  EXPECT_EQ(recorder_.messages[0], "abc");
}

// === 2. Pings and pongs ====================================================================

using PingsAndPongs = SessionTest;

TEST_F(PingsAndPongs, PingIsAnsweredWithTheSamePayload) {
  feed(clientFrame(0x9, ""));
  feed(clientFrame(0x9, "hello"));
  std::string binary = "\x00\xff\xfe\xfd\xfc\xfb\x00\xff";
  binary.push_back('\0');
  feed(clientFrame(0x9, binary));
  const std::string max(125, '*');
  feed(clientFrame(0x9, max));
  auto frames = sent();
  ASSERT_EQ(frames.size(), 4u);
  for (const auto& f : frames) {
    EXPECT_EQ(f.opcode, 0xA);
    EXPECT_TRUE(f.fin);
  }
  EXPECT_EQ(frames[0].payload, "");
  EXPECT_EQ(frames[1].payload, "hello");
  EXPECT_EQ(frames[2].payload, binary);
  EXPECT_EQ(frames[3].payload, max);
  EXPECT_EQ(recorder_.events[1], "ping:hello");
}

TEST_F(PingsAndPongs, PingOver125BytesIs1002) {
  feed(clientFrame(0x9, std::string(126, '*')));
  expectFailedWith(1002);
}

TEST_F(PingsAndPongs, PingArrivingByteByByteIsAnswered) {
  const std::string frame = clientFrame(0x9, std::string(125, 'p'));
  for (char c : frame) {
    feed(std::string(1, c));
  }
  auto frames = sent();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].payload, std::string(125, 'p'));
}

TEST_F(PingsAndPongs, UnsolicitedPongIsReportedAndNotAnswered) {
  feed(clientFrame(0xA, ""));
  feed(clientFrame(0xA, "unsolicited"));
  EXPECT_TRUE(sent().empty());
  EXPECT_EQ(recorder_.events, (std::vector<std::string>{"pong:", "pong:unsolicited"}));
  EXPECT_TRUE(session_->isOpen());
}

TEST_F(PingsAndPongs, UnsolicitedPongThenPing) {
  feed(clientFrame(0xA, "p") + clientFrame(0x9, "q"));
  auto frames = sent();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].opcode, 0xA);
  EXPECT_EQ(frames[0].payload, "q");
}

TEST_F(PingsAndPongs, TenPingsInOneReadGetTenPongs) {
  std::string input;
  for (int i = 0; i < 10; ++i) {
    input += clientFrame(0x9, "ping-" + std::to_string(i));
  }
  feed(input);
  auto frames = sent();
  ASSERT_EQ(frames.size(), 10u);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(frames[i].payload, "ping-" + std::to_string(i));
  }
}

TEST_F(PingsAndPongs, AutoPongCanBeTurnedOff) {
  config_.auto_pong = false;
  make();
  feed(clientFrame(0x9, "x"));
  EXPECT_TRUE(sent().empty());
  EXPECT_EQ(recorder_.events, (std::vector<std::string>{"ping:x"}));
  EXPECT_TRUE(session_->sendPong("x"));
  auto frames = sent();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].opcode, 0xA);
}

TEST_F(PingsAndPongs, SendPing) {
  EXPECT_TRUE(session_->sendPing("abc"));
  EXPECT_FALSE(session_->sendPing(std::string(126, 'x')));
  auto frames = sent();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].opcode, 0x9);
  EXPECT_EQ(frames[0].payload, "abc");
}

// === 3. Reserved bits ======================================================================

using ReservedBits = SessionTest;

TEST_F(ReservedBits, AnyReservedBitWithoutAnExtensionIs1002) {
  for (uint8_t rsv = 1; rsv <= 7; ++rsv) {
    for (uint8_t opcode : {0x1, 0x2, 0x8, 0x9, 0xA}) {
      make();
      feed(clientFrame(opcode, opcode == 0x8 ? closePayload(1000) : "x", true, rsv));
      expectFailedWith(1002);
    }
  }
}

TEST_F(ReservedBits, GoodMessageBeforeTheBadFrameIsDeliveredFirst) {
  feed(textFrame("hello") + clientFrame(0x1, "bad", true, 2) + clientFrame(0x9, "after"));
  EXPECT_EQ(recorder_.events[0], "text:hello");
  EXPECT_EQ(recorder_.events.size(), 2u) << "nothing after the bad frame";
  expectFailedWith(1002);
}

TEST_F(ReservedBits, Rsv2AndRsv3StayReservedWithCompression) {
  DeflateParams p;
  make(p);
  feed(clientFrame(0x1, "x", true, 4 | 2));
  expectFailedWith(1002);
}

// === 4. Opcodes ============================================================================

using Opcodes = SessionTest;

TEST_F(Opcodes, ReservedDataAndControlOpcodesAre1002) {
  for (uint8_t opcode : {3, 4, 5, 6, 7, 11, 12, 13, 14, 15}) {
    make();
    feed(textFrame("before") + clientFrame(opcode, "") + textFrame("after"));
    EXPECT_EQ(recorder_.messages, (std::vector<std::string>{"before"})) << int(opcode);
    expectFailedWith(1002);
  }
}

// === 5. Fragmentation ======================================================================

using Fragmentation = SessionTest;

TEST_F(Fragmentation, FragmentedControlFramesAre1002) {
  for (uint8_t opcode : {0x8, 0x9, 0xA}) {
    make();
    feed(clientFrame(opcode, "ab", /*fin=*/false));
    expectFailedWith(1002);
  }
}

TEST_F(Fragmentation, TextAndBinaryInFragments) {
  feed(textFrame("fra", false) + continuationFrame("gme", false) + continuationFrame("nts"));
  feed(binaryFrame("a", false) + continuationFrame("", false) + continuationFrame("b"));
  // Empty fragments, including an empty final one.
  feed(textFrame("", false) + continuationFrame("", false) + continuationFrame(""));
  EXPECT_EQ(recorder_.events, (std::vector<std::string>{"text:fragments", "binary:ab", "text:"}));
}

TEST_F(Fragmentation, ControlFramesBetweenFragments) {
  feed(textFrame("one ", false) + clientFrame(0x9, "p1") + continuationFrame("two ", false) +
       clientFrame(0xA, "q") + clientFrame(0x9, "p2") + continuationFrame("three"));
  EXPECT_EQ(recorder_.events,
            (std::vector<std::string>{"ping:p1", "pong:q", "ping:p2", "text:one two three"}));
  auto frames = sent();
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].payload, "p1");
  EXPECT_EQ(frames[1].payload, "p2");
}

TEST_F(Fragmentation, ManyOneByteFragments) {
  std::string input = textFrame("a", false);
  for (int i = 0; i < 998; ++i) {
    input += continuationFrame("b", false);
  }
  input += continuationFrame("c");
  feed(input);
  ASSERT_EQ(recorder_.messages.size(), 1u);
  EXPECT_EQ(recorder_.messages[0], "a" + std::string(998, 'b') + "c");
}

TEST_F(Fragmentation, ContinuationWithoutAStartIs1002) {
  feed(continuationFrame("orphan"));
  expectFailedWith(1002);
  make();
  feed(continuationFrame("orphan", false));
  expectFailedWith(1002);
  // After a complete message the next continuation is an orphan too.
  make();
  feed(textFrame("done") + continuationFrame("more"));
  EXPECT_EQ(recorder_.messages.size(), 1u);
  expectFailedWith(1002);
}

TEST_F(Fragmentation, NewMessageWhileFragmentedIs1002) {
  feed(textFrame("a", false) + textFrame("b"));
  expectFailedWith(1002);
  make();
  feed(binaryFrame("a", false) + textFrame("b", false));
  expectFailedWith(1002);
}

TEST_F(Fragmentation, SplitInvariantAcrossFragmentsAndControlFrames) {
  expectSplitInvariant(textFrame("Hello, ", false) + clientFrame(0x9, "") +
                       continuationFrame("wörld", false) + clientFrame(0xA, "x") +
                       continuationFrame("!"));
  EXPECT_EQ(recorder_.events.back(), "text:Hello, wörld!");
}

// === 6. UTF-8 handling =====================================================================

using Utf8Handling = SessionTest;

TEST_F(Utf8Handling, ValidTextInOneFrameAndFragmentedAtEveryByte) {
  const std::string text = "κόσμε Hello-µ@ßöäüàá-UTF-8!! \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF";
  feed(textFrame(text));
  for (size_t i = 0; i <= text.size(); ++i) {
    feed(textFrame(text.substr(0, i), false) + continuationFrame(text.substr(i)));
  }
  ASSERT_EQ(recorder_.messages.size(), text.size() + 2);
  for (const std::string& m : recorder_.messages) {
    EXPECT_EQ(m, text);
  }
  EXPECT_TRUE(session_->isOpen());
}

TEST_F(Utf8Handling, InvalidTextIs1007) {
  for (const std::string& bad :
       {std::string("\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5\xED\xA0\x80"
                    "edited"),
        std::string("\xC0\xAF"), std::string("\xF4\x90\x80\x80"), std::string("\xED\xBF\xBF"),
        std::string("\xFE"), std::string("ab\xE0\x80")}) {
    make();
    feed(textFrame(bad));
    expectFailedWith(1007);
    EXPECT_TRUE(recorder_.messages.empty());
  }
}

TEST_F(Utf8Handling, TextEndingInsideACharacterIs1007) {
  feed(textFrame("ab\xF0\x9F\x98"));
  expectFailedWith(1007);
}

TEST_F(Utf8Handling, InvalidInAFragmentFailsBeforeTheMessageEnds) {
  // The bad byte is in the second fragment; the message never finishes.
  feed(textFrame("valid ", false));
  EXPECT_TRUE(session_->isOpen());
  feed(continuationFrame("\xF4\x90", false));
  expectFailedWith(1007);
}

TEST_F(Utf8Handling, CharacterSplitAcrossFragmentsIsFine) {
  feed(textFrame("\xF0\x9F", false) + continuationFrame("\x98", false) + continuationFrame("\x80"));
  ASSERT_EQ(recorder_.messages.size(), 1u);
  EXPECT_EQ(recorder_.messages[0], "\xF0\x9F\x98\x80");
}

TEST_F(Utf8Handling, FailsFastInsideAFrameBeforeItsPayloadEnds) {
  // Autobahn 6.4.x: a 1 MiB text frame with an invalid sequence near its start is refused
  // as soon as the bad bytes arrive, not when the frame is complete.
  std::string payload(1 << 20, 'a');
  payload[10] = '\xF4';
  payload[11] = '\x90';
  const std::string frame = textFrame(payload);
  feed(frame.substr(0, 64));
  expectFailedWith(1007);
  // The rest of the frame is ignored.
  feed(frame.substr(64));
  EXPECT_EQ(recorder_.close_count, 1);
}

TEST_F(Utf8Handling, BinaryIsNotValidated) {
  feed(binaryFrame("\xFF\xFE\xC0\xAF"));
  ASSERT_EQ(recorder_.messages.size(), 1u);
  EXPECT_TRUE(session_->isOpen());
}

// === 7. Close handling =====================================================================

using CloseHandling = SessionTest;

TEST_F(CloseHandling, PeerCloseIsEchoedAndReported) {
  feed(closeFrame(1000, "bye"));
  EXPECT_TRUE(session_->isClosed());
  EXPECT_EQ(recorder_.events, (std::vector<std::string>{"close:1000:bye:PeerClosed"}));
  auto frames = sent();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].opcode, 0x8);
  EXPECT_EQ(frames[0].closeCode(), 1000);
  EXPECT_EQ(frames[0].closeReason(), "bye");
}

TEST_F(CloseHandling, EmptyCloseIsEchoedEmptyAndReportedAs1005) {
  feed(clientFrame(0x8, ""));
  EXPECT_EQ(recorder_.close_code, 1005);
  auto frames = sent();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].payload, "");
}

TEST_F(CloseHandling, OneBytePayloadIs1002) {
  feed(clientFrame(0x8, "\x03"));
  expectFailedWith(1002);
}

TEST_F(CloseHandling, MaximumReasonIsAcceptedAndLongerIsTooLong) {
  feed(closeFrame(1000, std::string(123, 'r')));
  EXPECT_EQ(recorder_.close_reason, std::string(123, 'r'));
  EXPECT_EQ(recorder_.close_cause, CloseCause::PeerClosed);
  make();
  feed(closeFrame(1000, std::string(124, 'r'))); // 126-byte control payload
  expectFailedWith(1002);
}

TEST_F(CloseHandling, InvalidUtf8ReasonIs1007) {
  feed(closeFrame(1000, "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5\xED\xA0\x80"));
  expectFailedWith(1007);
  // Split inside the reason across reads: still refused.
  make();
  const std::string frame = closeFrame(1000, "ok \xC0\xAF");
  feed(frame.substr(0, frame.size() - 1));
  EXPECT_TRUE(session_->isOpen());
  feed(frame.substr(frame.size() - 1));
  expectFailedWith(1007);
}

TEST_F(CloseHandling, ValidCodesAreEchoed) {
  for (uint16_t code :
       {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000,
        4999}) {
    make();
    feed(closeFrame(code));
    EXPECT_EQ(recorder_.close_code, code);
    EXPECT_EQ(recorder_.close_cause, CloseCause::PeerClosed);
    auto frames = sent();
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].closeCode(), code);
  }
}

TEST_F(CloseHandling, InvalidCodesAre1002) {
  for (uint16_t code :
       {0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535}) {
    make();
    feed(closeFrame(code));
    expectFailedWith(1002);
  }
}

TEST_F(CloseHandling, NothingAfterThePeersCloseIsProcessed) {
  feed(textFrame("before") + closeFrame(1000) + textFrame("after") + clientFrame(0x9, "p"));
  EXPECT_EQ(recorder_.messages, (std::vector<std::string>{"before"}));
  auto frames = sent();
  ASSERT_EQ(frames.size(), 1u) << "no pong after the close";
  feed(textFrame("later"));
  EXPECT_EQ(recorder_.messages.size(), 1u);
  EXPECT_FALSE(session_->sendText("x"));
}

TEST_F(CloseHandling, CloseAfterAFragmentAbandonsTheMessage) {
  feed(textFrame("partial", false) + closeFrame(1001));
  EXPECT_TRUE(recorder_.messages.empty());
  EXPECT_EQ(recorder_.close_code, 1001);
}

TEST_F(CloseHandling, ServerInitiatedCloseWaitsForThePeer) {
  EXPECT_TRUE(session_->close(4000, "app says bye"));
  EXPECT_EQ(session_->state(), Session::State::Closing);
  EXPECT_TRUE(session_->isClosing());
  EXPECT_FALSE(session_->isOpen());
  auto frames = sent();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].closeCode(), 4000);
  EXPECT_EQ(frames[0].closeReason(), "app says bye");
  // No more sending once the close went out; a second close is refused.
  EXPECT_FALSE(session_->sendText("x"));
  EXPECT_FALSE(session_->sendPing());
  EXPECT_FALSE(session_->close());
  // Messages the peer sent before it saw our close still arrive.
  feed(textFrame("in flight"));
  EXPECT_EQ(recorder_.messages, (std::vector<std::string>{"in flight"}));
  EXPECT_EQ(recorder_.close_count, 0);
  // A ping is still answered: no Close has been received (RFC 6455 §5.5.2).
  feed(clientFrame(0x9, "are you there"));
  frames = sent();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].opcode, 0xA);
  EXPECT_EQ(frames[0].payload, "are you there");
  feed(closeFrame(4000));
  EXPECT_TRUE(session_->isClosed());
  EXPECT_EQ(recorder_.close_cause, CloseCause::CloseHandshakeCompleted);
  EXPECT_EQ(recorder_.close_code, 4000);
  EXPECT_TRUE(sent().empty()) << "the peer's reply is not echoed";
}

// RFC 6455 §5.5.2: a Ping is answered unless a Close was received; having sent one is not
// enough (a Pong is a control frame, not the data frames §5.5.1 forbids after a Close).
TEST_F(CloseHandling, APingWhileOurCloseWaitsIsAnsweredButNotAfterTheirs) {
  EXPECT_TRUE(session_->close());
  sent();
  feed(clientFrame(0x9, "p"));
  auto frames = sent();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].opcode, 0xA);
  feed(closeFrame(1000));
  EXPECT_TRUE(session_->isClosed());
  feed(clientFrame(0x9, "late"));
  EXPECT_TRUE(sent().empty());
}

TEST_F(CloseHandling, CloseTimeoutIsDrivenByTheCaller) {
  config_.close_timeout = seconds(3);
  make();
  EXPECT_FALSE(session_->nextTimeout().has_value());
  const MonotonicTime start = time_.monotonicTime();
  ASSERT_TRUE(session_->close());
  ASSERT_TRUE(session_->nextTimeout().has_value());
  EXPECT_EQ(*session_->nextTimeout(), start + seconds(3));
  time_.advance(seconds(2));
  session_->onTimeout();
  EXPECT_EQ(session_->state(), Session::State::Closing);
  time_.advance(seconds(1));
  session_->onTimeout();
  EXPECT_TRUE(session_->isClosed());
  EXPECT_EQ(recorder_.close_cause, CloseCause::CloseTimeout);
  EXPECT_EQ(recorder_.close_code, 1006);
  EXPECT_FALSE(session_->nextTimeout().has_value());
}

TEST_F(CloseHandling, CloseCodeAndReasonRules) {
  EXPECT_FALSE(session_->close(1005));
  EXPECT_FALSE(session_->close(1006));
  EXPECT_FALSE(session_->close(999));
  EXPECT_FALSE(session_->close(1000, "bad \xC0\xAF"));
  EXPECT_TRUE(session_->isOpen());
  // A long reason is cut at a character boundary to fit 123 bytes.
  std::string reason(121, 'r');
  reason += "é€"; // 2 + 3 bytes: only the é fits
  EXPECT_TRUE(session_->close(1012, reason));
  auto frames = sent();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].closeCode(), 1012);
  EXPECT_EQ(frames[0].closeReason(), std::string(121, 'r') + "é");
}

TEST_F(CloseHandling, ConnectionLostIsReportedOnce) {
  session_->onConnectionLost();
  EXPECT_EQ(recorder_.close_code, 1006);
  EXPECT_EQ(recorder_.close_cause, CloseCause::ConnectionLost);
  session_->onConnectionLost();
  feed(closeFrame(1000));
  EXPECT_EQ(recorder_.close_count, 1);
}

TEST_F(CloseHandling, ProtocolErrorWhileClosingSendsNoSecondClose) {
  ASSERT_TRUE(session_->close());
  sent();
  feed(clientFrame(0x1, "x", true, 0, false));
  EXPECT_TRUE(session_->isClosed());
  EXPECT_EQ(recorder_.close_cause, CloseCause::ProtocolError);
  EXPECT_TRUE(sent().empty());
}

// === 9. Limits =============================================================================

using Limits = SessionTest;

TEST_F(Limits, MessageAtTheLimitIsAccepted) {
  config_.max_message_size = 1000;
  make();
  feed(binaryFrame(std::string(1000, 'a')));
  feed(textFrame(std::string(500, 'a'), false) + continuationFrame(std::string(500, 'b')));
  EXPECT_EQ(recorder_.messages.size(), 2u);
  EXPECT_TRUE(session_->isOpen());
}

TEST_F(Limits, OversizedFrameIsRefusedFromItsHeader) {
  config_.max_message_size = 1000;
  make();
  const std::string frame = binaryFrame(std::string(1001, 'a'));
  // Only the header arrives: the declared length is enough to refuse it.
  feed(frame.substr(0, 8));
  expectFailedWith(1009);
  EXPECT_EQ(session_->bufferedBytes(), 0u);
}

TEST_F(Limits, HugeDeclaredLengthIsRefusedWithoutBuffering) {
  std::string header = "\x82\xff";
  header += std::string("\x00\x00\x00\x10\x00\x00\x00\x00", 8); // 64 GiB
  header += "abcd";
  feed(header);
  expectFailedWith(1009);
}

TEST_F(Limits, FragmentsAddingUpOverTheLimitAre1009) {
  config_.max_message_size = 1000;
  make();
  feed(textFrame(std::string(600, 'a'), false));
  EXPECT_TRUE(session_->isOpen());
  feed(continuationFrame(std::string(401, 'b')).substr(0, 8));
  expectFailedWith(1009);
}

TEST_F(Limits, ControlFramesDoNotCountTowardsTheMessage) {
  config_.max_message_size = 10;
  make();
  feed(textFrame("12345", false) + clientFrame(0x9, std::string(100, 'p')) +
       continuationFrame("67890"));
  EXPECT_EQ(recorder_.messages, (std::vector<std::string>{"1234567890"}));
}

TEST_F(Limits, ManyMessagesReuseTheBuffer) {
  std::string input;
  for (int i = 0; i < 1000; ++i) {
    input += textFrame("message " + std::to_string(i));
  }
  feed(input);
  ASSERT_EQ(recorder_.messages.size(), 1000u);
  EXPECT_EQ(recorder_.messages[999], "message 999");
}

// === 12/13. Compression (permessage-deflate) ===============================================

class Compression : public SessionTest {
protected:
  // Client side of permessage-deflate built on zlib directly.
  struct Client {
    explicit Client(int bits = 15, bool no_context = false) : no_context_(no_context) {
      deflateInit2(&d, 6, Z_DEFLATED, -bits, 8, Z_DEFAULT_STRATEGY);
      inflateInit2(&i, -15);
    }
    ~Client() {
      deflateEnd(&d);
      inflateEnd(&i);
    }
    // `strip` removes the 00 00 ff ff tail (the last piece of a message).
    std::string compress(std::string_view data, bool strip = true) {
      std::string out(deflateBound(&d, data.size()) + 64, '\0');
      d.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
      d.avail_in = static_cast<uInt>(data.size());
      d.next_out = reinterpret_cast<Bytef*>(out.data());
      d.avail_out = static_cast<uInt>(out.size());
      deflate(&d, Z_SYNC_FLUSH);
      out.resize(out.size() - d.avail_out - (strip ? 4 : 0));
      if (no_context_) {
        deflateReset(&d);
      }
      return out;
    }
    std::string decompress(std::string data) {
      data.append("\0\0\xff\xff", 4);
      std::string out(1 << 22, '\0');
      i.next_in = reinterpret_cast<Bytef*>(data.data());
      i.avail_in = static_cast<uInt>(data.size());
      i.next_out = reinterpret_cast<Bytef*>(out.data());
      i.avail_out = static_cast<uInt>(out.size());
      inflate(&i, Z_SYNC_FLUSH);
      out.resize(out.size() - i.avail_out);
      return out;
    }
    z_stream d{};
    z_stream i{};
    bool no_context_;
  };

  std::string compressedText(Client& c, std::string_view text) {
    return clientFrame(0x1, c.compress(text), true, 4);
  }
};

TEST_F(Compression, ReceivesCompressedMessagesWithContextTakeover) {
  make(DeflateParams{});
  Client client;
  const std::string msg = "Hello, compressed world! Hello, compressed world!";
  for (int n = 0; n < 5; ++n) {
    feed(compressedText(client, msg));
  }
  feed(clientFrame(0x2, client.compress(std::string(5000, '\x01')), true, 4));
  ASSERT_EQ(recorder_.messages.size(), 6u);
  for (int n = 0; n < 5; ++n) {
    EXPECT_EQ(recorder_.messages[n], msg);
  }
  EXPECT_EQ(recorder_.messages[5], std::string(5000, '\x01'));
  EXPECT_TRUE(session_->isOpen());
}

TEST_F(Compression, EmptyCompressedPayloadIsAnEmptyMessage) {
  make(DeflateParams{});
  Client client;
  feed(compressedText(client, "first") + clientFrame(0x1, "", true, 4) +
       clientFrame(0x2, std::string(1, '\0'), true, 4) + compressedText(client, "second"));
  EXPECT_EQ(recorder_.messages, (std::vector<std::string>{"first", "", "", "second"}));
  EXPECT_TRUE(session_->isOpen());
}

TEST_F(Compression, UncompressedMessagesStillAllowed) {
  make(DeflateParams{});
  Client client;
  feed(textFrame("plain") + compressedText(client, "squeezed") + textFrame("plain again"));
  EXPECT_EQ(recorder_.messages, (std::vector<std::string>{"plain", "squeezed", "plain again"}));
}

TEST_F(Compression, CompressedMessageInFragmentsSplitAtEveryByte) {
  DeflateParams p;
  deflate_ = p;
  Client client;
  const std::string z = client.compress("fragmented and compressed, fragmented and compressed");
  const size_t third = z.size() / 3;
  expectSplitInvariant(clientFrame(0x1, z.substr(0, third), false, 4) + clientFrame(0x9, "mid") +
                       continuationFrame(z.substr(third, third), false) +
                       continuationFrame(z.substr(2 * third)));
  EXPECT_EQ(recorder_.messages,
            (std::vector<std::string>{"fragmented and compressed, fragmented and compressed"}));
}

TEST_F(Compression, Rsv1OnAContinuationIs1002) {
  make(DeflateParams{});
  Client client;
  feed(clientFrame(0x1, client.compress("ab"), false, 4) + clientFrame(0x0, "", true, 4));
  expectFailedWith(1002);
}

TEST_F(Compression, Rsv1OnAControlFrameIs1002) {
  make(DeflateParams{});
  feed(clientFrame(0x9, "", true, 4));
  expectFailedWith(1002);
}

TEST_F(Compression, SendsCompressedMessagesAClientCanInflate) {
  make(DeflateParams{});
  Client client;
  const std::string msg(10000, 'q');
  ASSERT_TRUE(session_->sendText(msg));
  ASSERT_TRUE(session_->sendBinary(msg));
  auto frames = sent();
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_TRUE(frames[0].rsv1);
  EXPECT_LT(frames[0].payload.size(), 200u);
  EXPECT_EQ(client.decompress(frames[0].payload), msg);
  EXPECT_EQ(frames[1].opcode, 0x2);
  EXPECT_EQ(client.decompress(frames[1].payload), msg);
  // With context takeover, the second copy is a back-reference: tiny.
  EXPECT_LT(frames[1].payload.size(), frames[0].payload.size());
}

TEST_F(Compression, ServerNoContextTakeoverCompressesEachMessageAlone) {
  DeflateParams p;
  p.server_no_context_takeover = true;
  make(p);
  const std::string msg = "independent message, independent message";
  ASSERT_TRUE(session_->sendText(msg));
  ASSERT_TRUE(session_->sendText(msg));
  auto frames = sent();
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].payload, frames[1].payload);
  Client a, b;
  EXPECT_EQ(a.decompress(frames[0].payload), msg);
  EXPECT_EQ(b.decompress(frames[1].payload), msg);
}

TEST_F(Compression, ClientNoContextTakeover) {
  DeflateParams p;
  p.client_no_context_takeover = true;
  make(p);
  Client client(15, /*no_context=*/true);
  for (int i = 0; i < 3; ++i) {
    feed(compressedText(client, "same again"));
  }
  EXPECT_EQ(recorder_.messages, (std::vector<std::string>(3, "same again")));
}

TEST_F(Compression, SmallWindowBothWays) {
  DeflateParams p;
  p.server_max_window_bits = 9;
  p.client_max_window_bits = 9;
  make(p);
  std::string msg;
  for (int i = 0; i < 3000; ++i) {
    msg += static_cast<char>('a' + i * 7 % 26);
  }
  Client client(9);
  feed(compressedText(client, msg));
  ASSERT_EQ(recorder_.messages.size(), 1u);
  EXPECT_EQ(recorder_.messages[0], msg);
  ASSERT_TRUE(session_->sendText(msg));
  auto frames = sent();
  ASSERT_EQ(frames.size(), 1u);
  Client reader;
  EXPECT_EQ(reader.decompress(frames[0].payload), msg);
}

TEST_F(Compression, MinCompressSizeSendsShortMessagesPlain) {
  config_.deflate.min_compress_size = 100;
  make(DeflateParams{});
  ASSERT_TRUE(session_->sendText("short"));
  ASSERT_TRUE(session_->sendText(std::string(200, 'l')));
  auto frames = sent();
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_FALSE(frames[0].rsv1);
  EXPECT_EQ(frames[0].payload, "short");
  EXPECT_TRUE(frames[1].rsv1);
}

TEST_F(Compression, CompressedOutputFragmentsWithRsv1OnlyFirst) {
  config_.fragment_size = 16;
  make(DeflateParams{});
  std::string msg;
  for (int i = 0; i < 500; ++i) {
    msg += std::to_string(i * 7919);
  }
  ASSERT_TRUE(session_->sendText(msg));
  auto frames = sent();
  ASSERT_GT(frames.size(), 2u);
  std::string joined;
  for (size_t i = 0; i < frames.size(); ++i) {
    EXPECT_EQ(frames[i].rsv1, i == 0);
    EXPECT_EQ(frames[i].opcode, i == 0 ? 0x1 : 0x0);
    EXPECT_EQ(frames[i].fin, i + 1 == frames.size());
    EXPECT_LE(frames[i].payload.size(), 16u);
    joined += frames[i].payload;
  }
  Client client;
  EXPECT_EQ(client.decompress(joined), msg);
}

TEST_F(Compression, BombEndsWith1009AndBoundedMemory) {
  config_.max_message_size = 1 << 20;
  make(DeflateParams{});
  Client client;
  std::string z;
  const std::string zeros(1 << 20, '\0');
  for (int i = 0; i < 100; ++i) { // 100 MiB of zeros
    z += client.compress(zeros, /*strip=*/false);
  }
  ASSERT_LT(z.size(), 200u * 1024);
  const std::string frame = clientFrame(0x2, z, true, 4);
  size_t peak = 0;
  for (size_t pos = 0; pos < frame.size() && session_->isOpen(); pos += 16384) {
    feed(frame.substr(pos, 16384));
    peak = std::max(peak, session_->bufferedBytes());
  }
  expectFailedWith(1009);
  EXPECT_LE(peak, (1u << 20) + 1);
  EXPECT_TRUE(recorder_.messages.empty());
}

TEST_F(Compression, CorruptDataIs1007) {
  make(DeflateParams{});
  feed(clientFrame(0x2, "\xff\xff\xff\xff", true, 4));
  expectFailedWith(1007);
}

TEST_F(Compression, InvalidUtf8InsideCompressedTextIs1007) {
  make(DeflateParams{});
  Client client;
  feed(compressedText(client, "ok \xED\xA0\x80 not ok"));
  expectFailedWith(1007);
}

TEST_F(Compression, InvalidUtf8InCompressedFragmentFailsBeforeTheEnd) {
  make(DeflateParams{});
  Client client;
  // Compress the bad part and flush so it inflates from the first fragment alone.
  const std::string z = client.compress("valid then \xF4\x90\x80\x80 and more");
  feed(clientFrame(0x1, z, false, 4));
  expectFailedWith(1007);
}

// === Keepalive =============================================================================

class Keepalive : public SessionTest {
protected:
  void SetUp() override {
    config_.ping_interval = seconds(20);
    config_.ping_timeout = seconds(10);
    make();
  }
};

TEST_F(Keepalive, PingAfterIdleIntervalThenTimeoutIs1011) {
  const MonotonicTime start = time_.monotonicTime();
  ASSERT_TRUE(session_->nextTimeout().has_value());
  EXPECT_EQ(*session_->nextTimeout(), start + seconds(20));
  time_.advance(seconds(19));
  session_->onTimeout();
  EXPECT_TRUE(sent().empty()) << "not due yet";
  time_.advance(seconds(1));
  session_->onTimeout();
  auto frames = sent();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].opcode, 0x9);
  EXPECT_TRUE(session_->awaitingPong());
  EXPECT_EQ(*session_->nextTimeout(), start + seconds(30));
  time_.advance(seconds(10));
  session_->onTimeout();
  EXPECT_TRUE(session_->isClosed());
  EXPECT_EQ(recorder_.close_cause, CloseCause::PingTimeout);
  frames = sent();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].closeCode(), 1011);
}

TEST_F(Keepalive, PongClearsThePingAndTrafficDefersTheNext) {
  time_.advance(seconds(20));
  session_->onTimeout();
  auto frames = sent();
  ASSERT_EQ(frames.size(), 1u);
  time_.advance(seconds(5));
  feed(clientFrame(0xA, frames[0].payload));
  EXPECT_FALSE(session_->awaitingPong());
  EXPECT_EQ(*session_->nextTimeout(), time_.monotonicTime() + seconds(20));
  // Traffic keeps deferring the ping.
  time_.advance(seconds(15));
  feed(textFrame("still here"));
  time_.advance(seconds(15));
  session_->onTimeout();
  EXPECT_TRUE(sent().empty());
  time_.advance(seconds(5));
  session_->onTimeout();
  frames = sent();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].opcode, 0x9);
  EXPECT_TRUE(session_->isOpen());
}

TEST_F(Keepalive, DisabledByDefault) {
  config_ = SessionConfig();
  make();
  EXPECT_FALSE(session_->nextTimeout().has_value());
  time_.advance(seconds(3600));
  session_->onTimeout();
  EXPECT_TRUE(sent().empty());
}

// === Sending and flow control ==============================================================

using Sending = SessionTest;

TEST_F(Sending, MessagesAreUnmaskedSingleFrames) {
  ASSERT_TRUE(session_->sendText("héllo"));
  ASSERT_TRUE(session_->sendBinary(std::string(70000, '\x07')));
  ASSERT_TRUE(session_->sendText(""));
  EXPECT_EQ(session_->pendingOutput(), session_->output().length());
  auto frames = sent();
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[0].opcode, 0x1);
  EXPECT_EQ(frames[0].payload, "héllo");
  EXPECT_FALSE(frames[0].rsv1);
  EXPECT_EQ(frames[1].opcode, 0x2);
  EXPECT_EQ(frames[1].payload.size(), 70000u);
  EXPECT_EQ(frames[2].payload, "");
  EXPECT_EQ(session_->pendingOutput(), 0u);
}

TEST_F(Sending, LargeMessagesAreFragmentedAtTheConfiguredSize) {
  config_.fragment_size = 1000;
  make();
  const std::string msg(2500, 'f');
  ASSERT_TRUE(session_->sendBinary(msg));
  ASSERT_TRUE(session_->sendText(std::string(1000, 'g')));
  auto frames = sent();
  ASSERT_EQ(frames.size(), 4u);
  EXPECT_EQ(frames[0].opcode, 0x2);
  EXPECT_FALSE(frames[0].fin);
  EXPECT_EQ(frames[1].opcode, 0x0);
  EXPECT_FALSE(frames[1].fin);
  EXPECT_EQ(frames[2].opcode, 0x0);
  EXPECT_TRUE(frames[2].fin);
  EXPECT_EQ(frames[0].payload.size() + frames[1].payload.size() + frames[2].payload.size(), 2500u);
  EXPECT_EQ(frames[3].opcode, 0x1);
  EXPECT_TRUE(frames[3].fin) << "a message of exactly fragment_size is one frame";
}

TEST_F(Sending, OutputCanBeMovedOutWithoutCopy) {
  ASSERT_TRUE(session_->sendText("one"));
  Buffer wire;
  wire.move(session_->output());
  EXPECT_EQ(session_->pendingOutput(), 0u);
  ASSERT_TRUE(session_->sendText("two"));
  wire.move(session_->output());
  auto frames = parseFrames(wire.view());
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[1].payload, "two");
}

TEST_F(Sending, PauseReadingLeavesTheRestForLater) {
  recorder_.pause_on_message = true;
  const std::string input = textFrame("first") + textFrame("second") + textFrame("third");
  Buffer b(input);
  session_->onBytes(b);
  EXPECT_EQ(recorder_.messages, (std::vector<std::string>{"first"}));
  EXPECT_TRUE(session_->readingPaused());
  EXPECT_EQ(b.length(), input.size() - textFrame("first").size());
  session_->resumeReading();
  session_->onBytes(b);
  EXPECT_EQ(recorder_.messages.size(), 2u);
  recorder_.pause_on_message = false;
  session_->resumeReading();
  session_->onBytes(b);
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(recorder_.messages, (std::vector<std::string>{"first", "second", "third"}));
}

TEST_F(Sending, CallbackMayCloseDuringDelivery) {
  recorder_.close_on_message = true;
  feed(textFrame("a") + textFrame("b"));
  EXPECT_EQ(session_->state(), Session::State::Closing);
  // Both arrived (the peer had sent them before our close); only one close went out.
  EXPECT_EQ(recorder_.messages.size(), 2u);
  auto frames = sent();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].opcode, 0x8);
}

TEST_F(Sending, PayloadMayBeMovedOutByTheCallback) {
  struct Taker : Recorder {
    void onMessage(MessageType type, Buffer& payload) override {
      taken.push_back(std::move(payload));
    }
    std::vector<Buffer> taken;
  } taker;
  Session s(config_, taker, time_);
  Buffer in(textFrame("one") + textFrame("two"));
  s.onBytes(in);
  ASSERT_EQ(taker.taken.size(), 2u);
  EXPECT_EQ(taker.taken[0].toString(), "one");
  EXPECT_EQ(taker.taken[1].toString(), "two");
}

} // namespace
} // namespace pounce::http::websocket::test
