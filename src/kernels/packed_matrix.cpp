#include "kernels/packed_matrix.h"

#include <immintrin.h>

#include "base/cpu.h"
#include "base/error.h"
#include "base/parallel.h"
#include "kernels/activations.h"
#include "kernels/packed_layout.h"

namespace lowbit {

struct PackedImpl {
  QuantSpec spec;
  Isa isa = Isa::Scalar;
  int64_t rows = 0, cols = 0;
  int prefill_nt = 1;
  bool int_family = false;
  IntPacked ip;
  IntKernel ik = nullptr;
  FloatPacked fp;
  FloatKernel fk = nullptr;
};

namespace {

bool runs_avx512() {
  const CpuFeatures& f = cpu_features();
  return f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.avx512vnni;
}
bool runs_avx2() {
  const CpuFeatures& f = cpu_features();
  return f.avx2 && f.fma && f.f16c;
}

}  // namespace

IsaTraits isa_traits(Isa isa) {
  switch (isa) {
    case Isa::Avx512:
      return {16, 8};
    case Isa::Avx2:
      return {8, 4};
    default:
      return {1, 1};
  }
}

Isa best_isa() {
  static const Isa best = runs_avx512() ? Isa::Avx512 : runs_avx2() ? Isa::Avx2 : Isa::Scalar;
  return best;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Avx512:
      return "avx512";
    case Isa::Avx2:
      return "avx2";
    default:
      return "scalar";
  }
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> v{Isa::Scalar};
  if (runs_avx2()) v.push_back(Isa::Avx2);
  if (runs_avx512()) v.push_back(Isa::Avx512);
  return v;
}

PackedMatrix::PackedMatrix() = default;
PackedMatrix::~PackedMatrix() = default;
PackedMatrix::PackedMatrix(PackedMatrix&&) noexcept = default;
PackedMatrix& PackedMatrix::operator=(PackedMatrix&&) noexcept = default;

PackedMatrix PackedMatrix::pack(const QuantizedMatrix& m, Isa isa) {
  if ((isa == Isa::Avx512 && !runs_avx512()) || (isa == Isa::Avx2 && !runs_avx2()))
    isa = Isa::Scalar;
  auto impl = std::make_unique<PackedImpl>();
  impl->spec = m.spec;
  impl->isa = isa;
  impl->rows = m.rows;
  impl->cols = m.cols;
  const IsaTraits tr = isa_traits(isa);
  impl->prefill_nt = tr.prefill_nt;
  impl->int_family = is_int_family(m.spec.kind);
  if (impl->int_family) {
    impl->ip = pack_int(m, isa, tr.tile_rows);
    impl->ik = impl->ip.e8p           ? e8p_kernel_avx512(impl->ip)
               : isa == Isa::Avx512 ? int_kernel_avx512(impl->ip)
               : isa == Isa::Avx2 ? int_kernel_avx2(impl->ip)
                                  : int_kernel_scalar(impl->ip);
  } else {
    impl->fp = pack_float(m, tr.tile_rows);
    impl->fk = isa == Isa::Avx512 ? float_kernel_avx512(impl->fp)
               : isa == Isa::Avx2 ? float_kernel_avx2(impl->fp)
                                  : float_kernel_scalar(impl->fp);
  }
  PackedMatrix pm;
  pm.impl_ = std::move(impl);
  return pm;
}

void PackedMatrix::matmul(const float* x, int64_t T, float* y) const {
  if (!impl_ || T <= 0 || impl_->rows == 0) return;
  const PackedImpl& p = *impl_;
  const int nt = T == 1 ? 1 : p.prefill_nt;
  const bool simd = p.isa != Isa::Scalar;
  // Below ~64K multiply-adds a thread hand-off costs more than it saves.
  const bool serial = p.rows * p.cols * T < (int64_t{1} << 16);
  if (p.int_family) {
    thread_local IntActBuffer buf;
    const IntActs a = quantize_acts(p.ip, x, T, nt, simd, buf);
    const auto run = [&](int64_t b, int64_t e) { p.ik(p.ip, a, b, e, T, y); };
    if (serial)
      run(0, p.ip.row_tiles);
    else
      parallel_for(p.ip.row_tiles, run);
  } else {
    thread_local std::vector<float> buf;
    const FloatActs a = tile_float_acts(x, T, p.cols, nt, buf);
    const auto run = [&](int64_t b, int64_t e) { p.fk(p.fp, a, b, e, T, y); };
    if (serial)
      run(0, p.fp.row_tiles);
    else
      parallel_for(p.fp.row_tiles, run);
  }
}

void PackedMatrix::dequantize_rows(int64_t r0, int64_t n, float* out) const {
  if (!impl_ || n <= 0) return;
  LOWBIT_ASSERT(r0 >= 0 && r0 + n <= impl_->rows);
  if (impl_->int_family)
    unpack_int_rows(impl_->ip, r0, n, out);
  else
    unpack_float_rows(impl_->fp, r0, n, out);
}

// A default-constructed (or moved-from) PackedMatrix is an empty 0 x 0 matrix.
int64_t PackedMatrix::rows() const {
  return impl_ ? impl_->rows : 0;
}
int64_t PackedMatrix::cols() const {
  return impl_ ? impl_->cols : 0;
}
const QuantSpec& PackedMatrix::spec() const {
  static const QuantSpec kEmpty;
  return impl_ ? impl_->spec : kEmpty;
}
Isa PackedMatrix::isa() const {
  return impl_ ? impl_->isa : Isa::Scalar;
}

int64_t PackedMatrix::weight_bytes() const {
  if (!impl_) return 0;
  const PackedImpl& p = *impl_;
  if (p.int_family) return p.ip.codes.size() + p.ip.scales.size() + p.ip.zeros.size();
  return p.fp.elems.size() + p.fp.scales.size();
}

void PackedMatrix::flush_cache() const {
  if (!impl_) return;
  const PackedImpl& p = *impl_;
  const AlignedBytes* bufs[] = {&p.ip.codes, &p.ip.scales, &p.ip.zeros, &p.fp.elems, &p.fp.scales};
  // On every thread, as a matmul would run: the pool is awake when the next call starts.
  for (const AlignedBytes* b : bufs) {
    const uint8_t* base = b->data();
    parallel_for((b->size() + 63) / 64, [&](int64_t l0, int64_t l1) {
      for (int64_t l = l0; l < l1; ++l) _mm_clflush(base + l * 64);
    });
  }
  _mm_mfence();
}

}  // namespace lowbit
