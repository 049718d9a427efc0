// LoRA adapters being trained: per targeted linear layer W [rows, cols] two matrices
// A [rank, cols] and B [rows, rank] with the layer computing y = x·Wᵀ + scale · (drop(x)·Aᵀ)·Bᵀ.
//
// Initialisation as PEFT's default: A ~ U(−1/√cols, 1/√cols) (kaiming-uniform with a = √5),
// B = 0, so training starts from the base model exactly. scale = alpha / rank, or
// alpha / √rank with rsLoRA.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "io/llama_config.h"
#include "model/linear.h"

namespace lowbit {

class LlamaModel;

// The projections LoRA can target, by their short names (PEFT's target_modules).
inline const std::vector<std::string>& lora_target_names() {
  static const std::vector<std::string> k = {"q_proj", "k_proj", "v_proj", "o_proj",
                                             "gate_proj", "up_proj", "down_proj"};
  return k;
}

// [rows, cols] of projection `proj` (one of lora_target_names()) in a model with config c.
std::pair<int64_t, int64_t> lora_target_shape(const LlamaConfig& c, const std::string& proj);

struct LoraParam;

// p's B [rows, rank] with its rows moved from one q/k row layout to another: q_proj / k_proj rows
// are permuted per head between HF's rotate-half order and the interleaved-RoPE order GGUF and
// llama2.c store (io/llama_config.h rope_interleave_order); other projections, or from == to,
// are returned unchanged.
std::vector<float> reorder_lora_b(const LoraParam& p, const std::vector<float>& b, int64_t head_dim, RopeStyle from,
                                  RopeStyle to);

struct LoraConfig {
  int64_t rank = 16;
  double alpha = 32.0;
  double dropout = 0.0;  // probability of zeroing an input element of the adapter path
  bool rslora = false;
  std::vector<std::string> targets = lora_target_names();

  double scale() const;
};

// Throws lowbit::Error for a rank < 1, alpha <= 0, dropout outside [0, 1), an unknown or
// repeated target.
void validate_lora_config(const LoraConfig& c);

struct LoraParam {
  std::string module;  // canonical layer name, e.g. "layers.3.q_proj"
  int64_t layer = 0;
  std::string proj;    // "q_proj" ...
  int64_t rows = 0, cols = 0, rank = 0;
  std::vector<float> a, b;            // [rank, cols], [rows, rank]
  std::vector<float> grad_a, grad_b;  // same shapes; accumulated by backward
};

class LoraAdapter {
 public:
  LoraAdapter() = default;
  // Fresh adapters on every targeted linear of a model with config `mc` (A random, B zero).
  static LoraAdapter init(const LlamaConfig& mc, const LoraConfig& lc, uint64_t seed);

  const LoraConfig& config() const { return config_; }
  float scale() const { return static_cast<float>(config_.scale()); }
  std::vector<LoraParam>& params() { return params_; }
  const std::vector<LoraParam>& params() const { return params_; }
  // The adapter of layer `layer`'s projection `proj`, or nullptr when it is not targeted.
  LoraParam* find(int64_t layer, const std::string& proj);
  const LoraParam* find(int64_t layer, const std::string& proj) const;
  const LoraParam* find(const std::string& module) const;

  void zero_grads();
  int64_t parameter_count() const;
  // The adapters as low-rank deltas a LlamaModel applies at inference (LlamaModel::add_delta).
  // Each targeted layer's update (scale · B·A with the adapter's α/r times extra_scale), by
  // canonical layer name.
  std::vector<std::pair<std::string, std::shared_ptr<const LowRankDelta>>> deltas(double extra_scale) const;
  void attach_to(LlamaModel& model, double extra_scale = 1.0) const;

  // Built from loaded matrices (PEFT import); shapes are checked by the caller.
  static LoraAdapter from_params(const LoraConfig& lc, std::vector<LoraParam> params);

 private:
  LoraConfig config_;
  std::vector<LoraParam> params_;  // layer-major, projections in lora_target_names() order
};

}  // namespace lowbit
