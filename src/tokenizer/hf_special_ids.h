// Finds BOS/EOS ids for an HF tokenizer.json, in this order:
//  1. config.json beside it: bos_token_id / eos_token_id (eos may be a list; the first is used);
//  2. tokenizer_config.json beside it: bos_token / eos_token (a string or {"content": ...}),
//     looked up among added tokens and the vocab;
//  3. well-known added-token names: bos "<|begin_of_text|>", "<s>", "<bos>";
//     eos "<|end_of_text|>", "</s>", "<eos>", "<|endoftext|>".
// Each of bos/eos is resolved independently; -1 if none applies. Side files that exist but are
// malformed throw lowbit::Error naming them; ids outside the tokenizer are ignored.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>

namespace lowbit {

struct HfSpecialIds {
  int32_t bos = -1, eos = -1;
};

HfSpecialIds find_hf_special_ids(const std::string& tokenizer_json_path,
                                 const nlohmann::json& root);

}  // namespace lowbit
