#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "source/common/time.h"
#include "source/network/address.h"

namespace pounce::filters::rate_limit {

// A client as the limiter counts it: an IPv4 address, or an IPv6 address cut to a prefix.
// IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) count as the IPv4 address.
struct ClientKey {
  uint64_t hi{0};
  uint64_t lo{0};
  bool operator==(const ClientKey& other) const { return hi == other.hi && lo == other.lo; }

  // `address` must be an IP address.
  static ClientKey fromAddress(const network::Address& address, uint32_t ipv6_prefix_length);
};

// Token buckets for many clients, shared by every I/O thread of a process.
//
// Each client has a bucket of `burst` tokens refilled at `rate` tokens per second; a request
// takes one. A bucket is stored as one number, the time at which it will be full again, so a
// full bucket and a missing bucket are the same thing: a client seen for the first time
// starts full, and forgetting a client whose bucket is full changes nothing.
//
// The table is split into shards, each with its own small mutex and least-recently-seen
// list, picked by a seeded hash of the client: threads only contend when two requests hit
// the same shard at the same moment. It holds at most `max_clients` buckets; inserting into
// a full shard forgets its least recently seen client, and every insert also drops up to two
// buckets at the cold end of the list that have refilled completely.
//
// Worked example, rate 1/s, burst 2: at t=0 two requests are allowed (remaining 1, then 0)
// and a third is refused with retry_after 1s; at t=0.5s the bucket holds 0.5 tokens, still
// refused, retry_after 0.5s; at t=1s one request is allowed again; at t=3s the bucket is
// full (2 tokens).
class ClientBuckets {
public:
  struct Decision {
    bool allowed{false};
    // Whole tokens left after this request (0 when refused).
    uint32_t remaining{0};
    // Refused: how long until one token is available. Allowed: zero.
    std::chrono::nanoseconds retry_after{0};
    // How long until the bucket is full again.
    std::chrono::nanoseconds reset{0};
  };

  ClientBuckets(double rate, uint32_t burst, uint32_t max_clients, TimeSource& time_source);

  // Takes one token from `client`'s bucket if it has one. Thread-safe.
  Decision consume(const ClientKey& client);
  // Clients currently held (locks every shard; for tests and diagnostics).
  size_t trackedClients() const;
  size_t shardCount() const { return shards_.size(); }
  uint32_t burst() const { return burst_; }

private:
  struct Bucket {
    ClientKey key;
    int64_t full_at_ns; // monotonic time at which the bucket is full again
  };
  struct KeyHash {
    uint64_t seed;
    size_t operator()(const ClientKey& k) const;
  };
  struct alignas(64) Shard {
    explicit Shard(const KeyHash& hash) : index(16, hash) {}
    mutable std::mutex lock;
    std::list<Bucket> lru; // most recently seen first
    std::unordered_map<ClientKey, std::list<Bucket>::iterator, KeyHash> index;
    size_t capacity{0};
  };

  void evictIdle(Shard& shard, int64_t now_ns);

  const double interval_ns_; // time to refill one token
  const uint32_t burst_;
  const int64_t burst_span_ns_; // time to refill a whole bucket
  TimeSource& time_source_;
  KeyHash hash_;
  std::vector<std::unique_ptr<Shard>> shards_;
};

} // namespace pounce::filters::rate_limit
