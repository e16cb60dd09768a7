#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "source/common/buffer.h"
#include "source/filters/common/accept_encoding.h"

namespace pounce::filters::compression {

// One streaming compression of one response body.
//
//   auto c = Compressor::create(Encoding::Gzip, levels);
//   c->compress("abc", out, /*finish=*/false); // out: everything needed to decode "abc"
//   c->compress("def", out, /*finish=*/true);  // out: the rest, stream closed
//
// Every call flushes (Z_SYNC_FLUSH, BROTLI_OPERATION_FLUSH, ZSTD_e_flush): what was given
// so far is decodable from what came out, so streamed responses are never held back.
// The last call finishes the stream (gzip trailer, zstd frame end, brotli last block).
class Compressor {
public:
  struct Levels {
    int gzip{6};
    int brotli{4};
    int zstd{3};
  };

  virtual ~Compressor() = default;

  // Appends the compressed form of `in` to `out`. Returns false if the library failed
  // (out of memory); the stream cannot continue then.
  virtual bool compress(std::string_view in, Buffer& out, bool finish) = 0;

  // zlib and zstd contexts are reused from a small per-thread pool (their set-up costs
  // hundreds of kilobytes of allocation); brotli's are made per response. Returns
  // nullptr when the library cannot allocate a context.
  // `size_hint` is the body's length when the response declared one (0 = unknown): zstd
  // and brotli then size their windows and tables to it (zstd records it in the frame),
  // which keeps memory small for the common small response.
  static std::unique_ptr<Compressor> create(Encoding encoding, const Levels& levels,
                                            uint64_t size_hint = 0);
};
using CompressorPtr = std::unique_ptr<Compressor>;

} // namespace pounce::filters::compression
