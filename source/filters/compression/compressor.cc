#include "source/filters/compression/compressor.h"

#include <brotli/encode.h>
#include <libdeflate.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <array>
#include <vector>

#include <isa-l/igzip_lib.h>

namespace pounce::filters::compression {

namespace {

// Idle contexts kept per I/O thread and algorithm: enough for the responses one thread
// compresses at a time in practice, small enough that idle memory stays bounded.
constexpr size_t kPoolSize = 4;
// Output is produced in steps of at least this many bytes.
constexpr size_t kMinOutStep = 4096;

// A per-thread free list of library contexts.
template <class T, void (*Free)(T*)>
class Pool {
public:
  ~Pool() {
    for (T* t : idle_) {
      Free(t);
    }
  }
  T* take() {
    if (idle_.empty()) {
      return nullptr;
    }
    T* t = idle_.back();
    idle_.pop_back();
    return t;
  }
  // Keeps `t` for reuse, or frees it when the pool is full.
  void give(T* t) {
    if (idle_.size() < kPoolSize) {
      idle_.push_back(t);
    } else {
      Free(t);
    }
  }

private:
  std::vector<T*> idle_;
};

void freeZstream(z_stream* z) {
  deflateEnd(z);
  delete z;
}

void freeZstd(ZSTD_CCtx* c) { ZSTD_freeCCtx(c); }

Pool<z_stream, freeZstream>& zlibPool() {
  thread_local Pool<z_stream, freeZstream> pool;
  return pool;
}

Pool<ZSTD_CCtx, freeZstd>& zstdPool() {
  thread_local Pool<ZSTD_CCtx, freeZstd> pool;
  return pool;
}

size_t outStep(size_t in) { return std::max(kMinOutStep, in + in / 8 + 64); }

class GzipCompressor : public Compressor {
public:
  explicit GzipCompressor(int level) {
    z_ = zlibPool().take();
    if (z_ != nullptr) {
      if (deflateReset(z_) != Z_OK || deflateParams(z_, level, Z_DEFAULT_STRATEGY) != Z_OK) {
        freeZstream(z_);
        z_ = nullptr;
      }
    }
    if (z_ == nullptr) {
      z_ = new z_stream{};
      // windowBits 15 + 16: a gzip wrapper (RFC 1952) rather than zlib's.
      if (deflateInit2(z_, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        delete z_;
        z_ = nullptr;
      }
    }
  }
  ~GzipCompressor() override {
    if (z_ != nullptr) {
      zlibPool().give(z_);
    }
  }

  bool ready() const { return z_ != nullptr; }

  bool compress(std::string_view in, Buffer& out, bool finish) override {
    if (z_ == nullptr) {
      return false;
    }
    z_->next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z_->avail_in = static_cast<uInt>(in.size());
    const int flush = finish ? Z_FINISH : Z_SYNC_FLUSH;
    while (true) {
      const size_t step = outStep(z_->avail_in);
      char* p = out.reserve(step);
      z_->next_out = reinterpret_cast<Bytef*>(p);
      z_->avail_out = static_cast<uInt>(step);
      const int rc = deflate(z_, flush);
      out.commit(step - z_->avail_out);
      if (rc == Z_STREAM_ERROR) {
        return false;
      }
      if (finish ? rc == Z_STREAM_END : (z_->avail_in == 0 && z_->avail_out != 0)) {
        return true;
      }
    }
  }

private:
  z_stream* z_{nullptr};
};

class BrotliCompressor : public Compressor {
public:
  BrotliCompressor(int quality, uint64_t size_hint) {
    state_ = BrotliEncoderCreateInstance(nullptr, nullptr, nullptr);
    if (state_ != nullptr) {
      BrotliEncoderSetParameter(state_, BROTLI_PARAM_QUALITY, static_cast<uint32_t>(quality));
      BrotliEncoderSetParameter(state_, BROTLI_PARAM_MODE, BROTLI_MODE_TEXT);
      if (size_hint != 0) {
        BrotliEncoderSetParameter(state_, BROTLI_PARAM_SIZE_HINT,
                                  static_cast<uint32_t>(std::min<uint64_t>(size_hint, 1u << 30)));
      }
    }
  }
  ~BrotliCompressor() override {
    if (state_ != nullptr) {
      BrotliEncoderDestroyInstance(state_);
    }
  }

  bool ready() const { return state_ != nullptr; }

  bool compress(std::string_view in, Buffer& out, bool finish) override {
    if (state_ == nullptr) {
      return false;
    }
    size_t avail_in = in.size();
    const uint8_t* next_in = reinterpret_cast<const uint8_t*>(in.data());
    const BrotliEncoderOperation op = finish ? BROTLI_OPERATION_FINISH : BROTLI_OPERATION_FLUSH;
    while (true) {
      const size_t step = outStep(avail_in);
      char* p = out.reserve(step);
      size_t avail_out = step;
      uint8_t* next_out = reinterpret_cast<uint8_t*>(p);
      const bool ok = BrotliEncoderCompressStream(state_, op, &avail_in, &next_in, &avail_out,
                                                  &next_out, nullptr) == BROTLI_TRUE;
      out.commit(step - avail_out);
      if (!ok) {
        return false;
      }
      if (avail_in == 0 && !BrotliEncoderHasMoreOutput(state_) &&
          (!finish || BrotliEncoderIsFinished(state_))) {
        return true;
      }
    }
  }

private:
  BrotliEncoderState* state_{nullptr};
};

class ZstdCompressor : public Compressor {
public:
  ZstdCompressor(int level, uint64_t size_hint) {
    ctx_ = zstdPool().take();
    if (ctx_ == nullptr) {
      ctx_ = ZSTD_createCCtx();
    } else {
      ZSTD_CCtx_reset(ctx_, ZSTD_reset_session_and_parameters);
    }
    if (ctx_ != nullptr) {
      ZSTD_CCtx_setParameter(ctx_, ZSTD_c_compressionLevel, level);
      ZSTD_CCtx_setParameter(ctx_, ZSTD_c_checksumFlag, 1);
      if (size_hint != 0) {
        // The frame then records the size, and the window and tables fit the body.
        ZSTD_CCtx_setPledgedSrcSize(ctx_, size_hint);
      }
    }
  }
  ~ZstdCompressor() override {
    if (ctx_ != nullptr) {
      ZSTD_CCtx_reset(ctx_, ZSTD_reset_session_only);
      zstdPool().give(ctx_);
    }
  }

  bool ready() const { return ctx_ != nullptr; }

  bool compress(std::string_view in, Buffer& out, bool finish) override {
    if (ctx_ == nullptr) {
      return false;
    }
    ZSTD_inBuffer input{in.data(), in.size(), 0};
    const ZSTD_EndDirective mode = finish ? ZSTD_e_end : ZSTD_e_flush;
    while (true) {
      const size_t step = outStep(input.size - input.pos);
      char* p = out.reserve(step);
      ZSTD_outBuffer output{p, step, 0};
      const size_t remaining = ZSTD_compressStream2(ctx_, &output, &input, mode);
      out.commit(output.pos);
      if (ZSTD_isError(remaining)) {
        return false;
      }
      if (remaining == 0 && input.pos == input.size) {
        return true;
      }
    }
  }

private:
  ZSTD_CCtx* ctx_{nullptr};
};

template <class T>
std::unique_ptr<Compressor> readyOrNull(std::unique_ptr<T> c) {
  if (!c->ready()) {
    return nullptr;
  }
  return c;
}

} // namespace

std::unique_ptr<Compressor> Compressor::create(Encoding encoding, const Levels& levels,
                                               uint64_t size_hint) {
  switch (encoding) {
  case Encoding::Gzip:
    return readyOrNull(std::make_unique<GzipCompressor>(levels.gzip));
  case Encoding::Brotli:
    return readyOrNull(std::make_unique<BrotliCompressor>(levels.brotli, size_hint));
  case Encoding::Zstd:
    return readyOrNull(std::make_unique<ZstdCompressor>(levels.zstd, size_hint));
  }
  return nullptr;
}

namespace {

// libdeflate: gzip levels 2-9.
class LibdeflateCompressor final : public WholeBodyCompressor {
public:
  explicit LibdeflateCompressor(libdeflate_compressor* c) : c_(c) {}
  ~LibdeflateCompressor() override { libdeflate_free_compressor(c_); }
  LibdeflateCompressor(const LibdeflateCompressor&) = delete;
  LibdeflateCompressor& operator=(const LibdeflateCompressor&) = delete;

  bool compress(std::string_view in, Buffer& out) override {
    // The bound holds any input (libdeflate falls back to stored blocks), so a result of 0
    // cannot mean "did not fit".
    const size_t bound = libdeflate_gzip_compress_bound(c_, in.size());
    char* p = out.reserve(bound);
    const size_t n = libdeflate_gzip_compress(c_, in.data(), in.size(), p, bound);
    out.commit(n);
    return n != 0;
  }

private:
  libdeflate_compressor* c_;
};

// ISA-L's igzip at its level 1: gzip level 1. Its stateless call compresses the whole
// input; the stream struct (about 80 KiB) and the level's hash buffer are kept.
class IgzipCompressor final : public WholeBodyCompressor {
public:
  IgzipCompressor() : level_buf_(std::make_unique<uint8_t[]>(ISAL_DEF_LVL1_DEFAULT)) {}

  bool compress(std::string_view in, Buffer& out) override {
    // Room for the input as stored blocks (5 bytes of header per 65 535 bytes) plus the
    // gzip header and trailer: igzip writes stored blocks when compressing would not fit,
    // so this always suffices. The stateless call takes 32-bit lengths: a body of 4 GiB or
    // more in one piece goes to libdeflate's level 1.
    const size_t bound = in.size() + 5 * (in.size() / 65535 + 1) + 64;
    if (bound > UINT32_MAX) {
      if (large_ == nullptr) {
        libdeflate_compressor* c = libdeflate_alloc_compressor(1);
        if (c == nullptr) {
          return false;
        }
        large_ = std::make_unique<LibdeflateCompressor>(c);
      }
      return large_->compress(in, out);
    }
    isal_deflate_stateless_init(&stream_);
    stream_.level = 1;
    stream_.level_buf = level_buf_.get();
    stream_.level_buf_size = ISAL_DEF_LVL1_DEFAULT;
    stream_.gzip_flag = IGZIP_GZIP;
    stream_.end_of_stream = 1;
    stream_.flush = NO_FLUSH;
    // igzip does not write its input; its API is not const-qualified.
    stream_.next_in = reinterpret_cast<uint8_t*>(const_cast<char*>(in.data()));
    stream_.avail_in = static_cast<uint32_t>(in.size());
    char* p = out.reserve(bound);
    stream_.next_out = reinterpret_cast<uint8_t*>(p);
    stream_.avail_out = static_cast<uint32_t>(bound);
    if (isal_deflate_stateless(&stream_) != COMP_OK) {
      return false;
    }
    // igzip leaves the header's XFL byte 0; zlib and libdeflate mark their fastest level
    // with 4 (RFC 1952 §2.3.1), which the header's fixed 10 bytes make easy to set here.
    p[8] = 4;
    out.commit(stream_.total_out);
    return true;
  }

private:
  isal_zstream stream_{};
  std::unique_ptr<uint8_t[]> level_buf_;
  std::unique_ptr<LibdeflateCompressor> large_;
};

} // namespace

WholeBodyCompressor* WholeBodyCompressor::forThread(Encoding encoding,
                                                    const Compressor::Levels& levels) {
  if (encoding != Encoding::Gzip || levels.gzip < 1 || levels.gzip > 9) {
    return nullptr;
  }
  // Indexed by level; made on first use. A config uses one level, so a thread usually
  // holds one compressor.
  thread_local std::array<std::unique_ptr<WholeBodyCompressor>, 10> by_level;
  std::unique_ptr<WholeBodyCompressor>& slot = by_level[static_cast<size_t>(levels.gzip)];
  if (slot == nullptr) {
    if (levels.gzip == 1) {
      slot = std::make_unique<IgzipCompressor>();
    } else {
      libdeflate_compressor* c = libdeflate_alloc_compressor(levels.gzip);
      if (c == nullptr) {
        return nullptr;
      }
      slot = std::make_unique<LibdeflateCompressor>(c);
    }
  }
  return slot.get();
}

} // namespace pounce::filters::compression
