#include "source/http/websocket/handshake.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "source/common/strings.h"

namespace pounce::http::websocket {

namespace {

bool isBase64Char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

// Fields the handshake itself sets, or that make no sense on a 101/200 without a body.
bool isHandshakeOwned(std::string_view name) {
  return name == "upgrade" || name == "connection" || name == "sec-websocket-accept" ||
         name == "sec-websocket-protocol" || name == "sec-websocket-extensions" ||
         name == "sec-websocket-version" || name == "content-length" ||
         name == "transfer-encoding" || name == "keep-alive" || name == "proxy-connection" ||
         (!name.empty() && name[0] == ':');
}

HandshakeError error(int status, std::string_view message) {
  return HandshakeError{status, std::string(message)};
}

} // namespace

bool isWebSocketRequest(const RequestHeaders& headers) {
  if (!headers.connectProtocol().empty()) {
    return headers.method() == "CONNECT" &&
           equalsIgnoreCase(headers.connectProtocol(), "websocket");
  }
  return headers.has("upgrade") && hasToken(headers.getJoined("upgrade"), "websocket");
}

bool isValidKey(std::string_view key) {
  // 16 bytes are 22 base64 characters (the last carrying 2 bits) and "==".
  if (key.size() != 24 || key[22] != '=' || key[23] != '=') {
    return false;
  }
  for (size_t i = 0; i < 22; ++i) {
    if (!isBase64Char(key[i])) {
      return false;
    }
  }
  return true;
}

bool parseSubprotocols(std::string_view header, std::vector<std::string>& out) {
  for (std::string_view item : split(header, ',')) {
    item = trim(item);
    if (item.empty()) {
      continue;
    }
    if (!isValidHeaderName(item)) { // header names are exactly RFC 9110 tokens
      return false;
    }
    out.emplace_back(item);
  }
  return true;
}

std::optional<HandshakeError> validateRequest(const RequestHeaders& headers,
                                              HandshakeRequest& request) {
  request = HandshakeRequest();
  if (!headers.connectProtocol().empty()) {
    // RFC 8441.
    if (headers.method() != "CONNECT" ||
        !equalsIgnoreCase(headers.connectProtocol(), "websocket")) {
      return error(400, "extended CONNECT for a protocol other than websocket");
    }
    request.http2 = true;
  } else {
    if (headers.protocol() == "HTTP/1.0" || headers.protocol() == "HTTP/0.9") {
      return error(400, "WebSocket needs HTTP/1.1 or later");
    }
    if (headers.method() != "GET") {
      return error(400, "WebSocket handshake must be a GET request");
    }
    if (!hasToken(headers.getJoined("upgrade"), "websocket")) {
      return error(400, "Upgrade header does not name websocket");
    }
    if (!hasToken(headers.getJoined("connection"), "upgrade")) {
      return error(400, "Connection header does not include upgrade");
    }
    if (headers.count("sec-websocket-key") != 1) {
      return error(400, "exactly one Sec-WebSocket-Key is required");
    }
    const std::string_view key = trim(headers.getOr("sec-websocket-key"));
    if (!isValidKey(key)) {
      return error(400, "Sec-WebSocket-Key is not base64 of 16 bytes");
    }
    request.key.assign(key.data(), key.size());
  }
  if (trim(headers.getJoined("sec-websocket-version")) != kVersion) {
    return error(426, "unsupported Sec-WebSocket-Version (this server speaks 13)");
  }
  if (headers.has("sec-websocket-protocol") &&
      !parseSubprotocols(headers.getJoined("sec-websocket-protocol"), request.subprotocols)) {
    return error(400, "malformed Sec-WebSocket-Protocol");
  }
  request.extensions = headers.getJoined("sec-websocket-extensions");
  return std::nullopt;
}

ResponseHeaders rejectionResponse(const HandshakeError& error, bool http2) {
  ResponseHeaders response(error.status);
  if (error.status == 426) {
    response.add("sec-websocket-version", kVersion);
    if (!http2) {
      response.add("upgrade", "websocket");
      response.add("connection", "upgrade");
    }
  }
  return response;
}

std::string computeAcceptKey(std::string_view key) {
  std::string input;
  input.reserve(key.size() + kAcceptGuid.size());
  input.append(key.data(), key.size());
  input.append(kAcceptGuid.data(), kAcceptGuid.size());
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  // 20 bytes → 28 characters plus the terminating NUL EVP_EncodeBlock writes.
  unsigned char encoded[32];
  const int n = EVP_EncodeBlock(encoded, digest, SHA_DIGEST_LENGTH);
  return std::string(reinterpret_cast<const char*>(encoded), static_cast<size_t>(n));
}

absl::StatusOr<ResponseHeaders> acceptResponse(const HandshakeRequest& request,
                                               std::string_view subprotocol,
                                               const std::optional<DeflateParams>& deflate,
                                               const HeaderMap* extra) {
  if (!subprotocol.empty()) {
    bool offered = false;
    for (const std::string& p : request.subprotocols) {
      offered = offered || p == subprotocol;
    }
    if (!offered) {
      return absl::InvalidArgumentError(
          cat("subprotocol '", subprotocol, "' was not offered by the client"));
    }
  }
  ResponseHeaders response(request.http2 ? 200 : 101);
  if (!request.http2) {
    response.add("upgrade", "websocket");
    response.add("connection", "Upgrade");
    response.add("sec-websocket-accept", computeAcceptKey(request.key));
  }
  if (!subprotocol.empty()) {
    response.add("sec-websocket-protocol", subprotocol);
  }
  if (deflate) {
    response.add("sec-websocket-extensions", formatDeflateResponse(*deflate));
  }
  if (extra != nullptr) {
    for (const auto [name, value] : *extra) {
      if (!isValidHeaderName(name) || !isValidHeaderValue(value)) {
        return absl::InvalidArgumentError(cat("invalid response header '", name, "'"));
      }
      // Names in a HeaderMap are lowercase already.
      if (!isHandshakeOwned(name)) {
        response.add(name, value);
      }
    }
  }
  return response;
}

} // namespace pounce::http::websocket
