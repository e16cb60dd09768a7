// libFuzzer driver for the HTTP/2 codec (nghttp2 underneath). The input's first byte picks
// how the rest is split into reads and what the responder does; the connection preface is
// added in front so the fuzzer spends its time on frames. Streams are answered (sometimes
// with 103, trailers, or a reset), read-disabled and resumed, and the connection's output
// watermark and drain are toggled, as a connection manager would. Output is dropped between
// reads (a client that reads), except in the mode where it never is (one that does not).
// Any crash, sanitizer report or leak is a bug.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "source/common/logger.h"
#include "source/common/time.h"
#include "source/http/http2/codec.h"

namespace {

using namespace pounce;
using namespace pounce::http;

class FuzzStream : public RequestDecoder, public StreamCallbacks {
public:
  FuzzStream(ResponseEncoder& encoder, uint8_t mode) : encoder_(encoder), mode_(mode) {
    encoder_.setStreamCallbacks(this);
  }
  void decodeHeaders(RequestHeadersPtr headers, bool end_stream) override {
    if (mode_ & 0x01) {
      encoder_.readDisable(true);
    }
    if (end_stream) {
      respond(200);
    }
  }
  void decodeData(Buffer& data, bool end_stream) override {
    received_ += data.length();
    data.clear();
    if ((mode_ & 0x01) && received_ > 0) {
      encoder_.readDisable(false);
    }
    if (end_stream) {
      respond(200);
    }
  }
  void decodeTrailers(HeaderMapPtr) override { respond(200); }
  void onProtocolError(int status, std::string_view) override { respond(status); }
  void onResetStream(StreamResetReason) override { done_ = true; }
  void onAboveWriteBufferHighWatermark() override {}
  void onBelowWriteBufferLowWatermark() override {}

  void respond(int status) {
    if (done_) {
      return;
    }
    done_ = true;
    if (mode_ & 0x02) {
      ResponseHeaders hints(103);
      hints.add("link", "</a.css>; rel=preload");
      encoder_.encode1xxHeaders(hints);
    }
    if (mode_ & 0x04) {
      encoder_.resetStream();
      return;
    }
    ResponseHeaders h(status);
    h.add("x-bad", "a\r\nb");
    h.add("connection", "close");
    encoder_.encodeHeaders(h, false);
    Buffer body(std::string(received_ % 70000 + 1, 'r'));
    if (mode_ & 0x08) {
      encoder_.encodeData(body, false);
      HeaderMap trailers;
      trailers.add("x-t", "1");
      encoder_.encodeTrailers(trailers);
    } else {
      encoder_.encodeData(body, true);
    }
  }

private:
  ResponseEncoder& encoder_;
  const uint8_t mode_;
  uint64_t received_{0};
  bool done_{false};
};

class Connection : public ServerConnectionCallbacks {
public:
  explicit Connection(uint8_t mode) : mode_(mode) {}
  RequestDecoder& newStream(ResponseEncoder& encoder) override {
    streams_.push_back(std::make_unique<FuzzStream>(encoder, mode_));
    return *streams_.back();
  }
  void onCodecOutput() override {}
  void readDisable(bool) override {}
  void closeConnection(bool) override { closed_ = true; }

  const uint8_t mode_;
  std::vector<std::unique_ptr<FuzzStream>> streams_;
  bool closed_{false};
};

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Dropped-header warnings on every input would only slow the fuzzer down.
  pounce::log::setLevel(pounce::log::Level::Off);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) {
    return 0;
  }
  const uint8_t mode = data[0];
  const size_t step = 1 + (mode >> 4) * 97;
  std::string input(http2::kClientPreface);
  input.append(reinterpret_cast<const char*>(data + 1), size - 1);

  OutputQueue output;
  Connection connection(mode);
  CodecLimits limits;
  limits.max_header_bytes = 4096;
  limits.max_request_bytes = 1 << 16;
  limits.buffer_limit = 32768;
  http2::Http2Settings settings;
  settings.max_concurrent_streams = 16;
  settings.initial_stream_window_size = 65535;
  http2::ServerConnectionImpl codec(output, connection, limits, settings,
                                    RealTimeSource::instance());
  const bool reads = (mode & 0x10) == 0 || (mode & 0x20) != 0;
  Buffer buffer;
  for (size_t pos = 0; pos < input.size() && !connection.closed_; pos += step) {
    buffer.add(std::string_view(input).substr(pos, step));
    codec.dispatch(buffer);
    if (mode & 0x40) {
      codec.onAboveWriteBufferHighWatermark();
      codec.onBelowWriteBufferLowWatermark();
    }
    if (reads) {
      output.clear();
    }
  }
  if (mode & 0x80) {
    codec.shutdownNotice();
  }
  codec.onConnectionClosed();
  return 0;
}
