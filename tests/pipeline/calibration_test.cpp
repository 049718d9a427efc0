// Calibration windows: deterministic, the requested shape, drawn from the source's tokens.
#include <gtest/gtest.h>

#include <filesystem>

#include "base/error.h"
#include "pipeline/calibration.h"
#include "tokenizer/load.h"
#include "testutil.h"

namespace lowbit {
namespace {

std::unique_ptr<Tokenizer> ref_tokenizer() {
  return load_tokenizer_file(test::shared_path("models/ref-s/tokenizer.model"));
}

TEST(Calibration, WindowsAreDeterministicSlicesOfTheSource) {
  const auto tok = ref_tokenizer();
  CalibrationOptions opt;
  opt.source = test::shared_path("data/calibration/tiny.utf8");
  opt.windows = 16;
  opt.window_len = 64;
  const CalibrationSet a = load_calibration(*tok, opt), b = load_calibration(*tok, opt);
  ASSERT_EQ(a.windows.size(), 16u);
  EXPECT_EQ(a.windows, b.windows);
  const std::vector<int32_t> all = tok->encode(test::read_file(opt.source), false);
  EXPECT_EQ(a.source_tokens, static_cast<int64_t>(all.size()));
  for (const auto& w : a.windows) {
    ASSERT_EQ(w.size(), 64u);
    // Each window is a contiguous slice of the tokenized file.
    EXPECT_NE(std::search(all.begin(), all.end(), w.begin(), w.end()), all.end());
  }
  opt.seed = 1;
  EXPECT_NE(load_calibration(*tok, opt).windows, a.windows);
}

TEST(Calibration, DirectoryMixesFilesAndSkipsShortOnes) {
  const auto tok = ref_tokenizer();
  const std::string dir = test::temp_dir() + "/calib";
  std::filesystem::create_directories(dir);
  test::write_file(dir + "/a.txt", test::read_file(test::shared_path("data/calibration/tiny.utf8")));
  test::write_file(dir + "/b.txt", "too short");
  test::write_file(dir + "/.hidden", "ignored");
  CalibrationOptions opt;
  opt.source = dir;
  opt.windows = 4;
  opt.window_len = 32;
  const CalibrationSet set = load_calibration(*tok, opt);
  EXPECT_EQ(set.files.size(), 2u);
  EXPECT_EQ(set.windows.size(), 4u);
}

// Token ids are kept per file for the process; another tokenizer or a changed file must not get
// the kept ids.
TEST(Calibration, KeptTokensFollowTheTokenizerAndTheFile) {
  const std::string file = test::temp_dir() + "/kept.txt";
  test::write_file(file, "one two three four five six seven eight nine ten eleven twelve");
  CalibrationOptions opt;
  opt.source = file;
  opt.windows = 1;
  opt.window_len = 4;
  const auto ref = ref_tokenizer();
  const auto llama = load_tokenizer_file(test::shared_path("models/llama2-tokenizer/tokenizer.model"));
  EXPECT_EQ(load_calibration(*ref, opt).source_tokens,
            static_cast<int64_t>(ref->encode(test::read_file(file), false).size()));
  EXPECT_EQ(load_calibration(*llama, opt).source_tokens,
            static_cast<int64_t>(llama->encode(test::read_file(file), false).size()));
  test::write_file(file, "a longer text now: one two three four five six seven eight nine ten eleven twelve");
  EXPECT_EQ(load_calibration(*ref, opt).source_tokens,
            static_cast<int64_t>(ref->encode(test::read_file(file), false).size()));
}

TEST(Calibration, BadSourcesFailClearly) {
  const auto tok = ref_tokenizer();
  CalibrationOptions opt;
  opt.source = test::temp_dir() + "/does-not-exist";
  EXPECT_THROW(load_calibration(*tok, opt), Error);
  const std::string small = test::temp_dir() + "/small.txt";
  test::write_file(small, "a few words");
  opt.source = small;
  try {
    load_calibration(*tok, opt);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no file has 512 tokens"), std::string::npos) << e.what();
  }
  opt.windows = 0;
  EXPECT_THROW(load_calibration(*tok, opt), Error);
}

}  // namespace
}  // namespace lowbit
