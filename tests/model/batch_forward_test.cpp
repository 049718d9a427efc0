// LlamaModel::forward_batch (the server's continuous batch) against one forward() per sequence.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "algo/rtn.h"
#include "formats/quant_spec.h"
#include "model/llama.h"
#include "model/loader.h"
#include "testutil.h"

namespace lowbit {
namespace {

// ref-s with every linear layer quantized to `spec` by RTN (packed kernels).
std::unique_ptr<LlamaModel> packed_ref_s(const std::string& spec_text) {
  static const ModelSource base = open_model_source(test::shared_path("models/ref-s"));
  const ModelSource src = [&] {
    ModelSource s = base;
    const QuantSpec spec = parse_quant_spec(spec_text);
    for (auto it = s.tensors.begin(); it != s.tensors.end();) {
      if ((it->first.starts_with("layers.") && it->first.ends_with("_proj")) || it->first == "lm_head") {
        const Matrix m = matrix_from(it->second);
        s.quantized.emplace(it->first, quantize_rtn(m.data, m.rows, m.cols, spec));
        it = s.tensors.erase(it);
      } else {
        ++it;
      }
    }
    return s;
  }();
  return std::make_unique<LlamaModel>(src);
}

const LlamaModel& dense_stories() {
  static const ModelSource src = open_model_source(test::shared_path("models/stories260K/stories260K.bin"));
  static const LlamaModel m(src);
  return m;
}

struct Seq {
  std::vector<int32_t> history;  // already in the cache
  std::vector<int32_t> step;     // this step's tokens
  bool all_logits;
};

// Runs the steps one sequence at a time and as one batch; returns {separate, batched} logits.
std::pair<std::vector<float>, std::vector<float>> run_both(const LlamaModel& m, const std::vector<Seq>& seqs) {
  std::vector<float> separate, batched, tmp;
  std::vector<KvCache> caches;
  for (const Seq& s : seqs) {
    KvCache c = m.new_cache(64);
    if (!s.history.empty()) m.forward(s.history, c, false, tmp);
    caches.push_back(c);  // a copy: the batched run starts from the same state
    m.forward(s.step, c, s.all_logits, tmp);
    separate.insert(separate.end(), tmp.begin(), tmp.end());
  }
  std::vector<BatchSequence> batch;
  for (size_t i = 0; i < seqs.size(); ++i) batch.push_back({seqs[i].step, &caches[i], seqs[i].all_logits});
  m.forward_batch(batch, batched);
  for (size_t i = 0; i < seqs.size(); ++i)
    EXPECT_EQ(caches[i].n_past, static_cast<int64_t>(seqs[i].history.size() + seqs[i].step.size()));
  return {separate, batched};
}

const std::vector<Seq> kMix = {
    {{1, 40, 41, 42}, {7}, false},          // a decode step
    {{}, {1, 12, 13, 14, 15, 16}, true},    // a prefill wanting every position
    {{1, 90}, {91, 92, 93}, false},         // a prefill chunk after earlier chunks
    {{1, 5, 6, 7, 8, 9, 10, 11}, {3}, false},
};

// Packed kernels (integer and float families) compute each row independently of the others.
TEST(BatchForward, PackedRowsEqualSeparateForwardsExactly) {
  for (const char* spec : {"int4:g64", "nf4:g64", "int8:g128"}) {
    const auto m = packed_ref_s(spec);
    const auto [separate, batched] = run_both(*m, kMix);
    ASSERT_EQ(batched.size(), static_cast<size_t>((1 + 6 + 1 + 1) * m->config().vocab_size));
    ASSERT_EQ(separate.size(), batched.size());
    for (size_t i = 0; i < batched.size(); ++i) ASSERT_EQ(separate[i], batched[i]) << spec << " " << i;
  }
}

// Dense fp32 layers use one dot product per output for batches up to kRowDotMaxRows rows (exact
// here: 9 rows) and sgemm beyond (equal up to rounding).
TEST(BatchForward, DenseRowsEqualUpToTheDotProductLimit) {
  const auto [separate, batched] = run_both(dense_stories(), kMix);
  ASSERT_EQ(separate.size(), batched.size());
  for (size_t i = 0; i < batched.size(); ++i) ASSERT_EQ(separate[i], batched[i]) << i;
  std::vector<Seq> long_mix = kMix;
  long_mix.push_back({{1}, std::vector<int32_t>(kRowDotMaxRows, 9), false});
  const auto [sep2, bat2] = run_both(dense_stories(), long_mix);
  double max_diff = 0, max_abs = 0;
  for (size_t i = 0; i < bat2.size(); ++i) {
    max_diff = std::max(max_diff, std::abs(static_cast<double>(sep2[i]) - bat2[i]));
    max_abs = std::max(max_abs, std::abs(static_cast<double>(sep2[i])));
  }
  EXPECT_LT(max_diff, 1e-4 * max_abs);
}

TEST(BatchForward, RefusesBadBatchesWithoutTouchingCaches) {
  const LlamaModel& m = dense_stories();
  KvCache a = m.new_cache(4), b = m.new_cache(4);
  const std::vector<int32_t> two = {1, 2}, three = {1, 2, 3}, bad = {1, 1 << 30};
  std::vector<float> logits;
  auto run = [&](std::vector<BatchSequence> seqs) { m.forward_batch(seqs, logits); };
  test::expect_error([&] { run({}); }, "no sequences", "model");
  test::expect_error([&] { run({{two, &a, false}, {two, &a, false}}); }, "share one KV cache", "model");
  test::expect_error([&] { run({{two, &a, false}, {{}, &b, false}}); }, "no tokens", "model");
  test::expect_error([&] { run({{two, &a, false}, {two, nullptr, false}}); }, "without a KV cache", "model");
  test::expect_error([&] { run({{two, &a, false}, {bad, &b, false}}); }, "outside vocab", "model");
  run({{three, &a, false}});
  test::expect_error([&] { run({{two, &b, false}, {two, &a, false}}); }, "context full", "model");
  EXPECT_EQ(a.n_past, 3);
  EXPECT_EQ(b.n_past, 0);
}

}  // namespace
}  // namespace lowbit

namespace lowbit {
namespace {

// The bit allocation's probes run a model from one layer's input on: from the hidden states a
// full forward computes, every start layer gives the full forward's logits bit for bit.
TEST(ForwardFromLayer, EqualsTheFullForwardFromEveryLayer) {
  const LlamaModel& m = dense_stories();
  const std::vector<int32_t> tokens = {1, 40, 41, 42, 7, 300, 12};
  KvCache cache = m.new_cache(16);
  std::vector<float> full, from;
  m.forward(tokens, cache, true, full);
  const auto inputs = m.layer_inputs(tokens);
  ASSERT_EQ(static_cast<int64_t>(inputs.size()), m.config().n_layers + 1);
  for (int64_t l = 0; l <= m.config().n_layers; ++l) {
    m.forward_from_layer(l, tokens, inputs[l], from);
    ASSERT_EQ(from, full) << "from layer " << l;
  }
  test::expect_error([&] { m.forward_from_layer(m.config().n_layers + 1, tokens, inputs[0], from); }, "do not fit");
  test::expect_error([&] { m.forward_from_layer(0, {tokens.data(), 3}, inputs[0], from); }, "do not fit");
}

}  // namespace
}  // namespace lowbit
