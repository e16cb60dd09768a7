#include <gtest/gtest.h>
#include <zlib.h>

#include <string>

#include "source/http/websocket/deflate.h"

namespace pounce::http::websocket {
namespace {

std::string response(std::string_view offer, const DeflateConfig& config = {}) {
  auto p = negotiateDeflate(offer, config);
  return p ? formatDeflateResponse(*p) : "<declined>";
}

// --- Negotiation ---------------------------------------------------------------------------

TEST(DeflateNegotiation, ParsesExtensionLists) {
  auto offers =
      parseExtensions("permessage-deflate; client_max_window_bits; server_max_window_bits=10 , "
                      "x-foo;a=\"10\";b, ,bar");
  ASSERT_EQ(offers.size(), 3u);
  EXPECT_EQ(offers[0].name, "permessage-deflate");
  ASSERT_EQ(offers[0].params.size(), 2u);
  EXPECT_EQ(offers[0].params[0].first, "client_max_window_bits");
  EXPECT_FALSE(offers[0].params[0].second.has_value());
  EXPECT_EQ(offers[0].params[1].second.value(), "10");
  EXPECT_EQ(offers[1].name, "x-foo");
  ASSERT_EQ(offers[1].params.size(), 2u);
  EXPECT_EQ(offers[1].params[0].second.value(), "10");
  EXPECT_FALSE(offers[1].params[1].second.has_value());
  EXPECT_EQ(offers[2].name, "bar");
  EXPECT_TRUE(offers[2].params.empty());
}

TEST(DeflateNegotiation, QuotedValueMustBeATokenOnceUnquoted) {
  // RFC 6455 §9.1: 'q"v' is not a token, so the x element is dropped; the comma inside the
  // quotes does not split the list.
  auto offers = parseExtensions("x;a=\"q\\\"v,w\", y");
  ASSERT_EQ(offers.size(), 1u);
  EXPECT_EQ(offers[0].name, "y");
}

TEST(DeflateNegotiation, SkipsMalformedElementsAndKeepsTheRest) {
  auto offers =
      parseExtensions("permessage-deflate; =3, permessage-deflate, x;a=\"unterminated, y");
  ASSERT_EQ(offers.size(), 1u) << "an unterminated quote swallows the rest";
  EXPECT_EQ(offers[0].name, "permessage-deflate");
  EXPECT_TRUE(offers[0].params.empty());
  EXPECT_TRUE(parseExtensions("").empty());
  EXPECT_TRUE(parseExtensions(" , ,").empty());
  EXPECT_TRUE(parseExtensions("a b").empty());
}

TEST(DeflateNegotiation, PlainOfferGetsTheServerWindow) {
  EXPECT_EQ(response("permessage-deflate"), "permessage-deflate; server_max_window_bits=12");
  DeflateConfig full;
  full.server_max_window_bits = 15;
  EXPECT_EQ(response("permessage-deflate", full), "permessage-deflate");
}

TEST(DeflateNegotiation, ClientWindowOnlyWhenOffered) {
  EXPECT_EQ(response("permessage-deflate; client_max_window_bits"),
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12");
  EXPECT_EQ(response("permessage-deflate; client_max_window_bits=10"),
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=10");
  EXPECT_EQ(response("permessage-deflate; client_max_window_bits=\"9\""),
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=9");
  DeflateConfig full;
  full.server_max_window_bits = 15;
  full.client_max_window_bits = 15;
  EXPECT_EQ(response("permessage-deflate; client_max_window_bits", full), "permessage-deflate");
  auto p = negotiateDeflate("permessage-deflate; client_max_window_bits=11", full);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->client_max_window_bits, 11);
  EXPECT_EQ(formatDeflateResponse(*p), "permessage-deflate; client_max_window_bits=11");
}

TEST(DeflateNegotiation, ServerWindowNeverAboveTheOffer) {
  EXPECT_EQ(response("permessage-deflate; server_max_window_bits=10"),
            "permessage-deflate; server_max_window_bits=10");
  EXPECT_EQ(response("permessage-deflate; server_max_window_bits=15"),
            "permessage-deflate; server_max_window_bits=12");
  // zlib cannot compress with a 256-byte raw window: decline, take the next offer.
  EXPECT_EQ(response("permessage-deflate; server_max_window_bits=8"), "<declined>");
  EXPECT_EQ(response("permessage-deflate; server_max_window_bits=8, permessage-deflate"),
            "permessage-deflate; server_max_window_bits=12");
}

TEST(DeflateNegotiation, ContextTakeover) {
  EXPECT_EQ(response("permessage-deflate; server_no_context_takeover"),
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=12");
  EXPECT_EQ(response("permessage-deflate; client_no_context_takeover"),
            "permessage-deflate; client_no_context_takeover; server_max_window_bits=12");
  DeflateConfig c;
  c.server_no_context_takeover = true;
  c.client_no_context_takeover = true;
  c.server_max_window_bits = 15;
  EXPECT_EQ(response("permessage-deflate", c),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
  auto p = negotiateDeflate("permessage-deflate", c);
  EXPECT_TRUE(p->server_no_context_takeover);
  EXPECT_TRUE(p->client_no_context_takeover);
}

TEST(DeflateNegotiation, IgnoresOffersWithBadParameters) {
  for (const char* offer : {
           "permessage-deflate; server_max_window_bits",       // value required
           "permessage-deflate; server_max_window_bits=16",    // out of range
           "permessage-deflate; server_max_window_bits=7",     // out of range
           "permessage-deflate; client_max_window_bits=08",    // leading zero
           "permessage-deflate; client_max_window_bits=1a",    // not a number
           "permessage-deflate; client_max_window_bits=-9",    // not a token value
           "permessage-deflate; server_no_context_takeover=1", // takes no value
           "permessage-deflate; client_no_context_takeover=\"\"",
           "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
           "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
           "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
           "permessage-deflate; mystery_parameter",
       }) {
    EXPECT_EQ(response(offer), "<declined>") << offer;
    // ...but a good offer after it is taken.
    EXPECT_EQ(response(std::string(offer) + ", permessage-deflate"),
              "permessage-deflate; server_max_window_bits=12")
        << offer;
  }
}

TEST(DeflateNegotiation, PicksTheFirstAcceptableOfferAmongOthers) {
  EXPECT_EQ(response("x-webkit-deflate-frame, permessage-deflate; client_no_context_takeover, "
                     "permessage-deflate"),
            "permessage-deflate; client_no_context_takeover; server_max_window_bits=12");
  EXPECT_EQ(response("x-webkit-deflate-frame"), "<declined>");
  EXPECT_EQ(response(""), "<declined>");
  DeflateConfig off;
  off.enabled = false;
  EXPECT_EQ(response("permessage-deflate", off), "<declined>");
}

// --- Compression ---------------------------------------------------------------------------

// A client-side compressor written directly against zlib (independent of the code under
// test): raw deflate, sync flush, tail removed.
class ClientDeflater {
public:
  explicit ClientDeflater(int window_bits = 15) {
    deflateInit2(&z_, 6, Z_DEFLATED, -window_bits, 8, Z_DEFAULT_STRATEGY);
  }
  ~ClientDeflater() { deflateEnd(&z_); }
  // `strip`: remove the 00 00 ff ff tail, as for the last piece of a message. Pieces of
  // one message compressed separately keep it, except the last.
  std::string compress(std::string_view data, int flush = Z_SYNC_FLUSH, bool strip = true) {
    std::string out(deflateBound(&z_, data.size()) + 64, '\0');
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z_.avail_in = static_cast<uInt>(data.size());
    z_.next_out = reinterpret_cast<Bytef*>(out.data());
    z_.avail_out = static_cast<uInt>(out.size());
    deflate(&z_, flush);
    out.resize(out.size() - z_.avail_out);
    if (strip && flush == Z_SYNC_FLUSH && out.size() >= 4 &&
        out.substr(out.size() - 4) == std::string("\0\0\xff\xff", 4)) {
      out.resize(out.size() - 4);
    }
    if (flush == Z_FINISH) {
      deflateReset(&z_);
    }
    return out;
  }

private:
  z_stream z_{};
};

// Inflates server output with zlib directly, appending the tail.
class ClientInflater {
public:
  explicit ClientInflater(int window_bits = 15) { inflateInit2(&z_, -window_bits); }
  ~ClientInflater() { inflateEnd(&z_); }
  std::string decompress(std::string data) {
    data.append("\0\0\xff\xff", 4);
    std::string out(1 << 20, '\0');
    z_.next_in = reinterpret_cast<Bytef*>(data.data());
    z_.avail_in = static_cast<uInt>(data.size());
    z_.next_out = reinterpret_cast<Bytef*>(out.data());
    z_.avail_out = static_cast<uInt>(out.size());
    const int rc = inflate(&z_, Z_SYNC_FLUSH);
    EXPECT_TRUE(rc == Z_OK || rc == Z_BUF_ERROR) << rc;
    out.resize(out.size() - z_.avail_out);
    return out;
  }

private:
  z_stream z_{};
};

std::string decompressAll(MessageDecompressor& d, std::string_view data, uint64_t limit = 1 << 24) {
  Buffer out;
  EXPECT_EQ(d.feed(data.data(), data.size(), out, limit), MessageDecompressor::Result::Ok);
  EXPECT_EQ(d.finish(out, limit), MessageDecompressor::Result::Ok);
  return out.toString();
}

const std::string kMessage =
    "{\"type\": \"update\", \"user\": \"alice\", \"payload\": [1, 2, 3, 4, 5], \"ok\": true}";

TEST(DeflateCompression, ServerOutputInflatesWithPlainZlibAndKeepsContext) {
  MessageCompressor c(15, false, 6, 8);
  ClientInflater client;
  std::string first, second;
  ASSERT_TRUE(c.compress(kMessage, first));
  ASSERT_TRUE(c.compress(kMessage, second));
  EXPECT_LT(second.size(), first.size()) << "the second copy refers back to the first";
  EXPECT_EQ(client.decompress(first), kMessage);
  EXPECT_EQ(client.decompress(second), kMessage);
}

TEST(DeflateCompression, NoContextTakeoverMakesEveryMessageStandalone) {
  MessageCompressor c(15, true, 6, 8);
  std::string first, second;
  ASSERT_TRUE(c.compress(kMessage, first));
  ASSERT_TRUE(c.compress(kMessage, second));
  EXPECT_EQ(first, second);
  // Each inflates with a fresh inflater.
  ClientInflater a, b;
  EXPECT_EQ(a.decompress(first), kMessage);
  EXPECT_EQ(b.decompress(second), kMessage);
}

TEST(DeflateCompression, EmptyMessage) {
  MessageCompressor c(12, false, 6, 5);
  std::string out;
  ASSERT_TRUE(c.compress("", out));
  MessageDecompressor d(12, false);
  EXPECT_EQ(decompressAll(d, out), "");
  // Some peers send a compressed empty message with no payload at all.
  EXPECT_EQ(decompressAll(d, ""), "");
}

TEST(DeflateCompression, EmptyMessageAfterDataKeepsTheStreamValid) {
  // zlib writes nothing for a sync flush without new input; the empty message must still
  // produce a payload that leaves a receiver's inflater on a block boundary.
  MessageCompressor c(12, false, 6, 5);
  ClientInflater client(12);
  for (const std::string msg : {std::string("data"), std::string(), std::string(),
                                std::string("more data"), std::string(2000, 'x')}) {
    std::string z;
    ASSERT_TRUE(c.compress(msg, z));
    EXPECT_FALSE(z.empty());
    EXPECT_EQ(client.decompress(z), msg);
  }
}

TEST(DeflateCompression, RoundTripsAtEveryWindowSize) {
  std::string big;
  for (int i = 0; i < 20000; ++i) {
    big += std::to_string(i * 7919 % 1000) + ",";
  }
  for (int bits = 9; bits <= 15; ++bits) {
    MessageCompressor c(bits, false, 6, 5);
    MessageDecompressor d(bits, false);
    for (int round = 0; round < 3; ++round) {
      std::string z;
      ASSERT_TRUE(c.compress(big, z));
      EXPECT_LT(z.size(), big.size());
      EXPECT_EQ(decompressAll(d, z), big) << bits;
    }
  }
}

TEST(DeflateCompression, DecompressesClientMessagesWithContextTakeover) {
  ClientDeflater client(12);
  MessageDecompressor d(12, false);
  for (int i = 0; i < 5; ++i) {
    const std::string msg = kMessage + std::to_string(i);
    EXPECT_EQ(decompressAll(d, client.compress(msg)), msg);
  }
}

TEST(DeflateCompression, ResetsBetweenMessagesWhenTheClientDropsContext) {
  // With client_no_context_takeover each message is a fresh stream. A decompressor told so
  // also resets, so it handles a client that restarts its compressor every message.
  MessageDecompressor d(15, true);
  for (int i = 0; i < 3; ++i) {
    ClientDeflater fresh;
    EXPECT_EQ(decompressAll(d, fresh.compress(kMessage)), kMessage);
  }
}

TEST(DeflateCompression, FinalBlockKeepsTheWindowForTheNextMessage) {
  // A sender may end a message with BFINAL set (Z_FINISH) and still refer to it in the
  // next message if it keeps its window (RFC 7692 §7.2.3.2). Build such a pair: the second
  // message is compressed with the first set as dictionary.
  ClientDeflater first_sender;
  const std::string m1 = first_sender.compress(kMessage, Z_FINISH);
  z_stream z{};
  deflateInit2(&z, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
  deflateSetDictionary(&z, reinterpret_cast<const Bytef*>(kMessage.data()),
                       static_cast<uInt>(kMessage.size()));
  std::string m2(1024, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(kMessage.data()));
  z.avail_in = static_cast<uInt>(kMessage.size());
  z.next_out = reinterpret_cast<Bytef*>(m2.data());
  z.avail_out = static_cast<uInt>(m2.size());
  deflate(&z, Z_SYNC_FLUSH);
  m2.resize(m2.size() - z.avail_out - 4);
  deflateEnd(&z);

  MessageDecompressor d(15, false);
  EXPECT_EQ(decompressAll(d, m1), kMessage);
  EXPECT_EQ(decompressAll(d, m2), kMessage);
}

TEST(DeflateCompression, BombStopsAtTheLimitWithBoundedOutput) {
  // 64 MiB of zeros compresses to about 64 KiB.
  ClientDeflater client;
  std::string bomb;
  const std::string zeros(1 << 20, '\0');
  for (int i = 0; i < 64; ++i) {
    bomb += client.compress(zeros, Z_SYNC_FLUSH, /*strip=*/false);
  }
  ASSERT_LT(bomb.size(), 200u * 1024);
  MessageDecompressor d(15, false);
  Buffer out;
  const uint64_t limit = 1 << 20;
  MessageDecompressor::Result r = MessageDecompressor::Result::Ok;
  // Fed in network-sized pieces, as a session would.
  for (size_t pos = 0; pos < bomb.size() && r == MessageDecompressor::Result::Ok; pos += 4096) {
    const size_t n = std::min<size_t>(4096, bomb.size() - pos);
    r = d.feed(bomb.data() + pos, n, out, limit);
  }
  EXPECT_EQ(r, MessageDecompressor::Result::TooBig);
  EXPECT_LE(out.length(), limit + 1);
  // The decompressor is usable again after abandon().
  d.abandon();
  ClientDeflater fresh;
  EXPECT_EQ(decompressAll(d, fresh.compress("after")), "after");
}

TEST(DeflateCompression, LimitIsExact) {
  ClientDeflater client;
  const std::string msg(1000, 'a');
  const std::string z = client.compress(msg);
  {
    MessageDecompressor d(15, false);
    Buffer out;
    EXPECT_EQ(d.feed(z.data(), z.size(), out, 1000), MessageDecompressor::Result::Ok);
    EXPECT_EQ(d.finish(out, 1000), MessageDecompressor::Result::Ok);
    EXPECT_EQ(out.length(), 1000u);
  }
  {
    MessageDecompressor d(15, false);
    Buffer out;
    auto r = d.feed(z.data(), z.size(), out, 999);
    if (r == MessageDecompressor::Result::Ok) {
      r = d.finish(out, 999);
    }
    EXPECT_EQ(r, MessageDecompressor::Result::TooBig);
  }
}

TEST(DeflateCompression, CorruptDataIsInvalid) {
  MessageDecompressor d(15, false);
  Buffer out;
  // BTYPE 11 (reserved) in the first block header.
  const std::string bad = "\xff\xff\xff\xff";
  EXPECT_EQ(d.feed(bad.data(), bad.size(), out, 1 << 20), MessageDecompressor::Result::Invalid);
}

TEST(DeflateCompression, ReferenceBeyondTheAgreedWindowIsInvalid) {
  // A client told to use 9 bits that keeps 15 refers 2000 bytes back into the previous
  // message: beyond the 512-byte window the server keeps.
  std::string text;
  uint32_t x = 12345;
  for (int i = 0; i < 2000; ++i) { // no short repeats inside the message
    x = x * 1103515245 + 12345;
    text.push_back(static_cast<char>('a' + (x >> 16) % 26));
  }
  ClientDeflater client(15);
  const std::string m1 = client.compress(text);
  const std::string m2 = client.compress(text);
  MessageDecompressor d(9, false);
  EXPECT_EQ(decompressAll(d, m1), text);
  Buffer out;
  auto r = d.feed(m2.data(), m2.size(), out, 1 << 20);
  if (r == MessageDecompressor::Result::Ok) {
    r = d.finish(out, 1 << 20);
  }
  EXPECT_EQ(r, MessageDecompressor::Result::Invalid);
}

} // namespace
} // namespace pounce::http::websocket
