// validate(): the checks a QuantizedMatrix read from an untrusted file must pass before any other
// function of quantized_matrix.h may touch it.
#include <cmath>
#include <string>

#include "base/error.h"
#include "base/half.h"
#include "formats/bitpack.h"
#include "formats/double_quant.h"
#include "formats/quantized_matrix.h"
#include "formats/registry.h"

namespace lowbit {

namespace {

constexpr int64_t kMaxDim = int64_t{1} << 32;
constexpr int64_t kMaxElements = int64_t{1} << 40;

[[noreturn]] void bad(const QuantizedMatrix& m, const std::string& why) {
  throw Error("format", "invalid " + m.spec.to_string() + " matrix [" + std::to_string(m.rows) +
                            ", " + std::to_string(m.cols) + "]: " + why);
}

void check_size(const QuantizedMatrix& m, const char* what, size_t have, int64_t want) {
  if (static_cast<int64_t>(have) != want)
    bad(m, std::string(what) + " has " + std::to_string(have) + " entries, want " +
               std::to_string(want));
}

void check_sizes(const QuantizedMatrix& m) {
  check_size(m, "codes", m.codes.size(), m.rows * m.row_code_bytes());
  const bool q = m.spec.quantized();
  const int64_t n_groups = q ? m.rows * m.groups_per_row() : 0;
  const bool dq = m.spec.double_quant;
  check_size(m, "scales", m.scales.size(), dq ? 0 : n_groups);
  check_size(m, "zeros", m.zeros.size(), m.spec.asym ? n_groups : 0);
  check_size(m, "scale_codes", m.scale_codes.size(), dq ? n_groups : 0);
  check_size(m, "dq_scale", m.dq_scale.size(), dq ? dq_blocks(n_groups) : 0);
  check_size(m, "dq_offset", m.dq_offset.size(), dq ? dq_blocks(n_groups) : 0);
}

void check_params(const QuantizedMatrix& m) {
  const bool bf16 = m.spec.scale_type == ScaleType::BF16;
  for (size_t i = 0; i < m.scales.size(); ++i)
    if (!std::isfinite(bf16 ? bf16_to_f32(m.scales[i]) : f16_to_f32(m.scales[i])))
      bad(m, "non-finite scale at group " + std::to_string(i));
  for (size_t i = 0; i < m.zeros.size(); ++i)
    if (m.zeros[i] >> m.spec.bits)
      bad(m, "zero-point " + std::to_string(m.zeros[i]) + " out of range at group " +
                 std::to_string(i));
  for (size_t b = 0; b < m.dq_scale.size(); ++b)
    if (!std::isfinite(m.dq_scale[b]) || !std::isfinite(m.dq_offset[b]))
      bad(m, "non-finite double-quant parameters in block " + std::to_string(b));
}

// Ternary code 3 and FP8 NaN codes do not stand for a value; padding bits must be zero.
void check_codes(const QuantizedMatrix& m) {
  const int64_t rb = m.row_code_bytes();
  const int64_t used_bits = m.cols * m.spec.bits - (rb - 1) * 8;  // bits used in the last byte
  for (int64_t r = 0; r < m.rows; ++r) {
    if (used_bits < 8 && (m.codes[r * rb + rb - 1] >> used_bits) != 0)
      bad(m, "non-zero padding bits at the end of row " + std::to_string(r));
  }
  if (m.spec.kind != FormatKind::Ternary && m.spec.kind != FormatKind::FP8) return;
  for (int64_t r = 0; r < m.rows; ++r) {
    for (int64_t c = 0; c < m.cols; ++c) {
      const uint8_t q = code_at(m, r, c);
      const bool ok = m.spec.kind == FormatKind::Ternary ? q <= 2 : (q & 0x7f) != 0x7f;
      if (!ok)
        bad(m, "invalid code " + std::to_string(q) + " at (" + std::to_string(r) + ", " +
                   std::to_string(c) + ")");
    }
  }
}

}  // namespace

void validate(const QuantizedMatrix& m) {
  check_quant_spec(m.spec);
  if (m.rows < 1 || m.cols < 1 || m.rows > kMaxDim || m.cols > kMaxDim ||
      m.rows * m.cols > kMaxElements)
    bad(m, "shape out of range");
  if (m.cols % vector_dim(m.spec) != 0)
    bad(m, "columns not a multiple of the " + std::to_string(vector_dim(m.spec)) +
               " weights one code stands for");
  check_sizes(m);
  if (!m.spec.quantized()) return;
  check_params(m);
  check_codes(m);
}

}  // namespace lowbit
