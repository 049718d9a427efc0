// Shared by the export tests: how far apart two models' logits are on the golden prompts.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/model_source.h"
#include "model/llama.h"
#include "testutil.h"

namespace lowbit::test {

// The token ids of every prompt in a golden.json (path relative to the shared assets).
inline std::vector<std::vector<int32_t>> golden_prompts(const std::string& golden) {
  const auto j = nlohmann::json::parse(read_file(shared_path(golden)));
  std::vector<std::vector<int32_t>> out;
  for (const auto& p : j["prompts"]) out.push_back(p["token_ids"].get<std::vector<int32_t>>());
  return out;
}

// The last position's logits of `ids` run from an empty cache.
inline std::vector<float> last_logits(const LlamaModel& m, const std::vector<int32_t>& ids) {
  KvCache cache = m.new_cache(static_cast<int64_t>(ids.size()));
  std::vector<float> logits;
  m.forward(ids, cache, false, logits);
  return logits;
}

// max |a - b| / max |b| over the golden prompts' last-position logits (worst prompt).
inline double logits_rel_diff(const ModelSource& a, const ModelSource& b, const std::string& golden) {
  const LlamaModel ma(a), mb(b);
  double worst = 0;
  for (const auto& ids : golden_prompts(golden)) {
    const std::vector<float> la = last_logits(ma, ids), lb = last_logits(mb, ids);
    double diff = 0, ref = 0;
    for (size_t i = 0; i < lb.size(); ++i) {
      diff = std::max(diff, std::abs(static_cast<double>(la[i]) - lb[i]));
      ref = std::max(ref, std::abs(static_cast<double>(lb[i])));
    }
    worst = std::max(worst, diff / ref);
  }
  return worst;
}

}  // namespace lowbit::test
