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

// B with q/k rows in interleaved order when the adapter's rows are in HF order.
std::vector<float> gguf_row_order(const LoraParam& p, const LlamaConfig& mc) {
  if (mc.rope_style == RopeStyle::Interleaved || (p.proj != "q_proj" && p.proj != "k_proj")) return p.b;
  const std::vector<int64_t> order = rope_interleave_order(p.rows / mc.head_dim, mc.head_dim);
  std::vector<float> out(p.b.size());
  for (int64_t r = 0; r < p.rows; ++r)
    std::copy_n(p.b.begin() + order[r] * p.rank, p.rank, out.begin() + r * p.rank);
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
    w.add_tensor(base + ".lora_b", GgmlType::F32, {p.rows, p.rank}, f32_bytes(gguf_row_order(p, mc)));
  }
  w.write(path);
}

}  // namespace lowbit
