// E8P (formats/e8p.h): the code book's construction against its definition, the nearest-point
// search against brute force over all 2^16 codes, and the group codec's round trip.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <set>
#include <vector>

#include "formats/codec.h"
#include "formats/e8p.h"
#include "formats/quant_spec.h"
#include "formats/test_data.h"

namespace lowbit {
namespace {

std::array<float, kE8pDim> decoded(uint16_t code) {
  std::array<float, kE8pDim> v{};
  e8p_decode(code, v.data());
  return v;
}

double dist2(const float* x, const std::array<float, kE8pDim>& v) {
  double d = 0.0;
  for (int i = 0; i < kE8pDim; ++i) d += (static_cast<double>(x[i]) - v[i]) * (x[i] - v[i]);
  return d;
}

TEST(E8p, BookHas256DistinctPatternsOfBoundedNorm) {
  const E8pBook& b = e8p_book();
  std::set<std::array<uint8_t, kE8pDim>> seen;
  int norm10 = 0, norm12 = 0;
  for (int p = 0; p < kE8pPatterns; ++p) {
    int sq = 0;
    for (uint8_t a : b.a[p]) {
      EXPECT_TRUE(a == 1 || a == 3 || a == 5);
      sq += a * a;
    }
    norm10 += sq <= 40;
    norm12 += sq == 48;
    seen.insert(b.a[p]);
  }
  EXPECT_EQ(seen.size(), 256u);
  EXPECT_EQ(norm10, 227);  // every half-integer pattern of norm² <= 10
  EXPECT_EQ(norm12, 29);
  EXPECT_EQ(b.a[0], (std::array<uint8_t, kE8pDim>{1, 1, 1, 1, 1, 1, 1, 1}));
}

// Every code decodes to y + t with y in D̂8 (half-integers, even sum), t = ±1/4, |y| one of the
// patterns; all 2^16 codes are distinct points.
TEST(E8p, EveryCodeIsADistinctShiftedE8Point) {
  std::set<std::array<int, kE8pDim>> points;
  for (uint32_t c = 0; c < 65536; ++c) {
    int8_t x4[kE8pDim];
    e8p_decode_x4(static_cast<uint16_t>(c), x4);
    const int t = c >> 15 ? -1 : 1;
    int sum2y = 0;  // Σ 2y
    std::array<int, kE8pDim> key{};
    for (int i = 0; i < kE8pDim; ++i) {
      ASSERT_EQ((x4[i] - t) % 2, 0);
      const int two_y = (x4[i] - t) / 2;
      ASSERT_EQ(std::abs(two_y) % 2, 1);
      ASSERT_EQ(std::abs(two_y), e8p_book().a[c & 0xff][i]);
      ASSERT_LE(std::abs(x4[i]), 11);
      sum2y += two_y;
      key[i] = x4[i];
    }
    ASSERT_EQ(sum2y % 4, 0) << "code " << c;  // Σy even
    points.insert(key);
    float v[kE8pDim];
    e8p_decode(static_cast<uint16_t>(c), v);
    for (int i = 0; i < kE8pDim; ++i) ASSERT_EQ(v[i], 0.25f * x4[i]);
  }
  EXPECT_EQ(points.size(), 65536u);
}

// The structured search finds the exact nearest point (ties may pick another point at the same
// distance) for inputs at several scales, including exact code-book points and zero.
TEST(E8p, NearestMatchesBruteForce) {
  std::vector<std::array<float, kE8pDim>> book(65536);
  for (uint32_t c = 0; c < 65536; ++c) book[c] = decoded(static_cast<uint16_t>(c));
  test::Rng rng(17);
  for (int trial = 0; trial < 300; ++trial) {
    float x[kE8pDim];
    const double sigma = trial < 100 ? 0.5 : trial < 200 ? 1.0 : 3.0;
    for (float& v : x) v = static_cast<float>(sigma * rng.normal());
    if (trial == 0) {
      std::fill(x, x + kE8pDim, 0.0f);
    } else if (trial == 1) {
      const auto p = book[12345];
      std::copy(p.begin(), p.end(), x);
    }
    double best = INFINITY;
    for (const auto& p : book) best = std::min(best, dist2(x, p));
    const uint16_t c = e8p_nearest(x);
    EXPECT_NEAR(dist2(x, book[c]), best, 1e-5 * (1.0 + best)) << "trial " << trial;
    if (trial == 1) {
      EXPECT_EQ(c, 12345);
    }
  }
}

// The group codec round trip: encode_group's 2-bit pieces reassemble to the nearest code of
// w / scale, decode_group gives scale times its point, group_sq_error their squared distance.
TEST(E8p, GroupCodecRoundTrip) {
  const QuantSpec s = parse_quant_spec("e8p:g32");
  EXPECT_EQ(s.kind, FormatKind::E8P);
  EXPECT_EQ(s.bits, 2);
  EXPECT_EQ(s.to_string(), "e8p:g32");
  test::Rng rng(5);
  std::vector<float> w(32);
  for (float& v : w) v = static_cast<float>(0.02 * rng.normal());
  const GroupParams p = fit_group(s, w.data(), 32);
  EXPECT_GT(p.scale, 0.0f);
  std::vector<uint8_t> q(32);
  encode_group(s, w.data(), 32, p, q.data());
  std::vector<float> back(32);
  decode_group(s, q.data(), 32, p, back.data());
  double err = 0.0;
  for (int k = 0; k < 32; k += kE8pDim) {
    float x[kE8pDim];
    for (int i = 0; i < kE8pDim; ++i) x[i] = w[k + i] * p.inv_scale;
    const uint16_t c = e8p_nearest(x);
    uint16_t from_pieces = 0;
    for (int j = 0; j < kE8pDim; ++j) {
      EXPECT_LE(q[k + j], 3);
      from_pieces |= static_cast<uint16_t>(q[k + j] << (2 * j));
    }
    EXPECT_EQ(from_pieces, c);
    const auto v = decoded(c);
    for (int i = 0; i < kE8pDim; ++i) {
      EXPECT_EQ(back[k + i], p.scale * v[i]);
      err += (static_cast<double>(w[k + i]) - back[k + i]) * (w[k + i] - back[k + i]);
    }
  }
  EXPECT_NEAR(group_sq_error(s, w.data(), nullptr, 32, p), err, 1e-12);
}

// Gaussian weights: the fitted scale's relative RMSE lies in a band around the code book's
// ~2-bit distortion (a uniform 2-bit grid with an absmax scale is near 0.5 at g64; the E8
// lattice packs points better). Two-sided: a change of the book or the fit shows up here.
TEST(E8p, GaussianDistortionBand) {
  const QuantSpec s = parse_quant_spec("e8p:g64");
  test::Rng rng(11);
  double se = 0.0, ss = 0.0;
  for (int g = 0; g < 200; ++g) {
    std::vector<float> w(64), back(64);
    std::vector<uint8_t> q(64);
    for (float& v : w) v = static_cast<float>(rng.normal());
    const GroupParams p = fit_group(s, w.data(), 64);
    encode_group(s, w.data(), 64, p, q.data());
    decode_group(s, q.data(), 64, p, back.data());
    for (int i = 0; i < 64; ++i) {
      se += (w[i] - back[i]) * (w[i] - back[i]);
      ss += w[i] * w[i];
    }
  }
  const double rel = std::sqrt(se / ss);
  EXPECT_GT(rel, 0.28);  // measured 0.295; Lloyd-Max scalar 2 bits: sqrt(0.1175) = 0.343
  EXPECT_LT(rel, 0.31);
}

}  // namespace
}  // namespace lowbit
