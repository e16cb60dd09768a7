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

// Compresses a whole body in one call, for a response whose body is all at hand.
//
//   WholeBodyCompressor* w = WholeBodyCompressor::forThread(Encoding::Gzip, levels);
//   if (w != nullptr) w->compress(body, out); // out: a complete gzip member
//
// Only gzip has one, which sees the whole input at once and needs no per-response set-up:
// at level 1 ISA-L's igzip (its level 1: about twice libdeflate's level-1 speed, output
// about zlib level 1's size: smaller on bodies of a few KB and up, a few bytes larger on
// small ones), at levels 2-9 libdeflate (the same levels as zlib's).
// brotli's and zstd's one-shot calls measured no faster than their streaming encoders
// given the whole body in one finishing call (which is what Compressor does then), so
// they have none.
class WholeBodyCompressor {
public:
  // This thread's compressor for `encoding` at its level in `levels`, made on first use
  // and kept for the thread's life (one per gzip level in use: about 360 KiB for level 1,
  // 650 KiB for the others). nullptr when the encoding has no one-shot path or the
  // library cannot allocate one. The pointer is for this thread only.
  static WholeBodyCompressor* forThread(Encoding encoding, const Compressor::Levels& levels);

  virtual ~WholeBodyCompressor() = default;

  // Appends the complete compressed form of `in` (gzip header, data and trailer) to `out`.
  // Returns false if the library failed; nothing is appended then.
  virtual bool compress(std::string_view in, Buffer& out) = 0;
};

} // namespace pounce::filters::compression
