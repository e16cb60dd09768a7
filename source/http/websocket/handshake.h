#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "source/http/headers.h"
#include "source/http/websocket/deflate.h"

namespace pounce::http::websocket {

// The GUID RFC 6455 §1.3 appends to the client's key before hashing.
inline constexpr std::string_view kAcceptGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
inline constexpr std::string_view kVersion = "13";

// Does this request ask for a WebSocket? HTTP/1.1: an Upgrade header listing "websocket".
// HTTP/2 (RFC 8441 extended CONNECT): :method CONNECT with :protocol websocket. A request
// for which this is false is ordinary HTTP; one for which it is true goes through
// validateRequest(), which may still refuse it.
bool isWebSocketRequest(const RequestHeaders& headers);

// What a valid opening handshake asked for.
struct HandshakeRequest {
  // RFC 8441 (HTTP/2 extended CONNECT) rather than an HTTP/1.1 Upgrade.
  bool http2{false};
  // Sec-WebSocket-Key as sent (HTTP/1.1 only).
  std::string key;
  // Sec-WebSocket-Protocol offers, in the client's order.
  std::vector<std::string> subprotocols;
  // Sec-WebSocket-Extensions, all lines joined (input to negotiateDeflate()).
  std::string extensions;
};

// A refused handshake: the status to answer with and why.
struct HandshakeError {
  // 400 for a malformed handshake; 426 when the client does not speak version 13.
  int status;
  std::string message;
};

// Checks an opening handshake. HTTP/1.1 (RFC 6455 §4.2.1): HTTP/1.1 or later, GET, an
// Upgrade header with the "websocket" token, a Connection header with the "upgrade" token,
// exactly one Sec-WebSocket-Key that is base64 of 16 bytes, and Sec-WebSocket-Version 13.
// HTTP/2 (RFC 8441 §4): CONNECT, :protocol websocket, Sec-WebSocket-Version 13; there is
// no key. In both, Sec-WebSocket-Protocol must be a comma-separated list of tokens.
// On success fills `request` and returns nullopt.
std::optional<HandshakeError> validateRequest(const RequestHeaders& headers,
                                              HandshakeRequest& request);

// The response for a refused handshake: the status, and with 426 the version this server
// speaks (Sec-WebSocket-Version: 13) plus, over HTTP/1.1, Upgrade: websocket.
ResponseHeaders rejectionResponse(const HandshakeError& error, bool http2);

// Sec-WebSocket-Accept for a key: base64(SHA-1(key + GUID)). RFC 6455 §1.3's example:
// "dGhlIHNhbXBsZSBub25jZQ==" gives "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".
std::string computeAcceptKey(std::string_view key);

// Is `key` a valid Sec-WebSocket-Key: 24 characters of base64 that decode to 16 bytes?
bool isValidKey(std::string_view key);

// Splits Sec-WebSocket-Protocol values (all lines joined) into tokens. False if an item is
// not a token.
bool parseSubprotocols(std::string_view header, std::vector<std::string>& out);

// Headers of the response that accepts a handshake: 101 with Upgrade, Connection and
// Sec-WebSocket-Accept over HTTP/1.1; 200 over HTTP/2. `subprotocol` (empty for none)
// must be one the client offered. `deflate` is the result of negotiateDeflate() and
// becomes Sec-WebSocket-Extensions. `extra` are headers the application adds (cookies,
// for instance); those the handshake owns (Upgrade, Connection, Sec-WebSocket-*), body
// framing headers and pseudo-headers are left out. Fails (InvalidArgument) for a
// subprotocol the client did not offer or an extra header that is not a valid field.
absl::StatusOr<ResponseHeaders> acceptResponse(const HandshakeRequest& request,
                                               std::string_view subprotocol,
                                               const std::optional<DeflateParams>& deflate,
                                               const HeaderMap* extra = nullptr);

} // namespace pounce::http::websocket
