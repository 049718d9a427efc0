// KV cache formats: row layouts, round-trip error bounds, attention reading the stored rows
// against the fp32 attention of the decoded rows (the oracle), and the cost of each format on a
// real model's logits (two-sided bands).
#include "model/kv_cache.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "base/error.h"
#include "model/attention.h"
#include "model/llama.h"
#include "model/loader.h"
#include "logits_kl.h"
#include "testutil.h"

namespace lowbit {
namespace {

std::vector<float> randn(int64_t n, uint64_t seed, float sd = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, sd);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = d(rng);
  return v;
}

TEST(KvCache, RowLayouts) {
  EXPECT_EQ(kv_row_layout(KvType::F32, 4, 64).row_bytes(), 4 * 64 * 4);
  EXPECT_EQ(kv_row_layout(KvType::F16, 4, 64).row_bytes(), 4 * 64 * 2);
  EXPECT_EQ(kv_row_layout(KvType::Q8, 4, 64).row_bytes(), 4 * 2 * (2 + 32));  // 8.5 bits per number
  EXPECT_EQ(kv_row_layout(KvType::Q4, 4, 64).row_bytes(), 4 * 2 * (4 + 16));  // 5 bits
  EXPECT_EQ(kv_row_layout(KvType::Q8, 2, 8).group, 8);                        // one group per small head
  EXPECT_EQ(kv_row_layout(KvType::Q4, 3, 96).group, 32);
  EXPECT_EQ(parse_kv_type("q4"), KvType::Q4);
  test::expect_error([] { parse_kv_type("q3"); }, "unknown KV cache type", "model");
}

// |x − x̂| within half a step of the stored (fp16-rounded) scale, plus the fp16 rounding of the
// range ends (2^-11 relative) that can push a code against its clamp.
TEST(KvCache, RoundTripErrorWithinHalfAStep) {
  for (int64_t hd : {8, 32, 64, 96}) {
    for (KvType t : {KvType::F16, KvType::Q8, KvType::Q4}) {
      const KvRowLayout L = kv_row_layout(t, 3, hd);
      const int64_t n = 5;
      const std::vector<float> x = randn(n * 3 * hd, 7 + hd, 2.0f);
      std::vector<uint8_t> bytes(static_cast<size_t>(n * L.row_bytes()));
      kv_store_rows(L, x.data(), n, bytes.data());
      std::vector<float> y(x.size());
      kv_load_rows(L, bytes.data(), n, y.data());
      for (int64_t g0 = 0; g0 < static_cast<int64_t>(x.size()); g0 += L.group) {
        float lo = x[g0], hi = x[g0];
        for (int64_t i = 0; i < L.group; ++i) lo = std::min(lo, x[g0 + i]), hi = std::max(hi, x[g0 + i]);
        const float amax = std::max(std::fabs(lo), std::fabs(hi));
        const float step = t == KvType::Q8 ? amax / 127 : (hi - lo) / 15;
        const float bound = t == KvType::F16 ? amax * 0x1p-11f : 0.5f * step * (1 + 0x1p-10f) + amax * 0x1p-10f;
        for (int64_t i = 0; i < L.group; ++i)
          ASSERT_LE(std::fabs(x[g0 + i] - y[g0 + i]), bound) << kv_type_name(t) << " hd " << hd << " at " << g0 + i;
      }
    }
  }
}

TEST(KvCache, NonFiniteRowsStayNonFinite) {
  for (KvType t : {KvType::Q8, KvType::Q4}) {
    const KvRowLayout L = kv_row_layout(t, 1, 32);
    std::vector<float> x(32, 1.0f);
    x[3] = INFINITY;
    std::vector<uint8_t> bytes(static_cast<size_t>(L.row_bytes()));
    kv_store_rows(L, x.data(), 1, bytes.data());
    std::vector<float> y(32);
    kv_load_rows(L, bytes.data(), 1, y.data());
    EXPECT_TRUE(std::isnan(y[0])) << kv_type_name(t);
  }
}

// Attention over stored rows equals the reference attention over the decoded rows (bit for bit
// for f32; for the other formats to fp32 rounding, 1e-5 relative to the output scale: the
// products are summed in another order), whether the rows are in one block or several, for every
// format, GQA, several queries at an offset, and awkward head sizes.
TEST(KvCache, AttentionOnStoredRowsEqualsAttentionOnDecodedRows) {
  for (int64_t hd : {8, 32, 96}) {
    for (KvType t : {KvType::F32, KvType::F16, KvType::Q8, KvType::Q4}) {
      LlamaConfig c;
      c.n_heads = 4;
      c.n_kv_heads = 2;
      c.head_dim = hd;
      const int64_t T = 3, pos0 = 6, n_keys = pos0 + T;
      const KvRowLayout L = kv_row_layout(t, c.n_kv_heads, hd);
      const std::vector<float> q = randn(T * c.n_heads * hd, 1), k = randn(n_keys * c.n_kv_heads * hd, 2),
                               v = randn(n_keys * c.n_kv_heads * hd, 3);
      std::vector<uint8_t> kb(static_cast<size_t>(n_keys * L.row_bytes())), vb(kb.size());
      kv_store_rows(L, k.data(), n_keys, kb.data());
      kv_store_rows(L, v.data(), n_keys, vb.data());
      std::vector<float> kd(k.size()), vd(v.size());
      kv_load_rows(L, kb.data(), n_keys, kd.data());
      kv_load_rows(L, vb.data(), n_keys, vd.data());
      std::vector<float> want(q.size()), got(q.size()), paged(q.size());
      causal_attention(c, q.data(), T, kd.data(), vd.data(), pos0, want.data());
      kv_causal_attention(L, c.n_heads, q.data(), T, KvLayerRows{{kb.data()}, {vb.data()}, n_keys}, pos0, got.data());
      // The same rows in blocks of 4 (the last one partly used), each block its own buffer.
      std::vector<std::vector<uint8_t>> kblocks, vblocks;
      KvLayerRows rows{{}, {}, 4};
      for (int64_t j = 0; j < n_keys; j += 4) {
        kblocks.emplace_back(static_cast<size_t>(4 * L.row_bytes()), 0xAB);
        vblocks.emplace_back(static_cast<size_t>(4 * L.row_bytes()), 0xCD);
        const int64_t n = std::min<int64_t>(4, n_keys - j);
        std::copy(kb.begin() + j * L.row_bytes(), kb.begin() + (j + n) * L.row_bytes(), kblocks.back().begin());
        std::copy(vb.begin() + j * L.row_bytes(), vb.begin() + (j + n) * L.row_bytes(), vblocks.back().begin());
      }
      for (size_t b = 0; b < kblocks.size(); ++b) rows.k.push_back(kblocks[b].data()), rows.v.push_back(vblocks[b].data());
      kv_causal_attention(L, c.n_heads, q.data(), T, rows, pos0, paged.data());
      for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_EQ(paged[i], got[i]) << "blocks change nothing";
        if (t == KvType::F32)  // the same products in the same order as the reference
          ASSERT_EQ(got[i], want[i]) << "hd " << hd << " " << i;
        else
          ASSERT_NEAR(got[i], want[i], 1e-5f * (1 + std::fabs(want[i]))) << kv_type_name(t) << " hd " << hd << " " << i;
      }
    }
  }
}

// The logits of ref-s with each cache format against fp32: mean KL over a 128-token window in
// bands (f16 ~ rounding, q8 small, q4 larger), and the forward refuses another model's cache.
TEST(KvCache, ModelLogitsCostOfEachFormat) {
  static const ModelSource src = open_model_source(test::shared_path("models/ref-s"));
  const LlamaModel m(src);
  const std::unique_ptr<Tokenizer> tok = load_tokenizer_for(src, "");
  std::vector<int32_t> ids = tok->encode(test::read_file(test::shared_path("data/wikitext-2-raw/wiki.test.raw")).substr(0, 4000), true);
  ids.resize(128);
  const int64_t V = m.config().vocab_size;
  auto logits_with = [&](KvType t) {
    KvCache cache = m.new_cache(128, t);
    std::vector<float> out;
    m.forward(ids, cache, true, out);
    return out;
  };
  const std::vector<float> ref = logits_with(KvType::F32);
  auto mean_kl = [&](const std::vector<float>& got) { return test::mean_kl(ref, got, 128, V); };
  const double f16 = mean_kl(logits_with(KvType::F16)), q8 = mean_kl(logits_with(KvType::Q8)),
               q4 = mean_kl(logits_with(KvType::Q4));
  std::printf("mean KL vs f32 cache: f16 %.3g, q8 %.3g, q4 %.3g\n", f16, q8, q4);
  EXPECT_LT(f16, 1e-5);
  EXPECT_GT(q8, f16);
  EXPECT_LT(q8, 1e-3);
  EXPECT_GT(q4, 5 * q8);
  EXPECT_LT(q4, 5e-2);
  const LlamaModel other(open_model_source(test::shared_path("models/stories260K/stories260K.bin")));
  KvCache foreign = other.new_cache(8);
  std::vector<float> out;
  test::expect_error([&] { m.forward(std::vector<int32_t>{1, 2}, foreign, false, out); }, "another model", "model");
}

}  // namespace
}  // namespace lowbit
