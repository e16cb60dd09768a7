#pragma once

// Helpers for WebSocket tests: build client frames by hand (independently of the encoder
// under test), parse server frames, and record what a session reports.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "source/common/buffer.h"
#include "source/http/websocket/session.h"

namespace pounce::http::websocket::test {

// A client frame. `opcode` is a raw nibble so tests can send unknown opcodes; `rsv` is
// the three reserved bits (0..7, RSV1 = 4). Masked with `key` unless `masked` is false.
inline std::string clientFrame(uint8_t opcode, std::string_view payload, bool fin = true,
                               uint8_t rsv = 0, bool masked = true,
                               const uint8_t key[4] = nullptr) {
  static const uint8_t kDefaultKey[4] = {0x37, 0xfa, 0x21, 0x3d};
  if (key == nullptr) {
    key = kDefaultKey;
  }
  std::string out;
  out.push_back(static_cast<char>((fin ? 0x80 : 0) | (rsv << 4) | (opcode & 0x0F)));
  const uint8_t mask_bit = masked ? 0x80 : 0;
  if (payload.size() < 126) {
    out.push_back(static_cast<char>(mask_bit | payload.size()));
  } else if (payload.size() <= 0xFFFF) {
    out.push_back(static_cast<char>(mask_bit | 126));
    out.push_back(static_cast<char>(payload.size() >> 8));
    out.push_back(static_cast<char>(payload.size() & 0xFF));
  } else {
    out.push_back(static_cast<char>(mask_bit | 127));
    for (int i = 7; i >= 0; --i) {
      out.push_back(static_cast<char>((uint64_t{payload.size()} >> (8 * i)) & 0xFF));
    }
  }
  if (masked) {
    out.append(reinterpret_cast<const char*>(key), 4);
  }
  for (size_t i = 0; i < payload.size(); ++i) {
    out.push_back(masked ? static_cast<char>(payload[i] ^ key[i % 4]) : payload[i]);
  }
  return out;
}

inline std::string textFrame(std::string_view payload, bool fin = true) {
  return clientFrame(0x1, payload, fin);
}
inline std::string binaryFrame(std::string_view payload, bool fin = true) {
  return clientFrame(0x2, payload, fin);
}
inline std::string continuationFrame(std::string_view payload, bool fin = true) {
  return clientFrame(0x0, payload, fin);
}
inline std::string closePayload(uint16_t code, std::string_view reason = {}) {
  std::string p;
  p.push_back(static_cast<char>(code >> 8));
  p.push_back(static_cast<char>(code & 0xFF));
  p.append(reason);
  return p;
}
inline std::string closeFrame(uint16_t code, std::string_view reason = {}) {
  return clientFrame(0x8, closePayload(code, reason));
}

// A frame as the server wrote it.
struct ServerFrame {
  bool fin;
  bool rsv1;
  uint8_t opcode;
  bool masked;
  std::string payload;
  uint16_t closeCode() const {
    return payload.size() >= 2 ? static_cast<uint16_t>((static_cast<uint8_t>(payload[0]) << 8) |
                                                       static_cast<uint8_t>(payload[1]))
                               : 1005;
  }
  std::string closeReason() const { return payload.size() > 2 ? payload.substr(2) : ""; }
};

// Parses complete frames from the front of `bytes`; leftover bytes stay in `rest`.
inline std::vector<ServerFrame> parseFrames(std::string_view bytes, std::string* rest = nullptr) {
  std::vector<ServerFrame> frames;
  while (bytes.size() >= 2) {
    const auto b0 = static_cast<uint8_t>(bytes[0]);
    const auto b1 = static_cast<uint8_t>(bytes[1]);
    size_t pos = 2;
    uint64_t len = b1 & 0x7F;
    if (len == 126) {
      if (bytes.size() < 4) {
        break;
      }
      len = (static_cast<uint8_t>(bytes[2]) << 8) | static_cast<uint8_t>(bytes[3]);
      pos = 4;
    } else if (len == 127) {
      if (bytes.size() < 10) {
        break;
      }
      len = 0;
      for (int i = 0; i < 8; ++i) {
        len = (len << 8) | static_cast<uint8_t>(bytes[2 + i]);
      }
      pos = 10;
    }
    const bool masked = (b1 & 0x80) != 0;
    const size_t key_pos = pos;
    if (masked) {
      pos += 4;
    }
    if (bytes.size() < pos + len) {
      break;
    }
    ServerFrame f{(b0 & 0x80) != 0, (b0 & 0x40) != 0, static_cast<uint8_t>(b0 & 0x0F), masked,
                  std::string(bytes.substr(pos, len))};
    if (masked) {
      for (size_t i = 0; i < f.payload.size(); ++i) {
        f.payload[i] = static_cast<char>(f.payload[i] ^ bytes[key_pos + i % 4]);
      }
    }
    frames.push_back(std::move(f));
    bytes.remove_prefix(pos + len);
  }
  if (rest != nullptr) {
    *rest = std::string(bytes);
  }
  return frames;
}

// Records session events as readable strings: "text:hello", "binary:3 bytes", "ping:x",
// "pong:x", "close:1000:bye:PeerClosed".
class Recorder : public SessionCallbacks {
public:
  void onMessage(MessageType type, Buffer& payload) override {
    messages.push_back(payload.toString());
    events.push_back(std::string(type == MessageType::Text ? "text:" : "binary:") +
                     (payload.length() <= 64 ? payload.toString()
                                             : std::to_string(payload.length()) + " bytes"));
    if (pause_on_message) {
      session->pauseReading();
    }
    if (close_on_message) {
      session->close(1000, "done");
    }
  }
  void onPing(std::string_view payload) override {
    events.push_back("ping:" + std::string(payload));
  }
  void onPong(std::string_view payload) override {
    events.push_back("pong:" + std::string(payload));
  }
  void onClose(const CloseInfo& info) override {
    ++close_count;
    close_code = info.code;
    close_reason = std::string(info.reason);
    close_cause = info.cause;
    events.push_back("close:" + std::to_string(info.code) + ":" + close_reason + ":" +
                     causeName(info.cause));
  }
  static std::string causeName(CloseCause c) {
    switch (c) {
    case CloseCause::PeerClosed:
      return "PeerClosed";
    case CloseCause::CloseHandshakeCompleted:
      return "CloseHandshakeCompleted";
    case CloseCause::ProtocolError:
      return "ProtocolError";
    case CloseCause::PingTimeout:
      return "PingTimeout";
    case CloseCause::CloseTimeout:
      return "CloseTimeout";
    case CloseCause::ConnectionLost:
      return "ConnectionLost";
    }
    return "?";
  }

  std::vector<std::string> events;
  std::vector<std::string> messages;
  int close_count{0};
  uint16_t close_code{0};
  std::string close_reason;
  CloseCause close_cause{CloseCause::ConnectionLost};
  Session* session{nullptr};
  bool pause_on_message{false};
  bool close_on_message{false};
};

} // namespace pounce::http::websocket::test
