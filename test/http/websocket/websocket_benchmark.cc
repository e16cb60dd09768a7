// Micro-benchmarks of the WebSocket hot paths (not a test):
//   bazel run -c opt //test/http/websocket:websocket_benchmark
#include <benchmark/benchmark.h>

#include <string>

#include "source/http/websocket/session.h"
#include "source/http/websocket/utf8.h"
#include "test/http/websocket/test_util.h"

namespace pounce::http::websocket::test {
namespace {

class Sink : public SessionCallbacks {
public:
  void onMessage(MessageType type, Buffer& payload) override {
    bytes += payload.length();
    if (echo) {
      session->send(type, payload.view());
    }
  }
  void onClose(const CloseInfo&) override {}
  Session* session{nullptr};
  bool echo{false};
  size_t bytes{0};
};

// Many small masked text frames arriving in one read.
void decodeSmall(benchmark::State& state, bool echo, bool compressed) {
  const size_t size = static_cast<size_t>(state.range(0));
  const std::string text(size, 'a');
  constexpr int kMessages = 64;
  std::string wire;
  std::optional<DeflateParams> deflate;
  if (compressed) {
    // No context takeover, so the same compressed frame can be replayed.
    DeflateParams p;
    p.client_no_context_takeover = true;
    p.server_no_context_takeover = true;
    deflate = p;
    MessageCompressor c(15, true, 6, 8);
    std::string z;
    c.compress(text, z);
    for (int i = 0; i < kMessages; ++i) {
      wire += clientFrame(0x1, z, true, 4);
    }
  } else {
    for (int i = 0; i < kMessages; ++i) {
      wire += textFrame(text);
    }
  }
  Sink sink;
  sink.echo = echo;
  SessionConfig config;
  Session session(config, sink, RealTimeSource::instance(), deflate);
  sink.session = &session;
  Buffer input;
  for (auto _ : state) {
    input.add(wire);
    session.onBytes(input);
    session.output().clear();
  }
  state.SetItemsProcessed(state.iterations() * kMessages);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * wire.size()));
}

void BM_DecodeText(benchmark::State& state) { decodeSmall(state, false, false); }
void BM_EchoText(benchmark::State& state) { decodeSmall(state, true, false); }
void BM_EchoCompressedText(benchmark::State& state) { decodeSmall(state, true, true); }
BENCHMARK(BM_DecodeText)->Arg(16)->Arg(128)->Arg(1024);
BENCHMARK(BM_EchoText)->Arg(16)->Arg(128)->Arg(1024);
BENCHMARK(BM_EchoCompressedText)->Arg(16)->Arg(1024);

// One 1 MiB binary frame arriving in 64 KiB reads.
void BM_DecodeLargeBinary(benchmark::State& state) {
  const std::string frame = binaryFrame(std::string(1 << 20, 'b'));
  Sink sink;
  SessionConfig config;
  Session session(config, sink, RealTimeSource::instance());
  Buffer input;
  for (auto _ : state) {
    for (size_t pos = 0; pos < frame.size(); pos += 65536) {
      input.add(std::string_view(frame).substr(pos, 65536));
      session.onBytes(input);
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * frame.size()));
}
BENCHMARK(BM_DecodeLargeBinary);

// Server-side compression of one message, at the default settings (12-bit window,
// memLevel 5); range(1) = 1 compresses every message alone (no context takeover).
void BM_Compress(benchmark::State& state) {
  const std::string text = std::string("{\"event\": \"tick\", \"seq\": 12345, \"data\": \"") +
                           std::string(static_cast<size_t>(state.range(0)), 'x') + "\"}";
  MessageCompressor c(12, state.range(1) != 0, 6, 5);
  std::string out;
  for (auto _ : state) {
    out.clear();
    c.compress(text, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Compress)->Args({16, 0})->Args({16, 1})->Args({1024, 0})->Args({1024, 1});

// Inflating one small message (the client keeps no context, so it can be replayed).
void BM_Decompress(benchmark::State& state) {
  const std::string text(static_cast<size_t>(state.range(0)), 'y');
  MessageCompressor c(15, true, 6, 8);
  std::string z;
  c.compress(text, z);
  MessageDecompressor d(15, true);
  Buffer out;
  for (auto _ : state) {
    out.clear();
    d.feed(z.data(), z.size(), out, 1 << 20);
    d.finish(out, 1 << 20);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Decompress)->Arg(16)->Arg(1024);

void BM_MaskCopy(benchmark::State& state) {
  const std::string src(1 << 16, 'm');
  std::string dst(src.size(), '\0');
  const uint8_t key[4] = {1, 2, 3, 4};
  for (auto _ : state) {
    maskCopy(dst.data(), src.data(), src.size(), key, 1);
    benchmark::DoNotOptimize(dst.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * src.size()));
}
BENCHMARK(BM_MaskCopy);

void BM_Utf8(benchmark::State& state) {
  std::string text;
  while (text.size() < (1 << 16)) {
    text += state.range(0) == 0 ? "plain ascii text " : "κόσμε 😀 mixed ";
  }
  for (auto _ : state) {
    benchmark::DoNotOptimize(Utf8Validator::valid(text));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}
BENCHMARK(BM_Utf8)->Arg(0)->Arg(1);

} // namespace
} // namespace pounce::http::websocket::test

BENCHMARK_MAIN();
