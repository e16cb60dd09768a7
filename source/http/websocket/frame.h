#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace pounce::http::websocket {

// RFC 6455 §5.2 opcodes.
enum class Opcode : uint8_t {
  Continuation = 0x0,
  Text = 0x1,
  Binary = 0x2,
  Close = 0x8,
  Ping = 0x9,
  Pong = 0xA,
};

inline bool isControl(Opcode op) { return (static_cast<uint8_t>(op) & 0x8) != 0; }
inline bool isKnownOpcode(uint8_t op) { return op <= 0x2 || (op >= 0x8 && op <= 0xA); }

// RFC 6455 §7.4.1 status codes, and the IANA registrations after it.
namespace close_code {
inline constexpr uint16_t kNormal = 1000;
inline constexpr uint16_t kGoingAway = 1001;
inline constexpr uint16_t kProtocolError = 1002;
inline constexpr uint16_t kUnsupportedData = 1003;
inline constexpr uint16_t kNoStatus = 1005;       // never sent: the peer's close had no code
inline constexpr uint16_t kAbnormal = 1006;       // never sent: no close frame was received
inline constexpr uint16_t kInvalidPayload = 1007; // e.g. bad UTF-8 in a text message
inline constexpr uint16_t kPolicyViolation = 1008;
inline constexpr uint16_t kMessageTooBig = 1009;
inline constexpr uint16_t kMandatoryExtension = 1010;
inline constexpr uint16_t kInternalError = 1011;
inline constexpr uint16_t kServiceRestart = 1012;
inline constexpr uint16_t kTryAgainLater = 1013;
inline constexpr uint16_t kBadGateway = 1014;
} // namespace close_code

// May a close frame carry `code`, ours or the peer's? The codes of IANA's registry that an
// endpoint may send (1000-1003, 1007-1014: 1012-1014 say "restart", "try again later" and
// "bad gateway") and the ranges for libraries and apps, 3000-4999. Everything else (0-999,
// 1004-1006, which are never sent, 1015, 1016-2999, 5000+) is a protocol error from a client.
bool isValidCloseCode(uint16_t code);

// Control frame payloads are at most 125 bytes (§5.5); a close frame's reason at most 123.
inline constexpr size_t kMaxControlPayload = 125;
inline constexpr size_t kMaxCloseReason = 123;
// The longest frame header: 2 bytes, 8 bytes of extended length, 4 bytes of mask key.
inline constexpr size_t kMaxFrameHeader = 14;

// Writes a frame header into `out` (at least kMaxFrameHeader bytes) and returns its length.
// `mask_key` is null for server frames (unmasked) and points to 4 bytes for client frames.
size_t encodeFrameHeader(char* out, Opcode opcode, bool fin, bool rsv1, uint64_t payload_length,
                         const uint8_t* mask_key);

// XORs `size` bytes with the 4-byte `key`, the payload's first byte being at position
// `offset` (0..3) of the key cycle, copying from `src` to `dst` (which may be the same
// memory). Works eight bytes at a time. Returns the key position after the last byte.
size_t maskCopy(char* dst, const char* src, size_t size, const uint8_t key[4], size_t offset);

} // namespace pounce::http::websocket
