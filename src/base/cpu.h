// CPU feature detection and one start-up fix for OpenBLAS.
#pragma once

namespace lowbit {

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false, avx512vnni = false;
};
const CpuFeatures& cpu_features();

// Debian's OpenBLAS picks its kernel set at load time and falls back to the SSE3 "Prescott"
// kernels on CPUs it does not know (e.g. this project's Xeon machines), halving sgemm speed.
// It honours OPENBLAS_CORETYPE, but only when set before the library loads. Call this first in
// main(): if the variable is unset it sets it from the CPU features (SkylakeX for AVX-512,
// Haswell for AVX2) and re-executes the program once; otherwise it returns at once.
// The same re-exec bounds libgomp's barrier spinning (GOMP_SPINCOUNT=10000, about 10-30 µs,
// unless GOMP_SPINCOUNT or OMP_WAIT_POLICY is set): with the default 300000 spins, two threads
// on two cores shared with another busy process spent most of their time spinning for a thread
// that was not running (ref-m int4 decode fell from ~4400 to ~5 tok/s).
void pin_openblas_core(char** argv);

}  // namespace lowbit
