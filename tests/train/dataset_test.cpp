// Fine-tuning data (train/dataset.h): text windows, JSONL prompt masking, held-out split,
// batching, shuffles, and the errors malformed files give.
#include <gtest/gtest.h>

#include <algorithm>

#include "base/error.h"
#include "model/loader.h"
#include "testutil.h"
#include "train/dataset.h"

namespace lowbit {
namespace {

const Tokenizer& stories_tokenizer() {
  static LoadedModel m = load_model(test::shared_path("models/stories260K/stories260K.bin"));
  return *m.tokenizer;
}

std::string temp_file(const std::string& name, const std::string& text) {
  const std::string p = test::temp_dir() + "/" + name;
  test::write_file(p, text);
  return p;
}

TEST(Dataset, TextWindowsCoverTheStreamAndHoldOutTheTail) {
  const Tokenizer& tok = stories_tokenizer();
  std::string text;
  for (int i = 0; i < 40; ++i) text += "Once upon a time there was a little cat. ";
  const std::vector<int32_t> ids = tok.encode(text, true);
  DatasetOptions o;
  o.ctx = 16;
  o.holdout = 0.25;
  const Dataset d = load_dataset(temp_file("t.txt", text), tok, o);
  EXPECT_EQ(d.kind, "text");
  const size_t n_hold = static_cast<size_t>(static_cast<double>(ids.size()) * 0.25);
  // Train windows: inputs ids[16k, 16k+16), targets shifted by one, all within the train part.
  int64_t targets = 0;
  for (size_t k = 0; k < d.train.size(); ++k) {
    const Sequence& s = d.train[k];
    ASSERT_LE(s.tokens.size(), 16u);
    for (size_t i = 0; i < s.tokens.size(); ++i) {
      EXPECT_EQ(s.tokens[i], ids[16 * k + i]);
      EXPECT_EQ(s.targets[i], ids[16 * k + i + 1]);
    }
    targets += s.n_targets();
  }
  EXPECT_EQ(targets, static_cast<int64_t>(ids.size() - n_hold - 1));
  EXPECT_EQ(d.heldout_targets(), static_cast<int64_t>(n_hold - 1));
  EXPECT_EQ(d.heldout.front().tokens.front(), ids[ids.size() - n_hold]);
}

TEST(Dataset, JsonlMasksThePromptAndEndsWithEos) {
  const Tokenizer& tok = stories_tokenizer();
  const std::string path = temp_file("d.jsonl",
                                     "{\"prompt\": \"Tom saw\", \"completion\": \" a big dog.\"}\n\n"
                                     "{\"instruction\": \"Say hi\", \"input\": \"\", \"output\": \"Hi!\"}\n"
                                     "{\"text\": \"The sun was hot.\"}\n"
                                     "{\"prompt\": \"Lily\", \"response\": \" ran.\"}\n");
  DatasetOptions o;
  o.holdout = 0.25;
  const Dataset d = load_dataset(path, tok, o);
  ASSERT_EQ(d.train.size(), 3u);
  ASSERT_EQ(d.heldout.size(), 1u);
  const std::vector<int32_t> full = tok.encode("Tom saw a big dog.", true), prompt = tok.encode("Tom saw", true);
  const Sequence& s = d.train[0];
  ASSERT_EQ(s.tokens.size(), full.size());  // + EOS − the last input
  for (size_t i = 0; i < s.tokens.size(); ++i) {
    EXPECT_EQ(s.tokens[i], full[i]);
    const int32_t want = i + 1 < prompt.size() ? -1 : (i + 1 < full.size() ? full[i + 1] : tok.eos_id());
    EXPECT_EQ(s.targets[i], want) << i;
  }
  EXPECT_EQ(d.train[2].n_targets(), static_cast<int64_t>(tok.encode("The sun was hot.", true).size() - 1));
}

TEST(Dataset, MalformedFilesGiveLineNumberedErrors) {
  const Tokenizer& tok = stories_tokenizer();
  const DatasetOptions o;
  auto error_of = [&](const std::string& text) {
    try {
      load_dataset(temp_file("bad.jsonl", text), tok, o);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error_of("{\"text\": \"a\"}\n{\"text\": \n").find("bad.jsonl:2: not valid JSON"), std::string::npos);
  EXPECT_NE(error_of("[1, 2]\n").find("expected a JSON object"), std::string::npos);
  EXPECT_NE(error_of("{\"text\": 5}\n").find("must be a string"), std::string::npos);
  EXPECT_NE(error_of("{\"prompt\": \"x\"}\n").find("needs a \"completion\""), std::string::npos);
  EXPECT_NE(error_of("{\"foo\": \"x\"}\n").find(":1: expected"), std::string::npos);
  EXPECT_NE(error_of("\n\n").find("too little data"), std::string::npos);
  EXPECT_THROW(load_dataset(test::temp_dir() + "/missing.txt", tok, o), Error);
  DatasetOptions bad = o;
  bad.ctx = 1;
  EXPECT_THROW(load_dataset(temp_file("x.txt", "hello there"), tok, bad), Error);
  bad = o;
  bad.holdout = 0.95;
  EXPECT_THROW(load_dataset(temp_file("x.txt", "hello there"), tok, bad), Error);
}

TEST(Dataset, BatchesPadAndEpochOrdersArePermutations) {
  std::vector<Sequence> seqs(3);
  seqs[0] = {{1, 2, 3}, {2, 3, 4}};
  seqs[1] = {{5}, {6}};
  seqs[2] = {{7, 8}, {-1, 9}};
  const TrainBatch b = make_batch(seqs, {2, 0, 1}, 1, 2);
  EXPECT_EQ(b.n_seq, 2);
  EXPECT_EQ(b.len, 3);
  EXPECT_EQ(b.tokens, (std::vector<int32_t>{1, 2, 3, 5, 0, 0}));
  EXPECT_EQ(b.targets, (std::vector<int32_t>{2, 3, 4, 6, -1, -1}));
  const std::vector<int64_t> o1 = epoch_order(100, 7, 0), o2 = epoch_order(100, 7, 1);
  EXPECT_EQ(o1, epoch_order(100, 7, 0));
  EXPECT_NE(o1, o2);
  std::vector<int64_t> sorted = o2;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 100; ++i) EXPECT_EQ(sorted[i], i);
}

}  // namespace
}  // namespace lowbit
