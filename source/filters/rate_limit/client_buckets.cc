#include "source/filters/rate_limit/client_buckets.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

namespace pounce::filters::rate_limit {

namespace {

constexpr size_t kMaxShards = 64;
constexpr size_t kMinClientsPerShard = 16;
constexpr uint8_t kV4MappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

uint64_t mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

} // namespace

ClientKey ClientKey::fromAddress(const network::Address& address, uint32_t ipv6_prefix_length) {
  const std::string_view raw = address.rawIp();
  uint8_t bytes[16] = {};
  if (raw.size() == 4) {
    std::memcpy(bytes, kV4MappedPrefix, sizeof(kV4MappedPrefix));
    std::memcpy(bytes + 12, raw.data(), 4);
  } else if (raw.size() == 16) {
    std::memcpy(bytes, raw.data(), 16);
    if (std::memcmp(bytes, kV4MappedPrefix, sizeof(kV4MappedPrefix)) != 0) {
      const uint32_t prefix = std::min<uint32_t>(ipv6_prefix_length, 128);
      const uint32_t full = prefix / 8;
      if (full < 16) {
        bytes[full] &= static_cast<uint8_t>(0xff00 >> (prefix % 8));
        std::memset(bytes + full + 1, 0, 16 - full - 1);
      }
    }
  }
  ClientKey key;
  std::memcpy(&key.hi, bytes, 8);
  std::memcpy(&key.lo, bytes + 8, 8);
  return key;
}

size_t ClientBuckets::KeyHash::operator()(const ClientKey& k) const {
  return static_cast<size_t>(mix(mix(k.hi ^ seed) ^ k.lo));
}

ClientBuckets::ClientBuckets(double rate, uint32_t burst, uint32_t max_clients,
                             TimeSource& time_source)
    : interval_ns_(std::max(1.0, std::round(1e9 / rate))), burst_(std::max<uint32_t>(burst, 1)),
      burst_span_ns_(static_cast<int64_t>(interval_ns_) * burst_), time_source_(time_source) {
  std::random_device device;
  hash_.seed = (static_cast<uint64_t>(device()) << 32) ^ device();
  size_t shards = 1;
  while (shards < kMaxShards && max_clients / (shards * 2) >= kMinClientsPerShard) {
    shards *= 2;
  }
  const size_t clients = std::max<uint32_t>(max_clients, 1);
  for (size_t i = 0; i < shards; ++i) {
    auto shard = std::make_unique<Shard>(hash_);
    // Spread the total exactly: the first `clients % shards` shards take one more.
    shard->capacity = std::max<size_t>(clients / shards + (i < clients % shards ? 1 : 0), 1);
    shards_.push_back(std::move(shard));
  }
}

ClientBuckets::Decision ClientBuckets::consume(const ClientKey& client) {
  const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          time_source_.monotonicTime().time_since_epoch())
                          .count();
  const size_t h = hash_(client);
  Shard& shard = *shards_[(h >> 40) & (shards_.size() - 1)];
  const auto interval = static_cast<int64_t>(interval_ns_);
  // The bucket holds at least one token while what it still owes is at most burst-1 tokens.
  const int64_t max_debt = burst_span_ns_ - interval;

  std::lock_guard<std::mutex> guard(shard.lock);
  auto found = shard.index.find(client);
  int64_t full_at = now;
  if (found != shard.index.end()) {
    shard.lru.splice(shard.lru.begin(), shard.lru, found->second);
    full_at = found->second->full_at_ns;
  }
  const int64_t debt = std::max<int64_t>(full_at - now, 0);
  Decision d;
  if (debt > max_debt) {
    d.retry_after = std::chrono::nanoseconds(debt - max_debt);
    d.reset = std::chrono::nanoseconds(debt);
    return d;
  }
  const int64_t new_full_at = std::max(full_at, now) + interval;
  const int64_t owed = new_full_at - now;
  d.allowed = true;
  d.remaining = static_cast<uint32_t>((burst_span_ns_ - owed) / interval);
  d.reset = std::chrono::nanoseconds(owed);
  if (found != shard.index.end()) {
    found->second->full_at_ns = new_full_at;
    return d;
  }
  evictIdle(shard, now);
  if (shard.lru.size() >= shard.capacity) {
    shard.index.erase(shard.lru.back().key);
    shard.lru.pop_back();
  }
  shard.lru.push_front(Bucket{client, new_full_at});
  shard.index.emplace(client, shard.lru.begin());
  return d;
}

void ClientBuckets::evictIdle(Shard& shard, int64_t now_ns) {
  for (int i = 0; i < 2 && !shard.lru.empty() && shard.lru.back().full_at_ns <= now_ns; ++i) {
    shard.index.erase(shard.lru.back().key);
    shard.lru.pop_back();
  }
}

size_t ClientBuckets::trackedClients() const {
  size_t n = 0;
  for (const auto& shard : shards_) {
    std::lock_guard<std::mutex> guard(shard->lock);
    n += shard->lru.size();
  }
  return n;
}

} // namespace pounce::filters::rate_limit
