#include "io/gguf_model.h"

#include <map>
#include <optional>

#include "base/error.h"
#include "io/gguf.h"
#include "io/model_source.h"

namespace lowbit {

namespace {

constexpr const char* kComponent = "gguf";

[[noreturn]] void fail(const GgufFile& g, const std::string& what) {
  throw Error(kComponent, g.path() + ": " + what);
}

void check_architecture(const GgufFile& g) {
  if (!g.has("general.architecture")) fail(g, "missing metadata key 'general.architecture'");
  const std::string arch = g.get_string("general.architecture");
  if (arch == "llama") return;
  std::string why = "only 'llama' is supported";
  if (arch == "qwen2") why += " (qwen2 needs rotate-half RoPE and q/k/v biases: not mapped yet)";
  fail(g, "architecture '" + arch + "' is not supported, " + why);
}

int64_t vocab_size_of(const GgufFile& g) {
  if (g.has("tokenizer.ggml.tokens"))
    return static_cast<int64_t>(g.get_string_array("tokenizer.ggml.tokens").size());
  if (g.has("llama.vocab_size")) return g.get_int("llama.vocab_size");
  const GgufTensorInfo* emb = g.find_tensor("token_embd.weight");
  if (emb == nullptr || emb->shape.size() != 2)
    fail(g, "cannot tell the vocabulary size: no tokenizer.ggml.tokens and no 2-d token_embd");
  return emb->shape[0];
}

// Head size: attention.key_length, else rope.dimension_count, else dim / n_heads. Partial
// rotary embedding (rope.dimension_count < head size) is not supported.
int64_t head_dim_of(const GgufFile& g, const LlamaConfig& c) {
  const int64_t rope_dims = g.get_int_or("llama.rope.dimension_count", -1);
  int64_t hd = g.get_int_or("llama.attention.key_length", rope_dims);
  if (hd == -1) {
    if (c.n_heads <= 0 || c.dim % c.n_heads != 0)
      fail(g, "embedding_length " + std::to_string(c.dim) + " is not divisible by head_count " +
                  std::to_string(c.n_heads));
    hd = c.dim / c.n_heads;
  }
  if (rope_dims != -1 && rope_dims != hd)
    fail(g, "rope.dimension_count " + std::to_string(rope_dims) + " differs from head size " +
                std::to_string(hd) + " (partial rotary embedding is not supported)");
  return hd;
}

LlamaConfig read_config(const GgufFile& g) {
  if (g.has("llama.rope.scaling.type") && g.get_string("llama.rope.scaling.type") != "none")
    fail(g, "rope scaling '" + g.get_string("llama.rope.scaling.type") + "' is not supported");
  LlamaConfig c;
  c.architecture = "llama";
  c.dim = g.get_int("llama.embedding_length");
  c.hidden_dim = g.get_int("llama.feed_forward_length");
  c.n_layers = g.get_int("llama.block_count");
  c.n_heads = g.get_int("llama.attention.head_count");
  c.n_kv_heads = g.get_int_or("llama.attention.head_count_kv", c.n_heads);
  c.head_dim = head_dim_of(g, c);
  c.vocab_size = vocab_size_of(g);
  c.max_seq_len = g.get_int_or("llama.context_length", c.max_seq_len);
  if (c.max_seq_len <= 0)
    fail(g, "context_length " + std::to_string(c.max_seq_len) + " is not positive");
  c.norm_eps = static_cast<float>(g.get_float_or("llama.attention.layer_norm_rms_epsilon", 1e-5));
  c.rope_theta = static_cast<float>(g.get_float_or("llama.rope.freq_base", 10000.0));
  c.rope_style = RopeStyle::Interleaved;
  c.bos_id = g.get_int_or("tokenizer.ggml.bos_token_id", c.bos_id);
  c.eos_id = g.get_int_or("tokenizer.ggml.eos_token_id", c.eos_id);
  c.tie_embeddings = g.find_tensor("output.weight") == nullptr;
  validate_llama_config(c, g.path());
  return c;
}

const std::map<std::string, std::string>& layer_names() {
  static const std::map<std::string, std::string> m = {
      {"attn_norm", "attn_norm"}, {"attn_q", "q_proj"},      {"attn_k", "k_proj"},
      {"attn_v", "v_proj"},       {"attn_output", "o_proj"}, {"ffn_norm", "ffn_norm"},
      {"ffn_gate", "gate_proj"},  {"ffn_up", "up_proj"},     {"ffn_down", "down_proj"},
  };
  return m;
}

// Canonical name of a GGUF llama tensor, or nullopt when the name is not one of them.
std::optional<std::string> canonical_name(const std::string& name) {
  const std::string suffix = ".weight";
  if (name.size() <= suffix.size() ||
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
    return std::nullopt;
  const std::string base = name.substr(0, name.size() - suffix.size());
  if (base == "token_embd") return "embed_tokens";
  if (base == "output_norm") return "norm";
  if (base == "output") return "lm_head";
  if (base.rfind("blk.", 0) != 0) return std::nullopt;
  const size_t dot = base.find('.', 4);
  if (dot == std::string::npos || dot == 4) return std::nullopt;
  const std::string idx = base.substr(4, dot - 4);
  if (idx.size() > 6 || idx.find_first_not_of("0123456789") != std::string::npos ||
      (idx.size() > 1 && idx[0] == '0'))
    return std::nullopt;
  auto it = layer_names().find(base.substr(dot + 1));
  if (it == layer_names().end()) return std::nullopt;
  return "layers." + idx + "." + it->second;
}

// The GGUF name of a canonical name (inverse of canonical_name), for messages.
std::string gguf_name(const std::string& canonical) {
  if (canonical == "embed_tokens") return "token_embd.weight";
  if (canonical == "norm") return "output_norm.weight";
  if (canonical == "lm_head") return "output.weight";
  const size_t dot = canonical.find('.', 7);  // after "layers."
  if (canonical.rfind("layers.", 0) != 0 || dot == std::string::npos) return canonical;
  for (const auto& [g, c] : layer_names())
    if (c == canonical.substr(dot + 1))
      return "blk." + canonical.substr(7, dot - 7) + "." + g + ".weight";
  return canonical;
}

// Maps every GGUF tensor to its canonical name; unknown names are an error.
void map_tensors(const GgufFile& g, ModelSource& src) {
  for (const GgufTensorInfo& t : g.tensors()) {
    const std::optional<std::string> name = canonical_name(t.name);
    if (!name) {
      if (t.name == "rope_freqs.weight")
        fail(g, "rope scaling (rope_freqs.weight) is not supported");
      fail(g, "unexpected tensor '" + t.name + "' (not part of a llama model)");
    }
    TensorView v = g.view(t);  // throws for types lowbit cannot decode
    v.name = *name;
    src.tensors.emplace(*name, std::move(v));
  }
}

void check_shapes(const GgufFile& g, const ModelSource& src) {
  const auto expected = canonical_tensor_shapes(src.config);
  for (const auto& [name, shape] : expected) {
    auto it = src.tensors.find(name);
    if (it == src.tensors.end())
      fail(g, "missing tensor '" + gguf_name(name) + "' (" + name + "), expected shape " +
                  shape_to_string(shape));
    if (it->second.shape != shape)
      fail(g, "tensor '" + gguf_name(name) + "' (" + name + ") has shape " +
                  shape_to_string(it->second.shape) + ", expected " + shape_to_string(shape));
  }
  if (src.tensors.size() != expected.size()) {
    std::map<std::string, bool> known;
    for (const auto& e : expected) known[e.first] = true;
    for (const auto& [name, view] : src.tensors)
      if (!known.count(name))
        fail(g, "unexpected tensor '" + gguf_name(name) + "' (model has " +
                    std::to_string(src.config.n_layers) + " layers)");
  }
}

}  // namespace

ModelSource load_gguf_model(const std::string& path) {
  auto gguf = std::make_shared<const GgufFile>(path);
  check_architecture(*gguf);
  ModelSource src;
  src.format = "gguf";
  src.path = path;
  src.config = read_config(*gguf);
  map_tensors(*gguf, src);
  check_shapes(*gguf, src);
  src.gguf = gguf;
  src.owners.push_back(gguf);
  return src;
}

}  // namespace lowbit
