// The continuous-batching scheduler: greedy equality with generate under any batch mix, the
// bounded queue, cancellation, draining, bad requests and log-probabilities.
#include "serve/scheduler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <thread>

#include "base/error.h"
#include "serve_test_model.h"

namespace lowbit {
namespace {

using namespace std::chrono_literals;

std::vector<int32_t> prompt_of(const std::string& text) {
  return test::serve_test_model().tokenizer->encode(text, true);
}

GenRequest greedy(std::vector<int32_t> prompt, int64_t n) {
  GenRequest r;
  r.prompt = std::move(prompt);
  r.max_tokens = n;
  r.sampler.temperature = 0;
  r.stop_ids = {test::serve_test_model().tokenizer->eos_id()};
  return r;
}

// Every token of a request, waiting at most ~20 s.
std::vector<int32_t> drain_tokens(RequestHandle& h) {
  std::vector<TokenEvent> ev;
  for (int i = 0; i < 400 && h.next(ev, 50ms); ++i) {
  }
  std::vector<int32_t> ids;
  for (const TokenEvent& e : ev) ids.push_back(e.id);
  return ids;
}

TEST(Scheduler, GreedyBatchesEqualGenerateTokenForToken) {
  const std::vector<std::string> texts = {
      "The history of the city", "Once upon a time", "In 1923 the company announced that it would build",
      "A", "Scientists have found that the river", "The first"};
  SchedulerOptions so;
  so.parallel = 3;        // some requests wait in the queue and join a running batch later
  so.prefill_chunk = 5;   // long prompts are prefilled in chunks beside decoding streams
  Scheduler s(*test::serve_test_model().model, so);
  std::vector<std::shared_ptr<RequestHandle>> hs;
  for (size_t i = 0; i < texts.size(); ++i) hs.push_back(s.submit(greedy(prompt_of(texts[i]), 12 + 5 * static_cast<int64_t>(i))));
  for (size_t i = 0; i < texts.size(); ++i) {
    ASSERT_TRUE(hs[i]);
    const std::vector<int32_t> got = drain_tokens(*hs[i]);
    EXPECT_EQ(got, test::greedy_reference(prompt_of(texts[i]), 12 + 5 * static_cast<int64_t>(i))) << texts[i];
    const FinishReason r = hs[i]->finish_reason();
    EXPECT_TRUE(r == FinishReason::Length || r == FinishReason::Eos) << finish_reason_name(r);
  }
  const SchedulerStats st = s.stats();
  EXPECT_EQ(st.requests_total, 6);
  EXPECT_EQ(st.active, 0);
  EXPECT_GT(st.steps_total, 0);
}

TEST(Scheduler, QueueIsBoundedAndCancelFreesTheSlot) {
  SchedulerOptions so;
  so.parallel = 1;
  so.max_queue = 1;
  Scheduler s(*test::serve_test_model().model, so);
  auto a = s.submit(greedy(prompt_of("One"), 200));
  auto b = s.submit(greedy(prompt_of("Two"), 200));
  ASSERT_TRUE(a && b);
  auto c = s.submit(greedy(prompt_of("Three"), 5));
  EXPECT_FALSE(c);  // one running, one waiting: full
  EXPECT_EQ(s.stats().rejected_total, 1);
  a->cancel();
  b->cancel();
  drain_tokens(*a);
  drain_tokens(*b);
  EXPECT_EQ(a->finish_reason(), FinishReason::Cancelled);
  auto d = s.submit(greedy(prompt_of("Four"), 3));
  ASSERT_TRUE(d);
  EXPECT_EQ(drain_tokens(*d).size(), 3u);
  EXPECT_EQ(d->finish_reason(), FinishReason::Length);
}

TEST(Scheduler, DrainRefusesNewWorkAndFinishesTheRest) {
  Scheduler s(*test::serve_test_model().model, SchedulerOptions{});
  auto a = s.submit(greedy(prompt_of("Hello"), 8));
  ASSERT_TRUE(a);
  s.drain();
  EXPECT_FALSE(s.submit(greedy(prompt_of("Late"), 8)));
  EXPECT_TRUE(s.wait_idle(20s));
  drain_tokens(*a);
  const FinishReason r = a->finish_reason();
  EXPECT_TRUE(r == FinishReason::Length || r == FinishReason::Eos) << finish_reason_name(r);
}

TEST(Scheduler, DrainTimeoutCancelsWhatIsLeft) {
  SchedulerOptions so;
  so.parallel = 1;
  Scheduler s(*test::serve_test_model().model, so);
  GenRequest r = greedy(prompt_of("Hello"), 250);
  r.stop_ids.clear();  // never stops early
  auto a = s.submit(r);
  auto b = s.submit(greedy(prompt_of("Queued"), 5));
  s.drain();
  EXPECT_FALSE(s.wait_idle(1ms));
  drain_tokens(*a);
  drain_tokens(*b);
  EXPECT_EQ(a->finish_reason(), FinishReason::Drained);
  EXPECT_EQ(b->finish_reason(), FinishReason::Drained);
}

TEST(Scheduler, RefusesBadRequestsAndOptions) {
  const LlamaModel& m = *test::serve_test_model().model;
  Scheduler s(m, SchedulerOptions{});
  test::expect_error([&] { s.submit(greedy({}, 4)); }, "empty", "serve");
  test::expect_error([&] { s.submit(greedy(std::vector<int32_t>(m.config().max_seq_len, 5), 4)); }, "context", "serve");
  test::expect_error([&] { s.submit(greedy({1, 2}, 0)); }, "max_tokens", "serve");
  test::expect_error([&] { s.submit(greedy({1, 1 << 30}, 4)); }, "outside the vocabulary", "serve");
  GenRequest bad = greedy({1, 2}, 4);
  bad.sampler.top_p = 2;
  test::expect_error([&] { s.submit(bad); }, "top-p", "sampler");
  SchedulerOptions so;
  so.ctx = m.config().max_seq_len + 1;
  test::expect_error([&] { Scheduler x(m, so); }, "--ctx", "serve");
  so = {};
  so.parallel = 0;
  test::expect_error([&] { Scheduler x(m, so); }, "--parallel", "serve");
}

TEST(Scheduler, ContextStopsAReplyWithLengthReason) {
  const LlamaModel& m = *test::serve_test_model().model;
  SchedulerOptions so;
  so.ctx = 12;
  Scheduler s(m, so);
  GenRequest r = greedy(prompt_of("The history of the city"), 100);
  r.stop_ids.clear();
  const int64_t n_prompt = static_cast<int64_t>(r.prompt.size());
  auto h = s.submit(r);
  EXPECT_EQ(static_cast<int64_t>(drain_tokens(*h).size()), 12 - n_prompt);
  EXPECT_EQ(h->finish_reason(), FinishReason::Context);
}

TEST(Scheduler, LogprobsAreNormalisedAndRankTheGreedyTokenFirst) {
  Scheduler s(*test::serve_test_model().model, SchedulerOptions{});
  GenRequest r = greedy(prompt_of("The history of"), 6);
  r.top_logprobs = 4;
  auto h = s.submit(r);
  std::vector<TokenEvent> ev;
  for (int i = 0; i < 400 && h->next(ev, 50ms); ++i) {
  }
  ASSERT_FALSE(ev.empty());
  for (const TokenEvent& e : ev) {
    ASSERT_EQ(e.top.size(), 4u);
    EXPECT_EQ(e.top[0].first, e.id);  // greedy picks the most likely token
    EXPECT_FLOAT_EQ(e.top[0].second, e.logprob);
    EXPECT_LE(e.logprob, 0.0f);
    double mass = 0;
    for (size_t k = 0; k < e.top.size(); ++k) {
      mass += std::exp(e.top[k].second);
      if (k) {
        EXPECT_LE(e.top[k].second, e.top[k - 1].second);
      }
    }
    EXPECT_LE(mass, 1.0 + 1e-5);
  }
}

}  // namespace
}  // namespace lowbit

namespace lowbit {
namespace {

// A prompt of exactly n tokens (BOS + words), for block arithmetic.
std::vector<int32_t> prompt_tokens(int64_t n, int32_t salt = 0) {
  std::vector<int32_t> ids = test::serve_test_model().tokenizer->encode(
      "The history of the city begins with a small settlement on the river, where farmers and traders met every "
      "season to exchange grain, tools and news from the towns along the coast and the hills beyond them",
      true);
  ids.resize(static_cast<size_t>(n));
  if (salt) ids.back() = salt;
  return ids;
}

TEST(SchedulerKv, PromptPrefixBlocksAreReusedAndRepliesStayExact) {
  SchedulerOptions so;
  so.kv_block = 16;
  Scheduler s(*test::serve_test_model().model, so);
  const std::vector<int32_t> p = prompt_tokens(40);
  auto a = s.submit(greedy(p, 10));
  const std::vector<int32_t> first = drain_tokens(*a);
  EXPECT_EQ(first, test::greedy_reference(p, 10));
  EXPECT_EQ(s.stats().prefix_reused_tokens_total, 0);
  EXPECT_EQ(s.stats().prefix_blocks, 2);  // positions 0-31: the full blocks holding only prompt
  auto b = s.submit(greedy(p, 10));       // the same prompt: 32 positions come from the cache
  EXPECT_EQ(drain_tokens(*b), first);
  EXPECT_EQ(s.stats().prefix_reused_tokens_total, 32);
  std::vector<int32_t> q = p;
  q[20] = p[20] == 5 ? 6 : 5;  // differs in the second block: only the first is reused
  auto c = s.submit(greedy(q, 6));
  EXPECT_EQ(drain_tokens(*c), test::greedy_reference(q, 6));
  EXPECT_EQ(s.stats().prefix_reused_tokens_total, 32 + 16);
  const std::vector<int32_t> exact = prompt_tokens(32);  // a prompt of whole blocks keeps its last token to compute
  auto d = s.submit(greedy(exact, 4));
  EXPECT_EQ(drain_tokens(*d), test::greedy_reference(exact, 4));
  EXPECT_EQ(s.stats().prefix_reused_tokens_total, 32 + 16 + 16);
}

TEST(SchedulerKv, BudgetMakesRequestsWaitInsteadOfFailing) {
  const LlamaModel& m = *test::serve_test_model().model;
  SchedulerOptions so;
  so.parallel = 4;
  so.ctx = 64;
  so.kv_budget = 64;  // room for one request's worst case at a time
  so.kv_block = 8;
  Scheduler s(m, so);
  std::vector<std::shared_ptr<RequestHandle>> hs;
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 3; ++i) {
    prompts.push_back(prompt_tokens(10, 100 + i));
    GenRequest r = greedy(prompts.back(), 40);
    hs.push_back(s.submit(r));
  }
  for (int i = 0; i < 3; ++i) {
    std::vector<TokenEvent> ev;
    for (int k = 0; k < 400 && hs[i]->next(ev, std::chrono::milliseconds(5)); ++k) {
    }
    std::vector<int32_t> ids;
    for (const TokenEvent& e : ev) ids.push_back(e.id);
    EXPECT_EQ(ids, test::greedy_reference(prompts[i], 40)) << i;
  }
  // The high-water mark, kept by the pool itself (sampling stats() from here races the
  // scheduler): one request's 49 written positions take 7 blocks of 8, and the budget holds 8.
  const int64_t peak = s.stats().kv_tokens_peak;
  EXPECT_LE(peak, 64);
  EXPECT_GE(peak, 56);
  SchedulerOptions bad = so;
  bad.kv_budget = 63;
  test::expect_error([&] { Scheduler x(m, bad); }, "--kv-budget", "serve");
}

TEST(SchedulerKv, BlocksGoBackWhenRequestsEnd) {
  SchedulerOptions so;
  so.kv_block = 16;
  so.kv_type = KvType::Q8;
  Scheduler s(*test::serve_test_model().model, so);
  auto a = s.submit(greedy(prompt_tokens(20), 30));
  drain_tokens(*a);
  for (int i = 0; i < 100 && s.stats().active > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const SchedulerStats st = s.stats();
  EXPECT_EQ(st.prefix_blocks, 1);
  EXPECT_EQ(st.kv_tokens, 16);  // only the published prefix block is left
  const KvRowLayout L = kv_row_layout(KvType::Q8, test::serve_test_model().model->config().n_kv_heads,
                                      test::serve_test_model().model->config().head_dim);
  EXPECT_EQ(st.kv_bytes, 2 * 16 * test::serve_test_model().model->config().n_layers * L.row_bytes());
}

}  // namespace
}  // namespace lowbit

namespace lowbit {
namespace {

using Deltas = std::vector<std::pair<std::string, std::shared_ptr<const LowRankDelta>>>;

// A random rank-4 adapter on every q_proj and down_proj of the shared test model, scaled by `s`.
Deltas random_adapter(float s) {
  const LlamaModel& m = *test::serve_test_model().model;
  std::mt19937_64 rng(5);
  std::normal_distribution<float> d(0.0f, 0.3f);
  Deltas out;
  for (int64_t l = 0; l < m.config().n_layers; ++l)
    for (const char* proj : {"q_proj", "down_proj"}) {
      const std::string name = "layers." + std::to_string(l) + "." + proj;
      const Linear* lin = m.find_linear(name);
      auto delta = std::make_shared<LowRankDelta>();
      delta->rank = 4;
      delta->rows = lin->rows();
      delta->cols = lin->cols();
      delta->a.resize(static_cast<size_t>(4 * lin->cols()));
      delta->b.resize(static_cast<size_t>(4 * lin->rows()));
      for (float& x : delta->a) x = d(rng);
      for (float& x : delta->b) x = d(rng) * 0.1f;
      delta->scale = s;
      out.emplace_back(name, std::move(delta));
    }
  return out;
}

// Requests with different adapters (or none, or another scale) in one batch each get exactly the
// tokens of a model with that adapter merged in as a fixed delta.
TEST(SchedulerLora, EachRequestInAMixedBatchRunsWithItsOwnAdapter) {
  LoadedModel& shared = test::serve_test_model();
  static const int32_t index = shared.model->add_switchable_adapter(random_adapter(1.0f));
  LlamaModel full(shared.source), half(shared.source);
  for (auto& [name, d] : random_adapter(1.0f)) full.add_delta(name, d);
  for (auto& [name, d] : random_adapter(0.5f)) half.add_delta(name, d);
  const std::vector<int32_t> p1 = prompt_of("The history of the city"), p2 = prompt_of("Once upon a time");
  Scheduler s(*shared.model, SchedulerOptions{});
  GenRequest plain = greedy(p1, 12), tuned = greedy(p2, 12), weak = greedy(p1, 12);
  tuned.adapters = {{index, 1.0f}};
  weak.adapters = {{index, 0.5f}};
  auto hp = s.submit(plain), ht = s.submit(tuned), hw = s.submit(weak);
  EXPECT_EQ(drain_tokens(*hp), test::greedy_reference(p1, 12));
  const std::vector<int32_t> t = drain_tokens(*ht);
  EXPECT_EQ(t, test::greedy_reference(p2, 12, &full));
  EXPECT_NE(t, test::greedy_reference(p2, 12));  // the adapter changes the reply
  EXPECT_EQ(drain_tokens(*hw), test::greedy_reference(p1, 12, &half));
  GenRequest bad = greedy(p1, 4);
  bad.adapters = {{index + 1, 1.0f}};
  test::expect_error([&] { s.submit(bad); }, "does not exist", "serve");
}

}  // namespace
}  // namespace lowbit
