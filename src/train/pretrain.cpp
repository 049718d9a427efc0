#include "train/pretrain.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>

#include <unistd.h>

#include "algo/rtn.h"
#include "base/atomic_file.h"
#include "base/error.h"
#include "base/gemm.h"
#include "base/json_depth.h"
#include "base/mapped_file.h"
#include "io/safetensors.h"
#include "io/safetensors_writer.h"
#include "io/model_source.h"
#include "io/synth_model.h"
#include "model/llama.h"
#include "pipeline/quantize.h"
#include "tokenizer/load.h"
#include "train/lora_model.h"

namespace lowbit {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

bool is_projection(const std::string& name) { return name.starts_with("layers.") && name.ends_with("_proj"); }

// N(0, σ²) from one mt19937_64 stream per tensor (seeded by the run seed and the tensor's index).
void fill_normal(std::vector<float>& v, double sigma, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> nd(0.0, sigma);
  for (float& x : v) x = static_cast<float>(nd(rng));
}

QuantSpec weights_spec(const std::string& weights) {
  if (weights == "f32") return QuantSpec{};
  const QuantSpec s = parse_quant_spec(weights);
  if (!s.quantized())
    throw Error("train", "--weights " + weights + ": give f32 or a quantized format (e.g. ternary:g64, int4:g32)");
  return s;
}

// Training state: master, gradient, two AdamW moments (+ Ŵ under QAT) in fp32 per weight.
void check_fits_in_memory(const LlamaConfig& c, bool qat) {
  double params = 0;
  for (const auto& [name, shape] : canonical_tensor_shapes(c)) {
    double n = 1;
    for (int64_t d : shape) n *= static_cast<double>(d);
    params += n;
  }
  const double bytes = params * (qat ? 20.0 : 16.0);
  const double ram = static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGE_SIZE));
  if (ram > 0 && bytes > 0.8 * ram)
    throw Error("train", "a model of " + std::to_string(static_cast<int64_t>(params)) + " parameters needs " +
                             std::to_string(static_cast<int64_t>(bytes / (1 << 20))) +
                             " MiB of training state, more than this machine's memory allows; use a smaller shape");
}

}  // namespace

LlamaConfig pretrain_config(const TrainShape& s, int64_t vocab, int64_t ctx, int64_t bos, int64_t eos) {
  if (s.dim < 8 || s.layers < 1 || s.heads < 1 || s.kv_heads < 0 || s.hidden < 0)
    throw Error("train", "--dim must be >= 8 and --layers/--heads >= 1");
  if (s.dim % s.heads != 0) throw Error("train", "--dim must be a multiple of --heads");
  const int64_t kv = s.kv_heads == 0 ? s.heads : s.kv_heads;
  if (s.heads % kv != 0) throw Error("train", "--heads must be a multiple of --kv-heads");
  LlamaConfig c;
  c.dim = s.dim;
  c.hidden_dim = s.hidden > 0 ? s.hidden : (8 * s.dim / 3 + 31) / 32 * 32;
  c.n_layers = s.layers;
  c.n_heads = s.heads;
  c.n_kv_heads = kv;
  c.head_dim = s.dim / s.heads;
  if (c.head_dim % 2 != 0) throw Error("train", "--dim / --heads (the head size) must be even for RoPE");
  c.vocab_size = vocab;
  c.max_seq_len = ctx;
  c.bos_id = bos;
  c.eos_id = eos;
  validate_llama_config(c, "train");
  return c;
}

struct TrainableModel::Impl : LinearGradHook {
  LlamaConfig config;
  std::string weights;
  QuantSpec spec;
  std::map<std::string, std::vector<float>> master, grad, quantized;  // quantized: Ŵ (QAT only)
  std::map<std::string, std::vector<int64_t>> shapes;
  std::map<const Linear*, std::string> linear_names;
  std::map<const float*, std::string> norm_names;  // a norm's gain data -> name
  std::unique_ptr<LlamaModel> model;
  LoraAdapter no_adapter;
  std::unique_ptr<LoraModel> train;

  std::vector<float>& forward_of(const std::string& name) {
    auto q = quantized.find(name);
    return q != quantized.end() ? q->second : master.at(name);
  }

  // dW += dyᵀ·x (dW [rows, cols]), the same for W and (straight through) for Ŵ.
  void on_backward(const Linear& w, const float* x, const float* dy, int64_t N) override {
    std::vector<float>& g = grad.at(linear_names.at(&w));
    gemm<float>(true, false, w.rows(), w.cols(), N, 1.0f, dy, w.rows(), x, w.cols(), 1.0f, g.data(), w.cols());
  }
  float* norm_grad(const Matrix& gain) override { return grad.at(norm_names.at(gain.data)).data(); }
  void on_embedding_backward(const TrainBatch& b, const float* dx) override {
    std::vector<float>& g = grad.at("embed_tokens");
    const int64_t D = config.dim;
    for (int64_t t = 0; t < b.n_seq * b.len; ++t) {
      float* row = g.data() + static_cast<int64_t>(b.tokens[t]) * D;
      for (int64_t i = 0; i < D; ++i) row[i] += dx[t * D + i];
    }
  }

  void quantize_projections() {
    for (auto& [name, q] : quantized) {
      const std::vector<float>& w = master.at(name);
      const std::vector<int64_t>& shape = shapes.at(name);
      const std::vector<float> deq = dequantize(quantize_rtn(w.data(), shape[0], shape[1], spec));
      std::copy(deq.begin(), deq.end(), q.begin());  // in place: the model views this storage
    }
  }

  // The LlamaModel over views of the forward weights (built once; refresh() rewrites the
  // storage it points into).
  void build_model() {
    ModelSource src;
    src.format = "safetensors";
    src.path = "train";
    src.config = config;
    for (const auto& [name, shape] : canonical_tensor_shapes(config)) {
      const std::vector<float>& w = forward_of(name);
      TensorView v;
      v.name = name;
      v.dtype = DType::F32;
      v.shape = shape;
      v.data = reinterpret_cast<const uint8_t*>(w.data());
      v.nbytes = w.size() * sizeof(float);
      src.tensors[name] = v;
    }
    model = std::make_unique<LlamaModel>(src);
    linear_names.clear();
    norm_names.clear();
    for (const auto& [name, shape] : canonical_tensor_shapes(config)) {
      if (const Linear* l = model->find_linear(name)) linear_names[l] = name;
    }
    const LlamaWeights& lw = model->weights();
    norm_names[lw.norm.data] = "norm";
    for (int64_t l = 0; l < config.n_layers; ++l) {
      norm_names[lw.layers[l].attn_norm.data] = "layers." + std::to_string(l) + ".attn_norm";
      norm_names[lw.layers[l].ffn_norm.data] = "layers." + std::to_string(l) + ".ffn_norm";
    }
    train = std::make_unique<LoraModel>(*model, no_adapter);
    train->set_linear_grad_hook(this);
  }
};

TrainableModel::TrainableModel(const LlamaConfig& c, const std::string& weights, uint64_t seed)
    : impl_(std::make_unique<Impl>()) {
  validate_llama_config(c, "train");
  if (c.tie_embeddings || c.attention_bias) throw Error("train", "tied embeddings and attention biases are not trained");
  Impl& m = *impl_;
  m.config = c;
  m.weights = weights;
  m.spec = weights_spec(weights);
  check_fits_in_memory(c, m.spec.quantized());
  const double sigma = 0.02, residual_sigma = 0.02 / std::sqrt(2.0 * static_cast<double>(c.n_layers));
  uint64_t k = 0;
  for (const auto& [name, shape] : canonical_tensor_shapes(c)) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    m.shapes[name] = shape;
    std::vector<float>& w = m.master[name];
    w.resize(static_cast<size_t>(n));
    if (shape.size() == 1) std::fill(w.begin(), w.end(), 1.0f);  // norm gains
    else fill_normal(w, name.ends_with("o_proj") || name.ends_with("down_proj") ? residual_sigma : sigma, seed * 1000003 + ++k);
    m.grad[name].assign(w.size(), 0.0f);
    if (m.spec.quantized() && is_projection(name)) m.quantized[name].assign(w.size(), 0.0f);
  }
  m.quantize_projections();
  m.build_model();
}

TrainableModel::~TrainableModel() = default;

const LlamaConfig& TrainableModel::config() const { return impl_->config; }
bool TrainableModel::quantized() const { return impl_->spec.quantized(); }
const std::string& TrainableModel::weights() const { return impl_->weights; }
std::map<std::string, std::vector<float>>& TrainableModel::masters() { return impl_->master; }
void TrainableModel::refresh() { impl_->quantize_projections(); }
const std::vector<float>& TrainableModel::forward_weights(const std::string& name) const {
  return impl_->forward_of(name);
}
const LlamaModel& TrainableModel::model() const { return *impl_->model; }

int64_t TrainableModel::parameter_count() const {
  int64_t n = 0;
  for (const auto& [name, w] : impl_->master) n += static_cast<int64_t>(w.size());
  return n;
}

LossSum TrainableModel::forward_backward(const TrainBatch& b, double grad_scale) {
  for (auto& [name, g] : impl_->grad) std::fill(g.begin(), g.end(), 0.0f);
  return impl_->train->forward_backward(b, grad_scale, 0);
}

HeldoutLoss TrainableModel::heldout(const std::vector<Sequence>& seqs, int64_t batch) {
  return heldout_loss(*impl_->train, seqs, batch);
}

std::vector<ParamRef> TrainableModel::param_refs() {
  std::vector<ParamRef> refs;
  for (auto& [name, w] : impl_->master) refs.push_back({&w, &impl_->grad.at(name), 1.0});
  return refs;
}

namespace {

void validate(const PretrainOptions& o) {
  if (o.out_dir.empty()) throw Error("train", "--out is required");
  if (o.batch < 1 || o.batch > 4096) throw Error("train", "--batch must be in [1, 4096]");
  if (o.steps < 1 || o.steps > 100000000) throw Error("train", "--steps must be in [1, 1e8]");
  if (o.eval_every < 0) throw Error("train", "--eval-every must be >= 0");
  if (o.save_every < 0 || o.stop_after < 0) throw Error("train", "--save-every and --stop-after must be >= 0");
  if (o.data.ctx < 2 || o.data.ctx > 65536) throw Error("train", "--ctx must be in [2, 65536]");
  weights_spec(o.weights);
}

// Sequences [k0, k0 + n) of the endless shuffled stream (epoch e: epoch_order(seed, e)).
TrainBatch stream_batch(const std::vector<Sequence>& seqs, uint64_t seed, int64_t k0, int64_t n, int64_t* tokens) {
  const int64_t total = static_cast<int64_t>(seqs.size());
  std::vector<int64_t> idx;
  std::vector<int64_t> order;
  int64_t epoch = -1;
  *tokens = 0;
  for (int64_t k = k0; k < k0 + n; ++k) {
    if (k / total != epoch) {
      epoch = k / total;
      order = epoch_order(total, seed, epoch);
    }
    idx.push_back(order[static_cast<size_t>(k % total)]);
    *tokens += static_cast<int64_t>(seqs[static_cast<size_t>(idx.back())].tokens.size());
  }
  return make_batch(seqs, idx, 0, n);
}

// The HF-layout copy of the master weights plus the tokenizer file when HF can name it.
void write_hf_dir(TrainableModel& tm, const PretrainOptions& o, std::vector<std::string>& files) {
  write_hf_f32_model(o.out_dir, tm.config(), tm.masters());
  files.push_back("config.json");
  files.push_back("model.safetensors");
  const std::string ext = fs::path(o.tokenizer_path).extension().string();
  const std::string name = ext == ".model" ? "tokenizer.model" : ext == ".json" ? "tokenizer.json" : "";
  if (name.empty()) return;  // a llama2.c tokenizer.bin: the .lowbit carries it
  AtomicFile f(o.out_dir + "/" + name);  // a copy that is the writer's own (not the source's mode)
  f.write(read_text_file(o.tokenizer_path));
  f.commit();
  files.push_back(name);
}

// model.lowbit: what was trained — the forward weights' source, quantized exactly as in training.
void write_lowbit(TrainableModel& tm, const Tokenizer& tok, const PretrainOptions& o, std::vector<std::string>& files) {
  ModelSource src;
  src.format = "safetensors";
  src.path = o.out_dir;
  src.config = tm.config();
  QuantizeOptions qo;
  for (const auto& [name, shape] : canonical_tensor_shapes(tm.config())) {
    const std::vector<float>& w = tm.masters().at(name);
    TensorView v;
    v.name = name;
    v.shape = shape;
    v.data = reinterpret_cast<const uint8_t*>(w.data());
    v.nbytes = w.size() * sizeof(float);
    src.tensors[name] = v;
    if (!tm.quantized()) qo.assigned[name] = "f32";
    else if (is_projection(name)) qo.assigned[name] = "rtn:" + tm.weights();
    else qo.assigned[name] = shape.size() == 1 ? "f32" : "f16";
  }
  qo.recipe = tm.quantized() ? "rtn:" + tm.weights() : "f32";
  quantize_model(src, tok, qo, o.out_dir + "/model.lowbit");
  files.push_back("model.lowbit");
}

constexpr const char* kCheckpointKey = "lowbit.train";

// Everything that changes the math; a resumed run must agree on all of it.
nlohmann::json options_json(const PretrainOptions& o) {
  return {{"tokenizer", fs::absolute(o.tokenizer_path).lexically_normal().string()},
          {"vocab", o.vocab_hint},
          {"data", fs::absolute(o.data_path).lexically_normal().string()},
          {"dim", o.shape.dim}, {"layers", o.shape.layers}, {"heads", o.shape.heads},
          {"kv_heads", o.shape.kv_heads}, {"hidden", o.shape.hidden},
          {"weights", o.weights},
          {"lr", o.adam.lr}, {"beta1", o.adam.beta1}, {"beta2", o.adam.beta2}, {"eps", o.adam.eps},
          {"weight_decay", o.adam.weight_decay}, {"clip", o.adam.clip},
          {"schedule", lr_schedule_name(o.adam.schedule)}, {"warmup", o.adam.warmup_steps},
          {"ctx", o.data.ctx}, {"holdout", o.data.holdout},
          {"batch", o.batch}, {"steps", o.steps}, {"eval_every", o.eval_every}, {"seed", o.seed}};
}

nlohmann::json heldout_json(const std::vector<std::pair<int64_t, HeldoutLoss>>& h) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& [step, l] : h) a.push_back({step, l.loss, l.ppl, l.targets});
  return a;
}

// checkpoint.safetensors: "master.<name>", "adam_m.<name>", "adam_v.<name>" (F32, canonical-name
// order), metadata kCheckpointKey = {"step", "options", "log", "heldout"}.
void save_checkpoint(const std::string& path, TrainableModel& tm, AdamW& adam, const PretrainOptions& o,
                     const PretrainResult& r) {
  SafetensorsWriter w(4);
  w.spill_beside(path);
  size_t k = 0;
  for (const auto& [name, v] : tm.masters()) {
    const int64_t n = static_cast<int64_t>(v.size());
    w.add("master." + name, "F32", {n}, v.data(), v.size() * sizeof(float));
    w.add("adam_m." + name, "F32", {n}, adam.first_moments()[k].data(), v.size() * sizeof(float));
    w.add("adam_v." + name, "F32", {n}, adam.second_moments()[k].data(), v.size() * sizeof(float));
    ++k;
  }
  const nlohmann::json meta{{"step", adam.steps_done()},
                            {"options", options_json(o)},
                            {"log", train_log_json(r.log)},
                            {"heldout", heldout_json(r.heldout)}};
  w.add_metadata(kCheckpointKey, meta.dump());
  w.write(path);
}

// Copies a checkpoint tensor into `out` in place (the model views the masters' storage).
void read_into(const SafetensorsFile& f, const std::string& name, std::vector<float>& out) {
  const std::vector<float> v = to_f32(f.tensor(name));
  if (v.size() != out.size()) throw Error("train", f.path() + ": " + name + " has the wrong size");
  std::copy(v.begin(), v.end(), out.begin());
}

// Restores masters, moments, step, log and held-out points from out_dir/checkpoint.safetensors.
void load_checkpoint(const std::string& path, TrainableModel& tm, AdamW& adam, const PretrainOptions& o,
                     PretrainResult& r) {
  if (!fs::exists(path)) throw Error("train", "--resume: no checkpoint at " + path);
  const SafetensorsFile f(path);
  const auto it = f.metadata().find(kCheckpointKey);
  if (it == f.metadata().end()) throw Error("train", path + ": not a lowbit train checkpoint");
  check_json_depth(it->second, "train", path);
  try {
    const nlohmann::json meta = nlohmann::json::parse(it->second);
    const nlohmann::json want = options_json(o);
    for (const auto& [key, value] : want.items())
      if (meta.at("options").at(key) != value)
        throw Error("train", "--resume: the checkpoint was made with " + key + " = " + meta.at("options").at(key).dump() +
                                 ", this run has " + value.dump());
    const int64_t step = meta.at("step").get<int64_t>();
    if (step < 1 || step > o.steps) throw Error("train", path + ": checkpoint step " + std::to_string(step) + " is out of range");
    r.log = train_log_from_json(meta.at("log"));
    if (static_cast<int64_t>(r.log.size()) != step) throw Error("train", path + ": the log does not match the step");
    r.heldout.clear();
    for (const nlohmann::json& e : meta.at("heldout")) {
      HeldoutLoss h;
      h.loss = e.at(1).get<double>();
      h.ppl = e.at(2).get<double>();
      h.targets = e.at(3).get<int64_t>();
      r.heldout.emplace_back(e.at(0).get<int64_t>(), h);
    }
    size_t k = 0;
    for (auto& [name, v] : tm.masters()) {
      read_into(f, "master." + name, v);
      read_into(f, "adam_m." + name, adam.first_moments()[k]);
      read_into(f, "adam_v." + name, adam.second_moments()[k]);
      ++k;
    }
    adam.set_steps_done(step);
  } catch (const nlohmann::json::exception&) {
    throw Error("train", path + ": malformed checkpoint metadata");
  }
  tm.refresh();
}

}  // namespace

PretrainResult pretrain(const PretrainOptions& o, const PretrainProgress& progress) {
  validate(o);
  const std::unique_ptr<Tokenizer> tok = load_tokenizer_file(o.tokenizer_path, o.vocab_hint);
  const Dataset data = load_dataset(o.data_path, *tok, o.data);
  if (data.heldout.empty()) throw Error("train", o.data_path + ": no held-out data (raise --holdout)");
  PretrainResult r;
  r.config = pretrain_config(o.shape, tok->vocab_size(), o.data.ctx, tok->bos_id(), tok->eos_id());
  TrainableModel tm(r.config, o.weights, o.seed);
  r.parameters = tm.parameter_count();
  r.steps = o.steps;
  r.train_sequences = static_cast<int64_t>(data.train.size());
  r.heldout_sequences = static_cast<int64_t>(data.heldout.size());
  AdamWOptions ao = o.adam;
  ao.total_steps = o.steps;
  validate_adamw(ao);
  std::vector<ParamRef> params = tm.param_refs();
  AdamW adam(params, ao);
  const std::string ckpt = o.out_dir + "/checkpoint.safetensors";
  if (o.resume) {
    load_checkpoint(ckpt, tm, adam, o, r);
    r.resumed_from = adam.steps_done();
  } else {
    r.heldout.emplace_back(0, tm.heldout(data.heldout, o.batch));
  }
  fs::create_directories(o.out_dir);

  const int64_t last = o.stop_after > 0 ? std::min(o.stop_after, o.steps) : o.steps;
  int64_t tokens = r.log.empty() ? 0 : r.log.back().tokens;
  const double prior_seconds = r.log.empty() ? 0.0 : r.log.back().seconds;
  const auto t0 = Clock::now();
  double eval_seconds = 0;
  for (int64_t s = adam.steps_done(); s < last; ++s) {
    int64_t t = 0;
    const TrainBatch b = stream_batch(data.train, o.seed, s * o.batch, o.batch, &t);
    tokens += t;
    const LossSum ls = tm.forward_backward(b, 1.0 / static_cast<double>(std::max<int64_t>(1, b.n_targets())));
    const StepStats st = adam.step(params);
    tm.refresh();
    StepLog l;
    l.step = s + 1;
    l.loss = ls.loss / static_cast<double>(std::max<int64_t>(1, ls.n_targets));
    l.lr = st.lr;
    l.grad_norm = st.grad_norm;
    l.tokens = tokens;
    l.seconds = prior_seconds + std::chrono::duration<double>(Clock::now() - t0).count() - eval_seconds;
    if (!std::isfinite(l.loss)) throw Error("train", "loss is not finite at step " + std::to_string(l.step) + " (lower --lr?)");
    r.log.push_back(l);
    if (progress) progress(l, o.steps);
    if (l.step == o.steps || (o.eval_every > 0 && l.step % o.eval_every == 0)) {
      const auto e0 = Clock::now();
      r.heldout.emplace_back(l.step, tm.heldout(data.heldout, o.batch));
      eval_seconds += std::chrono::duration<double>(Clock::now() - e0).count();
    }
    if (l.step == last || (o.save_every > 0 && l.step % o.save_every == 0)) save_checkpoint(ckpt, tm, adam, o, r);
  }
  r.finished = adam.steps_done() == o.steps;
  if (r.log.empty()) throw Error("train", "--stop-after leaves no step to run");
  const int64_t run_tokens = tokens - (r.resumed_from > 0 ? r.log[static_cast<size_t>(r.resumed_from - 1)].tokens : 0);
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count() - eval_seconds;
  r.tokens_per_s = r.seconds > 0 ? static_cast<double>(run_tokens) / r.seconds : 0.0;
  r.files.push_back("checkpoint.safetensors");
  if (r.finished) {
    write_hf_dir(tm, o, r.files);
    write_lowbit(tm, *tok, o, r.files);
  }
  write_train_log_csv(o.out_dir + "/train_log.csv", r.log);
  r.files.push_back("train_log.csv");
  return r;
}

}  // namespace lowbit
