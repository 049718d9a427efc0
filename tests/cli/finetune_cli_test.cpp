// `lowbit finetune`, `--lora` and `quantize --tune kd` end to end through the binary: a QLoRA
// run on a quantized stories260K writes a PEFT adapter, perplexity with --lora drops on the
// trained text; tuning the scales of a 2-bit file keeps its size and lowers its KL; bad flags or
// data give one-line errors without output files.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/mapped_file.h"
#include "testutil.h"

namespace lowbit {
namespace {

using test::run_command;

std::string q(const std::string& s) { return "'" + s + "'"; }

double ppl_of(const std::string& args) {
  auto r = run_command(test::lowbit_bin() + " perplexity --json " + args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return nlohmann::json::parse(r.out)["ppl"].get<double>();
}

TEST(CliFinetune, QloraAdapterLowersPerplexityThroughLora) {
  const std::string dir = test::temp_dir();
  const std::string text = dir + "/train.txt", model = dir + "/nf4.lowbit", out = dir + "/adapter";
  test::write_file(text, read_text_file(test::shared_path("data/tinyshakespeare/input.txt")).substr(0, 40000));
  auto qz = run_command(test::lowbit_bin() + " quantize -m " + q(test::shared_path("models/stories260K/stories260K.bin")) +
                        " --recipe rtn:nf4:g64:dq -o " + q(model));
  ASSERT_EQ(qz.exit_code, 0) << qz.err;
  auto r = run_command(test::lowbit_bin() + " finetune -m " + q(model) + " -d " + q(text) + " -o " + q(out) +
                       " -r 8 --lora-alpha 16 --lr 2e-3 -c 64 -b 4 --steps 30 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["base_format"], "nf4:g64:dq");
  EXPECT_TRUE(j["finished"].get<bool>());
  EXPECT_LT(j["heldout_loss_after"].get<double>(), j["heldout_loss_before"].get<double>() - 0.5);
  EXPECT_NE(r.err.find("step 30/30"), std::string::npos) << r.err;
  for (const char* f : {"adapter_config.json", "adapter_model.safetensors", "checkpoint.safetensors", "train_log.csv"})
    EXPECT_TRUE(std::filesystem::exists(out + "/" + f)) << f;
  const std::string args = "-m " + q(model) + " -f " + q(text) + " -c 64 --max-tokens 4096";
  const double base = ppl_of(args), adapted = ppl_of(args + " --lora " + q(out));
  EXPECT_LT(adapted, 0.6 * base) << base << " -> " << adapted;
  EXPECT_NEAR(ppl_of(args + " --lora " + q(out) + " --lora-scale 0"), base, 1e-9 * base);
  auto gen = run_command(test::lowbit_bin() + " generate -m " + q(model) + " --lora " + q(out) + " -p 'ROMEO:' -n 8");
  EXPECT_EQ(gen.exit_code, 0) << gen.err;
}

// An adapter trained on a GGUF base (q/k rows in interleaved RoPE order) is saved in HF's order:
// applied to the HF model it changes perplexity exactly as on the GGUF it was trained on.
TEST(CliFinetune, AdapterFromGgufBaseAppliesToTheHfModel) {
  const std::string dir = test::temp_dir();
  const std::string hf = test::shared_path("models/ref-s"), gguf = dir + "/ref-s.gguf", out = dir + "/adapter";
  const std::string text = dir + "/train.txt";
  test::write_file(text, read_text_file(test::shared_path("data/tinyshakespeare/input.txt")).substr(0, 20000));
  auto ex = run_command(test::lowbit_bin() + " export -m " + q(hf) + " --type F32 -o " + q(gguf));
  ASSERT_EQ(ex.exit_code, 0) << ex.err;
  auto r = run_command(test::lowbit_bin() + " finetune -m " + q(gguf) + " -d " + q(text) + " -o " + q(out) +
                       " -r 4 --targets q_proj,k_proj,v_proj --lr 5e-3 -c 32 -b 4 --steps 10 --holdout 0");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string args = " -f " + q(text) + " -c 32 --max-tokens 1024 --lora " + q(out);
  const double on_gguf = ppl_of("-m " + q(gguf) + args), on_hf = ppl_of("-m " + q(hf) + args);
  const double base = ppl_of("-m " + q(hf) + " -f " + q(text) + " -c 32 --max-tokens 1024");
  EXPECT_LT(on_hf, 0.97 * base);
  EXPECT_NEAR(on_hf, on_gguf, 1e-4 * on_gguf);
  // As a llama.cpp GGUF adapter: the same file whichever base layout it is converted for.
  auto g1 = run_command(test::lowbit_bin() + " export -m " + q(hf) + " --lora " + q(out) + " --format gguf-lora -o " +
                        q(dir + "/a1.gguf"));
  auto g2 = run_command(test::lowbit_bin() + " export -m " + q(gguf) + " --lora " + q(out) + " --format gguf-lora -o " +
                        q(dir + "/a2.gguf"));
  ASSERT_EQ(g1.exit_code, 0) << g1.err;
  ASSERT_EQ(g2.exit_code, 0) << g2.err;
  EXPECT_EQ(test::read_file(dir + "/a1.gguf"), test::read_file(dir + "/a2.gguf"));
  auto g3 = run_command(test::lowbit_bin() + " export -m " + q(hf) + " --format gguf-lora -o " + q(dir + "/a3.gguf"));
  EXPECT_NE(g3.err.find("needs --lora"), std::string::npos) << g3.err;
  // Merged into the float weights: the same model without the adapter path.
  auto mg = run_command(test::lowbit_bin() + " merge -m " + q(hf) + " --lora " + q(out) + " -r f32 -o " + q(dir + "/m.lowbit"));
  ASSERT_EQ(mg.exit_code, 0) << mg.err;
  EXPECT_NEAR(ppl_of("-m " + q(dir + "/m.lowbit") + " -f " + q(text) + " -c 32 --max-tokens 1024"), on_hf, 1e-4 * on_hf);
  // Merged, then quantized; a quantized file cannot take a merge.
  auto mq = run_command(test::lowbit_bin() + " merge -m " + q(hf) + " --lora " + q(out) + " -r rtn:int8:g32 -o " +
                        q(dir + "/mq.lowbit"));
  ASSERT_EQ(mq.exit_code, 0) << mq.err;
  EXPECT_NEAR(ppl_of("-m " + q(dir + "/mq.lowbit") + " -f " + q(text) + " -c 32 --max-tokens 1024"), on_hf, 2e-3 * on_hf);
  auto bad = run_command(test::lowbit_bin() + " merge -m " + q(dir + "/mq.lowbit") + " --lora " + q(out) + " -o " +
                         q(dir + "/m2.lowbit"));
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("merge into the float model"), std::string::npos) << bad.err;
  EXPECT_FALSE(std::filesystem::exists(dir + "/m2.lowbit"));
}

TEST(CliFinetune, BadInputGivesOneLineErrors) {
  const std::string dir = test::temp_dir();
  const std::string model = q(test::shared_path("models/stories260K/stories260K.bin"));
  const std::string text = dir + "/t.txt";
  test::write_file(text, "Once upon a time there was a cat. She liked milk very much and played all day.");
  auto expect_error = [&](const std::string& args, const std::string& needle) {
    auto r = run_command(test::lowbit_bin() + " " + args);
    EXPECT_NE(r.exit_code, 0) << args;
    EXPECT_NE(r.err.find(needle), std::string::npos) << args << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  };
  const std::string base = "finetune -m " + model + " -d " + q(text) + " -c 8 --steps 2 -o " + q(dir + "/o");
  expect_error(base + " --lr -1", "learning rate");
  expect_error(base + " --targets q_proj,lm_head", "unknown target module 'lm_head'");
  expect_error(base + " --schedule warm", "unknown learning-rate schedule");
  expect_error(base + " --lora-dropout 1", "dropout");
  expect_error(base + " --holdout 0.99", "--holdout");
  expect_error(base + " --resume", "no checkpoint");
  expect_error("finetune -m " + model + " -d " + q(dir + "/missing.txt") + " -o " + q(dir + "/o2"), "missing.txt");
  test::write_file(dir + "/bad.jsonl", "{\"text\": \"fine\"}\n{oops\n");
  expect_error("finetune -m " + model + " -d " + q(dir + "/bad.jsonl") + " -o " + q(dir + "/o3"), "bad.jsonl:2");
  EXPECT_FALSE(std::filesystem::exists(dir + "/o/adapter_model.safetensors"));
  expect_error("perplexity -m " + model + " -f " + q(text) + " -c 8 --lora " + q(dir), "no adapter_config.json");
}

TEST(CliFinetune, QuantizeTuneKdKeepsTheSizeAndLowersKl) {
  const std::string dir = test::temp_dir();
  const std::string model = q(test::shared_path("models/stories260K/stories260K.bin"));
  const std::string calib = " --calib " + q(test::shared_path("data/calibration/tiny.utf8")) +
                            " --calib-windows 24 --calib-len 64";
  auto plain = run_command(test::lowbit_bin() + " quantize -m " + model + " -r rtn:int2:g32:asym" + calib + " -o " +
                           q(dir + "/ptq.lowbit"));
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  auto r = run_command(test::lowbit_bin() + " quantize --json -m " + model + " -r rtn:int2:g32:asym" + calib +
                       " --tune kd --tune-windows 24 --tune-block-steps 20 --tune-steps 12 --tune-holdout 4 -o " + q(dir + "/kd.lowbit"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["file_bytes"].get<int64_t>(), static_cast<int64_t>(std::filesystem::file_size(dir + "/ptq.lowbit")));
  EXPECT_TRUE(j["tune"]["improved"].get<bool>());
  EXPECT_LT(j["tune"]["kl_after"].get<double>(), j["tune"]["kl_before"].get<double>());
  for (const auto& e : std::filesystem::directory_iterator(dir))  // no intermediate left behind
    EXPECT_EQ(e.path().filename().string().find(".ptq."), std::string::npos) << e.path();
  auto gen = run_command(test::lowbit_bin() + " generate -m " + q(dir + "/kd.lowbit") + " -p 'Once' -n 8");
  EXPECT_EQ(gen.exit_code, 0) << gen.err;
  auto bad = run_command(test::lowbit_bin() + " quantize -m " + model + " -r f16 --tune kd" + calib + " -o " +
                         q(dir + "/f16.lowbit"));
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("no quantized linear layer"), std::string::npos) << bad.err;
  EXPECT_FALSE(std::filesystem::exists(dir + "/f16.lowbit"));
  auto bad2 = run_command(test::lowbit_bin() + " quantize -m " + model + " --tune dk -o " + q(dir + "/x.lowbit"));
  EXPECT_NE(bad2.exit_code, 0);
}

TEST(CliFinetune, LoftqBaseAndAdapterStartCloserThanPlainQuantization) {
  const std::string dir = test::temp_dir();
  const std::string model = q(test::shared_path("models/stories260K/stories260K.bin"));
  const std::string text = dir + "/train.txt";
  test::write_file(text, read_text_file(test::shared_path("data/tinyshakespeare/input.txt")).substr(0, 20000));
  auto lq = run_command(test::lowbit_bin() + " quantize --json -m " + model + " -r rtn:int3:g32:asym --loftq " +
                        q(dir + "/lq") + " --loftq-rank 8 --loftq-alpha 16 -o " + q(dir + "/lq.lowbit"));
  ASSERT_EQ(lq.exit_code, 0) << lq.err;
  const auto j = nlohmann::json::parse(lq.out);
  EXPECT_LT(j["loftq"]["rel_error"].get<double>(), j["loftq"]["rel_error_plain"].get<double>());
  auto plain = run_command(test::lowbit_bin() + " quantize -m " + model + " -r rtn:int3:g32:asym -o " + q(dir + "/p.lowbit"));
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  const std::string ft = " -d " + q(text) + " -c 64 --steps 2 -r 8 --lora-alpha 16 --json -o ";
  auto a = run_command(test::lowbit_bin() + " finetune -m " + q(dir + "/lq.lowbit") + " --init-adapter " + q(dir + "/lq") +
                       ft + q(dir + "/ft-lq"));
  auto b = run_command(test::lowbit_bin() + " finetune -m " + q(dir + "/p.lowbit") + ft + q(dir + "/ft-p"));
  ASSERT_EQ(a.exit_code, 0) << a.err;
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_LT(nlohmann::json::parse(a.out)["heldout_ppl_before"].get<double>(),
            nlohmann::json::parse(b.out)["heldout_ppl_before"].get<double>());
  auto mismatch = run_command(test::lowbit_bin() + " finetune -m " + q(dir + "/lq.lowbit") + " --init-adapter " +
                              q(dir + "/lq") + " -d " + q(text) + " -c 64 --steps 1 -r 4 -o " + q(dir + "/ft-x"));
  EXPECT_NE(mismatch.exit_code, 0);
  EXPECT_NE(mismatch.err.find("same --lora-r"), std::string::npos) << mismatch.err;
  auto gptq = run_command(test::lowbit_bin() + " quantize -m " + model + " -r gptq:int3:g32 --calib " +
                          q(test::shared_path("data/calibration/tiny.utf8")) + " --calib-windows 4 --calib-len 32 --loftq " +
                          q(dir + "/lq2") + " -o " + q(dir + "/g.lowbit"));
  EXPECT_NE(gptq.exit_code, 0);
  EXPECT_NE(gptq.err.find("rtn recipe"), std::string::npos) << gptq.err;
  EXPECT_FALSE(std::filesystem::exists(dir + "/g.lowbit"));
  auto both = run_command(test::lowbit_bin() + " quantize -m " + model + " -r rtn:int3:g32 --tune kd --loftq " +
                          q(dir + "/lq3") + " -o " + q(dir + "/h.lowbit"));
  EXPECT_NE(both.exit_code, 0);
  EXPECT_NE(both.err.find("cannot be combined"), std::string::npos) << both.err;
}

}  // namespace
}  // namespace lowbit
