#include "io/model_source.h"

#include "base/error.h"

namespace lowbit {

const TensorView& ModelSource::tensor(const std::string& name) const {
  auto it = tensors.find(name);
  if (it == tensors.end()) {
    if (quantized.count(name))
      throw Error("model", path + ": tensor '" + name + "' is quantized where a plain tensor is needed");
    throw Error("model", path + ": missing tensor '" + name + "'");
  }
  return it->second;
}

std::vector<int64_t> ModelSource::shape(const std::string& name) const {
  auto q = quantized.find(name);
  if (q != quantized.end()) return {q->second.rows, q->second.cols};
  return tensor(name).shape;
}

}  // namespace lowbit

namespace lowbit {

std::vector<std::pair<std::string, std::vector<int64_t>>> canonical_tensor_shapes(
    const LlamaConfig& c) {
  const int64_t d = c.dim, h = c.hidden_dim, v = c.vocab_size;
  const int64_t dq = c.n_heads * c.head_dim, dkv = c.n_kv_heads * c.head_dim;
  std::vector<std::pair<std::string, std::vector<int64_t>>> out;
  out.push_back({"embed_tokens", {v, d}});
  for (int64_t i = 0; i < c.n_layers; ++i) {
    const std::string p = "layers." + std::to_string(i) + ".";
    out.push_back({p + "attn_norm", {d}});
    out.push_back({p + "q_proj", {dq, d}});
    out.push_back({p + "k_proj", {dkv, d}});
    out.push_back({p + "v_proj", {dkv, d}});
    if (c.attention_bias) {
      out.push_back({p + "q_bias", {dq}});
      out.push_back({p + "k_bias", {dkv}});
      out.push_back({p + "v_bias", {dkv}});
    }
    out.push_back({p + "o_proj", {d, dq}});
    out.push_back({p + "ffn_norm", {d}});
    out.push_back({p + "gate_proj", {h, d}});
    out.push_back({p + "up_proj", {h, d}});
    out.push_back({p + "down_proj", {d, h}});
  }
  out.push_back({"norm", {d}});
  if (!c.tie_embeddings) out.push_back({"lm_head", {v, d}});
  return out;
}

std::string shape_to_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t k = 0; k < shape.size(); ++k) s += (k ? ", " : "") + std::to_string(shape[k]);
  return s + "]";
}


void check_canonical_tensors(const ModelSource& src) {
  for (const auto& [name, shape] : canonical_tensor_shapes(src.config)) {
    const std::vector<int64_t> found = src.shape(name);
    if (found != shape)
      throw Error("model", src.path + ": tensor '" + name + "' has shape " + shape_to_string(found) +
                               ", expected " + shape_to_string(shape));
  }
}

}  // namespace lowbit
