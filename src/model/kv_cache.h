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

// Per-sequence state: the cache rows and the position reached.
struct KvCache {
  KvRowLayout layout;
  int64_t capacity = 0;  // max positions
  int64_t n_past = 0;    // positions filled
  std::vector<uint8_t> k, v;  // [n_layers, capacity, layout.row_bytes()]

  uint8_t* k_row(int64_t layer, int64_t pos) { return k.data() + (layer * capacity + pos) * layout.row_bytes(); }
  uint8_t* v_row(int64_t layer, int64_t pos) { return v.data() + (layer * capacity + pos) * layout.row_bytes(); }
  int64_t bytes() const { return static_cast<int64_t>(k.size() + v.size()); }
};

// Stores n rows of fp32 numbers x[n, n_heads · head_dim] in the layout's format at dst
// (rows consecutive, row_bytes apart).
void kv_store_rows(const KvRowLayout& L, const float* x, int64_t n, uint8_t* dst);
// Decodes n stored rows back to fp32 (tests, and the oracle of the attention below).
void kv_load_rows(const KvRowLayout& L, const uint8_t* src, int64_t n, float* x);

// Causal GQA attention of q[T, n_heads · head_dim] (positions pos0 ...) over the cached keys and
// values of one layer (rows 0 .. pos0 + T − 1 at k_rows / v_rows, row_bytes apart), reading the
// stored format directly: the same contract as causal_attention (model/attention.h), whose result
// it equals for f32 rows up to summation order.
void kv_causal_attention(const KvRowLayout& L, int64_t n_heads, const float* q, int64_t T,
                         const uint8_t* k_rows, const uint8_t* v_rows, int64_t pos0, float* out);

}  // namespace lowbit
