#include <gtest/gtest.h>

#include <string>

#include "source/http/websocket/frame.h"

namespace pounce::http::websocket {
namespace {

TEST(Frame, MaskCopyMatchesBytewiseXorForEverySizeAndOffset) {
  const uint8_t key[4] = {0x12, 0x34, 0x56, 0x78};
  std::string src;
  for (int i = 0; i < 67; ++i) {
    src.push_back(static_cast<char>(i * 7 + 3));
  }
  for (size_t offset = 0; offset < 4; ++offset) {
    for (size_t n = 0; n <= src.size(); ++n) {
      std::string dst(n, '\0');
      const size_t next = maskCopy(dst.data(), src.data(), n, key, offset);
      EXPECT_EQ(next, (offset + n) % 4);
      for (size_t i = 0; i < n; ++i) {
        ASSERT_EQ(static_cast<uint8_t>(dst[i]),
                  static_cast<uint8_t>(src[i]) ^ key[(offset + i) % 4])
            << "offset " << offset << " size " << n << " byte " << i;
      }
    }
  }
}

TEST(Frame, MaskCopyInPlaceAndChunkedEqualsWhole) {
  const uint8_t key[4] = {0xde, 0xad, 0xbe, 0xef};
  const std::string src = "The quick brown fox jumps over the lazy dog, twice over.";
  std::string whole(src.size(), '\0');
  maskCopy(whole.data(), src.data(), src.size(), key, 0);
  for (size_t split = 0; split <= src.size(); ++split) {
    std::string chunked = src;
    size_t pos = maskCopy(chunked.data(), chunked.data(), split, key, 0);
    maskCopy(chunked.data() + split, chunked.data() + split, src.size() - split, key, pos);
    EXPECT_EQ(chunked, whole) << split;
  }
}

TEST(Frame, HeaderUsesTheShortestLengthEncoding) {
  char h[kMaxFrameHeader];
  EXPECT_EQ(encodeFrameHeader(h, Opcode::Text, true, false, 0, nullptr), 2u);
  EXPECT_EQ(static_cast<uint8_t>(h[0]), 0x81);
  EXPECT_EQ(static_cast<uint8_t>(h[1]), 0x00);
  EXPECT_EQ(encodeFrameHeader(h, Opcode::Binary, false, true, 125, nullptr), 2u);
  EXPECT_EQ(static_cast<uint8_t>(h[0]), 0x42);
  EXPECT_EQ(static_cast<uint8_t>(h[1]), 125);
  EXPECT_EQ(encodeFrameHeader(h, Opcode::Binary, true, false, 126, nullptr), 4u);
  EXPECT_EQ(static_cast<uint8_t>(h[1]), 126);
  EXPECT_EQ(static_cast<uint8_t>(h[2]), 0);
  EXPECT_EQ(static_cast<uint8_t>(h[3]), 126);
  EXPECT_EQ(encodeFrameHeader(h, Opcode::Binary, true, false, 65535, nullptr), 4u);
  EXPECT_EQ(encodeFrameHeader(h, Opcode::Binary, true, false, 65536, nullptr), 10u);
  EXPECT_EQ(static_cast<uint8_t>(h[1]), 127);
  EXPECT_EQ(static_cast<uint8_t>(h[7]), 1);
  EXPECT_EQ(static_cast<uint8_t>(h[8]), 0);
  const uint8_t key[4] = {1, 2, 3, 4};
  EXPECT_EQ(encodeFrameHeader(h, Opcode::Ping, true, false, 5, key), 6u);
  EXPECT_EQ(static_cast<uint8_t>(h[1]), 0x85);
  EXPECT_EQ(std::string(h + 2, 4), std::string("\x01\x02\x03\x04", 4));
}

TEST(Frame, CloseCodeRules) {
  for (uint16_t c : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
                     3000, 3999, 4000, 4999}) {
    EXPECT_TRUE(isValidCloseCode(c)) << c;
  }
  for (uint16_t c : {0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535}) {
    EXPECT_FALSE(isValidCloseCode(c)) << c;
  }
}

} // namespace
} // namespace pounce::http::websocket
