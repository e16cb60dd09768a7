#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace pounce::filters::request_id {

// Where request ids get their randomness. Injected so tests can pin the bytes.
class RandomSource {
public:
  virtual ~RandomSource() = default;
  // Fills `out` with `n` random bytes. Called on I/O threads; must be thread-safe.
  virtual void fill(uint8_t* out, size_t n) = 0;
};

// The kernel's CSPRNG (getrandom(2)), read in blocks into a per-thread buffer so that a
// request id does not cost a system call: one getrandom call serves 256 ids. Use
// instance(): it arranges for the forking thread's buffer to be discarded in a forked child,
// so worker processes never share random bytes (other threads do not survive a fork).
class SystemRandom : public RandomSource {
public:
  static constexpr size_t kBufferBytes = 4096;

  void fill(uint8_t* out, size_t n) override;
  static SystemRandom& instance();
  // System calls this thread has made to refill its buffer (for tests).
  static uint64_t threadRefills();
};

// A UUID version 4 from 16 random bytes: 32 lowercase hex digits, no dashes, written to
// `out`; or returned as a string.
constexpr size_t kUuidHexSize = 32;
void uuid4Hex(RandomSource& random, char* out);
std::string uuid4Hex(RandomSource& random);

} // namespace pounce::filters::request_id
