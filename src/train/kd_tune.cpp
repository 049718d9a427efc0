#include "train/kd_tune.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <span>

#include "base/error.h"
#include "base/parallel.h"
#include "kernels/packed_matrix.h"
#include "train/dataset.h"
#include "train/lora_model.h"

namespace lowbit {

namespace {

constexpr const char* kComp = "tune";
constexpr float kMaxLogScale = 3.0f;  // |θ| bound: a scale moves by at most e³ ≈ 20×

// The stored parts tuning may change (to restore them exactly when it did not help).
struct StoredParts {
  std::vector<uint8_t> codes;
  std::vector<uint16_t> scales;
  std::vector<uint8_t> scale_codes;
  std::vector<float> dq_scale, dq_offset;
};

// One quantized linear layer being tuned.
struct TunedMatrix {
  std::string name;
  QuantizedMatrix* m = nullptr;
  int64_t groups = 0, group_len = 0;
  std::vector<float> s0;           // [rows · groups] the scales as first stored
  std::vector<float> stored;       // [rows · groups] the scales as stored now
  std::vector<float> theta, grad_theta;  // [rows · groups] log-scale offsets and their gradient
  bool codes = false;              // the codes are trainable (Int / Ternary)
  bool training_codes = false;     // ... and trained now (its block's stage-1 steps): v gets
                                   // gradients and round(v) is written back
  int max_code = 0;
  std::vector<float> v, grad_v;    // [rows · cols] latent code coordinates and their gradient
  StoredParts original;
};

bool codes_trainable(const QuantSpec& s) { return s.kind == FormatKind::Int || s.kind == FormatKind::Ternary; }

TunedMatrix make_tuned(const std::string& name, QuantizedMatrix& m, bool train_codes) {
  TunedMatrix t;
  t.name = name;
  t.m = &m;
  t.groups = m.groups_per_row();
  t.group_len = m.group_len();
  t.s0.resize(static_cast<size_t>(m.rows * t.groups));
  for (int64_t r = 0; r < m.rows; ++r)
    for (int64_t g = 0; g < t.groups; ++g) t.s0[r * t.groups + g] = group_params(m, r, g).scale;
  t.stored = t.s0;
  t.theta.assign(t.s0.size(), 0.0f);
  t.grad_theta.assign(t.s0.size(), 0.0f);
  t.codes = train_codes && codes_trainable(m.spec);
  if (t.codes) {
    t.max_code = m.spec.kind == FormatKind::Ternary ? 2 : (1 << m.spec.bits) - 1;
    t.v.resize(static_cast<size_t>(m.rows * m.cols));
    for (int64_t r = 0; r < m.rows; ++r)
      for (int64_t c = 0; c < m.cols; ++c) t.v[r * m.cols + c] = static_cast<float>(code_at(m, r, c));
    t.grad_v.assign(t.v.size(), 0.0f);
  }
  t.original = {m.codes, m.scales, m.scale_codes, m.dq_scale, m.dq_offset};
  return t;
}

// Accumulates one backward pass of t's layer: ∂L/∂θ per group and, with codes, ∂L/∂v per weight.
void accumulate_gradients(TunedMatrix& t, const Linear& w, const float* x, const float* dy, int64_t N) {
  const int64_t C = w.cols(), G = t.groups, len = t.group_len;
  w.weight_gradient_tiles(x, dy, N, [&](int64_t r0, int64_t n, const float* dw, const float* wt) {
    add_group_products(dw, wt, n, C, len, t.grad_theta.data() + r0 * G);
    if (!t.training_codes) return;
    parallel_for(n, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i)
        for (int64_t j = 0; j < C; ++j) t.grad_v[(r0 + i) * C + j] += t.stored[(r0 + i) * G + j / len] * dw[i * C + j];
    });
  });
}

// Routes each tuned layer's (input, output gradient) to its gradients.
class KdGradients : public LinearGradHook {
 public:
  void add(const Linear* l, TunedMatrix* t) { by_linear_[l] = t; }
  void on_backward(const Linear& w, const float* x, const float* dy, int64_t N) override {
    auto it = by_linear_.find(&w);
    if (it != by_linear_.end()) accumulate_gradients(*it->second, w, x, dy, N);
  }

 private:
  std::map<const Linear*, TunedMatrix*> by_linear_;
};

// Stores s₀·exp(θ) (rounded as the spec stores scales) and round(v) in t.m and repacks the
// student's layer.
void write_back(TunedMatrix& t, LlamaModel& student) {
  QuantizedMatrix& m = *t.m;
  const int64_t G = t.groups;
  std::vector<float> s(t.s0.size());
  for (size_t i = 0; i < s.size(); ++i) s[i] = t.s0[i] * std::exp(t.theta[i]);
  if (m.spec.double_quant) {
    set_double_quant_scales(m, s.data());
  } else {
    for (int64_t r = 0; r < m.rows; ++r)
      for (int64_t g = 0; g < G; ++g)
        set_group_params(m, r, g, make_group_params(m.spec, s[r * G + g], group_params(m, r, g).zero));
  }
  for (int64_t r = 0; r < m.rows; ++r)
    for (int64_t g = 0; g < G; ++g) t.stored[r * G + g] = group_params(m, r, g).scale;
  if (t.training_codes) {
    parallel_for(m.rows, [&](int64_t r0, int64_t r1) {
      std::vector<uint8_t> row(static_cast<size_t>(m.cols));
      for (int64_t r = r0; r < r1; ++r) {
        for (int64_t c = 0; c < m.cols; ++c)
          row[c] = static_cast<uint8_t>(std::clamp(std::nearbyint(t.v[r * m.cols + c]), 0.0f, float(t.max_code)));
        set_row_codes(m, r, row.data());
      }
    });
  }
  student.replace_packed(t.name, PackedMatrix::pack(m));
}

void restore(TunedMatrix& t, LlamaModel& student) {
  QuantizedMatrix& m = *t.m;
  m.codes = t.original.codes;
  m.scales = t.original.scales;
  m.scale_codes = t.original.scale_codes;
  m.dq_scale = t.original.dq_scale;
  m.dq_offset = t.original.dq_offset;
  student.replace_packed(t.name, PackedMatrix::pack(m));
}

// After an optimizer step: θ within ±kMaxLogScale, v (while trained) within half a step of the
// code range.
void clamp_parameters(TunedMatrix& t) {
  for (float& th : t.theta) th = std::clamp(th, -kMaxLogScale, kMaxLogScale);
  if (!t.training_codes) return;
  const float hi = static_cast<float>(t.max_code) + 0.5f;
  for (float& x : t.v) x = std::clamp(x, -0.5f, hi);
}

// The windows `idx` as one batch: every position is a distillation target.
TrainBatch make_batch(const std::vector<std::vector<int32_t>>& windows, std::span<const int64_t> idx) {
  TrainBatch b;
  b.n_seq = static_cast<int64_t>(idx.size());
  b.len = static_cast<int64_t>(windows[idx[0]].size());
  for (const int64_t i : idx) b.tokens.insert(b.tokens.end(), windows[i].begin(), windows[i].end());
  b.targets.assign(b.tokens.size(), 0);
  return b;
}

// The windows [first, min(last, first + batch)) as one batch.
TrainBatch window_range_batch(const std::vector<std::vector<int32_t>>& windows, int64_t first, int64_t last,
                              int64_t batch) {
  std::vector<int64_t> idx;
  for (int64_t w = first; w < std::min(last, first + batch); ++w) idx.push_back(w);
  return make_batch(windows, idx);
}

// The teacher's logits [n_seq · len, V] for the batch's sequences (the inference forward, fp32).
void teacher_logits(const LlamaModel& teacher, const TrainBatch& b, std::vector<float>& out) {
  const int64_t V = teacher.config().vocab_size;
  out.resize(static_cast<size_t>(b.n_seq * b.len * V));
  std::vector<float> logits;
  for (int64_t s = 0; s < b.n_seq; ++s) {
    KvCache cache = teacher.new_cache(b.len);
    teacher.forward(std::span<const int32_t>(b.tokens.data() + s * b.len, static_cast<size_t>(b.len)), cache, true,
                    logits);
    std::copy(logits.begin(), logits.end(), out.begin() + s * b.len * V);
  }
}

// Mean KL(teacher ‖ student) per position over the windows [first, last), `batch` at a time.
double mean_kl(const LlamaModel& teacher, LoraModel& student, const std::vector<std::vector<int32_t>>& windows,
               int64_t first, int64_t last, int64_t batch) {
  std::vector<float> t;
  double loss = 0;
  int64_t n = 0;
  for (int64_t w0 = first; w0 < last; w0 += batch) {
    const TrainBatch b = window_range_batch(windows, w0, last, batch);
    teacher_logits(teacher, b, t);
    const LossSum s = student.distill_loss(b, t.data());
    loss += s.loss;
    n += s.n_targets;
  }
  return loss / static_cast<double>(n);
}

// The windows' embeddings [n·len, dim] (rows of the model's own embedding table).
std::vector<float> embed_windows(const LlamaModel& m, const std::vector<std::vector<int32_t>>& windows, int64_t n) {
  const int64_t D = m.config().dim, len = static_cast<int64_t>(windows[0].size());
  std::vector<float> x(static_cast<size_t>(n * len * D));
  for (int64_t w = 0; w < n; ++w)
    for (int64_t t = 0; t < len; ++t) {
      const int32_t id = windows[w][t];
      if (id < 0 || id >= m.config().vocab_size) throw Error(kComp, "token id " + std::to_string(id) + " outside the vocabulary");
      m.weights().embed_tokens.row(id, &x[(w * len + t) * D]);
    }
  return x;
}

// The windows of step `step` (batch at a time over the first n_train, in per-epoch shuffled order).
class WindowOrder {
 public:
  WindowOrder(int64_t n_train, int64_t batch, uint64_t seed) : n_(n_train), batch_(batch), seed_(seed) {}
  std::vector<int64_t> at(int64_t step) {
    std::vector<int64_t> idx;
    for (int64_t i = 0; i < batch_; ++i) {
      const int64_t p = step * batch_ + i, epoch = p / n_;
      if (epoch != epoch_) {
        order_ = epoch_order(n_, seed_, epoch);
        epoch_ = epoch;
      }
      idx.push_back(order_[p % n_]);
    }
    return idx;
  }

 private:
  int64_t n_, batch_;
  uint64_t seed_;
  int64_t epoch_ = -1;
  std::vector<int64_t> order_;
};

// Copies the rows of windows idx out of all [n·len, dim] into out [idx.size()·len, dim].
void gather_windows(const std::vector<float>& all, std::span<const int64_t> idx, int64_t len, int64_t D,
                    std::vector<float>& out) {
  out.resize(idx.size() * static_cast<size_t>(len * D));
  for (size_t i = 0; i < idx.size(); ++i)
    std::copy_n(all.begin() + idx[i] * len * D, len * D, out.begin() + static_cast<int64_t>(i) * len * D);
}

// Runs block `l` of `m` over all n windows, batch at a time: out = block(in), both [n·len, dim].
void block_over_windows(LoraModel& m, int64_t l, const std::vector<std::vector<int32_t>>& windows, int64_t n,
                        int64_t batch, const std::vector<float>& in, std::vector<float>& out, int64_t D) {
  const int64_t len = static_cast<int64_t>(windows[0].size());
  out.resize(in.size());
  for (int64_t w0 = 0; w0 < n; w0 += batch) {
    const TrainBatch b = window_range_batch(windows, w0, n, batch);
    m.block_forward(l, b, in.data() + w0 * len * D, out.data() + w0 * len * D);
  }
}

// Block-wise reconstruction (EfficientQAT's Block-AP): block by block, train its linears' scales
// and codes so that the quantized block, fed the quantized model's own hidden states, reproduces
// the float block's outputs on the float model's hidden states (relative squared error); then pass
// the tuned block's outputs on as the next block's input.
void block_reconstruction(const LlamaModel& teacher, LlamaModel& student, LoraModel& model,
                          std::vector<TunedMatrix>& tuned, const std::vector<std::vector<int32_t>>& windows,
                          int64_t n_train, const KdTuneOptions& opt) {
  const int64_t D = student.config().dim, len = static_cast<int64_t>(windows[0].size());
  LoraAdapter no_adapter;
  LoraModel teacher_model(teacher, no_adapter);
  std::vector<float> xs = embed_windows(student, windows, n_train), xt = embed_windows(teacher, windows, n_train);
  std::vector<float> yt, x, y;
  for (int64_t l = 0; l < student.config().n_layers; ++l) {
    block_over_windows(teacher_model, l, windows, n_train, opt.batch, xt, yt, D);
    std::vector<TunedMatrix*> block;
    std::vector<ParamRef> params;
    const std::string prefix = "layers." + std::to_string(l) + ".";
    for (TunedMatrix& t : tuned) {
      if (!t.name.starts_with(prefix)) continue;
      block.push_back(&t);
      params.push_back({&t.theta, &t.grad_theta});
      if (t.codes) params.push_back({&t.v, &t.grad_v, opt.code_lr_mult});
      t.training_codes = t.codes;
    }
    if (!block.empty()) {
      AdamWOptions ao = opt.adam;
      ao.lr = opt.block_lr;
      ao.total_steps = opt.block_steps;
      ao.warmup_steps = opt.block_steps / 10;
      AdamW adam(params, ao);
      WindowOrder order(n_train, opt.batch, opt.seed + static_cast<uint64_t>(l) + 1);
      for (int64_t step = 0; step < opt.block_steps; ++step) {
        const std::vector<int64_t> idx = order.at(step);
        const TrainBatch b = make_batch(windows, idx);
        gather_windows(xs, idx, len, D, x);
        gather_windows(yt, idx, len, D, y);
        double energy = 0;
        for (const float v : y) energy += static_cast<double>(v) * v;
        for (TunedMatrix* t : block) {
          std::fill(t->grad_theta.begin(), t->grad_theta.end(), 0.0f);
          std::fill(t->grad_v.begin(), t->grad_v.end(), 0.0f);
        }
        const double err = model.block_mse_backward(l, b, x.data(), y.data(), 1.0 / energy);
        const StepStats st = adam.step(params);
        for (TunedMatrix* t : block) {
          clamp_parameters(*t);
          write_back(*t, student);
        }
        if (opt.block_progress) opt.block_progress(l, step + 1, opt.block_steps, err / energy, st.lr);
      }
    }
    for (TunedMatrix* t : block) t->training_codes = false;
    block_over_windows(model, l, windows, n_train, opt.batch, xs, x, D);
    xs.swap(x);
    xt.swap(yt);
  }
}

void check_inputs(const LlamaModel& teacher, const LlamaModel& student,
                  const std::vector<std::vector<int32_t>>& windows, const KdTuneOptions& opt) {
  const LlamaConfig &a = teacher.config(), &b = student.config();
  if (a.dim != b.dim || a.hidden_dim != b.hidden_dim || a.n_layers != b.n_layers || a.n_heads != b.n_heads ||
      a.n_kv_heads != b.n_kv_heads || a.head_dim != b.head_dim || a.vocab_size != b.vocab_size)
    throw Error(kComp, "the quantized model's shape differs from the float teacher's");
  if (opt.steps < 1 || opt.batch < 1 || opt.holdout < 1)
    throw Error(kComp, "steps, batch and held-out windows must each be at least 1");
  if (static_cast<int64_t>(windows.size()) <= opt.holdout)
    throw Error(kComp, "need more calibration windows (" + std::to_string(windows.size()) + ") than held out (" +
                           std::to_string(opt.holdout) + ")");
  for (const auto& w : windows)
    if (w.size() != windows[0].size() || w.size() < 2) throw Error(kComp, "calibration windows must share one length >= 2");
}

}  // namespace

KdTuneReport tune_kd(const LlamaModel& teacher, LlamaModel& student,
                               std::map<std::string, QuantizedMatrix>& quantized,
                               const std::vector<std::vector<int32_t>>& windows, const KdTuneOptions& opt) {
  check_inputs(teacher, student, windows, opt);
  const auto t0 = std::chrono::steady_clock::now();
  KdTuneReport rep;
  std::vector<TunedMatrix> tuned;
  tuned.reserve(quantized.size());
  for (auto& [name, m] : quantized) {
    const Linear* lin = student.find_linear(name);
    if (!lin || !lin->is_packed()) continue;  // embeddings: not a linear layer
    tuned.push_back(make_tuned(name, m, opt.train_codes));
    rep.scales += static_cast<int64_t>(tuned.back().s0.size());
    rep.trained_codes += static_cast<int64_t>(tuned.back().v.size());
  }
  if (tuned.empty()) throw Error(kComp, "the model has no quantized linear layer to tune");
  rep.tensors = static_cast<int64_t>(tuned.size());

  KdGradients hook;
  std::vector<ParamRef> params;  // the end-to-end stage trains the scales
  for (TunedMatrix& t : tuned) {
    hook.add(student.find_linear(t.name), &t);
    params.push_back({&t.theta, &t.grad_theta});
  }
  LoraAdapter no_adapter;
  LoraModel model(student, no_adapter);
  model.set_linear_grad_hook(&hook);
  const int64_t n = static_cast<int64_t>(windows.size()), n_train = n - opt.holdout;
  const int64_t len = static_cast<int64_t>(windows[0].size());
  constexpr int64_t kKeepActivationBytes = int64_t{1} << 30;  // as finetune's --checkpointing auto
  model.set_recompute(model.stored_activation_bytes(opt.batch * len) > kKeepActivationBytes);
  rep.train_windows = n_train;
  rep.holdout_windows = opt.holdout;
  rep.window_len = len;
  rep.kl_before = mean_kl(teacher, model, windows, n_train, n, opt.batch);
  if (opt.block_steps > 0 && opt.train_codes) block_reconstruction(teacher, student, model, tuned, windows, n_train, opt);

  AdamWOptions ao = opt.adam;
  ao.total_steps = opt.steps;
  AdamW adam(params, ao);
  const auto train_start = std::chrono::steady_clock::now();
  WindowOrder order(n_train, opt.batch, opt.seed);
  std::vector<float> t_logits;
  for (int64_t step = 0; step < opt.steps; ++step) {
    const std::vector<int64_t> idx = order.at(step);
    const TrainBatch b = make_batch(windows, idx);
    teacher_logits(teacher, b, t_logits);
    for (TunedMatrix& t : tuned) std::fill(t.grad_theta.begin(), t.grad_theta.end(), 0.0f);
    const int64_t targets = b.n_seq * b.len;
    const LossSum s = model.forward_backward_distill(b, t_logits.data(), 1.0 / static_cast<double>(targets));
    const StepStats st = adam.step(params);
    for (TunedMatrix& t : tuned) {
      clamp_parameters(t);
      write_back(t, student);
    }
    if (opt.progress) opt.progress(step + 1, opt.steps, s.loss / static_cast<double>(targets), st.lr);
  }
  const double train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - train_start).count();
  rep.steps = opt.steps;
  rep.tokens_per_second = static_cast<double>(opt.steps * opt.batch * len) / std::max(train_seconds, 1e-9);
  rep.kl_after = mean_kl(teacher, model, windows, n_train, n, opt.batch);
  if (!(rep.kl_after < rep.kl_before)) {
    rep.improved = false;
    for (TunedMatrix& t : tuned) restore(t, student);
  }
  for (const TunedMatrix& t : tuned) {
    if (!t.codes || t.m->codes == t.original.codes) continue;
    QuantizedMatrix before = *t.m;
    before.codes = t.original.codes;
    for (int64_t r = 0; r < t.m->rows; ++r)
      for (int64_t c = 0; c < t.m->cols; ++c) rep.codes_changed += code_at(*t.m, r, c) != code_at(before, r, c);
  }
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return rep;
}

}  // namespace lowbit
