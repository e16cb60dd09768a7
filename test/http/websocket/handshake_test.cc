#include <gtest/gtest.h>

#include "source/http/websocket/handshake.h"

namespace pounce::http::websocket {
namespace {

RequestHeaders goodRequest() {
  RequestHeaders h;
  h.setMethod("GET");
  h.setPath("/chat");
  h.setProtocol("HTTP/1.1");
  h.add("Host", "server.example.com");
  h.add("Upgrade", "websocket");
  h.add("Connection", "Upgrade");
  h.add("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
  h.add("Sec-WebSocket-Version", "13");
  return h;
}

RequestHeaders goodH2Request() {
  RequestHeaders h;
  h.setMethod("CONNECT");
  h.setConnectProtocol("websocket");
  h.setPath("/chat");
  h.setProtocol("HTTP/2");
  h.setScheme("https");
  h.add("sec-websocket-version", "13");
  return h;
}

int statusOf(const RequestHeaders& h) {
  HandshakeRequest request;
  auto err = validateRequest(h, request);
  return err ? err->status : 0;
}

TEST(Handshake, AcceptKeyMatchesRfc6455WorkedExample) {
  // RFC 6455 §1.3.
  EXPECT_EQ(computeAcceptKey("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  // RFC 6455 §4.2.2 example key is "dGhlIHNhbXBsZSBub25jZQ==" too; another known pair:
  EXPECT_EQ(computeAcceptKey("x3JJHMbDL1EzLkh9GBhXDw=="), "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
}

TEST(Handshake, AcceptsAValidHttp1Request) {
  HandshakeRequest request;
  RequestHeaders h = goodRequest();
  h.add("Sec-WebSocket-Protocol", "chat, superchat");
  h.add("Sec-WebSocket-Protocol", "v3");
  h.add("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits");
  ASSERT_FALSE(validateRequest(h, request).has_value());
  EXPECT_FALSE(request.http2);
  EXPECT_EQ(request.key, "dGhlIHNhbXBsZSBub25jZQ==");
  EXPECT_EQ(request.subprotocols, (std::vector<std::string>{"chat", "superchat", "v3"}));
  EXPECT_EQ(request.extensions, "permessage-deflate; client_max_window_bits");
  EXPECT_TRUE(isWebSocketRequest(h));
}

TEST(Handshake, TokensAreCaseInsensitiveAndListed) {
  RequestHeaders h = goodRequest();
  h.set("upgrade", "foo/1, WebSocket");
  h.set("connection", "keep-alive, UPGRADE");
  EXPECT_EQ(statusOf(h), 0);
}

TEST(Handshake, RefusesMalformedHttp1Requests) {
  {
    RequestHeaders h = goodRequest();
    h.setMethod("POST");
    EXPECT_EQ(statusOf(h), 400);
  }
  {
    RequestHeaders h = goodRequest();
    h.setProtocol("HTTP/1.0");
    EXPECT_EQ(statusOf(h), 400);
  }
  {
    RequestHeaders h = goodRequest();
    h.set("upgrade", "h2c");
    EXPECT_EQ(statusOf(h), 400);
    EXPECT_FALSE(isWebSocketRequest(h));
  }
  {
    RequestHeaders h = goodRequest();
    h.set("connection", "keep-alive");
    EXPECT_EQ(statusOf(h), 400);
  }
  {
    RequestHeaders h = goodRequest();
    h.remove("sec-websocket-key");
    EXPECT_EQ(statusOf(h), 400);
  }
  {
    RequestHeaders h = goodRequest();
    h.add("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==");
    EXPECT_EQ(statusOf(h), 400) << "two keys";
  }
  for (const char* key :
       {"", "dGhlIHNhbXBsZSBub25jZQ", "dGhlIHNhbXBsZSBub25jZQ=", "abc", "dGhlIHNhbXBsZSBub25jZQ==x",
        "dGhlIHNhbXBsZSBub25jZ===", "dGhlIHNhbXBsZSBub2!jZQ==", "dGhlIHNhbXBsZSBub25jZSBhYg=="}) {
    RequestHeaders h = goodRequest();
    h.set("sec-websocket-key", key);
    EXPECT_EQ(statusOf(h), 400) << key;
  }
  {
    RequestHeaders h = goodRequest();
    h.add("sec-websocket-protocol", "chat, not a token");
    EXPECT_EQ(statusOf(h), 400);
  }
}

TEST(Handshake, KeyWithSurroundingSpaceIsTrimmed) {
  RequestHeaders h = goodRequest();
  h.set("sec-websocket-key", " dGhlIHNhbXBsZSBub25jZQ== ");
  HandshakeRequest request;
  ASSERT_FALSE(validateRequest(h, request).has_value());
  EXPECT_EQ(request.key, "dGhlIHNhbXBsZSBub25jZQ==");
}

TEST(Handshake, OtherVersionsGet426WithVersion13) {
  for (const char* v : {"8", "12", "14", "13, 8", ""}) {
    RequestHeaders h = goodRequest();
    h.set("sec-websocket-version", v);
    HandshakeRequest request;
    auto err = validateRequest(h, request);
    ASSERT_TRUE(err.has_value()) << v;
    EXPECT_EQ(err->status, 426);
    ResponseHeaders r = rejectionResponse(*err, false);
    EXPECT_EQ(r.status(), 426);
    EXPECT_EQ(r.getOr("sec-websocket-version"), "13");
    EXPECT_EQ(r.getOr("upgrade"), "websocket");
  }
  RequestHeaders h = goodRequest();
  h.remove("sec-websocket-version");
  EXPECT_EQ(statusOf(h), 426);
  // A 400 carries no version header.
  ResponseHeaders r = rejectionResponse(HandshakeError{400, "bad"}, false);
  EXPECT_EQ(r.status(), 400);
  EXPECT_FALSE(r.has("sec-websocket-version"));
}

TEST(Handshake, BuildsThe101Response) {
  HandshakeRequest request;
  RequestHeaders h = goodRequest();
  h.add("Sec-WebSocket-Protocol", "chat, superchat");
  ASSERT_FALSE(validateRequest(h, request).has_value());
  HeaderMap extra;
  extra.add("Set-Cookie", "a=b");
  extra.add("Sec-WebSocket-Accept", "forged");
  extra.add("Connection", "close");
  extra.add("Content-Length", "5");
  auto r = acceptResponse(request, "superchat", std::nullopt, &extra);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status(), 101);
  EXPECT_EQ(r->getOr("upgrade"), "websocket");
  EXPECT_EQ(r->getOr("connection"), "Upgrade");
  EXPECT_EQ(r->getOr("sec-websocket-accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  EXPECT_EQ(r->getOr("sec-websocket-protocol"), "superchat");
  EXPECT_EQ(r->getOr("set-cookie"), "a=b");
  EXPECT_EQ(r->count("sec-websocket-accept"), 1u);
  EXPECT_EQ(r->count("connection"), 1u);
  EXPECT_FALSE(r->has("content-length"));
  EXPECT_FALSE(r->has("sec-websocket-extensions"));
}

TEST(Handshake, RefusesASubprotocolTheClientDidNotOffer) {
  HandshakeRequest request;
  RequestHeaders h = goodRequest();
  h.add("Sec-WebSocket-Protocol", "chat");
  ASSERT_FALSE(validateRequest(h, request).has_value());
  EXPECT_FALSE(acceptResponse(request, "superchat", std::nullopt).ok());
  EXPECT_TRUE(acceptResponse(request, "", std::nullopt).ok());
}

TEST(Handshake, RefusesInvalidExtraHeaders) {
  HandshakeRequest request;
  ASSERT_FALSE(validateRequest(goodRequest(), request).has_value());
  HeaderMap extra;
  extra.add("x-bad", "a\r\nb");
  EXPECT_FALSE(acceptResponse(request, "", std::nullopt, &extra).ok());
}

TEST(Handshake, AddsTheNegotiatedExtension) {
  HandshakeRequest request;
  RequestHeaders h = goodRequest();
  h.add("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits");
  ASSERT_FALSE(validateRequest(h, request).has_value());
  auto deflate = negotiateDeflate(request.extensions, DeflateConfig{});
  ASSERT_TRUE(deflate.has_value());
  auto r = acceptResponse(request, "", deflate);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->getOr("sec-websocket-extensions"),
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12");
}

TEST(Handshake, Http2ExtendedConnect) {
  RequestHeaders h = goodH2Request();
  h.add("sec-websocket-protocol", "chat");
  h.add("sec-websocket-extensions", "permessage-deflate");
  EXPECT_TRUE(isWebSocketRequest(h));
  HandshakeRequest request;
  ASSERT_FALSE(validateRequest(h, request).has_value());
  EXPECT_TRUE(request.http2);
  EXPECT_TRUE(request.key.empty());
  auto r = acceptResponse(request, "chat", negotiateDeflate(request.extensions, {}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status(), 200);
  EXPECT_FALSE(r->has("sec-websocket-accept"));
  EXPECT_FALSE(r->has("upgrade"));
  EXPECT_FALSE(r->has("connection"));
  EXPECT_EQ(r->getOr("sec-websocket-protocol"), "chat");
  EXPECT_EQ(r->getOr("sec-websocket-extensions"), "permessage-deflate; server_max_window_bits=12");
}

TEST(Handshake, Http2Refusals) {
  {
    RequestHeaders h = goodH2Request();
    h.set("sec-websocket-version", "12");
    HandshakeRequest request;
    auto err = validateRequest(h, request);
    ASSERT_TRUE(err.has_value());
    EXPECT_EQ(err->status, 426);
    ResponseHeaders r = rejectionResponse(*err, true);
    EXPECT_EQ(r.getOr("sec-websocket-version"), "13");
    EXPECT_FALSE(r.has("upgrade")) << "no Upgrade header in HTTP/2";
  }
  {
    RequestHeaders h = goodH2Request();
    h.setConnectProtocol("webtransport");
    EXPECT_FALSE(isWebSocketRequest(h));
    EXPECT_EQ(statusOf(h), 400);
  }
  {
    // A plain CONNECT (no :protocol) is not a WebSocket request.
    RequestHeaders h;
    h.setMethod("CONNECT");
    h.setProtocol("HTTP/2");
    EXPECT_FALSE(isWebSocketRequest(h));
  }
}

TEST(Handshake, ParseSubprotocolsSkipsEmptyItems) {
  std::vector<std::string> out;
  EXPECT_TRUE(parseSubprotocols(" a ,, b,", out));
  EXPECT_EQ(out, (std::vector<std::string>{"a", "b"}));
  out.clear();
  EXPECT_FALSE(parseSubprotocols("a, b c", out));
  out.clear();
  EXPECT_FALSE(parseSubprotocols("a, \"b\"", out));
}

} // namespace
} // namespace pounce::http::websocket
