#include "train/lora_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>

#include "base/error.h"
#include "base/gemm.h"
#include "base/parallel.h"
#include "base/splitmix.h"
#include "model/attention.h"
#include "train/grad_ops.h"

namespace lowbit {

int64_t TrainBatch::n_targets() const {
  return std::count_if(targets.begin(), targets.end(), [](int32_t t) { return t >= 0; });
}

struct LoraModel::LayerActs {
  std::vector<float> xn1, q, k, v, att, xmid, xn2, g, u, h;  // [N, width] each
};

// Buffers reused from step to step (resizing to the same size neither allocates nor clears).
struct LoraModel::Scratch {
  std::vector<std::vector<float>> layer_inputs;  // [L + 1][N, D]
  std::vector<LayerActs> acts;                   // one per layer, or one reused
  std::vector<float> dx, dh, dg, du, dxn, datt, dq, dk, dv;
  std::vector<float> dropped;                    // an adapter input after dropout
  std::vector<float> head_xn, head_dxn, logits;  // the head's row chunk
};

LoraModel::~LoraModel() = default;

namespace {

using Buf = std::vector<float>;

// Element-wise and row-wise loops split over the threads (each element's result does not depend
// on the split).
void parallel_elements(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (n < (int64_t{1} << 14)) fn(0, n);
  else parallel_for(n, fn);
}

// x ⊙ keep/(1 − p) with keep a pure function of (seed, stream, element index).
void apply_dropout(double p, uint64_t seed, uint64_t stream, const float* x, int64_t n, float* out) {
  const float keep_scale = static_cast<float>(1.0 / (1.0 - p));
  const uint64_t base = splitmix64(seed ^ splitmix64(stream));
  parallel_elements(n, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const double r = static_cast<double>(splitmix64(base + static_cast<uint64_t>(i)) >> 11) * 0x1.0p-53;
      out[i] = r < p ? 0.0f : x[i] * keep_scale;
    }
  });
}

void add_in_place(float* y, const float* x, int64_t n) {
  parallel_elements(n, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) y[i] += x[i];
  });
}

// x ⊙= keep/(1 − p): the same mask apply_dropout draws for (seed, stream), in place.
void apply_dropout_mask(double p, uint64_t seed, uint64_t stream, float* x, int64_t n) {
  apply_dropout(p, seed, stream, x, n, x);
}

void rms_rows(const float* x, const Matrix& w, int64_t N, int64_t D, float eps, float* out) {
  parallel_for(N, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) rms_norm(x + t * D, w.data, D, eps, out + t * D);
  });
}

// dx += rms_norm_backward(x, w, dy) row by row; with dw, also dw += ∂loss/∂w (the rows' terms
// summed in row order after the parallel pass, so the result does not depend on the threads).
void rms_rows_backward(const float* x, const Matrix& w, int64_t N, int64_t D, float eps, const float* dy,
                       float* dx, float* dw = nullptr) {
  Buf dw_rows(dw ? static_cast<size_t>(N * D) : 0);
  parallel_for(N, [&](int64_t t0, int64_t t1) {
    Buf tmp(static_cast<size_t>(D));
    for (int64_t t = t0; t < t1; ++t) {
      rms_norm_backward(x + t * D, w.data, D, eps, dy + t * D, tmp.data(), dw ? dw_rows.data() + t * D : nullptr);
      for (int64_t i = 0; i < D; ++i) dx[t * D + i] += tmp[i];
    }
  });
  if (!dw) return;
  for (int64_t t = 0; t < N; ++t)
    for (int64_t i = 0; i < D; ++i) dw[i] += dw_rows[static_cast<size_t>(t * D + i)];
}

// Σ over rows t of row_loss(t), rows split over the threads; the per-row losses are summed in
// row order, so the total does not depend on the thread count.
double sum_rows(int64_t n, const std::function<double(int64_t)>& row_loss) {
  std::vector<double> loss(static_cast<size_t>(n));
  parallel_for(n, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) loss[t] = row_loss(t);
  });
  double sum = 0.0;
  for (const double l : loss) sum += l;
  return sum;
}

void check_linear(const Linear& l, const std::string& name) {
  if (l.has_input_rotation())
    throw Error("train", "'" + name + "' has a run-time input rotation (:had); such models cannot be fine-tuned yet");
  if (l.delta_count() > 0)
    throw Error("train", "'" + name + "' already carries an adapter; train on the plain base model");
}

}  // namespace

LoraModel::LoraModel(const LlamaModel& base, LoraAdapter& adapter)
    : base_(base), adapter_(adapter), scratch_(std::make_unique<Scratch>()) {
  const LlamaConfig& c = base.config();
  for (int64_t l = 0; l < c.n_layers; ++l)
    for (const std::string& proj : lora_target_names())
      check_linear(*base.find_linear("layers." + std::to_string(l) + "." + proj),
                   "layers." + std::to_string(l) + "." + proj);
  check_linear(base.weights().lm_head, "lm_head");
  for (const LoraParam& p : adapter.params()) {
    const Linear* lin = base.find_linear(p.module);
    if (!lin || lin->rows() != p.rows || lin->cols() != p.cols)
      throw Error("train", "adapter '" + p.module + "' does not match the model's layer");
  }
  inv_freq_ = rope_inv_freq(c);
}

void LoraModel::lora_forward(const Linear& w, const float* bias, const LoraParam* p, const float* x,
                             int64_t N, float* y, const Dropout& d) const {
  w.forward_decoded(x, N, bias, y);
  if (!p) return;
  const int64_t r = p->rank, C = p->cols;
  Buf& xd = scratch_->dropped;
  if (d.p > 0) {
    xd.resize(static_cast<size_t>(N * C));
    apply_dropout(d.p, d.seed, static_cast<uint64_t>(p - adapter_.params().data()), x, N * C, xd.data());
    x = xd.data();
  }
  Buf xa(static_cast<size_t>(N * r));
  gemm<float>(false, true, N, r, C, 1.0f, x, C, p->a.data(), C, 0.0f, xa.data(), r);
  gemm<float>(false, true, N, p->rows, r, adapter_.scale(), xa.data(), r, p->b.data(), r, 1.0f, y, p->rows);
}

void LoraModel::lora_backward(const Linear& w, LoraParam* p, const float* x, const float* dy, int64_t N,
                              float* dx, bool accumulate, const Dropout& d) {
  const int64_t C = w.cols();
  w.backward_input(dy, N, dx, accumulate);
  if (hook_) hook_->on_backward(w, x, dy, N);
  if (!p) return;
  const int64_t r = p->rank, R = p->rows;
  const float s = adapter_.scale();
  const uint64_t stream = static_cast<uint64_t>(p - adapter_.params().data());
  Buf& xd = scratch_->dropped;
  if (d.p > 0) {
    xd.resize(static_cast<size_t>(N * C));
    apply_dropout(d.p, d.seed, stream, x, N * C, xd.data());
    x = xd.data();
  }
  Buf xa(static_cast<size_t>(N * r)), dyb(static_cast<size_t>(N * r));
  gemm<float>(false, true, N, r, C, 1.0f, x, C, p->a.data(), C, 0.0f, xa.data(), r);
  gemm<float>(true, false, R, r, N, s, dy, R, xa.data(), r, 1.0f, p->grad_b.data(), r);   // dB += s·dyᵀ·xa
  gemm<float>(false, false, N, r, R, 1.0f, dy, R, p->b.data(), r, 0.0f, dyb.data(), r);   // dy·B
  gemm<float>(true, false, r, C, N, s, dyb.data(), r, x, C, 1.0f, p->grad_a.data(), C);   // dA += s·(dy·B)ᵀ·x
  if (d.p == 0) {  // dx += s·(dy·B)·A
    gemm<float>(false, false, N, C, r, s, dyb.data(), r, p->a.data(), C, 1.0f, dx, C);
    return;
  }
  Buf& dxd = scratch_->dropped;  // x's dropped copy is no longer needed
  gemm<float>(false, false, N, C, r, s, dyb.data(), r, p->a.data(), C, 0.0f, dxd.data(), C);
  apply_dropout_mask(d.p, d.seed, stream, dxd.data(), N * C);  // the mask's derivative: the same factors
  add_in_place(dx, dxd.data(), N * C);
}

void LoraModel::embed(const TrainBatch& b, float* x) const {
  const LlamaConfig& c = base_.config();
  const int64_t N = b.n_seq * b.len;
  for (int64_t t = 0; t < N; ++t) {
    const int32_t id = b.tokens[t];
    if (id < 0 || id >= c.vocab_size)
      throw Error("train", "token id " + std::to_string(id) + " outside vocab of " + std::to_string(c.vocab_size));
    base_.weights().embed_tokens.row(id, x + t * c.dim);
  }
}

void LoraModel::layer_forward(int64_t l, const float* x, const TrainBatch& b, LayerActs& a, float* x_out,
                              const Dropout& d) const {
  const LlamaConfig& c = base_.config();
  const LayerWeights& lw = base_.weights().layers[l];
  const int64_t N = b.n_seq * b.len, D = c.dim, H = c.hidden_dim;
  const int64_t dq = c.n_heads * c.head_dim, dkv = c.n_kv_heads * c.head_dim;
  auto lp = [&](const char* proj) { return adapter_.find(l, proj); };
  for (Buf* v : {&a.xn1, &a.xmid, &a.xn2}) v->resize(static_cast<size_t>(N * D));
  for (Buf* v : {&a.q, &a.att}) v->resize(static_cast<size_t>(N * dq));
  for (Buf* v : {&a.k, &a.v}) v->resize(static_cast<size_t>(N * dkv));
  for (Buf* v : {&a.g, &a.u, &a.h}) v->resize(static_cast<size_t>(N * H));
  rms_rows(x, lw.attn_norm, N, D, c.norm_eps, a.xn1.data());
  lora_forward(lw.q_proj, lw.q_bias.data, lp("q_proj"), a.xn1.data(), N, a.q.data(), d);
  lora_forward(lw.k_proj, lw.k_bias.data, lp("k_proj"), a.xn1.data(), N, a.k.data(), d);
  lora_forward(lw.v_proj, lw.v_bias.data, lp("v_proj"), a.xn1.data(), N, a.v.data(), d);
  for (int64_t s = 0; s < b.n_seq; ++s) {
    float* q = a.q.data() + s * b.len * dq;
    float* k = a.k.data() + s * b.len * dkv;
    apply_rope(c, inv_freq_, q, b.len, c.n_heads, 0);
    apply_rope(c, inv_freq_, k, b.len, c.n_kv_heads, 0);
    causal_attention_gemm(c, static_cast<const float*>(q), b.len, static_cast<const float*>(k),
                     static_cast<const float*>(a.v.data() + s * b.len * dkv), 0, a.att.data() + s * b.len * dq);
  }
  lora_forward(lw.o_proj, nullptr, lp("o_proj"), a.att.data(), N, a.xmid.data(), d);
  add_in_place(a.xmid.data(), x, N * D);
  rms_rows(a.xmid.data(), lw.ffn_norm, N, D, c.norm_eps, a.xn2.data());
  lora_forward(lw.gate_proj, nullptr, lp("gate_proj"), a.xn2.data(), N, a.g.data(), d);
  lora_forward(lw.up_proj, nullptr, lp("up_proj"), a.xn2.data(), N, a.u.data(), d);
  parallel_elements(N * H, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) a.h[i] = a.g[i] / (1.0f + std::exp(-a.g[i])) * a.u[i];
  });
  lora_forward(lw.down_proj, nullptr, lp("down_proj"), a.h.data(), N, x_out, d);
  add_in_place(x_out, a.xmid.data(), N * D);
}

void LoraModel::layer_backward(int64_t l, const float* x, const TrainBatch& b, LayerActs& a, float* dx,
                               const Dropout& d) {
  const LlamaConfig& c = base_.config();
  const LayerWeights& lw = base_.weights().layers[l];
  const int64_t N = b.n_seq * b.len, D = c.dim, H = c.hidden_dim;
  const int64_t dq = c.n_heads * c.head_dim, dkv = c.n_kv_heads * c.head_dim;
  auto lp = [&](const char* proj) { return adapter_.find(l, proj); };
  // MLP: x_out = xmid + down(h), h = silu(gate(xn2)) · up(xn2), xn2 = rms(xmid).
  Scratch& sc = *scratch_;
  Buf &dh = sc.dh, &dg = sc.dg, &du = sc.du, &dxn = sc.dxn;
  for (Buf* v : {&dh, &dg, &du}) v->resize(static_cast<size_t>(N * H));
  dxn.resize(static_cast<size_t>(N * D));
  lora_backward(lw.down_proj, lp("down_proj"), a.h.data(), dx, N, dh.data(), false, d);
  parallel_elements(N * H, [&](int64_t i0, int64_t i1) {
    swiglu_backward(a.g.data() + i0, a.u.data() + i0, dh.data() + i0, i1 - i0, dg.data() + i0, du.data() + i0);
  });
  lora_backward(lw.gate_proj, lp("gate_proj"), a.xn2.data(), dg.data(), N, dxn.data(), false, d);
  lora_backward(lw.up_proj, lp("up_proj"), a.xn2.data(), du.data(), N, dxn.data(), true, d);
  rms_rows_backward(a.xmid.data(), lw.ffn_norm, N, D, c.norm_eps, dxn.data(), dx,
                    hook_ ? hook_->norm_grad(lw.ffn_norm) : nullptr);  // dx is now d xmid
  // Attention: xmid = x + o(attn(rope(q(xn1)), rope(k(xn1)), v(xn1))), xn1 = rms(x).
  Buf &datt = sc.datt, &dqv = sc.dq, &dk = sc.dk, &dv = sc.dv;
  for (Buf* v : {&datt, &dqv}) v->resize(static_cast<size_t>(N * dq));
  for (Buf* v : {&dk, &dv}) v->resize(static_cast<size_t>(N * dkv));
  lora_backward(lw.o_proj, lp("o_proj"), a.att.data(), dx, N, datt.data(), false, d);
  for (int64_t s = 0; s < b.n_seq; ++s) {
    const int64_t oq = s * b.len * dq, ok = s * b.len * dkv;
    causal_attention_backward(c, a.q.data() + oq, a.k.data() + ok, a.v.data() + ok, b.len, datt.data() + oq,
                              dqv.data() + oq, dk.data() + ok, dv.data() + ok);
    rope_backward(c, inv_freq_, dqv.data() + oq, b.len, c.n_heads, 0);
    rope_backward(c, inv_freq_, dk.data() + ok, b.len, c.n_kv_heads, 0);
  }
  lora_backward(lw.q_proj, lp("q_proj"), a.xn1.data(), dqv.data(), N, dxn.data(), false, d);
  lora_backward(lw.k_proj, lp("k_proj"), a.xn1.data(), dk.data(), N, dxn.data(), true, d);
  lora_backward(lw.v_proj, lp("v_proj"), a.xn1.data(), dv.data(), N, dxn.data(), true, d);
  rms_rows_backward(x, lw.attn_norm, N, D, c.norm_eps, dxn.data(), dx,
                    hook_ ? hook_->norm_grad(lw.attn_norm) : nullptr);  // dx is now d x
}

LossSum LoraModel::head(const float* x, const TrainBatch& b, double grad_scale, float* dx) const {
  const LlamaConfig& c = base_.config();
  const LlamaWeights& w = base_.weights();
  const int64_t N = b.n_seq * b.len, D = c.dim, V = c.vocab_size;
  // Rows of logits alive at once: ~64 MiB of them (the whole batch for small vocabularies), so
  // that a packed lm_head is decoded once per chunk, not once per few rows.
  const int64_t kChunk = std::clamp<int64_t>((int64_t{64} << 20) / (4 * V), 64, std::max<int64_t>(N, 64));
  Buf &xn = scratch_->head_xn, &logits = scratch_->logits, &dxn = scratch_->head_dxn;
  xn.resize(static_cast<size_t>(kChunk * D));
  dxn.resize(xn.size());
  logits.resize(static_cast<size_t>(kChunk * V));
  LossSum sum;
  for (int64_t t0 = 0; t0 < N; t0 += kChunk) {
    const int64_t n = std::min(kChunk, N - t0);
    const int32_t* tg = b.targets.data() + t0;
    if (std::none_of(tg, tg + n, [](int32_t t) { return t >= 0; })) {
      if (dx) std::fill(dx + t0 * D, dx + (t0 + n) * D, 0.0f);
      continue;
    }
    rms_rows(x + t0 * D, w.norm, n, D, c.norm_eps, xn.data());
    w.lm_head.forward_decoded(xn.data(), n, nullptr, logits.data());
    for (int64_t t = 0; t < n; ++t) {
      if (tg[t] >= V) throw Error("train", "target id " + std::to_string(tg[t]) + " outside vocab");
      sum.n_targets += tg[t] >= 0;
    }
    float* dlogits = dx ? logits.data() : nullptr;  // in place: each row reads only itself
    const float* teacher = teacher_ ? teacher_ + t0 * V : nullptr;
    sum.loss += sum_rows(n, [&](int64_t t) {
      return teacher ? kl_divergence(teacher + t * V, logits.data() + t * V, 1, V, tg + t, grad_scale,
                                     dlogits ? dlogits + t * V : nullptr)
                     : cross_entropy(logits.data() + t * V, 1, V, tg + t, grad_scale,
                                     dlogits ? dlogits + t * V : nullptr);
    });
    if (!dx) continue;
    w.lm_head.backward_input(logits.data(), n, dxn.data());
    if (hook_) hook_->on_backward(w.lm_head, xn.data(), logits.data(), n);
    std::fill(dx + t0 * D, dx + (t0 + n) * D, 0.0f);
    rms_rows_backward(x + t0 * D, w.norm, n, D, c.norm_eps, dxn.data(), dx + t0 * D,
                      hook_ ? hook_->norm_grad(w.norm) : nullptr);
  }
  return sum;
}

LossSum LoraModel::run(const TrainBatch& b, double grad_scale, const Dropout* d) {
  const LlamaConfig& c = base_.config();
  const int64_t N = b.n_seq * b.len, D = c.dim, L = c.n_layers;
  if (N <= 0 || static_cast<int64_t>(b.tokens.size()) != N || static_cast<int64_t>(b.targets.size()) != N)
    throw Error("train", "malformed batch");
  const Dropout none;
  const Dropout& drop = d ? *d : none;
  std::vector<Buf>& xs = scratch_->layer_inputs;
  xs.resize(static_cast<size_t>(L + 1));
  for (Buf& x : xs) x.resize(static_cast<size_t>(N * D));
  embed(b, xs[0].data());
  // Intermediates: one reused set (recomputed in the backward pass) or one set per layer.
  const bool keep = d && !recompute_;
  std::vector<LayerActs>& acts = scratch_->acts;
  acts.resize(keep ? static_cast<size_t>(L) : 1);
  for (int64_t l = 0; l < L; ++l) layer_forward(l, xs[l].data(), b, acts[keep ? l : 0], xs[l + 1].data(), drop);
  if (!d) return head(xs[L].data(), b, 0.0, nullptr);
  Buf& dx = scratch_->dx;
  dx.resize(static_cast<size_t>(N * D));
  const LossSum sum = head(xs[L].data(), b, grad_scale, dx.data());
  for (int64_t l = L - 1; l >= 0; --l) {
    if (!keep) layer_forward(l, xs[l].data(), b, acts[0], xs[l + 1].data(), drop);
    layer_backward(l, xs[l].data(), b, acts[keep ? l : 0], dx.data(), drop);
  }
  if (hook_) hook_->on_embedding_backward(b, dx.data());
  return sum;
}

LossSum LoraModel::forward_backward(const TrainBatch& batch, double grad_scale, uint64_t dropout_seed) {
  const Dropout d{adapter_.config().dropout, dropout_seed};
  return run(batch, grad_scale, &d);
}

LossSum LoraModel::loss(const TrainBatch& batch) { return run(batch, 0.0, nullptr); }

LossSum LoraModel::run_distill(const TrainBatch& batch, const float* teacher_logits, double grad_scale,
                               bool backward) {
  struct Reset {
    const float*& teacher;
    ~Reset() { teacher = nullptr; }
  } reset{teacher_};
  teacher_ = teacher_logits;
  const Dropout none;
  return run(batch, grad_scale, backward ? &none : nullptr);
}

LossSum LoraModel::forward_backward_distill(const TrainBatch& batch, const float* teacher_logits,
                                            double grad_scale) {
  return run_distill(batch, teacher_logits, grad_scale, true);
}

LossSum LoraModel::distill_loss(const TrainBatch& batch, const float* teacher_logits) {
  return run_distill(batch, teacher_logits, 0.0, false);
}

void LoraModel::block_forward(int64_t layer, const TrainBatch& batch, const float* x, float* y) {
  LOWBIT_ASSERT(layer >= 0 && layer < base_.config().n_layers);
  scratch_->acts.resize(std::max<size_t>(scratch_->acts.size(), 1));
  layer_forward(layer, x, batch, scratch_->acts[0], y, Dropout{});
}

double LoraModel::block_mse_backward(int64_t layer, const TrainBatch& batch, const float* x, const float* target,
                                     double grad_scale) {
  const int64_t n = batch.n_seq * batch.len * base_.config().dim;
  Buf& y = scratch_->dx;  // the output, then its gradient, then the input's gradient
  y.resize(static_cast<size_t>(n));
  block_forward(layer, batch, x, y.data());
  double loss = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(y[i]) - target[i];
    loss += d * d;
    y[i] = static_cast<float>(2.0 * grad_scale * d);
  }
  layer_backward(layer, x, batch, scratch_->acts[0], y.data(), Dropout{});
  return loss;
}

int64_t LoraModel::stored_activation_bytes(int64_t n_tokens) const {
  const LlamaConfig& c = base_.config();
  const int64_t dq = c.n_heads * c.head_dim, dkv = c.n_kv_heads * c.head_dim;
  const int64_t per_token = 3 * c.dim + 2 * dq + 2 * dkv + 3 * c.hidden_dim;  // LayerActs' widths
  return c.n_layers * n_tokens * per_token * static_cast<int64_t>(sizeof(float));
}

}  // namespace lowbit
