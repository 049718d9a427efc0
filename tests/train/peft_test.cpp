// PEFT adapter files (train/peft.h): round trip, the on-disk names and shapes PEFT uses, and
// clear errors for adapters lowbit cannot apply or malformed directories.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>

#include "base/error.h"
#include "base/mapped_file.h"
#include "io/safetensors.h"
#include "io/safetensors_writer.h"
#include "model/loader.h"
#include "testutil.h"
#include "train/peft.h"

namespace lowbit {
namespace {

LlamaConfig stories_config() {
  static LoadedModel m = load_model(test::shared_path("models/stories260K/stories260K.bin"));
  return m.model->config();
}

LoraAdapter random_adapter(uint64_t seed) {
  LoraConfig lc;
  lc.rank = 4;
  lc.alpha = 8;
  lc.rslora = true;
  lc.targets = {"q_proj", "o_proj", "up_proj", "down_proj"};
  LoraAdapter ad = LoraAdapter::init(stories_config(), lc, seed);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd;
  for (LoraParam& p : ad.params())
    for (float& v : p.b) v = nd(rng);
  return ad;
}

TEST(Peft, RoundTripKeepsEveryMatrixAndTheConfig) {
  const LoraAdapter ad = random_adapter(1);
  const std::string dir = test::temp_dir() + "/adapter";
  save_peft_adapter(ad, stories_config(), dir, "stories260K");
  const LoraAdapter back = load_peft_adapter(dir, stories_config());
  EXPECT_EQ(back.config().rank, 4);
  EXPECT_EQ(back.config().alpha, 8);
  EXPECT_TRUE(back.config().rslora);
  EXPECT_EQ(back.config().targets, ad.config().targets);
  ASSERT_EQ(back.params().size(), ad.params().size());
  for (size_t i = 0; i < ad.params().size(); ++i) {
    EXPECT_EQ(back.params()[i].module, ad.params()[i].module);
    EXPECT_EQ(back.params()[i].a, ad.params()[i].a);
    EXPECT_EQ(back.params()[i].b, ad.params()[i].b);
  }
  // PEFT's names and [r, in] / [out, r] shapes, and only those tensors.
  const SafetensorsFile f(dir + "/adapter_model.safetensors");
  EXPECT_EQ(f.entries().size(), 2 * ad.params().size());
  const auto& a = f.tensor("base_model.model.model.layers.3.self_attn.o_proj.lora_A.weight");
  const auto& b = f.tensor("base_model.model.model.layers.0.mlp.down_proj.lora_B.weight");
  const LlamaConfig c = stories_config();
  EXPECT_EQ(a.shape, (std::vector<int64_t>{4, c.n_heads * c.head_dim}));
  EXPECT_EQ(b.shape, (std::vector<int64_t>{c.dim, 4}));
  const auto cfg = nlohmann::json::parse(read_text_file(dir + "/adapter_config.json"));
  EXPECT_EQ(cfg["peft_type"], "LORA");
  EXPECT_EQ(cfg["r"], 4);
  EXPECT_EQ(cfg["task_type"], "CAUSAL_LM");
}

// Writes a one-module adapter directory with a config edited by `edit` and tensors from `tensors`.
std::string adapter_dir(const std::string& name, const std::function<void(nlohmann::json&)>& edit,
                        const std::vector<std::pair<std::string, std::vector<int64_t>>>& tensors) {
  const std::string dir = test::temp_dir() + "/" + name;
  std::filesystem::create_directories(dir);
  nlohmann::json cfg = {{"peft_type", "LORA"}, {"r", 2}, {"lora_alpha", 4}, {"target_modules", {"q_proj"}}, {"bias", "none"}};
  edit(cfg);
  test::write_file(dir + "/adapter_config.json", cfg.dump());
  SafetensorsWriter w;
  for (const auto& [tname, shape] : tensors) {
    std::vector<float> zeros(static_cast<size_t>(shape[0] * shape[1]), 0.0f);
    w.add(tname, "F32", shape, zeros.data(), zeros.size() * sizeof(float));
  }
  w.write(dir + "/adapter_model.safetensors");
  return dir;
}

std::string load_error(const std::string& dir) {
  try {
    load_peft_adapter(dir, stories_config());
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(Peft, RefusesWhatItCannotApplyWithOneLine) {
  const int64_t D = stories_config().dim;
  const std::string qa = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight";
  const std::string qb = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight";
  const std::vector<std::pair<std::string, std::vector<int64_t>>> good = {{qa, {2, D}}, {qb, {D, 2}}};
  auto none = [](nlohmann::json&) {};
  EXPECT_EQ(load_error(adapter_dir("ok", none, good)), "no error");
  EXPECT_NE(load_error(adapter_dir("dora", [](auto& j) { j["use_dora"] = true; }, good)).find("DoRA"), std::string::npos);
  EXPECT_NE(load_error(adapter_dir("bias", [](auto& j) { j["bias"] = "all"; }, good)).find("bias"), std::string::npos);
  EXPECT_NE(load_error(adapter_dir("ia3", [](auto& j) { j["peft_type"] = "IA3"; }, good)).find("peft_type"), std::string::npos);
  EXPECT_NE(load_error(adapter_dir("pat", [](auto& j) { j["rank_pattern"] = {{"q_proj", 8}}; }, good)).find("rank_pattern"),
            std::string::npos);
  EXPECT_NE(load_error(adapter_dir("nor", [](auto& j) { j.erase("r"); }, good)).find("\"r\""), std::string::npos);
  EXPECT_NE(load_error(adapter_dir("shape", none, {{qa, {2, D + 1}}, {qb, {D, 2}}})).find("wrong shape"), std::string::npos);
  EXPECT_NE(load_error(adapter_dir("half", none, {{qa, {2, D}}})).find("without lora_B"), std::string::npos);
  EXPECT_NE(load_error(adapter_dir("name", none, {{qa, {2, D}}, {"lm_head.lora_B.weight", {D, 2}}})).find("unexpected tensor"),
            std::string::npos);
  EXPECT_NE(load_error(adapter_dir("layer", none,
                                   {{"base_model.model.model.layers.99.self_attn.q_proj.lora_A.weight", {2, D}}}))
                .find("past the model"),
            std::string::npos);
  EXPECT_NE(load_error(test::temp_dir() + "/nowhere").find("no adapter_config.json"), std::string::npos);
  const std::string broken = adapter_dir("json", none, good);
  test::write_file(broken + "/adapter_config.json", "{\"r\": 2,");
  EXPECT_NE(load_error(broken).find("not valid JSON"), std::string::npos);
  const std::string truncated = adapter_dir("trunc", none, good);
  test::write_file(truncated + "/adapter_model.safetensors", std::string("\x10\x00\x00\x00\x00\x00\x00\x00{", 9));
  EXPECT_THROW(load_peft_adapter(truncated, stories_config()), Error);
}

}  // namespace
}  // namespace lowbit
