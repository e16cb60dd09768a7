#include "source/filters/request_id/random.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "source/common/logger.h"

namespace pounce::filters::request_id {

namespace {

struct ThreadBuffer {
  uint8_t bytes[SystemRandom::kBufferBytes];
  size_t pos{SystemRandom::kBufferBytes}; // all used: the first fill refills
  uint64_t refills{0};
};

thread_local ThreadBuffer t_buffer;

// Runs in the child after fork(), on the thread that forked: its buffered bytes are also in
// the parent, so they must not be used again.
void discardAfterFork() { t_buffer.pos = SystemRandom::kBufferBytes; }

// Reads exactly `n` bytes of kernel randomness. getrandom(2) may return short reads when
// interrupted; /dev/urandom is the fallback on kernels without it. Failing both, no safe
// random ids can be made: stop rather than hand out predictable ones.
void readKernelRandom(uint8_t* out, size_t n) {
  size_t got = 0;
  while (got < n) {
    const ssize_t r = ::getrandom(out + got, n - got, 0);
    if (r > 0) {
      got += static_cast<size_t>(r);
      continue;
    }
    if (r < 0 && errno == EINTR) {
      continue;
    }
    break;
  }
  if (got == n) {
    return;
  }
  const int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  while (fd >= 0 && got < n) {
    const ssize_t r = ::read(fd, out + got, n - got);
    if (r > 0) {
      got += static_cast<size_t>(r);
    } else if (!(r < 0 && errno == EINTR)) {
      break;
    }
  }
  if (fd >= 0) {
    ::close(fd);
  }
  if (got != n) {
    POUNCE_LOG(Filter, Critical,
               "no kernel randomness available (getrandom and /dev/urandom "
               "failed): cannot generate request ids");
    std::abort();
  }
}

} // namespace

void SystemRandom::fill(uint8_t* out, size_t n) {
  ThreadBuffer& b = t_buffer;
  while (n > 0) {
    if (b.pos == kBufferBytes) {
      readKernelRandom(b.bytes, kBufferBytes);
      b.pos = 0;
      ++b.refills;
    }
    const size_t take = std::min(n, kBufferBytes - b.pos);
    std::memcpy(out, b.bytes + b.pos, take);
    b.pos += take;
    out += take;
    n -= take;
  }
}

SystemRandom& SystemRandom::instance() {
  static SystemRandom* random = [] {
    pthread_atfork(nullptr, nullptr, discardAfterFork);
    return new SystemRandom();
  }();
  return *random;
}

uint64_t SystemRandom::threadRefills() { return t_buffer.refills; }

namespace {

// The lowercase hex digits of four bytes, in order, as the eight bytes of one word: each
// byte's nibbles go to two bytes of their own, then every nibble n becomes '0' + n, plus
// 'a' - '0' - 10 where n >= 10 (n + 6 carries into bit 4 exactly then).
uint64_t hexOfFour(uint32_t four) {
  constexpr uint64_t kLowNibbles = 0x0f0f0f0f0f0f0f0fULL;
  uint64_t t = four;
  t = (t | (t << 16)) & 0x0000ffff0000ffffULL;
  t = (t | (t << 8)) & 0x00ff00ff00ff00ffULL; // byte 2i holds input byte i
  // Digit order in memory: the high nibble first.
  const uint64_t n = ((t >> 4) | (t << 8)) & kLowNibbles;
  const uint64_t letters = ((n + 0x0606060606060606ULL) >> 4) & 0x0101010101010101ULL;
  return n + 0x3030303030303030ULL + letters * ('a' - '0' - 10);
}

} // namespace

void uuid4Hex(RandomSource& random, char* out) {
  uint8_t bytes[16];
  random.fill(bytes, sizeof(bytes));
  bytes[6] = static_cast<uint8_t>((bytes[6] & 0x0f) | 0x40); // version 4
  bytes[8] = static_cast<uint8_t>((bytes[8] & 0x3f) | 0x80); // RFC 4122 variant
  static_assert(std::endian::native == std::endian::little);
  for (size_t i = 0; i < 16; i += 4) {
    uint32_t four;
    std::memcpy(&four, bytes + i, 4);
    const uint64_t digits = hexOfFour(four);
    std::memcpy(out + 2 * i, &digits, 8);
  }
}

std::string uuid4Hex(RandomSource& random) {
  std::string id(kUuidHexSize, '\0');
  uuid4Hex(random, id.data());
  return id;
}

} // namespace pounce::filters::request_id
