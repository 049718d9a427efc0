// Mean KL(P_ref ‖ P_got) over rows of two logit tables [rows, V], in double: the quality measure
// of the model-level tests of cache and activation formats.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace lowbit::test {

inline double mean_kl(const std::vector<float>& ref, const std::vector<float>& got, int64_t rows, int64_t V) {
  double total = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const float* p = &ref[r * V];
    const float* q = &got[r * V];
    double mp = p[0], mq = q[0], zp = 0, zq = 0, kl = 0;
    for (int64_t i = 0; i < V; ++i) mp = std::max<double>(mp, p[i]), mq = std::max<double>(mq, q[i]);
    for (int64_t i = 0; i < V; ++i) zp += std::exp(p[i] - mp), zq += std::exp(q[i] - mq);
    for (int64_t i = 0; i < V; ++i) {
      const double lp = p[i] - mp - std::log(zp), lq = q[i] - mq - std::log(zq);
      kl += std::exp(lp) * (lp - lq);
    }
    total += kl;
  }
  return total / static_cast<double>(rows);
}

}  // namespace lowbit::test
