// Zero-shot tasks: the three file layouts (valid and malformed), bzip2 reading, both tokenization
// protocols, log-likelihoods against a brute-force forward per choice, prediction rules, and a
// task a trained model must get right.
#include <bzlib.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "base/error.h"
#include "eval/perplexity.h"
#include "eval/task_data.h"
#include "eval/task_score.h"
#include "model/loader.h"
#include "testutil.h"

namespace lowbit {
namespace {

const LoadedModel& stories() {
  static const LoadedModel m = load_model(test::shared_path("models/stories260K-gguf/stories260K.gguf"));
  return m;
}

std::string bz2(const std::string& s) {
  std::string out(s.size() + s.size() / 100 + 700, '\0');
  unsigned n = static_cast<unsigned>(out.size());
  EXPECT_EQ(BZ2_bzBuffToBuffCompress(out.data(), &n, const_cast<char*>(s.data()), static_cast<unsigned>(s.size()), 9, 0, 0),
            BZ_OK);
  out.resize(n);
  return out;
}

TEST(TaskData, HellaswagLayout) {
  const auto docs = parse_hellaswag("Ctx one: a man\r\n2\nA\nB\nC\nD\nCtx two\n0\nw\nx\ny\nz", "hs.txt");
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[0].context, "Ctx one: a man");
  EXPECT_EQ(docs[0].gold, 2);
  EXPECT_EQ(docs[0].choices, (std::vector<std::string>{" A", " B", " C", " D"}));
  EXPECT_EQ(docs[1].gold, 0);
  test::expect_error([] { parse_hellaswag("c\n1\na\nb\nc\n", "hs.txt"); }, "hs.txt: expected 6 lines", "tasks");
  test::expect_error([] { parse_hellaswag("c\n0\na\nb\nc\nd\nc\n4\na\nb\nc\nd\n", "hs.txt"); }, "hs.txt task 2: gold");
  test::expect_error([] { parse_hellaswag("c\n0\na\n\nc\nd\n", "hs.txt"); }, "task 1: empty ending");
  test::expect_error([] { parse_hellaswag("\n0\na\nb\nc\nd\n", "hs.txt"); }, "empty context");
  test::expect_error([] { parse_hellaswag("", "hs.txt"); }, "expected 6 lines");
}

TEST(TaskData, ArcJsonl) {
  const std::string ok =
      R"({"id":"x","question":{"stem":"Why?","choices":[{"text":"a","label":"A"},{"text":"b","label":"B"},{"text":"c","label":"C"}]},"answerKey":"C"})"
      "\n\n"
      R"({"question":{"stem":"Num","choices":[{"text":"one","label":"1"},{"text":"two","label":"2"}]},"answerKey":"1"})";
  const auto docs = parse_arc_jsonl(ok, "arc.jsonl");
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[0].context, "Question: Why?\nAnswer:");
  EXPECT_EQ(docs[0].choices, (std::vector<std::string>{" a", " b", " c"}));
  EXPECT_EQ(docs[0].gold, 2);
  EXPECT_EQ(docs[1].gold, 0);
  test::expect_error(
      [] {
        parse_arc_jsonl(R"({"question":{"stem":"s","choices":[{"text":"a","label":"A"},{"text":"b","label":"B"}]},"answerKey":"E"})",
                        "a");
      },
      "a line 1: answerKey \"E\" names no choice");
  test::expect_error([] { parse_arc_jsonl("{\"question\": 3}", "a"); }, "field \"question\" has the wrong type");
  test::expect_error([] { parse_arc_jsonl("{}\n{oops", "a"); }, "a line 1: missing field");
  test::expect_error([] { parse_arc_jsonl(std::string(100, '['), "a"); }, "nested deeper");
  test::expect_error([] { parse_arc_jsonl("[1", "a"); }, "a line 1: not valid JSON");
  test::expect_error([] { parse_arc_jsonl("\n \n", "a"); }, "no questions");
}

TEST(TaskData, MmluSample) {
  const auto docs = parse_mmlu_sample(
      R"({"samples":[{"prompt":"Q?\nAnswer:","options":[" A"," B"," C"," D"],"input_label":3}]})", "m.json");
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_EQ(docs[0].gold, 3);
  EXPECT_EQ(docs[0].choices[1], " B");
  test::expect_error(
      [] { parse_mmlu_sample(R"({"samples":[{"prompt":"Q","options":[" A"," B"],"input_label":2}]})", "m"); },
      "m sample 1: gold index 2");
  test::expect_error(
      [] {
        parse_mmlu_sample(R"({"samples":[{"prompt":"Q","options":[" A"," B"],"input_label":18446744073709551615}]})", "m");
      },
      "gold index -1");
  test::expect_error(
      [] { parse_mmlu_sample(R"({"samples":[{"prompt":"Q","options":[" A",7],"input_label":0}]})", "m"); },
      "options must be strings");
  test::expect_error([] { parse_mmlu_sample(R"({"samples":[{"prompt":"Q","options":[" A"],"input_label":0}]})", "m"); },
                     "at least 2 choices");
  test::expect_error(
      [] { parse_mmlu_sample(R"({"samples":[{"prompt":"Q","options":[" A",""],"input_label":0}]})", "m"); },
      "empty choice");
  test::expect_error([] { parse_mmlu_sample(R"({"samples":[]})", "m"); }, "no samples");
}

TEST(TaskData, Bzip2FilesAndLimits) {
  const std::string dir = test::temp_dir();
  const std::string text = "c1\n1\na\nb\nc\nd\nc2\n3\ne\nf\ng\nh\n";
  test::write_file(dir + "/hs.txt.bz2", bz2(text.substr(0, 12)) + bz2(text.substr(12)));  // two streams
  EXPECT_EQ(read_bz2_file(dir + "/hs.txt.bz2"), text);
  const auto docs = load_task_docs(find_task("hellaswag"), dir + "/hs.txt.bz2");
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[1].gold, 3);
  EXPECT_EQ(load_task_docs(find_task("hellaswag"), dir + "/hs.txt.bz2", 1).size(), 1u);
  const std::string packed = bz2(text);
  test::write_file(dir + "/cut.bz2", packed.substr(0, packed.size() - 10));
  test::expect_error([&] { read_bz2_file(dir + "/cut.bz2"); }, "truncated bzip2", "tasks");
  test::write_file(dir + "/plain.bz2", text);
  test::expect_error([&] { read_bz2_file(dir + "/plain.bz2"); }, "plain.bz2: not a valid bzip2 file");
  test::expect_error([&] { read_bz2_file(dir + "/hs.txt.bz2", 10); }, "more than 10 bytes");
  test::expect_error([&] { load_task_docs(find_task("arc_easy"), dir + "/missing.jsonl"); }, "missing.jsonl");
  test::expect_error([] { find_task("winogrande"); }, "unknown task \"winogrande\" (known: hellaswag, arc_easy");
  test::expect_error([] { parse_task_protocol("harness"); }, "unknown protocol");
}

TEST(TaskScore, LmEvalSplitsContextAndContinuation) {
  const Tokenizer& tok = *stories().tokenizer;
  const ChoiceDoc doc{"Once upon a time, Lily ", {"went to the park.", "saw a dog."}, 0};
  const TokenizedDoc t = tokenize_doc(tok, doc, TaskProtocol::LmEval);
  // The trailing space moved to the continuation: the prefix is the context without it.
  EXPECT_EQ(t.prefix, tok.encode("Once upon a time, Lily", true));
  ASSERT_EQ(t.continuations.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    const auto whole = tok.encode("Once upon a time, Lily " + doc.choices[i], true);
    EXPECT_EQ(std::vector<int32_t>(whole.begin() + static_cast<std::ptrdiff_t>(t.prefix.size()), whole.end()),
              t.continuations[i]);
    EXPECT_FALSE(t.continuations[i].empty());
  }
}

TEST(TaskScore, LlamaCppSplitsAtTheCommonTokenPrefix) {
  const Tokenizer& tok = *stories().tokenizer;
  const ChoiceDoc doc{"The cat", {" sat on the mat", " sat on a hat", " ran"}, 0};
  const TokenizedDoc t = tokenize_doc(tok, doc, TaskProtocol::LlamaCpp);
  ASSERT_EQ(t.continuations.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    std::vector<int32_t> joined = t.prefix;
    joined.insert(joined.end(), t.continuations[i].begin(), t.continuations[i].end());
    EXPECT_EQ(joined, tok.encode(doc.context + doc.choices[i], true));
  }
  // The prefix is maximal: the continuations do not all start with the same token.
  EXPECT_FALSE(t.continuations[0][0] == t.continuations[1][0] && t.continuations[1][0] == t.continuations[2][0]);
  // A choice that is another's token prefix keeps its last token.
  const TokenizedDoc same = tokenize_doc(tok, ChoiceDoc{"The cat", {" sat", " sat"}, 0}, TaskProtocol::LlamaCpp);
  EXPECT_EQ(same.continuations[0].size(), 1u);
}

// Σ log p over the continuation, each choice run alone from position 0 in its own fp32 cache.
double brute_force_loglik(const LlamaModel& m, const std::vector<int32_t>& prefix, const std::vector<int32_t>& cont) {
  std::vector<int32_t> seq = prefix;
  seq.insert(seq.end(), cont.begin(), cont.end());
  KvCache cache = m.new_cache(static_cast<int64_t>(seq.size()));
  std::vector<float> logits;
  m.forward(std::span<const int32_t>(seq.data(), seq.size() - 1), cache, true, logits);
  const int64_t V = m.config().vocab_size;
  double ll = 0;
  for (size_t j = prefix.size(); j < seq.size(); ++j)
    ll -= token_nll(std::span<const float>(logits.data() + (j - 1) * V, static_cast<size_t>(V)), seq[j]);
  return ll;
}

TEST(TaskScore, LogLikelihoodsEqualOneForwardPerChoice) {
  const LoadedModel& m = stories();
  const ChoiceDoc doc{"Once upon a time, there was a little girl named Lily. She",
                      {" loved to play outside.", " went", " saw a big red ball in the park and ran to it.", " x y z"},
                      0};
  for (TaskProtocol p : {TaskProtocol::LmEval, TaskProtocol::LlamaCpp}) {
    const TokenizedDoc t = tokenize_doc(*m.tokenizer, doc, p);
    const DocScores s = score_continuations(*m.model, t);
    EXPECT_FALSE(s.truncated);
    ASSERT_EQ(s.choices.size(), 4u);
    for (size_t i = 0; i < 4; ++i) {
      EXPECT_EQ(s.choices[i].tokens, static_cast<int64_t>(t.continuations[i].size()));
      const double want = brute_force_loglik(*m.model, t.prefix, t.continuations[i]);
      EXPECT_NEAR(s.choices[i].loglik, want, 1e-4 * (1 + std::abs(want))) << "choice " << i;
      EXPECT_LT(s.choices[i].loglik, 0);
    }
    // A quantized KV cache changes the numbers a little, not the shape of the result.
    const DocScores q = score_continuations(*m.model, t, KvType::Q8);
    for (size_t i = 0; i < 4; ++i)
      EXPECT_NEAR(q.choices[i].loglik, s.choices[i].loglik, 0.05 * std::abs(s.choices[i].loglik));
  }
}

TEST(TaskScore, LongPrefixLosesTokensFromTheLeft) {
  const LoadedModel& m = stories();
  const int64_t ctx = m.model->config().max_seq_len;
  TokenizedDoc t;
  t.prefix.push_back(m.tokenizer->bos_id());
  for (int64_t i = 0; i < ctx + 40; ++i) t.prefix.push_back(static_cast<int32_t>(3 + (i * 7) % 200));
  t.continuations = {{5, 6, 7}, {8, 9}};
  const DocScores s = score_continuations(*m.model, t);
  EXPECT_TRUE(s.truncated);
  EXPECT_EQ(s.tokens_fed, (ctx - 2) + 2 + 1);  // the prefix keeps ctx - 2 positions for the longest choice
  const std::vector<int32_t> kept(t.prefix.end() - (ctx - 2), t.prefix.end());
  for (size_t i = 0; i < 2; ++i)
    EXPECT_NEAR(s.choices[i].loglik, brute_force_loglik(*m.model, kept, t.continuations[i]), 1e-3);
  const TokenizedDoc huge{{1}, {std::vector<int32_t>(static_cast<size_t>(ctx + 2), 5)}};
  test::expect_error([&] { score_continuations(*m.model, huge); }, "does not fit the context", "tasks");
}

TEST(TaskScore, PredictionRules) {
  const ChoiceDoc doc{"c", {" ab", " éé", " abcdef"}, 0};
  // acc: highest sum; acc_norm: per code point (" éé" has 3, not 5 bytes); acc_tok: per token.
  const std::vector<ChoiceScore> s = {{-6.0, 3}, {-4.5, 1}, {-7.0, 7}};
  EXPECT_EQ(utf8_length(" éé"), 3);
  EXPECT_EQ(predict_choice(doc, s, TaskMetric::Acc), 1);
  EXPECT_EQ(predict_choice(doc, s, TaskMetric::AccNorm), 2);  // -1.0 per char vs -2.0, -1.5
  EXPECT_EQ(predict_choice(doc, s, TaskMetric::AccTok), 2);   // -1.0 per token vs -2.0, -4.5
  const std::vector<ChoiceScore> tie = {{-1.0, 1}, {-1.0, 1}, {-2.0, 1}};
  EXPECT_EQ(predict_choice(doc, tie, TaskMetric::Acc), 0);  // the first of equals wins
  EXPECT_DOUBLE_EQ(accuracy_stderr(0.25, 101), std::sqrt(0.25 * 0.75 / 100));
  EXPECT_EQ(accuracy_stderr(1.0, 1), 0.0);
  EXPECT_DOUBLE_EQ(prediction_agreement({0, 1, 2, 3}, {0, 1, 3, 3}), 0.75);
}

// The trained story model must tell its own greedy continuation from scrambled words.
TEST(TaskScore, TrainedModelPicksItsOwnContinuation) {
  const LoadedModel& m = stories();
  const std::vector<std::string> starts = {"Once upon a time, there was a little girl named Lily.",
                                           "Tom had a big red ball. He", "The sun was shining and the birds"};
  std::vector<ChoiceDoc> docs;
  for (const std::string& s : starts) {
    std::vector<int32_t> ids = m.tokenizer->encode(s, true);
    const size_t n0 = ids.size();
    KvCache cache = m.model->new_cache(static_cast<int64_t>(n0) + 12);
    std::vector<float> logits;
    m.model->forward(ids, cache, false, logits);
    for (int k = 0; k < 10; ++k) {
      const int32_t next = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
      ids.push_back(next);
      m.model->forward(std::span<const int32_t>(&ids.back(), 1), cache, false, logits);
    }
    std::string greedy = m.tokenizer->decode(std::span<const int32_t>(ids.data() + n0, ids.size() - n0));
    if (greedy.empty() || greedy.front() != ' ') greedy.insert(greedy.begin(), ' ');
    docs.push_back({s, {" park lamp quickly blue of the", greedy, " zebra xylophone quartz"}, 1});
  }
  for (TaskProtocol p : {TaskProtocol::LmEval, TaskProtocol::LlamaCpp}) {
    int64_t calls = 0;
    const TaskResult r = run_task(*m.model, *m.tokenizer, docs, p, KvType::F32, [&](int64_t d, int64_t n) {
      ++calls;
      EXPECT_EQ(n, 3);
      EXPECT_EQ(d, calls);
    });
    EXPECT_EQ(r.docs, 3);
    EXPECT_EQ(r[TaskMetric::Acc].value, 1.0);
    EXPECT_EQ(r[TaskMetric::AccTok].value, 1.0);
    EXPECT_EQ(r.predictions[0], (std::vector<int32_t>{1, 1, 1}));
    EXPECT_GT(r.tokens, 30);
  }
}

}  // namespace
}  // namespace lowbit
