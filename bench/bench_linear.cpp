// The decode cost of a low-rank error correction (":lr<r>", model/linear.h) in isolation: one
// block of Llama-2-7B linears (q, k, v, o 4096×4096; gate, up 11008×4096; down 4096×11008) at
// int4:g128, one token, with and without a rank-r correction on every linear, run alternately.
// The seven layers' 101 MB of codes (plus the factors' 10 MB) exceed the caches, so every pass
// streams them from memory as decode does. Reports the minimum and median time per pass of each
// over PASSES pairs (minimum: least disturbed by other work on the machine) and their ratio.
// Usage: bench_linear [rank=32] [passes=200] [threads=2]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "algo/rtn.h"
#include "base/parallel.h"
#include "formats/quant_spec.h"
#include "kernels/packed_matrix.h"
#include "model/linear.h"

namespace {

using namespace lowbit;

struct Shape {
  int64_t rows, cols;
};

Linear random_linear(const Shape& s, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 0.02f);
  std::vector<float> w(static_cast<size_t>(s.rows * s.cols));
  for (float& v : w) v = nd(rng);
  return Linear::packed(
      PackedMatrix::pack(quantize_rtn(w.data(), s.rows, s.cols, parse_quant_spec("int4:g128"))));
}

LowRankFactors random_factors(const Shape& s, int64_t rank, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 0.01f);
  LowRankFactors f;
  f.rank = rank, f.rows = s.rows, f.cols = s.cols;
  f.b.resize(static_cast<size_t>(s.rows * rank));
  f.a.resize(static_cast<size_t>(rank * s.cols));
  for (float& v : f.b) v = nd(rng);
  for (float& v : f.a) v = nd(rng);
  return f;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t rank = argc > 1 ? std::atoll(argv[1]) : 32;
  const int passes = argc > 2 ? std::atoi(argv[2]) : 200;
  set_num_threads(argc > 3 ? std::atoi(argv[3]) : 2);
  const Shape shapes[] = {{4096, 4096},  {4096, 4096},  {4096, 4096}, {4096, 4096},
                          {11008, 4096}, {11008, 4096}, {4096, 11008}};
  std::mt19937 rng(1);
  std::vector<Linear> plain, corrected;
  for (const Shape& s : shapes) {
    plain.push_back(random_linear(s, rng));
    corrected.push_back(random_linear(s, rng));
    corrected.back().set_correction(random_factors(s, rank, rng));
  }
  std::vector<float> x(11008, 0.5f), y(11008);
  const auto pass = [&](const std::vector<Linear>& ls) {
    const auto t0 = std::chrono::steady_clock::now();
    for (const Linear& l : ls) l.matmul(x.data(), 1, nullptr, y.data());
    return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
  };
  for (int i = 0; i < 5; ++i) pass(plain), pass(corrected);  // warm-up
  std::vector<double> tp, tc;
  for (int i = 0; i < passes; ++i) {
    tp.push_back(pass(plain));
    tc.push_back(pass(corrected));
  }
  const double min_p = *std::min_element(tp.begin(), tp.end()),
               min_c = *std::min_element(tc.begin(), tc.end());
  std::printf(
      "threads %d, rank %lld, %d pairs: int4:g128 min %.1f us median %.1f us; +lr%lld min %.1f us "
      "median %.1f us; "
      "cost %+.1f %% (min), %+.1f %% (median)\n",
      num_threads(), static_cast<long long>(rank), passes, min_p, median(tp),
      static_cast<long long>(rank), min_c, median(tc), 100.0 * (min_c / min_p - 1.0),
      100.0 * (median(tc) / median(tp) - 1.0));
  return 0;
}
