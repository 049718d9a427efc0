#include "model/linear.h"

#include <algorithm>
#include <vector>

#include "base/error.h"
#include "base/gemm.h"
#include "base/parallel.h"
#include "base/half.h"
#include "formats/plain.h"
#include "formats/quant_spec.h"
#include "kernels/f16_axpy.h"

namespace lowbit {

Linear Linear::dense(Matrix m) {
  Linear l;
  l.dense_ = std::move(m);
  return l;
}

Linear Linear::packed(PackedMatrix p) {
  Linear l;
  l.is_packed_ = true;
  l.packed_ = std::move(p);
  return l;
}

namespace {

// y[t, r] += bias[r] for the T rows of y [T, n].
void add_bias(const float* bias, int64_t T, int64_t n, float* y) {
  for (int64_t t = 0; t < T; ++t)
    for (int64_t r = 0; r < n; ++r) y[t * n + r] += bias[r];
}

}  // namespace

void Linear::set_switchable(int32_t index, std::shared_ptr<const LowRankDelta> d) {
  if (static_cast<int32_t>(switchable_.size()) <= index) switchable_.resize(static_cast<size_t>(index) + 1);
  switchable_[static_cast<size_t>(index)] = std::move(d);
}

void Linear::set_correction(const LowRankFactors& c, Isa isa) {
  if (c.rows != rows() || c.cols != cols() || c.rank < 1 || c.a.size() != static_cast<size_t>(c.rank * c.cols) ||
      c.b.size() != static_cast<size_t>(c.rows * c.rank))
    throw Error("model", "low-rank correction [" + std::to_string(c.rows) + ", " + std::to_string(c.cols) + "] of rank " +
                             std::to_string(c.rank) + " does not match its weight [" + std::to_string(rows()) + ", " +
                             std::to_string(cols()) + "]");
  const QuantSpec f16 = parse_quant_spec("f16");
  auto packed = std::make_shared<Correction>();
  packed->a = PackedMatrix::pack(store_plain(c.a.data(), c.rank, c.cols, f16), isa);
  std::vector<uint16_t> bt(c.b.size());
  for (int64_t r = 0; r < c.rows; ++r)
    for (int64_t j = 0; j < c.rank; ++j) bt[j * c.rows + r] = f32_to_f16(c.b[r * c.rank + j]);
  packed->bt = block_f16_rows(bt.data(), c.rank, c.rows);
  correction_ = std::move(packed);
}

namespace {

// Output columns per block of the correction's second product: Bᵀ's r × 64 fp16 of a block
// stay in L1 while every token's outputs of that block are updated.
constexpr int64_t kCorrectionBlock = 64;

// y[t, i] += Σ_j xa[t, j]·Bᵀ[j, i] for the T tokens and outputs i in [i0, i1) (a block of outputs
// at a time, all tokens per block: Bᵀ is read from memory once per call).
void add_correction_rows(const std::vector<uint16_t>& bt, int64_t r, int64_t rows, const float* xa, int64_t T,
                         int64_t i0, int64_t i1, float* y) {
  if (T == 1) {  // decode: one stream over the slice, nothing to reuse
    add_scaled_f16_blocks(xa, bt.data(), r, i0, i1, y);
    return;
  }
  for (int64_t b = i0; b < i1; b += kCorrectionBlock)
    for (int64_t t = 0; t < T; ++t)
      add_scaled_f16_blocks(xa + t * r, bt.data(), r, b, std::min(i1, b + kCorrectionBlock), y + t * rows);
}

// y[T, rows] += (x[T, cols]·Aᵀ)·Bᵀ: xa = x·Aᵀ by the packed kernel, then Bᵀ's rows added over the
// threads' slices of the output. (Running both inside the base product's parallel region, with
// x·Aᵀ shared out by A's row tiles, measured no faster: bench/bench_linear.cpp. The cost is the
// fp16 arithmetic, not the two thread hand-offs.)
void add_packed_low_rank(const PackedMatrix& a, const std::vector<uint16_t>& bt, int64_t rows, const float* x,
                         int64_t T, float* y) {
  const int64_t r = a.rows();
  thread_local std::vector<float> scratch;
  scratch.resize(static_cast<size_t>(T * r));
  const float* xa = scratch.data();
  a.matmul(x, T, scratch.data());
  parallel_for(rows, [&](int64_t i0, int64_t i1) { add_correction_rows(bt, r, rows, xa, T, i0, i1, y); });
}

// The factors as fp32 arrays (for training's products): a [r, cols], b [rows, r].
LowRankDelta decoded_factors(const PackedMatrix& a, const std::vector<uint16_t>& bt, int64_t rows) {
  LowRankDelta d;
  d.rank = a.rows(), d.rows = rows, d.cols = a.cols();
  d.a.resize(static_cast<size_t>(d.rank * d.cols));
  d.b.resize(static_cast<size_t>(d.rows * d.rank));
  a.dequantize_rows(0, d.rank, d.a.data());
  for (int64_t r = 0; r < d.rows; ++r)
    for (int64_t j = 0; j < d.rank; ++j)
      d.b[r * d.rank + j] = f16_to_f32(bt[(r / kF16Block * d.rank + j) * kF16Block + r % kF16Block]);
  return d;
}

}  // namespace

void Linear::matmul(const float* x, int64_t T, const float* bias, float* y,
                    std::span<const RowAdapter> row_adapters) const {
  const float* x_in = x;  // deltas read the unrotated input
  std::vector<float> rotated;
  if (input_rotation_) {  // y = (x·H)·(W·H)ᵀ = x·Wᵀ
    const int64_t n = T * cols();
    rotated.resize(static_cast<size_t>(2 * n));  // the rotated input, then the transform's scratch
    std::copy(x, x + n, rotated.begin());
    input_rotation_->apply_right_f32(rotated.data(), T, rotated.data() + n);
    x = rotated.data();
  }
  if (input_quant_.enabled()) {
    const int64_t n = T * cols();
    if (x != rotated.data()) {
      rotated.resize(static_cast<size_t>(n));
      std::copy(x, x + n, rotated.begin());
    }
    fake_quantize_rows(input_quant_, rotated.data(), T, cols());
    x = rotated.data();
  }
  if (!is_packed_) {
    lowbit::matmul(x, T, dense_, bias, y);
  } else {
    packed_.matmul(x, T, y);
    if (bias) add_bias(bias, T, packed_.rows(), y);
  }
  // The input the stored weight reads.
  if (correction_) add_packed_low_rank(correction_->a, correction_->bt, rows(), x, T, y);
  for (const auto& d : deltas_) add_low_rank(*d, x_in, T, y);
  for (const RowAdapter& ra : row_adapters) {
    const size_t i = static_cast<size_t>(ra.use.index);
    if (i < switchable_.size() && switchable_[i])
      add_low_rank(*switchable_[i], x_in + ra.begin * cols(), ra.count, y + ra.begin * rows(), ra.use.scale);
  }
}

void add_low_rank(const LowRankDelta& d, const float* x, int64_t T, float* y, float factor) {
  std::vector<float> xa(static_cast<size_t>(T * d.rank));
  gemm<float>(false, true, T, d.rank, d.cols, 1.0f, x, d.cols, d.a.data(), d.cols, 0.0f, xa.data(), d.rank);
  gemm<float>(false, true, T, d.rows, d.rank, d.scale * factor, xa.data(), d.rank, d.b.data(), d.rank, 1.0f, y, d.rows);
}

void add_low_rank_backward(const LowRankDelta& d, const float* dy, int64_t T, float* dx) {
  std::vector<float> gb(static_cast<size_t>(T * d.rank));
  gemm<float>(false, false, T, d.rank, d.rows, 1.0f, dy, d.rows, d.b.data(), d.rank, 0.0f, gb.data(), d.rank);
  gemm<float>(false, false, T, d.cols, d.rank, d.scale, gb.data(), d.rank, d.a.data(), d.cols, 1.0f, dx, d.cols);
}

namespace {

// Calls f(r0, n, tile) for consecutive kRowTile-row tiles of a packed matrix, each decoded to fp32
// tile[n, cols] (threads split the decoding). One tile buffer per calling thread, reused.
template <class F>
void for_each_decoded_tile(const PackedMatrix& p, F&& f) {
  constexpr int64_t kRowTile = 128;
  const int64_t R = p.rows(), C = p.cols();
  thread_local std::vector<float> tile;
  tile.resize(static_cast<size_t>(std::min(kRowTile, R) * C));
  float* const buf = tile.data();  // named outside the lambda: in a worker `tile` is that thread's
  for (int64_t r0 = 0; r0 < R; r0 += kRowTile) {
    const int64_t n = std::min(kRowTile, R - r0);
    parallel_for(n, [&](int64_t b, int64_t e) { p.dequantize_rows(r0 + b, e - b, buf + b * C); });
    f(r0, n, static_cast<const float*>(buf));
  }
}

}  // namespace

void Linear::forward_decoded(const float* x, int64_t T, const float* bias, float* y) const {
  LOWBIT_ASSERT(!input_rotation_);
  const int64_t R = rows(), C = cols();
  if (!is_packed_) {
    lowbit::matmul(x, T, dense_, bias, y);
  } else {
    for_each_decoded_tile(packed_, [&](int64_t r0, int64_t n, const float* tile) {
      gemm<float>(false, true, T, n, C, 1.0f, x, C, tile, C, 0.0f, y + r0, R);
    });
    if (bias) add_bias(bias, T, R, y);
  }
  if (correction_) add_low_rank(decoded_factors(correction_->a, correction_->bt, rows()), x, T, y);
}

void Linear::backward_input(const float* dy, int64_t T, float* dx, bool accumulate) const {
  LOWBIT_ASSERT(!input_rotation_);
  const int64_t R = rows(), C = cols();
  if (!is_packed_) {
    gemm<float>(false, false, T, C, R, 1.0f, dy, R, dense_.data, C, accumulate ? 1.0f : 0.0f, dx, C);
  } else {  // dX = Σ_tiles dY[:, tile] · W[tile, :]
    for_each_decoded_tile(packed_, [&](int64_t r0, int64_t n, const float* tile) {
      gemm<float>(false, false, T, C, n, 1.0f, dy + r0, R, tile, C, r0 == 0 && !accumulate ? 0.0f : 1.0f, dx, C);
    });
  }
  if (correction_) add_low_rank_backward(decoded_factors(correction_->a, correction_->bt, rows()), dy, T, dx);
}

int64_t Linear::groups_per_row() const {
  LOWBIT_ASSERT(is_packed_);
  const int64_t C = cols(), len = packed_.spec().group_len(C);
  return (C + len - 1) / len;
}

void Linear::weight_gradient_tiles(const float* x, const float* dy, int64_t T,
                                   const std::function<void(int64_t, int64_t, const float*, const float*)>& f) const {
  LOWBIT_ASSERT(is_packed_ && !input_rotation_);
  const int64_t R = rows(), C = cols();
  thread_local std::vector<float> dw;
  for_each_decoded_tile(packed_, [&](int64_t r0, int64_t n, const float* tile) {
    dw.resize(static_cast<size_t>(n * C));
    gemm<float>(true, false, n, C, T, 1.0f, dy + r0, R, x, C, 0.0f, dw.data(), C);  // dW = dYᵀ·X
    f(r0, n, dw.data(), tile);
  });
}

void add_group_products(const float* dw, const float* w, int64_t n, int64_t cols, int64_t group_len, float* g) {
  const int64_t G = (cols + group_len - 1) / group_len;
  parallel_for(n, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      for (int64_t grp = 0; grp < G; ++grp) {
        double acc = 0.0;
        for (int64_t j = grp * group_len; j < std::min(cols, (grp + 1) * group_len); ++j)
          acc += static_cast<double>(dw[i * cols + j]) * w[i * cols + j];
        g[i * G + grp] += static_cast<float>(acc);
      }
  });
}

void Linear::scale_gradient(const float* x, const float* dy, int64_t T, float* g) const {
  const int64_t C = cols(), len = packed_.spec().group_len(C), G = groups_per_row();
  weight_gradient_tiles(x, dy, T, [&](int64_t r0, int64_t n, const float* dw, const float* w) {
    add_group_products(dw, w, n, C, len, g + r0 * G);
  });
}

void Linear::replace_packed(PackedMatrix p) {
  if (!is_packed_ || p.rows() != rows() || p.cols() != cols())
    throw Error("model", "replace_packed: the layer is not packed or the shape differs");
  packed_ = std::move(p);
}

int64_t Linear::weight_bytes() const {
  const int64_t base = is_packed_ ? packed_.weight_bytes() : dense_.rows * dense_.cols * static_cast<int64_t>(sizeof(float));
  const int64_t correction =
      correction_ ? correction_->a.weight_bytes() + static_cast<int64_t>(correction_->bt.size() * sizeof(uint16_t)) : 0;
  return base + correction;
}

std::string Linear::format() const {
  const std::string base = is_packed_ ? packed_.spec().to_string() : "f32";
  return correction_ ? base + "+lr" + std::to_string(correction_->a.rows()) : base;
}

}  // namespace lowbit
