// Random orthogonal rotations for incoherence processing (QuaRot / QuIP#-style): multiplying a
// weight matrix by an orthogonal Q spreads a few large weights or channels over all of them, so
// that a low-bit grid fits the rotated matrix much better. Exact in real arithmetic; here every
// product is accumulated in double and rounded to fp32 once.
//
// For any n ≥ 1, with n = p·m, p the largest power of two dividing n:
//   Q = diag(s) · (H_p / √p ⊗ R_m)
//   s    random ±1 signs [n]
//   H_p  the Sylvester Hadamard matrix of order p (entries ±1), applied by the fast
//        Walsh–Hadamard transform in O(n log p)
//   R_m  a random orthogonal m×m matrix (Householder QR of a Gaussian matrix with the signs of
//        R's diagonal fixed, so it is Haar-distributed); the 1×1 identity when m = 1
// so x·Q costs O(n·(log p + m)): 11008 = 256·43 costs 51 multiply-adds per element, a power of
// two only the transform. Index i of a vector is the pair (a, b) = (i / m, i % m), so the
// Kronecker product acts as H_p along a and R_m along b.
//
// Everything is determined by (n, seed): the same pair gives bit-identical matrices on every
// machine (std::mt19937_64, explicit Box–Muller in double).
#pragma once

#include <cstdint>
#include <vector>

namespace lowbit {

class Rotation {
 public:
  // Throws lowbit::Error("rotation", ...) for n < 1.
  static Rotation random_hadamard(int64_t n, uint64_t seed);

  int64_t size() const { return n_; }
  int64_t hadamard_order() const { return p_; }  // p
  int64_t dense_order() const { return m_; }     // m

  // rows[r, :] ← rows[r, :] · Q for each of n_rows rows of length size().
  void apply_right(float* rows, int64_t n_rows) const;
  // rows[r, :] ← rows[r, :] · Qᵀ (the inverse).
  void apply_right_transposed(float* rows, int64_t n_rows) const;
  // rows[r, :] ← rows[r, :] · Q in fp32 for activations at run time: signs, one sgemm of all
  // rows' [p, m] blocks by R, then the transform vectorized across the m contiguous lanes.
  // Agrees with apply_right to ~1e-6 relative (fp32 sums of log2(p) + m terms). scratch
  // [n_rows, size()] is used when dense_order() > 1 (may be null otherwise); nothing is allocated.
  void apply_right_f32(float* rows, int64_t n_rows, float* scratch) const;
  // mat [size(), cols] ← Qᵀ · mat (each column c ← Qᵀ c). Uses a [cols, size()] scratch copy.
  void apply_left_transposed(float* mat, int64_t cols) const;

  // Q as a dense row-major n×n matrix in double (tests, small n).
  std::vector<double> dense() const;

 private:
  void rotate_row(double* x, bool transposed) const;  // x [n] in place
  void rotate_rows(float* rows, int64_t n_rows, bool transposed) const;

  int64_t n_ = 0, p_ = 1, m_ = 1;
  std::vector<double> signs_;  // [n]
  std::vector<double> r_;      // [m, m] row-major
  std::vector<float> signs_f_, r_f_;  // fp32 copies for apply_right_f32
};

// In-place unnormalized Walsh–Hadamard transform over `p` (a power of two) entries spaced
// `stride` apart: x ← H_p x.
void walsh_hadamard(double* x, int64_t p, int64_t stride);

}  // namespace lowbit
