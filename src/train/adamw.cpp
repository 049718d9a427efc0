#include "train/adamw.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "base/error.h"

namespace lowbit {

LrSchedule parse_lr_schedule(const std::string& s) {
  if (s == "constant") return LrSchedule::Constant;
  if (s == "linear") return LrSchedule::Linear;
  if (s == "cosine") return LrSchedule::Cosine;
  throw Error("finetune", "unknown learning-rate schedule '" + s + "' (constant, linear, cosine)");
}

const char* lr_schedule_name(LrSchedule s) {
  switch (s) {
    case LrSchedule::Linear:
      return "linear";
    case LrSchedule::Cosine:
      return "cosine";
    default:
      return "constant";
  }
}

void validate_adamw(const AdamWOptions& o) {
  if (!(o.lr > 0) || !std::isfinite(o.lr)) throw Error("finetune", "learning rate must be a positive number");
  if (!(o.beta1 >= 0 && o.beta1 < 1) || !(o.beta2 >= 0 && o.beta2 < 1))
    throw Error("finetune", "Adam betas must be in [0, 1)");
  if (!(o.eps > 0)) throw Error("finetune", "Adam epsilon must be positive");
  if (!(o.weight_decay >= 0)) throw Error("finetune", "weight decay must be >= 0");
  if (!(o.clip >= 0)) throw Error("finetune", "gradient clip must be >= 0 (0 = off)");
  if (o.warmup_steps < 0) throw Error("finetune", "warmup steps must be >= 0");
  if (o.total_steps < 1) throw Error("finetune", "training needs at least one step");
}

double lr_at(const AdamWOptions& o, int64_t step) {
  if (step < o.warmup_steps) return o.lr * static_cast<double>(step) / static_cast<double>(o.warmup_steps);
  const double span = static_cast<double>(std::max<int64_t>(1, o.total_steps - o.warmup_steps));
  const double progress = static_cast<double>(step - o.warmup_steps) / span;
  switch (o.schedule) {
    case LrSchedule::Linear:
      return o.lr * std::max(0.0, 1.0 - progress);
    case LrSchedule::Cosine:
      return o.lr * std::max(0.0, 0.5 * (1.0 + std::cos(std::numbers::pi * progress)));
    default:
      return o.lr;
  }
}

std::vector<ParamRef> adapter_param_refs(LoraAdapter& adapter) {
  std::vector<ParamRef> refs;
  for (LoraParam& p : adapter.params()) {
    refs.push_back({&p.a, &p.grad_a});
    refs.push_back({&p.b, &p.grad_b});
  }
  return refs;
}

AdamW::AdamW(const LoraAdapter& adapter, AdamWOptions o) : opt_(o) {
  validate_adamw(opt_);
  for (const LoraParam& p : adapter.params()) {
    m_.emplace_back(p.a.size(), 0.0f);
    m_.emplace_back(p.b.size(), 0.0f);
  }
  v_ = m_;
}

AdamW::AdamW(const std::vector<ParamRef>& params, AdamWOptions o) : opt_(o) {
  validate_adamw(opt_);
  for (const ParamRef& p : params) m_.emplace_back(p.value->size(), 0.0f);
  v_ = m_;
}

namespace {

double squared_norm(const std::vector<float>& g) {
  double s = 0;
  for (const float x : g) s += static_cast<double>(x) * x;
  return s;
}

void scale_in_place(std::vector<float>& g, float f) {
  for (float& x : g) x *= f;
}

}  // namespace

StepStats AdamW::step(LoraAdapter& adapter) { return step(adapter_param_refs(adapter)); }

StepStats AdamW::step(const std::vector<ParamRef>& params) {
  if (params.size() != m_.size()) throw Error("finetune", "optimizer step over a different set of tensors");
  StepStats st;
  double sq = 0;
  for (const ParamRef& p : params) sq += squared_norm(*p.grad);
  st.grad_norm = std::sqrt(sq);
  if (opt_.clip > 0 && st.grad_norm > opt_.clip) {
    const float f = static_cast<float>(opt_.clip / (st.grad_norm + 1e-6));
    for (const ParamRef& p : params) scale_in_place(*p.grad, f);
  }
  st.lr = lr_at(opt_, t_);
  ++t_;
  const double bc1 = 1.0 - std::pow(opt_.beta1, static_cast<double>(t_));
  const double bc2 = 1.0 - std::pow(opt_.beta2, static_cast<double>(t_));
  const float b1 = static_cast<float>(opt_.beta1), b2 = static_cast<float>(opt_.beta2);
  const float sqrt_bc2 = static_cast<float>(std::sqrt(bc2));
  const float eps = static_cast<float>(opt_.eps);
  for (size_t k = 0; k < params.size(); ++k) {
    const double lr = st.lr * params[k].lr_mult;
    const float decay = static_cast<float>(1.0 - lr * opt_.weight_decay);
    const float step_size = static_cast<float>(lr / bc1);
    std::vector<float>& w = *params[k].value;
    const std::vector<float>& g = *params[k].grad;
    std::vector<float>& m = m_[k];
    std::vector<float>& v = v_[k];
    if (w.size() != m.size() || g.size() != m.size())
      throw Error("finetune", "optimizer step over a tensor of another size");
    for (size_t i = 0; i < w.size(); ++i) {
      w[i] *= decay;
      m[i] = b1 * m[i] + (1.0f - b1) * g[i];
      v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
      w[i] -= step_size * m[i] / (std::sqrt(v[i]) / sqrt_bc2 + eps);
    }
  }
  return st;
}

}  // namespace lowbit
