#include "pipeline/model_rotation.h"

#include <memory>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "pipeline/layer_source.h"

namespace lowbit {

namespace {

// w [rows, cols] ← w · diag(g)
void scale_columns(std::vector<float>& w, const std::vector<float>& g) {
  const size_t cols = g.size();
  for (size_t i = 0; i < w.size(); ++i) w[i] *= g[i % cols];
}

// "layers.N." of a layer tensor name, or "" for a model-level one.
std::string layer_prefix(const std::string& name) {
  if (!name.starts_with("layers.")) return "";
  return name.substr(0, name.find('.', 7) + 1);
}

std::string short_name(const std::string& name) { return name.substr(name.rfind('.') + 1); }

}  // namespace

ModelRotation ModelRotation::make(const LlamaConfig& c, uint64_t seed) {
  ModelRotation r;
  r.seed = seed;
  r.residual = Rotation::random_hadamard(c.dim, seed);
  r.head = Rotation::random_hadamard(c.head_dim, seed + 1);
  return r;
}

std::string ModelRotation::to_json() const {
  return nlohmann::json{{"kind", "hadamard"}, {"seed", seed}, {"residual", residual.size()}, {"head", head.size()}}
      .dump();
}

std::vector<float> rotated_tensor_f32(const ModelSource& src, const ModelRotation& rot, const std::string& name) {
  if (!src.quantized.empty()) throw Error("rotation", src.path + ": already quantized; rotate the original model");
  const LlamaConfig& c = src.config;
  const std::string p = layer_prefix(name), n = short_name(name);
  std::vector<float> w = source_f32(src, name);
  const int64_t D = c.dim, hd = c.head_dim;
  if (n.ends_with("norm")) {
    for (float& v : w) v = 1.0f;
  } else if (name == "embed_tokens") {
    rot.residual.apply_right(w.data(), c.vocab_size);
  } else if (name == "lm_head") {
    scale_columns(w, source_f32(src, "norm"));
    rot.residual.apply_right(w.data(), c.vocab_size);
  } else if (n == "q_proj" || n == "k_proj" || n == "v_proj") {
    scale_columns(w, source_f32(src, p + "attn_norm"));
    const int64_t rows = static_cast<int64_t>(w.size()) / D;
    rot.residual.apply_right(w.data(), rows);
    if (n == "v_proj")  // each head's row block [hd, D] ← Pᵀ·block
      for (int64_t h = 0; h < c.n_kv_heads; ++h) rot.head.apply_left_transposed(&w[h * hd * D], D);
  } else if (n == "v_bias") {
    // b_h ← Pᵀ b_h, i.e. the row vector b_h·P.
    rot.head.apply_right(w.data(), c.n_kv_heads);
  } else if (n == "gate_proj" || n == "up_proj") {
    scale_columns(w, source_f32(src, p + "ffn_norm"));
    rot.residual.apply_right(w.data(), c.hidden_dim);
  } else if (n == "o_proj") {
    rot.head.apply_right(w.data(), D * c.n_heads);  // each row's head segments ← segment·P
    rot.residual.apply_left_transposed(w.data(), c.n_heads * hd);
  } else if (n == "down_proj") {
    rot.residual.apply_left_transposed(w.data(), c.hidden_dim);
  }  // q_bias, k_bias: unchanged (outputs of q/k are not rotated)
  return w;
}

ModelSource float_model_source(const ModelSource& src, const ModelRotation* rot) {
  if (!src.quantized.empty()) throw Error("rotation", src.path + ": already quantized; use the original model");
  ModelSource out;
  out.format = src.format;
  out.path = src.path;
  out.config = src.config;
  out.config.tie_embeddings = false;
  out.embedded_tokenizer = src.embedded_tokenizer;
  out.gguf = src.gguf;
  out.owners = src.owners;
  out.rotation = rot ? rot->to_json() : "";
  for (const auto& [name, shape] : canonical_tensor_shapes(out.config)) {
    auto data = std::make_shared<std::vector<float>>(source_f32(src, name, rot));
    TensorView v;
    v.name = name;
    v.dtype = DType::F32;
    v.shape = shape;
    v.data = reinterpret_cast<const uint8_t*>(data->data());
    v.nbytes = data->size() * sizeof(float);
    out.tensors[name] = v;
    out.owners.push_back(data);
  }
  return out;
}

}  // namespace lowbit
