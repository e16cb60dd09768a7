// Test-only WebSocket echo server over the pounce WebSocket library, for interop tests with
// third-party clients (python3-websockets, wsproto). It listens on 127.0.0.1 on a free port,
// prints "PORT <n>", serves one connection (the handshake with handshake.h, then a Session
// that echoes every message), prints what happened, and exits.
//
// Flags: --max-message-size N  --fragment-size N  --no-compression
//        --server-window-bits N  --client-window-bits N  --server-no-context-takeover
//        --client-no-context-takeover  --min-compress-size N  --subprotocols a,b
//        --ping-interval-ms N  --ping-timeout-ms N  --close-timeout-ms N
//
// A text message "!close CODE REASON" makes the server close with that code; "!ping DATA"
// makes it send a ping. Output lines: "PORT n", "REJECTED status", "ACCEPTED extensions=...
// subprotocol=...", "PONG data", "CLOSED code cause reason".
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "source/common/strings.h"
#include "source/http/websocket/handshake.h"
#include "source/http/websocket/session.h"

namespace {

using namespace pounce;
using namespace pounce::http;
using namespace pounce::http::websocket;

struct Options {
  SessionConfig session;
  std::vector<std::string> subprotocols;
};

bool writeAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

std::string serializeResponse(const ResponseHeaders& headers, bool with_empty_body) {
  std::string out = cat("HTTP/1.1 ", headers.status(), " ", reasonPhrase(headers.status()), "\r\n");
  for (const auto [name, value] : headers) {
    out += cat(name, ": ", value, "\r\n");
  }
  if (with_empty_body) {
    out += "content-length: 0\r\nconnection: close\r\n";
  }
  out += "\r\n";
  return out;
}

// Parses "METHOD target HTTP/x.y" and header lines (test-grade: no folding, no limits
// beyond the caller's).
bool parseHead(std::string_view head, RequestHeaders& headers) {
  const size_t line_end = head.find("\r\n");
  const auto parts = split(head.substr(0, line_end), ' ');
  if (parts.size() != 3) {
    return false;
  }
  headers.setMethod(parts[0]);
  headers.setPath(parts[1]);
  headers.setProtocol(parts[2]);
  size_t pos = line_end + 2;
  while (pos < head.size()) {
    const size_t end = head.find("\r\n", pos);
    const std::string_view line = head.substr(pos, end - pos);
    pos = end == std::string_view::npos ? head.size() : end + 2;
    if (line.empty()) {
      break;
    }
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      return false;
    }
    headers.add(line.substr(0, colon), trim(line.substr(colon + 1)));
  }
  return true;
}

class Echo : public SessionCallbacks {
public:
  void onMessage(MessageType type, Buffer& payload) override {
    const std::string_view text = payload.view();
    if (type == MessageType::Text && startsWith(text, "!close ")) {
      const auto parts = split(text.substr(7), ' ');
      uint64_t code = 0;
      parseUint(parts[0], code);
      const size_t reason_at = 7 + parts[0].size() + 1;
      session->close(static_cast<uint16_t>(code),
                     reason_at < text.size() ? text.substr(reason_at) : std::string_view());
      return;
    }
    if (type == MessageType::Text && startsWith(text, "!ping ")) {
      session->sendPing(text.substr(6));
      return;
    }
    session->send(type, text);
  }
  void onPong(std::string_view payload) override {
    std::printf("PONG %.*s\n", static_cast<int>(payload.size()), payload.data());
    std::fflush(stdout);
  }
  void onClose(const CloseInfo& info) override {
    static const char* const kCauses[] = {"PeerClosed",    "CloseHandshakeCompleted",
                                          "ProtocolError", "PingTimeout",
                                          "CloseTimeout",  "ConnectionLost"};
    std::printf("CLOSED %u %s %.*s\n", info.code, kCauses[static_cast<int>(info.cause)],
                static_cast<int>(info.reason.size()), info.reason.data());
    std::fflush(stdout);
  }
  Session* session{nullptr};
};

int serve(int fd, const Options& options) {
  // The request head.
  Buffer input;
  size_t head_end = std::string::npos;
  while (head_end == std::string::npos) {
    char* dst = input.reserve(4096);
    const ssize_t n = ::recv(fd, dst, 4096, 0);
    input.commit(n > 0 ? static_cast<size_t>(n) : 0);
    if (n <= 0 || input.length() > 16384) {
      std::printf("CLOSED 1006 ConnectionLost no handshake\n");
      return 1;
    }
    head_end = input.view().find("\r\n\r\n");
  }
  RequestHeaders headers;
  if (!parseHead(input.view().substr(0, head_end + 2), headers)) {
    writeAll(fd, serializeResponse(ResponseHeaders(400), true));
    std::printf("REJECTED 400\n");
    return 0;
  }
  input.drain(head_end + 4);

  HandshakeRequest request;
  if (!isWebSocketRequest(headers)) {
    writeAll(fd, serializeResponse(ResponseHeaders(400), true));
    std::printf("REJECTED 400\n");
    return 0;
  }
  if (auto error = validateRequest(headers, request)) {
    writeAll(fd, serializeResponse(rejectionResponse(*error, false), true));
    std::printf("REJECTED %d %s\n", error->status, error->message.c_str());
    return 0;
  }
  std::string subprotocol;
  for (const std::string& offered : request.subprotocols) {
    for (const std::string& ours : options.subprotocols) {
      if (subprotocol.empty() && offered == ours) {
        subprotocol = offered;
      }
    }
  }
  const auto deflate = negotiateDeflate(request.extensions, options.session.deflate);
  HeaderMap extra;
  extra.add("x-echo-server", "pounce");
  auto response = acceptResponse(request, subprotocol, deflate, &extra);
  if (!response.ok()) {
    std::printf("REJECTED 500 %s\n", std::string(response.status().message()).c_str());
    return 1;
  }
  if (!writeAll(fd, serializeResponse(*response, false))) {
    return 1;
  }
  std::printf("ACCEPTED extensions=%s subprotocol=%s\n",
              deflate ? formatDeflateResponse(*deflate).c_str() : "", subprotocol.c_str());
  std::fflush(stdout);

  Echo echo;
  Session session(options.session, echo, RealTimeSource::instance(), deflate);
  echo.session = &session;
  session.onBytes(input);
  while (true) {
    if (session.pendingOutput() > 0) {
      if (!writeAll(fd, session.output().view())) {
        session.onConnectionLost();
        break;
      }
      session.output().clear();
    }
    if (session.isClosed()) {
      break;
    }
    int timeout_ms = -1;
    if (auto deadline = session.nextTimeout()) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          *deadline - RealTimeSource::instance().monotonicTime());
      timeout_ms = static_cast<int>(std::max<int64_t>(0, left.count()) + 1);
    }
    pollfd p{fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, timeout_ms);
    if (ready == 0) {
      session.onTimeout();
      continue;
    }
    char* dst = input.reserve(65536);
    const ssize_t n = ::recv(fd, dst, 65536, 0);
    input.commit(n > 0 ? static_cast<size_t>(n) : 0);
    if (n <= 0) {
      session.onConnectionLost();
      break;
    }
    session.onBytes(input);
  }
  // RFC 6455 §7.1.1: the server closes the TCP connection first.
  ::shutdown(fd, SHUT_WR);
  return 0;
}

bool parseFlag(int argc, char** argv, int& i, const char* name, uint64_t& value) {
  if (std::strcmp(argv[i], name) != 0 || i + 1 >= argc) {
    return false;
  }
  if (!parseUint(argv[++i], value)) {
    std::fprintf(stderr, "%s: not a number: %s\n", name, argv[i]);
    std::exit(2);
  }
  return true;
}

} // namespace

int main(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    uint64_t v = 0;
    if (parseFlag(argc, argv, i, "--max-message-size", v)) {
      options.session.max_message_size = v;
    } else if (parseFlag(argc, argv, i, "--fragment-size", v)) {
      options.session.fragment_size = v;
    } else if (parseFlag(argc, argv, i, "--min-compress-size", v)) {
      options.session.deflate.min_compress_size = v;
    } else if (parseFlag(argc, argv, i, "--server-window-bits", v)) {
      options.session.deflate.server_max_window_bits = static_cast<int>(v);
    } else if (parseFlag(argc, argv, i, "--client-window-bits", v)) {
      options.session.deflate.client_max_window_bits = static_cast<int>(v);
    } else if (parseFlag(argc, argv, i, "--ping-interval-ms", v)) {
      options.session.ping_interval = std::chrono::milliseconds(v);
    } else if (parseFlag(argc, argv, i, "--ping-timeout-ms", v)) {
      options.session.ping_timeout = std::chrono::milliseconds(v);
    } else if (parseFlag(argc, argv, i, "--close-timeout-ms", v)) {
      options.session.close_timeout = std::chrono::milliseconds(v);
    } else if (std::strcmp(argv[i], "--no-compression") == 0) {
      options.session.deflate.enabled = false;
    } else if (std::strcmp(argv[i], "--server-no-context-takeover") == 0) {
      options.session.deflate.server_no_context_takeover = true;
    } else if (std::strcmp(argv[i], "--client-no-context-takeover") == 0) {
      options.session.deflate.client_no_context_takeover = true;
    } else if (std::strcmp(argv[i], "--subprotocols") == 0 && i + 1 < argc) {
      for (std::string_view p : split(argv[++i], ',')) {
        options.subprotocols.emplace_back(p);
      }
    } else {
      std::fprintf(stderr, "unknown flag %s\n", argv[i]);
      return 2;
    }
  }

  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (listener < 0 || ::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(listener, 1) != 0 ||
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::perror("listen");
    return 1;
  }
  std::printf("PORT %u\n", ntohs(addr.sin_port));
  std::fflush(stdout);
  const int fd = ::accept(listener, nullptr, nullptr);
  ::close(listener);
  if (fd < 0) {
    std::perror("accept");
    return 1;
  }
  const int rc = serve(fd, options);
  std::fflush(stdout);
  // Wait briefly for the client to close its side, then close ours.
  pollfd p{fd, POLLIN, 0};
  char scratch[4096];
  for (int i = 0; i < 20 && ::poll(&p, 1, 100) > 0; ++i) {
    if (::recv(fd, scratch, sizeof(scratch), 0) <= 0) {
      break;
    }
  }
  ::close(fd);
  return rc;
}
