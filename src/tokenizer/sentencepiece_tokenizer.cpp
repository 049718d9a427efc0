#include "tokenizer/sentencepiece_tokenizer.h"

#include <sentencepiece_processor.h>

#include "base/error.h"
#include "base/mapped_file.h"
#include "tokenizer/sentencepiece_proto.h"

namespace lowbit {

namespace {

struct LoadedModel {
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp;
  SpmModelProto proto;
  std::string bytes;  // the serialized ModelProto, for to_blob()
};

LoadedModel load_model(std::string bytes, const std::string& origin) {
  LoadedModel m;
  m.proto = parse_sentencepiece_model(bytes, origin);
  m.sp = std::make_unique<sentencepiece::SentencePieceProcessor>();
  const auto status = m.sp->LoadFromSerializedProto(bytes);
  if (!status.ok()) {
    throw Error("tokenizer", origin + ": libsentencepiece cannot load it: " + status.ToString());
  }
  if (m.sp->GetPieceSize() != static_cast<int>(m.proto.pieces.size())) {
    throw Error("tokenizer", origin + ": piece count disagrees with libsentencepiece");
  }
  m.bytes = std::move(bytes);
  return m;
}

std::string piece_text(const sentencepiece::SentencePieceProcessor& sp, int id,
                       const std::string& unk_surface) {
  if (sp.IsControl(id)) return "";
  if (sp.IsUnknown(id)) return unk_surface;
  const std::string& p = sp.IdToPiece(id);
  if (sp.IsByte(id)) {
    const int b = parse_byte_piece(p);
    return b >= 0 ? std::string(1, static_cast<char>(b)) : std::string();
  }
  std::string out;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p.compare(i, 3, "\xE2\x96\x81") == 0) {
      out += ' ';
      i += 2;
    } else {
      out += p[i];
    }
  }
  return out;
}

class SentencePieceTokenizer final : public Tokenizer {
 public:
  SentencePieceTokenizer(LoadedModel m, std::string origin)
      : m_(std::move(m)), origin_(std::move(origin)) {
    const int n = m_.sp->GetPieceSize();
    text_.reserve(n);
    for (int id = 0; id < n; ++id) text_.push_back(piece_text(*m_.sp, id, m_.proto.unk_surface));
  }

  std::vector<int32_t> encode(std::string_view text, bool add_bos) const override {
    std::vector<int32_t> out;
    if (add_bos && bos_id() >= 0) out.push_back(bos_id());
    std::vector<int> ids;
    const auto status = m_.sp->Encode(text, &ids);
    if (!status.ok()) throw Error("tokenizer", origin_ + ": encoding failed: " + status.ToString());
    out.insert(out.end(), ids.begin(), ids.end());
    return out;
  }
  std::string token_bytes(int32_t id) const override {
    return id >= 0 && id < vocab_size() ? text_[id] : std::string();
  }
  int32_t vocab_size() const override { return static_cast<int32_t>(text_.size()); }
  int32_t bos_id() const override { return m_.sp->bos_id(); }
  int32_t eos_id() const override { return m_.sp->eos_id(); }
  std::string kind() const override { return "sentencepiece"; }
  bool strips_leading_space() const override { return m_.proto.add_dummy_prefix; }
  TokenizerBlob to_blob() const override { return {"sentencepiece", m_.bytes}; }

 private:
  LoadedModel m_;
  std::string origin_;
  std::vector<std::string> text_;
};

int32_t piece_type(const sentencepiece::SentencePieceProcessor& sp, int id, int32_t proto_type) {
  if (sp.IsControl(id)) return kTokenControl;
  if (sp.IsUnknown(id)) return kTokenUnknown;
  if (sp.IsUnused(id)) return kTokenUnused;
  if (sp.IsByte(id)) return kTokenByte;
  return proto_type == kTokenUserDefined ? kTokenUserDefined : kTokenNormal;
}

}  // namespace

std::unique_ptr<Tokenizer> load_sentencepiece_tokenizer(const std::string& path) {
  return sentencepiece_tokenizer_from_bytes(read_text_file(path), path);
}

std::unique_ptr<Tokenizer> sentencepiece_tokenizer_from_bytes(std::string bytes,
                                                              std::string_view origin) {
  std::string where(origin);
  LoadedModel m = load_model(std::move(bytes), where);
  return std::make_unique<SentencePieceTokenizer>(std::move(m), std::move(where));
}

SpmVocab load_sentencepiece_vocab(const std::string& path) {
  return sentencepiece_vocab_from_bytes(read_text_file(path), path);
}

SpmVocab sentencepiece_vocab_from_bytes(std::string bytes, std::string_view origin) {
  const std::string where(origin);
  const LoadedModel m = load_model(std::move(bytes), where);
  const sentencepiece::SentencePieceProcessor& sp = *m.sp;
  SpmVocab v;
  for (int id = 0; id < sp.GetPieceSize(); ++id) {
    v.pieces.push_back(sp.IdToPiece(id));
    v.scores.push_back(sp.GetScore(id));
    v.types.push_back(piece_type(sp, id, m.proto.types[id]));
  }
  v.bos_id = sp.bos_id();
  v.eos_id = sp.eos_id();
  v.unk_id = sp.unk_id();
  v.add_dummy_prefix = m.proto.add_dummy_prefix;
  validate_spm_vocab(v, where);
  return v;
}

}  // namespace lowbit
