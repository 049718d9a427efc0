// A small packed model for the serving tests: ref-s with every linear layer quantized to
// int4:g64 by RTN (packed kernels are row-independent, so batched greedy decoding must equal
// lowbit generate token for token).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "algo/rtn.h"
#include "formats/quant_spec.h"
#include "model/generate.h"
#include "model/loader.h"
#include "testutil.h"

namespace lowbit::test {

inline LoadedModel& serve_test_model() {
  static LoadedModel m = [] {
    LoadedModel lm;
    lm.source = open_model_source(shared_path("models/ref-s"));
    lm.tokenizer = load_tokenizer_for(lm.source, "");
    const QuantSpec spec = parse_quant_spec("int4:g64");
    for (auto it = lm.source.tensors.begin(); it != lm.source.tensors.end();) {
      if ((it->first.starts_with("layers.") && it->first.ends_with("_proj")) || it->first == "lm_head") {
        const Matrix w = matrix_from(it->second);
        lm.source.quantized.emplace(it->first, quantize_rtn(w.data, w.rows, w.cols, spec));
        it = lm.source.tensors.erase(it);
      } else {
        ++it;
      }
    }
    lm.model = std::make_unique<LlamaModel>(lm.source);
    return lm;
  }();
  return m;
}

// lowbit generate's greedy tokens for `prompt` on `model` (default: the shared test model),
// without the final EOS, which a server does not return as text.
inline std::vector<int32_t> greedy_reference(const std::vector<int32_t>& prompt, int64_t n,
                                             const LlamaModel* model = nullptr) {
  LoadedModel& m = serve_test_model();
  GenerateOptions opt;
  opt.max_new_tokens = n;
  opt.sampler.temperature = 0;
  opt.eos_id = m.tokenizer->eos_id();
  std::vector<int32_t> out;
  generate(model ? *model : *m.model, prompt, opt, [&](int32_t id) {
    if (id != opt.eos_id) out.push_back(id);
    return true;
  });
  return out;
}

}  // namespace lowbit::test
