// The KV cache of one sequence and the formats its rows are stored in.
//
// A row is one position of one layer: the n_kv_heads · head_dim key (or value) numbers. Types:
//   f32  4 bytes per number (exact; the default).
//   f16  IEEE half (2 bytes).
//   q8   per group of g numbers of one head: fp16 scale d, then g int8 codes c in [-127, 127];
//        x ≈ d·c with d = max|x| / 127 (g + 2 bytes per g numbers: 8.5 bits at g = 32).
//   q4   per group: fp16 scale d, fp16 minimum m, then g/2 bytes of 4-bit codes c in [0, 15]
//        (low nibble first); x ≈ m + d·c with d = (max − min) / 15 (5 bits per number at g = 32).
// g = 32 when head_dim is a multiple of 32, else head_dim (one group per head). Groups never
// straddle heads, so attention reads each head's keys and values directly from the stored bytes:
// a key's score is Σ_groups d·(q·c) (+ m·Σq for q4), a value is accumulated as p·d·c (+ p·m).
// Quantizing each new row once, as it enters the cache, is KIVI's per-token scheme for values;
// keys are quantized per token too (per-channel key groups need a residual of unquantized tokens
// and are left for the paged cache).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lowbit {

enum class KvType : uint8_t { F32, F16, Q8, Q4 };

// "f32", "f16", "q8", "q4"; throws lowbit::Error("model", ...) for anything else.
KvType parse_kv_type(std::string_view s);
const char* kv_type_name(KvType t);

// How one row is laid out for a model's KV shape.
struct KvRowLayout {
  KvType type = KvType::F32;
  int64_t n_heads = 0, head_dim = 0;  // KV heads and their size
  int64_t group = 0;                   // numbers per scale (q8/q4), see above
  int64_t head_bytes = 0;              // bytes of one head's numbers
  int64_t row_bytes() const { return n_heads * head_bytes; }
};
KvRowLayout kv_row_layout(KvType t, int64_t n_kv_heads, int64_t head_dim);

// block_rows positions of every layer: k and v are [n_layers, block_rows, row_bytes]. A cache
// is a list of blocks; blocks may be shared between caches (a common prompt prefix) as long as
// they are full: a cache only writes positions at or after its n_past.
struct KvBlock {
  std::vector<uint8_t> k, v;
};

// Per-sequence state: its blocks and the position reached. A plain cache (LlamaModel::new_cache)
// is one block of `capacity` rows; a paged one (a server's) grows a block at a time.
struct KvCache {
  KvRowLayout layout;
  int64_t n_layers = 0;
  int64_t block_rows = 0;  // positions per block
  int64_t n_past = 0;      // positions filled
  std::vector<std::shared_ptr<KvBlock>> blocks;

  int64_t capacity() const { return static_cast<int64_t>(blocks.size()) * block_rows; }
  uint8_t* k_row(int64_t layer, int64_t pos) { return row(blocks[pos / block_rows]->k, layer, pos); }
  uint8_t* v_row(int64_t layer, int64_t pos) { return row(blocks[pos / block_rows]->v, layer, pos); }
  int64_t block_bytes() const { return 2 * n_layers * block_rows * layout.row_bytes(); }
  int64_t bytes() const { return static_cast<int64_t>(blocks.size()) * block_bytes(); }

 private:
  uint8_t* row(std::vector<uint8_t>& b, int64_t layer, int64_t pos) {
    return b.data() + (layer * block_rows + pos % block_rows) * layout.row_bytes();
  }
};

// An empty cache with no blocks, and a new zeroed block for it (throws std::bad_alloc).
KvCache make_kv_cache(const KvRowLayout& L, int64_t n_layers, int64_t block_rows);
std::unique_ptr<KvBlock> new_kv_block(const KvCache& c);

// Where one layer's rows are: block b holds rows b·block_rows ... of K at k[b] and of V at v[b].
struct KvLayerRows {
  std::vector<const uint8_t*> k, v;
  int64_t block_rows = 0;
};
KvLayerRows kv_layer_rows(const KvCache& c, int64_t layer);

// Stores n rows of fp32 numbers x[n, n_heads · head_dim] in the layout's format at dst
// (rows consecutive, row_bytes apart).
void kv_store_rows(const KvRowLayout& L, const float* x, int64_t n, uint8_t* dst);
// Decodes n stored rows back to fp32 (tests, and the oracle of the attention below).
void kv_load_rows(const KvRowLayout& L, const uint8_t* src, int64_t n, float* x);

// Causal GQA attention of q[T, n_heads · head_dim] (positions pos0 ...) over the cached keys and
// values of one layer (rows 0 .. pos0 + T − 1), reading the stored format directly: the same
// contract as causal_attention (model/attention.h), and for f32 rows the same bits (the same
// products summed in the same order).
void kv_causal_attention(const KvRowLayout& L, int64_t n_heads, const float* q, int64_t T,
                         const KvLayerRows& rows, int64_t pos0, float* out);

}  // namespace lowbit
