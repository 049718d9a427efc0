// Shared by the calibrated-pipeline tests: ref-s quantized with a small calibration set, and a
// .lowbit model turned back into dense fp32 weights (what the file means, run by plain fp32
// arithmetic).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "io/lowbit_file.h"
#include "model/loader.h"
#include "pipeline/quantize.h"
#include "testutil.h"

namespace lowbit::test {

inline QuantizeOptions small_calibration(const std::string& recipe) {
  QuantizeOptions opt;
  opt.recipe = recipe;
  opt.calibration.source = shared_path("data/calibration/wiki.utf8");
  opt.calibration.windows = 16;
  opt.calibration.window_len = 128;
  return opt;
}

inline QuantizeReport quantize_ref_s(const QuantizeOptions& opt, const std::string& out) {
  const ModelSource src = open_model_source(shared_path("models/ref-s"));
  const auto tok = load_tokenizer_for(src, "");
  return quantize_model(src, *tok, opt, out);
}

// The .lowbit model at `path` with every quantized matrix replaced by its fp32 value Ŵ, plus B·A
// where it has a low-rank correction (unless with_corrections is false).
inline ModelSource dense_source(const std::string& path, bool with_corrections = true) {
  ModelSource s = load_lowbit_model(path);
  auto store = std::make_shared<std::vector<std::vector<float>>>();
  store->reserve(s.quantized.size());
  for (const auto& [name, m] : s.quantized) {
    std::vector<float> w = dequantize(m);
    if (auto c = s.corrections.find(name); with_corrections && c != s.corrections.end())
      for (int64_t r = 0; r < m.rows; ++r)
        for (int64_t col = 0; col < m.cols; ++col)
          for (int64_t j = 0; j < c->second.rank; ++j)
            w[r * m.cols + col] += c->second.b[r * c->second.rank + j] * c->second.a[j * m.cols + col];
    store->push_back(std::move(w));
    TensorView v;
    v.name = name;
    v.dtype = DType::F32;
    v.shape = {m.rows, m.cols};
    v.data = reinterpret_cast<const uint8_t*>(store->back().data());
    v.nbytes = store->back().size() * sizeof(float);
    s.tensors[name] = v;
  }
  s.quantized.clear();
  s.corrections.clear();
  s.owners.push_back(store);
  return s;
}

}  // namespace lowbit::test
