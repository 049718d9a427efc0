#include "model/generate.h"

#include <algorithm>
#include <chrono>
#include <string>

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
  const int64_t ctx = model.config().max_seq_len, n_prompt = static_cast<int64_t>(prompt.size());
  if (n_prompt > ctx)
    throw Error("generate", "the prompt has " + std::to_string(n_prompt) + " tokens, more than the model's context of " +
                                std::to_string(ctx));
  const int64_t max_new = std::min(opt.max_new_tokens, ctx - n_prompt);
  Sampler sampler(opt.sampler);
  KvCache cache = model.new_cache(n_prompt + max_new, opt.kv_type);
  std::vector<int32_t> history = prompt;
  std::vector<float> logits;
  GenerateStats st;
  st.prompt_tokens = static_cast<int64_t>(prompt.size());
  auto t0 = std::chrono::steady_clock::now();
  model.forward(prompt, cache, /*all_logits=*/false, logits);
  st.prefill_seconds = since(t0);
  t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < max_new; ++i) {
    const int32_t next = sampler.sample(logits, history);
    history.push_back(next);
    ++st.generated;
    if (!on_token(next)) break;
    if (opt.stop_at_eos && next == opt.eos_id) break;
    if (i + 1 < max_new) model.forward({&next, 1}, cache, false, logits);
  }
  // Ran out of context rather than stopping on EOS or by the caller (a prompt that fills the
  // context, max_new == 0, counts too).
  st.hit_context = max_new < opt.max_new_tokens && st.generated == max_new &&
                   !(st.generated > 0 && opt.stop_at_eos && history.back() == opt.eos_id);
  st.decode_seconds = since(t0);
  return st;
}

}  // namespace lowbit
