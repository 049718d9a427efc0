#include "model/llama.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <string>

#include "base/error.h"
#include "model/attention.h"

namespace lowbit {

template <class Real>
void rms_norm(const Real* x, const Real* w, int64_t n, float eps, Real* out) {
  double ss = 0.0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const Real scale = static_cast<Real>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale * w[i];
}
template void rms_norm<float>(const float*, const float*, int64_t, float, float*);
template void rms_norm<double>(const double*, const double*, int64_t, float, double*);

namespace {

// A plain tensor as fp32, or a quantized one dequantized (used for embeddings and norms).
Matrix fp32_matrix(const ModelSource& src, const std::string& name) {
  auto q = src.quantized.find(name);
  if (q == src.quantized.end()) return matrix_from(src.tensor(name));
  Matrix m;
  m.rows = q->second.rows;
  m.cols = q->second.cols;
  m.owned = dequantize(q->second);
  m.data = m.owned.data();
  return m;
}

Linear linear_from(const ModelSource& src, const std::string& name, Isa isa) {
  auto q = src.quantized.find(name);
  Linear l = q != src.quantized.end() ? Linear::packed(PackedMatrix::pack(q->second, isa))
                                      : Linear::dense(matrix_from(src.tensor(name)));
  if (auto h = src.input_hadamard.find(name); h != src.input_hadamard.end())
    l.set_input_rotation(std::make_shared<const Rotation>(Rotation::random_hadamard(l.cols(), h->second)));
  if (auto c = src.corrections.find(name); c != src.corrections.end()) l.set_correction(c->second, isa);
  return l;
}

}  // namespace

LlamaModel::LlamaModel(const ModelSource& src, Isa isa) : config_(src.config), owners_(src.owners) {
  validate_llama_config(config_, src.path);
  check_canonical_tensors(src);
  auto is_linear = [](const std::string& name) {
    return name == "lm_head" || (name.starts_with("layers.") && name.ends_with("_proj"));
  };
  for (const auto& [name, seed] : src.input_hadamard)
    if (!is_linear(name)) throw Error("model", src.path + ": '" + name + "' has an input rotation but is not a linear layer");
  for (const auto& [name, c] : src.corrections)
    if (!is_linear(name) || !src.quantized.count(name) || (name == "lm_head" && config_.tie_embeddings))
      throw Error("model", src.path + ": '" + name + "' has a low-rank correction but is not a quantized linear layer");
  auto m = [&](const std::string& name) { return fp32_matrix(src, name); };
  auto lin = [&](const std::string& name) { return linear_from(src, name, isa); };
  weights_.norm = m("norm");
  if (config_.tie_embeddings) {  // lm_head needs the fp32 table; the embedding reads its rows
    weights_.lm_head = Linear::dense(m("embed_tokens"));
    const Matrix& head = weights_.lm_head.dense_matrix();
    weights_.embed_tokens = EmbeddingTable::fp32(head.data, head.rows, head.cols);
  } else {
    auto q = src.quantized.find("embed_tokens");
    weights_.embed_tokens = q != src.quantized.end() ? EmbeddingTable::quantized(q->second)
                                                     : EmbeddingTable::view(src.tensor("embed_tokens"));
    weights_.lm_head = lin("lm_head");
  }
  for (int64_t i = 0; i < config_.n_layers; ++i) {
    const std::string p = "layers." + std::to_string(i) + ".";
    LayerWeights lw;
    lw.attn_norm = m(p + "attn_norm");
    lw.q_proj = lin(p + "q_proj");
    lw.k_proj = lin(p + "k_proj");
    lw.v_proj = lin(p + "v_proj");
    lw.o_proj = lin(p + "o_proj");
    if (config_.attention_bias) {
      lw.q_bias = m(p + "q_bias");
      lw.k_bias = m(p + "k_bias");
      lw.v_bias = m(p + "v_bias");
    }
    lw.ffn_norm = m(p + "ffn_norm");
    lw.gate_proj = lin(p + "gate_proj");
    lw.up_proj = lin(p + "up_proj");
    lw.down_proj = lin(p + "down_proj");
    weights_.layers.push_back(std::move(lw));
  }
  inv_freq_ = rope_inv_freq(config_);
}

KvCache LlamaModel::new_cache(int64_t capacity, KvType type) const {
  KvCache c = make_kv_cache(kv_row_layout(type, config_.n_kv_heads, config_.head_dim), config_.n_layers, capacity);
  // Guards the size product below against overflow (a tiny buffer the forward would write past).
  const int64_t per_token = config_.n_layers * c.layout.row_bytes();
  if (capacity < 1 || capacity > (int64_t{1} << 42) / std::max<int64_t>(per_token, 1))
    throw Error("model", "KV cache of " + std::to_string(capacity) + " tokens is out of range");
  c.blocks.push_back(new_kv_block(c));
  return c;
}

KvCache LlamaModel::new_paged_cache(int64_t block_rows, KvType type) const {
  if (block_rows < 1 || block_rows > (int64_t{1} << 20))
    throw Error("model", "KV block of " + std::to_string(block_rows) + " positions is out of range");
  return make_kv_cache(kv_row_layout(type, config_.n_kv_heads, config_.head_dim), config_.n_layers, block_rows);
}

namespace {

// One block's activation buffers, kept per thread across forward calls and grown as needed. A
// prefill needs tens of MB here; allocated afresh on every call, blocks that size come from mmap
// and fault in every page again (measured: 40-50 ms of a ~125 ms 64-token prefill at 7B layer
// shapes). Every user overwrites the rows it reads; attention and MLP blocks never nest.
float* block_buffer(int slot, int64_t n) {
  thread_local std::array<std::vector<float>, 6> buffers;
  std::vector<float>& b = buffers[static_cast<size_t>(slot)];
  if (static_cast<int64_t>(b.size()) < n) b.resize(static_cast<size_t>(n));
  return b.data();
}

}  // namespace

void LlamaModel::attention_block(const LayerWeights& lw, int64_t layer, float* x, std::span<const BatchSequence> seqs,
                                 int64_t T, std::span<const RowAdapter> ra) const {
  const int64_t D = config_.dim, hd = config_.head_dim;
  const int64_t dq = config_.n_heads * hd, dkv = config_.n_kv_heads * hd;
  float *xn = block_buffer(0, T * D), *q = block_buffer(1, T * dq), *k = block_buffer(2, T * dkv),
        *v = block_buffer(3, T * dkv), *att = block_buffer(4, T * dq), *o = block_buffer(5, T * D);
  for (int64_t t = 0; t < T; ++t) rms_norm(x + t * D, lw.attn_norm.data, D, config_.norm_eps, &xn[t * D]);
  lw.q_proj.matmul(xn, T, lw.q_bias.data, q, ra);
  lw.k_proj.matmul(xn, T, lw.k_bias.data, k, ra);
  lw.v_proj.matmul(xn, T, lw.v_bias.data, v, ra);
  int64_t row = 0;  // first row of the current sequence
  for (const BatchSequence& s : seqs) {
    KvCache& cache = *s.cache;
    const int64_t n = static_cast<int64_t>(s.tokens.size()), pos0 = cache.n_past;
    apply_rope(config_, inv_freq_, &q[row * dq], n, config_.n_heads, pos0);
    apply_rope(config_, inv_freq_, &k[row * dkv], n, config_.n_kv_heads, pos0);
    for (int64_t r = 0; r < n; ++r) {  // row by row: consecutive positions may be in different blocks
      kv_store_rows(cache.layout, &k[(row + r) * dkv], 1, cache.k_row(layer, pos0 + r));
      kv_store_rows(cache.layout, &v[(row + r) * dkv], 1, cache.v_row(layer, pos0 + r));
    }
    kv_causal_attention(cache.layout, config_.n_heads, &q[row * dq], n, kv_layer_rows(cache, layer), pos0,
                        &att[row * dq]);
    row += n;
  }
  lw.o_proj.matmul(att, T, nullptr, o, ra);
  for (int64_t i = 0; i < T * D; ++i) x[i] += o[i];
}

void LlamaModel::mlp_block(const LayerWeights& lw, float* x, int64_t T, std::span<const RowAdapter> ra) const {
  const int64_t D = config_.dim, H = config_.hidden_dim;
  float *xn = block_buffer(0, T * D), *g = block_buffer(1, T * H), *u = block_buffer(2, T * H), *o = block_buffer(3, T * D);
  for (int64_t t = 0; t < T; ++t) rms_norm(x + t * D, lw.ffn_norm.data, D, config_.norm_eps, &xn[t * D]);
  lw.gate_proj.matmul(xn, T, nullptr, g, ra);
  lw.up_proj.matmul(xn, T, nullptr, u, ra);
  for (int64_t i = 0; i < T * H; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];  // silu(g)·u
  lw.down_proj.matmul(g, T, nullptr, o, ra);
  for (int64_t i = 0; i < T * D; ++i) x[i] += o[i];
}

void LlamaModel::forward(std::span<const int32_t> tokens, KvCache& cache, bool all_logits,
                         std::vector<float>& logits) const {
  const BatchSequence one{tokens, &cache, all_logits};
  forward_batch({&one, 1}, logits);
}

namespace {

// Everything forward_batch refuses, checked before any cache changes. Returns the total rows.
int64_t check_batch(std::span<const BatchSequence> seqs, const LlamaConfig& c, int32_t n_switchable) {
  const int64_t vocab = c.vocab_size;
  if (seqs.empty()) throw Error("model", "forward: no sequences");
  int64_t T = 0;
  for (size_t i = 0; i < seqs.size(); ++i) {
    const BatchSequence& s = seqs[i];
    if (s.tokens.empty()) throw Error("model", "forward: no tokens");
    if (!s.cache) throw Error("model", "forward: sequence without a KV cache");
    for (size_t j = 0; j < i; ++j)
      if (seqs[j].cache == s.cache) throw Error("model", "forward: two sequences share one KV cache");
    const KvCache& kc = *s.cache;
    bool fits = kc.layout.n_heads == c.n_kv_heads && kc.layout.head_dim == c.head_dim && kc.n_layers == c.n_layers &&
                kc.block_rows >= 1;
    for (const auto& b : kc.blocks)
      fits = fits && b && static_cast<int64_t>(b->k.size()) == kc.block_bytes() / 2 &&
             static_cast<int64_t>(b->v.size()) == kc.block_bytes() / 2;
    if (!fits) throw Error("model", "forward: the KV cache was made for another model");
    for (const AdapterUse& u : s.adapters)
      if (u.index < 0 || u.index >= n_switchable || !std::isfinite(u.scale))
        throw Error("model", "forward: adapter " + std::to_string(u.index) + " does not exist or its scale is not finite");
    const int64_t n = static_cast<int64_t>(s.tokens.size());
    if (kc.n_past + n > kc.capacity())
      throw Error("model", "context full: " + std::to_string(kc.n_past + n) + " positions > " +
                               std::to_string(kc.capacity()));
    for (int32_t id : s.tokens)
      if (id < 0 || id >= vocab)
        throw Error("model", "token id " + std::to_string(id) + " outside vocab of " + std::to_string(vocab));
    T += n;
  }
  return T;
}

}  // namespace

void LlamaModel::forward_batch(std::span<const BatchSequence> seqs, std::vector<float>& logits) const {
  const int64_t D = config_.dim;
  const int64_t T = check_batch(seqs, config_, n_switchable_);
  std::vector<RowAdapter> ra;  // which rows add which switchable adapters
  int64_t first_row = 0;
  for (const BatchSequence& s : seqs) {
    for (const AdapterUse& u : s.adapters) ra.push_back({first_row, static_cast<int64_t>(s.tokens.size()), u});
    first_row += static_cast<int64_t>(s.tokens.size());
  }
  std::vector<float> x(T * D);
  int64_t t = 0;
  for (const BatchSequence& s : seqs)
    for (int32_t id : s.tokens) weights_.embed_tokens.row(id, &x[t++ * D]);
  run_layers(0, config_.n_layers, x.data(), seqs, T, ra);
  head(seqs, x, logits);
}

void LlamaModel::run_layers(int64_t first, int64_t last, float* x, std::span<const BatchSequence> seqs, int64_t T,
                            std::span<const RowAdapter> ra) const {
  for (int64_t l = first; l < last; ++l) {
    attention_block(weights_.layers[l], l, x, seqs, T, ra);
    mlp_block(weights_.layers[l], x, T, ra);
  }
}

std::vector<std::vector<float>> LlamaModel::layer_inputs(std::span<const int32_t> tokens) const {
  const int64_t D = config_.dim, T = static_cast<int64_t>(tokens.size());
  KvCache cache = new_cache(T);
  const BatchSequence one{tokens, &cache, true};
  check_batch({&one, 1}, config_, n_switchable_);
  std::vector<std::vector<float>> inputs;
  inputs.reserve(static_cast<size_t>(config_.n_layers + 1));
  std::vector<float> x(T * D);
  for (int64_t t = 0; t < T; ++t) weights_.embed_tokens.row(tokens[t], &x[t * D]);
  for (int64_t l = 0; l < config_.n_layers; ++l) {
    inputs.push_back(x);
    run_layers(l, l + 1, x.data(), {&one, 1}, T, {});
  }
  inputs.push_back(std::move(x));
  return inputs;
}

void LlamaModel::forward_from_layer(int64_t first_layer, std::span<const int32_t> tokens, std::vector<float> x,
                                    std::vector<float>& logits) const {
  const int64_t D = config_.dim, T = static_cast<int64_t>(tokens.size());
  if (first_layer < 0 || first_layer > config_.n_layers || static_cast<int64_t>(x.size()) != T * D)
    throw Error("model", "forward_from_layer: layer " + std::to_string(first_layer) + " or the hidden states' size " +
                             std::to_string(x.size()) + " do not fit the model");
  KvCache cache = new_cache(T);
  const BatchSequence one{tokens, &cache, true};
  check_batch({&one, 1}, config_, n_switchable_);
  run_layers(first_layer, config_.n_layers, x.data(), {&one, 1}, T, {});
  head({&one, 1}, x, logits);
}

void LlamaModel::head(std::span<const BatchSequence> seqs, const std::vector<float>& x,
                      std::vector<float>& logits) const {
  const int64_t D = config_.dim, V = config_.vocab_size;
  std::vector<int64_t> out_rows;  // rows of x whose logits are wanted, in output order
  int64_t row = 0;
  for (const BatchSequence& s : seqs) {
    const int64_t n = static_cast<int64_t>(s.tokens.size());
    for (int64_t j = s.all_logits ? 0 : n - 1; j < n; ++j) out_rows.push_back(row + j);
    row += n;
    s.cache->n_past += n;
  }
  const int64_t rows = static_cast<int64_t>(out_rows.size());
  std::vector<float> xn(rows * D);
  for (int64_t r = 0; r < rows; ++r)
    rms_norm(&x[out_rows[r] * D], weights_.norm.data, D, config_.norm_eps, &xn[r * D]);
  logits.resize(rows * V);
  weights_.lm_head.matmul(xn.data(), rows, nullptr, logits.data());
}

const Linear* LlamaModel::find_linear(const std::string& name) const {
  if (name == "lm_head") return config_.tie_embeddings ? nullptr : &weights_.lm_head;
  if (!name.starts_with("layers.")) return nullptr;
  const size_t dot = name.find('.', 7);
  if (dot == std::string::npos || dot == 7) return nullptr;
  const std::string idx = name.substr(7, dot - 7), proj = name.substr(dot + 1);
  if (idx.find_first_not_of("0123456789") != std::string::npos || idx.size() > 6) return nullptr;
  const int64_t l = std::stoll(idx);
  if (l >= config_.n_layers) return nullptr;
  const LayerWeights& lw = weights_.layers[l];
  const std::pair<const char*, const Linear*> table[] = {
      {"q_proj", &lw.q_proj},       {"k_proj", &lw.k_proj}, {"v_proj", &lw.v_proj},
      {"o_proj", &lw.o_proj},       {"gate_proj", &lw.gate_proj}, {"up_proj", &lw.up_proj},
      {"down_proj", &lw.down_proj}};
  for (const auto& [n, lin] : table)
    if (proj == n) return lin;
  return nullptr;
}

namespace {

// Throws lowbit::Error("model", ...) unless d is a low-rank update of lin's shape.
void check_delta_shape(const std::string& name, const Linear& lin, const LowRankDelta* d) {
  if (d && d->rows == lin.rows() && d->cols == lin.cols() && d->rank >= 1 &&
      static_cast<int64_t>(d->a.size()) == d->rank * d->cols && static_cast<int64_t>(d->b.size()) == d->rows * d->rank)
    return;
  throw Error("model", "adapter for '" + name + "' is " +
                           (d ? "[" + std::to_string(d->rows) + ", " + std::to_string(d->cols) + "] rank " +
                                    std::to_string(d->rank)
                              : std::string("missing")) +
                           ", layer is [" + std::to_string(lin.rows()) + ", " + std::to_string(lin.cols()) + "]");
}

}  // namespace

void LlamaModel::add_delta(const std::string& name, std::shared_ptr<const LowRankDelta> d) {
  Linear* lin = const_cast<Linear*>(find_linear(name));  // our own weights_, non-const here
  if (!lin) throw Error("model", "no linear layer named '" + name + "' for an adapter");
  check_delta_shape(name, *lin, d.get());
  lin->add_delta(std::move(d));
}

void LlamaModel::replace_packed(const std::string& name, PackedMatrix p) {
  Linear* lin = const_cast<Linear*>(find_linear(name));  // our own weights_, non-const here
  if (!lin) throw Error("model", "no linear layer named '" + name + "'");
  lin->replace_packed(std::move(p));
}

int32_t LlamaModel::add_switchable_adapter(
    const std::vector<std::pair<std::string, std::shared_ptr<const LowRankDelta>>>& deltas) {
  for (const auto& [name, d] : deltas) {  // all checked before any layer changes
    const Linear* lin = name == "lm_head" ? nullptr : find_linear(name);
    if (!lin) throw Error("model", "no block linear layer named '" + name + "' for a switchable adapter");
    check_delta_shape(name, *lin, d.get());
  }
  const int32_t index = n_switchable_++;
  for (const auto& [name, d] : deltas) const_cast<Linear*>(find_linear(name))->set_switchable(index, d);
  return index;
}

void LlamaModel::set_activation_quant(const ActQuant& a) {
  for (LayerWeights& l : weights_.layers)
    for (Linear* w : {&l.q_proj, &l.k_proj, &l.v_proj, &l.o_proj, &l.gate_proj, &l.up_proj, &l.down_proj})
      w->set_input_quant(a);
}

int64_t LlamaModel::decode_weight_bytes() const {
  auto norm_bytes = [](const Matrix& m) { return m.rows * m.cols * static_cast<int64_t>(sizeof(float)); };
  int64_t total = weights_.lm_head.weight_bytes() + norm_bytes(weights_.norm);
  for (const LayerWeights& l : weights_.layers) {
    total += norm_bytes(l.attn_norm) + norm_bytes(l.ffn_norm);
    for (const Linear* w : {&l.q_proj, &l.k_proj, &l.v_proj, &l.o_proj, &l.gate_proj, &l.up_proj, &l.down_proj})
      total += w->weight_bytes();
  }
  return total;
}

}  // namespace lowbit
