// The KV memory of a server: paged blocks under one budget, and a cache of prompt-prefix blocks
// that later requests with the same prefix reuse instead of prefilling again.
//
// Every request's cache is a list of blocks of `block_rows` positions (model/kv_cache.h),
// allocated as it grows, so memory follows what requests actually hold, not a worst case per
// slot. Admission reserves the blocks a request may still need (prompt + max_tokens, minus the
// blocks it reuses): a request is admitted only when its reservation fits the budget next to the
// blocks alive and the reservations of the others, so a running request never runs out.
//
// Prefix cache: once a request's prompt is in its cache, each full block that holds only prompt
// positions is published under the hash of all tokens up to its end (a chain: the hash of the
// previous block's key and this block's tokens, seeded randomly per process; the tokens and the
// parent key are compared too, and publishing stops at an entry that holds other tokens, so a
// collision cannot attach a wrong block). A new request takes the longest chain of
// published blocks that matches its prompt, leaving at least one prompt token to compute (the
// logits of the last one are needed). Blocks are immutable once full, so sharing is safe. When
// the budget is short, published blocks no request holds are evicted, least recently used first.
//
// Not thread-safe: the scheduler's thread owns the pool and every cache made from it; the pool
// must outlive them.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "model/llama.h"

namespace lowbit {

struct KvPoolStats {
  int64_t blocks_alive = 0;      // blocks held by requests or the prefix cache
  int64_t blocks_alive_peak = 0; // the most blocks ever alive at once (never above max_blocks)
  int64_t blocks_reserved = 0;   // blocks promised to active requests, not yet allocated
  int64_t blocks_cached = 0;     // published prefix blocks
  int64_t max_blocks = 0;
  int64_t block_bytes = 0;
  int64_t reused_tokens_total = 0;  // prompt positions taken from the prefix cache
};

class KvBlockPool {
 public:
  // Throws lowbit::Error("serve", ...) for block_rows < 1 or max_blocks < 1.
  KvBlockPool(const LlamaModel& model, KvType type, int64_t block_rows, int64_t max_blocks);
  ~KvBlockPool();
  KvBlockPool(const KvBlockPool&) = delete;
  KvBlockPool& operator=(const KvBlockPool&) = delete;

  int64_t block_rows() const { return block_rows_; }
  int64_t max_blocks() const { return max_blocks_; }
  int64_t blocks_for(int64_t positions) const { return (positions + block_rows_ - 1) / block_rows_; }

  // An empty cache with the longest published prefix of `prompt` attached (n_past set to the
  // positions reused).
  KvCache start_cache(std::span<const int32_t> prompt);
  // Promises n more blocks if they fit (evicting unused prefix blocks as needed); false leaves
  // everything as it was.
  bool reserve(int64_t n);
  // Counts prompt positions a request took from the prefix cache (once admitted).
  void count_reused(int64_t n) { reused_tokens_ += n; }
  // Returns n promised blocks that will not be needed.
  void release(int64_t n);
  // Appends one block to c, taken from the promised ones.
  void grow(KvCache& c);
  // Publishes the full blocks of c that hold only prompt positions (c.n_past >= prompt.size()).
  void publish(const KvCache& c, std::span<const int32_t> prompt);

  KvPoolStats stats() const;

 private:
  struct Entry {
    std::shared_ptr<KvBlock> block;
    uint64_t parent = 0;
    std::vector<int32_t> tokens;
    uint64_t last_use = 0;
  };
  uint64_t block_key(uint64_t parent, std::span<const int32_t> tokens) const;
  bool evict_one();

  KvCache prototype_;  // layout, layers, block_rows
  int64_t block_rows_, max_blocks_;
  int64_t reserved_ = 0, reused_tokens_ = 0;
  uint64_t clock_ = 0;
  uint64_t seed_ = 0;  // random per pool: chain keys cannot be predicted to force collisions
  std::unordered_map<uint64_t, Entry> prefixes_;
  std::shared_ptr<int64_t> alive_counter_;  // decremented by each block's deleter
  int64_t alive_peak_ = 0;
};

}  // namespace lowbit
