#include "formats/codec.h"

#include <cmath>

#include "base/error.h"
#include "base/half.h"
#include "formats/registry.h"

namespace lowbit {

namespace {
const GroupCodec& codec_of(const QuantSpec& spec) {
  const GroupCodec* c = format_info(spec.kind).codec;
  LOWBIT_ASSERT(c != nullptr);  // plain f32/f16/bf16 have no group codec
  return *c;
}
}  // namespace

int default_zero(const QuantSpec& spec) {
  return spec.kind == FormatKind::Int ? 1 << (spec.bits - 1) : 0;
}

GroupParams make_group_params(const QuantSpec& spec, float scale, int zero) {
  GroupParams p;
  p.scale = scale;
  p.inv_scale = scale != 0.0f ? 1.0f / scale : 0.0f;
  p.zero = spec.kind == FormatKind::Int && spec.asym ? zero : default_zero(spec);
  return p;
}

float round_scale(const QuantSpec& spec, float s) {
  if (spec.double_quant) return s;
  if (spec.scale_type == ScaleType::BF16) return bf16_to_f32(f32_to_bf16(s));
  constexpr float kF16Max = 65504.0f;
  return f16_to_f32(f32_to_f16(std::fmax(-kF16Max, std::fmin(s, kF16Max))));
}

GroupParams fit_group(const QuantSpec& spec, const float* w, int64_t n, float clip) {
  return codec_of(spec).fit(spec, w, n, clip);
}

uint8_t encode(const QuantSpec& spec, float w, const GroupParams& p) {
  return codec_of(spec).encode(spec, w, p);
}

float decode(const QuantSpec& spec, uint8_t q, const GroupParams& p) {
  return codec_of(spec).decode(spec, q, p);
}

void encode_group(const QuantSpec& spec, const float* w, int64_t n, const GroupParams& p,
                  uint8_t* q) {
  codec_of(spec).encode_group(spec, w, n, p, q);
}

void decode_group(const QuantSpec& spec, const uint8_t* q, int64_t n, const GroupParams& p,
                  float* out) {
  codec_of(spec).decode_group(spec, q, n, p, out);
}

double group_sq_error(const QuantSpec& spec, const float* w, const float* imp, int64_t n,
                      const GroupParams& p) {
  return codec_of(spec).group_sq_error(spec, w, imp, n, p);
}

}  // namespace lowbit
