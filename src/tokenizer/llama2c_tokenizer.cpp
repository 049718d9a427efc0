#include "tokenizer/llama2c_tokenizer.h"

#include <algorithm>
#include <cstring>

#include "base/error.h"
#include "base/mapped_file.h"
#include "tokenizer/blob_fields.h"
#include "tokenizer/spm_bpe_tokenizer.h"

namespace lowbit {

namespace {

class BinReader {
 public:
  BinReader(std::string_view bytes, std::string_view origin)
      : data_(reinterpret_cast<const uint8_t*>(bytes.data())),
        size_(bytes.size()),
        origin_(origin) {}
  template <class T>
  T read(const char* what) {
    T v;
    if (size_ - pos_ < sizeof(T)) fail(std::string("truncated file: cannot read ") + what);
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string read_bytes(size_t n, const char* what) {
    if (size_ - pos_ < n) fail(std::string("truncated file: ") + what + " runs past the end");
    std::string s(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return s;
  }
  size_t remaining() const { return size_ - pos_; }
  size_t pos() const { return pos_; }
  void set_token(int32_t id) { token_ = id; }
  [[noreturn]] void fail(const std::string& what) const {
    const std::string where = token_ >= 0 ? "token " + std::to_string(token_) + ": " : "";
    throw Error("tokenizer", std::string(origin_) + ": " + where + what + " (at byte " +
                                 std::to_string(pos_) + ")");
  }

 private:
  const uint8_t* data_;
  size_t size_;
  std::string_view origin_;
  size_t pos_ = 0;
  int32_t token_ = -1;
};

std::string spaces_to_meta(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == ' ')
      out += "\xE2\x96\x81";
    else
      out += c;
  }
  return out;
}

int32_t infer_type(int32_t id, const std::string& piece) {
  if (id == 0) return kTokenUnknown;
  if (id == 1 || id == 2) return kTokenControl;
  return parse_byte_piece(piece) >= 0 ? kTokenByte : kTokenNormal;
}

}  // namespace

SpmVocab parse_llama2c_vocab(std::string_view bytes, int32_t vocab_size, std::string_view origin) {
  const std::string where(origin);
  if (vocab_size <= 0) {
    throw Error("tokenizer",
                where + ": a llama2.c tokenizer.bin needs the vocab size from the model (got " +
                    std::to_string(vocab_size) + ")");
  }
  if (vocab_size < 3) {
    throw Error("tokenizer", where + ": vocab size " + std::to_string(vocab_size) +
                                 " is too small for unk/bos/eos");
  }
  BinReader r(bytes, origin);
  const auto max_len = r.read<int32_t>("max_token_length");
  if (max_len < 0) r.fail("negative max_token_length " + std::to_string(max_len));
  SpmVocab v;
  // Never trust vocab_size for the reservation: each record takes at least 8 bytes.
  const size_t cap = std::min<size_t>(static_cast<size_t>(vocab_size), r.remaining() / 8);
  v.pieces.reserve(cap);
  v.scores.reserve(cap);
  v.types.reserve(cap);
  for (int32_t id = 0; id < vocab_size; ++id) {
    r.set_token(id);
    const auto score = r.read<float>("score");
    const auto len = r.read<int32_t>("length");
    if (len < 0) r.fail("negative length " + std::to_string(len));
    std::string piece = spaces_to_meta(r.read_bytes(static_cast<size_t>(len), "piece"));
    v.types.push_back(infer_type(id, piece));
    v.pieces.push_back(std::move(piece));
    v.scores.push_back(score);
  }
  r.set_token(-1);
  if (r.remaining() != 0) {
    r.fail(std::to_string(r.remaining()) + " bytes left after " + std::to_string(vocab_size) +
           " tokens: the vocab size does not match this file");
  }
  return v;
}

SpmVocab read_llama2c_vocab(const std::string& path, int32_t vocab_size) {
  return parse_llama2c_vocab(read_text_file(path), vocab_size, path);
}

std::unique_ptr<Tokenizer> load_llama2c_tokenizer(const std::string& path, int32_t vocab_size) {
  return llama2c_tokenizer_from_bytes(read_text_file(path), vocab_size, path);
}

std::unique_ptr<Tokenizer> llama2c_tokenizer_from_bytes(std::string_view bytes, int32_t vocab_size,
                                                        std::string_view origin) {
  SpmVocab v = parse_llama2c_vocab(bytes, vocab_size, origin);
  return make_spm_bpe_tokenizer(std::move(v), "llama2c", origin,
                                {"llama2c", join_blob_fields({vocab_size}, bytes)});
}

}  // namespace lowbit
