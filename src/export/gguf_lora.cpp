#include "export/gguf_lora.h"

#include <cmath>
#include <cstring>

#include "export/gguf_export.h"
#include "export/gguf_writer.h"

namespace lowbit {

namespace {

std::vector<uint8_t> f32_bytes(const std::vector<float>& v) {
  std::vector<uint8_t> out(v.size() * sizeof(float));
  std::memcpy(out.data(), v.data(), out.size());
  return out;
}

}  // namespace

void export_gguf_lora(const LoraAdapter& a, const LlamaConfig& mc, const std::string& name, const std::string& path) {
  GgufWriter w;
  const LoraConfig& c = a.config();
  const double alpha = c.rslora ? c.alpha * std::sqrt(static_cast<double>(c.rank)) : c.alpha;  // llama.cpp: alpha / r
  w.add("general.architecture", GgufMeta::string("llama"));
  w.add("general.type", GgufMeta::string("adapter"));
  w.add("general.name", GgufMeta::string(name));
  w.add("adapter.type", GgufMeta::string("lora"));
  w.add("adapter.lora.alpha", GgufMeta::f32(static_cast<float>(alpha)));
  for (const LoraParam& p : a.params()) {
    const std::string base = gguf_tensor_name(p.module);
    w.add_tensor(base + ".lora_a", GgmlType::F32, {p.rank, p.cols}, f32_bytes(p.a));
    w.add_tensor(base + ".lora_b", GgmlType::F32, {p.rows, p.rank}, f32_bytes(reorder_lora_b(p, p.b, mc.head_dim, mc.rope_style, RopeStyle::Interleaved)));
  }
  w.write(path);
}

}  // namespace lowbit
