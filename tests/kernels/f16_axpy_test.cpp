// add_scaled_f16_blocks against its scalar twin: bit for bit over awkward output ranges and
// ranks, with fp16 values of every class (normal, subnormal, zero, ±inf); the blocked layout
// against the row-major Bᵀ it is made from.
#include "kernels/f16_axpy.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <utility>
#include <vector>

#include "base/half.h"

namespace lowbit {
namespace {

std::vector<uint16_t> random_f16(size_t n, std::mt19937& rng, bool specials) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<uint16_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = f32_to_f16(nd(rng));
  if (specials && n >= 4) {
    v[0] = 0x0001;      // smallest subnormal
    v[1] = 0x8000;      // -0
    v[2] = 0x03ff;      // largest subnormal
    v[n - 1] = 0x7bff;  // largest finite
  }
  return v;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(F16Axpy, BlockedLayoutHoldsEveryValueOnce) {
  std::mt19937 rng(3);
  for (int64_t r : {1, 5}) {
    for (int64_t n : {1, 7, 16, 17, 40}) {
      const std::vector<uint16_t> bt = random_f16(static_cast<size_t>(r * n), rng, false);
      const std::vector<uint16_t> blocks = block_f16_rows(bt.data(), r, n);
      ASSERT_EQ(blocks.size(),
                static_cast<size_t>(r * kF16Block * ((n + kF16Block - 1) / kF16Block)));
      for (int64_t j = 0; j < r; ++j)
        for (int64_t i = 0; i < n; ++i)
          EXPECT_EQ(blocks[(i / kF16Block * r + j) * kF16Block + i % kF16Block], bt[j * n + i]);
      size_t zeros = 0;
      for (uint16_t v : blocks) zeros += v == 0;
      EXPECT_GE(zeros, blocks.size() - bt.size());  // the padding
    }
  }
}

TEST(F16Axpy, MatchesScalarTwinBitForBit) {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (int64_t r : {1, 3, 32}) {
    for (int64_t total : {1, 3, 7, 8, 31, 33, 127, 129, 4096}) {
      const std::vector<uint16_t> bt = random_f16(static_cast<size_t>(r * total), rng, true);
      const std::vector<uint16_t> blocks = block_f16_rows(bt.data(), r, total);
      for (int64_t i0 : {int64_t{0}, int64_t{5}, int64_t{16}, int64_t{21}}) {
        for (int64_t i1 : {total, total - 3, i0 + 40, i0 + 80}) {
          if (i0 > i1 || i1 > total || i1 < 0) continue;
          std::vector<float> s(static_cast<size_t>(r)), y(static_cast<size_t>(total));
          for (float& v : s) v = nd(rng);
          for (float& v : y) v = nd(rng);
          std::vector<float> want = y, got = y;
          add_scaled_f16_blocks_ref(s.data(), blocks.data(), r, i0, i1, want.data());
          add_scaled_f16_blocks(s.data(), blocks.data(), r, i0, i1, got.data());
          EXPECT_TRUE(same_bits(want, got))
              << "r=" << r << " n=" << total << " i0=" << i0 << " i1=" << i1;
          // Outside [i0, i1) nothing is touched.
          for (int64_t i = 0; i < i0; ++i) EXPECT_EQ(got[i], y[i]);
          for (int64_t i = i1; i < total; ++i) EXPECT_EQ(got[i], y[i]);
        }
      }
    }
  }
}

// Each vector path on its own (the dispatcher runs only one of them on a given CPU).
TEST(F16Axpy, EveryVectorPathMatchesScalarTwin) {
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (int64_t r : {1, 7, 32}) {
    const int64_t total = 16 * 9;
    const std::vector<uint16_t> bt = random_f16(static_cast<size_t>(r * total), rng, true);
    const std::vector<uint16_t> blocks = block_f16_rows(bt.data(), r, total);
    for (auto [k0, k1] : {std::pair<int64_t, int64_t>{0, 9}, {1, 8}, {3, 4}, {2, 7}}) {
      std::vector<float> s(static_cast<size_t>(r)), y(static_cast<size_t>(total));
      for (float& v : s) v = nd(rng);
      for (float& v : y) v = nd(rng);
      std::vector<float> want = y;
      add_scaled_f16_blocks_ref(s.data(), blocks.data(), r, 16 * k0, 16 * k1, want.data());
      std::vector<float> got = y;
      detail::add_scaled_f16_blocks_avx2(s.data(), blocks.data(), r, k0, k1, got.data());
      EXPECT_TRUE(same_bits(want, got)) << "avx2 r=" << r << " blocks " << k0 << ".." << k1;
      if (detail::runs_f16_blocks_avx512()) {
        got = y;
        detail::add_scaled_f16_blocks_avx512(s.data(), blocks.data(), r, k0, k1, got.data());
        EXPECT_TRUE(same_bits(want, got)) << "avx512 r=" << r << " blocks " << k0 << ".." << k1;
      }
    }
  }
}

TEST(F16Axpy, ScalarTwinIsTheDefinition) {
  // y = 1 + 2·1.5 + (−0.5)·inf → −inf; the exact fp16 values 1.5 and inf decode exactly.
  const float s[] = {2.0f, -0.5f};
  const uint16_t bt[] = {0x3e00, 0x7c00};  // Bᵀ [2, 1]: row 0: 1.5, row 1: +inf
  const std::vector<uint16_t> blocks = block_f16_rows(bt, 2, 1);
  float y = 1.0f;
  add_scaled_f16_blocks_ref(s, blocks.data(), 2, 0, 1, &y);
  EXPECT_EQ(y, -INFINITY);
  const std::vector<uint16_t> first = block_f16_rows(bt, 1, 1);
  float z = 1.0f;
  add_scaled_f16_blocks_ref(s, first.data(), 1, 0, 1, &z);
  EXPECT_EQ(z, 4.0f);
}

}  // namespace
}  // namespace lowbit
