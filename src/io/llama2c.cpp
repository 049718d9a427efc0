#include "io/llama2c.h"

#include <cstdint>
#include <cstring>
#include <memory>

#include "base/error.h"
#include "base/mapped_file.h"
#include "io/model_source.h"

namespace lowbit {

namespace {

constexpr const char* kComponent = "llama2c";
constexpr uint32_t kMagic = 0x616b3432;  // "ak42" read as a little-endian u32
constexpr size_t kLegacyHeaderBytes = 7 * 4;
constexpr size_t kV1HeaderBytes = 256;
constexpr size_t kV1SharedFlagAt = 4 + 4 + 7 * 4;  // after magic, version, 7 ints

struct Header {
  int32_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
  bool shared = true;
  int version = 0;
  size_t data_offset = kLegacyHeaderBytes;
};

// One fp32 array of the checkpoint in file order. Per-layer segments hold n_layers tensors
// named "layers.{i}." + name; an empty name marks data that is skipped (freq_cis).
struct Segment {
  std::string name;
  std::vector<int64_t> shape;
  bool per_layer = false;
};

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw Error(kComponent, path + ": " + what);
}

void read_ints(const MappedFile& f, size_t at, Header& h) {
  int32_t v[7];
  std::memcpy(v, f.data() + at, sizeof v);
  h.dim = v[0], h.hidden_dim = v[1], h.n_layers = v[2], h.n_heads = v[3];
  h.n_kv_heads = v[4], h.vocab_size = v[5], h.seq_len = v[6];
}

Header read_header(const MappedFile& f) {
  const std::string& path = f.path();
  Header h{};
  if (f.size() < kLegacyHeaderBytes)
    fail(path, "truncated: expected at least " + std::to_string(kLegacyHeaderBytes) +
                   " header bytes, file has " + std::to_string(f.size()));
  uint32_t magic;
  std::memcpy(&magic, f.data(), 4);
  if (magic != kMagic) {  // legacy v0: the header is 7 ints, the sign of vocab_size = shared
    read_ints(f, 0, h);
    h.shared = h.vocab_size > 0;
    if (h.vocab_size < 0 && h.vocab_size != INT32_MIN) h.vocab_size = -h.vocab_size;
    return h;
  }
  int32_t version;
  std::memcpy(&version, f.data() + 4, 4);
  if (version != 1)
    fail(path, "llama2.c export version " + std::to_string(version) +
                   " is not supported (only fp32: legacy version 0 and version 1)");
  if (f.size() < kV1HeaderBytes)
    fail(path, "truncated: expected at least " + std::to_string(kV1HeaderBytes) +
                   " header bytes, file has " + std::to_string(f.size()));
  read_ints(f, 8, h);
  const uint8_t flag = f.data()[kV1SharedFlagAt];
  if (flag > 1) fail(path, "shared-classifier flag " + std::to_string(flag) + " is not 0 or 1");
  h.shared = flag == 1;
  h.version = 1;
  h.data_offset = kV1HeaderBytes;
  return h;
}

LlamaConfig config_from(const Header& h, const std::string& path) {
  const std::pair<const char*, int32_t> fields[] = {
      {"dim", h.dim},         {"hidden_dim", h.hidden_dim}, {"n_layers", h.n_layers},
      {"n_heads", h.n_heads}, {"n_kv_heads", h.n_kv_heads}, {"vocab_size", h.vocab_size},
      {"seq_len", h.seq_len}};
  for (const auto& [name, v] : fields)
    if (v <= 0)
      fail(path,
           std::string("header field ") + name + " = " + std::to_string(v) + " must be positive");
  if (h.dim % h.n_heads != 0)
    fail(path, "dim " + std::to_string(h.dim) + " is not divisible by n_heads " +
                   std::to_string(h.n_heads));
  LlamaConfig c;
  c.architecture = "llama";
  c.dim = h.dim;
  c.hidden_dim = h.hidden_dim;
  c.n_layers = h.n_layers;
  c.n_heads = h.n_heads;
  c.n_kv_heads = h.n_kv_heads;
  c.head_dim = h.dim / h.n_heads;
  c.vocab_size = h.vocab_size;
  c.max_seq_len = h.seq_len;
  c.norm_eps = 1e-5f;
  c.rope_theta = 10000.0f;
  c.rope_style = RopeStyle::Interleaved;
  c.tie_embeddings = h.shared;
  c.bos_id = 1;
  c.eos_id = 2;
  validate_llama_config(c, path);  // its bounds keep every size below 2^60 bytes
  return c;
}

std::vector<Segment> legacy_layout(const LlamaConfig& c) {
  const int64_t d = c.dim, h = c.hidden_dim, v = c.vocab_size;
  const int64_t dkv = c.n_kv_heads * c.head_dim, freqs = c.max_seq_len * (c.head_dim / 2);
  std::vector<Segment> s = {
      {"embed_tokens", {v, d}},
      {"attn_norm", {d}, true},
      {"q_proj", {d, d}, true},
      {"k_proj", {dkv, d}, true},
      {"v_proj", {dkv, d}, true},
      {"o_proj", {d, d}, true},
      {"ffn_norm", {d}, true},
      {"gate_proj", {h, d}, true},
      {"down_proj", {d, h}, true},
      {"up_proj", {h, d}, true},
      {"norm", {d}},
      {"", {freqs}},  // freq_cis_real
      {"", {freqs}},  // freq_cis_imag
  };
  if (!c.tie_embeddings) s.push_back({"lm_head", {v, d}});
  return s;
}

std::vector<Segment> v1_layout(const LlamaConfig& c) {
  const int64_t d = c.dim, h = c.hidden_dim, v = c.vocab_size;
  const int64_t dkv = c.n_kv_heads * c.head_dim;
  std::vector<Segment> s = {
      {"attn_norm", {d}, true},    {"ffn_norm", {d}, true},   {"norm", {d}},
      {"embed_tokens", {v, d}},    {"q_proj", {d, d}, true},  {"k_proj", {dkv, d}, true},
      {"v_proj", {dkv, d}, true},  {"o_proj", {d, d}, true},  {"gate_proj", {h, d}, true},
      {"down_proj", {d, h}, true}, {"up_proj", {h, d}, true},
  };
  if (!c.tie_embeddings) s.push_back({"lm_head", {v, d}});
  return s;
}

uint64_t segment_floats(const Segment& s, int64_t n_layers) {
  uint64_t n = 1;
  for (int64_t d : s.shape) n *= static_cast<uint64_t>(d);
  return s.per_layer ? n * static_cast<uint64_t>(n_layers) : n;
}

// Adds an F32 view for every named tensor; `p` walks the data section in file order.
void emit_views(const std::vector<Segment>& layout, int64_t n_layers, const uint8_t* p,
                ModelSource& src) {
  for (const Segment& s : layout) {
    const uint64_t per_tensor = segment_floats(s, 1) * 4;
    const int64_t copies = s.per_layer ? n_layers : 1;
    for (int64_t i = 0; i < copies; ++i, p += per_tensor) {
      if (s.name.empty()) continue;
      TensorView v;
      v.name = s.per_layer ? "layers." + std::to_string(i) + "." + s.name : s.name;
      v.dtype = DType::F32;
      v.shape = s.shape;
      v.data = p;
      v.nbytes = static_cast<size_t>(per_tensor);
      src.tensors.emplace(v.name, std::move(v));
    }
  }
}

}  // namespace

ModelSource load_llama2c_model(const std::string& path) {
  auto file = std::make_shared<const MappedFile>(path);
  const Header h = read_header(*file);
  ModelSource src;
  src.format = "llama2c";
  src.path = path;
  src.config = config_from(h, path);
  const auto layout = h.version == 1 ? v1_layout(src.config) : legacy_layout(src.config);
  uint64_t floats = 0;
  for (const Segment& s : layout) floats += segment_floats(s, src.config.n_layers);
  const uint64_t expected = h.data_offset + 4 * floats;
  if (file->size() < expected)
    fail(path, "truncated: expected " + std::to_string(expected) + " bytes, file has " +
                   std::to_string(file->size()));
  if (file->size() > expected)
    fail(path, "file has " + std::to_string(file->size()) + " bytes, header implies exactly " +
                   std::to_string(expected) + " (trailing data, or not a llama2.c checkpoint)");
  emit_views(layout, src.config.n_layers, file->data() + h.data_offset, src);
  src.owners.push_back(file);
  return src;
}

}  // namespace lowbit
