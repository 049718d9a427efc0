#include "model/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <unordered_set>

#include "base/error.h"

namespace lowbit {

void validate_sampler_params(const SamplerParams& p) {
  if (!(p.temperature >= 0.0f)) throw Error("sampler", "--temp must be >= 0");
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) throw Error("sampler", "--top-p must be in (0, 1]");
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) throw Error("sampler", "--min-p must be in [0, 1]");
  if (!(p.repeat_penalty > 0.0f)) throw Error("sampler", "--repeat-penalty must be > 0");
  if (p.repeat_last_n < 0) throw Error("sampler", "--repeat-last-n must be >= 0");
}

Sampler::Sampler(const SamplerParams& p) : p_(p), rng_(p.seed) { validate_sampler_params(p); }

int32_t argmax(std::span<const float> v) {
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

namespace {

struct Candidate {
  int32_t id;
  float logit;
  double prob;
};

void apply_repeat_penalty(std::vector<float>& l, std::span<const int32_t> hist, float r, int32_t n) {
  if (r == 1.0f || n == 0) return;
  const size_t start = hist.size() > static_cast<size_t>(n) ? hist.size() - n : 0;
  std::unordered_set<int32_t> seen(hist.begin() + start, hist.end());
  for (int32_t id : seen) {
    if (id < 0 || id >= static_cast<int32_t>(l.size())) continue;
    l[id] = l[id] > 0 ? l[id] / r : l[id] * r;
  }
}

// Softmax over candidates (sorted by logit, descending) at temperature t.
void softmax(std::vector<Candidate>& c, float t) {
  const double mx = c.front().logit;
  double sum = 0.0;
  for (auto& x : c) sum += (x.prob = std::exp((x.logit - mx) / t));
  for (auto& x : c) x.prob /= sum;
}

}  // namespace

int32_t Sampler::sample(std::span<const float> logits_in, std::span<const int32_t> history) {
  for (size_t i = 0; i < logits_in.size(); ++i)
    if (!std::isfinite(logits_in[i]))
      throw Error("generate", "the model produced a non-finite logit (token " + std::to_string(i) +
                                  "): its weights overflow fp32 activations");
  std::vector<float> logits(logits_in.begin(), logits_in.end());
  apply_repeat_penalty(logits, history, p_.repeat_penalty, p_.repeat_last_n);
  if (p_.temperature == 0.0f) return argmax(logits);
  std::vector<Candidate> c(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) c[i] = {static_cast<int32_t>(i), logits[i], 0.0};
  auto by_logit = [](const Candidate& a, const Candidate& b) { return a.logit > b.logit; };
  size_t keep = c.size();
  if (p_.top_k > 0) keep = std::min(keep, static_cast<size_t>(p_.top_k));
  std::partial_sort(c.begin(), c.begin() + keep, c.end(), by_logit);
  c.resize(keep);
  softmax(c, p_.temperature);
  if (p_.top_p < 1.0f) {
    double mass = 0.0;
    size_t n = 0;
    while (n < c.size() && mass < p_.top_p) mass += c[n++].prob;
    c.resize(std::max<size_t>(n, 1));
  }
  if (p_.min_p > 0.0f) {
    const double floor = p_.min_p * c.front().prob;
    while (c.size() > 1 && c.back().prob < floor) c.pop_back();
  }
  double total = 0.0;
  for (const auto& x : c) total += x.prob;
  double r = std::uniform_real_distribution<double>(0.0, total)(rng_);
  for (const auto& x : c) {
    if ((r -= x.prob) <= 0.0) return x.id;
  }
  return c.back().id;
}

}  // namespace lowbit
