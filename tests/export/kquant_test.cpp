// llama.cpp's K-quants (Q6_K, Q4_K) and the Q5_0 fallback: hand-built blocks decoded by the
// reader (io/tensor.cpp) against the published formulas worked out independently here; our
// encoder's error on Gaussian data (two-sided bands, and never worse than a plain max-abs fit);
// model export to Q6_K / Q4_K_M read back by lowbit's GGUF loader (logits close to fp32).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>

#include "base/error.h"
#include "export/ggml_blocks.h"
#include "export/gguf_export.h"
#include "io/gguf.h"
#include "io/tensor.h"
#include "model/llama.h"
#include "model/loader.h"
#include "pipeline/quantize.h"
#include "export/logits_diff.h"
#include "io/decode_bytes.h"
#include "export/export_with.h"
#include "testutil.h"
#include "tokenizer/load.h"

namespace lowbit {
namespace {

namespace fs = std::filesystem;

using test::decode;

// ---- hand-built blocks ----------------------------------------------------------------------

TEST(KQuant, Q6KHandBuiltBlockDecodesByFormula) {
  std::vector<uint8_t> b(210, 0);
  int8_t sc[16];
  for (int j = 0; j < 16; ++j) sc[j] = static_cast<int8_t>(j - 8);
  std::memcpy(b.data() + 192, sc, 16);
  b[208] = 0x00, b[209] = 0x38;  // d = fp16 0x3800 = 0.5
  // Every code is 0 (value -32) except three placed by hand:
  //  e = 0   (half 0, quarter 0, l 0): q = 63: ql[0] low nibble 15, qh[0] bits 0..1 = 3
  //  e = 101 (half 0, quarter 3, l 5): q = 18: ql[5 + 32] high nibble 2, qh[5] bits 6..7 = 1
  //  e = 177 (half 1, quarter 1, l 17): q = 37: ql[64 + 17 + 32] low nibble 5, qh[32 + 17]
  //          bits 2..3 = 2
  b[0] |= 0x0f, b[128 + 0] |= 0x03;
  b[37] |= 0x20, b[128 + 5] |= 0x40;
  b[113] |= 0x05, b[128 + 49] |= 0x08;
  std::vector<float> want(256);
  for (int e = 0; e < 256; ++e) want[e] = 0.5f * sc[e / 16] * -32.0f;
  want[0] = 0.5f * -8 * (63 - 32);    // -124
  want[101] = 0.5f * -2 * (18 - 32);  // 14
  want[177] = 0.5f * 3 * (37 - 32);   // 7.5
  EXPECT_EQ(want[0], -124.0f);
  EXPECT_EQ(want[101], 14.0f);
  EXPECT_EQ(want[177], 7.5f);
  EXPECT_EQ(decode(DType::Q6_K, b, 256), want);
  std::vector<float> y(256);
  dequantize_ggml_block(GgmlType::Q6_K, b.data(), y.data());
  EXPECT_EQ(y, want);
}

TEST(KQuant, Q4KHandBuiltBlockDecodesByFormula) {
  const int sc[8] = {1, 2, 3, 4, 17, 33, 50, 63}, m[8] = {0, 5, 10, 15, 20, 40, 47, 63};
  std::vector<uint8_t> b(144, 0);
  b[0] = 0x00, b[1] = 0x38;  // d = 0.5
  b[2] = 0x00, b[3] = 0x3c;  // dmin = 1.0
  // scales[12] worked out by hand from the packing: bytes 0..3 = sc[j] | (sc[j+4] >> 4) << 6,
  // bytes 4..7 = m[j] | (m[j+4] >> 4) << 6, bytes 8..11 = (sc[j+4] & 15) | (m[j+4] & 15) << 4.
  const uint8_t scales[12] = {65, 130, 195, 196, 64, 133, 138, 207, 65, 129, 242, 255};
  std::memcpy(b.data() + 4, scales, 12);
  for (int i = 0; i < 128; ++i) b[16 + i] = static_cast<uint8_t>(i * 37 + 11);
  std::vector<float> want(256);
  for (int e = 0; e < 256; ++e) {
    const int j = e / 32;
    const uint8_t byte = b[16 + 32 * (e / 64) + e % 32];
    const int q = j % 2 == 0 ? byte & 15 : byte >> 4;
    want[e] = 0.5f * static_cast<float>(sc[j]) * static_cast<float>(q) - 1.0f * m[j];
  }
  EXPECT_EQ(decode(DType::Q4_K, b, 256), want);
  std::vector<float> y(256);
  dequantize_ggml_block(GgmlType::Q4_K, b.data(), y.data());
  EXPECT_EQ(y, want);
  // Our encoder packs sub-block scales/mins the same way: a block that needs exactly these
  // scales and mins round-trips them.
  uint8_t enc[144];
  quantize_q4_k_block(want.data(), nullptr, enc);
  std::vector<float> back(256);
  dequantize_ggml_block(GgmlType::Q4_K, enc, back.data());
  double worst = 0;
  for (int e = 0; e < 256; ++e) worst = std::max(worst, std::abs(double(back[e]) - want[e]));
  EXPECT_LE(worst, 0.5) << "values up to " << 0.5 * 63 * 15;
}

TEST(KQuant, Q5_0HandBuiltBlockDecodesByFormula) {
  std::vector<uint8_t> b(22, 0);
  b[0] = 0x00, b[1] = 0x38;                                   // d = 0.5
  b[2] = 0x01, b[3] = 0x00, b[4] = 0x00, b[5] = 0x80;         // qh: bits 0 and 31
  for (int j = 0; j < 16; ++j) b[6 + j] = static_cast<uint8_t>(j | (15 - j) << 4);
  std::vector<float> want(32);
  for (int j = 0; j < 16; ++j) {
    want[j] = 0.5f * static_cast<float>((j | (j == 0 ? 16 : 0)) - 16);
    want[j + 16] = 0.5f * static_cast<float>(((15 - j) | (j == 15 ? 16 : 0)) - 16);
  }
  EXPECT_EQ(decode(DType::Q5_0, b, 32), want);
  // Our Q5_0 encoder is lowbit's int5:g32 RTN: the largest magnitude lands on code 0.
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j) - 20.0f;  // -20 .. 11
  uint8_t enc[22];
  quantize_q5_0_block(x.data(), enc);
  const std::vector<float> back = decode(DType::Q5_0, {enc, enc + 22}, 32);
  for (int j = 0; j < 32; ++j) EXPECT_NEAR(back[j], x[j], 0.63) << j;  // half a step of 20/16
  EXPECT_EQ(back[0], -20.0f);
}

TEST(KQuant, ZeroBlocksAndSizes) {
  const std::vector<float> zeros(512, 0.0f);
  for (GgmlType t : {GgmlType::Q4_K, GgmlType::Q6_K}) {
    std::vector<uint8_t> out(static_cast<size_t>(ggml_row_bytes(t, 512)));
    encode_ggml_row(t, zeros.data(), 512, out.data());
    const DType d = t == GgmlType::Q4_K ? DType::Q4_K : DType::Q6_K;
    EXPECT_EQ(decode(d, out, 512), zeros) << ggml_type_label(t);
  }
  EXPECT_EQ(ggml_row_bytes(GgmlType::Q4_K, 512), 288);
  EXPECT_EQ(ggml_row_bytes(GgmlType::Q6_K, 256), 210);
  EXPECT_EQ(ggml_row_bytes(GgmlType::Q5_0, 64), 44);
  EXPECT_EQ(ggml_block_elems(GgmlType::Q6_K), 256);
  EXPECT_EQ(dtype_storage_bytes(DType::Q6_K, 512), 420u);
  EXPECT_EQ(dtype_storage_bytes(DType::Q4_K, 128), 0u);  // not a whole super-block
  TensorView v;
  v.name = "short";
  v.dtype = DType::Q4_K;
  v.shape = {128};
  try {
    to_f32(v);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("multiple of 256"), std::string::npos) << e.what();
  }
}

// ---- encoder error on Gaussian data ---------------------------------------------------------

std::vector<float> gaussian(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = g(rng);
  return x;
}

// Weighted rms error of one encoding of x (search or plain max-abs fit), relative to rms(x).
double rel_rms(GgmlType t, const std::vector<float>& x, const float* w, bool plain) {
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<float> y(kQK);
  double e = 0, ref = 0;
  for (int64_t b = 0; b < n / kQK; ++b) {
    uint8_t blk[kQ6_KBlockBytes];
    const float* xb = x.data() + b * kQK;
    const float* wb = w ? w + b * kQK : nullptr;
    if (t == GgmlType::Q6_K) {
      quantize_q6_k_block(xb, wb, blk, plain);
      dequantize_ggml_block(GgmlType::Q6_K, blk, y.data());
    } else {
      quantize_q4_k_block(xb, wb, blk, plain);
      dequantize_ggml_block(GgmlType::Q4_K, blk, y.data());
    }
    for (int i = 0; i < kQK; ++i) {
      const double wi = wb ? wb[i] : 1.0;
      e += wi * (y[i] - xb[i]) * (y[i] - xb[i]);
      ref += wi * xb[i] * xb[i];
    }
  }
  return std::sqrt(e / ref);
}

TEST(KQuant, GaussianErrorBandsAndNeverWorseThanMaxAbs) {
  const std::vector<float> x = gaussian(256 * 256, 7);
  const double q6 = rel_rms(GgmlType::Q6_K, x, nullptr, false),
               q6_plain = rel_rms(GgmlType::Q6_K, x, nullptr, true),
               q4 = rel_rms(GgmlType::Q4_K, x, nullptr, false),
               q4_plain = rel_rms(GgmlType::Q4_K, x, nullptr, true);
  // The row encoder and the reader agree with the block functions.
  std::vector<uint8_t> row(static_cast<size_t>(ggml_row_bytes(GgmlType::Q4_K, 1024)));
  encode_ggml_row(GgmlType::Q4_K, x.data(), 1024, row.data());
  const std::vector<float> got = decode(DType::Q4_K, row, 1024);
  std::vector<float> want(256);
  for (int b = 0; b < 4; ++b) {
    uint8_t blk[kQ4_KBlockBytes];
    quantize_q4_k_block(x.data() + 256 * b, nullptr, blk);
    dequantize_ggml_block(GgmlType::Q4_K, blk, want.data());
    EXPECT_TRUE(std::equal(want.begin(), want.end(), got.begin() + 256 * b)) << b;
  }
  std::printf("Gaussian rel rms error: Q6_K %.5f (max-abs fit %.5f), Q4_K %.5f (max-abs fit %.5f)\n",
              q6, q6_plain, q4, q4_plain);
  EXPECT_LE(q6, q6_plain);
  EXPECT_LE(q4, q4_plain);
  // Measured: Q6_K 0.0166 (plain 0.0180), Q4_K 0.0722 (plain 0.0806).
  EXPECT_GT(q6, 0.012);
  EXPECT_LT(q6, 0.019);
  EXPECT_GT(q4, 0.055);
  EXPECT_LT(q4, 0.080);
  EXPECT_LT(q4, 0.97 * q4_plain);  // the search buys something
  EXPECT_LT(q6, 0.97 * q6_plain);
}

TEST(KQuant, ImportanceWeightsLowerTheWeightedError) {
  const std::vector<float> x = gaussian(256 * 128, 11);
  std::vector<float> w(x.size());
  std::mt19937 rng(3);
  std::exponential_distribution<float> ex(1.0f);
  for (float& v : w) v = ex(rng) * ex(rng);  // heavy-tailed importance, like mean x^2
  for (GgmlType t : {GgmlType::Q6_K, GgmlType::Q4_K}) {
    // Measured in the weighted metric: searched with the weights vs. searched without them.
    const int64_t n = static_cast<int64_t>(x.size());
    double e_w = 0, e_1 = 0;
    std::vector<float> y(kQK);
    for (int64_t b = 0; b < n / kQK; ++b) {
      for (int with = 0; with < 2; ++with) {
        uint8_t blk[kQ6_KBlockBytes];
        const float* xb = x.data() + b * kQK;
        const float* wb = w.data() + b * kQK;
        if (t == GgmlType::Q6_K) {
          quantize_q6_k_block(xb, with ? wb : nullptr, blk);
          dequantize_ggml_block(GgmlType::Q6_K, blk, y.data());
        } else {
          quantize_q4_k_block(xb, with ? wb : nullptr, blk);
          dequantize_ggml_block(GgmlType::Q4_K, blk, y.data());
        }
        double e = 0;
        for (int i = 0; i < kQK; ++i) e += wb[i] * (y[i] - xb[i]) * (y[i] - xb[i]);
        (with ? e_w : e_1) += e;
      }
    }
    std::printf("%s weighted error with / without importance: %.4f\n", ggml_type_label(t),
                e_w / e_1);
    EXPECT_LT(e_w, e_1) << ggml_type_label(t);
    EXPECT_LE(rel_rms(t, x, w.data(), false), rel_rms(t, x, w.data(), true)) << ggml_type_label(t);
  }
}

// ---- model export ---------------------------------------------------------------------------

using test::golden_prompts;
using test::last_logits;
using test::logits_rel_diff;

using test::export_with;

const GgufExportTensor& find(const GgufExportReport& r, const std::string& name) {
  for (const GgufExportTensor& t : r.tensors)
    if (t.name == name) return t;
  throw Error("test", "no tensor " + name);
}

TEST(KQuantExport, Q4KMMixRule) {
  // llama.cpp's use_more_bits for 6 layers (ref-m): layers 2 and 5; for 32 layers: 0..3,
  // 6, 9, ..., 27 and 28..31.
  std::vector<int64_t> six, thirty_two;
  for (int64_t i = 0; i < 6; ++i)
    if (q4_k_m_more_bits(i, 6)) six.push_back(i);
  for (int64_t i = 0; i < 32; ++i)
    if (q4_k_m_more_bits(i, 32)) thirty_two.push_back(i);
  EXPECT_EQ(six, (std::vector<int64_t>{2, 5}));
  EXPECT_EQ(thirty_two, (std::vector<int64_t>{0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29,
                                              30, 31}));
}

TEST(KQuantExport, RefMQ4KMAndQ6KLoadBackCloseToFp32) {
  const ModelSource src = open_model_source(test::shared_path("models/ref-m"));
  ASSERT_EQ(src.config.dim % 256, 0);
  const std::string golden = "models/ref-m/golden.json";
  // Q4_K_M: the mix, the fallbacks for ffn_down's 704-long rows, metadata.
  GgufExportReport r;
  std::vector<std::string> warnings;
  const std::string path = export_with(src, "m.gguf", "Q4_K_M", &r, &warnings);
  EXPECT_EQ(r.file_type_name, "Q4_K_M");
  EXPECT_EQ(find(r, "token_embd.weight").type, GgmlType::Q4_K);
  EXPECT_EQ(find(r, "output.weight").type, GgmlType::Q6_K);
  EXPECT_EQ(find(r, "blk.0.attn_q.weight").type, GgmlType::Q4_K);
  EXPECT_EQ(find(r, "blk.0.attn_v.weight").type, GgmlType::Q4_K);
  EXPECT_EQ(find(r, "blk.2.attn_v.weight").type, GgmlType::Q6_K);
  EXPECT_EQ(find(r, "blk.5.attn_v.weight").type, GgmlType::Q6_K);
  EXPECT_EQ(find(r, "blk.0.ffn_down.weight").type, GgmlType::Q5_0);  // Q4_K, 704 % 256 != 0
  EXPECT_EQ(find(r, "blk.2.ffn_down.weight").type, GgmlType::Q8_0);  // Q6_K, 704 % 256 != 0
  EXPECT_EQ(find(r, "blk.0.attn_norm.weight").type, GgmlType::F32);
  EXPECT_EQ(warnings.size(), 2u) << "one fallback warning per (kind, wanted type)";
  const GgufFile g(path);
  EXPECT_EQ(g.get_int("general.file_type"), 15);
  EXPECT_EQ(g.get_int("general.quantization_version"), 2);
  const ModelSource m = open_model_source(path);
  EXPECT_EQ(m.tensor("layers.0.q_proj").dtype, DType::Q4_K);
  EXPECT_EQ(m.tensor("lm_head").dtype, DType::Q6_K);
  EXPECT_EQ(m.tensor("layers.1.down_proj").dtype, DType::Q5_0);
  const double d_q4km = logits_rel_diff(m, src, golden);

  const std::string p6 = export_with(src, "m6.gguf", "Q6_K", &r);
  EXPECT_EQ(GgufFile(p6).get_int("general.file_type"), 18);
  const ModelSource m6 = open_model_source(p6);
  EXPECT_EQ(m6.tensor("layers.0.up_proj").dtype, DType::Q6_K);
  EXPECT_EQ(m6.tensor("layers.0.down_proj").dtype, DType::Q8_0);
  const double d_q6k = logits_rel_diff(m6, src, golden);

  const std::string p4 = export_with(src, "m4.gguf", "Q4_0", &r);
  const double d_q40 = logits_rel_diff(open_model_source(p4), src, golden);
  const std::string p8 = export_with(src, "m8.gguf", "Q8_0", &r);
  const double d_q80 = logits_rel_diff(open_model_source(p8), src, golden);
  std::printf("ref-m rel dlogit vs fp32: Q8_0 %.4g, Q6_K %.4g, Q4_K_M %.4g, Q4_0 %.4g\n", d_q80,
              d_q6k, d_q4km, d_q40);
  // Measured: Q8_0 0.0088, Q6_K 0.0208, Q4_K_M 0.0447, Q4_0 0.0978 (max |dlogit| / max |logit|).
  EXPECT_LT(d_q6k, 0.03);
  EXPECT_GT(d_q6k, 5e-3);
  EXPECT_LT(d_q4km, 0.07);
  EXPECT_GT(d_q4km, 0.015);
  EXPECT_LT(d_q6k, d_q4km);
  EXPECT_LT(d_q4km, d_q40);
  // The exported blocks are copied byte for byte when re-exported with the same types.
  GgufExportReport r2;
  std::vector<std::string> w2;
  const ModelSource again = open_model_source(export_with(m, "m2.gguf", "Q4_K_M", &r2, &w2));
  for (const GgufExportTensor& t : r2.tensors)
    if (t.shape.size() == 2) {
      EXPECT_TRUE(t.codes_kept) << t.name;
    }
  for (const auto& [name, v] : m.tensors) {
    const TensorView& w = again.tensor(name);
    EXPECT_TRUE(w.nbytes == v.nbytes && std::memcmp(w.data, v.data, v.nbytes) == 0) << name;
  }
}

TEST(KQuantExport, RefSFallsBackAndLoweritSourceIsReencoded) {
  // ref-s rows are 128 and 352 long: no K-quant blocks fit, everything falls back.
  const ModelSource src = open_model_source(test::shared_path("models/ref-s"));
  GgufExportReport r;
  std::vector<std::string> warnings;
  const std::string p6 = export_with(src, "s6.gguf", "Q6_K", &r, &warnings);
  for (const GgufExportTensor& t : r.tensors)
    EXPECT_EQ(t.type, t.shape.size() == 1 ? GgmlType::F32 : GgmlType::Q8_0) << t.name;
  EXPECT_FALSE(warnings.empty());
  EXPECT_NE(warnings.front().find("written as Q8_0 instead of Q6_K"), std::string::npos)
      << warnings.front();
  const double d6 = logits_rel_diff(open_model_source(p6), src, "models/ref-s/golden.json");
  export_with(src, "s4.gguf", "Q4_K_M", &r);
  for (const GgufExportTensor& t : r.tensors)
    if (t.shape.size() == 2) {
      EXPECT_TRUE(t.type == GgmlType::Q5_0 || t.type == GgmlType::Q8_0) << t.name;
    }
  std::printf("ref-s -> Q6_K (all Q8_0 fallback): rel dlogit %.3g\n", d6);
  EXPECT_LT(d6, 0.02);  // measured 0.0111
  // A .lowbit source: an int8:g32 tensor asked for as Q6_K falls back to Q8_0 = its own grid, so
  // its codes are kept; a ref-m int4:g32 model exported as Q4_K is dequantized and re-encoded.
  const ModelSource m = open_model_source(test::shared_path("models/ref-m"));
  const auto tok = load_tokenizer_for(m, "");
  QuantizeOptions qo;
  qo.recipe = "rtn:int4:g32";
  const std::string lb = test::temp_dir() + "/m.lowbit";
  quantize_model(m, *tok, qo, lb);
  const ModelSource q = open_model_source(lb);
  warnings.clear();
  const std::string pq = export_with(q, "mq.gguf", "Q4_K", &r, &warnings);
  EXPECT_TRUE(find(r, "blk.0.attn_q.weight").requantized);
  EXPECT_EQ(find(r, "blk.0.attn_q.weight").type, GgmlType::Q4_K);
  EXPECT_EQ(find(r, "blk.0.ffn_down.weight").type, GgmlType::Q5_0);
  bool rechosen = false;
  for (const std::string& w : warnings) rechosen |= w.find("re-chosen") != std::string::npos;
  EXPECT_TRUE(rechosen);
  const double dq = logits_rel_diff(open_model_source(pq), q, "models/ref-m/golden.json");
  std::printf("ref-m int4:g32 .lowbit -> Q4_K: rel dlogit vs the .lowbit %.3g\n", dq);
  EXPECT_LT(dq, 0.08);
}

// Files in `dir`.
size_t file_count(const std::string& dir) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++n;
  return n;
}

TEST(KQuantExport, BadTypeAndNonFiniteWeightsLeaveNoFile) {
  GgufExportOptions opt;
  try {
    parse_export_type("Q2_K", opt);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown --type 'Q2_K' (expected F32, F16, Q8_0, Q6_K, "
                                         "Q5_K, Q5_1, Q5_0, Q4_K, Q4_0, IQ4_NL, Q3_K, Q3_K_M, "
                                         "Q4_K_M or Q5_K_M)"),
              std::string::npos)
        << e.what();
  }
  parse_export_type("q4_k_m", opt);
  EXPECT_EQ(opt.mix, GgufMix::Q4_K_M);
  parse_export_type("q3_k_m", opt);
  EXPECT_EQ(opt.mix, GgufMix::Q3_K_M);
  parse_export_type("q6_k", opt);
  EXPECT_FALSE(opt.mix.has_value());
  EXPECT_EQ(opt.type, GgmlType::Q6_K);
  const ModelSource src = open_model_source(test::shared_path("models/ref-m"));
  std::vector<float> values = to_f32(src.tensor("layers.3.up_proj"));
  values[300] = INFINITY;
  const ModelSource bad = test::with_tensor_values(src, "layers.3.up_proj", std::move(values));
  const auto tok = load_tokenizer_for(src, "");
  const std::string dir = test::temp_dir();
  GgufExportOptions o;
  o.mix = GgufMix::Q4_K_M;
  try {
    export_gguf(bad, *tok, o, dir + "/out.gguf");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("non-finite"), std::string::npos) << e.what();
  }
  EXPECT_EQ(file_count(dir), 0u);
}

}  // namespace
}  // namespace lowbit
