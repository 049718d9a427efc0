// Kernel micro-benchmarks (ARCHITECTURE.md convention 11): for each format × ISA, decode matvec
// at 4096×4096 and 11008×4096 with the weights flushed from the caches before every call (GB/s
// of PackedMatrix::weight_bytes; the matrices would otherwise sit in this CPU's L3) and prefill
// matmul at T = 64 and 128 on 4096×4096, 4096×11008 and 11008×4096 (GFLOP/s, 2·rows·cols·T per
// call); plus a streaming-read bandwidth reference (2 threads summing a 1 GiB buffer) and OpenBLAS sgemm for the fp32 prefill
// baseline. Threads: LOWBIT_BENCH_THREADS (default 2); LOWBIT_BENCH_HOT=1 keeps decode's
// weights cached, LOWBIT_BENCH_COLD=1 flushes them before prefill calls too.
#include <benchmark/benchmark.h>
#include <cblas.h>
#include <immintrin.h>

#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "base/cpu.h"
#include "base/half.h"
#include "base/parallel.h"
#include "formats/codec.h"
#include "formats/quantized_matrix.h"
#include "kernels/packed_matrix.h"

namespace lowbit {
namespace {

const char* const kSpecs[] = {"f32",      "f16",        "bf16",           "fp8:gc",     "fp8:g128",
                              "int8:g32", "int8:g128",  "int8:g128:asym", "int6:g128",  "int5:g128",
                              "int4:g32", "int4:g128",  "int4:g128:asym", "int3:g128",  "int2:g64",
                              "nf4:g64",  "nf4:g64:dq", "fp4:g32",        "ternary:g64", "e8p:g64"};

// Random codes and plausible scales, built directly (speed only; values are irrelevant).
QuantizedMatrix bench_matrix(const QuantSpec& spec, int64_t rows, int64_t cols) {
  QuantizedMatrix m = make_quantized_matrix(spec, rows, cols);
  std::mt19937_64 rng(42);
  if (!spec.quantized()) {
    std::normal_distribution<float> nd(0.0f, 0.02f);
    for (int64_t i = 0; i < rows * cols; ++i) {
      const float v = nd(rng);
      if (spec.kind == FormatKind::F32)
        std::memcpy(&m.codes[4 * i], &v, 4);
      else {
        const uint16_t h = spec.kind == FormatKind::F16 ? f32_to_f16(v) : f32_to_bf16(v);
        std::memcpy(&m.codes[2 * i], &h, 2);
      }
    }
    return m;
  }
  for (size_t i = 0; i < m.codes.size(); i += 8) {
    const uint64_t r = rng();
    std::memcpy(&m.codes[i], &r, std::min<size_t>(8, m.codes.size() - i));
  }
  const uint16_t s = spec.scale_type == ScaleType::BF16 ? f32_to_bf16(0.01f) : f32_to_f16(0.01f);
  for (auto& v : m.scales) v = s;
  for (auto& z : m.zeros) z = static_cast<uint8_t>(rng() % (1u << spec.bits));
  for (auto& c : m.scale_codes) c = static_cast<uint8_t>(rng());
  for (auto& v : m.dq_scale) v = 1e-4f;
  for (auto& v : m.dq_offset) v = 0.001f;
  return m;
}

void set_threads() {
  const char* e = std::getenv("LOWBIT_BENCH_THREADS");
  set_num_threads(e ? std::atoi(e) : 2);
}

void bm_matmul(benchmark::State& st, std::string spec_name, Isa isa, int64_t rows, int64_t cols,
               int64_t T) {
  set_threads();
  const QuantSpec spec = parse_quant_spec(spec_name);
  const PackedMatrix p = PackedMatrix::pack(bench_matrix(spec, rows, cols), isa);
  std::vector<float> x(T * cols), y(T * rows);
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (float& v : x) v = nd(rng);
  for (auto _ : st) {
    if ((T == 1 || std::getenv("LOWBIT_BENCH_COLD")) && !std::getenv("LOWBIT_BENCH_HOT")) {  // decode streams weights from DRAM: start
                                                       // every call with cold caches
      st.PauseTiming();
      p.flush_cache();
      st.ResumeTiming();
    }
    p.matmul(x.data(), T, y.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  st.SetBytesProcessed(st.iterations() * p.weight_bytes());
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * rows * cols * T * 1e-9,
                                              benchmark::Counter::kIsIterationInvariantRate);
  st.counters["bpw"] = 8.0 * p.weight_bytes() / (rows * cols);
}

void bm_sgemm_openblas(benchmark::State& st, int64_t rows, int64_t cols, int64_t T) {
  set_threads();
  std::vector<float> w(rows * cols, 0.01f), x(T * cols, 1.0f), y(T * rows);
  constexpr int64_t kRowBlock = 64;  // as model/matrix.cpp: one single-threaded sgemm per slice
  for (auto _ : st) {
    parallel_for((rows + kRowBlock - 1) / kRowBlock, [&](int64_t b0, int64_t b1) {
      const int64_t r0 = b0 * kRowBlock, r1 = std::min(rows, b1 * kRowBlock);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(T), int(r1 - r0), int(cols), 1.0f,
                  x.data(), int(cols), w.data() + r0 * cols, int(cols), 0.0f, y.data() + r0,
                  int(rows));
    });
    benchmark::ClobberMemory();
  }
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * rows * cols * T * 1e-9,
                                              benchmark::Counter::kIsIterationInvariantRate);
}


// Streaming read bandwidth: threads sum disjoint halves of a 1 GiB buffer.
void bm_stream_read(benchmark::State& st) {
  set_threads();
  const int64_t n = (int64_t{1} << 30) / 4;
  std::vector<float> buf(n, 1.0f);
  std::vector<float> sums(64);
  for (auto _ : st) {
    parallel_for(num_threads(), [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const float* p = buf.data() + n * t / num_threads();
        const int64_t len = n / num_threads();
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int64_t i = 0; i + 32 <= len; i += 32) {
          a0 = _mm256_add_ps(a0, _mm256_loadu_ps(p + i));
          a1 = _mm256_add_ps(a1, _mm256_loadu_ps(p + i + 8));
          a2 = _mm256_add_ps(a2, _mm256_loadu_ps(p + i + 16));
          a3 = _mm256_add_ps(a3, _mm256_loadu_ps(p + i + 24));
        }
        alignas(32) float tmp[8];
        _mm256_store_ps(tmp, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
        sums[t] = tmp[0] + tmp[7];
      }
    });
    benchmark::DoNotOptimize(sums.data());
  }
  st.SetBytesProcessed(st.iterations() * n * 4);
}

void register_all() {
  benchmark::RegisterBenchmark("stream_read_1GiB", bm_stream_read)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
  for (Isa isa : supported_isas()) {
    for (const char* s : kSpecs) {
      const std::string base = std::string(s) + "/" + isa_name(isa);
      for (auto [rows, cols] : {std::pair<int64_t, int64_t>{4096, 4096}, {11008, 4096}})
        benchmark::RegisterBenchmark(
            (base + "/matvec/" + std::to_string(rows) + "x" + std::to_string(cols)).c_str(),
            bm_matmul, s, isa, rows, cols, 1)
            ->UseRealTime()
            ->Unit(benchmark::kMicrosecond);
      if (isa == Isa::Scalar) continue;  // the scalar twin is a reference, not a prefill path
      for (int64_t T : {64, 128})
        for (auto [rows, cols] : {std::pair<int64_t, int64_t>{4096, 4096}, {4096, 11008}, {11008, 4096}})
          benchmark::RegisterBenchmark(
              (base + "/matmul_T" + std::to_string(T) + "/" + std::to_string(rows) + "x" + std::to_string(cols)).c_str(),
              bm_matmul, s, isa, rows, cols, T)
              ->UseRealTime()
              ->Unit(benchmark::kMillisecond);
    }
  }
  for (int64_t T : {64, 128})
    benchmark::RegisterBenchmark(
        ("openblas_sgemm/matmul_T" + std::to_string(T) + "/4096x4096").c_str(), bm_sgemm_openblas,
        4096, 4096, T)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
}

}  // namespace
}  // namespace lowbit

int main(int argc, char** argv) {
  lowbit::configure_runtime(argv);
  benchmark::Initialize(&argc, argv);
  lowbit::register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
