// CPU feature detection and one start-up fix for OpenBLAS.
#pragma once

namespace lowbit {

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false, avx512vnni = false;
  bool avx512vbmi = false, avx512bitalg = false, gfni = false;  // the E8P kernel's byte tools
};
const CpuFeatures& cpu_features();

// configure_runtime: sets the environment the BLAS runtime reads at load time, then re-executes
// the program once if it changed anything (call it first in main()).
//
// Debian's OpenBLAS picks its kernel set at load time and falls back to the SSE3 "Prescott"
// kernels on CPUs it does not know (e.g. this project's Xeon machines), halving sgemm speed.
// It honours OPENBLAS_CORETYPE, but only when set before the library loads: if the variable is
// unset, configure_runtime sets it from the CPU features (SkylakeX for AVX-512,
// Haswell for AVX2) and re-executes the program once; otherwise it returns at once.
void configure_runtime(char** argv);

}  // namespace lowbit
