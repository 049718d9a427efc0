#include <cstdio>

#include "cli/commands.h"
#include "io/synth_model.h"

namespace lowbit::cli {

void add_synth(CLI::App& app) {
  auto o = std::make_shared<SynthOptions>();
  auto out = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("synth", "write an HF-layout model with random weights of any shape");
  cmd->add_option("-o,--out", *out, "output directory")->required();
  cmd->add_option("--hidden", o->hidden, "hidden size")->check(positive());
  cmd->add_option("--intermediate", o->intermediate, "MLP intermediate size")->check(positive());
  cmd->add_option("--layers", o->layers, "layers")->check(positive());
  cmd->add_option("--heads", o->heads, "attention heads")->check(positive());
  cmd->add_option("--kv-heads", o->kv_heads, "key/value heads")->check(positive());
  cmd->add_option("--vocab", o->vocab, "vocabulary size")->check(positive());
  cmd->add_option("--context", o->context, "max_position_embeddings")->check(positive());
  cmd->add_option("--dtype", o->dtype, "F32, F16 or BF16")->transform(CLI::IsMember({"F32", "F16", "BF16"}, CLI::ignore_case));
  cmd->add_option("-s,--seed", o->seed, "random seed");
  cmd->callback([o, out] {
    write_synthetic_model(*out, *o);
    std::printf("wrote %s (hidden %lld, intermediate %lld, %lld layers, %lld/%lld heads, vocab %lld, %s)\n",
                out->c_str(), static_cast<long long>(o->hidden), static_cast<long long>(o->intermediate),
                static_cast<long long>(o->layers), static_cast<long long>(o->heads),
                static_cast<long long>(o->kv_heads), static_cast<long long>(o->vocab), o->dtype.c_str());
  });
}

}  // namespace lowbit::cli
