// add_scaled_f16_rows against its scalar twin: bit for bit over awkward row ranges and ranks,
// with fp16 values of every class (normal, subnormal, zero, ±inf) and offsets into a strided B.
#include "kernels/f16_axpy.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "base/half.h"

namespace lowbit {
namespace {

std::vector<uint16_t> random_f16(size_t n, std::mt19937& rng, bool specials) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<uint16_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = f32_to_f16(nd(rng));
  if (specials && n >= 4) {
    v[0] = 0x0001;  // smallest subnormal
    v[1] = 0x8000;  // -0
    v[2] = 0x03ff;  // largest subnormal
    v[n - 1] = 0x7bff;  // largest finite
  }
  return v;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(F16Axpy, MatchesScalarTwinBitForBit) {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (int64_t r : {1, 3, 32}) {
    for (int64_t n : {1, 3, 7, 8, 31, 33, 127, 129, 4096}) {
      for (int64_t i0 : {int64_t{0}, int64_t{5}}) {
        const int64_t stride = n + i0 + 3;  // B's rows are longer than the range read
        const std::vector<uint16_t> b = random_f16(static_cast<size_t>(r * stride), rng, true);
        std::vector<float> s(static_cast<size_t>(r)), y(static_cast<size_t>(stride));
        for (float& v : s) v = nd(rng);
        for (float& v : y) v = nd(rng);
        std::vector<float> want = y, got = y;
        add_scaled_f16_rows_ref(s.data(), b.data(), r, stride, i0, i0 + n, want.data());
        add_scaled_f16_rows(s.data(), b.data(), r, stride, i0, i0 + n, got.data());
        EXPECT_TRUE(same_bits(want, got)) << "r=" << r << " n=" << n << " i0=" << i0;
        // Outside [i0, i0 + n) nothing is touched.
        for (int64_t i = 0; i < i0; ++i) EXPECT_EQ(got[i], y[i]);
        for (int64_t i = i0 + n; i < stride; ++i) EXPECT_EQ(got[i], y[i]);
      }
    }
  }
}

TEST(F16Axpy, ScalarTwinIsTheDefinition) {
  // y = 1 + 2·1.5 + (−0.5)·inf → −inf; the exact fp16 values 1.5 and inf decode exactly.
  const float s[] = {2.0f, -0.5f};
  const uint16_t b[] = {0x3e00, 0x7c00};  // row 0: 1.5, row 1: +inf (stride 1)
  float y = 1.0f;
  add_scaled_f16_rows_ref(s, b, 2, 1, 0, 1, &y);
  EXPECT_EQ(y, -INFINITY);
  float z = 1.0f;
  add_scaled_f16_rows_ref(s, b, 1, 1, 0, 1, &z);
  EXPECT_EQ(z, 4.0f);
}

}  // namespace
}  // namespace lowbit
