// PackedMatrix against (a) its scalar twin, bit for bit, on every ISA this CPU runs, and (b) the
// formats oracle (dequantize_row · x in double) within the bound of kernel_test_util.h, for
// every spec of the formats registry's test list plus plain storage and extra corner specs,
// over awkward shapes and token counts.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "algo/rtn.h"
#include "base/error.h"
#include "formats/registry.h"
#include "kernel_test_util.h"
#include "kernels/packed_layout.h"
#include "kernels/packed_matrix.h"

namespace lowbit {
namespace {

std::vector<QuantSpec> kernel_specs() {
  std::vector<QuantSpec> v = all_test_specs();
  for (const char* s : {"f32", "f16", "bf16", "int7:g64", "int7:g32:asym", "int8:g128:asym:bf16s",
                        "nf4:g32:bf16s", "fp4:g64:bf16s", "fp8:g32", "fp8:g64:bf16s", "ternary:gc",
                        "int3:g128:dq", "int5:gc:asym", "int2:g32:asym", "int8:gc"})
    v.push_back(parse_quant_spec(s));
  return v;
}

struct Shape {
  int64_t rows, cols, T;
};

// Every awkward size appears as rows and as cols; T = 64 exercises full prefill tiles.
std::vector<Shape> shapes_for(const QuantSpec& spec) {
  std::vector<Shape> v = {{1, 1, 1},     {3, 7, 2},     {7, 31, 5},    {31, 33, 1},  {33, 127, 2},
                          {127, 129, 1}, {129, 172, 5}, {172, 257, 2}, {257, 3, 1},  {704, 1, 2},
                          {1, 704, 5},   {17, 64, 64},  {40, 257, 64}, {33, 704, 64}};
  const int64_t g = spec.group > 0 ? spec.group : 128;
  for (int64_t c : {g - 1, g + 1, 2 * g + 1, 3 * g}) v.push_back({19, c, c % 2 ? 5 : 1});
  return v;
}

std::string describe(const QuantSpec& spec, const Shape& s, Isa isa) {
  return spec.to_string() + " [" + std::to_string(s.rows) + "x" + std::to_string(s.cols) +
         "] T=" + std::to_string(s.T) + " " + isa_name(isa);
}

// Runs one case; returns false after the first failure so the log stays short.
bool check_case(const QuantizedMatrix& m, const Shape& s, uint64_t seed) {
  const std::vector<float> x = test::random_acts(s.T, s.cols, seed);
  const PackedMatrix ref = PackedMatrix::pack(m, Isa::Scalar);
  std::vector<float> y_ref(s.T * s.rows, -1.0f);
  ref.matmul(x.data(), s.T, y_ref.data());
  const test::OracleResult o = test::oracle(m, x.data(), s.T);
  for (int64_t i = 0; i < s.T * s.rows; ++i) {
    const double err = std::fabs(double(y_ref[i]) - o.y[i]);
    if (!(err <= o.bound[i])) {
      ADD_FAILURE() << describe(m.spec, s, Isa::Scalar) << " vs oracle at t=" << i / s.rows
                    << " r=" << i % s.rows << ": " << y_ref[i] << " vs " << o.y[i] << " err " << err
                    << " > bound " << o.bound[i];
      return false;
    }
  }
  for (Isa isa : supported_isas()) {
    if (isa == Isa::Scalar) continue;
    const PackedMatrix p = PackedMatrix::pack(m, isa);
    EXPECT_EQ(p.isa(), isa);
    std::vector<float> y(s.T * s.rows, -2.0f);
    p.matmul(x.data(), s.T, y.data());
    for (int64_t i = 0; i < s.T * s.rows; ++i) {
      if (std::memcmp(&y[i], &y_ref[i], 4) != 0) {
        ADD_FAILURE() << describe(m.spec, s, isa) << " vs scalar twin at t=" << i / s.rows
                      << " r=" << i % s.rows << ": " << y[i] << " vs " << y_ref[i];
        return false;
      }
    }
  }
  return true;
}

TEST(PackedMatrix, MatchesTwinAndOracleForEverySpecAndShape) {
  uint64_t seed = 1;
  for (const QuantSpec& spec : kernel_specs()) {
    for (const Shape& s : shapes_for(spec)) {
      if (s.cols % vector_dim(spec) != 0) continue;  // e8p: rows of 8k weights only
      const QuantizedMatrix m = test::random_matrix(spec, s.rows, s.cols, seed++);
      if (!check_case(m, s, seed++)) break;
    }
  }
}

// Matrices from the real quantizer (RTN) rather than random codes.
TEST(PackedMatrix, MatchesOracleOnRtnQuantizedWeights) {
  for (const char* name : {"int4:g128", "int4:g32:asym", "int8:gc", "nf4:g64:dq", "fp4:g32",
                           "fp8:g128", "ternary:g64", "int3:g64:asym", "e8p:g64", "e8p:gc"}) {
    const QuantSpec spec = parse_quant_spec(name);
    const Shape s{48, 384, 5};
    std::vector<float> w = test::random_acts(s.rows, s.cols, 99);
    const QuantizedMatrix m = quantize_rtn(w.data(), s.rows, s.cols, spec);
    check_case(m, s, 7);
  }
}

TEST(PackedMatrix, PrefillRowsEqualDecodeOfEachToken) {
  const QuantizedMatrix m = test::random_matrix(parse_quant_spec("int4:g64:asym"), 70, 200, 5);
  const std::vector<float> x = test::random_acts(9, 200, 6);
  for (Isa isa : supported_isas()) {
    const PackedMatrix p = PackedMatrix::pack(m, isa);
    std::vector<float> y(9 * 70), y1(70);
    p.matmul(x.data(), 9, y.data());
    for (int t = 0; t < 9; ++t) {
      p.matmul(x.data() + t * 200, 1, y1.data());
      EXPECT_EQ(0, std::memcmp(y1.data(), y.data() + t * 70, 70 * 4))
          << isa_name(isa) << " t=" << t;
    }
  }
}

// dequantize_rows decodes the packed layout of every ISA back to the formats oracle's weights
// (NF4: to its int8 levels, within 0.5/127 of the group scale; E4M3 NaN codes aside, none here)
// and every ISA decodes the same values, for any row range.
TEST(PackedMatrix, DequantizeRowsMatchesFormatsOracle) {
  uint64_t seed = 500;
  for (const QuantSpec& spec : kernel_specs()) {
    for (const Shape& s : {Shape{1, 1, 1}, Shape{7, 31, 1}, Shape{33, 129, 1}, Shape{19, 257, 1},
                           Shape{40, 704, 1}}) {
      if (s.cols % vector_dim(spec) != 0) continue;
      const QuantizedMatrix m = test::random_matrix(spec, s.rows, s.cols, seed++);
      const std::vector<float> ref = dequantize(m);
      const bool nf4 = spec.kind == FormatKind::NF4;
      std::vector<float> first;
      for (Isa isa : supported_isas()) {
        const PackedMatrix p = PackedMatrix::pack(m, isa);
        std::vector<float> w(s.rows * s.cols, -7.0f);
        const int64_t split = s.rows / 2;  // two calls: any row range works
        p.dequantize_rows(0, split, w.data());
        p.dequantize_rows(split, s.rows - split, w.data() + split * s.cols);
        for (int64_t i = 0; i < s.rows * s.cols; ++i) {
          const int64_t r = i / s.cols, g = (i % s.cols) / m.group_len();
          const float level_bound = nf4 ? 0.5f / 127.0f * std::fabs(group_scale(m, r, g)) * 1.001f : 0.0f;
          ASSERT_LE(std::fabs(w[i] - ref[i]), level_bound + 1e-6f * std::fabs(ref[i]))
              << describe(spec, s, isa) << " at " << i;
        }
        if (first.empty())
          first = w;
        else
          ASSERT_EQ(0, std::memcmp(first.data(), w.data(), w.size() * 4)) << describe(spec, s, isa);
      }
    }
  }
}

TEST(PackedMatrix, ReportsShapeSpecAndBytes) {
  const QuantizedMatrix m = test::random_matrix(parse_quant_spec("int4:g128"), 64, 256, 3);
  for (Isa isa : supported_isas()) {
    PackedMatrix p = PackedMatrix::pack(m, isa);
    PackedMatrix q = std::move(p);
    EXPECT_EQ(q.rows(), 64);
    EXPECT_EQ(q.cols(), 256);
    EXPECT_EQ(q.spec(), m.spec);
    EXPECT_EQ(q.isa(), isa);
    if (isa != Isa::Scalar) {
      EXPECT_EQ(q.weight_bytes(), 64 * 256 / 2 + 64 * 2 * 2);  // codes + fp16 scales
    }
  }
}

// Where the E8P kernel runs, the packed codes stay 2 bits per weight (the 16-bit codes), and
// every one of the 2^16 codes decodes as the formats' decoder says (the twin test above checks
// the products on random codes; this pins the decode of each code once).
TEST(PackedMatrix, E8pKeepsItsCodesWhereItsKernelRuns) {
  if (!e8p_direct_enabled()) GTEST_SKIP() << "no AVX512_VBMI/GFNI/BITALG here, or LOWBIT_E8P_EXPAND set";
  const QuantizedMatrix m = test::random_matrix(parse_quant_spec("e8p:g64"), 40, 256, 4);
  const PackedMatrix p = PackedMatrix::pack(m, Isa::Avx512);
  EXPECT_EQ(p.weight_bytes(), 48 * 256 / 4 + 48 * 4 * 2);  // 3 row tiles of 16; fp16 scales
  // All 2^16 codes, once each: row r's k-th code is r·4096 + k.
  QuantizedMatrix all = test::random_matrix(parse_quant_spec("e8p:gc"), 16, 8 * 4096, 5);
  for (int64_t r = 0; r < 16; ++r)
    for (int64_t k = 0; k < 4096; ++k) {
      const uint32_t code = static_cast<uint32_t>(r * 4096 + k);
      all.codes[r * all.row_code_bytes() + 2 * k] = static_cast<uint8_t>(code & 0xFF);
      all.codes[r * all.row_code_bytes() + 2 * k + 1] = static_cast<uint8_t>(code >> 8);
    }
  const std::vector<float> ref = dequantize(all);
  const PackedMatrix q = PackedMatrix::pack(all, Isa::Avx512);
  std::vector<float> w(16 * 8 * 4096);
  q.dequantize_rows(0, 16, w.data());
  for (size_t i = 0; i < w.size(); ++i)
    ASSERT_LE(std::fabs(w[i] - ref[i]), 1e-6f * std::fabs(ref[i])) << "code " << (i / 8) << " weight " << i % 8;
  check_case(all, Shape{16, all.cols, 3}, 7);
}

TEST(PackedMatrix, EmptyAndMovedFromAreZeroByZero) {
  PackedMatrix e;
  EXPECT_EQ(e.rows(), 0);
  EXPECT_EQ(e.weight_bytes(), 0);
  float y = 7.0f;
  e.matmul(&y, 1, &y);  // no-op
  EXPECT_EQ(y, 7.0f);
  PackedMatrix p = PackedMatrix::pack(test::random_matrix(parse_quant_spec("nf4:g64"), 5, 64, 2));
  p.flush_cache();
  PackedMatrix q = std::move(p);
  EXPECT_EQ(p.rows(), 0);  // NOLINT(bugprone-use-after-move): documented state
  EXPECT_EQ(q.rows(), 5);
}

TEST(PackedMatrix, RejectsInconsistentArrays) {
  QuantizedMatrix m = test::random_matrix(parse_quant_spec("int4:g32"), 8, 64, 1);
  m.scales.pop_back();
  EXPECT_THROW(PackedMatrix::pack(m), Error);
  QuantizedMatrix f = test::random_matrix(parse_quant_spec("f16"), 8, 64, 1);
  f.codes.resize(10);
  EXPECT_THROW(PackedMatrix::pack(f), Error);
}

TEST(Isa, BestIsSupportedAndNamed) {
  const std::vector<Isa> isas = supported_isas();
  ASSERT_FALSE(isas.empty());
  EXPECT_EQ(isas.front(), Isa::Scalar);
  EXPECT_EQ(isas.back(), best_isa());
  EXPECT_STREQ(isa_name(Isa::Avx512), "avx512");
}

}  // namespace
}  // namespace lowbit
