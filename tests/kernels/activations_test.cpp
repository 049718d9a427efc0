// Activation block quantization: the AVX2 version equals its plain twin byte for byte, also on
// non-finite inputs (a model whose weights overflow fp32), where the twin must stay free of
// undefined behaviour (the conversion follows vcvtps2dq: INT32_MIN, saturated q, wrapping sum).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/activations.h"
#include "kernels/packed_matrix.h"

namespace lowbit {
namespace {

void expect_twins_equal(const std::vector<float>& x, int n) {
  int8_t qa[32], qb[32];
  float da = 1.0f, db = 2.0f;
  int32_t sa = 1, sb = 2;
  quantize_block_ref(x.data(), n, qa, &da, &sa);
  quantize_block_avx2(x.data(), n, qb, &db, &sb);
  EXPECT_EQ(std::memcmp(qa, qb, 32), 0);
  EXPECT_EQ(std::memcmp(&da, &db, 4), 0);
  EXPECT_EQ(sa, sb);
}

TEST(Activations, Avx2EqualsTwinOnFiniteAndNonFiniteBlocks) {
  const std::vector<Isa> isas = supported_isas();
  if (isas.size() < 2) GTEST_SKIP() << "no AVX2 on this CPU";
  std::vector<float> x(32);
  for (int i = 0; i < 32; ++i) x[i] = std::sin(0.7f * i) * (i % 5 + 1);
  for (int n : {1, 7, 31, 32}) expect_twins_equal(x, n);
  x[3] = INFINITY;
  expect_twins_equal(x, 32);
  x[3] = NAN;
  expect_twins_equal(x, 32);
  x[3] = -3e38f;
  x[9] = 3e38f;
  expect_twins_equal(x, 32);
  std::fill(x.begin(), x.end(), -INFINITY);
  expect_twins_equal(x, 32);
  std::fill(x.begin(), x.end(), 0.0f);
  expect_twins_equal(x, 17);
}

}  // namespace
}  // namespace lowbit
