// CPU feature detection and one start-up fix for OpenBLAS.
#pragma once

namespace lowbit {

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false, avx512vnni = false;
};
const CpuFeatures& cpu_features();

// configure_runtime: sets the environment the BLAS and OpenMP runtimes read at load time, then
// re-executes the program once if it changed anything (call it first in main()).
//
// Debian's OpenBLAS picks its kernel set at load time and falls back to the SSE3 "Prescott"
// kernels on CPUs it does not know (e.g. this project's Xeon machines), halving sgemm speed.
// It honours OPENBLAS_CORETYPE, but only when set before the library loads: if the variable is
// unset, configure_runtime sets it from the CPU features (SkylakeX for AVX-512,
// Haswell for AVX2) and re-executes the program once; otherwise it returns at once.
// The same re-exec bounds libgomp's barrier spinning (GOMP_SPINCOUNT = `gomp_spincount`, unless
// GOMP_SPINCOUNT or OMP_WAIT_POLICY is set). libgomp's default of 300000 spins collapses when two
// OpenMP processes share the 2 cores (ref-m int4 decode, two benches at once: 3 tok/s each with
// 300000, 26-60 with 100000, 84 with 10000); on a quiet machine 10000 costs ~14% of decode speed
// and 100000 nothing measurable. The CLI uses 100000, the test binaries (run two at a time by
// ctest -j2) 10000. Our own thread pool with bounded spinning is the real fix (issue 3).
inline constexpr int kCliSpinCount = 100000;
inline constexpr int kTestSpinCount = 10000;
void configure_runtime(char** argv, int gomp_spincount = kCliSpinCount);

}  // namespace lowbit
