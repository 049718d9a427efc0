#include "tokenizer/sentencepiece_proto.h"

#include <cstring>

#include "base/error.h"

namespace lowbit {

namespace {

constexpr uint32_t kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5;

// Sequential reader over one message; every read is bounds-checked and throws on bad data.
class ProtoReader {
 public:
  ProtoReader(std::string_view data, std::string_view origin) : data_(data), origin_(origin) {}
  bool done() const { return pos_ >= data_.size(); }

  void next_key(uint32_t& field, uint32_t& wire) {
    const uint64_t key = varint();
    field = static_cast<uint32_t>(key >> 3);
    wire = static_cast<uint32_t>(key & 7);
    if (field == 0 || key >> 32) fail("invalid field key");
  }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= data_.size()) fail("truncated varint");
      const auto b = static_cast<unsigned char>(data_[pos_++]);
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    fail("varint longer than 10 bytes");
  }
  std::string_view bytes() {
    const uint64_t n = varint();
    if (n > data_.size() - pos_) fail("length-delimited field runs past the end");
    const std::string_view out = data_.substr(pos_, n);
    pos_ += n;
    return out;
  }
  float fixed32_float() {
    if (data_.size() - pos_ < 4) fail("truncated fixed32");
    float f;
    std::memcpy(&f, data_.data() + pos_, 4);  // little-endian on every supported target
    pos_ += 4;
    return f;
  }
  void skip(uint32_t wire) {
    switch (wire) {
      case kVarint:
        varint();
        break;
      case kFixed64:
        advance(8);
        break;
      case kLengthDelimited:
        bytes();
        break;
      case kFixed32:
        advance(4);
        break;
      default:
        fail("unsupported wire type " + std::to_string(wire));
    }
  }
  void expect(uint32_t wire, uint32_t want, const char* what) {
    if (wire != want) fail(std::string("field ") + what + " has the wrong wire type");
  }
  [[noreturn]] void fail(const std::string& what) const {
    throw Error("tokenizer", std::string(origin_) + ": not a valid SentencePiece model (" + what +
                                 " at byte " + std::to_string(pos_) + ")");
  }

 private:
  void advance(size_t n) {
    if (data_.size() - pos_ < n) fail("truncated fixed-size field");
    pos_ += n;
  }
  std::string_view data_;
  std::string_view origin_;
  size_t pos_ = 0;
};

void parse_piece(std::string_view msg, std::string_view origin, SpmModelProto& m) {
  ProtoReader r(msg, origin);
  std::string piece;
  float score = 0;
  int32_t type = 1;
  while (!r.done()) {
    uint32_t field, wire;
    r.next_key(field, wire);
    if (field == 1) {
      r.expect(wire, kLengthDelimited, "piece");
      piece = std::string(r.bytes());
    } else if (field == 2) {
      r.expect(wire, kFixed32, "score");
      score = r.fixed32_float();
    } else if (field == 3) {
      r.expect(wire, kVarint, "type");
      type = static_cast<int32_t>(r.varint());
    } else {
      r.skip(wire);
    }
  }
  // libsentencepiece's trie takes NUL-terminated keys and throws its own exception on one.
  if (piece.find('\0') != std::string::npos)
    r.fail("piece " + std::to_string(m.pieces.size()) + " contains a NUL byte");
  m.pieces.push_back(std::move(piece));
  m.scores.push_back(score);
  m.types.push_back(type);
}

void parse_trainer_spec(std::string_view msg, std::string_view origin, SpmModelProto& m) {
  ProtoReader r(msg, origin);
  while (!r.done()) {
    uint32_t field, wire;
    r.next_key(field, wire);
    if (field == 3 && wire == kVarint) {
      m.model_type = static_cast<int32_t>(r.varint());
    } else if (field == 35 && wire == kVarint) {
      m.byte_fallback = r.varint() != 0;
    } else if (field == 44 && wire == kLengthDelimited) {
      m.unk_surface = std::string(r.bytes());
    } else {
      r.skip(wire);
    }
  }
}

void parse_normalizer_spec(std::string_view msg, std::string_view origin, SpmModelProto& m) {
  ProtoReader r(msg, origin);
  while (!r.done()) {
    uint32_t field, wire;
    r.next_key(field, wire);
    if (field == 1 && wire == kLengthDelimited) {
      m.normalizer_name = std::string(r.bytes());
    } else if (field == 3 && wire == kVarint) {
      m.add_dummy_prefix = r.varint() != 0;
    } else if (field == 4 && wire == kVarint) {
      m.remove_extra_whitespaces = r.varint() != 0;
    } else {
      r.skip(wire);
    }
  }
}

}  // namespace

SpmModelProto parse_sentencepiece_model(std::string_view bytes, std::string_view origin) {
  SpmModelProto m;
  ProtoReader r(bytes, origin);
  while (!r.done()) {
    uint32_t field, wire;
    r.next_key(field, wire);
    if (field >= 1 && field <= 3) r.expect(wire, kLengthDelimited, "ModelProto submessage");
    if (field == 1) {
      parse_piece(r.bytes(), origin, m);
    } else if (field == 2) {
      m.has_trainer_spec = true;
      parse_trainer_spec(r.bytes(), origin, m);
    } else if (field == 3) {
      m.has_normalizer_spec = true;
      parse_normalizer_spec(r.bytes(), origin, m);
    } else {
      r.skip(wire);
    }
  }
  if (m.pieces.empty()) r.fail("no pieces");
  if (!m.has_trainer_spec || !m.has_normalizer_spec)
    r.fail("missing trainer/normalizer spec; truncated file?");
  return m;
}

bool looks_like_sentencepiece_model(std::string_view bytes) {
  try {
    ProtoReader r(bytes, "");
    uint32_t field, wire;
    r.next_key(field, wire);
    if (field != 1 || wire != kLengthDelimited) return false;
    ProtoReader piece(r.bytes(), "");
    piece.next_key(field, wire);
    return field == 1 && wire == kLengthDelimited && !piece.bytes().empty();
  } catch (const Error&) {
    return false;
  }
}

}  // namespace lowbit
