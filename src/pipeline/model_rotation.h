// Rotations folded into a llama model's weights (QuaRot's offline part), so that the rotated
// model computes exactly the same function with no runtime cost, while its weight matrices are
// incoherent (no outlier weights or channels) and quantize better.
//
// With Q the residual rotation [D, D] (kernels/rotation.h) and the residual stream carried as
// x' = x·Q:
//   1. every RMSNorm gain g is folded into the linears that read the norm (W ← W·diag(g)) and
//      becomes all ones; RMSNorm commutes with Q because ‖x·Q‖ = ‖x‖;
//   2. embed_tokens ← E·Q (rows are token vectors);
//   3. readers of the residual (q/k/v/gate/up_proj, lm_head) ← W·diag(g)·Q;
//   4. writers to the residual (o_proj, down_proj) ← Qᵀ·W.
// Per head, with P the head rotation [hd, hd] (same for every head and layer): values are
// carried as v' = v·P, so v_proj's rows of head h ← Pᵀ·W_h (and v_bias_h ← P ᵀ·b_h); attention
// mixes positions with scalar weights, so its output is rotated alike, and o_proj's columns of
// head h ← W[:, h]·P. q/k are not rotated (RoPE pairs their dimensions).
// The result differs from the original only by fp32 rounding (the logits agree to ~1e-6
// relative; tests/pipeline/model_rotation_test.cpp).
//
// Not foldable, hence not done here: a rotation of down_proj's input (silu(gate)·up is
// elementwise, so it needs an online transform at run time).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/rotation.h"
#include "io/model_source.h"

namespace lowbit {

struct ModelRotation {
  uint64_t seed = 0;
  Rotation residual;  // size D
  Rotation head;      // size head_dim

  static ModelRotation make(const LlamaConfig& c, uint64_t seed);
  // The lowbit.rotation metadata: {"kind":"hadamard","seed":S,"residual":D,"head":hd}.
  std::string to_json() const;
};

// The canonical tensor `name` of `src` (any dtype) in fp32, as it is in the rotated model
// ("lm_head" of a tied model reads embed_tokens). Throws lowbit::Error for a quantized source.
std::vector<float> rotated_tensor_f32(const ModelSource& src, const ModelRotation& rot, const std::string& name);

// Every tensor in fp32 in memory (owned by the result; tie_embeddings becomes false), rotated
// when `rot` is given. Holds a full fp32 copy of the model: for evaluation, measurement and
// tests, not for the streaming pipeline. Throws lowbit::Error for a quantized source.
ModelSource float_model_source(const ModelSource& src, const ModelRotation* rot);

}  // namespace lowbit
