// wikitext-2 perplexity of ref-s equals the PyTorch reference's (golden.json): same tokenization
// (file token count), same windowing (scored tokens), same NLL to fp32 summation noise.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "base/mapped_file.h"
#include "eval/perplexity.h"
#include "model/loader.h"
#include "testutil.h"

namespace lowbit {
namespace {

TEST(PerplexityGolden, RefSWikitext2MatchesReference) {
  const auto golden = nlohmann::json::parse(test::read_file(test::shared_path("models/ref-s/golden.json")));
  const auto& ref = golden["wikitext2_test_perplexity"]["crlf_as_is"];
  LoadedModel m = load_model(test::shared_path("models/ref-s"));
  std::vector<int32_t> ids =
      m.tokenizer->encode(read_text_file(test::shared_path("data/wikitext-2-raw/wiki.test.raw")), false);
  EXPECT_EQ(static_cast<int64_t>(ids.size()), ref["file_tokens"].get<int64_t>());
  ids.resize(100000);
  const PerplexityResult r = perplexity(*m.model, ids, 256, 256);
  EXPECT_EQ(r.windows, ref["windows"].get<int64_t>());
  EXPECT_EQ(r.tokens_scored, ref["scored_tokens"].get<int64_t>());
  EXPECT_NEAR(r.nll_mean, ref["nll"].get<double>(), 1e-4);
  EXPECT_NEAR(r.ppl, ref["ppl"].get<double>(), 1e-4 * ref["ppl"].get<double>());
  std::printf("ref-s wikitext-2 ppl %.4f (reference %.4f), %.0f tok/s\n", r.ppl, ref["ppl"].get<double>(),
              r.tok_per_s);
}

}  // namespace
}  // namespace lowbit
