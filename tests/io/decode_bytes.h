// Shared by the io and export tests: raw tensor bytes of a dtype decoded to fp32 the way the
// GGUF reader does (io/tensor.h to_f32).
#pragma once

#include <cstdint>
#include <vector>

#include "io/tensor.h"

namespace lowbit::test {

inline std::vector<float> decode_bytes(DType t, const std::vector<uint8_t>& bytes,
                                       std::vector<int64_t> shape) {
  TensorView v;
  v.name = "t";
  v.dtype = t;
  v.shape = std::move(shape);
  v.data = bytes.data();
  v.nbytes = bytes.size();
  return to_f32(v);
}

// One row of n elements.
inline std::vector<float> decode(DType t, const std::vector<uint8_t>& bytes, int64_t n) {
  return decode_bytes(t, bytes, {n});
}

}  // namespace lowbit::test
