#include "io/llama_config.h"

#include <cmath>

#include "base/error.h"

namespace lowbit {

namespace {
void require_range(int64_t v, int64_t lo, int64_t hi, const char* name, const std::string& where) {
  if (v < lo || v > hi)
    throw Error("config", where + ": " + name + " = " + std::to_string(v) + " is outside [" +
                              std::to_string(lo) + ", " + std::to_string(hi) + "]");
}
}  // namespace

void validate_llama_config(const LlamaConfig& c, const std::string& where) {
  constexpr int64_t kBig = int64_t{1} << 20;  // 1M: far above any real width or vocabulary
  require_range(c.dim, 1, kBig, "hidden size", where);
  require_range(c.hidden_dim, 1, kBig, "intermediate size", where);
  require_range(c.n_layers, 1, 4096, "layer count", where);
  require_range(c.n_heads, 1, 4096, "head count", where);
  require_range(c.n_kv_heads, 1, c.n_heads, "kv head count", where);
  require_range(c.head_dim, 2, 4096, "head dim", where);
  require_range(c.vocab_size, 1, 16 * kBig, "vocab size", where);
  if (c.n_heads % c.n_kv_heads != 0)
    throw Error("config", where + ": head count " + std::to_string(c.n_heads) +
                              " is not a multiple of kv head count " + std::to_string(c.n_kv_heads));
  if (c.head_dim % 2 != 0) throw Error("config", where + ": head dim must be even for RoPE");
  if (!(c.norm_eps > 0.0f) || !std::isfinite(c.norm_eps))
    throw Error("config", where + ": rms norm eps must be positive");
  if (!(c.rope_theta > 0.0f) || !std::isfinite(c.rope_theta))
    throw Error("config", where + ": rope theta must be positive");
}

std::vector<int64_t> rope_interleave_order(int64_t n_heads, int64_t head_dim) {
  std::vector<int64_t> order(static_cast<size_t>(n_heads * head_dim));
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < n_heads; ++h)
    for (int64_t i = 0; i < half; ++i) {
      order[h * head_dim + 2 * i] = h * head_dim + i;
      order[h * head_dim + 2 * i + 1] = h * head_dim + i + half;
    }
  return order;
}

}  // namespace lowbit
