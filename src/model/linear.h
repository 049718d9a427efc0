// The weight of one linear layer, [n_out, n_in]: either dense fp32 (viewed in place from an F32
// file or decoded at load) or a low-bit matrix packed for this CPU's kernels.
#pragma once

#include <cstdint>
#include <string>

#include <memory>

#include "kernels/packed_matrix.h"
#include "kernels/rotation.h"
#include "model/matrix.h"

namespace lowbit {

class Linear {
 public:
  Linear() = default;
  static Linear dense(Matrix m);
  static Linear packed(PackedMatrix p);

  int64_t rows() const { return is_packed_ ? packed_.rows() : dense_.rows; }
  int64_t cols() const { return is_packed_ ? packed_.cols() : dense_.cols; }
  bool is_packed() const { return is_packed_; }
  // The stored weight is W·H: every input row is multiplied by H (an orthogonal rotation, see
  // kernels/rotation.h) before the product, so matmul computes x·Wᵀ.
  void set_input_rotation(std::shared_ptr<const Rotation> h) { input_rotation_ = std::move(h); }
  bool has_input_rotation() const { return input_rotation_ != nullptr; }
  const Matrix& dense_matrix() const { return dense_; }

  // Y[T, rows] = X[T, cols] · Wᵀ (+ bias[rows] if non-null).
  void matmul(const float* x, int64_t T, const float* bias, float* y) const;
  // Bytes of weight data one matvec reads.
  int64_t weight_bytes() const;
  std::string format() const;  // "f32" or the packed spec, e.g. "int4:g128"

 private:
  bool is_packed_ = false;
  Matrix dense_;
  PackedMatrix packed_;
  std::shared_ptr<const Rotation> input_rotation_;
};

}  // namespace lowbit
