#include "model/linear.h"

#include <algorithm>
#include <vector>

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

void Linear::matmul(const float* x, int64_t T, const float* bias, float* y) const {
  std::vector<float> rotated;
  if (input_rotation_) {  // y = (x·H)·(W·H)ᵀ = x·Wᵀ
    const int64_t n = T * cols();
    rotated.resize(static_cast<size_t>(2 * n));  // the rotated input, then the transform's scratch
    std::copy(x, x + n, rotated.begin());
    input_rotation_->apply_right_f32(rotated.data(), T, rotated.data() + n);
    x = rotated.data();
  }
  if (!is_packed_) {
    lowbit::matmul(x, T, dense_, bias, y);
    return;
  }
  packed_.matmul(x, T, y);
  if (bias) {
    const int64_t n = packed_.rows();
    for (int64_t t = 0; t < T; ++t)
      for (int64_t r = 0; r < n; ++r) y[t * n + r] += bias[r];
  }
}

int64_t Linear::weight_bytes() const {
  return is_packed_ ? packed_.weight_bytes() : dense_.rows * dense_.cols * static_cast<int64_t>(sizeof(float));
}

std::string Linear::format() const { return is_packed_ ? packed_.spec().to_string() : "f32"; }

}  // namespace lowbit
