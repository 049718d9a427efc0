// From chat messages to prompt tokens: which template a model uses, and how its rendering is
// tokenized.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/model_source.h"
#include "serve/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace lowbit {

struct ChatSetup {
  std::shared_ptr<const ChatTemplate> tmpl;
  std::string origin;                 // where the template came from, for the startup line
  std::string bos_token, eos_token;   // the strings the template prints for BOS/EOS
  // Ids that end a chat reply: the tokenizer's EOS, and the end-of-turn tokens the vocabulary
  // has as single special tokens (the template's eos_token, <|eot_id|>, <|im_end|>,
  // <end_of_turn>, <|end|>, <|endoftext|>, <|end_of_text|>).
  std::vector<int32_t> end_ids;
};

// A ChatML template (<|im_start|>role\ncontent<|im_end|>\n), used when the model has none, as
// llama-server does.
extern const char* const kDefaultChatTemplate;

// The chat template of a model: `override_path` (a file with the Jinja text) when non-empty, else
// tokenizer_config.json's "chat_template" beside an HF model (a string, or the entry named
// "default" of a list), else a GGUF's tokenizer.chat_template, else kDefaultChatTemplate.
// bos/eos strings come from tokenizer_config.json (a string or {"content": ...}), a GGUF's token
// list, or the tokenizer's own token text. Throws lowbit::Error("serve", ...) for an unreadable
// override file or a template that does not parse.
ChatSetup find_chat_setup(const ModelSource& src, const Tokenizer& tok, const std::string& override_path);

// Tokenizes a rendered chat prompt. Byte-level BPE (tokenizer.json) vocabularies match their
// special tokens in the text themselves; for SentencePiece-style kinds, whose encode() treats
// "<s>" as plain text, the BOS and EOS strings become their ids wherever they appear and BOS is
// prepended unless the rendering begins with it. Linear in the text length. (As in llama-server,
// a special-token string inside a message becomes that token.)
std::vector<int32_t> encode_chat_prompt(const Tokenizer& tok, const ChatSetup& s, const std::string& text);

}  // namespace lowbit
