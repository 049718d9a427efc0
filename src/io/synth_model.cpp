#include "io/synth_model.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/half.h"
#include "base/parallel.h"
#include "base/splitmix.h"
#include "io/llama_config.h"
#include "io/model_source.h"
#include "io/safetensors_writer.h"

namespace lowbit {

namespace {

// Approximately N(0, 1): sum of four uniforms, rescaled (Irwin-Hall; fine for speed tests).
float gauss(uint64_t seed, uint64_t i) {
  const uint64_t a = splitmix64(seed ^ (i * 2)), b = splitmix64(seed ^ (i * 2 + 1));
  const double u = ((a & 0xffffffff) + (a >> 32) + (b & 0xffffffff) + (b >> 32)) / 4294967296.0;
  return static_cast<float>((u - 2.0) * std::sqrt(3.0));
}

std::vector<uint8_t> make_tensor(int64_t n, const std::string& dtype, float stddev, bool ones, uint64_t seed) {
  const size_t es = dtype == "F32" ? 4 : 2;
  std::vector<uint8_t> out(static_cast<size_t>(n) * es);
  parallel_for(n, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const float v = ones ? 1.0f : stddev * gauss(seed, static_cast<uint64_t>(i));
      if (dtype == "F32") std::memcpy(&out[i * 4], &v, 4);
      else {
        const uint16_t h = dtype == "F16" ? f32_to_f16(v) : f32_to_bf16(v);
        std::memcpy(&out[i * 2], &h, 2);
      }
    }
  });
  return out;
}

std::string hf_name(const std::string& canonical) {
  if (canonical == "embed_tokens") return "model.embed_tokens.weight";
  if (canonical == "norm") return "model.norm.weight";
  if (canonical == "lm_head") return "lm_head.weight";
  const size_t dot = canonical.find('.', 7);  // "layers.N.x"
  const std::string layer = canonical.substr(0, dot), part = canonical.substr(dot + 1);
  const std::string p = "model." + layer + ".";
  if (part == "attn_norm") return p + "input_layernorm.weight";
  if (part == "ffn_norm") return p + "post_attention_layernorm.weight";
  if (part == "gate_proj" || part == "up_proj" || part == "down_proj") return p + "mlp." + part + ".weight";
  return p + "self_attn." + part + ".weight";
}

nlohmann::json config_json(const SynthOptions& o) {
  return {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"},
          {"hidden_size", o.hidden}, {"intermediate_size", o.intermediate},
          {"num_hidden_layers", o.layers}, {"num_attention_heads", o.heads},
          {"num_key_value_heads", o.kv_heads}, {"vocab_size", o.vocab},
          {"max_position_embeddings", o.context}, {"rms_norm_eps", 1e-5}, {"rope_theta", 10000.0},
          {"tie_word_embeddings", false}, {"torch_dtype", "synthetic"}, {"bos_token_id", 1}, {"eos_token_id", 2}};
}

}  // namespace

void write_synthetic_model(const std::string& dir, const SynthOptions& o) {
  if (o.dtype != "F32" && o.dtype != "F16" && o.dtype != "BF16")
    throw Error("synth", "--dtype must be f32, f16 or bf16");
  if (o.heads <= 0 || o.hidden % o.heads != 0)
    throw Error("synth", "--hidden must be a positive multiple of --heads");
  LlamaConfig c;
  c.dim = o.hidden;
  c.hidden_dim = o.intermediate;
  c.n_layers = o.layers;
  c.n_heads = o.heads;
  c.n_kv_heads = o.kv_heads;
  c.head_dim = o.hidden / o.heads;
  c.vocab_size = o.vocab;
  validate_llama_config(c, "synth");
  std::filesystem::create_directories(dir);
  SafetensorsWriter w(64);
  uint64_t k = 0;
  for (const auto& [name, shape] : canonical_tensor_shapes(c)) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    const bool is_norm = shape.size() == 1;
    w.add(hf_name(name), o.dtype, shape, make_tensor(n, o.dtype, 0.02f, is_norm, splitmix64(o.seed + ++k)));
  }
  w.add_metadata("format", "pt");
  w.write(dir + "/model.safetensors");
  AtomicFile cfg(dir + "/config.json");
  cfg.write(config_json(o).dump(2) + "\n");
  cfg.commit();
}

}  // namespace lowbit
