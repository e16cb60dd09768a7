#include "source/http/filter.h"

#include <cstddef>
#include <cstdint>
#include <new>

namespace pounce::http {

namespace {

// Filter objects are grouped by size in 64-byte classes up to 1 KiB; larger ones use the
// allocator directly. Each thread keeps at most kMaxCached free blocks per class (a
// thread that frees more than it allocates, which filters never do, cannot hoard memory).
constexpr size_t kGranule = 64;
constexpr size_t kClasses = 16;
constexpr uint32_t kMaxCached = 256;

struct FreeBlock {
  FreeBlock* next;
};

// Trivially destructible, so the hot path reaches it without a TLS init guard; the
// releaser below empties it when the thread exits.
struct BlockCache {
  FreeBlock* head[kClasses];
  uint32_t count[kClasses];
  bool armed; // the releaser is registered (and the thread is not exiting)
};

thread_local BlockCache t_cache{};

struct CacheReleaser {
  bool armed{false};
  ~CacheReleaser() {
    BlockCache& cache = t_cache;
    cache.armed = false;
    for (size_t c = 0; c < kClasses; ++c) {
      while (FreeBlock* b = cache.head[c]) {
        cache.head[c] = b->next;
        ::operator delete(b, (c + 1) * kGranule);
      }
      cache.count[c] = 0;
    }
  }
};

// A cache miss: a fresh block, and (once per thread) the releaser registered. Only threads
// that allocate filters cache freed ones.
__attribute__((noinline)) void* allocateBlock(size_t c) {
  thread_local CacheReleaser releaser;
  if (!releaser.armed) {
    releaser.armed = true;
    t_cache.armed = true;
  }
  return ::operator new((c + 1) * kGranule);
}

} // namespace

void* StreamFilter::operator new(size_t size) {
#ifndef POUNCE_SANITIZED
  const size_t c = (size - 1) / kGranule;
  if (c < kClasses) { // size 0 wraps to a huge class and falls through
    BlockCache& cache = t_cache;
    if (FreeBlock* b = cache.head[c]) {
      cache.head[c] = b->next;
      --cache.count[c];
      return b;
    }
    return allocateBlock(c);
  }
#endif
  return ::operator new(size);
}

void StreamFilter::operator delete(void* p, size_t size) {
  if (p == nullptr) {
    return;
  }
#ifndef POUNCE_SANITIZED
  const size_t c = (size - 1) / kGranule;
  if (c < kClasses) { // size 0 wraps to a huge class and falls through
    BlockCache& cache = t_cache;
    if (cache.armed && cache.count[c] < kMaxCached) {
      auto* b = static_cast<FreeBlock*>(p);
      b->next = cache.head[c];
      cache.head[c] = b;
      ++cache.count[c];
      return;
    }
    ::operator delete(p, (c + 1) * kGranule);
    return;
  }
#endif
  ::operator delete(p, size);
}

} // namespace pounce::http
