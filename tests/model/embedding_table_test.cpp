// EmbeddingTable: every stored form decodes each row to exactly the numbers the whole-table
// decoders give (dequantize for .lowbit matrices of several formats, to_f32 for F32, F16, BF16
// and GGUF block tensors, rows of whole blocks or not), F32 is viewed in place when aligned, the
// stored size is the stored form's, malformed views are refused; and a quantized model keeps its
// embedding quantized.
#include "model/embedding_table.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "algo/rtn.h"
#include "base/half.h"
#include "formats/quant_spec.h"
#include "model/llama.h"
#include "model/loader.h"
#include "testutil.h"

namespace lowbit {
namespace {

std::vector<float> random_values(int64_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = d(g);
  return v;
}

void expect_rows(const EmbeddingTable& e, const std::vector<float>& whole, const char* what) {
  ASSERT_EQ(whole.size(), static_cast<size_t>(e.rows() * e.cols())) << what;
  std::vector<float> row(static_cast<size_t>(e.cols()), -1.0f);
  for (int64_t r = 0; r < e.rows(); ++r) {
    e.row(r, row.data());
    ASSERT_EQ(0, std::memcmp(row.data(), &whole[r * e.cols()], row.size() * sizeof(float))) << what << " row " << r;
  }
}

TEST(EmbeddingTable, QuantizedRowsEqualTheWholeDequantization) {
  const int64_t rows = 13, cols = 192;
  const std::vector<float> w = random_values(rows * cols, 1);
  for (const char* spec : {"int4:g64", "int6:g64", "int3:g128:asym", "nf4:g64:dq", "fp8", "e8p:g64", "f16"}) {
    const QuantizedMatrix q = quantize_rtn(w.data(), rows, cols, parse_quant_spec(spec));
    const EmbeddingTable e = EmbeddingTable::quantized(q);
    EXPECT_EQ(e.rows(), rows);
    EXPECT_EQ(e.cols(), cols);
    EXPECT_EQ(e.stored_bytes(), q.storage_bytes()) << spec;
    expect_rows(e, dequantize(q), spec);
  }
}

TensorView view_of(const std::vector<uint8_t>& bytes, DType t, int64_t rows, int64_t cols) {
  TensorView v;
  v.name = "embed_tokens";
  v.dtype = t;
  v.shape = {rows, cols};
  v.data = bytes.data();
  v.nbytes = bytes.size();
  return v;
}

TEST(EmbeddingTable, ViewsDecodeRowsAsTheWholeTensor) {
  const int64_t rows = 7, cols = 64;
  const std::vector<float> w = random_values(rows * cols, 2);
  // F32, aligned: viewed in place
  std::vector<uint8_t> f32(w.size() * 4);
  std::memcpy(f32.data(), w.data(), f32.size());
  const EmbeddingTable e32 = EmbeddingTable::view(view_of(f32, DType::F32, rows, cols));
  expect_rows(e32, w, "f32");
  EXPECT_EQ(e32.stored_bytes(), rows * cols * 4);
  // F32 at an odd address: copied
  std::vector<uint8_t> shifted(f32.size() + 1);
  std::memcpy(shifted.data() + 1, f32.data(), f32.size());
  TensorView odd = view_of(f32, DType::F32, rows, cols);
  odd.data = shifted.data() + 1;
  expect_rows(EmbeddingTable::view(odd), w, "f32 unaligned");
  // F16, BF16
  std::vector<uint8_t> f16(w.size() * 2), bf16(w.size() * 2);
  for (size_t i = 0; i < w.size(); ++i) {
    const uint16_t h = f32_to_f16(w[i]);
    uint32_t bits;
    std::memcpy(&bits, &w[i], 4);
    const uint16_t b = static_cast<uint16_t>(bits >> 16);
    std::memcpy(&f16[2 * i], &h, 2);
    std::memcpy(&bf16[2 * i], &b, 2);
  }
  for (auto [bytes, t, name] : {std::tuple{&f16, DType::F16, "f16"}, std::tuple{&bf16, DType::BF16, "bf16"}}) {
    const TensorView v = view_of(*bytes, t, rows, cols);
    const EmbeddingTable e = EmbeddingTable::view(v);
    EXPECT_EQ(e.stored_bytes(), rows * cols * 2) << name;
    expect_rows(e, to_f32(v), name);
  }
}

// GGUF Q8_0 blocks (fp16 d, 32 int8): rows of two whole blocks are decoded per row; rows of 48
// numbers (blocks straddling rows) are decoded once at load. Both give to_f32's numbers.
TEST(EmbeddingTable, GgufBlockTensors) {
  std::mt19937 g(3);
  auto q8_0 = [&](int64_t blocks) {
    std::vector<uint8_t> b(static_cast<size_t>(blocks * 34));
    for (int64_t k = 0; k < blocks; ++k) {
      const uint16_t d = f32_to_f16(0.01f * static_cast<float>(1 + g() % 50));
      std::memcpy(&b[k * 34], &d, 2);
      for (int i = 0; i < 32; ++i) b[k * 34 + 2 + i] = static_cast<uint8_t>(g());
    }
    return b;
  };
  const std::vector<uint8_t> whole_blocks = q8_0(5 * 2), straddling = q8_0(3);
  const TensorView a = view_of(whole_blocks, DType::Q8_0, 5, 64), b = view_of(straddling, DType::Q8_0, 2, 48);
  const EmbeddingTable ea = EmbeddingTable::view(a), eb = EmbeddingTable::view(b);
  EXPECT_EQ(ea.stored_bytes(), 5 * 2 * 34);
  EXPECT_EQ(eb.stored_bytes(), 2 * 48 * 4);
  expect_rows(ea, to_f32(a), "q8_0");
  expect_rows(eb, to_f32(b), "q8_0 straddling");
}

TEST(EmbeddingTable, MalformedViews) {
  std::vector<uint8_t> bytes(64 * 4);
  TensorView v = view_of(bytes, DType::F32, 4, 16);
  v.shape = {64};
  test::expect_error([&] { EmbeddingTable::view(v); }, "not 2-D", "model");
  v = view_of(bytes, DType::F32, 4, 17);
  test::expect_error([&] { EmbeddingTable::view(v); }, "size does not match", "model");
  v = view_of(bytes, DType::Q8_0, 1, 50);  // not a whole number of blocks
  test::expect_error([&] { EmbeddingTable::view(v); }, "size does not match", "model");
}

TEST(EmbeddingTable, QuantizedModelKeepsItsEmbeddingQuantized) {
  const std::string dir = test::temp_dir();
  const test::CommandResult r = test::run_command(test::lowbit_bin() + " quantize -m " + test::shared_path("models/ref-s") +
                                                  " -r rtn:int4:g128 -o " + dir + "/q.lowbit");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const LoadedModel q = load_model(dir + "/q.lowbit");
  const EmbeddingTable& e = q.model->weights().embed_tokens;
  const QuantizedMatrix& stored = q.source.quantized.at("embed_tokens");  // rtn:int6:g64:clip
  EXPECT_EQ(e.stored_bytes(), stored.storage_bytes());
  EXPECT_LT(e.stored_bytes() * 4, e.rows() * e.cols() * 4);
  expect_rows(e, dequantize(stored), "ref-s int4 embed_tokens");
}

}  // namespace
}  // namespace lowbit
