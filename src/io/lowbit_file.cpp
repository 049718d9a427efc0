#include "io/lowbit_file.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/half.h"
#include "base/json_depth.h"
#include "base/mapped_file.h"
#include "formats/double_quant.h"
#include "formats/plain.h"
#include "formats/registry.h"
#include "io/safetensors.h"
#include "io/safetensors_writer.h"

namespace lowbit {

namespace {

using json = nlohmann::json;
constexpr const char* kComp = "lowbit";
constexpr int64_t kAlign = 64;

template <typename T>
std::vector<uint8_t> as_bytes(const std::vector<T>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(T));
  if (!b.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

json config_to_json(const LlamaConfig& c) {
  return {{"architecture", c.architecture}, {"dim", c.dim}, {"hidden_dim", c.hidden_dim},
          {"n_layers", c.n_layers}, {"n_heads", c.n_heads}, {"n_kv_heads", c.n_kv_heads},
          {"head_dim", c.head_dim}, {"vocab_size", c.vocab_size}, {"max_seq_len", c.max_seq_len},
          {"norm_eps", c.norm_eps}, {"rope_theta", c.rope_theta},
          {"rope_style", c.rope_style == RopeStyle::RotateHalf ? "rotate-half" : "interleaved"},
          {"tie_embeddings", c.tie_embeddings}, {"attention_bias", c.attention_bias},
          {"bos_id", c.bos_id}, {"eos_id", c.eos_id}};
}

// Typed fields of lowbit.config: integers must be JSON integers within int32 range (1.5 or
// 1e20 are refused rather than truncated), numbers finite, flags booleans.
int64_t int_field(const json& j, const char* key, const std::string& where) {
  const json& v = j.at(key);
  const bool fits = v.is_number_unsigned() ? v.get<uint64_t>() <= INT32_MAX
                    : v.is_number_integer() && v.get<int64_t>() >= INT32_MIN && v.get<int64_t>() <= INT32_MAX;
  if (!fits) throw Error(kComp, where + ": lowbit.config '" + key + "' is not a 32-bit integer");
  return v.get<int64_t>();
}

double num_field(const json& j, const char* key, const std::string& where) {
  const json& v = j.at(key);
  if (!v.is_number() || !std::isfinite(v.get<double>()))
    throw Error(kComp, where + ": lowbit.config '" + key + "' is not a finite number");
  return v.get<double>();
}

bool bool_field(const json& j, const char* key, const std::string& where) {
  const json& v = j.at(key);
  if (!v.is_boolean()) throw Error(kComp, where + ": lowbit.config '" + key + "' is not true or false");
  return v.get<bool>();
}

LlamaConfig config_from_json(const json& j, const std::string& where) {
  try {
    LlamaConfig c;
    c.architecture = j.at("architecture").get<std::string>();
    c.dim = int_field(j, "dim", where);
    c.hidden_dim = int_field(j, "hidden_dim", where);
    c.n_layers = int_field(j, "n_layers", where);
    c.n_heads = int_field(j, "n_heads", where);
    c.n_kv_heads = int_field(j, "n_kv_heads", where);
    c.head_dim = int_field(j, "head_dim", where);
    c.vocab_size = int_field(j, "vocab_size", where);
    c.max_seq_len = int_field(j, "max_seq_len", where);
    c.norm_eps = static_cast<float>(num_field(j, "norm_eps", where));
    c.rope_theta = static_cast<float>(num_field(j, "rope_theta", where));
    const std::string rope = j.at("rope_style");
    if (rope != "rotate-half" && rope != "interleaved") throw Error(kComp, where + ": bad rope_style");
    c.rope_style = rope == "rotate-half" ? RopeStyle::RotateHalf : RopeStyle::Interleaved;
    c.tie_embeddings = bool_field(j, "tie_embeddings", where);
    c.attention_bias = bool_field(j, "attention_bias", where);
    c.bos_id = int_field(j, "bos_id", where);
    c.eos_id = int_field(j, "eos_id", where);
    validate_llama_config(c, where);
    return c;
  } catch (const json::exception& e) {
    throw Error(kComp, where + ": bad lowbit.config: " + e.what());
  }
}

std::vector<uint8_t> plain_bytes(const LowbitTensorIn& t) {
  const FormatKind kind = t.plain_dtype == "F16" ? FormatKind::F16
                          : t.plain_dtype == "BF16" ? FormatKind::BF16 : FormatKind::F32;
  std::vector<uint8_t> out(t.values.size() * static_cast<size_t>(plain_element_bytes(kind)));
  plain_store_row(kind, t.values.data(), static_cast<int64_t>(t.values.size()), out.data());
  return out;
}

void add_quantized(SafetensorsWriter& w, const std::string& name, const QuantizedMatrix& m) {
  const int64_t groups = m.groups_per_row();
  w.add(name + ".codes", "U8", {m.rows, m.row_code_bytes()}, m.codes);
  if (!m.spec.double_quant) {
    w.add(name + ".scales", m.spec.scale_type == ScaleType::BF16 ? "BF16" : "F16", {m.rows, groups},
          as_bytes(m.scales));
  } else {
    w.add(name + ".scale_codes", "U8", {m.rows * groups}, m.scale_codes);
    w.add(name + ".dq_scale", "F32", {static_cast<int64_t>(m.dq_scale.size())}, as_bytes(m.dq_scale));
    w.add(name + ".dq_offset", "F32", {static_cast<int64_t>(m.dq_offset.size())}, as_bytes(m.dq_offset));
  }
  if (m.spec.asym) w.add(name + ".zeros", "U8", {m.rows, groups}, m.zeros);
}

std::vector<uint8_t> f16_bytes(const std::vector<float>& v) {
  std::vector<uint8_t> out(v.size() * 2);
  plain_store_row(FormatKind::F16, v.data(), static_cast<int64_t>(v.size()), out.data());
  return out;
}

void add_correction(SafetensorsWriter& w, const std::string& name, const LowRankFactors& c) {
  LOWBIT_ASSERT(c.b.size() == static_cast<size_t>(c.rows * c.rank) && c.a.size() == static_cast<size_t>(c.rank * c.cols));
  w.add(name + ".lr_b", "F16", {c.rows, c.rank}, f16_bytes(c.b));
  w.add(name + ".lr_a", "F16", {c.rank, c.cols}, f16_bytes(c.a));
}

}  // namespace

namespace {

// Adds one tensor's parts to the writer and its entry to the index.
void add_tensor(SafetensorsWriter& w, json& index, const LowbitTensorIn& t) {
  if (t.quantized) {
    LOWBIT_ASSERT(t.matrix != nullptr);
    add_quantized(w, t.name, *t.matrix);
    index[t.name] = {{"format", t.matrix->spec.to_string()}, {"shape", {t.matrix->rows, t.matrix->cols}},
                     {"recipe", t.recipe}};
    if (t.input_hadamard >= 0) index[t.name]["input_hadamard"] = static_cast<uint64_t>(t.input_hadamard);
    if (t.correction) {
      LOWBIT_ASSERT(t.correction->rows == t.matrix->rows && t.correction->cols == t.matrix->cols);
      add_correction(w, t.name, *t.correction);
      index[t.name]["low_rank"] = t.correction->rank;
    }
  } else {
    w.add(t.name, t.plain_dtype, t.shape, plain_bytes(t));
    index[t.name] = {{"format", t.plain_dtype == "F32" ? "f32" : t.plain_dtype == "F16" ? "f16" : "bf16"},
                     {"shape", t.shape}, {"recipe", t.recipe}};
    if (t.input_hadamard >= 0) index[t.name]["input_hadamard"] = static_cast<uint64_t>(t.input_hadamard);
  }
}

// The tokenizer blob and the metadata, after the last tensor.
void finish(SafetensorsWriter& w, const json& index, const LowbitModelIn& model) {
  if (!model.tokenizer.kind.empty())
    w.add("tokenizer.blob", "U8", {static_cast<int64_t>(model.tokenizer.bytes.size())},
          model.tokenizer.bytes.data(), model.tokenizer.bytes.size());
  w.add_metadata("format", "lowbit");
  w.add_metadata("lowbit.version", kLowbitVersion);
  w.add_metadata("lowbit.config", config_to_json(model.config).dump());
  w.add_metadata("lowbit.tensors", index.dump());
  w.add_metadata("lowbit.tokenizer", json{{"kind", model.tokenizer.kind}}.dump());
  w.add_metadata("lowbit.recipe", model.recipe);
  w.add_metadata("lowbit.source", model.source);
  if (!model.rotation.empty()) w.add_metadata("lowbit.rotation", model.rotation);
}

}  // namespace

void write_lowbit(const std::string& path, const LowbitModelIn& model) {
  SafetensorsWriter w(kAlign);
  json index = json::object();
  for (const LowbitTensorIn& t : model.tensors) add_tensor(w, index, t);
  finish(w, index, model);
  w.write(path);
}

struct LowbitWriter::State {
  std::string path;
  LowbitModelIn model;  // without tensors
  SafetensorsWriter writer{kAlign};
  json index = json::object();
};

LowbitWriter::LowbitWriter(std::string path, const LowbitModelIn& model) : s_(std::make_unique<State>()) {
  s_->path = std::move(path);
  s_->model.config = model.config;
  s_->model.recipe = model.recipe;
  s_->model.source = model.source;
  s_->model.rotation = model.rotation;
  s_->model.tokenizer = model.tokenizer;
  s_->writer.spill_beside(s_->path);
}

LowbitWriter::~LowbitWriter() = default;

void LowbitWriter::add(const LowbitTensorIn& t) { add_tensor(s_->writer, s_->index, t); }

void LowbitWriter::commit() {
  finish(s_->writer, s_->index, s_->model);
  s_->writer.write(s_->path);
}

namespace {

// Bytes of part `name` of `file`, checked to be exactly `expected` bytes.
const uint8_t* part(const SafetensorsFile& f, const std::string& name, size_t expected) {
  auto it = f.entries().find(name);
  if (it == f.entries().end()) throw Error(kComp, f.path() + ": missing part '" + name + "'");
  if (it->second.view.nbytes != expected)
    throw Error(kComp, f.path() + ": part '" + name + "' has " + std::to_string(it->second.view.nbytes) +
                           " bytes, expected " + std::to_string(expected));
  return it->second.view.data;
}

template <typename T>
void read_part(const SafetensorsFile& f, const std::string& name, std::vector<T>& out) {
  const uint8_t* p = part(f, name, out.size() * sizeof(T));
  if (out.empty()) return;
  std::memcpy(out.data(), p, out.size() * sizeof(T));
  release_mapped_range(p, out.size() * sizeof(T));  // copied: the mapping need not keep it resident
}

// Every part's byte count is checked against the file before anything is allocated, so an index
// entry claiming a huge shape fails on the bytes actually present.
void check_parts(const SafetensorsFile& f, const std::string& name, const QuantSpec& spec, int64_t rows,
                 int64_t cols) {
  const std::string where = f.path() + ": tensor '" + name + "'";
  if (rows < 1 || cols < 1) throw Error(kComp, where + ": empty shape [" + std::to_string(rows) + ", " + std::to_string(cols) + "]");
  if (cols % vector_dim(spec) != 0)
    throw Error(kComp, where + ": " + spec.to_string() + " needs rows of a multiple of " + std::to_string(vector_dim(spec)) + " weights");
  QuantizedMatrix shape;  // sizes only
  shape.spec = spec;
  shape.rows = rows;
  shape.cols = cols;
  const auto bytes = [](int64_t n) { return static_cast<size_t>(n); };
  const int64_t groups = rows * shape.groups_per_row();
  part(f, name + ".codes", bytes(rows * shape.row_code_bytes()));
  if (!spec.double_quant) {
    part(f, name + ".scales", bytes(groups * 2));
  } else {
    part(f, name + ".scale_codes", bytes(groups));
    part(f, name + ".dq_scale", bytes(dq_blocks(groups) * 4));
    part(f, name + ".dq_offset", bytes(dq_blocks(groups) * 4));
  }
  if (spec.asym) part(f, name + ".zeros", bytes(groups));
}

QuantizedMatrix read_quantized(const SafetensorsFile& f, const std::string& name, const QuantSpec& spec,
                               int64_t rows, int64_t cols) {
  check_parts(f, name, spec, rows, cols);
  QuantizedMatrix m = make_quantized_matrix(spec, rows, cols);
  read_part(f, name + ".codes", m.codes);
  if (!spec.double_quant) read_part(f, name + ".scales", m.scales);
  else {
    read_part(f, name + ".scale_codes", m.scale_codes);
    read_part(f, name + ".dq_scale", m.dq_scale);
    read_part(f, name + ".dq_offset", m.dq_offset);
  }
  if (spec.asym) read_part(f, name + ".zeros", m.zeros);
  with_error_context(f.path() + ": tensor '" + name + "'", [&] { validate(m); });
  return m;
}

// A correction's parts, checked against the matrix's shape before anything is allocated.
LowRankFactors read_correction(const SafetensorsFile& f, const std::string& name, const json& rank, int64_t rows,
                               int64_t cols) {
  const std::string where = f.path() + ": tensor '" + name + "'";
  if (!rank.is_number_integer() || rank.get<int64_t>() < 1 || rank.get<int64_t>() > std::min(rows, cols))
    throw Error(kComp, where + ": low_rank must be an integer in [1, " + std::to_string(std::min(rows, cols)) + "]");
  LowRankFactors c;
  c.rank = rank.get<int64_t>(), c.rows = rows, c.cols = cols;
  auto read_f16 = [&](const std::string& part_name, int64_t n) {
    std::vector<float> out(static_cast<size_t>(n));
    plain_load_row(FormatKind::F16, part(f, part_name, static_cast<size_t>(n) * 2), n, out.data());
    if (!std::all_of(out.begin(), out.end(), [](float v) { return std::isfinite(v); }))
      throw Error(kComp, where + ": part '" + part_name + "' holds a non-finite value");
    return out;
  };
  part(f, name + ".lr_a", static_cast<size_t>(c.rank * cols) * 2);  // both sizes checked first
  c.b = read_f16(name + ".lr_b", rows * c.rank);
  c.a = read_f16(name + ".lr_a", c.rank * cols);
  return c;
}

json parse_meta(const SafetensorsFile& f, const char* key) {
  auto it = f.metadata().find(key);
  if (it == f.metadata().end()) throw Error(kComp, f.path() + ": metadata has no " + key);
  check_json_depth(it->second, kComp, f.path() + ": metadata " + key);
  json j = json::parse(it->second, nullptr, false);
  if (j.is_discarded()) throw Error(kComp, f.path() + ": metadata " + key + " is not valid JSON");
  return j;
}

void load_tensor(ModelSource& src, const SafetensorsFile& f, const std::string& name, const json& info) {
  if (!info.is_object() || !info.contains("format") || !info.contains("shape") || !info["format"].is_string())
    throw Error(kComp, f.path() + ": tensor '" + name + "' entry needs format and shape");
  const QuantSpec spec = parse_quant_spec(info["format"].get<std::string>());
  if (!info["shape"].is_array() || info["shape"].size() > 8)
    throw Error(kComp, f.path() + ": tensor '" + name + "' shape is not an array of at most 8 dimensions");
  std::vector<int64_t> shape;
  for (const json& d : info["shape"]) {
    if (!d.is_number_integer()) throw Error(kComp, f.path() + ": tensor '" + name + "' shape has a non-integer dimension");
    shape.push_back(d.get<int64_t>());
  }
  src.recipes[name] = info.value("recipe", "");
  if (info.contains("input_hadamard")) {
    const json& seed = info["input_hadamard"];
    if (!seed.is_number_unsigned() || shape.size() != 2)
      throw Error(kComp, f.path() + ": tensor '" + name + "': input_hadamard must be an unsigned seed on a matrix");
    src.input_hadamard[name] = seed.get<uint64_t>();
  }
  if (!spec.quantized()) {
    if (info.contains("low_rank"))
      throw Error(kComp, f.path() + ": tensor '" + name + "': low_rank corrections belong to quantized matrices");
    const TensorView& v = f.tensor(name);
    if (v.shape != shape) throw Error(kComp, f.path() + ": tensor '" + name + "' shape disagrees with its index");
    src.tensors[name] = v;
    return;
  }
  if (shape.size() != 2) throw Error(kComp, f.path() + ": quantized tensor '" + name + "' must be 2-D");
  checked_numel(shape, kComp, f.path() + ": tensor '" + name + "'");
  src.quantized.emplace(name, read_quantized(f, name, spec, shape[0], shape[1]));
  if (info.contains("low_rank")) src.corrections.emplace(name, read_correction(f, name, info["low_rank"], shape[0], shape[1]));
}

}  // namespace

bool is_lowbit_file(const std::string& path) {
  try {
    SafetensorsFile f(path);
    return f.metadata().count("lowbit.version") != 0;
  } catch (const Error&) {
    return false;
  }
}

ModelSource load_lowbit_model(const std::string& path) {
  auto file = std::make_shared<const SafetensorsFile>(path);
  const SafetensorsFile& f = *file;
  auto version = f.metadata().find("lowbit.version");
  if (version == f.metadata().end()) throw Error(kComp, path + ": not a .lowbit file (no lowbit.version)");
  if (version->second != kLowbitVersion)
    throw Error(kComp, path + ": .lowbit version " + version->second + " is not supported (this build reads " +
                           kLowbitVersion + ")");
  ModelSource src;
  src.format = "lowbit";
  src.path = path;
  src.config = config_from_json(parse_meta(f, "lowbit.config"), path);
  const json index = parse_meta(f, "lowbit.tensors");
  if (!index.is_object()) throw Error(kComp, path + ": lowbit.tensors is not an object");
  try {
    for (auto& [name, info] : index.items()) load_tensor(src, f, name, info);
  } catch (const json::exception& e) {
    throw Error(kComp, path + ": bad lowbit.tensors: " + e.what());
  }
  const json tok = parse_meta(f, "lowbit.tokenizer");
  if (!tok.is_object() || (tok.contains("kind") && !tok["kind"].is_string()))
    throw Error(kComp, path + ": metadata lowbit.tokenizer is not an object with a string 'kind'");
  src.embedded_tokenizer.kind = tok.value("kind", "");
  if (!src.embedded_tokenizer.kind.empty()) {
    auto blob = f.entries().find("tokenizer.blob");
    if (blob == f.entries().end()) throw Error(kComp, path + ": missing tokenizer.blob");
    const TensorView& v = blob->second.view;
    src.embedded_tokenizer.bytes.assign(reinterpret_cast<const char*>(v.data), v.nbytes);
  }
  auto recipe = f.metadata().find("lowbit.recipe");
  if (recipe != f.metadata().end()) src.recipe = recipe->second;
  auto rotation = f.metadata().find("lowbit.rotation");
  if (rotation != f.metadata().end()) src.rotation = rotation->second;
  src.owners.push_back(file);
  check_canonical_tensors(src);
  return src;
}

void rewrite_lowbit_quantized(const std::string& in_path, const std::map<std::string, QuantizedMatrix>& matrices,
                           const std::string& out_path) {
  const SafetensorsFile f(in_path);
  std::vector<std::pair<size_t, std::vector<uint8_t>>> patches;  // (file offset, new bytes)
  {
    auto replace = [&](const std::string& name, std::vector<uint8_t> bytes) {
      const uint8_t* at = part(f, name, bytes.size());
      patches.emplace_back(static_cast<size_t>(at - f.file_data()), std::move(bytes));
    };
    for (const auto& [name, m] : matrices) {
      replace(name + ".codes", m.codes);
      if (m.spec.asym) replace(name + ".zeros", m.zeros);
      if (!m.spec.double_quant) {
        replace(name + ".scales", as_bytes(m.scales));
        continue;
      }
      replace(name + ".scale_codes", m.scale_codes);
      replace(name + ".dq_scale", as_bytes(m.dq_scale));
      replace(name + ".dq_offset", as_bytes(m.dq_offset));
    }
  }
  std::sort(patches.begin(), patches.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  AtomicFile out(out_path);
  size_t pos = 0;
  for (const auto& [offset, bytes] : patches) {
    out.write(f.file_data() + pos, offset - pos);
    out.write(bytes.data(), bytes.size());
    pos = offset + bytes.size();
  }
  out.write(f.file_data() + pos, f.file_size() - pos);
  out.commit();
}

}  // namespace lowbit
