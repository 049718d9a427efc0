#include "formats/registry.h"

#include <array>

#include "base/error.h"
#include "formats/double_quant.h"
#include "formats/e8p.h"
#include "formats/fp4.h"
#include "formats/fp8.h"
#include "formats/int.h"
#include "formats/nf4.h"
#include "formats/ternary.h"

namespace lowbit {

namespace {

using K = FormatKind;

// One row per FormatKind, in enum order (format_info indexes by the enum value).
const std::array<FormatInfo, 9> kFormats = {{
    {K::F32, "f32", 32, 32, 0, false, false, "32", "fp32, unquantized", nullptr, 1},
    {K::F16, "f16", 16, 16, 0, false, false, "16", "IEEE fp16, unquantized", nullptr, 1},
    {K::BF16, "bf16", 16, 16, 0, false, false, "16", "bfloat16, unquantized", nullptr, 1},
    {K::Int, "int", 2, 8, 128, true, true, "b + 16/G (asym + 8/G; dq: b + 8/G + 64/(256 G))",
     "uniform b-bit integer grid, per-group scale (+ zero-point when asym)", &kIntCodec, 1},
    {K::NF4, "nf4", 4, 4, 64, false, true, "4 + 16/G (dq: 4 + 8/G + 64/(256 G))",
     "QLoRA NormalFloat-4 code book x group absmax", &kNf4Codec, 1},
    {K::FP4, "fp4", 4, 4, 32, false, true, "4 + 16/G (dq: 4 + 8/G + 64/(256 G))",
     "FP4 E2M1 x group scale absmax/6", &kFp4Codec, 1},
    {K::FP8, "fp8", 8, 8, 0, false, false, "8 + 16/G",
     "FP8 E4M3 x per-group or per-channel scale absmax/448", &kFp8Codec, 1},
    {K::Ternary, "ternary", 2, 2, 64, false, true, "2 + 16/G (dq: 2 + 8/G + 64/(256 G))",
     "BitNet b1.58 {-1, 0, +1} x group absmean", &kTernaryCodec, 1},
    {K::E8P, "e8p", 2, 2, 64, false, true, "2 + 16/G (dq: 2 + 8/G + 64/(256 G))",
     "E8 lattice code book (QuIP# E8P): 16-bit code per 8 weights x group scale", &kE8pCodec, 8},
}};

std::vector<QuantSpec> make_test_specs() {
  std::vector<QuantSpec> v;
  for (int bits : {8, 6, 5, 4, 3, 2})
    for (int group : {32, 64, 128, 0})
      for (bool asym : {false, true}) v.push_back({K::Int, bits, group, asym});
  v.push_back({K::Int, 4, 128, false, false, ScaleType::BF16});
  v.push_back({K::Int, 4, 128, false, true});
  v.push_back({K::NF4, 4, 64});
  v.push_back({K::NF4, 4, 64, false, true});
  v.push_back({K::FP4, 4, 32});
  v.push_back({K::FP4, 4, 32, false, true});
  v.push_back({K::FP8, 8, 0});
  v.push_back({K::FP8, 8, 128});
  v.push_back({K::Ternary, 2, 64});
  v.push_back({K::Ternary, 2, 64, false, true});
  v.push_back({K::E8P, 2, 64});
  v.push_back({K::E8P, 2, 32, false, true});
  v.push_back({K::E8P, 2, 0});
  return v;
}

}  // namespace

std::span<const FormatInfo> all_formats() {
  return kFormats;
}

bool is_known_kind(FormatKind kind) {
  return static_cast<size_t>(kind) < kFormats.size();
}

const FormatInfo& format_info(FormatKind kind) {
  LOWBIT_ASSERT(is_known_kind(kind));
  const FormatInfo& f = kFormats[static_cast<size_t>(kind)];
  LOWBIT_ASSERT(f.kind == kind);
  return f;
}

double nominal_bits_per_weight(const QuantSpec& spec, int64_t cols) {
  if (!spec.quantized()) return spec.bits;
  const double g = static_cast<double>(spec.group_len(cols));
  // Per group: one 16-bit scale (or an 8-bit code plus 1/256 of a 64-bit fp32 pair), plus an
  // 8-bit zero-point when asymmetric.
  const double scale_bits = spec.double_quant ? 8.0 + 64.0 / static_cast<double>(kDqBlock) : 16.0;
  return spec.bits + (scale_bits + (spec.asym ? 8.0 : 0.0)) / g;
}

int vector_dim(const QuantSpec& spec) {
  return is_known_kind(spec.kind) ? format_info(spec.kind).vector_dim : 1;
}

void check_vector_shape(const QuantSpec& spec, int64_t cols, const char* component) {
  const int d = vector_dim(spec);
  if (cols % d != 0)
    throw Error(component, spec.to_string() + " codes " + std::to_string(d) +
                               " weights at once: a row of " + std::to_string(cols) +
                               " columns is not a multiple of " + std::to_string(d));
}

const std::vector<QuantSpec>& all_test_specs() {
  static const std::vector<QuantSpec> specs = make_test_specs();
  return specs;
}

}  // namespace lowbit
