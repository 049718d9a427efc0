#include "base/cpu.h"

#include <cpuid.h>
#include <unistd.h>

#include <cstdlib>

namespace lowbit {

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = [] {
    CpuFeatures c;
    __builtin_cpu_init();
    c.avx2 = __builtin_cpu_supports("avx2");
    c.fma = __builtin_cpu_supports("fma");
    // CPUID leaf 1, ECX bit 29 (clang 14's __builtin_cpu_supports does not know "f16c").
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    c.f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C) != 0;
    c.avx512f = __builtin_cpu_supports("avx512f");
    c.avx512bw = __builtin_cpu_supports("avx512bw");
    c.avx512vl = __builtin_cpu_supports("avx512vl");
    c.avx512dq = __builtin_cpu_supports("avx512dq");
    c.avx512vnni = __builtin_cpu_supports("avx512vnni");
    // CPUID leaf 7 sub-leaf 0, ECX: bit 1 AVX512_VBMI, bit 8 GFNI, bit 12 AVX512_BITALG (read
    // directly: not every compiler's __builtin_cpu_supports knows them). Only meaningful with
    // AVX-512F, whose check above includes the OS's saving of the zmm state.
    if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) {
      c.avx512vbmi = c.avx512f && (ecx & (1u << 1)) != 0;
      c.gfni = (ecx & (1u << 8)) != 0;
      c.avx512bitalg = c.avx512f && (ecx & (1u << 12)) != 0;
    }
    return c;
  }();
  return f;
}

void configure_runtime(char** argv) {
  bool changed = false;
  if (std::getenv("OPENBLAS_CORETYPE") == nullptr) {
    const CpuFeatures& f = cpu_features();
    const char* core = nullptr;
    if (f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq) core = "SkylakeX";
    else if (f.avx2 && f.fma) core = "Haswell";
    if (core != nullptr) {
      ::setenv("OPENBLAS_CORETYPE", core, 1);
      changed = true;
    }
  }
  if (changed) ::execv("/proc/self/exe", argv);  // only returns on failure: carry on as we are
}

}  // namespace lowbit
