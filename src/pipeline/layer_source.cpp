#include "pipeline/layer_source.h"

#include <cstring>

#include "model/llama.h"
#include "pipeline/model_rotation.h"

namespace lowbit {

std::vector<float> source_f32(const ModelSource& src, const std::string& name, const ModelRotation* rot) {
  if (rot) return rotated_tensor_f32(src, *rot, name);
  const std::string src_name = (name == "lm_head" && src.config.tie_embeddings) ? "embed_tokens" : name;
  return to_f32(src.tensor(src_name));
}

FloatLayer load_float_layer(const ModelSource& src, const LlamaConfig& c, const std::string& p,
                            const ModelRotation* rot) {
  FloatLayer l;
  l.attn_norm = source_f32(src, p + "attn_norm", rot);
  l.ffn_norm = source_f32(src, p + "ffn_norm", rot);
  if (c.attention_bias) {
    l.q_bias = source_f32(src, p + "q_bias", rot);
    l.k_bias = source_f32(src, p + "k_bias", rot);
    l.v_bias = source_f32(src, p + "v_bias", rot);
  }
  for (const char* n : kLayerLinearNames) {
    const std::vector<int64_t> shape = src.shape(p + n);
    l.linears[n] = DenseWeight{shape[0], shape[1], source_f32(src, p + n, rot)};
  }
  return l;
}

Activations embed_windows(const std::vector<float>& embed, const LlamaConfig& c, const CalibrationSet& cs) {
  Activations act;
  act.windows = static_cast<int64_t>(cs.windows.size());
  act.len = cs.window_len;
  act.dim = c.dim;
  act.x.resize(static_cast<size_t>(act.windows * act.len * act.dim));
  float* out = act.x.data();
  for (const auto& win : cs.windows)
    for (int32_t id : win) {
      std::memcpy(out, &embed[static_cast<size_t>(id) * c.dim], sizeof(float) * c.dim);
      out += c.dim;
    }
  return act;
}

InputStats final_norm_stats(const LlamaConfig& c, const std::vector<float>& norm, const Activations& act) {
  InputStats st(c.dim);
  std::vector<float> xn(static_cast<size_t>(act.len * c.dim));
  for (int64_t w = 0; w < act.windows; ++w) {
    for (int64_t t = 0; t < act.len; ++t)
      rms_norm(&act.x[(w * act.len + t) * c.dim], norm.data(), c.dim, c.norm_eps, &xn[t * c.dim]);
    st.add(xn.data(), act.len);
  }
  return st;
}

}  // namespace lowbit
