#include "model/embedding_table.h"

#include <cstring>

#include "base/error.h"

namespace lowbit {

EmbeddingTable EmbeddingTable::quantized(QuantizedMatrix q) {
  EmbeddingTable e;
  e.kind_ = Kind::Quantized;
  e.rows_ = q.rows;
  e.cols_ = q.cols;
  e.q_ = std::make_shared<const QuantizedMatrix>(std::move(q));
  return e;
}

EmbeddingTable EmbeddingTable::fp32(const float* data, int64_t rows, int64_t cols) {
  EmbeddingTable e;
  e.rows_ = e.f32_.rows = rows;
  e.cols_ = e.f32_.cols = cols;
  e.f32_.data = data;
  return e;
}

EmbeddingTable EmbeddingTable::view(const TensorView& t) {
  if (t.shape.size() != 2) throw Error("model", "tensor '" + t.name + "' is not 2-D");
  EmbeddingTable e;
  e.rows_ = t.shape[0];
  e.cols_ = t.shape[1];
  const size_t total = dtype_storage_bytes(t.dtype, e.rows_ * e.cols_);
  if (total == 0 || t.nbytes != total) throw Error("model", "tensor '" + t.name + "': size does not match its shape");
  const size_t row_bytes = dtype_storage_bytes(t.dtype, e.cols_);
  if (t.dtype == DType::F32 || row_bytes == 0 || row_bytes * static_cast<size_t>(e.rows_) != total) {
    e.f32_ = matrix_from(t);  // F32 viewed in place (copied when unaligned); rows that are not whole blocks decoded once
  } else {
    e.kind_ = Kind::Blocks;
    e.view_ = t;
    e.row_bytes_ = row_bytes;
  }
  return e;
}

void EmbeddingTable::row(int64_t id, float* out) const {
  switch (kind_) {
    case Kind::Fp32:
      std::memcpy(out, f32_.row(id), sizeof(float) * static_cast<size_t>(cols_));
      return;
    case Kind::Quantized:
      dequantize_row(*q_, id, out);
      return;
    case Kind::Blocks: {
      TensorView r;
      r.name = view_.name;
      r.dtype = view_.dtype;
      r.shape = {1, cols_};
      r.data = view_.data + static_cast<size_t>(id) * row_bytes_;
      r.nbytes = row_bytes_;
      const std::vector<float> v = to_f32(r);
      std::memcpy(out, v.data(), sizeof(float) * static_cast<size_t>(cols_));
      return;
    }
  }
}

int64_t EmbeddingTable::stored_bytes() const {
  switch (kind_) {
    case Kind::Fp32: return rows_ * cols_ * 4;
    case Kind::Quantized: return q_->storage_bytes();
    case Kind::Blocks: return static_cast<int64_t>(row_bytes_) * rows_;
  }
  return 0;
}

}  // namespace lowbit
