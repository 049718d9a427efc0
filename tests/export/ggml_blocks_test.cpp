// ggml block encodings: byte layouts against hand-computed blocks written from the published
// block descriptions (GGUF/ggml docs), not from our encoder:
//   Q4_0 (18 bytes): fp16 d, qs[16]; x[j] = d * (q[j] - 8); q[j] is the low nibble of qs[j]
//                    for j < 16 and the high nibble of qs[j - 16] for j >= 16.
//   Q8_0 (34 bytes): fp16 d, int8 q[32]; x[j] = d * q[j].
// The fp32 rule (RTN of lowbit's int grid): d = m / -2^(b-1) with m the signed value of largest
// magnitude, q = round(x / d) + zero.
#include <gtest/gtest.h>

#include <vector>

#include "base/error.h"
#include "base/half.h"
#include "export/ggml_blocks.h"
#include "formats/quantized_matrix.h"
#include "io/tensor.h"

namespace lowbit {
namespace {

std::vector<uint8_t> q4_0(const std::vector<float>& x) {
  std::vector<uint8_t> out(kQ4_0BlockBytes);
  quantize_q4_0_block(x.data(), out.data());
  return out;
}

std::vector<uint8_t> q8_0(const std::vector<float>& x) {
  std::vector<uint8_t> out(kQ8_0BlockBytes);
  quantize_q8_0_block(x.data(), out.data());
  return out;
}

// Decodes through io/'s reader (to_f32), an independent implementation.
std::vector<float> decode(DType t, const std::vector<uint8_t>& bytes) {
  TensorView v{"t", t, {32}, bytes.data(), bytes.size()};
  return to_f32(v);
}

TEST(GgmlBlocks, Q4_0NibbleOrderIsLowFirstHalvesThenHighHalves) {
  // x[0..15] = -8 .. 7, x[16..31] = 7 .. -8. m = -8 (first on ties), d = -8 / -8 = 1.0 = 0x3C00.
  // q[j] = x[j] + 8: low halves 0..15, high halves 15..0 -> qs[k] = k | (15 - k) << 4.
  std::vector<float> x(32);
  for (int j = 0; j < 16; ++j) x[j] = static_cast<float>(j - 8);
  for (int j = 16; j < 32; ++j) x[j] = static_cast<float>(7 - (j - 16));
  const std::vector<uint8_t> want = {0x00, 0x3C, 0xF0, 0xE1, 0xD2, 0xC3, 0xB4, 0xA5, 0x96,
                                     0x87, 0x78, 0x69, 0x5A, 0x4B, 0x3C, 0x2D, 0x1E, 0x0F};
  EXPECT_EQ(q4_0(x), want);
  EXPECT_EQ(decode(DType::Q4_0, want), x);
}

TEST(GgmlBlocks, Q4_0ScaleCarriesTheSignOfTheLargestValue) {
  // x[j] = 0.5 * (j % 9): m = +4.0 (j = 8), d = 4 / -8 = -0.5 = fp16 0xB800.
  // q[j] = round(x / d) + 8 = 8 - (j % 9).
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = 0.5f * static_cast<float>(j % 9);
  const std::vector<uint8_t> want = {
      0x00, 0xB8,
      // qs[k] = q[k] | q[k + 16] << 4; q = 8,7,6,5,4,3,2,1,0,8,7,6,5,4,3,2 |
      // 1,0,8,7,6,5,4,3,2,1,0,8,7,6,5,4
      0x18, 0x07, 0x86, 0x75, 0x64, 0x53, 0x42, 0x31, 0x20, 0x18, 0x07, 0x86, 0x75, 0x64, 0x53,
      0x42};
  EXPECT_EQ(q4_0(x), want);
  EXPECT_EQ(decode(DType::Q4_0, want), x);
}

TEST(GgmlBlocks, Q8_0IsScaleThenSignedBytes) {
  // x[j] = 0.25 * (j - 16): m = -4 (j = 0), d = -4 / -128 = 1/32 = fp16 0x2800; q = 8 * (j - 16).
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = 0.25f * static_cast<float>(j - 16);
  const std::vector<uint8_t> want = {0x00, 0x28,  // d
                                     0x80, 0x88, 0x90, 0x98, 0xA0, 0xA8, 0xB0, 0xB8,
                                     0xC0, 0xC8, 0xD0, 0xD8, 0xE0, 0xE8, 0xF0, 0xF8,
                                     0x00, 0x08, 0x10, 0x18, 0x20, 0x28, 0x30, 0x38,
                                     0x40, 0x48, 0x50, 0x58, 0x60, 0x68, 0x70, 0x78};
  EXPECT_EQ(q8_0(x), want);
  EXPECT_EQ(decode(DType::Q8_0, want), x);
}

TEST(GgmlBlocks, AllZeroBlocks) {
  const std::vector<float> x(32, 0.0f);
  // m = 0, d = 0 / -8 = -0.0 (fp16 0x8000: the rule's sign survives), every q = 8 (Q4_0) / 0.
  std::vector<uint8_t> want4(kQ4_0BlockBytes, 0x88), want8(kQ8_0BlockBytes, 0);
  want4[0] = want8[0] = 0x00;
  want4[1] = want8[1] = 0x80;
  EXPECT_EQ(q4_0(x), want4);
  EXPECT_EQ(q8_0(x), want8);
  for (float v : decode(DType::Q4_0, want4)) EXPECT_EQ(v, 0.0f);
}

TEST(GgmlBlocks, FloatRows) {
  const std::vector<float> x = {1.0f, -2.0f, 0.5f};
  std::vector<uint8_t> f16(6), f32(12);
  encode_ggml_row(GgmlType::F16, x.data(), 3, f16.data());
  EXPECT_EQ(f16, (std::vector<uint8_t>{0x00, 0x3C, 0x00, 0xC0, 0x00, 0x38}));
  encode_ggml_row(GgmlType::F32, x.data(), 3, f32.data());
  EXPECT_EQ(f32, (std::vector<uint8_t>{0, 0, 0x80, 0x3F, 0, 0, 0, 0xC0, 0, 0, 0, 0x3F}));
}

TEST(GgmlBlocks, TypesAndSizes) {
  EXPECT_EQ(parse_ggml_type("q4_0"), GgmlType::Q4_0);
  EXPECT_EQ(parse_ggml_type("Q8_0"), GgmlType::Q8_0);
  EXPECT_EQ(parse_ggml_type("f16"), GgmlType::F16);
  EXPECT_EQ(parse_ggml_type("F32"), GgmlType::F32);
  EXPECT_THROW(parse_ggml_type("Q2_K"), Error);  // a GGUF type we do not write
  EXPECT_THROW(parse_ggml_type("IQ2_XXS"), Error);
  EXPECT_THROW(parse_ggml_type("Q4_K_M"), Error);  // a mix, not a tensor type (gguf_export.h)
  EXPECT_EQ(parse_ggml_type("q6_k"), GgmlType::Q6_K);
  EXPECT_EQ(parse_ggml_type("q5_k"), GgmlType::Q5_K);
  EXPECT_EQ(parse_ggml_type("Q3_K"), GgmlType::Q3_K);
  EXPECT_EQ(parse_ggml_type("Q5_1"), GgmlType::Q5_1);
  EXPECT_EQ(parse_ggml_type("iq4_nl"), GgmlType::IQ4_NL);
  for (GgmlType t : kGgmlTypes) EXPECT_EQ(parse_ggml_type(ggml_type_label(t)), t);
  EXPECT_EQ(parse_ggml_type("Q4_K"), GgmlType::Q4_K);
  EXPECT_EQ(parse_ggml_type("Q5_0"), GgmlType::Q5_0);
  EXPECT_THROW(parse_ggml_type(""), Error);
  EXPECT_EQ(ggml_row_bytes(GgmlType::Q4_0, 4096), 128 * 18);
  EXPECT_EQ(ggml_row_bytes(GgmlType::Q8_0, 64), 68);
  EXPECT_EQ(ggml_row_bytes(GgmlType::F16, 7), 14);
  EXPECT_EQ(ggml_file_type(GgmlType::F32), 0u);
  EXPECT_EQ(ggml_file_type(GgmlType::F16), 1u);
  EXPECT_EQ(ggml_file_type(GgmlType::Q4_0), 2u);
  EXPECT_EQ(ggml_file_type(GgmlType::Q8_0), 7u);
  // The newer types (llama.h llama_ftype: MOSTLY_Q5_1 9, Q3_K_S 11, Q5_K_S 16, IQ4_NL 25).
  EXPECT_EQ(ggml_file_type(GgmlType::Q5_1), 9u);
  EXPECT_EQ(ggml_file_type(GgmlType::Q3_K), 11u);
  EXPECT_EQ(ggml_file_type(GgmlType::Q5_K), 16u);
  EXPECT_EQ(ggml_file_type(GgmlType::IQ4_NL), 25u);
  EXPECT_EQ(ggml_row_bytes(GgmlType::Q3_K, 512), 220);
  EXPECT_EQ(ggml_row_bytes(GgmlType::Q5_K, 256), 176);
  EXPECT_EQ(ggml_row_bytes(GgmlType::Q5_1, 96), 72);
  EXPECT_EQ(ggml_row_bytes(GgmlType::IQ4_NL, 64), 36);
  EXPECT_EQ(ggml_block_elems(GgmlType::Q3_K), 256);
  EXPECT_EQ(ggml_block_elems(GgmlType::IQ4_NL), 32);
  EXPECT_EQ(ggml_block_elems(GgmlType::Q5_1), 32);
  EXPECT_EQ(ggml_dtype(GgmlType::Q3_K), DType::Q3_K);
  EXPECT_EQ(ggml_dtype(GgmlType::Q5_K), DType::Q5_K);
  EXPECT_EQ(ggml_dtype(GgmlType::Q5_1), DType::Q5_1);
  EXPECT_EQ(ggml_dtype(GgmlType::IQ4_NL), DType::IQ4_NL);
}

TEST(GgmlBlocks, ExactBlockTypeOnlyForIdenticalGrids) {
  auto exact = [](const char* spec, int64_t cols) {
    return exact_block_type(parse_quant_spec(spec), cols);
  };
  EXPECT_EQ(exact("int4:g32", 64), GgmlType::Q4_0);
  EXPECT_EQ(exact("int8:g32", 64), GgmlType::Q8_0);
  EXPECT_EQ(exact("int5:g32", 64), GgmlType::Q5_0);
  EXPECT_EQ(exact("int4:gc", 32), GgmlType::Q4_0);  // one group of 32 per row
  EXPECT_FALSE(exact("int4:gc", 64));
  EXPECT_FALSE(exact("int4:g32", 48));  // a short last group
  EXPECT_FALSE(exact("int4:g64", 64));
  EXPECT_FALSE(exact("int4:g32:asym", 64));
  EXPECT_FALSE(exact("int4:g32:dq", 64));
  EXPECT_FALSE(exact("int4:g32:bf16s", 64));
  EXPECT_FALSE(exact("int3:g32", 64));
  EXPECT_FALSE(exact("nf4:g32", 64));
}

// Codes and scale bits are copied: the block's d is the stored fp16 pattern, whatever it is
// (here 0x3555, not a "round" number), and the nibbles are the stored codes.
TEST(GgmlBlocks, ExactPathKeepsCodesAndScaleBits) {
  QuantizedMatrix m = make_quantized_matrix(parse_quant_spec("int4:g32"), 2, 64);
  std::vector<uint8_t> codes(64);
  for (int j = 0; j < 64; ++j) codes[j] = static_cast<uint8_t>((j * 7) % 16);
  set_row_codes(m, 1, codes.data());
  m.scales[2] = 0x3555;  // row 1, group 0
  m.scales[3] = 0xB1FF;  // row 1, group 1
  std::vector<uint8_t> out(2 * kQ4_0BlockBytes);
  encode_ggml_row_exact(m, 1, out.data());
  EXPECT_EQ(out[0], 0x55);
  EXPECT_EQ(out[1], 0x35);
  EXPECT_EQ(out[18], 0xFF);
  EXPECT_EQ(out[19], 0xB1);
  for (int b = 0; b < 2; ++b)
    for (int k = 0; k < 16; ++k)
      EXPECT_EQ(out[b * 18 + 2 + k], codes[b * 32 + k] | (codes[b * 32 + k + 16] << 4))
          << b << " " << k;
  // Dequantized values agree exactly with the QuantizedMatrix reference.
  std::vector<float> want(64);
  dequantize_row(m, 1, want.data());
  TensorView v{"t", DType::Q4_0, {64}, out.data(), out.size()};
  EXPECT_EQ(to_f32(v), want);
}

TEST(GgmlBlocks, ExactPathInt8IsCodeMinus128) {
  QuantizedMatrix m = make_quantized_matrix(parse_quant_spec("int8:g32"), 1, 32);
  std::vector<uint8_t> codes(32);
  for (int j = 0; j < 32; ++j) codes[j] = static_cast<uint8_t>(j * 8 + 3);  // 3 .. 251
  set_row_codes(m, 0, codes.data());
  m.scales[0] = 0x1234;
  std::vector<uint8_t> out(kQ8_0BlockBytes);
  encode_ggml_row_exact(m, 0, out.data());
  EXPECT_EQ(out[0], 0x34);
  EXPECT_EQ(out[1], 0x12);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(static_cast<int8_t>(out[2 + j]), codes[j] - 128) << j;
  std::vector<float> want(32);
  dequantize_row(m, 0, want.data());
  TensorView v{"t", DType::Q8_0, {32}, out.data(), out.size()};
  EXPECT_EQ(to_f32(v), want);
}

}  // namespace
}  // namespace lowbit
