#include "io/hf_quantized.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <regex>

#include "base/bounded_regex.h"
#include "base/error.h"
#include "base/half.h"
#include "base/json_depth.h"
#include "formats/bitpack.h"
#include "io/model_source.h"

namespace lowbit {

namespace {

using json = nlohmann::json;

constexpr int kAwqOrder[8] = {0, 2, 4, 6, 1, 3, 5, 7};  // nibble k holds output 8c + kAwqOrder[k]

// The integer grid of one Linear in a neutral form both directions go through.
struct IntLayer {
  int bits = 0;
  int64_t rows = 0, cols = 0, groups = 0, group_len = 0;  // group_len: inputs per group
  int64_t declared_group = -1;   // the checkpoint's group_size (-1: per-channel)
  std::vector<uint8_t> codes;    // [rows, cols]
  std::vector<int32_t> zeros;    // [rows, groups]
  std::vector<uint16_t> scales;  // [rows, groups] fp16 / bf16 bits (scale_f32 when neither)
  std::vector<float> scale_f32;  // [rows, groups] when the checkpoint stores fp32 scales
  ScaleType scale_type = ScaleType::F16;
  std::vector<int32_t> g_idx;  // [cols]

  float scale(int64_t r, int64_t g) const {
    const size_t i = static_cast<size_t>(r * groups + g);
    if (!scale_f32.empty()) return scale_f32[i];
    return scale_type == ScaleType::F16 ? f16_to_f32(scales[i]) : bf16_to_f32(scales[i]);
  }
};

IntLayer layer_from_matrix(const QuantizedMatrix& m) {
  IntLayer L;
  L.bits = m.spec.bits;
  L.rows = m.rows;
  L.cols = m.cols;
  L.groups = m.groups_per_row();
  L.group_len = m.group_len();
  L.scale_type = m.spec.scale_type;
  L.scales = m.scales;
  L.codes.resize(static_cast<size_t>(m.rows * m.cols));
  for (int64_t r = 0; r < m.rows; ++r)
    unpack_codes(m.codes.data() + r * m.row_code_bytes(), m.cols, m.spec.bits,
                 &L.codes[r * m.cols]);
  L.zeros.assign(static_cast<size_t>(m.rows * L.groups), 1 << (m.spec.bits - 1));
  if (m.spec.asym) std::copy(m.zeros.begin(), m.zeros.end(), L.zeros.begin());
  L.g_idx.resize(static_cast<size_t>(m.cols));
  for (int64_t c = 0; c < m.cols; ++c) L.g_idx[c] = static_cast<int32_t>(c / L.group_len);
  return L;
}

// Rewrites group (r, g) to the same values with the opposite scale sign (see the header).
void flip_group(IntLayer& L, int64_t r, int64_t g) {
  const int maxq = (1 << L.bits) - 1;
  L.scales[r * L.groups + g] ^= 0x8000;  // fp16 and bf16 both keep the sign in bit 15
  L.zeros[r * L.groups + g] = maxq - L.zeros[r * L.groups + g];
  const int64_t end = std::min(L.cols, (g + 1) * L.group_len);
  for (int64_t c = g * L.group_len; c < end; ++c)
    L.codes[r * L.cols + c] = static_cast<uint8_t>(maxq - L.codes[r * L.cols + c]);
}

template <class T>
std::vector<uint8_t> as_bytes(const std::vector<T>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(T));
  if (!b.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

// Packs n b-bit values LSB-first into `words` (a stream of 32-bit little-endian words).
void pack_stream(const std::vector<uint8_t>& vals, int bits, uint32_t* words, int64_t n_words) {
  std::vector<uint8_t> bytes(static_cast<size_t>(n_words * 4), 0);
  LOWBIT_ASSERT(packed_bytes(static_cast<int64_t>(vals.size()), bits) <= n_words * 4);
  pack_codes(vals.data(), static_cast<int64_t>(vals.size()), bits, bytes.data());
  std::memcpy(words, bytes.data(), bytes.size());
}

std::vector<uint8_t> unpack_stream(const uint32_t* words, int64_t n_words, int64_t n, int bits) {
  std::vector<uint8_t> bytes(static_cast<size_t>(n_words * 4)), vals(static_cast<size_t>(n));
  std::memcpy(bytes.data(), words, bytes.size());
  LOWBIT_ASSERT(packed_bytes(n, bits) <= n_words * 4);
  unpack_codes(bytes.data(), n, bits, vals.data());
  return vals;
}

// ---- export: one packer per format -----------------------------------------------------------

std::vector<HfPackedTensor> pack_gptq(const IntLayer& L) {
  const int b = L.bits;
  const int64_t in_words = L.cols * b / 32, out_words = L.rows * b / 32;
  std::vector<uint32_t> qweight(static_cast<size_t>(in_words * L.rows)),
      col(static_cast<size_t>(in_words));
  for (int64_t o = 0; o < L.rows; ++o) {
    pack_stream(
        std::vector<uint8_t>(L.codes.begin() + o * L.cols, L.codes.begin() + (o + 1) * L.cols), b,
        col.data(), in_words);
    for (int64_t k = 0; k < in_words; ++k) qweight[k * L.rows + o] = col[k];
  }
  std::vector<uint32_t> qzeros(static_cast<size_t>(L.groups * out_words));
  std::vector<uint16_t> scales(static_cast<size_t>(L.groups * L.rows));
  std::vector<uint8_t> z(static_cast<size_t>(L.rows));
  for (int64_t g = 0; g < L.groups; ++g) {
    for (int64_t o = 0; o < L.rows; ++o) {
      z[o] = static_cast<uint8_t>(L.zeros[o * L.groups + g] - 1);  // v1 stores z - 1 (z >= 1 here)
      scales[g * L.rows + o] = L.scales[o * L.groups + g];
    }
    pack_stream(z, b, &qzeros[g * out_words], out_words);
  }
  return {{"qweight", "I32", {in_words, L.rows}, as_bytes(qweight)},
          {"qzeros", "I32", {L.groups, out_words}, as_bytes(qzeros)},
          {"scales", "F16", {L.groups, L.rows}, as_bytes(scales)},
          {"g_idx", "I32", {L.cols}, as_bytes(L.g_idx)}};
}

std::vector<HfPackedTensor> pack_awq(const IntLayer& L) {
  const int64_t ow = L.rows / 8;
  std::vector<uint32_t> qweight(static_cast<size_t>(L.cols * ow)),
      qzeros(static_cast<size_t>(L.groups * ow));
  std::vector<uint16_t> scales(static_cast<size_t>(L.groups * L.rows));
  for (int64_t i = 0; i < L.cols; ++i)
    for (int64_t c = 0; c < ow; ++c) {
      uint32_t w = 0;
      for (int k = 0; k < 8; ++k)
        w |= static_cast<uint32_t>(L.codes[(8 * c + kAwqOrder[k]) * L.cols + i]) << (4 * k);
      qweight[i * ow + c] = w;
    }
  for (int64_t g = 0; g < L.groups; ++g) {
    for (int64_t c = 0; c < ow; ++c) {
      uint32_t w = 0;
      for (int k = 0; k < 8; ++k)
        w |= static_cast<uint32_t>(L.zeros[(8 * c + kAwqOrder[k]) * L.groups + g]) << (4 * k);
      qzeros[g * ow + c] = w;
    }
    for (int64_t o = 0; o < L.rows; ++o) scales[g * L.rows + o] = L.scales[o * L.groups + g];
  }
  return {{"qweight", "I32", {L.cols, ow}, as_bytes(qweight)},
          {"qzeros", "I32", {L.groups, ow}, as_bytes(qzeros)},
          {"scales", "F16", {L.groups, L.rows}, as_bytes(scales)}};
}

std::vector<HfPackedTensor> pack_ct(const IntLayer& L, bool asym) {
  const int b = L.bits, pf = 32 / b;
  const int64_t in_words = (L.cols + pf - 1) / pf, out_words = (L.rows + pf - 1) / pf;
  std::vector<uint32_t> packed(static_cast<size_t>(L.rows * in_words));
  for (int64_t o = 0; o < L.rows; ++o)
    pack_stream(
        std::vector<uint8_t>(L.codes.begin() + o * L.cols, L.codes.begin() + (o + 1) * L.cols), b,
        &packed[o * in_words], in_words);
  std::vector<HfPackedTensor> out = {{"weight_packed", "I32", {L.rows, in_words}, as_bytes(packed)},
                                     {"weight_scale",
                                      L.scale_type == ScaleType::F16 ? "F16" : "BF16",
                                      {L.rows, L.groups},
                                      as_bytes(L.scales)}};
  if (asym) {
    std::vector<uint32_t> zp(static_cast<size_t>(out_words * L.groups)),
        col(static_cast<size_t>(out_words));
    std::vector<uint8_t> z(static_cast<size_t>(L.rows));
    for (int64_t g = 0; g < L.groups; ++g) {
      for (int64_t o = 0; o < L.rows; ++o) z[o] = static_cast<uint8_t>(L.zeros[o * L.groups + g]);
      pack_stream(z, b, col.data(), out_words);
      for (int64_t k = 0; k < out_words; ++k) zp[k * L.groups + g] = col[k];
    }
    out.push_back({"weight_zero_point", "I32", {out_words, L.groups}, as_bytes(zp)});
  }
  out.push_back({"weight_shape", "I64", {2}, as_bytes(std::vector<int64_t>{L.rows, L.cols})});
  return out;
}

// int-quantized, symmetric int8: weight I8 [out, in] = q - 128, weight_scale [out, G].
std::vector<HfPackedTensor> pack_ct_int8(const IntLayer& L) {
  std::vector<uint8_t> w(L.codes.size());
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<uint8_t>(static_cast<int8_t>(L.codes[i] - 128));
  return {{"weight", "I8", {L.rows, L.cols}, std::move(w)},
          {"weight_scale", L.scale_type == ScaleType::F16 ? "F16" : "BF16", {L.rows, L.groups}, as_bytes(L.scales)}};
}

}  // namespace

const char* hf_quant_format_name(HfQuantFormat f) {
  switch (f) {
    case HfQuantFormat::Gptq:
      return "gptq";
    case HfQuantFormat::Awq:
      return "awq";
    case HfQuantFormat::CompressedTensors:
      return "compressed-tensors";
    case HfQuantFormat::CompressedTensorsW8A8:
      return "compressed-tensors-w8a8";
  }
  return "?";
}

HfQuantFormat parse_hf_quant_format(std::string_view s) {
  if (s == "gptq") return HfQuantFormat::Gptq;
  if (s == "awq") return HfQuantFormat::Awq;
  if (s == "compressed-tensors") return HfQuantFormat::CompressedTensors;
  if (s == "compressed-tensors-w8a8") return HfQuantFormat::CompressedTensorsW8A8;
  throw Error("export", "unknown format '" + std::string(s) +
                            "' (expected gptq, awq, compressed-tensors or compressed-tensors-w8a8)");
}

std::string hf_quant_unsupported_reason(HfQuantFormat f, const QuantizedMatrix& m) {
  const QuantSpec& s = m.spec;
  const std::string spec = s.to_string();
  const std::string fmt = hf_quant_format_name(f);
  if (s.kind != FormatKind::Int)
    return spec + " is not an integer grid (" + fmt +
           " stores int codes with a scale and zero-point)";
  if (s.double_quant) return spec + ": double-quantized scales cannot be written as " + fmt;
  const std::string shape = shape_to_string({m.rows, m.cols});
  switch (f) {
    case HfQuantFormat::Gptq:
      if (s.bits != 2 && s.bits != 3 && s.bits != 4 && s.bits != 8)
        return spec + ": gptq supports 2, 3, 4 and 8 bits";
      if (s.scale_type != ScaleType::F16)
        return spec + ": gptq scales are fp16 (bf16 scales cannot be stored exactly)";
      if (m.rows % 32 != 0 || m.cols % 32 != 0)
        return "shape " + shape +
               ": gptq packs 32 inputs and 32 outputs per word group (both must be multiples of "
               "32)";
      return "";
    case HfQuantFormat::Awq:
      if (s.bits != 4) return spec + ": awq supports int4 only";
      if (s.scale_type != ScaleType::F16)
        return spec + ": awq scales are fp16 (bf16 scales cannot be stored exactly)";
      if (s.group == 0 || m.cols % s.group != 0)
        return spec + " on shape " + shape + ": awq needs a group size dividing the input size";
      if (m.rows % 8 != 0)
        return "shape " + shape + ": awq packs 8 outputs per word (out must be a multiple of 8)";
      return "";
    case HfQuantFormat::CompressedTensors:
      if (s.bits != 4 && s.bits != 8)
        return spec + ": compressed-tensors pack-quantized supports 4 and 8 bits";
      return "";
    case HfQuantFormat::CompressedTensorsW8A8:
      if (s.bits != 8 || s.group != 0 || s.asym)
        return spec + ": compressed-tensors-w8a8 needs symmetric per-channel int8 weights (int8:gc; "
                      "e.g. quantize -r gptq:int8:gc:smooth), as vLLM's int8 W8A8 kernels take";
      return "";
  }
  return "unknown format";
}

std::vector<HfPackedTensor> pack_hf_linear(HfQuantFormat f, const QuantizedMatrix& m,
                                           int64_t* flipped) {
  const std::string why = hf_quant_unsupported_reason(f, m);
  if (!why.empty()) throw Error("export", why);
  IntLayer L = layer_from_matrix(m);
  int64_t n_flipped = 0;
  for (int64_t r = 0; r < L.rows; ++r)
    for (int64_t g = 0; g < L.groups; ++g) {
      const size_t i = static_cast<size_t>(r * L.groups + g);
      const bool negative = (L.scales[i] & 0x8000) != 0;
      const bool flip =
          f == HfQuantFormat::Awq ? negative : f == HfQuantFormat::Gptq && L.zeros[i] == 0;
      if (flip) {
        flip_group(L, r, g);
        ++n_flipped;
      }
    }
  if (flipped) *flipped = n_flipped;
  switch (f) {
    case HfQuantFormat::Gptq:
      return pack_gptq(L);
    case HfQuantFormat::Awq:
      return pack_awq(L);
    case HfQuantFormat::CompressedTensors:
      return pack_ct(L, m.spec.asym);
    case HfQuantFormat::CompressedTensorsW8A8:
      return pack_ct_int8(L);
  }
  return {};
}

// ---- import
// --------------------------------------------------------------------------------------

namespace {

int json_int(const json& j, const char* key, const std::string& where, int fallback,
             bool required) {
  if (!j.contains(key) || j[key].is_null()) {
    if (required) throw Error("config", where + ": quantization_config has no '" + key + "'");
    return fallback;
  }
  if (!j[key].is_number_integer())
    throw Error("config", where + ": quantization_config '" + key + "' is not an integer");
  return j[key].get<int>();
}

bool json_bool(const json& j, const char* key, bool fallback) {
  return j.contains(key) && j[key].is_boolean() ? j[key].get<bool>() : fallback;
}

std::string json_str(const json& j, const char* key) {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : "";
}

std::string group_label(int64_t g) {
  if (g <= 0) return "gc";
  std::string label = "g";  // (appending avoids a GCC 12 -Wrestrict false positive on "g" + ...)
  label += std::to_string(g);
  return label;
}

void parse_gptq(const json& q, const std::string& where, HfQuantConfig& c) {
  c.bits = json_int(q, "bits", where, 0, true);
  if (c.bits != 2 && c.bits != 3 && c.bits != 4 && c.bits != 8)
    throw Error("config",
                where + ": gptq bits " + std::to_string(c.bits) + " not supported (2, 3, 4, 8)");
  c.group_size = json_int(q, "group_size", where, -1, false);
  c.sym = json_bool(q, "sym", true);
  c.desc_act = json_bool(q, "desc_act", false);
  const std::string fmt = json_str(q, "checkpoint_format");
  if (fmt.empty() || fmt == "gptq")
    c.zero_offset = 1;
  else if (fmt == "gptq_v2")
    c.zero_offset = 0;
  else
    throw Error("config",
                where + ": gptq checkpoint_format '" + fmt + "' not supported (gptq, gptq_v2)");
  c.summary = "gptq int" + std::to_string(c.bits) + " " + group_label(c.group_size) +
              (c.sym ? " sym" : " asym");
}

void parse_awq(const json& q, const std::string& where, HfQuantConfig& c) {
  c.bits = q.contains("bits") ? json_int(q, "bits", where, 0, true)
                              : json_int(q, "w_bit", where, 0, true);
  if (c.bits != 4)
    throw Error("config", where + ": awq bits " + std::to_string(c.bits) + " not supported (4)");
  c.group_size = q.contains("group_size") ? json_int(q, "group_size", where, -1, false)
                                          : json_int(q, "q_group_size", where, -1, false);
  if (c.group_size <= 0) throw Error("config", where + ": awq needs a positive group_size");
  std::string version = json_str(q, "version");
  std::transform(version.begin(), version.end(), version.begin(), ::tolower);
  if (!version.empty() && version != "gemm")
    throw Error("config", where + ": awq version '" + version + "' not supported (gemm)");
  c.sym = !json_bool(q, "zero_point", true);
  c.summary = "awq int4 " + group_label(c.group_size);
}

// Whether a compressed-tensors format name is one lowbit reads: true for int-quantized, false
// for pack-quantized; throws otherwise.
bool ct_int_quantized(const std::string& fmt, const std::string& where) {
  if (fmt == "pack-quantized") return false;
  if (fmt == "int-quantized") return true;
  throw Error("config", where + ": compressed-tensors format '" + fmt +
                            "' not supported (pack-quantized, int-quantized)");
}

// input_activations of an int-quantized group: only dynamic per-token int8 (W8A8), which lowbit
// reads as weight-only (its kernels round activations in blocks of 32 themselves).
bool ct_token_int8_activations(const json& grp, bool int_quantized, const std::string& w) {
  if (!grp.contains("input_activations") || grp["input_activations"].is_null()) return false;
  const json& a = grp["input_activations"];
  const bool token_int8 = a.is_object() && json_str(a, "type") == "int" && a.contains("num_bits") &&
                          a["num_bits"] == 8 && json_str(a, "strategy") == "token" && a.contains("dynamic") &&
                          a["dynamic"] == true;
  if (!int_quantized || !token_int8)
    throw Error("config", w + ": activation quantization other than W8A8 (int-quantized weights, int8 dynamic "
                              "per-token activations) is not supported");
  return true;
}

void parse_ct(const json& q, const std::string& where, HfQuantConfig& c) {
  const bool int_quantized = ct_int_quantized(json_str(q, "format"), where);
  if (!q.contains("config_groups") || !q["config_groups"].is_object() || q["config_groups"].empty())
    throw Error("config", where + ": compressed-tensors quantization_config has no config_groups");
  for (const auto& [name, grp] : q["config_groups"].items()) {
    const std::string w = where + ": config_groups." + name;
    if (!grp.is_object() || !grp.contains("weights") || !grp["weights"].is_object())
      throw Error("config", w + " has no 'weights'");
    const json& wt = grp["weights"];
    HfCtScheme s;
    s.int_quantized = grp.contains("format") && grp["format"].is_string()
                          ? ct_int_quantized(grp["format"].get<std::string>(), w)
                          : int_quantized;
    s.token_int8_activations = ct_token_int8_activations(grp, s.int_quantized, w);
    if (grp.contains("targets") && grp["targets"].is_array())
      for (const json& t : grp["targets"])
        if (t.is_string()) s.targets.push_back(t.get<std::string>());
    if (json_str(wt, "type") != "int")
      throw Error("config",
                  w + ": weights type '" + json_str(wt, "type") + "' not supported (int)");
    s.bits = json_int(wt, "num_bits", w, 0, true);
    if (s.bits != 4 && s.bits != 8)
      throw Error("config", w + ": num_bits " + std::to_string(s.bits) + " not supported (4, 8)");
    if (s.int_quantized && s.bits != 8)
      throw Error("config", w + ": int-quantized num_bits " + std::to_string(s.bits) + " not supported (8)");
    const std::string strategy = json_str(wt, "strategy");
    if (strategy == "group") {
      s.group_size = json_int(wt, "group_size", w, 0, true);
      if (s.group_size <= 0) throw Error("config", w + ": group_size must be positive");
    } else if (strategy == "channel") {
      s.group_size = -1;
    } else {
      throw Error("config", w + ": strategy '" + strategy + "' not supported (group, channel)");
    }
    s.sym = json_bool(wt, "symmetric", true);
    s.act_order = wt.contains("actorder") && !wt["actorder"].is_null() && wt["actorder"] != false;
    c.ct_groups.push_back(s);
    if (c.summary.empty())
      c.summary = "compressed-tensors int" + std::to_string(s.bits) + " " +
                  group_label(s.group_size) + (s.sym ? " sym" : " asym") +
                  (s.token_int8_activations ? " (W8A8: activations run as lowbit's)" : "");
  }
  if (q.contains("ignore") && q["ignore"].is_array())
    for (const json& t : q["ignore"])
      if (t.is_string()) c.ct_ignore.push_back(t.get<std::string>());
}

}  // namespace

std::optional<HfQuantConfig> parse_hf_quant_config(const std::string& text,
                                                   const std::string& where) {
  check_json_depth(text, "import", where);
  const json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("quantization_config") ||
      j["quantization_config"].is_null())
    return std::nullopt;
  const json& q = j["quantization_config"];
  if (!q.is_object()) throw Error("config", where + ": quantization_config is not an object");
  const std::string method = json_str(q, "quant_method");
  HfQuantConfig c;
  if (method == "gptq") {
    c.format = HfQuantFormat::Gptq;
    parse_gptq(q, where, c);
  } else if (method == "awq") {
    c.format = HfQuantFormat::Awq;
    parse_awq(q, where, c);
  } else if (method == "compressed-tensors") {
    c.format = HfQuantFormat::CompressedTensors;
    parse_ct(q, where, c);
  } else {
    throw Error("config",
                where + ": quant_method '" + method +
                    "' not supported (supported: gptq, awq, compressed-tensors pack-quantized)");
  }
  return c;
}

namespace {

const SafetensorsEntry& entry(const SafetensorsSet& set, const std::string& name,
                              const char* dtype) {
  auto it = set.entries.find(name);
  if (it == set.entries.end()) throw Error("model", "missing tensor '" + name + "'");
  if (dtype && it->second->dtype_name != dtype)
    throw Error("model", "tensor '" + name + "' has dtype " + it->second->dtype_name +
                             " (expected " + dtype + ")");
  return *it->second;
}

void expect_shape(const SafetensorsEntry& e, const std::vector<int64_t>& want) {
  if (e.view.shape != want)
    throw Error("model", "tensor '" + e.view.name + "' has shape " + shape_to_string(e.view.shape) +
                             " (expected " + shape_to_string(want) + ")");
}

std::vector<uint32_t> words_of(const SafetensorsEntry& e) {
  std::vector<uint32_t> w(e.view.nbytes / 4);
  if (!w.empty()) std::memcpy(w.data(), e.view.data, w.size() * 4);
  return w;
}

// Scales stored [a, b] (transposed when `transposed`: [groups, rows]) into L.scales/scale_f32.
void read_scales(IntLayer& L, const SafetensorsEntry& e, bool transposed) {
  const std::string& t = e.dtype_name;
  if (t != "F16" && t != "BF16" && t != "F32")
    throw Error("model",
                "tensor '" + e.view.name + "' has dtype " + t + " (expected F16, BF16 or F32)");
  expect_shape(e, transposed ? std::vector<int64_t>{L.groups, L.rows}
                             : std::vector<int64_t>{L.rows, L.groups});
  const size_t n = static_cast<size_t>(L.rows * L.groups);
  const std::vector<float> v = to_f32(e.view);
  auto src_index = [&](int64_t r, int64_t g) {
    return transposed ? g * L.rows + r : r * L.groups + g;
  };
  if (t == "F32") {
    L.scale_f32.resize(n);
    for (int64_t r = 0; r < L.rows; ++r)
      for (int64_t g = 0; g < L.groups; ++g) L.scale_f32[r * L.groups + g] = v[src_index(r, g)];
    return;
  }
  L.scale_type = t == "F16" ? ScaleType::F16 : ScaleType::BF16;
  L.scales.resize(n);
  const auto* bits = reinterpret_cast<const uint8_t*>(e.view.data);
  for (int64_t r = 0; r < L.rows; ++r)
    for (int64_t g = 0; g < L.groups; ++g)
      std::memcpy(&L.scales[r * L.groups + g], bits + 2 * src_index(r, g), 2);
}

// The stored g_idx `name`, or the natural order i / group_len when `name` is empty or absent.
void read_g_idx(IntLayer& L, const SafetensorsSet& set, const std::string& name) {
  L.g_idx.resize(static_cast<size_t>(L.cols));
  if (name.empty() || set.entries.find(name) == set.entries.end()) {
    for (int64_t c = 0; c < L.cols; ++c) L.g_idx[c] = static_cast<int32_t>(c / L.group_len);
    return;
  }
  const SafetensorsEntry& e = entry(set, name, "I32");
  expect_shape(e, {L.cols});
  std::memcpy(L.g_idx.data(), e.view.data, static_cast<size_t>(L.cols) * 4);
  for (int64_t c = 0; c < L.cols; ++c)
    if (L.g_idx[c] < 0 || L.g_idx[c] >= L.groups)
      throw Error("model", "tensor '" + name + "': g_idx[" + std::to_string(c) +
                               "] = " + std::to_string(L.g_idx[c]) + " outside [0, " +
                               std::to_string(L.groups) + ")");
}

void set_groups(IntLayer& L, int64_t group_size, const std::string& module) {
  L.declared_group = group_size;
  L.group_len = group_size > 0 && group_size < L.cols ? group_size : L.cols;
  L.groups = (L.cols + L.group_len - 1) / L.group_len;
  if (L.bits <= 0) throw Error("model", module + ": no bit width");
}

IntLayer read_gptq(const HfQuantConfig& cfg, const SafetensorsSet& set, const std::string& m,
                   int64_t rows, int64_t cols) {
  IntLayer L;
  L.bits = cfg.bits;
  L.rows = rows;
  L.cols = cols;
  set_groups(L, cfg.group_size, m);
  const int b = L.bits;
  if ((cols * b) % 32 != 0 || (rows * b) % 32 != 0)
    throw Error("model", m + ": shape [" + std::to_string(rows) + ", " + std::to_string(cols) +
                             "] cannot be packed as gptq int" + std::to_string(b));
  const int64_t in_words = cols * b / 32, out_words = rows * b / 32;
  const SafetensorsEntry& qw = entry(set, m + ".qweight", "I32");
  expect_shape(qw, {in_words, rows});
  const SafetensorsEntry& qz = entry(set, m + ".qzeros", "I32");
  expect_shape(qz, {L.groups, out_words});
  read_scales(L, entry(set, m + ".scales", nullptr), true);
  read_g_idx(L, set, m + ".g_idx");
  const std::vector<uint32_t> w = words_of(qw), zw = words_of(qz);
  L.codes.resize(static_cast<size_t>(rows * cols));
  std::vector<uint32_t> col(static_cast<size_t>(in_words));
  for (int64_t o = 0; o < rows; ++o) {
    for (int64_t k = 0; k < in_words; ++k) col[k] = w[k * rows + o];
    const std::vector<uint8_t> v = unpack_stream(col.data(), in_words, cols, b);
    std::copy(v.begin(), v.end(), L.codes.begin() + o * cols);
  }
  L.zeros.resize(static_cast<size_t>(rows * L.groups));
  for (int64_t g = 0; g < L.groups; ++g) {
    const std::vector<uint8_t> z = unpack_stream(&zw[g * out_words], out_words, rows, b);
    for (int64_t o = 0; o < rows; ++o) L.zeros[o * L.groups + g] = z[o] + cfg.zero_offset;
  }
  return L;
}

IntLayer read_awq(const HfQuantConfig& cfg, const SafetensorsSet& set, const std::string& m,
                  int64_t rows, int64_t cols) {
  IntLayer L;
  L.bits = 4;
  L.rows = rows;
  L.cols = cols;
  set_groups(L, cfg.group_size, m);
  if (rows % 8 != 0 || cols % cfg.group_size != 0)
    throw Error("model", m + ": shape [" + std::to_string(rows) + ", " + std::to_string(cols) +
                             "] cannot be stored as awq g" + std::to_string(cfg.group_size));
  const int64_t ow = rows / 8;
  const SafetensorsEntry& qw = entry(set, m + ".qweight", "I32");
  expect_shape(qw, {cols, ow});
  const SafetensorsEntry& qz = entry(set, m + ".qzeros", "I32");
  expect_shape(qz, {L.groups, ow});
  read_scales(L, entry(set, m + ".scales", nullptr), true);
  read_g_idx(L, set, "");  // AWQ has no act-order
  const std::vector<uint32_t> w = words_of(qw), zw = words_of(qz);
  L.codes.resize(static_cast<size_t>(rows * cols));
  L.zeros.resize(static_cast<size_t>(rows * L.groups));
  for (int64_t i = 0; i < cols; ++i)
    for (int64_t c = 0; c < ow; ++c)
      for (int k = 0; k < 8; ++k)
        L.codes[(8 * c + kAwqOrder[k]) * cols + i] = (w[i * ow + c] >> (4 * k)) & 15u;
  for (int64_t g = 0; g < L.groups; ++g)
    for (int64_t c = 0; c < ow; ++c)
      for (int k = 0; k < 8; ++k)
        L.zeros[(8 * c + kAwqOrder[k]) * L.groups + g] = (zw[g * ow + c] >> (4 * k)) & 15u;
  return L;
}

bool ct_target_matches(const std::string& target, const std::string& module) {
  if (target == "Linear" || target == module) return true;
  if (target.starts_with("re:")) {
    const std::regex re = bounded_regex(target.substr(3), "config", "compressed-tensors target '" + target + "'");
    return std::regex_search(module, re, std::regex_constants::match_continuous);
  }
  return false;
}

const HfCtScheme& ct_scheme(const HfQuantConfig& cfg, const std::string& m) {
  for (const HfCtScheme& s : cfg.ct_groups)
    for (const std::string& t : s.targets)
      if (ct_target_matches(t, m)) return s;
  throw Error("model",
              m + ": stored quantized but no compressed-tensors config group targets it");
}

// int-quantized: weight I8 [rows, cols] = q - 128, weight_scale [rows, G], weight_zero_point
// I8 [rows, G] = z - 128 when asymmetric.
void read_ct_int8(IntLayer& L, const HfCtScheme& s, const SafetensorsSet& set, const std::string& m) {
  const SafetensorsEntry& w = entry(set, m + ".weight", "I8");
  expect_shape(w, {L.rows, L.cols});
  read_scales(L, entry(set, m + ".weight_scale", nullptr), false);
  read_g_idx(L, set, m + ".weight_g_idx");
  L.codes.resize(static_cast<size_t>(L.rows * L.cols));
  for (size_t i = 0; i < L.codes.size(); ++i) L.codes[i] = static_cast<uint8_t>(static_cast<int8_t>(w.view.data[i]) + 128);
  L.zeros.assign(static_cast<size_t>(L.rows * L.groups), 128);
  if (!s.sym) {
    const SafetensorsEntry& zp = entry(set, m + ".weight_zero_point", "I8");
    expect_shape(zp, {L.rows, L.groups});
    for (size_t i = 0; i < L.zeros.size(); ++i) L.zeros[i] = static_cast<int8_t>(zp.view.data[i]) + 128;
  }
}

IntLayer read_ct(const HfQuantConfig& cfg, const SafetensorsSet& set, const std::string& m,
                 int64_t rows, int64_t cols) {
  const HfCtScheme& s = ct_scheme(cfg, m);
  IntLayer L;
  L.bits = s.bits;
  L.rows = rows;
  L.cols = cols;
  set_groups(L, s.group_size, m);
  if (s.int_quantized) {
    read_ct_int8(L, s, set, m);
    return L;
  }
  const int b = s.bits, pf = 32 / b;
  const int64_t in_words = (cols + pf - 1) / pf, out_words = (rows + pf - 1) / pf;
  const SafetensorsEntry& shp = entry(set, m + ".weight_shape", nullptr);
  if (shp.dtype_name != "I64" && shp.dtype_name != "I32")
    throw Error("model",
                "tensor '" + m + ".weight_shape' has dtype " + shp.dtype_name + " (expected I64)");
  expect_shape(shp, {2});
  int64_t dims[2] = {0, 0};
  for (int i = 0; i < 2; ++i) {
    if (shp.dtype_name == "I64")
      std::memcpy(&dims[i], shp.view.data + 8 * i, 8);
    else {
      int32_t d;
      std::memcpy(&d, shp.view.data + 4 * i, 4);
      dims[i] = d;
    }
  }
  if (dims[0] != rows || dims[1] != cols)
    throw Error("model", m + ".weight_shape is [" + std::to_string(dims[0]) + ", " +
                             std::to_string(dims[1]) + "] (expected [" + std::to_string(rows) +
                             ", " + std::to_string(cols) + "])");
  const SafetensorsEntry& wp = entry(set, m + ".weight_packed", "I32");
  expect_shape(wp, {rows, in_words});
  read_scales(L, entry(set, m + ".weight_scale", nullptr), false);
  read_g_idx(L, set, m + ".weight_g_idx");
  const std::vector<uint32_t> w = words_of(wp);
  L.codes.resize(static_cast<size_t>(rows * cols));
  for (int64_t o = 0; o < rows; ++o) {
    const std::vector<uint8_t> v = unpack_stream(&w[o * in_words], in_words, cols, b);
    std::copy(v.begin(), v.end(), L.codes.begin() + o * cols);
  }
  L.zeros.assign(static_cast<size_t>(rows * L.groups), 1 << (b - 1));
  if (!s.sym) {
    const SafetensorsEntry& zp = entry(set, m + ".weight_zero_point", "I32");
    expect_shape(zp, {out_words, L.groups});
    const std::vector<uint32_t> zw = words_of(zp);
    std::vector<uint32_t> col(static_cast<size_t>(out_words));
    for (int64_t g = 0; g < L.groups; ++g) {
      for (int64_t k = 0; k < out_words; ++k) col[k] = zw[k * L.groups + g];
      const std::vector<uint8_t> z = unpack_stream(col.data(), out_words, rows, b);
      for (int64_t o = 0; o < rows; ++o) L.zeros[o * L.groups + g] = z[o];
    }
  }
  return L;
}

// Why L cannot become a QuantizedMatrix ("" if it can); sets *spec when it can.
std::string matrix_obstacle(const IntLayer& L, QuantSpec* spec) {
  for (int64_t c = 0; c < L.cols; ++c)
    if (L.g_idx[c] != c / L.group_len) return "g_idx is not the natural order (act-order)";
  if (!L.scale_f32.empty()) return "fp32 scales";
  bool sym = true;
  for (int32_t z : L.zeros) {
    if (z < 0 || z >= (1 << L.bits))
      return "zero-point " + std::to_string(z) + " outside [0, 2^bits)";
    sym = sym && z == (1 << (L.bits - 1));
  }
  QuantSpec s;
  s.kind = FormatKind::Int;
  s.bits = L.bits;
  // The declared group size (a row shorter than it is one group either way), so a g128 model's
  // 128-column matrices read back as int4:g128 as written, not int4:gc.
  s.group =
      L.declared_group > 0 && L.declared_group <= 65536 ? static_cast<int>(L.declared_group) : 0;
  s.asym = !sym;
  s.scale_type = L.scale_type;
  try {
    check_quant_spec(s);
  } catch (const Error&) {
    return "group size " + std::to_string(L.group_len) + " is not a lowbit group size";
  }
  *spec = s;
  return "";
}

}  // namespace

bool hf_linear_is_packed(const HfQuantConfig& cfg, const SafetensorsSet& set,
                         const std::string& module) {
  if (cfg.format != HfQuantFormat::CompressedTensors) return set.entries.count(module + ".qweight") != 0;
  if (set.entries.count(module + ".weight_packed")) return true;
  const auto w = set.entries.find(module + ".weight");  // int-quantized: the weight itself is I8
  return w != set.entries.end() && w->second->dtype_name == "I8";
}

HfLinear unpack_hf_linear(const HfQuantConfig& cfg, const SafetensorsSet& set,
                          const std::string& module, int64_t rows, int64_t cols) {
  const IntLayer L = cfg.format == HfQuantFormat::Gptq  ? read_gptq(cfg, set, module, rows, cols)
                     : cfg.format == HfQuantFormat::Awq ? read_awq(cfg, set, module, rows, cols)
                                                        : read_ct(cfg, set, module, rows, cols);
  HfLinear out;
  QuantSpec spec;
  out.note = matrix_obstacle(L, &spec);
  if (out.note.empty()) {
    QuantizedMatrix q = make_quantized_matrix(spec, rows, cols);
    for (int64_t r = 0; r < rows; ++r) set_row_codes(q, r, &L.codes[r * cols]);
    q.scales = L.scales;
    if (spec.asym)
      for (size_t i = 0; i < L.zeros.size(); ++i) q.zeros[i] = static_cast<uint8_t>(L.zeros[i]);
    validate(q);  // rejects non-finite scales
    out.matrix = std::move(q);
    return out;
  }
  out.quantized = false;
  out.values.resize(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const int64_t g = L.g_idx[c];
      out.values[r * cols + c] =
          L.scale(r, g) * static_cast<float>(L.codes[r * cols + c] - L.zeros[r * L.groups + g]);
    }
  return out;
}

}  // namespace lowbit
