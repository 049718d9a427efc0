#include "export/gguf_allocation.h"

#include "base/error.h"

namespace lowbit {

namespace {

// Upper bound of a tensor's header entry (name < 48 bytes, up to 2 dims, type, offset) and of
// its alignment padding (32-byte alignment).
constexpr int64_t kTensorOverhead = 8 + 48 + 4 + 2 * 8 + 4 + 8 + 31;

GgmlType candidate_type(const std::string& candidate) {
  try {
    return parse_ggml_type(candidate);
  } catch (const Error&) {
    throw Error("export", "unknown GGUF candidate type '" + candidate + "' (expected " + ggml_type_list() + ")");
  }
}

}  // namespace

std::vector<std::string> default_gguf_linear_candidates() {
  return {"Q3_K", "Q4_0", "IQ4_NL", "Q4_K", "Q5_0", "Q5_K", "Q6_K", "Q8_0"};
}

std::vector<std::string> default_gguf_embed_candidates() {
  std::vector<std::string> out = default_gguf_linear_candidates();
  out.push_back("F16");
  return out;
}

CandidateCoder gguf_coder(GgufMethod method) {
  return [method](const std::string&, const std::string& candidate, const DenseWeight& w,
                  const float* h) -> std::optional<CodedTensor> {
    const GgmlType t = candidate_type(candidate);
    if (w.cols % ggml_block_elems(t) != 0) return std::nullopt;
    const GgufMethod m = h != nullptr ? method : GgufMethod::Plain;
    const std::vector<uint8_t> bytes = encode_ggml_matrix(t, w.w.data(), w.rows, w.cols, h, m);
    CodedTensor c;
    c.bytes = static_cast<int64_t>(bytes.size()) + kTensorOverhead;
    c.values = decode_ggml_matrix(t, bytes, w.rows, w.cols);
    return c;
  };
}

MeasureOptions gguf_measure_options(GgufMethod method, std::vector<std::string> linear_candidates,
                                    std::vector<std::string> embed_candidates) {
  MeasureOptions mo;
  const std::string alg = method == GgufMethod::Gptq ? "gptq" : method == GgufMethod::Imatrix ? "imatrix" : "rtn";
  mo.recipe = alg + ":int4:g128";
  mo.linear_candidates = linear_candidates.empty() ? default_gguf_linear_candidates() : std::move(linear_candidates);
  mo.embed_candidates = embed_candidates.empty() ? default_gguf_embed_candidates() : std::move(embed_candidates);
  for (const auto* list : {&mo.linear_candidates, &mo.embed_candidates})
    for (const std::string& c : *list) candidate_type(c);  // refuse unknown types before any work
  mo.coder = gguf_coder(method);
  return mo;
}

Allocation allocate_gguf(const Measurement& m, const ModelSource& src, const Tokenizer& tok, int64_t target,
                         GgufExportOptions& opt) {
  // What the file holds beyond the allocated tensors' estimated costs: the header, metadata,
  // vocabulary and norms, measured with every tensor at its first candidate.
  int64_t first_costs = 0;
  for (const TensorMeasurement& t : m.tensors) {
    opt.tensor_types[t.name] = parse_ggml_type(t.candidates.front().recipe);
    first_costs += t.candidates.front().bytes;
  }
  int64_t budget = target - std::max<int64_t>(0, gguf_export_size(src, tok, opt) - first_costs);
  for (int attempt = 0; attempt < 8; ++attempt) {
    if (budget <= 0) break;
    const Allocation a = allocate_bits(m, budget);
    for (const AllocationRow& r : a.rows) opt.tensor_types[r.name] = parse_ggml_type(r.recipe);
    const int64_t size = gguf_export_size(src, tok, opt);
    if (size <= target) return a;
    budget -= size - target;
  }
  throw Error("allocate", "no GGUF type plan fits in " + std::to_string(target) + " bytes");
}

}  // namespace lowbit
