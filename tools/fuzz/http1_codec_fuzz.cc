// libFuzzer driver for the HTTP/1.1 codec: the input is split at points chosen by its
// first bytes and fed as a connection would, with a responder that answers each request.
// Any crash, sanitizer report or leak is a bug.
#include <cstddef>
#include <cstdint>
#include <string>

#include "source/common/time.h"
#include "source/http/http1/codec.h"

namespace {

using namespace pounce;
using namespace pounce::http;

class Responder : public ServerConnectionCallbacks, public RequestDecoder {
public:
  RequestDecoder& newStream(ResponseEncoder& encoder) override {
    encoder_ = &encoder;
    return *this;
  }
  void onCodecOutput() override {}
  void readDisable(bool disable) override { paused_ = disable; }
  void closeConnection(bool) override { closed_ = true; }
  void decodeHeaders(RequestHeadersPtr headers, bool end_stream) override {
    if (end_stream) {
      respond(200);
    }
  }
  void decodeData(Buffer& data, bool end_stream) override {
    if (end_stream) {
      respond(200);
    }
  }
  void decodeTrailers(HeaderMapPtr) override { respond(200); }
  void onProtocolError(int status, std::string_view) override { respond(status); }
  void respond(int status) {
    ResponseHeaders h(status);
    h.add("x-bad", "a\r\nb");
    encoder_->encodeHeaders(h, false);
    Buffer b("ok");
    encoder_->encodeData(b, true);
  }
  ResponseEncoder* encoder_{nullptr};
  bool paused_{false};
  bool closed_{false};
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) {
    return 0;
  }
  const size_t step = 1 + data[0] % 64;
  const std::string input(reinterpret_cast<const char*>(data + 1), size - 1);
  OutputQueue output;
  Responder responder;
  CodecLimits limits;
  limits.max_header_bytes = 4096;
  limits.max_request_bytes = 1 << 16;
  http1::ServerConnectionImpl codec(output, responder, limits, RealTimeSource::instance());
  Buffer buffer;
  for (size_t pos = 0; pos < input.size() && !responder.closed_; pos += step) {
    buffer.add(input.substr(pos, step));
    codec.dispatch(buffer);
    if (responder.paused_) {
      responder.paused_ = false;
      codec.dispatch(buffer);
    }
    output.clear();
  }
  codec.onConnectionClosed();
  return 0;
}
