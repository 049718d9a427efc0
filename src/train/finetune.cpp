#include "train/finetune.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/json_depth.h"
#include "base/splitmix.h"
#include "io/safetensors.h"
#include "io/safetensors_writer.h"
#include "model/loader.h"
#include "train/lora_model.h"
#include "train/train_log.h"
#include "train/peft.h"

namespace lowbit {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

// The options a checkpoint must agree with to be resumed (everything that changes the math).
json options_json(const FinetuneOptions& o) {
  return json{{"model", fs::absolute(o.model_path).lexically_normal().string()},
              {"data", fs::absolute(o.data_path).lexically_normal().string()},
              {"tokenizer", o.tokenizer_path},
              {"lora_r", o.lora.rank},
              {"lora_alpha", o.lora.alpha},
              {"lora_dropout", o.lora.dropout},
              {"rslora", o.lora.rslora},
              {"targets", o.lora.targets},
              {"init_adapter", o.init_adapter},
              {"lr", o.adam.lr},
              {"beta1", o.adam.beta1},
              {"beta2", o.adam.beta2},
              {"eps", o.adam.eps},
              {"weight_decay", o.adam.weight_decay},
              {"clip", o.adam.clip},
              {"schedule", lr_schedule_name(o.adam.schedule)},
              {"warmup", o.adam.warmup_steps},
              {"total_steps", o.adam.total_steps},
              {"ctx", o.data.ctx},
              {"holdout", o.data.holdout},
              {"batch", o.batch},
              {"grad_accum", o.grad_accum},
              {"seed", o.seed}};
}

void validate(const FinetuneOptions& o) {
  if (o.out_dir.empty()) throw Error("finetune", "--out is required");
  if (o.batch < 1 || o.batch > 4096) throw Error("finetune", "--batch must be in [1, 4096]");
  if (o.grad_accum < 1 || o.grad_accum > 65536) throw Error("finetune", "--grad-accum must be in [1, 65536]");
  if (o.steps < 0) throw Error("finetune", "--steps must be >= 0");
  if (!(o.epochs > 0) || o.epochs > 1e6) throw Error("finetune", "--epochs must be positive");
  if (o.save_every < 0 || o.stop_after < 0) throw Error("finetune", "--save-every and --stop-after must be >= 0");
  if (o.checkpointing != "auto" && o.checkpointing != "on" && o.checkpointing != "off")
    throw Error("finetune", "--checkpointing must be auto, on or off");
  validate_lora_config(o.lora);
}

// The shuffled order of the current epoch of the endless training stream.
struct SequenceStream {
  std::vector<int64_t> order;
  int64_t epoch = -1;
};

// Micro-batch j of step s (0-based) from the endless shuffled stream of training sequences;
// *tokens gets its fed (unpadded) token count.
TrainBatch micro_batch(const FinetuneOptions& o, const std::vector<Sequence>& train, int64_t s, int64_t j,
                       SequenceStream& stream, int64_t* tokens) {
  const int64_t n = static_cast<int64_t>(train.size());
  std::vector<int64_t> idx;
  *tokens = 0;
  for (int64_t i = 0; i < o.batch; ++i) {
    const int64_t k = (s * o.grad_accum + j) * o.batch + i;
    if (k / n != stream.epoch) {
      stream.epoch = k / n;
      stream.order = epoch_order(n, o.seed, stream.epoch);
    }
    idx.push_back(stream.order[static_cast<size_t>(k % n)]);
    *tokens += static_cast<int64_t>(train[static_cast<size_t>(idx.back())].tokens.size());
  }
  return make_batch(train, idx, 0, o.batch);
}

struct StepResult {
  double loss = 0;  // mean nats per target over the step's micro-batches
  StepStats stats;
};

// Optimizer step s (0-based): its grad_accum micro-batches' gradients, scaled by 1 / (the step's
// targets) so the step minimises the mean loss, then AdamW. *tokens gets the tokens fed.
StepResult train_step(const FinetuneOptions& o, const std::vector<Sequence>& train, LoraModel& lm, LoraAdapter& ad,
                      AdamW& opt, int64_t s, SequenceStream& stream, int64_t* tokens) {
  std::vector<TrainBatch> micro;
  int64_t step_targets = 0;
  *tokens = 0;
  for (int64_t j = 0; j < o.grad_accum; ++j) {
    int64_t t = 0;
    micro.push_back(micro_batch(o, train, s, j, stream, &t));
    step_targets += micro.back().n_targets();
    *tokens += t;
  }
  const double inv_targets = 1.0 / static_cast<double>(std::max<int64_t>(1, step_targets));
  ad.zero_grads();
  StepResult r;
  for (int64_t j = 0; j < o.grad_accum; ++j) {
    const uint64_t dropout_seed = splitmix64(o.seed ^ splitmix64(static_cast<uint64_t>(s) * 65536 + static_cast<uint64_t>(j)));
    r.loss += lm.forward_backward(micro[static_cast<size_t>(j)], inv_targets, dropout_seed).loss;
  }
  r.loss /= static_cast<double>(std::max<int64_t>(1, step_targets));
  r.stats = opt.step(ad);
  return r;
}

const char* kMetaKey = "lowbit.finetune";

void add_f32(SafetensorsWriter& w, const std::string& name, const std::vector<float>& v) {
  w.add(name, "F32", {static_cast<int64_t>(v.size())}, v.data(), v.size() * sizeof(float));
}

void save_checkpoint(const std::string& path, LoraAdapter& ad, AdamW& opt, const json& options,
                     const HeldoutLoss& before, const std::vector<StepLog>& log) {
  SafetensorsWriter w(4);
  w.spill_beside(path);  // stream the tensors to disk instead of holding a second copy in memory
  size_t k = 0;
  for (const LoraParam& p : ad.params()) {
    add_f32(w, "lora." + p.module + ".A", p.a);
    add_f32(w, "lora." + p.module + ".B", p.b);
    add_f32(w, "adam." + p.module + ".mA", opt.first_moments()[k]);
    add_f32(w, "adam." + p.module + ".vA", opt.second_moments()[k]);
    add_f32(w, "adam." + p.module + ".mB", opt.first_moments()[k + 1]);
    add_f32(w, "adam." + p.module + ".vB", opt.second_moments()[k + 1]);
    k += 2;
  }
  const json meta{{"step", opt.steps_done()},
                  {"options", options},
                  {"heldout_before", {before.loss, before.ppl, before.targets}},
                  {"log", train_log_json(log)}};
  w.add_metadata(kMetaKey, meta.dump());
  w.write(path);
}

void read_f32(const SafetensorsFile& f, const std::string& name, std::vector<float>* out) {
  const std::vector<float> v = to_f32(f.tensor(name));
  if (v.size() != out->size()) throw Error("finetune", f.path() + ": " + name + " has the wrong size");
  *out = v;
}

// Restores adapters, moments and step; returns the checkpoint's metadata.
json load_checkpoint(const std::string& path, LoraAdapter& ad, AdamW& opt, const json& options) {
  if (!fs::exists(path)) throw Error("finetune", "--resume: no checkpoint at " + path);
  const SafetensorsFile f(path);
  const auto it = f.metadata().find(kMetaKey);
  if (it == f.metadata().end()) throw Error("finetune", path + ": not a lowbit finetune checkpoint");
  check_json_depth(it->second, "finetune", path);
  json meta;
  try {
    meta = json::parse(it->second);
    for (auto& [key, value] : options.items())
      if (meta.at("options").at(key) != value)
        throw Error("finetune", "--resume: the checkpoint was made with " + key + " = " + meta.at("options").at(key).dump() +
                                    ", this run has " + value.dump());
    size_t k = 0;
    for (LoraParam& p : ad.params()) {
      read_f32(f, "lora." + p.module + ".A", &p.a);
      read_f32(f, "lora." + p.module + ".B", &p.b);
      read_f32(f, "adam." + p.module + ".mA", &opt.first_moments()[k]);
      read_f32(f, "adam." + p.module + ".vA", &opt.second_moments()[k]);
      read_f32(f, "adam." + p.module + ".mB", &opt.first_moments()[k + 1]);
      read_f32(f, "adam." + p.module + ".vB", &opt.second_moments()[k + 1]);
      k += 2;
    }
    opt.set_steps_done(meta.at("step").get<int64_t>());
    train_log_from_json(meta.at("log"));  // validates
  } catch (const json::exception&) {
    throw Error("finetune", path + ": malformed checkpoint metadata");
  }
  return meta;
}

int64_t total_steps_for(const FinetuneOptions& o, int64_t n_train) {
  if (o.steps > 0) return o.steps;
  const double per_step = static_cast<double>(o.batch * o.grad_accum);
  return std::max<int64_t>(1, static_cast<int64_t>(std::ceil(o.epochs * static_cast<double>(n_train) / per_step)));
}

}  // namespace

HeldoutLoss heldout_loss(LoraModel& m, const std::vector<Sequence>& seqs, int64_t batch) {
  HeldoutLoss h;
  std::vector<int64_t> order(seqs.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  double sum = 0;
  for (int64_t i = 0; i < static_cast<int64_t>(seqs.size()); i += batch) {
    const LossSum s = m.loss(make_batch(seqs, order, i, std::min<int64_t>(batch, static_cast<int64_t>(seqs.size()) - i)));
    sum += s.loss;
    h.targets += s.n_targets;
  }
  h.loss = h.targets ? sum / static_cast<double>(h.targets) : 0.0;
  h.ppl = std::exp(h.loss);
  return h;
}

// The adapter of --init-adapter, trained with o.lora's dropout; its rank, alpha, rsLoRA and
// targets must be o.lora's (so that what is trained is what the options say).
LoraAdapter initial_adapter(const FinetuneOptions& o, const LlamaConfig& mc) {
  LoraAdapter loaded = load_peft_adapter(o.init_adapter, mc);
  const LoraConfig& c = loaded.config();
  if (c.rank != o.lora.rank || c.scale() != o.lora.scale() || c.targets != o.lora.targets)
    throw Error("finetune", o.init_adapter + ": the initial adapter has rank " + std::to_string(c.rank) + ", scale " +
                                std::to_string(c.scale()) + " and " + std::to_string(c.targets.size()) +
                                " targets; pass the same --lora-r/--lora-alpha/--targets");
  return LoraAdapter::from_params(o.lora, std::move(loaded.params()));
}

FinetuneResult finetune(FinetuneOptions o, const FinetuneProgress& progress) {
  validate(o);
  LoadedModel m = load_model(o.model_path, o.tokenizer_path);
  m.source = ModelSource{};  // the model keeps what it uses (packed copies, mappings): free the rest
  const Dataset data = load_dataset(o.data_path, *m.tokenizer, o.data);
  FinetuneResult r;
  r.train_sequences = static_cast<int64_t>(data.train.size());
  r.heldout_sequences = static_cast<int64_t>(data.heldout.size());
  r.train_targets = data.train_targets();
  r.total_steps = o.adam.total_steps = total_steps_for(o, r.train_sequences);
  validate_adamw(o.adam);
  r.base_format = m.model->weights().layers.at(0).q_proj.format();

  LoraAdapter ad = o.init_adapter.empty() ? LoraAdapter::init(m.model->config(), o.lora, o.seed)
                                          : initial_adapter(o, m.model->config());
  r.trainable_params = ad.parameter_count();
  AdamW opt(ad, o.adam);
  LoraModel lm(*m.model, ad);
  const int64_t keep_bytes = lm.stored_activation_bytes(o.batch * o.data.ctx);
  r.recompute = o.checkpointing == "on" || (o.checkpointing == "auto" && keep_bytes > kAutoKeepBytes);
  lm.set_recompute(r.recompute);
  const json options = options_json(o);
  const std::string ckpt = o.out_dir + "/checkpoint.safetensors";
  std::error_code ec;
  fs::create_directories(o.out_dir, ec);
  if (!fs::is_directory(o.out_dir)) throw Error("finetune", "cannot create --out directory " + o.out_dir);
  if (o.resume) {
    const json meta = load_checkpoint(ckpt, ad, opt, options);
    r.log = train_log_from_json(meta.at("log"));
    r.before = {meta.at("heldout_before").at(0).get<double>(), meta.at("heldout_before").at(1).get<double>(),
                meta.at("heldout_before").at(2).get<int64_t>()};
    r.resumed_from = opt.steps_done();
  } else if (!data.heldout.empty()) {
    r.before = heldout_loss(lm, data.heldout, o.batch);
  }

  const int64_t last = o.stop_after > 0 ? std::min(o.stop_after, r.total_steps) : r.total_steps;
  SequenceStream stream;
  int64_t run_tokens = 0;
  const double prior_seconds = r.log.empty() ? 0.0 : r.log.back().seconds;
  const int64_t prior_tokens = r.log.empty() ? 0 : r.log.back().tokens;
  const auto t0 = Clock::now();
  for (int64_t s = opt.steps_done(); s < last; ++s) {
    int64_t tokens = 0;
    const StepResult sr = train_step(o, data.train, lm, ad, opt, s, stream, &tokens);
    run_tokens += tokens;
    StepLog l;
    l.step = s + 1;
    l.loss = sr.loss;
    l.lr = sr.stats.lr;
    l.grad_norm = sr.stats.grad_norm;
    l.tokens = prior_tokens + run_tokens;
    l.seconds = prior_seconds + std::chrono::duration<double>(Clock::now() - t0).count();
    r.log.push_back(l);
    if (!std::isfinite(l.loss)) throw Error("finetune", "loss is not finite at step " + std::to_string(l.step) + " (lower --lr?)");
    if (progress) progress(l, r.total_steps);
    const bool last_step = l.step == last;
    if (last_step || (o.save_every > 0 && l.step % o.save_every == 0)) save_checkpoint(ckpt, ad, opt, options, r.before, r.log);
  }
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  r.tokens_per_s = r.seconds > 0 ? static_cast<double>(run_tokens) / r.seconds : 0.0;
  r.steps_done = opt.steps_done();
  r.finished = r.steps_done == r.total_steps;
  if (r.finished) {
    if (!data.heldout.empty()) r.after = heldout_loss(lm, data.heldout, o.batch);
    save_peft_adapter(ad, m.model->config(), o.out_dir, o.model_path);
  }
  write_train_log_csv(o.out_dir + "/train_log.csv", r.log);
  return r;
}

std::string loss_curve_gnuplot(const std::vector<StepLog>& log, const std::vector<std::pair<int64_t, double>>& heldout,
                               const std::string& title, const std::string& png_path) {
  std::string s = "set terminal pngcairo size 1000,650 font 'sans,10'\n";
  s += "set output '" + png_path + "'\nset title '" + title + "'\n";
  s += "set xlabel 'optimizer step'\nset ylabel 'loss (nats per target token)'\nset grid\nset key top right\n";
  s += "$train << EOD\n";
  char line[96];
  for (const StepLog& l : log) {
    std::snprintf(line, sizeof line, "%lld %.6f\n", static_cast<long long>(l.step), l.loss);
    s += line;
  }
  s += "EOD\n$heldout << EOD\n";
  for (const auto& [step, loss] : heldout) {
    std::snprintf(line, sizeof line, "%lld %.6f\n", static_cast<long long>(step), loss);
    s += line;
  }
  s += "EOD\n";
  s += "plot $train using 1:2 with lines lw 1.5 lc rgb '#2c7fb8' title 'train loss (per step)', \\\n"
       "     $heldout using 1:2 with linespoints pt 7 ps 1.5 lw 2 lc rgb '#d95f02' title 'held-out loss'\n";
  return s;
}

std::string loss_curve_gnuplot(const FinetuneResult& r, const std::string& title, const std::string& png_path) {
  std::vector<std::pair<int64_t, double>> heldout;
  if (r.before.targets > 0) heldout.emplace_back(0, r.before.loss);
  if (r.finished && r.after.targets > 0) heldout.emplace_back(r.total_steps, r.after.loss);
  return loss_curve_gnuplot(r.log, heldout, title, png_path);
}

}  // namespace lowbit
