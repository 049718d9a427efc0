#include "io/synth_model.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
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

// The shortest decimal that reads back as f (1e-5f is written 1e-05, not 9.99999974737875e-06).
double shortest_double(float f) {
  char b[32];
  for (int digits = 6; digits < 9; ++digits) {
    std::snprintf(b, sizeof b, "%.*g", digits, static_cast<double>(f));
    if (std::strtof(b, nullptr) == f) return std::strtod(b, nullptr);
  }
  return static_cast<double>(f);
}

nlohmann::json config_json(const LlamaConfig& c, const std::string& dtype) {
  nlohmann::json j = {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"},
                      {"hidden_size", c.dim}, {"intermediate_size", c.hidden_dim},
                      {"num_hidden_layers", c.n_layers}, {"num_attention_heads", c.n_heads},
                      {"num_key_value_heads", c.n_kv_heads}, {"vocab_size", c.vocab_size},
                      {"max_position_embeddings", c.max_seq_len}, {"rms_norm_eps", shortest_double(c.norm_eps)},
                      {"rope_theta", shortest_double(c.rope_theta)}, {"tie_word_embeddings", false}, {"torch_dtype", dtype},
                      {"bos_token_id", c.bos_id}, {"eos_token_id", c.eos_id}};
  if (c.head_dim * c.n_heads != c.dim) j["head_dim"] = c.head_dim;
  return j;
}

void write_config(const std::string& dir, const LlamaConfig& c, const std::string& dtype) {
  AtomicFile cfg(dir + "/config.json");
  cfg.write(config_json(c, dtype).dump(2) + "\n");
  cfg.commit();
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
  c.max_seq_len = o.context;
  c.norm_eps = 1e-5f;
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
  write_config(dir, c, "synthetic");
}

void write_hf_f32_model(const std::string& dir, const LlamaConfig& c,
                        const std::map<std::string, std::vector<float>>& tensors) {
  validate_llama_config(c, dir);
  std::filesystem::create_directories(dir);
  SafetensorsWriter w(64);
  for (const auto& [name, shape] : canonical_tensor_shapes(c)) {
    auto it = tensors.find(name);
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    if (it == tensors.end() || static_cast<int64_t>(it->second.size()) != n)
      throw Error("model", dir + ": tensor '" + name + "' is missing or not of shape " + shape_to_string(shape));
    w.add(hf_name(name), "F32", shape, it->second.data(), it->second.size() * sizeof(float));
  }
  w.add_metadata("format", "pt");
  w.write(dir + "/model.safetensors");
  write_config(dir, c, "float32");
}

}  // namespace lowbit
