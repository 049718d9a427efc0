#include "train/merge.h"

#include <memory>

#include "base/error.h"
#include "base/gemm.h"

namespace lowbit {

namespace {

// W [rows, cols] += s · B [rows, r] · A [r, cols].
void add_product(const LoraParam& p, double s, float* w) {
  gemm<float>(false, false, p.rows, p.cols, p.rank, static_cast<float>(s), p.b.data(), p.rank, p.a.data(), p.cols, 1.0f,
              w, p.cols);
}

}  // namespace

ModelSource merge_lora(const ModelSource& src, const std::vector<LoraAdapter>& adapters, double extra_scale) {
  ModelSource out = src;
  std::map<std::string, std::shared_ptr<std::vector<float>>> merged;
  for (const LoraAdapter& ad : adapters) {
    for (const LoraParam& p : ad.params()) {
      if (src.quantized.count(p.module))
        throw Error("merge", p.module + " is stored quantized in " + src.path +
                                 ": merge into the float model it was made from, then quantize");
      auto& buf = merged[p.module];
      if (!buf) {
        const TensorView& t = src.tensor(p.module);
        if (t.shape != std::vector<int64_t>{p.rows, p.cols})
          throw Error("merge", "adapter for " + p.module + " does not match the model's shape");
        buf = std::make_shared<std::vector<float>>(to_f32(t));
      }
      add_product(p, ad.config().scale() * extra_scale, buf->data());
    }
  }
  for (const auto& [name, buf] : merged) {
    TensorView& v = out.tensors.at(name);
    v.dtype = DType::F32;
    v.data = reinterpret_cast<const uint8_t*>(buf->data());
    v.nbytes = buf->size() * sizeof(float);
    out.owners.push_back(buf);
  }
  return out;
}

}  // namespace lowbit
