#include "export/gguf_calibrated.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "base/error.h"
#include "base/half.h"
#include "base/parallel.h"
#include "io/ggml_quants.h"
#include "pipeline/calibrated_layer.h"
#include "pipeline/layer_source.h"

namespace lowbit {

namespace {

// An Error's message without its "[component] " prefix.
std::string message_of(const Error& e) {
  const std::string what = e.what();
  const std::string prefix = "[" + e.component() + "] ";
  return what.starts_with(prefix) ? what.substr(prefix.size()) : what;
}

// The grid every weight's block header defines, for GPTQ (one GgmlSubGrid per sub-block).
class GgmlRowsGrid final : public WeightGrid {
 public:
  GgmlRowsGrid(GgmlType t, const uint8_t* bytes, int64_t rows, int64_t cols)
      : layout_(ggml_block_layout(ggml_dtype(t))), subs_per_row_(cols / layout_.sub) {
    const DType dt = ggml_dtype(t);
    const int64_t blocks = cols / layout_.elems, per_block = layout_.elems / layout_.sub;
    grids_.resize(static_cast<size_t>(rows * subs_per_row_));
    parallel_for(rows, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r)
        for (int64_t b = 0; b < blocks; ++b)
          ggml_block_grids(dt, bytes + (r * blocks + b) * layout_.bytes,
                           &grids_[r * subs_per_row_ + b * per_block]);
    });
  }
  uint8_t nearest(int64_t row, int64_t col, float v) const override {
    return ggml_nearest_code(layout_, at(row, col), v);
  }
  float value(int64_t row, int64_t col, uint8_t q) const override {
    return ggml_code_value(layout_, at(row, col), q);
  }

 private:
  const GgmlSubGrid& at(int64_t row, int64_t col) const {
    return grids_[row * subs_per_row_ + col / layout_.sub];
  }
  const GgmlBlockLayout& layout_;
  int64_t subs_per_row_;
  std::vector<GgmlSubGrid> grids_;
};

// The block search's weights for one row: diag(H)_j · sqrt(σ² + x_j²) with σ² = 2 · mean x² of
// the block (llama.cpp's weighting for its importance-matrix quantization: besides the input
// channel's energy, larger weights are fitted more closely).
void block_importance(GgmlType t, const float* x, int64_t cols, const float* hdiag, float* out) {
  const int64_t block = ggml_block_elems(t);
  for (int64_t b = 0; b < cols; b += block) {
    double sum_sq = 0;
    for (int64_t j = b; j < b + block; ++j) sum_sq += static_cast<double>(x[j]) * x[j];
    const double sigma2 = 2.0 * sum_sq / static_cast<double>(block);
    for (int64_t j = b; j < b + block; ++j)
      out[j] = static_cast<float>(hdiag[j] * std::sqrt(sigma2 + static_cast<double>(x[j]) * x[j]));
  }
}

}  // namespace

// Decodes rows of type t back to fp32 (what llama.cpp will compute with).
std::vector<float> decode_ggml_matrix(GgmlType t, const std::vector<uint8_t>& bytes, int64_t rows, int64_t cols) {
  TensorView v;
  v.name = "encoded";
  v.dtype = ggml_dtype(t);
  v.shape = {rows, cols};
  v.data = bytes.data();
  v.nbytes = bytes.size();
  return to_f32(v);
}

GgufMethod parse_gguf_method(std::string_view s) {
  std::string low(s);
  for (char& c : low) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (low == "rtn") return GgufMethod::Plain;
  if (low == "imatrix") return GgufMethod::Imatrix;
  if (low == "gptq") return GgufMethod::Gptq;
  throw Error("export", "unknown --method '" + std::string(s) + "' (expected rtn, imatrix or gptq)");
}

const char* gguf_method_name(GgufMethod m) {
  switch (m) {
    case GgufMethod::Plain: return "rtn";
    case GgufMethod::Imatrix: return "imatrix";
    case GgufMethod::Gptq: return "gptq";
  }
  return "?";
}

std::vector<uint8_t> encode_ggml_matrix(GgmlType t, const float* w, int64_t rows, int64_t cols,
                                        const float* h, GgufMethod method, const GptqOptions& gptq) {
  LOWBIT_ASSERT(method == GgufMethod::Plain || h != nullptr);
  const int64_t row_bytes = ggml_row_bytes(t, cols);
  const bool weighted = method != GgufMethod::Plain && is_block_type(t);
  std::vector<float> hdiag;
  if (weighted)
    for (int64_t c = 0; c < cols; ++c) hdiag.push_back(std::max(0.0f, h[c * cols + c]));
  std::vector<uint8_t> out(static_cast<size_t>(rows * row_bytes));
  parallel_for(rows, [&](int64_t begin, int64_t end) {
    std::vector<float> importance(static_cast<size_t>(weighted ? cols : 0));
    for (int64_t r = begin; r < end; ++r) {
      if (weighted) block_importance(t, w + r * cols, cols, hdiag.data(), importance.data());
      encode_ggml_row(t, w + r * cols, cols, out.data() + r * row_bytes, weighted ? importance.data() : nullptr);
    }
  });
  if (method != GgufMethod::Gptq || !is_block_type(t)) return out;

  const GgmlRowsGrid grid(t, out.data(), rows, cols);
  const std::vector<uint8_t> codes = gptq_grid_codes(w, rows, cols, h, grid, gptq);
  const DType dt = ggml_dtype(t);
  const GgmlBlockLayout& l = ggml_block_layout(dt);
  parallel_for(rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r)
      for (int64_t b = 0; b < cols / l.elems; ++b)
        ggml_pack_codes(dt, out.data() + r * row_bytes + b * l.bytes, &codes[r * cols + b * l.elems]);
  });
  return out;
}

struct CalibratedGgufEncoder::State {
  const ModelSource& src;
  GgufMethod method;
  std::map<std::string, GgmlType> types;
  Progress progress;
  LlamaConfig config;
  CalibrationSet calibration;
  Activations act;
  int64_t next_layer = 0;
  std::map<std::string, std::vector<uint8_t>> ready;  // encoded, not yet handed out
  std::vector<CalibratedTensorReport> reports;

  void report(int64_t layer, const std::string& what) const {
    if (progress) progress(layer, config.n_layers, what);
  }

  // Encodes one linear against h and leaves its decoded values in w (what later passes see).
  // Errors name the tensor.
  void encode(const std::string& canonical, DenseWeight& w, const float* h) {
    const GgmlType t = types.at(canonical);
    for (float x : w.w)
      if (!std::isfinite(x))
        throw Error("export", src.path + ": tensor '" + canonical + "' has a non-finite value");
    std::vector<uint8_t> bytes;
    try {
      bytes = encode_ggml_matrix(t, w.w.data(), w.rows, w.cols, h, method);
    } catch (const Error& e) {
      throw Error(e.component(), src.path + ": tensor '" + canonical + "': " + message_of(e));
    }
    std::vector<float> back = decode_ggml_matrix(t, bytes, w.rows, w.cols);
    LinearResult r;
    measure_linear_error(w, back.data(), h, r);
    reports.push_back({canonical, t, r.rel_output_error});
    w.w = std::move(back);
    ready[canonical] = std::move(bytes);
  }

  void run_layer() {
    const int64_t l = next_layer;
    const std::string p = "layers." + std::to_string(l) + ".";
    FloatLayer layer = load_float_layer(src, config, p);
    const LinearQuantizer quantize = [&](const std::string& name, DenseWeight& w, const float* h) {
      encode(p + name, w, h);
      return LinearResult{};
    };
    quantize_layer_calibrated(config, layer, quantize, act,
                              [&](const std::string& stage) { report(l, p + stage); });
    ++next_layer;
  }

  void run_head() {
    report(config.n_layers, "lm_head");
    const std::vector<float> norm = source_f32(src, "norm");
    const std::vector<float> h = final_norm_stats(config, norm, act).hessian();
    DenseWeight head{config.vocab_size, config.dim, source_f32(src, "lm_head")};
    encode("lm_head", head, h.data());
    report(config.n_layers, "");
  }
};

CalibratedGgufEncoder::CalibratedGgufEncoder(const ModelSource& src, const Tokenizer& tok, GgufMethod method,
                                             const CalibrationOptions& calibration,
                                             std::map<std::string, GgmlType> types, Progress progress)
    : s_(new State{src, method, std::move(types), std::move(progress), src.config, {}, {}, 0, {}, {}}) {
  CalibrationOptions co = calibration;
  if (co.source.empty()) co.source = default_calibration_source();
  co.window_len = std::min(co.window_len, s_->config.max_seq_len);
  s_->calibration = load_calibration(tok, co);
  s_->report(0, "embeddings");
  s_->act = embed_windows(source_f32(src, "embed_tokens"), s_->config, s_->calibration);
}

CalibratedGgufEncoder::~CalibratedGgufEncoder() = default;

std::vector<uint8_t> CalibratedGgufEncoder::bytes(const std::string& canonical) {
  State& s = *s_;
  if (canonical == "lm_head") {
    while (s.next_layer < s.config.n_layers) s.run_layer();
    s.run_head();
  } else {
    LOWBIT_ASSERT(canonical.starts_with("layers."));
    const int64_t layer = std::stoll(canonical.substr(7));
    while (s.next_layer <= layer) s.run_layer();
  }
  auto it = s.ready.find(canonical);
  LOWBIT_ASSERT(it != s.ready.end() && "each calibrated tensor is asked for once, in order");
  std::vector<uint8_t> out = std::move(it->second);
  s.ready.erase(it);
  return out;
}

int64_t CalibratedGgufEncoder::calibration_windows() const {
  return static_cast<int64_t>(s_->calibration.windows.size());
}
int64_t CalibratedGgufEncoder::calibration_window_len() const { return s_->calibration.window_len; }
const std::vector<CalibratedTensorReport>& CalibratedGgufEncoder::reports() const { return s_->reports; }

}  // namespace lowbit
