// The narrow interface every quantized format kind implements (one unit per kind: int, nf4, fp4,
// fp8, ternary) and every algorithm calls (RTN, GPTQ column by column, AWQ's clip search):
//
//   fit_group  -> group parameters (scale, zero) for one group's values and a clip ratio
//   encode     -> code of one value against fixed group parameters
//   decode     -> value of one code
//
// Scales are stored as fp16 / bf16 (or double-quantized, see double_quant.h). fit_group returns
// the scale ALREADY ROUNDED to its storage type, so codes are chosen against exactly the scale
// that dequantization will see. Double-quantized specs are the exception: fit_group returns the
// fp32 scale; the quantizer double-quantizes all scales of the matrix and re-encodes the codes
// against the decoded ones (group_params() in quantized_matrix.h gives them back).
//
// All functions here are for quantized kinds only (QuantSpec::quantized()); plain f32/f16/bf16
// storage lives in plain.h.
#pragma once

#include <cstdint>

#include "formats/quant_spec.h"

namespace lowbit {

struct GroupParams {
  float scale = 0.0f;      // as stored (fp16/bf16-representable, or double-quant decoded)
  float inv_scale = 0.0f;  // 1 / scale, or 0 when scale == 0 (every value then encodes to 0)
  int zero = 0;            // Int: zero-point (sym: 2^(bits-1)); other kinds: 0
};

// Parameters with the given stored scale: sets inv_scale; zero is forced to the kind's fixed
// value unless the spec is asymmetric Int (then `zero` is taken as given).
GroupParams make_group_params(const QuantSpec& spec, float scale, int zero = 0);

// The fixed zero-point of a symmetric spec: 2^(bits-1) for Int, 0 for the other kinds.
int default_zero(const QuantSpec& spec);

// Rounds a scale to its storage type: fp16 (saturating at ±65504 instead of becoming inf) or
// bf16; double-quantized specs return `s` unchanged (fp32 until the matrix is double-quantized).
float round_scale(const QuantSpec& spec, float s);

// Group parameters for the n values w[0..n) with the range shrunk by `clip` (in (0, 1]; 1 = the
// plain round-to-nearest fit). Each kind's unit header states its rule.
GroupParams fit_group(const QuantSpec& spec, const float* w, int64_t n, float clip = 1.0f);

// Code of w (nearest representable value, saturating; ties as the kind's header states) and
// value of code q. Both dispatch on spec.kind through the registry; the per-kind inline versions
// (int_encode, nf4_encode, ...) or the *_group variants are faster in loops.
uint8_t encode(const QuantSpec& spec, float w, const GroupParams& p);
float decode(const QuantSpec& spec, uint8_t q, const GroupParams& p);

// Loops of the above over one group: codes q[0..n), values out[0..n).
void encode_group(const QuantSpec& spec, const float* w, int64_t n, const GroupParams& p,
                  uint8_t* q);
void decode_group(const QuantSpec& spec, const uint8_t* q, int64_t n, const GroupParams& p,
                  float* out);

// Σ imp[i] · (w[i] - decode(encode(w[i])))² over the group (imp == nullptr: all weights 1),
// accumulated in double.
double group_sq_error(const QuantSpec& spec, const float* w, const float* imp, int64_t n,
                      const GroupParams& p);

// The codec of one kind, as the registry stores it (function pointers so the table is one row
// per kind). Each kind's unit builds its row with make_group_codec<Kind>() (codec_impl.h).
struct GroupCodec {
  GroupParams (*fit)(const QuantSpec&, const float* w, int64_t n, float clip);
  uint8_t (*encode)(const QuantSpec&, float w, const GroupParams&);
  float (*decode)(const QuantSpec&, uint8_t q, const GroupParams&);
  void (*encode_group)(const QuantSpec&, const float* w, int64_t n, const GroupParams&, uint8_t* q);
  void (*decode_group)(const QuantSpec&, const uint8_t* q, int64_t n, const GroupParams&,
                       float* out);
  double (*group_sq_error)(const QuantSpec&, const float* w, const float* imp, int64_t n,
                           const GroupParams&);
};

}  // namespace lowbit
