#include "model/generate.h"

#include <chrono>

#include "base/error.h"

namespace lowbit {

namespace {
double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

GenerateStats generate(const LlamaModel& model, const std::vector<int32_t>& prompt,
                       const GenerateOptions& opt, const std::function<bool(int32_t)>& on_token) {
  if (prompt.empty()) throw Error("generate", "empty prompt (no tokens)");
  if (opt.max_new_tokens < 0) throw Error("generate", "-n must be >= 0");
  Sampler sampler(opt.sampler);
  KvCache cache = model.new_cache(static_cast<int64_t>(prompt.size()) + opt.max_new_tokens);
  std::vector<int32_t> history = prompt;
  std::vector<float> logits;
  GenerateStats st;
  st.prompt_tokens = static_cast<int64_t>(prompt.size());
  auto t0 = std::chrono::steady_clock::now();
  model.forward(prompt, cache, /*all_logits=*/false, logits);
  st.prefill_seconds = since(t0);
  t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < opt.max_new_tokens; ++i) {
    const int32_t next = sampler.sample(logits, history);
    history.push_back(next);
    ++st.generated;
    if (!on_token(next)) break;
    if (opt.stop_at_eos && next == opt.eos_id) break;
    if (i + 1 < opt.max_new_tokens) model.forward({&next, 1}, cache, false, logits);
  }
  st.decode_seconds = since(t0);
  return st;
}

}  // namespace lowbit
