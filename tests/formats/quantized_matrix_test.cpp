#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/half.h"
#include "formats/bitpack.h"
#include "formats/double_quant.h"
#include "formats/plain.h"
#include "formats/quantized_matrix.h"
#include "formats/registry.h"
#include "formats/test_data.h"

namespace lowbit {
namespace {

// Plain round-to-nearest through the public building API (the algo module's RTN adds the clip
// search and threads; the formats tests must not depend on it).
QuantizedMatrix quantize_simple(const std::vector<float>& w, int64_t rows, int64_t cols,
                                const QuantSpec& spec) {
  if (!spec.quantized()) return store_plain(w.data(), rows, cols, spec);
  QuantizedMatrix m = make_quantized_matrix(spec, rows, cols);
  const int64_t glen = m.group_len(), groups = m.groups_per_row();
  std::vector<float> scales;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t b = g * glen, n = std::min(glen, cols - b);
      const GroupParams p = fit_group(spec, &w[r * cols + b], n);
      if (spec.double_quant)
        scales.push_back(p.scale);
      else
        set_group_params(m, r, g, p);
    }
  if (spec.double_quant) set_double_quant_scales(m, scales.data());
  std::vector<uint8_t> codes(cols);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t b = g * glen, n = std::min(glen, cols - b);
      encode_group(spec, &w[r * cols + b], n, group_params(m, r, g), &codes[b]);
    }
    set_row_codes(m, r, codes.data());
  }
  return m;
}

TEST(QuantizedMatrix, BitsPerWeightExact) {
  struct Case {
    const char* spec;
    int64_t rows, cols;
    double bpw;
  };
  for (const Case& c : std::vector<Case>{
           {"int4:g128", 4, 256, 4.0 + 16.0 / 128},
           {"int4:g128:asym", 4, 256, 4.0 + 24.0 / 128},
           {"int8:g32", 3, 64, 8.0 + 16.0 / 32},
           {"int3:g64", 2, 128, 3.0 + 16.0 / 64},
           {"nf4:g64:dq", 64, 256, 4.0 + 8.0 / 64 + 64.0 / (64 * 256)},  // 256 groups = 1 block
           {"fp4:g32", 1, 64, 4.5},
           {"fp8:gc", 2, 100, 8.0 + 16.0 / 100},
           {"ternary:g64", 1, 64, 2.25},
           {"f16", 3, 5, 16.0},
           {"bf16", 3, 5, 16.0},
           {"f32", 3, 5, 32.0}}) {
    const QuantSpec spec = parse_quant_spec(c.spec);
    QuantizedMatrix m = make_quantized_matrix(spec, c.rows, c.cols);
    EXPECT_DOUBLE_EQ(m.bits_per_weight(), c.bpw) << c.spec;
    EXPECT_DOUBLE_EQ(nominal_bits_per_weight(spec, c.cols), c.bpw) << c.spec;
    EXPECT_EQ(m.storage_bytes(), static_cast<int64_t>(m.codes.size() + 2 * m.scales.size() +
                                                      m.zeros.size() + m.scale_codes.size() +
                                                      4 * (m.dq_scale.size() + m.dq_offset.size())))
        << c.spec;
  }
}

TEST(QuantizedMatrix, StorageCountsRowPaddingAndShortGroups) {
  // int3 on 257 columns: 771 bits -> 97 bytes per row; g128 -> groups of 128, 128, 1.
  const QuantizedMatrix m = make_quantized_matrix(parse_quant_spec("int3:g128:asym"), 5, 257);
  EXPECT_EQ(m.row_code_bytes(), 97);
  EXPECT_EQ(m.groups_per_row(), 3);
  EXPECT_EQ(m.storage_bytes(), 5 * 97 + 5 * 3 * 2 + 5 * 3);
  // Double quant with a partial last block: 3 x 11 = 33 scales -> 1 block.
  const QuantizedMatrix d = make_quantized_matrix(parse_quant_spec("nf4:g64:dq"), 3, 704);
  EXPECT_EQ(d.scale_codes.size(), 33u);
  EXPECT_EQ(d.dq_scale.size(), 1u);
  EXPECT_EQ(d.storage_bytes(), 3 * 352 + 33 + 8);
}

TEST(QuantizedMatrix, ShortLastGroupHasItsOwnScale) {
  // 704 columns at g128: groups of 128 x 5 and 64. The last 64 values are 1000x smaller; if
  // they shared a scale with larger values they would all round to zero.
  const int64_t cols = 704;
  std::vector<float> w = test::gaussian_data(cols, 3);
  for (int64_t c = 640; c < cols; ++c) w[c] *= 1e-3f;
  for (const char* s : {"int4:g128", "int4:g128:asym", "nf4:g128", "fp8:g128", "int4:g128:dq"}) {
    const QuantizedMatrix m = quantize_simple(w, 1, cols, parse_quant_spec(s));
    EXPECT_EQ(m.groups_per_row(), 6);
    const std::vector<float> d = dequantize(m);
    double err = 0, ref = 0;
    for (int64_t c = 640; c < cols; ++c) {
      err += (d[c] - w[c]) * (d[c] - w[c]);
      ref += w[c] * w[c];
    }
    EXPECT_LT(std::sqrt(err / ref), 0.2) << s;
  }
}

TEST(QuantizedMatrix, DequantizeRowMatchesDequantizeAndGroupParams) {
  const int64_t rows = 5;
  const std::vector<float> w = test::student_t_data(rows * 257, 5);
  for (const QuantSpec& spec : all_test_specs()) {
    const int d = vector_dim(spec);  // vector code books: 256 columns, codes decoded per chunk
    const int64_t cols = d > 1 ? 256 : 257;
    const QuantizedMatrix m = quantize_simple(w, rows, cols, spec);
    EXPECT_NO_THROW(validate(m)) << spec.to_string();
    const std::vector<float> all = dequantize(m);
    std::vector<float> row(cols);
    for (int64_t r = 0; r < rows; ++r) {
      dequantize_row(m, r, row.data());
      for (int64_t c = 0; c < cols; c += d) {
        const GroupParams p = group_params(m, r, c / m.group_len());
        uint8_t q[8];
        float v[8];
        for (int j = 0; j < d; ++j) q[j] = code_at(m, r, c + j);
        decode_group(spec, q, d, p, v);
        for (int j = 0; j < d; ++j) {
          ASSERT_EQ(row[c + j], all[r * cols + c + j]);
          ASSERT_EQ(row[c + j], v[j]) << spec.to_string();
        }
      }
    }
  }
}

TEST(QuantizedMatrix, DoubleQuantScalesFollowTheFormula) {
  // 2 rows x 300 groups of 8 = 600 scales -> blocks of 256, 256, 88.
  const int64_t rows = 2, cols = 2400;
  const std::vector<float> w = test::gaussian_data(rows * cols, 9);
  const QuantSpec spec = parse_quant_spec("nf4:g8:dq");
  const QuantizedMatrix m = quantize_simple(w, rows, cols, spec);
  ASSERT_EQ(m.dq_scale.size(), 3u);
  for (int64_t i = 0; i < 600; ++i) {
    const int64_t b = i / 256;
    const float s = std::fma(m.dq_scale[b], float(m.scale_codes[i]), m.dq_offset[b]);
    EXPECT_EQ(group_params(m, i / 300, i % 300).scale, s);
    // The decoded scale is within half a step of the group's absmax.
    float absmax = 0;
    for (int64_t k = 0; k < 8; ++k) absmax = std::max(absmax, std::fabs(w[i * 8 + k]));
    EXPECT_LE(std::fabs(s - absmax), 0.5f * m.dq_scale[b] * 1.001f + 1e-9f);
  }
  // The block's smallest scale is coded 0, its largest 255.
  EXPECT_EQ(*std::min_element(m.scale_codes.begin(), m.scale_codes.begin() + 256), 0);
  EXPECT_EQ(*std::max_element(m.scale_codes.begin(), m.scale_codes.begin() + 256), 255);
}

TEST(QuantizedMatrix, PlainStorage) {
  const std::vector<float> w = {1.0f, -2.5f, 1.0f / 3, 65519.0f, 1e-8f, 70000.0f};
  const QuantizedMatrix f32 = store_plain(w.data(), 2, 3, parse_quant_spec("f32"));
  EXPECT_EQ(dequantize(f32), w);
  const std::vector<float> h = dequantize(store_plain(w.data(), 2, 3, parse_quant_spec("f16")));
  const std::vector<float> b = dequantize(store_plain(w.data(), 2, 3, parse_quant_spec("bf16")));
  for (size_t i = 0; i < w.size(); ++i) {
    EXPECT_EQ(h[i], f16_to_f32(f32_to_f16(w[i])));
    EXPECT_EQ(b[i], bf16_to_f32(f32_to_bf16(w[i])));
  }
  EXPECT_TRUE(std::isinf(h[5]));  // beyond the f16 range, as an f16 tensor would hold it
}

// ---- validate(): every corruption is rejected ------------------------------------------------

void expect_invalid(const QuantizedMatrix& good, const std::string& what,
                    const std::function<void(QuantizedMatrix&)>& corrupt) {
  QuantizedMatrix m = good;
  corrupt(m);
  try {
    validate(m);
    ADD_FAILURE() << "accepted: " << what;
  } catch (const Error& e) {
    EXPECT_EQ(e.component(), "format") << what;
  }
}

TEST(Validate, RejectsWrongSizes) {
  const std::vector<float> w = test::gaussian_data(4 * 100, 1);
  const QuantizedMatrix a = quantize_simple(w, 4, 100, parse_quant_spec("int3:g32:asym"));
  const QuantizedMatrix d = quantize_simple(w, 4, 100, parse_quant_spec("nf4:g8:dq"));
  const QuantizedMatrix p = quantize_simple(w, 4, 100, parse_quant_spec("f16"));
  ASSERT_NO_THROW(validate(a));
  ASSERT_NO_THROW(validate(d));
  ASSERT_NO_THROW(validate(p));
  expect_invalid(a, "codes short", [](auto& m) { m.codes.pop_back(); });
  expect_invalid(a, "codes long", [](auto& m) { m.codes.push_back(0); });
  expect_invalid(a, "scales short", [](auto& m) { m.scales.pop_back(); });
  expect_invalid(a, "scales long", [](auto& m) { m.scales.push_back(0); });
  expect_invalid(a, "zeros missing", [](auto& m) { m.zeros.clear(); });
  expect_invalid(a, "zeros short", [](auto& m) { m.zeros.pop_back(); });
  expect_invalid(a, "stray dq", [](auto& m) { m.dq_scale.push_back(1); });
  expect_invalid(a, "stray scale codes", [](auto& m) { m.scale_codes.push_back(1); });
  expect_invalid(a, "rows", [](auto& m) { m.rows += 1; });
  expect_invalid(a, "cols", [](auto& m) { m.cols -= 1; });
  expect_invalid(a, "zero rows", [](auto& m) { m.rows = 0; });
  expect_invalid(a, "negative cols", [](auto& m) { m.cols = -100; });
  expect_invalid(a, "huge shape", [](auto& m) { m.rows = int64_t{1} << 40; });
  expect_invalid(a, "sym with zeros", [](auto& m) { m.spec.asym = false; });
  expect_invalid(a, "group changed", [](auto& m) { m.spec.group = 64; });
  expect_invalid(a, "bits changed", [](auto& m) { m.spec.bits = 4; });
  expect_invalid(d, "scale codes short", [](auto& m) { m.scale_codes.pop_back(); });
  expect_invalid(d, "dq scale missing", [](auto& m) { m.dq_scale.clear(); });
  expect_invalid(d, "dq offset long", [](auto& m) { m.dq_offset.push_back(0); });
  expect_invalid(d, "stray scales", [](auto& m) { m.scales.assign(m.scale_codes.size(), 0); });
  expect_invalid(p, "plain codes short", [](auto& m) { m.codes.pop_back(); });
  expect_invalid(p, "plain with scales", [](auto& m) { m.scales.push_back(0); });
}

TEST(Validate, RejectsBadSpecsAndValues) {
  const std::vector<float> w = test::gaussian_data(4 * 100, 1);
  const QuantizedMatrix a = quantize_simple(w, 4, 100, parse_quant_spec("int4:g32:asym"));
  const QuantizedMatrix t = quantize_simple(w, 4, 100, parse_quant_spec("ternary:g64"));
  const QuantizedMatrix f = quantize_simple(w, 4, 100, parse_quant_spec("fp8:gc"));
  const QuantizedMatrix d = quantize_simple(w, 4, 100, parse_quant_spec("int4:g32:dq"));
  const QuantizedMatrix i3 = quantize_simple(w, 4, 100, parse_quant_spec("int3:g32"));
  expect_invalid(a, "unknown kind", [](auto& m) { m.spec.kind = static_cast<FormatKind>(42); });
  expect_invalid(a, "zero-point 16", [](auto& m) { m.zeros[5] = 16; });
  expect_invalid(a, "inf scale", [](auto& m) { m.scales[2] = 0x7c00; });
  expect_invalid(a, "NaN scale", [](auto& m) { m.scales[0] = 0xfe00; });
  expect_invalid(t, "ternary code 3", [](auto& m) { m.codes[7] |= 0x30; });
  expect_invalid(f, "fp8 NaN 0x7f", [](auto& m) { m.codes[3] = 0x7f; });
  expect_invalid(f, "fp8 NaN 0xff", [](auto& m) { m.codes.back() = 0xff; });
  expect_invalid(d, "NaN dq scale", [](auto& m) { m.dq_scale[0] = NAN; });
  expect_invalid(d, "inf dq offset", [](auto& m) { m.dq_offset[0] = INFINITY; });
  // int3 x 100 = 300 bits = 37.5 bytes: the top 4 bits of each row's last byte are padding.
  expect_invalid(i3, "padding bits", [](auto& m) { m.codes[m.row_code_bytes() - 1] |= 0x80; });
  // e8p codes 8 weights at once: a row of 100 (12.5 codes) cannot be stored.
  const QuantizedMatrix e = quantize_simple(w, 4, 96, parse_quant_spec("e8p:g32"));
  EXPECT_NO_THROW(validate(e));
  expect_invalid(e, "e8p row of 100", [](auto& m) {
    m.cols = 100;
    m.codes.resize(static_cast<size_t>(m.rows * m.row_code_bytes()));
    m.scales.resize(static_cast<size_t>(m.rows * m.groups_per_row()));
  });
}

}  // namespace
}  // namespace lowbit
