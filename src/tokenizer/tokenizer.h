// The tokenizer interface every vocabulary kind implements (SentencePiece model, llama2.c
// tokenizer.bin, GGUF-embedded llama vocab, HF tokenizer.json byte-level BPE, tiktoken BPE; a
// GGUF-embedded "gpt2" vocab becomes an HF byte-level BPE tokenizer, tokenizer/gguf_bpe.h).
// Loaders: tokenizer/load.h (load_tokenizer_file picks the kind from the file).
//
// Contract:
//  - encode(text, add_bos) returns ids; with add_bos the BOS id comes first (if the vocab has one).
//    Text is treated as plain text: special-token strings like "<s>" are NOT parsed as specials.
//    EXCEPTION, kind "hf-bpe": like HF tokenizers (and the SmolLM2 goldens), the tokenizer.json's
//    added tokens, special ones included, ARE matched in the text ("<|im_start|>" -> its id).
//  - token_bytes(id) is the raw UTF-8 (possibly partial) byte string the token stands for in
//    running text: SentencePiece "▁" becomes ' ', "<0x0A>" becomes "\n", byte-level BPE maps its
//    printable alphabet back to bytes. Control tokens (BOS/EOS/...) give "", the SentencePiece
//    unknown token gives " ⁇ " (as sentencepiece's DecodeIds), ids outside [0, vocab_size()) and
//    ids with no token give "". Kind "hf-bpe" gives added tokens (specials too) their content,
//    so that decode() inverts encode() there (HF's decode with skip_special_tokens=false).
//  - decode(ids) concatenates token_bytes and applies the vocabulary's cosmetic rule (SentencePiece
//    drops the single leading space its dummy prefix added). decode(encode(s)) == s for any
//    valid UTF-8 s that the tokenizer does not normalise (SentencePiece-style kinds read a literal
//    "▁" as a space; "hf-bpe" drops bytes its vocab lacks, as HF does, e.g. 0x04 for SmolLM2).
//  - encode/decode/token_bytes are const and thread-safe.
//  - to_blob() returns a TokenizerBlob from which tokenizer_from_blob (tokenizer/load.h) rebuilds
//    a tokenizer with the same kind, ids, token_bytes, bos/eos and vocab_size, without touching
//    the filesystem (a .lowbit model file carries its tokenizer this way).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lowbit {

// A tokenizer as bytes, for storing inside a model file. The kind names and byte layouts are
// persisted: never change their meaning.
//  - "sentencepiece": the tokenizer.model file (ModelProto), byte for byte;
//  - "llama2c":       int32 vocab_size (little-endian), then the tokenizer.bin file;
//  - "hf-bpe":        int32 bos_id, int32 eos_id (little-endian, -1 = none; the ids resolved at
//                     load time from config.json & co. beside the file), then tokenizer.json;
//  - "tiktoken":      the tiktoken rank file, byte for byte;
//  - "spm-vocab":     an SpmVocab plus the tokenizer kind as JSON (see spm_vocab.h), for SPM-BPE
//                     tokenizers built from a vocabulary in memory (e.g. a GGUF's).
struct TokenizerBlob {
  std::string kind;
  std::string bytes;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  virtual std::vector<int32_t> encode(std::string_view text, bool add_bos) const = 0;
  virtual std::string token_bytes(int32_t id) const = 0;
  virtual std::string decode(std::span<const int32_t> ids) const;

  virtual int32_t vocab_size() const = 0;
  virtual int32_t bos_id() const = 0;  // -1 if none
  virtual int32_t eos_id() const = 0;  // -1 if none
  // "sentencepiece", "llama2c", "gguf-llama", "hf-bpe", "tiktoken"
  virtual std::string kind() const = 0;
  // True if decode() drops one leading space (SentencePiece dummy prefix).
  virtual bool strips_leading_space() const { return false; }
  // Everything needed to rebuild this tokenizer (see TokenizerBlob).
  virtual TokenizerBlob to_blob() const = 0;
};

// Turns a stream of ids into text, emitting only complete UTF-8 characters, so byte-fallback
// and byte-level tokens that split a character are printed once the character is whole.
// By default the concatenated output equals decode(ids) (the dummy-prefix space of the first
// token is dropped); with continues_text = true the stream continues earlier text (a prompt),
// so that first space is kept.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok, bool continues_text = false)
      : tok_(tok), first_(!continues_text) {}
  std::string push(int32_t id);  // text that became complete with this token
  std::string flush();           // whatever is left (possibly invalid UTF-8 bytes)

 private:
  const Tokenizer& tok_;
  std::string pending_;
  bool first_ = true;
};

// Length of the longest prefix of s that ends on a UTF-8 character boundary, treating an
// incomplete trailing sequence (at most 3 bytes) as not yet complete.
size_t utf8_complete_prefix(std::string_view s);

}  // namespace lowbit
