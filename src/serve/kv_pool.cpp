#include "serve/kv_pool.h"

#include <algorithm>
#include <random>
#include <string>

#include "base/error.h"
#include "base/splitmix.h"

namespace lowbit {

KvBlockPool::KvBlockPool(const LlamaModel& model, KvType type, int64_t block_rows, int64_t max_blocks)
    : block_rows_(block_rows), max_blocks_(max_blocks), seed_((uint64_t{std::random_device{}()} << 32) | std::random_device{}()),
      alive_counter_(std::make_shared<int64_t>(0)) {
  if (block_rows < 1) throw Error("serve", "--kv-block must be >= 1");
  if (max_blocks < 1) throw Error("serve", "the KV budget must hold at least one block");
  prototype_ = model.new_paged_cache(block_rows, type);
}

KvBlockPool::~KvBlockPool() = default;

uint64_t KvBlockPool::block_key(uint64_t parent, std::span<const int32_t> tokens) const {
  uint64_t h = splitmix64(parent ^ seed_);
  for (int32_t t : tokens) h = splitmix64(h ^ static_cast<uint32_t>(t));
  return h;
}

KvCache KvBlockPool::start_cache(std::span<const int32_t> prompt) {
  KvCache c = prototype_;
  uint64_t parent = 0;
  const int64_t n = static_cast<int64_t>(prompt.size());
  for (int64_t end = block_rows_; end <= n - 1; end += block_rows_) {  // keep >= 1 token to compute
    const std::span<const int32_t> tokens = prompt.subspan(end - block_rows_, block_rows_);
    const uint64_t key = block_key(parent, tokens);
    auto it = prefixes_.find(key);
    if (it == prefixes_.end() || it->second.parent != parent ||
        !std::equal(tokens.begin(), tokens.end(), it->second.tokens.begin(), it->second.tokens.end()))
      break;
    it->second.last_use = ++clock_;
    c.blocks.push_back(it->second.block);
    parent = key;
  }
  c.n_past = c.capacity();
  return c;
}

bool KvBlockPool::evict_one() {
  auto victim = prefixes_.end();
  for (auto it = prefixes_.begin(); it != prefixes_.end(); ++it)
    if (it->second.block.use_count() == 1 && (victim == prefixes_.end() || it->second.last_use < victim->second.last_use))
      victim = it;
  if (victim == prefixes_.end()) return false;
  prefixes_.erase(victim);  // the block's deleter lowers the count of blocks alive
  return true;
}

bool KvBlockPool::reserve(int64_t n) {
  int64_t evictable = 0;  // published blocks no request holds
  for (const auto& [key, e] : prefixes_) evictable += e.block.use_count() == 1;
  if (*alive_counter_ - evictable + reserved_ + n > max_blocks_) return false;
  while (*alive_counter_ + reserved_ + n > max_blocks_) evict_one();
  reserved_ += n;
  return true;
}

void KvBlockPool::release(int64_t n) { reserved_ -= std::min(n, reserved_); }

void KvBlockPool::grow(KvCache& c) {
  std::unique_ptr<KvBlock> fresh = new_kv_block(prototype_);
  // Counted while any cache or the prefix cache holds it. The count goes up first: if making the
  // shared_ptr throws, it runs the deleter, which takes it down again.
  ++*alive_counter_;
  alive_peak_ = std::max(alive_peak_, *alive_counter_);
  c.blocks.push_back(std::shared_ptr<KvBlock>(fresh.release(), [counter = alive_counter_](KvBlock* b) {
    --*counter;
    delete b;
  }));
  reserved_ = std::max<int64_t>(reserved_ - 1, 0);
}

void KvBlockPool::publish(const KvCache& c, std::span<const int32_t> prompt) {
  uint64_t parent = 0;
  const int64_t full = std::min<int64_t>(static_cast<int64_t>(prompt.size()), c.n_past) / block_rows_;
  for (int64_t b = 0; b < full; ++b) {
    const std::span<const int32_t> tokens = prompt.subspan(b * block_rows_, block_rows_);
    const uint64_t key = block_key(parent, tokens);
    auto [it, added] = prefixes_.try_emplace(key);
    if (added)
      it->second = Entry{c.blocks[b], parent, std::vector<int32_t>(tokens.begin(), tokens.end()), 0};
    else if (it->second.parent != parent || !std::equal(tokens.begin(), tokens.end(), it->second.tokens.begin(),
                                                        it->second.tokens.end()))
      return;  // a collision: this prompt's chain stops here
    it->second.last_use = ++clock_;
    parent = key;
  }
}

KvPoolStats KvBlockPool::stats() const {
  KvPoolStats s;
  s.blocks_alive = *alive_counter_;
  s.blocks_alive_peak = alive_peak_;
  s.blocks_reserved = reserved_;
  s.blocks_cached = static_cast<int64_t>(prefixes_.size());
  s.max_blocks = max_blocks_;
  s.block_bytes = prototype_.block_bytes();
  s.reused_tokens_total = reused_tokens_;
  return s;
}

}  // namespace lowbit
