#include "train/lora.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <set>

#include "base/error.h"
#include "model/llama.h"

namespace lowbit {

double LoraConfig::scale() const {
  return alpha / (rslora ? std::sqrt(static_cast<double>(rank)) : static_cast<double>(rank));
}

void validate_lora_config(const LoraConfig& c) {
  if (c.rank < 1 || c.rank > 4096) throw Error("lora", "rank must be in [1, 4096], got " + std::to_string(c.rank));
  if (!(c.alpha > 0) || !std::isfinite(c.alpha)) throw Error("lora", "alpha must be a positive number");
  if (!(c.dropout >= 0 && c.dropout < 1)) throw Error("lora", "dropout must be in [0, 1)");
  if (c.targets.empty()) throw Error("lora", "no target modules");
  std::set<std::string> seen;
  for (const std::string& t : c.targets) {
    const auto& names = lora_target_names();
    if (std::find(names.begin(), names.end(), t) == names.end())
      throw Error("lora", "unknown target module '" + t + "' (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj)");
    if (!seen.insert(t).second) throw Error("lora", "target module '" + t + "' given twice");
  }
}

std::pair<int64_t, int64_t> lora_target_shape(const LlamaConfig& c, const std::string& proj) {
  const int64_t D = c.dim, dq = c.n_heads * c.head_dim, dkv = c.n_kv_heads * c.head_dim, H = c.hidden_dim;
  if (proj == "q_proj") return {dq, D};
  if (proj == "k_proj" || proj == "v_proj") return {dkv, D};
  if (proj == "o_proj") return {D, dq};
  if (proj == "gate_proj" || proj == "up_proj") return {H, D};
  return {D, H};  // down_proj
}

std::vector<float> reorder_lora_b(const LoraParam& p, const std::vector<float>& b, int64_t head_dim, RopeStyle from,
                                  RopeStyle to) {
  if (from == to || (p.proj != "q_proj" && p.proj != "k_proj")) return b;
  const std::vector<int64_t> order = rope_interleave_order(p.rows / head_dim, head_dim);  // interleaved row -> HF row
  const bool to_hf = to == RopeStyle::RotateHalf;
  std::vector<float> out(b.size());
  for (int64_t r = 0; r < p.rows; ++r) {
    const int64_t src = to_hf ? r : order[r], dst = to_hf ? order[r] : r;
    std::copy_n(b.begin() + src * p.rank, p.rank, out.begin() + dst * p.rank);
  }
  return out;
}

LoraAdapter LoraAdapter::init(const LlamaConfig& mc, const LoraConfig& lc, uint64_t seed) {
  validate_lora_config(lc);
  LoraAdapter ad;
  ad.config_ = lc;
  std::mt19937_64 rng(seed);
  for (int64_t l = 0; l < mc.n_layers; ++l) {
    for (const std::string& proj : lora_target_names()) {
      if (std::find(lc.targets.begin(), lc.targets.end(), proj) == lc.targets.end()) continue;
      LoraParam p;
      p.layer = l;
      p.proj = proj;
      p.module = "layers." + std::to_string(l) + "." + proj;
      std::tie(p.rows, p.cols) = lora_target_shape(mc, proj);
      p.rank = lc.rank;
      p.a.resize(static_cast<size_t>(p.rank * p.cols));
      p.b.assign(static_cast<size_t>(p.rows * p.rank), 0.0f);
      // Uniform in [−bound, bound) from the top 24 bits of each draw (portable, unlike
      // std::uniform_real_distribution whose algorithm the standard leaves open).
      const double bound = 1.0 / std::sqrt(static_cast<double>(p.cols));
      for (float& v : p.a)
        v = static_cast<float>(bound * (2.0 * static_cast<double>(rng() >> 40) / 16777216.0 - 1.0));
      ad.params_.push_back(std::move(p));
    }
  }
  ad.zero_grads();
  return ad;
}

LoraAdapter LoraAdapter::from_params(const LoraConfig& lc, std::vector<LoraParam> params) {
  LoraAdapter ad;
  ad.config_ = lc;
  ad.params_ = std::move(params);
  ad.zero_grads();
  return ad;
}

LoraParam* LoraAdapter::find(int64_t layer, const std::string& proj) {
  for (LoraParam& p : params_)
    if (p.layer == layer && p.proj == proj) return &p;
  return nullptr;
}

const LoraParam* LoraAdapter::find(int64_t layer, const std::string& proj) const {
  return const_cast<LoraAdapter*>(this)->find(layer, proj);
}

const LoraParam* LoraAdapter::find(const std::string& module) const {
  for (const LoraParam& p : params_)
    if (p.module == module) return &p;
  return nullptr;
}

void LoraAdapter::zero_grads() {
  for (LoraParam& p : params_) {
    p.grad_a.assign(p.a.size(), 0.0f);
    p.grad_b.assign(p.b.size(), 0.0f);
  }
}

int64_t LoraAdapter::parameter_count() const {
  int64_t n = 0;
  for (const LoraParam& p : params_) n += static_cast<int64_t>(p.a.size() + p.b.size());
  return n;
}

std::vector<std::pair<std::string, std::shared_ptr<const LowRankDelta>>> LoraAdapter::deltas(double extra_scale) const {
  std::vector<std::pair<std::string, std::shared_ptr<const LowRankDelta>>> out;
  for (const LoraParam& p : params_) {
    auto d = std::make_shared<LowRankDelta>();
    d->rank = p.rank;
    d->rows = p.rows;
    d->cols = p.cols;
    d->a = p.a;
    d->b = p.b;
    d->scale = static_cast<float>(config_.scale() * extra_scale);
    out.emplace_back(p.module, std::move(d));
  }
  return out;
}

void LoraAdapter::attach_to(LlamaModel& model, double extra_scale) const {
  for (auto& [module, d] : deltas(extra_scale)) model.add_delta(module, std::move(d));
}

}  // namespace lowbit
