#include "source/http/websocket/utf8.h"

#include <cstring>

#include "source/common/swar.h"

namespace pounce::http::websocket {

namespace {

// Byte classes. The ranges that matter for the second byte of a sequence are split so the
// few lead bytes with a narrower second-byte range (E0, ED, F0, F4) can be checked.
enum Class : uint8_t {
  kAscii,   // 00..7F
  kCont8,   // 80..8F
  kCont9,   // 90..9F
  kContA,   // A0..BF
  kLead2,   // C2..DF
  kLeadE0,  // E0: second byte A0..BF (no overlong forms)
  kLead3,   // E1..EC, EE..EF
  kLeadED,  // ED: second byte 80..9F (no surrogates)
  kLeadF0,  // F0: second byte 90..BF (no overlong forms)
  kLead4,   // F1..F3
  kLeadF4,  // F4: second byte 80..8F (nothing above U+10FFFF)
  kInvalid, // C0, C1, F5..FF
  kClassCount
};

// States: 0 accept; 1/2/3 need that many continuation bytes (80..BF); 4 after E0;
// 5 after ED; 6 after F0; 7 after F4; 8 reject.
constexpr uint8_t kR = Utf8Validator::kReject;

struct Tables {
  uint8_t cls[256] = {};
  uint8_t next[9][kClassCount] = {};
  constexpr Tables() {
    for (int b = 0; b < 256; ++b) {
      uint8_t c = kInvalid;
      if (b < 0x80) {
        c = kAscii;
      } else if (b < 0x90) {
        c = kCont8;
      } else if (b < 0xA0) {
        c = kCont9;
      } else if (b < 0xC0) {
        c = kContA;
      } else if (b >= 0xC2 && b <= 0xDF) {
        c = kLead2;
      } else if (b == 0xE0) {
        c = kLeadE0;
      } else if (b == 0xED) {
        c = kLeadED;
      } else if (b >= 0xE1 && b <= 0xEF) {
        c = kLead3;
      } else if (b == 0xF0) {
        c = kLeadF0;
      } else if (b >= 0xF1 && b <= 0xF3) {
        c = kLead4;
      } else if (b == 0xF4) {
        c = kLeadF4;
      }
      cls[b] = c;
    }
    for (auto& row : next) {
      for (auto& cell : row) {
        cell = kR;
      }
    }
    next[0][kAscii] = 0;
    next[0][kLead2] = 1;
    next[0][kLeadE0] = 4;
    next[0][kLead3] = 2;
    next[0][kLeadED] = 5;
    next[0][kLeadF0] = 6;
    next[0][kLead4] = 3;
    next[0][kLeadF4] = 7;
    for (uint8_t c : {kCont8, kCont9, kContA}) {
      next[1][c] = 0;
      next[2][c] = 1;
      next[3][c] = 2;
    }
    next[4][kContA] = 1;
    next[5][kCont8] = 1;
    next[5][kCont9] = 1;
    next[6][kCont9] = 2;
    next[6][kContA] = 2;
    next[7][kCont8] = 2;
  }
};
constexpr Tables kTables;

} // namespace

bool Utf8Validator::feed(const char* data, size_t size) {
  uint8_t state = state_;
  if (state == kReject) {
    return false;
  }
  const auto* p = reinterpret_cast<const uint8_t*>(data);
  const uint8_t* const end = p + size;
  while (p < end) {
    if (state == kAccept) {
      // ASCII runs, eight bytes at a time.
      while (end - p >= 8) {
        uint64_t word;
        std::memcpy(&word, p, 8);
        if (swar::nonAscii(word) != 0) {
          break;
        }
        p += 8;
      }
      while (p < end && *p < 0x80) {
        ++p;
      }
      if (p == end) {
        break;
      }
    }
    state = kTables.next[state][kTables.cls[*p]];
    if (state == kReject) {
      state_ = kReject;
      return false;
    }
    ++p;
  }
  state_ = state;
  return true;
}

std::string_view truncateUtf8(std::string_view text, size_t max) {
  if (text.size() <= max) {
    return text;
  }
  size_t n = max;
  // text[n] is the first byte left out: back up while it continues a character.
  while (n > 0 && (static_cast<uint8_t>(text[n]) & 0xC0) == 0x80) {
    --n;
  }
  return text.substr(0, n);
}

} // namespace pounce::http::websocket
