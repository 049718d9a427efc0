#include "io/model_source.h"

#include "base/error.h"

namespace lowbit {

const TensorView& ModelSource::tensor(const std::string& name) const {
  auto it = tensors.find(name);
  if (it == tensors.end()) throw Error("model", path + ": missing tensor '" + name + "'");
  return it->second;
}

}  // namespace lowbit

namespace lowbit {

namespace {
std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

void expect_shape(const ModelSource& src, const std::string& name, std::vector<int64_t> shape) {
  const TensorView& t = src.tensor(name);
  if (t.shape != shape)
    throw Error("model", src.path + ": tensor '" + name + "' has shape " + shape_str(t.shape) +
                             ", expected " + shape_str(shape));
}
}  // namespace

void check_canonical_tensors(const ModelSource& src) {
  const LlamaConfig& c = src.config;
  const int64_t dq = c.n_heads * c.head_dim, dkv = c.n_kv_heads * c.head_dim;
  expect_shape(src, "embed_tokens", {c.vocab_size, c.dim});
  expect_shape(src, "norm", {c.dim});
  if (!c.tie_embeddings) expect_shape(src, "lm_head", {c.vocab_size, c.dim});
  for (int64_t i = 0; i < c.n_layers; ++i) {
    const std::string p = "layers." + std::to_string(i) + ".";
    expect_shape(src, p + "attn_norm", {c.dim});
    expect_shape(src, p + "q_proj", {dq, c.dim});
    expect_shape(src, p + "k_proj", {dkv, c.dim});
    expect_shape(src, p + "v_proj", {dkv, c.dim});
    expect_shape(src, p + "o_proj", {c.dim, dq});
    expect_shape(src, p + "ffn_norm", {c.dim});
    expect_shape(src, p + "gate_proj", {c.hidden_dim, c.dim});
    expect_shape(src, p + "up_proj", {c.hidden_dim, c.dim});
    expect_shape(src, p + "down_proj", {c.dim, c.hidden_dim});
    if (c.attention_bias) {
      expect_shape(src, p + "q_bias", {dq});
      expect_shape(src, p + "k_bias", {dkv});
      expect_shape(src, p + "v_bias", {dkv});
    }
  }
}

}  // namespace lowbit
