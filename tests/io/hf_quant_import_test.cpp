// GPTQ / AWQ / compressed-tensors Linear layouts (io/hf_quantized.h):
//  - the packed int32 words of small matrices with known codes equal words worked out by hand from
//    each format's published layout (AutoGPTQ's pack loop incl. its 3-bit word straddling,
//    AutoAWQ's [0,2,4,6,1,3,5,7] nibble order, compressed-tensors' pack_to_int32);
//  - unpacking gives the matrix back (bit-exact codes/scales/zeros, or identical values when a
//    group had to be flipped), act-order g_idx falls back to fp32 values;
//  - malformed arrays and configs throw lowbit::Error naming the tensor.
#include "io/hf_quantized.h"

#include <gtest/gtest.h>

#include <cstring>
#include <functional>

#include "base/error.h"
#include "base/half.h"
#include "io/safetensors_writer.h"
#include "testutil.h"

namespace lowbit {
namespace {

// An int matrix with codes code(r, c), scale scale(r, g) (fp16-exact) and zero zero(r, g).
QuantizedMatrix int_matrix(const std::string& spec, int64_t rows, int64_t cols,
                           const std::function<int(int64_t, int64_t)>& code,
                           const std::function<float(int64_t, int64_t)>& scale,
                           const std::function<int(int64_t, int64_t)>& zero = nullptr) {
  const QuantSpec s = parse_quant_spec(spec);
  QuantizedMatrix m = make_quantized_matrix(s, rows, cols);
  std::vector<uint8_t> row(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) row[c] = static_cast<uint8_t>(code(r, c));
    set_row_codes(m, r, row.data());
    for (int64_t g = 0; g < m.groups_per_row(); ++g)
      set_group_params(m, r, g, make_group_params(s, scale(r, g), zero ? zero(r, g) : 0));
  }
  validate(m);
  return m;
}

const HfPackedTensor& part(const std::vector<HfPackedTensor>& parts, const std::string& suffix) {
  for (const HfPackedTensor& p : parts)
    if (p.suffix == suffix) return p;
  throw std::runtime_error("no part " + suffix);
}

uint32_t word(const HfPackedTensor& t, int64_t i) {
  uint32_t w;
  std::memcpy(&w, t.bytes.data() + 4 * i, 4);
  return w;
}

// Writes the parts under "<module>.<suffix>" into dir/model.safetensors (plus `extra`).
SafetensorsSet write_set(const std::vector<HfPackedTensor>& parts, const std::string& module = "m",
                         const std::function<void(SafetensorsWriter&)>& extra = nullptr) {
  const std::string dir = test::temp_dir();
  SafetensorsWriter w;
  for (const HfPackedTensor& p : parts) w.add(module + "." + p.suffix, p.dtype, p.shape, p.bytes);
  if (extra) extra(w);
  w.write(dir + "/model.safetensors");
  return open_safetensors_dir(dir);
}

HfQuantConfig config(const std::string& quantization_config) {
  auto c = parse_hf_quant_config("{\"quantization_config\": " + quantization_config + "}",
                                 "config.json");
  EXPECT_TRUE(c.has_value());
  return *c;
}

void expect_same_matrix(const QuantizedMatrix& a, const QuantizedMatrix& b) {
  EXPECT_EQ(a.spec, b.spec) << a.spec.to_string() << " vs " << b.spec.to_string();
  EXPECT_EQ(a.codes, b.codes);
  EXPECT_EQ(a.scales, b.scales);
  EXPECT_EQ(a.zeros, b.zeros);
}

// Equal values (a flipped group gives -0 where the original gave +0: equal, not bit-identical).
void expect_same_values(const std::vector<float>& a, const std::vector<float>& b) {
  ASSERT_EQ(a.size(), b.size());
  int64_t diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff += a[i] != b[i];
  EXPECT_EQ(diff, 0);
}

// ---- GPTQ -----------------------------------------------------------------------------------

TEST(HfQuantLayout, Gptq4BitWordsByHand) {
  // 32 outputs x 64 inputs, int4 g32 sym: code(o, i) = (o + i) % 16, scale(o, g) = (o + 1) / 8.
  const QuantizedMatrix m = int_matrix(
      "int4:g32", 32, 64, [](int64_t o, int64_t i) { return (o + i) % 16; },
      [](int64_t o, int64_t g) { return (o + 1) / 8.0f * (g + 1); });
  const auto parts = pack_hf_linear(HfQuantFormat::Gptq, m);
  const HfPackedTensor& qw = part(parts, "qweight");
  ASSERT_EQ(qw.shape, (std::vector<int64_t>{8, 32}));  // [in/32*4, out]
  // Column o, word k holds inputs 8k..8k+7, input 8k in the low nibble.
  EXPECT_EQ(word(qw, 0 * 32 + 0), 0x76543210u);  // o = 0, inputs 0..7
  EXPECT_EQ(word(qw, 1 * 32 + 0), 0xFEDCBA98u);  // o = 0, inputs 8..15
  EXPECT_EQ(word(qw, 0 * 32 + 1), 0x87654321u);  // o = 1, inputs 0..7
  EXPECT_EQ(word(qw, 7 * 32 + 3), 0x210FEDCBu);  // o = 3, inputs 56..63: (59..66) % 16
  const HfPackedTensor& qz = part(parts, "qzeros");
  ASSERT_EQ(qz.shape, (std::vector<int64_t>{2, 4}));  // [groups, out/32*4]
  for (int64_t i = 0; i < 8; ++i) EXPECT_EQ(word(qz, i), 0x77777777u) << "v1 stores zero - 1 = 7";
  const HfPackedTensor& sc = part(parts, "scales");
  ASSERT_EQ(sc.shape, (std::vector<int64_t>{2, 32}));
  uint16_t s;
  std::memcpy(&s, sc.bytes.data() + 2 * (1 * 32 + 5), 2);  // group 1, output 5
  EXPECT_EQ(f16_to_f32(s), 6 / 8.0f * 2);
  const HfPackedTensor& gi = part(parts, "g_idx");
  ASSERT_EQ(gi.shape, (std::vector<int64_t>{64}));
  EXPECT_EQ(word(gi, 31), 0u);
  EXPECT_EQ(word(gi, 32), 1u);
  const HfQuantConfig cfg =
      config(R"({"quant_method": "gptq", "bits": 4, "group_size": 32, "sym": true})");
  const HfLinear back = unpack_hf_linear(cfg, write_set(parts), "m", 32, 64);
  ASSERT_TRUE(back.quantized) << back.note;
  expect_same_matrix(back.matrix, m);
}

TEST(HfQuantLayout, Gptq3BitStraddlesWords) {
  // 32 x 32 int3: code(o, i) = (i + o) % 8. Column 0 is the stream 0,1,..,7,0,1,..: 3 words;
  // word 0 = inputs 0..9 + the low 2 bits of input 10, word 1 = its high bit, inputs 11..20, the
  // low bit of input 21, word 2 = its high 2 bits and inputs 22..31 (AutoGPTQ's 3-bit loop).
  const QuantizedMatrix m = int_matrix(
      "int3:g32", 32, 32, [](int64_t o, int64_t i) { return (i + o) % 8; },
      [](int64_t, int64_t) { return -0.25f; });
  const auto parts = pack_hf_linear(HfQuantFormat::Gptq, m);
  const HfPackedTensor& qw = part(parts, "qweight");
  ASSERT_EQ(qw.shape, (std::vector<int64_t>{3, 32}));
  EXPECT_EQ(word(qw, 0 * 32), 0x88FAC688u);
  EXPECT_EQ(word(qw, 1 * 32), 0xC688FAC6u);
  EXPECT_EQ(word(qw, 2 * 32), 0xFAC688FAu);
  // zeros: 4 - 1 = 3 = 0b011 for all 32 outputs -> the stream 011 011 ... in 3 words.
  const HfPackedTensor& qz = part(parts, "qzeros");
  ASSERT_EQ(qz.shape, (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(word(qz, 0), 0xDB6DB6DBu);
  EXPECT_EQ(word(qz, 1), 0xB6DB6DB6u);
  EXPECT_EQ(word(qz, 2), 0x6DB6DB6Du);
  const HfQuantConfig cfg = config(R"({"quant_method": "gptq", "bits": 3, "group_size": 32})");
  const HfLinear back = unpack_hf_linear(cfg, write_set(parts), "m", 32, 32);
  ASSERT_TRUE(back.quantized) << back.note;
  expect_same_matrix(back.matrix, m);  // negative scales kept as they are
}

TEST(HfQuantLayout, GptqBitWidthsRoundTrip) {
  for (const char* spec : {"int2:g64", "int8:g32", "int8:gc", "int4:g128:asym", "int3:g64:asym"}) {
    const QuantSpec s = parse_quant_spec(spec);
    const int maxq = (1 << s.bits) - 1;
    const QuantizedMatrix m = int_matrix(
        spec, 64, 96, [&](int64_t o, int64_t i) { return (o * 7 + i * 3) % (maxq + 1); },
        [](int64_t o, int64_t g) { return (o % 5 - 2.5f) / 16.0f; },
        [&](int64_t o, int64_t g) { return static_cast<int>((o + g) % maxq) + 1; });
    const std::string gs = s.group > 0 ? std::to_string(s.group) : "-1";
    const HfQuantConfig cfg = config(R"({"quant_method": "gptq", "bits": )" +
                                     std::to_string(s.bits) + R"(, "group_size": )" + gs + "}");
    const HfLinear back =
        unpack_hf_linear(cfg, write_set(pack_hf_linear(HfQuantFormat::Gptq, m)), "m", 64, 96);
    ASSERT_TRUE(back.quantized) << spec << ": " << back.note;
    expect_same_matrix(back.matrix, m);
  }
}

TEST(HfQuantLayout, GptqV1ZeroPointZeroIsFlipped) {
  // asym group with zero 0 cannot be stored as zero - 1: rewritten as -scale, 15 - q, zero 15.
  const QuantizedMatrix m = int_matrix(
      "int4:g32:asym", 32, 32, [](int64_t o, int64_t i) { return (o + i) % 16; },
      [](int64_t o, int64_t) { return 0.125f; }, [](int64_t o, int64_t) { return o == 3 ? 0 : 5; });
  int64_t flipped = 0;
  const auto parts = pack_hf_linear(HfQuantFormat::Gptq, m, &flipped);
  EXPECT_EQ(flipped, 1);
  const HfQuantConfig cfg =
      config(R"({"quant_method": "gptq", "bits": 4, "group_size": 32, "sym": false})");
  const HfLinear back = unpack_hf_linear(cfg, write_set(parts), "m", 32, 32);
  ASSERT_TRUE(back.quantized);
  expect_same_values(dequantize(back.matrix), dequantize(m));
  EXPECT_EQ(back.matrix.zeros[3], 15);
  // gptq_v2 stores the zero itself.
  const HfQuantConfig v2 = config(
      R"({"quant_method": "gptq", "bits": 4, "group_size": 32, "checkpoint_format": "gptq_v2"})");
  const HfLinear shifted = unpack_hf_linear(v2, write_set(parts), "m", 32, 32);
  EXPECT_EQ(shifted.matrix.zeros[0], 4) << "v1 bytes read as v2 are one lower";
}

TEST(HfQuantLayout, GptqActOrderFallsBackToValues) {
  const QuantizedMatrix m = int_matrix(
      "int4:g32", 32, 64, [](int64_t o, int64_t i) { return (o + i) % 16; },
      [](int64_t o, int64_t g) { return g == 0 ? 0.5f : -2.0f; });
  auto parts = pack_hf_linear(HfQuantFormat::Gptq, m);
  HfPackedTensor& gi = const_cast<HfPackedTensor&>(part(parts, "g_idx"));
  std::vector<int32_t> perm(64);
  for (int i = 0; i < 64; ++i) perm[i] = i % 2;  // inputs alternate between the two groups
  std::memcpy(gi.bytes.data(), perm.data(), 256);
  const HfQuantConfig cfg =
      config(R"({"quant_method": "gptq", "bits": 4, "group_size": 32, "desc_act": true})");
  const HfLinear back = unpack_hf_linear(cfg, write_set(parts), "m", 32, 64);
  ASSERT_FALSE(back.quantized);
  EXPECT_NE(back.note.find("act-order"), std::string::npos) << back.note;
  for (int64_t o : {0, 7})
    for (int64_t i : {0, 1, 40, 63})
      EXPECT_EQ(back.values[o * 64 + i],
                (i % 2 == 0 ? 0.5f : -2.0f) * static_cast<float>((o + i) % 16 - 8))
          << o << "," << i;
}

// ---- AWQ ------------------------------------------------------------------------------------

TEST(HfQuantLayout, AwqInterleavedNibblesByHand) {
  // 8 outputs x 32 inputs, int4 g32 asym: code(o, i) = o, zero(o) = 15 - o, scale > 0.
  const QuantizedMatrix m = int_matrix(
      "int4:g32:asym", 8, 32, [](int64_t o, int64_t) { return o; },
      [](int64_t o, int64_t) { return 0.5f + o; }, [](int64_t o, int64_t) { return 15 - o; });
  int64_t flipped = -1;
  const auto parts = pack_hf_linear(HfQuantFormat::Awq, m, &flipped);
  EXPECT_EQ(flipped, 0);
  const HfPackedTensor& qw = part(parts, "qweight");
  ASSERT_EQ(qw.shape, (std::vector<int64_t>{32, 1}));  // [in, out/8]
  // Nibble k holds output [0,2,4,6,1,3,5,7][k].
  for (int64_t i = 0; i < 32; ++i) EXPECT_EQ(word(qw, i), 0x75316420u);
  const HfPackedTensor& qz = part(parts, "qzeros");
  ASSERT_EQ(qz.shape, (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(word(qz, 0), 0x8ACE9BDFu);  // zeros 15,13,11,9,14,12,10,8 in nibbles 0..7
  ASSERT_EQ(part(parts, "scales").shape, (std::vector<int64_t>{1, 8}));
  const HfQuantConfig cfg = config(
      R"({"quant_method": "awq", "bits": 4, "group_size": 32, "zero_point": true, "version": "gemm"})");
  const HfLinear back = unpack_hf_linear(cfg, write_set(parts), "m", 8, 32);
  ASSERT_TRUE(back.quantized) << back.note;
  expect_same_matrix(back.matrix, m);
}

TEST(HfQuantLayout, AwqMakesScalesPositiveWithSameValues) {
  const QuantizedMatrix m = int_matrix(
      "int4:g32", 16, 64, [](int64_t o, int64_t i) { return (o * 3 + i) % 16; },
      [](int64_t o, int64_t g) { return (o + g) % 2 ? -0.75f : 0.375f; });
  int64_t flipped = 0;
  const auto parts = pack_hf_linear(HfQuantFormat::Awq, m, &flipped);
  EXPECT_EQ(flipped, 16);  // half of the 16 x 2 groups
  const HfQuantConfig cfg = config(R"({"quant_method": "awq", "bits": 4, "group_size": 32})");
  const HfLinear back = unpack_hf_linear(cfg, write_set(parts), "m", 16, 64);
  ASSERT_TRUE(back.quantized);
  EXPECT_TRUE(back.matrix.spec.asym);  // zeros 8 and 7
  for (uint16_t s : back.matrix.scales) EXPECT_EQ(s & 0x8000, 0);
  expect_same_values(dequantize(back.matrix), dequantize(m));
}

// ---- compressed-tensors -----------------------------------------------------------------------

TEST(HfQuantLayout, CompressedTensorsPackedRowsByHand) {
  // 2 outputs x 10 inputs, int4 per-channel asym: row 0 codes 1..10, row 1 codes 15..6.
  const QuantizedMatrix m = int_matrix(
      "int4:gc:asym", 2, 10, [](int64_t o, int64_t i) { return o == 0 ? i + 1 : 15 - i; },
      [](int64_t o, int64_t) { return o ? 0.25f : 0.5f; },
      [](int64_t o, int64_t) { return o ? 12 : 3; });
  const auto parts = pack_hf_linear(HfQuantFormat::CompressedTensors, m);
  const HfPackedTensor& wp = part(parts, "weight_packed");
  ASSERT_EQ(wp.shape, (std::vector<int64_t>{2, 2}));  // [out, ceil(in/8)], zero padded
  EXPECT_EQ(word(wp, 0), 0x87654321u);
  EXPECT_EQ(word(wp, 1), 0x000000A9u);
  EXPECT_EQ(word(wp, 2), 0x89ABCDEFu);
  EXPECT_EQ(word(wp, 3), 0x00000067u);
  const HfPackedTensor& zp = part(parts, "weight_zero_point");
  ASSERT_EQ(zp.shape, (std::vector<int64_t>{1, 1}));  // [ceil(out/8), groups], packed down dim 0
  EXPECT_EQ(word(zp, 0), 0x000000C3u);
  EXPECT_EQ(part(parts, "weight_scale").shape, (std::vector<int64_t>{2, 1}));
  const HfPackedTensor& shape = part(parts, "weight_shape");
  EXPECT_EQ(shape.dtype, "I64");
  const HfQuantConfig cfg =
      config(R"({"quant_method": "compressed-tensors", "format": "pack-quantized",
      "config_groups": {"group_0": {"targets": ["Linear"], "weights": {"num_bits": 4, "type": "int",
      "symmetric": false, "strategy": "channel"}}}})");
  const HfLinear back = unpack_hf_linear(cfg, write_set(parts), "m", 2, 10);
  ASSERT_TRUE(back.quantized) << back.note;
  expect_same_matrix(back.matrix, m);
}

TEST(HfQuantLayout, CompressedTensorsSymmetricInt8KeepsSignedScales) {
  const QuantizedMatrix m = int_matrix(
      "int8:g16", 5, 48, [](int64_t o, int64_t i) { return (o * 37 + i * 11) % 256; },
      [](int64_t o, int64_t g) { return g % 2 ? -0.015625f : 0.03125f; });
  const auto parts = pack_hf_linear(HfQuantFormat::CompressedTensors, m);
  for (const HfPackedTensor& p : parts)
    EXPECT_NE(p.suffix, "weight_zero_point") << "symmetric: no zero point";
  // Row 0: codes (11 i) % 256 -> bytes 0, 11, 22, 33 in word 0.
  EXPECT_EQ(word(part(parts, "weight_packed"), 0), 0x21160B00u);
  const HfQuantConfig cfg =
      config(R"({"quant_method": "compressed-tensors", "format": "pack-quantized",
      "config_groups": {"g": {"targets": ["re:.*m$"], "weights": {"num_bits": 8, "type": "int",
      "symmetric": true, "strategy": "group", "group_size": 16}}}})");
  const HfLinear back = unpack_hf_linear(cfg, write_set(parts, "model.m"), "model.m", 5, 48);
  ASSERT_TRUE(back.quantized) << back.note;
  expect_same_matrix(back.matrix, m);
}

// int-quantized (W8A8): weight I8 = code - 128 by hand; symmetric per-channel read back exactly
// (signed scales kept) with W8A8 activations in the config; an asymmetric group-wise checkpoint
// (weight_zero_point I8 = z - 128), as llm-compressor can write, reads back exactly too.
TEST(HfQuantLayout, CompressedTensorsIntQuantizedInt8) {
  const QuantizedMatrix m = int_matrix(
      "int8:gc", 3, 40, [](int64_t o, int64_t i) { return (o * 91 + i * 7) % 256; },
      [](int64_t o, int64_t) { return o == 1 ? -0.0078125f : 0.015625f; });
  const auto parts = pack_hf_linear(HfQuantFormat::CompressedTensorsW8A8, m);
  ASSERT_EQ(parts.size(), 2u);
  const HfPackedTensor& w = part(parts, "weight");
  EXPECT_EQ(w.dtype, "I8");
  ASSERT_EQ(w.shape, (std::vector<int64_t>{3, 40}));
  EXPECT_EQ(static_cast<int8_t>(w.bytes[0]), -128);           // code 0
  EXPECT_EQ(static_cast<int8_t>(w.bytes[40 + 1]), 98 - 128);  // row 1, input 1: code 98
  EXPECT_EQ(part(parts, "weight_scale").shape, (std::vector<int64_t>{3, 1}));
  const HfQuantConfig cfg = config(R"({"quant_method": "compressed-tensors", "format": "int-quantized",
      "config_groups": {"group_0": {"targets": ["Linear"], "format": "int-quantized",
      "weights": {"num_bits": 8, "type": "int", "symmetric": true, "strategy": "channel"},
      "input_activations": {"num_bits": 8, "type": "int", "symmetric": true, "strategy": "token",
      "dynamic": true}}}})");
  EXPECT_TRUE(cfg.ct_groups[0].int_quantized);
  EXPECT_TRUE(cfg.ct_groups[0].token_int8_activations);
  const SafetensorsSet set = write_set(parts, "model.m");
  EXPECT_TRUE(hf_linear_is_packed(cfg, set, "model.m"));
  const HfLinear back = unpack_hf_linear(cfg, set, "model.m", 3, 40);
  ASSERT_TRUE(back.quantized) << back.note;
  expect_same_matrix(back.matrix, m);

  const QuantizedMatrix a = int_matrix(
      "int8:g16:asym", 2, 32, [](int64_t o, int64_t i) { return (o * 13 + i * 29) % 256; },
      [](int64_t, int64_t g) { return g ? 0.5f : 0.25f; }, [](int64_t o, int64_t g) { return 100 + 17 * o + g; });
  std::vector<HfPackedTensor> asym = {part(pack_hf_linear(HfQuantFormat::CompressedTensors, a), "weight_scale")};
  std::vector<uint8_t> codes(64), zp(4);
  for (int64_t o = 0; o < 2; ++o) {
    for (int64_t i = 0; i < 32; ++i) codes[o * 32 + i] = static_cast<uint8_t>((o * 13 + i * 29) % 256 - 128);
    for (int64_t g = 0; g < 2; ++g) zp[o * 2 + g] = static_cast<uint8_t>(100 + 17 * o + g - 128);
  }
  asym.push_back({"weight", "I8", {2, 32}, codes});
  asym.push_back({"weight_zero_point", "I8", {2, 2}, zp});
  const HfQuantConfig acfg = config(R"({"quant_method": "compressed-tensors", "format": "int-quantized",
      "config_groups": {"g": {"targets": ["Linear"], "weights": {"num_bits": 8, "type": "int",
      "symmetric": false, "strategy": "group", "group_size": 16}}}})");
  const HfLinear aback = unpack_hf_linear(acfg, write_set(asym), "m", 2, 32);
  ASSERT_TRUE(aback.quantized) << aback.note;
  expect_same_matrix(aback.matrix, a);
  // A float weight under an int-quantized config is not a packed Linear.
  const SafetensorsSet plain = write_set({{"weight", "F16", {2, 2}, std::vector<uint8_t>(8, 0)}});
  EXPECT_FALSE(hf_linear_is_packed(cfg, plain, "m"));
  // Refusals: other activation schemes, int-quantized below 8 bits, a wrong weight dtype.
  auto parse = [](const std::string& q) { parse_hf_quant_config("{\"quantization_config\": " + q + "}", "c.json"); };
  test::expect_error([&] { parse(R"({"quant_method": "compressed-tensors", "format": "int-quantized",
      "config_groups": {"g": {"targets": ["Linear"], "weights": {"num_bits": 4, "type": "int", "strategy": "channel"}}}})"); },
                     "int-quantized num_bits 4 not supported");
  test::expect_error([&] { parse(R"({"quant_method": "compressed-tensors", "format": "int-quantized",
      "config_groups": {"g": {"targets": ["Linear"], "weights": {"num_bits": 8, "type": "int", "strategy": "channel"},
      "input_activations": {"num_bits": 8, "type": "int", "strategy": "tensor", "dynamic": false}}}})"); },
                     "activation quantization other than W8A8");
  test::expect_error([&] { parse(R"({"quant_method": "compressed-tensors", "format": "pack-quantized",
      "config_groups": {"g": {"targets": ["Linear"], "weights": {"num_bits": 8, "type": "int", "strategy": "channel"},
      "input_activations": {"num_bits": 8, "type": "int", "strategy": "token", "dynamic": true}}}})"); },
                     "activation quantization other than W8A8");
  auto wrong = parts;
  wrong[0].dtype = "U8";
  test::expect_error([&] { unpack_hf_linear(cfg, write_set(wrong, "model.m"), "model.m", 3, 40); },
                     "has dtype U8 (expected I8)");
}

// ---- refusals and malformed input ------------------------------------------------------------

void expect_error(const std::function<void()>& f, const std::string& needle) { test::expect_error(f, needle); }

TEST(HfQuantLayout, UnsupportedGridsAreRefusedClearly) {
  auto m = [](const std::string& spec, int64_t rows, int64_t cols) {
    QuantizedMatrix q = make_quantized_matrix(parse_quant_spec(spec), rows, cols);
    return q;
  };
  EXPECT_NE(hf_quant_unsupported_reason(HfQuantFormat::Gptq, m("nf4:g64", 32, 64))
                .find("not an integer grid"),
            std::string::npos);
  EXPECT_NE(hf_quant_unsupported_reason(HfQuantFormat::Gptq, m("int4:g64:dq", 32, 64))
                .find("double-quantized"),
            std::string::npos);
  EXPECT_NE(
      hf_quant_unsupported_reason(HfQuantFormat::Gptq, m("int5:g64", 32, 64)).find("2, 3, 4 and 8"),
      std::string::npos);
  EXPECT_NE(
      hf_quant_unsupported_reason(HfQuantFormat::Gptq, m("int4:g64:bf16s", 32, 64)).find("bf16"),
      std::string::npos);
  EXPECT_NE(hf_quant_unsupported_reason(HfQuantFormat::Gptq, m("int4:g32", 32, 40))
                .find("multiples of 32"),
            std::string::npos);
  EXPECT_NE(
      hf_quant_unsupported_reason(HfQuantFormat::Awq, m("int8:g32", 32, 64)).find("int4 only"),
      std::string::npos);
  EXPECT_NE(
      hf_quant_unsupported_reason(HfQuantFormat::Awq, m("int4:g128", 32, 352)).find("dividing"),
      std::string::npos);
  EXPECT_NE(hf_quant_unsupported_reason(HfQuantFormat::CompressedTensors, m("int3:g32", 32, 64))
                .find("4 and 8"),
            std::string::npos);
  EXPECT_NE(hf_quant_unsupported_reason(HfQuantFormat::CompressedTensors, m("fp8:gc", 32, 64))
                .find("not an integer grid"),
            std::string::npos);
  EXPECT_EQ(
      hf_quant_unsupported_reason(HfQuantFormat::CompressedTensors, m("int4:g128:bf16s", 32, 352)),
      "");
  expect_error([&] { pack_hf_linear(HfQuantFormat::Awq, m("nf4:g64", 8, 64)); },
               "not an integer grid");
}

TEST(HfQuantLayout, MalformedCheckpointsThrow) {
  const QuantizedMatrix m = int_matrix(
      "int4:g32", 32, 64, [](int64_t o, int64_t i) { return (o + i) % 16; },
      [](int64_t, int64_t) { return 1.0f; });
  const auto parts = pack_hf_linear(HfQuantFormat::Gptq, m);
  const HfQuantConfig cfg = config(R"({"quant_method": "gptq", "bits": 4, "group_size": 32})");
  std::vector<HfPackedTensor> no_zeros;
  for (const HfPackedTensor& p : parts)
    if (p.suffix != "qzeros") no_zeros.push_back(p);
  expect_error([&] { unpack_hf_linear(cfg, write_set(no_zeros), "m", 32, 64); },
               "missing tensor 'm.qzeros'");
  expect_error([&] { unpack_hf_linear(cfg, write_set(parts), "m", 32, 96); },
               "'m.qweight' has shape [8, 32] (expected [12, 32])");
  const HfQuantConfig g64 = config(R"({"quant_method": "gptq", "bits": 4, "group_size": 64})");
  expect_error([&] { unpack_hf_linear(g64, write_set(parts), "m", 32, 64); },
               "'m.qzeros' has shape [2, 4] (expected [1, 4])");
  auto bad_g_idx = parts;
  for (HfPackedTensor& p : bad_g_idx)
    if (p.suffix == "g_idx") p.bytes[4 * 10] = 9;
  expect_error([&] { unpack_hf_linear(cfg, write_set(bad_g_idx), "m", 32, 64); },
               "g_idx[10] = 9 outside [0, 2)");
  auto f32_words = parts;
  for (HfPackedTensor& p : f32_words)
    if (p.suffix == "qweight") p.dtype = "F32";
  expect_error([&] { unpack_hf_linear(cfg, write_set(f32_words), "m", 32, 64); },
               "has dtype F32 (expected I32)");
  // Configs lowbit cannot read.
  auto parse = [](const std::string& q) {
    parse_hf_quant_config("{\"quantization_config\": " + q + "}", "c.json");
  };
  expect_error([&] { parse(R"({"quant_method": "gptq", "bits": 5, "group_size": 128})"); },
               "gptq bits 5 not supported");
  expect_error(
      [&] { parse(R"({"quant_method": "gptq", "bits": 4, "checkpoint_format": "marlin"})"); },
      "checkpoint_format 'marlin'");
  expect_error(
      [&] { parse(R"({"quant_method": "awq", "bits": 4, "group_size": 128, "version": "gemv"})"); },
      "version 'gemv'");
  expect_error([&] { parse(R"({"quant_method": "awq", "bits": 3, "group_size": 128})"); },
               "awq bits 3");
  expect_error([&] { parse(R"({"quant_method": "bitsandbytes"})"); },
               "quant_method 'bitsandbytes' not supported");
  expect_error(
      [&] { parse(R"({"quant_method": "compressed-tensors", "format": "float-quantized"})"); },
      "'float-quantized' not supported");
  EXPECT_FALSE(parse_hf_quant_config(R"({"hidden_size": 8})", "c.json").has_value());
  // compressed-tensors: weight_shape disagreeing with the model.
  const QuantizedMatrix c = int_matrix(
      "int4:g32", 8, 64, [](int64_t, int64_t i) { return i % 16; },
      [](int64_t, int64_t) { return 1.0f; });
  const HfQuantConfig ct =
      config(R"({"quant_method": "compressed-tensors", "format": "pack-quantized",
      "config_groups": {"g": {"targets": ["Linear"], "weights": {"num_bits": 4, "type": "int",
      "symmetric": true, "strategy": "group", "group_size": 32}}}})");
  expect_error(
      [&] {
        unpack_hf_linear(ct, write_set(pack_hf_linear(HfQuantFormat::CompressedTensors, c)), "m", 8,
                         32);
      },
      "m.weight_shape is [8, 64] (expected [8, 32])");
}

}  // namespace
}  // namespace lowbit
