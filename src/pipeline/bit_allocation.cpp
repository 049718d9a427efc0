#include "pipeline/bit_allocation.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <tuple>

#include "algo/awq.h"
#include "algo/rtn.h"
#include "base/atomic_file.h"
#include "base/error.h"
#include "base/json_depth.h"
#include "base/mapped_file.h"
#include "eval/compare.h"
#include "formats/registry.h"
#include "model/llama.h"
#include "pipeline/calibrated_layer.h"
#include "pipeline/layer_source.h"
#include "pipeline/model_rotation.h"
#include "pipeline/recipe.h"

namespace lowbit {

namespace {

using json = nlohmann::json;
constexpr const char* kComp = "allocate";
// Upper bounds of what a .lowbit file spends beside the data: a part's safetensors header entry
// beyond its name (`".scale_codes":{"dtype":"BF16","shape":[R,C],"data_offsets":[A,B]},` with
// numbers of up to 16 digits), an alignment pad's entry (its bytes counted apart), and a
// tensor's lowbit.tensors index entry beyond its name and twice the recipe (format and recipe).
constexpr int64_t kPartEntryBytes = 110;
constexpr int64_t kPadEntryBytes = 90;
constexpr int64_t kIndexBytes = 60;
constexpr int64_t kLowRankKeyBytes = 20;  // ,"low_rank":NNNN

// The relative error of `back` against w: through h for a linear (energy = output_energy(w, h),
// the same for every candidate), row-weighted for an embedding (row_weight [rows], how often each
// row is read).
double relative_error(const DenseWeight& w, const std::vector<float>& back, const float* h, double energy,
                      const std::vector<double>* row_weight) {
  if (h != nullptr)
    return energy > 0 ? std::max(0.0, output_sq_error(w.w.data(), back.data(), w.rows, w.cols, h) / energy) : 0.0;
  double err = 0, total = 0;
  for (int64_t i = 0; i < w.rows; ++i) {
    const double rw = (*row_weight)[i];
    if (rw == 0) continue;
    for (int64_t j = 0; j < w.cols; ++j) {
      const double v = w.w[i * w.cols + j], d = v - back[i * w.cols + j];
      err += rw * d * d;
      total += rw * v * v;
    }
  }
  return total > 0 ? err / total : 0.0;
}

// What the KLD probe of a tensor replaces it with.
struct Probe {
  std::optional<QuantizedMatrix> matrix;  // run through the packed kernels
  std::optional<LowRankFactors> correction;  // with matrix, if any
  std::vector<float> values;              // otherwise: plain fp32 values
};

// Measures one tensor under every candidate the coder accepts; the probe (fewest bytes among
// the candidates that change the weights) goes into `probes`.
TensorMeasurement measure_tensor(const std::string& name, const DenseWeight& w, const std::vector<std::string>& cands,
                                 const CandidateCoder& coder, const float* h, const std::vector<double>* row_weight,
                                 std::map<std::string, Probe>& probes) {
  TensorMeasurement tm;
  tm.name = name;
  tm.rows = w.rows;
  tm.cols = w.cols;
  tm.params = w.rows * w.cols;
  tm.probe = -1;
  const double energy = h ? output_energy(w, h) : 0.0;
  for (const std::string& cand : cands) {
    std::optional<CodedTensor> coded = coder(name, cand, w, h);
    if (!coded) continue;  // not applicable to this shape
    const double error = relative_error(w, coded->values, h, energy, row_weight);
    tm.candidates.push_back({cand, coded->bytes, error});
    const bool lossy = error > 0;
    if (lossy && (tm.probe < 0 || coded->bytes < tm.candidates[tm.probe].bytes)) {
      tm.probe = static_cast<int>(tm.candidates.size()) - 1;
      Probe& p = probes[name];
      p.matrix = std::move(coded->matrix);
      p.correction = std::move(coded->correction);
      p.values = p.matrix ? std::vector<float>{} : std::move(coded->values);
    }
  }
  if (tm.candidates.empty()) throw Error(kComp, name + ": no candidate applies to a [" + std::to_string(w.rows) + ", " +
                                                    std::to_string(w.cols) + "] tensor");
  if (tm.probe < 0) tm.probe = 0;  // every candidate exact: predictions are 0
  return tm;
}

// Throws lowbit::Error("allocate", ...) unless every spelling is a recipe (calibration-free for
// the embeddings) and at least one quantizes.
void check_recipe_candidates(const std::vector<std::string>& spellings, bool embed) {
  bool any_quantized = false;
  for (const std::string& s : spellings) {
    const Recipe r = parse_recipe(s);
    if (embed && r.calibrated())
      throw Error(kComp, "embedding candidate '" + s + "': embeddings take rtn or float recipes (no calibration inputs)");
    any_quantized |= r.algorithm != "none";
  }
  if (!any_quantized) throw Error(kComp, std::string(embed ? "embedding" : "linear") + " candidates: none quantizes");
}

// The candidate lists a measurement with `opt` uses: the given ones, else (.lowbit coder only)
// the defaults for the recipe's algorithm.
std::pair<std::vector<std::string>, std::vector<std::string>> resolved_candidates(const MeasureOptions& opt,
                                                                                  const RecipePlan& plan) {
  std::vector<std::string> lin = opt.linear_candidates, emb = opt.embed_candidates;
  if (!opt.coder) {
    if (lin.empty()) lin = default_linear_candidates(plan.model_recipe().algorithm);
    if (emb.empty()) emb = default_embed_candidates();
  }
  return {lin, emb};
}

// KL(P_ref ‖ P_model) summed over the T positions of one window's logits [T·V].
double window_kld_sum(const std::vector<float>& ref_logits, const std::vector<float>& logits, int64_t V) {
  double sum = 0;
  for (size_t t = 0; t * V < logits.size(); ++t)
    sum += kl_divergence(std::span<const float>(&ref_logits[t * V], V), std::span<const float>(&logits[t * V], V));
  return sum;
}

// The first layer a tensor's replacement changes: its block's index, n_layers for lm_head, and
// 0 for the embeddings (or any other name).
int64_t first_changed_layer(const std::string& name, int64_t n_layers) {
  if (name == "lm_head") return n_layers;
  if (!name.starts_with("layers.")) return 0;
  const size_t dot = name.find('.', 7);
  return dot == std::string::npos ? 0 : std::stoll(name.substr(7, dot - 7));
}

// Each tensor's probe KLD: the float model with only that tensor replaced. The float model's
// hidden states at every layer's input are computed once, so a probe runs only the layers from
// the replaced tensor's on (the layers before it are the float model's: the same bits as a full
// forward of the probe model, at half its cost on average).
void measure_probe_klds(const ModelSource& fsrc, const CalibrationSet& cs, int64_t kld_windows,
                        std::map<std::string, Probe>& probes, Measurement& m,
                        const MeasureOptions& opt) {
  std::vector<std::vector<int32_t>> windows(cs.windows.begin(),
                                            cs.windows.begin() + std::min<int64_t>(kld_windows, cs.windows.size()));
  std::vector<std::vector<float>> ref(windows.size());
  std::vector<std::vector<std::vector<float>>> inputs(windows.size());  // [window][layer][T·D]
  int64_t n_layers = 0, V = 0;
  {
    const LlamaModel reference(fsrc);
    n_layers = reference.config().n_layers, V = reference.config().vocab_size;
    for (size_t w = 0; w < windows.size(); ++w) {
      inputs[w] = reference.layer_inputs(windows[w]);
      reference.forward_from_layer(n_layers, windows[w], inputs[w][n_layers], ref[w]);
    }
  }
  std::vector<float> logits;
  for (size_t i = 0; i < m.tensors.size(); ++i) {
    TensorMeasurement& tm = m.tensors[i];
    if (opt.progress) opt.progress(static_cast<int64_t>(i), static_cast<int64_t>(m.tensors.size()), "kld " + tm.name);
    auto probe = probes.find(tm.name);
    if (probe == probes.end()) continue;  // no lossy candidate: probe_kld stays 0
    ModelSource overlay = fsrc;
    if (probe->second.matrix) {
      overlay.tensors.erase(tm.name);
      overlay.quantized[tm.name] = std::move(*probe->second.matrix);
      if (probe->second.correction) overlay.corrections[tm.name] = std::move(*probe->second.correction);
    } else {
      TensorView& v = overlay.tensors.at(tm.name);
      v.data = reinterpret_cast<const uint8_t*>(probe->second.values.data());
      v.dtype = DType::F32;
      v.nbytes = probe->second.values.size() * sizeof(float);
    }
    const LlamaModel model(overlay);
    const int64_t first = first_changed_layer(tm.name, n_layers);
    double sum = 0;
    int64_t n = 0;
    for (size_t w = 0; w < windows.size(); ++w) {
      if (first == 0) {
        KvCache cache = model.new_cache(static_cast<int64_t>(windows[w].size()));
        model.forward(windows[w], cache, true, logits);
      } else {
        model.forward_from_layer(first, windows[w], inputs[w][first], logits);
      }
      sum += window_kld_sum(ref[w], logits, V);
      n += static_cast<int64_t>(windows[w].size());
    }
    tm.probe_kld = n ? sum / static_cast<double>(n) : 0.0;
  }
}

std::vector<double> token_counts(const CalibrationSet& cs, int64_t vocab) {
  std::vector<double> counts(static_cast<size_t>(vocab), 0.0);
  for (const auto& w : cs.windows)
    for (int32_t id : w) counts[id] += 1.0;
  return counts;
}

json calibration_json(const CalibrationOptions& c) {
  return {{"source", c.source}, {"windows", c.windows}, {"window_len", c.window_len}, {"seed", c.seed}};
}

}  // namespace

double TensorMeasurement::predicted_kld(size_t c) const {
  const double probe_err = candidates.at(probe).error;
  return probe_err > 0 ? probe_kld * candidates.at(c).error / probe_err : 0.0;
}

// The 2-bit candidates are the e8p code book (2.125 and 2.25 bits/weight): on ref-m it replaced
// int2:g128:asym / int2:g64:asym with -33 % KLD at 2.19 MB and -5 % at 2.66 MB
// (docs/BENCHMARKS.md, "The E8P lattice code book"). e8p searches its scale itself (no :clip).
std::vector<std::string> default_linear_candidates(const std::string& algorithm) {
  const std::string suffix = algorithm == "rtn" ? ":clip" : "";
  std::vector<std::string> out = {algorithm + ":e8p:g128", algorithm + ":e8p:g64"};
  for (const char* f : {"int3:g128", "int3:g64", "int4:g128", "int4:g64", "int5:g128", "int6:g128", "int8:g128"})
    out.push_back(algorithm + ":" + f + suffix);
  return out;
}

std::vector<std::string> default_embed_candidates() {
  std::vector<std::string> out = {"rtn:e8p:g128", "rtn:e8p:g64"};
  for (const char* f : {"int3:g64", "int4:g128", "int4:g64", "int5:g128", "int6:g128", "int8:g128"})
    out.push_back(std::string("rtn:") + f + ":clip");
  out.push_back("f16");
  return out;
}

CandidateCoder lowbit_coder() {
  return [](const std::string& name, const std::string& candidate, const DenseWeight& w,
            const float* h) -> std::optional<CodedTensor> {
    const Recipe r = parse_recipe(candidate);
    if (w.cols % vector_dim(r.spec) != 0) return std::nullopt;  // e8p on a row of 8k + j
    // h also weights a correction's fit (rtn:...:lr<r> included)
    LinearResult res = quantize_linear(w, r, r.calibrated() || r.low_rank > 0 ? h : nullptr, /*measure=*/false);
    CodedTensor c;
    if (res.quantized) {
      c.bytes = res.matrix.storage_bytes() + (res.correction ? fp16_bytes(*res.correction) : 0);
      c.values = decoded_weight(res);
      c.matrix = std::move(res.matrix);
      c.correction = std::move(res.correction);
    } else {  // float storage: the values rounded to its type
      c.bytes = w.rows * w.cols * (r.spec.kind == FormatKind::F32 ? 4 : 2);
      c.values = dequantize(quantize_rtn(w.w.data(), w.rows, w.cols, r.spec));
    }
    c.bytes += container_bytes(name, candidate, w.rows, w.cols);
    return c;
  };
}

Measurement measure_model(const ModelSource& src, const Tokenizer& tokenizer, const MeasureOptions& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  const RecipePlan plan(opt.recipe, {});
  const LlamaConfig& c = src.config;
  Measurement m;
  m.model = src.path;
  m.recipe = plan.to_string();
  m.kld_windows = opt.kld_windows;
  std::tie(m.linear_candidates, m.embed_candidates) = resolved_candidates(opt, plan);
  if (m.linear_candidates.empty() || m.embed_candidates.empty()) throw Error(kComp, "no candidates");
  if (!opt.coder) {
    check_recipe_candidates(m.linear_candidates, false);
    check_recipe_candidates(m.embed_candidates, true);
  }
  const CandidateCoder coder = opt.coder ? opt.coder : lowbit_coder();
  if (opt.kld_windows < 1) throw Error(kComp, "--kld-windows must be >= 1");

  if (plan.hadamard_down()) throw Error(kComp, "':had' is not supported with --target-* yet (':rot' is)");
  if (plan.smooth_alpha() > 0) throw Error(kComp, "':smooth' is not supported with --target-* yet (':rot' is)");
  std::optional<ModelRotation> rot;
  if (plan.rotate()) rot = ModelRotation::make(c, opt.calibration.seed);
  m.rotation = rot ? rot->to_json() : "";
  const ModelSource fsrc = float_model_source(src, rot ? &*rot : nullptr);
  const LlamaConfig& fc = fsrc.config;

  m.calibration = opt.calibration;
  if (m.calibration.source.empty()) m.calibration.source = default_calibration_source();
  m.calibration.window_len = std::min(m.calibration.window_len, c.max_seq_len);
  const CalibrationSet cs = load_calibration(tokenizer, m.calibration);

  const int64_t total_steps = fc.n_layers + 2;
  auto progress = [&](int64_t step, const std::string& what) {
    if (opt.progress) opt.progress(step, total_steps, what);
  };
  std::map<std::string, Probe> probes;
  progress(0, "embed_tokens");
  const DenseWeight embed{fc.vocab_size, fc.dim, source_f32(fsrc, "embed_tokens")};
  const std::vector<double> counts = token_counts(cs, fc.vocab_size);
  m.tensors.push_back(measure_tensor("embed_tokens", embed, m.embed_candidates, coder, nullptr, &counts, probes));
  Activations act = embed_windows(embed.w, fc, cs);
  for (int64_t l = 0; l < fc.n_layers; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    progress(l + 1, p);
    FloatLayer layer = load_float_layer(fsrc, fc, p);
    std::map<std::string, TensorMeasurement> measured;
    const LinearQuantizer measure = [&](const std::string& name, DenseWeight& w, const float* h) {
      measured[name] = measure_tensor(p + name, w, m.linear_candidates, coder, h, nullptr, probes);
      return LinearResult{};  // the weight stays float: the pass continues in the float model
    };
    quantize_layer_calibrated(fc, layer, measure, act);
    for (const char* n : kLayerLinearNames) m.tensors.push_back(std::move(measured.at(n)));
  }
  progress(fc.n_layers + 1, "lm_head");
  const std::vector<float> norm = source_f32(fsrc, "norm");
  const std::vector<float> h = final_norm_stats(fc, norm, act).hessian();
  const DenseWeight head{fc.vocab_size, fc.dim, source_f32(fsrc, "lm_head")};
  m.tensors.push_back(measure_tensor("lm_head", head, m.linear_candidates, coder, h.data(), nullptr, probes));
  std::vector<float>().swap(act.x);

  for (const auto& [name, shape] : canonical_tensor_shapes(fc))
    if (shape.size() == 1) m.fixed_bytes += shape[0] * 4, ++m.fixed_tensors;
  measure_probe_klds(fsrc, cs, opt.kld_windows, probes, m, opt);
  progress(total_steps, "");
  m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return m;
}

std::string Measurement::to_json() const {
  json tensors_j = json::array();
  for (const TensorMeasurement& t : tensors) {
    json cands = json::array();
    for (const CandidateCost& c : t.candidates) cands.push_back({{"recipe", c.recipe}, {"bytes", c.bytes}, {"error", c.error}});
    tensors_j.push_back({{"name", t.name}, {"rows", t.rows}, {"cols", t.cols}, {"probe", t.probe}, {"probe_kld", t.probe_kld},
                         {"candidates", cands}});
  }
  return json{{"lowbit_measurement", 1},
              {"model", model},
              {"rotation", rotation},
              {"recipe", recipe},
              {"calibration", calibration_json(calibration)},
              {"kld_windows", kld_windows},
              {"linear_candidates", linear_candidates},
              {"embed_candidates", embed_candidates},
              {"fixed_bytes", fixed_bytes},
              {"fixed_tensors", fixed_tensors},
              {"seconds", seconds},
              {"tensors", tensors_j}}
      .dump(1);
}

Measurement Measurement::from_json(const std::string& text, const std::string& path) {
  Measurement m;
  check_json_depth(text, "allocate", path);
  try {
    const json j = json::parse(text);
    if (j.value("lowbit_measurement", 0) != 1) throw Error(kComp, path + ": not a lowbit measurement file (version 1)");
    m.model = j.at("model").get<std::string>();
    m.rotation = j.at("rotation").get<std::string>();
    m.recipe = j.at("recipe").get<std::string>();
    const json& c = j.at("calibration");
    m.calibration.source = c.at("source").get<std::string>();
    m.calibration.windows = c.at("windows").get<int64_t>();
    m.calibration.window_len = c.at("window_len").get<int64_t>();
    m.calibration.seed = c.at("seed").get<uint64_t>();
    m.kld_windows = j.at("kld_windows").get<int64_t>();
    m.linear_candidates = j.at("linear_candidates").get<std::vector<std::string>>();
    m.embed_candidates = j.at("embed_candidates").get<std::vector<std::string>>();
    m.fixed_bytes = j.at("fixed_bytes").get<int64_t>();
    m.fixed_tensors = j.at("fixed_tensors").get<int64_t>();
    m.seconds = j.value("seconds", 0.0);
    for (const json& t : j.at("tensors")) {
      TensorMeasurement tm;
      tm.name = t.at("name").get<std::string>();
      tm.rows = t.at("rows").get<int64_t>();
      tm.cols = t.at("cols").get<int64_t>();
      if (tm.rows < 1 || tm.cols < 1 || tm.rows > (int64_t{1} << 40) / tm.cols)
        throw Error(kComp, path + ": tensor " + tm.name + ": bad shape");
      tm.params = tm.rows * tm.cols;
      tm.probe = t.at("probe").get<int>();
      tm.probe_kld = t.at("probe_kld").get<double>();
      for (const json& cc : t.at("candidates"))
        tm.candidates.push_back({cc.at("recipe").get<std::string>(), cc.at("bytes").get<int64_t>(), cc.at("error").get<double>()});
      if (tm.candidates.empty() || tm.probe < 0 || tm.probe >= static_cast<int>(tm.candidates.size()))
        throw Error(kComp, path + ": tensor " + tm.name + ": bad candidate list or probe index");
      for (const CandidateCost& cc : tm.candidates)
        if (cc.bytes <= 0 || !(cc.error >= 0) || !std::isfinite(cc.error))
          throw Error(kComp, path + ": tensor " + tm.name + ": bad bytes or error for " + cc.recipe);
      if (!(tm.probe_kld >= 0) || !std::isfinite(tm.probe_kld))
        throw Error(kComp, path + ": tensor " + tm.name + ": bad probe_kld");
      m.tensors.push_back(std::move(tm));
    }
  } catch (const json::exception& e) {
    throw Error(kComp, path + ": malformed measurement: " + e.what());
  }
  return m;
}

void check_measurement_matches(const Measurement& m, const ModelSource& src, const MeasureOptions& opt) {
  const RecipePlan plan(opt.recipe, {});
  auto mismatch = [&](const std::string& what) {
    throw Error(kComp, "the measurement was made with another " + what + "; measure again (another --measurement path)");
  };
  if (m.recipe != plan.to_string()) mismatch("recipe (" + m.recipe + ")");
  if (std::make_pair(m.linear_candidates, m.embed_candidates) != resolved_candidates(opt, plan))
    mismatch("candidate list");
  CalibrationOptions cal = opt.calibration;
  if (cal.source.empty()) cal.source = default_calibration_source();
  cal.window_len = std::min(cal.window_len, src.config.max_seq_len);
  if (m.calibration.seed != cal.seed || m.calibration.windows != cal.windows ||
      m.calibration.window_len != cal.window_len || m.calibration.source != cal.source || m.kld_windows != opt.kld_windows)
    mismatch("calibration setting (--calib, --calib-windows, --calib-len, --seed or --kld-windows)");
  LlamaConfig c = src.config;
  c.tie_embeddings = false;  // the measurement always has its own lm_head
  std::vector<std::pair<std::string, int64_t>> expected, got;
  for (const auto& [name, shape] : canonical_tensor_shapes(c))
    if (shape.size() == 2) expected.emplace_back(name, shape[0] * shape[1]);
  for (const TensorMeasurement& t : m.tensors) got.emplace_back(t.name, t.params);
  std::sort(expected.begin(), expected.end());
  std::sort(got.begin(), got.end());
  if (expected != got) mismatch("model (its tensors differ)");
}

Allocation allocate_bits(const Measurement& m, int64_t budget) {
  const size_t T = m.tensors.size();
  if (T == 0) throw Error(kComp, "empty measurement");
  int64_t min_bytes = 0;  // candidate bytes are what each adds to the file
  for (const TensorMeasurement& t : m.tensors)
    min_bytes += std::min_element(t.candidates.begin(), t.candidates.end(),
                                  [](const CandidateCost& a, const CandidateCost& b) { return a.bytes < b.bytes; })
                     ->bytes;
  if (budget < min_bytes)
    throw Error(kComp, "a budget of " + std::to_string(budget) + " bytes for the quantized tensors is below the " +
                           std::to_string(min_bytes) + " bytes of the smallest candidates");
  const int64_t unit = std::max<int64_t>(1, (budget + 16383) / 16384);
  const int64_t cap = budget / unit;
  const double kInf = std::numeric_limits<double>::infinity();
  std::vector<double> dp(static_cast<size_t>(cap + 1), 0.0), next(dp.size());
  std::vector<std::vector<int16_t>> choice(T, std::vector<int16_t>(dp.size(), -1));
  auto units = [&](int64_t bytes) { return (bytes + unit - 1) / unit; };
  for (size_t t = 0; t < T; ++t) {
    const TensorMeasurement& tm = m.tensors[t];
    std::fill(next.begin(), next.end(), kInf);
    for (size_t c = 0; c < tm.candidates.size(); ++c) {
      const int64_t w = units(tm.candidates[c].bytes);
      const double loss = tm.predicted_kld(c);
      for (int64_t b = w; b <= cap; ++b) {
        const double v = dp[b - w] + loss;
        if (v < next[b]) next[b] = v, choice[t][b] = static_cast<int16_t>(c);
      }
    }
    dp.swap(next);
  }
  if (!std::isfinite(dp[cap]))  // rounding to units can lose a budget that fits exactly
    throw Error(kComp, "a budget of " + std::to_string(budget) + " bytes is too tight for the candidates' sizes");
  Allocation a;
  a.budget_bytes = budget;
  a.rows.resize(T);
  int64_t b = cap;
  for (size_t t = T; t-- > 0;) {
    const TensorMeasurement& tm = m.tensors[t];
    const int c = choice[t][b];
    LOWBIT_ASSERT(c >= 0);
    a.rows[t] = {tm.name, tm.candidates[c].recipe, tm.params, tm.candidates[c].bytes, tm.predicted_kld(c)};
    b -= units(tm.candidates[c].bytes);
  }
  for (const AllocationRow& r : a.rows) {
    a.tensor_bytes += r.bytes;
    a.predicted_kld += r.predicted_kld;
  }
  return a;
}

Measurement load_or_measure(const std::string& path, const ModelSource& src, const Tokenizer& tokenizer,
                            const MeasureOptions& opt, bool* reused) {
  if (reused) *reused = false;
  if (!path.empty() && std::filesystem::exists(path)) {
    Measurement m = Measurement::from_json(read_text_file(path), path);
    check_measurement_matches(m, src, opt);
    if (reused) *reused = true;
    return m;
  }
  Measurement m = measure_model(src, tokenizer, opt);
  if (!path.empty()) {
    AtomicFile f(path);
    f.write(m.to_json());
    f.commit();
  }
  return m;
}

int64_t target_bytes_for_bpw(const LlamaConfig& config, double bpw) {
  LlamaConfig c = config;
  c.tie_embeddings = false;
  int64_t params = 0;
  for (const auto& [name, shape] : canonical_tensor_shapes(c)) params += checked_numel(shape, kComp, name);
  if (!(bpw > 0) || bpw * static_cast<double>(params) / 8.0 > 9e18)
    throw Error(kComp, "bits per weight must be positive and the size representable");
  return static_cast<int64_t>(bpw * static_cast<double>(params) / 8.0);
}

Allocation allocate_for_file(const Measurement& m, const Tokenizer& tokenizer, int64_t target) {
  const int64_t overhead = lowbit_file_overhead(m, static_cast<int64_t>(tokenizer.to_blob().bytes.size()));
  if (target <= overhead)
    throw Error(kComp, "a target of " + std::to_string(target) + " bytes leaves nothing for the weights (the file's "
                       "other contents take about " + std::to_string(overhead) + ")");
  return allocate_bits(m, target - overhead);
}

int64_t lowbit_file_overhead(const Measurement& m, int64_t tokenizer_bytes) {
  // The fixed tensors as plain ones, the tokenizer blob (one part), and 2 KiB for the config
  // (< 400 bytes), tokenizer kind, recipe and the other metadata keys, plus the source path.
  // A fixed tensor is one plain part (names < 30 characters, recipe "f32").
  const int64_t per_fixed = 2 * 30 + kPartEntryBytes + kPadEntryBytes + 63 + kIndexBytes + 6;
  return m.fixed_bytes + m.fixed_tensors * per_fixed + tokenizer_bytes + kPartEntryBytes + kPadEntryBytes + 63 +
         2048 + 2 * static_cast<int64_t>(m.model.size());
}

int64_t container_bytes(const std::string& name, const std::string& recipe, int64_t rows, int64_t cols) {
  const Recipe r = parse_recipe(recipe);
  std::vector<int64_t> parts;
  if (!r.spec.quantized()) {
    parts.push_back(rows * cols * (r.spec.kind == FormatKind::F32 ? 4 : 2));
  } else {
    QuantizedMatrix shape;  // for its layout helpers only
    shape.spec = r.spec;
    shape.rows = rows;
    shape.cols = cols;
    const int64_t groups = rows * shape.groups_per_row();
    parts.push_back(rows * shape.row_code_bytes());
    if (r.spec.double_quant) {
      const int64_t blocks = (groups + 255) / 256;
      parts.insert(parts.end(), {groups, 4 * blocks, 4 * blocks});
    } else {
      parts.push_back(2 * groups);
    }
    if (r.spec.asym) parts.push_back(groups);
    if (r.low_rank > 0) parts.insert(parts.end(), {2 * rows * r.low_rank, 2 * r.low_rank * cols});  // lr_b, lr_a
  }
  const int64_t name_len = static_cast<int64_t>(name.size());
  int64_t bytes = name_len + 2 * static_cast<int64_t>(recipe.size()) + kIndexBytes + (r.low_rank > 0 ? kLowRankKeyBytes : 0);
  for (int64_t size : parts) {
    bytes += name_len + kPartEntryBytes;
    if (size % 64 != 0) bytes += kPadEntryBytes + 63;
  }
  return bytes;
}

}  // namespace lowbit
