#include "tokenizer/spm_vocab.h"

#include <cmath>
#include <limits>
#include <string>

#include "base/error.h"

namespace lowbit {

namespace {

[[noreturn]] void fail(std::string_view origin, const std::string& what) {
  throw Error("tokenizer", std::string(origin) + ": " + what);
}

void check_special(std::string_view origin, const char* name, int32_t id, size_t n) {
  if (id < -1 || (id >= 0 && static_cast<size_t>(id) >= n)) {
    fail(origin, std::string(name) + " id " + std::to_string(id) + " out of range (vocab size " +
                     std::to_string(n) + ")");
  }
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

void validate_spm_vocab(const SpmVocab& v, std::string_view origin) {
  const size_t n = v.pieces.size();
  if (n == 0) fail(origin, "empty vocabulary");
  if (n > static_cast<size_t>(std::numeric_limits<int32_t>::max()))
    fail(origin, "vocabulary too large");
  if (v.scores.size() != n || v.types.size() != n) {
    fail(origin, "vocabulary arrays disagree: " + std::to_string(n) + " pieces, " +
                     std::to_string(v.scores.size()) + " scores, " +
                     std::to_string(v.types.size()) + " types");
  }
  for (size_t i = 0; i < n; ++i) {
    const int32_t t = v.types[i];
    if (t < kTokenUndefined || t > kTokenByte) {
      fail(origin, "token " + std::to_string(i) + " has invalid type " + std::to_string(t));
    }
    if (std::isnan(v.scores[i])) fail(origin, "token " + std::to_string(i) + " has a NaN score");
    if (v.pieces[i].empty() && t != kTokenControl && t != kTokenUnused) {
      fail(origin, "token " + std::to_string(i) + " has an empty piece");
    }
  }
  check_special(origin, "bos", v.bos_id, n);
  check_special(origin, "eos", v.eos_id, n);
  check_special(origin, "unk", v.unk_id, n);
}

int parse_byte_piece(std::string_view p) {
  if (p.size() != 6 || p[0] != '<' || p[1] != '0' || p[2] != 'x' || p[5] != '>') return -1;
  const int hi = hex_digit(p[3]), lo = hex_digit(p[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

}  // namespace lowbit
