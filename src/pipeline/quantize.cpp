#include "pipeline/quantize.h"

#include <chrono>
#include <cmath>

#include "algo/rtn.h"
#include "base/error.h"
#include "io/lowbit_file.h"

namespace lowbit {

namespace {

bool is_linear(const std::string& name) {
  return name == "lm_head" || (name.starts_with("layers.") && name.ends_with("_proj"));
}

const char* plain_dtype(FormatKind k) {
  return k == FormatKind::F16 ? "F16" : k == FormatKind::BF16 ? "BF16" : "F32";
}

// Quantizes one tensor per its recipe into `in` (and `store` for the quantized matrix).
TensorReport quantize_tensor(const std::string& name, const std::vector<float>& w,
                             const std::vector<int64_t>& shape, const Recipe& r,
                             QuantizedMatrix& store, LowbitTensorIn& in) {
  const auto t0 = std::chrono::steady_clock::now();
  TensorReport rep;
  rep.name = name;
  rep.recipe = r.to_string();
  rep.format = r.spec.to_string();
  rep.shape = shape;
  rep.params = static_cast<int64_t>(w.size());
  in.name = name;
  in.recipe = rep.recipe;
  if (r.algorithm == "none") {
    in.values = w;
    in.shape = shape;
    in.plain_dtype = plain_dtype(r.spec.kind);
    rep.bytes = rep.params * (r.spec.kind == FormatKind::F32 ? 4 : 2);
    if (r.spec.kind != FormatKind::F32) {
      const QuantizedMatrix plain = quantize_rtn(w.data(), 1, rep.params, r.spec);
      const std::vector<float> back = dequantize(plain);
      rep.rel_rmse = relative_rmse(w.data(), back.data(), rep.params);
    }
  } else {
    RtnOptions opt;
    opt.clip_search = r.clip;
    store = quantize_rtn(w.data(), shape[0], shape[1], r.spec, opt);
    const std::vector<float> back = dequantize(store);
    rep.rel_rmse = relative_rmse(w.data(), back.data(), rep.params);
    rep.bytes = store.storage_bytes();
    in.quantized = true;
    in.matrix = &store;
  }
  rep.bits_per_weight = 8.0 * static_cast<double>(rep.bytes) / static_cast<double>(rep.params);
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return rep;
}

}  // namespace

QuantizeReport quantize_model(const ModelSource& src, const Tokenizer& tokenizer,
                              const QuantizeOptions& opt, const std::string& out_path) {
  if (!src.quantized.empty())
    throw Error("quantize", src.path + ": already quantized; quantize from the original model");
  const auto t0 = std::chrono::steady_clock::now();
  const RecipePlan plan(opt.recipe, opt.overrides);
  LowbitModelIn out;
  out.config = src.config;
  out.config.tie_embeddings = false;  // lm_head is stored on its own (it may be quantized)
  out.recipe = plan.model_recipe().to_string();
  out.source = src.path;
  const TokenizerBlob blob = tokenizer.to_blob();
  out.tokenizer = {blob.kind, blob.bytes};
  const auto names = canonical_tensor_shapes(out.config);
  std::vector<QuantizedMatrix> stores(names.size());  // stable addresses for LowbitTensorIn
  QuantizeReport report;
  report.recipe = out.recipe;
  for (size_t i = 0; i < names.size(); ++i) {
    const auto& [name, shape] = names[i];
    if (opt.progress) opt.progress(static_cast<int64_t>(i), static_cast<int64_t>(names.size()), name);
    const std::string src_name = (name == "lm_head" && src.config.tie_embeddings) ? "embed_tokens" : name;
    const std::vector<float> w = to_f32(src.tensor(src_name));
    const Recipe r = plan.for_tensor(name, shape.size() == 2);
    if (r.algorithm != "none" && shape.size() != 2) throw Error("quantize", name + ": only matrices can be quantized");
    LowbitTensorIn in;
    TensorReport rep = quantize_tensor(name, w, shape, r, stores[i], in);
    out.tensors.push_back(std::move(in));
    report.total_params += rep.params;
    report.total_bytes += rep.bytes;
    if (is_linear(name)) {
      report.linear_params += rep.params;
      report.linear_bytes += rep.bytes;
    }
    report.tensors.push_back(std::move(rep));
  }
  if (opt.progress) opt.progress(static_cast<int64_t>(names.size()), static_cast<int64_t>(names.size()), "");
  write_lowbit(out_path, out);
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

}  // namespace lowbit
