// libFuzzer driver for the WebSocket frame parser, through a server Session: the input
// (after one configuration byte) is split at points chosen by that byte and fed as reads
// from a client. Every message is echoed back, so the encoder and compressor run too.
//
// Beyond crashes and sanitizer reports, one property is checked: whatever the server
// writes must decode cleanly with a client-side FrameDecoder (unmasked, valid UTF-8 text,
// valid close codes, inflatable compressed data). A violation traps.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "source/common/time.h"
#include "source/http/websocket/session.h"

namespace {

using namespace pounce;
using namespace pounce::http::websocket;

constexpr uint64_t kMaxMessage = 1 << 16;

class Echo : public SessionCallbacks {
public:
  void onMessage(MessageType type, Buffer& payload) override {
    session->send(type, payload.view());
    if (payload.length() == 7) {
      session->close(4000, "seven");
    }
  }
  void onClose(const CloseInfo& info) override {
    if (++closes != 1) {
      __builtin_trap();
    }
  }
  Session* session{nullptr};
  int closes{0};
};

// The client's view of the server's output: any protocol error there is a server bug.
class ClientCheck : public DecoderCallbacks {
public:
  void onMessage(MessageType, Buffer&) override {}
  void onPing(std::string_view) override {}
  void onPong(std::string_view) override {}
  void onCloseFrame(uint16_t, std::string_view) override {}
  void onProtocolError(uint16_t, std::string_view) override { __builtin_trap(); }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) {
    return 0;
  }
  const uint8_t flags = data[0];
  const size_t step = 1 + (flags >> 3) % 32 * 7;
  std::optional<DeflateParams> deflate;
  if ((flags & 1) != 0) {
    deflate = DeflateParams{};
    deflate->server_max_window_bits = 9 + (flags >> 4) % 7;
    deflate->client_max_window_bits = 15;
    deflate->server_no_context_takeover = (flags & 4) != 0;
  }
  SessionConfig config;
  config.max_message_size = kMaxMessage;
  config.auto_pong = (flags & 2) == 0;
  config.fragment_size = (flags & 4) != 0 ? 100 : 0;

  Echo echo;
  Session session(config, echo, RealTimeSource::instance(), deflate);
  echo.session = &session;

  std::optional<MessageDecompressor> client_inflater;
  if (deflate) {
    client_inflater.emplace(deflate->server_max_window_bits, deflate->server_no_context_takeover);
  }
  DecoderConfig client_config;
  client_config.max_message_size = kMaxMessage + 1024;
  client_config.expect_masked = false;
  ClientCheck check;
  FrameDecoder client(client_config, check, client_inflater ? &*client_inflater : nullptr);

  Buffer input;
  for (size_t pos = 1; pos < size; pos += step) {
    const size_t n = std::min(step, size - pos);
    input.add(data + pos, n);
    session.onBytes(input);
    if (session.readingPaused()) {
      session.resumeReading();
    }
    client.decode(session.output());
    if (session.isClosed()) {
      break;
    }
  }
  session.onConnectionLost();
  client.decode(session.output());
  return 0;
}
