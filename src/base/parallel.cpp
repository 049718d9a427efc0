#include "base/parallel.h"

#include <omp.h>

#include <algorithm>
#include <thread>

extern "C" void openblas_set_num_threads(int);

namespace lowbit {

namespace {
int g_threads = 0;
}

void set_num_threads(int n) {
  if (n <= 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  g_threads = n;
  omp_set_num_threads(n);
  // OpenBLAS runs single-threaded inside our parallel_for slices: two thread pools spinning
  // against each other on the same cores cost more than they give.
  openblas_set_num_threads(1);
}

int num_threads() {
  if (g_threads == 0) set_num_threads(0);
  return g_threads;
}

void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  const int64_t t = std::min<int64_t>(num_threads(), n);
  if (t == 1) {
    fn(0, n);
    return;
  }
#pragma omp parallel for num_threads(t) schedule(static, 1)
  for (int64_t i = 0; i < t; ++i) {
    const int64_t begin = n * i / t;
    const int64_t end = n * (i + 1) / t;
    fn(begin, end);
  }
}

}  // namespace lowbit
