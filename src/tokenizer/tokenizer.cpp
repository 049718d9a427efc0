#include "tokenizer/tokenizer.h"

namespace lowbit {

std::string Tokenizer::decode(std::span<const int32_t> ids) const {
  std::string out;
  for (int32_t id : ids) out += token_bytes(id);
  if (strips_leading_space() && !out.empty() && out[0] == ' ') out.erase(0, 1);
  return out;
}

size_t utf8_complete_prefix(std::string_view s) {
  const size_t n = s.size();
  // Walk back over at most 3 continuation bytes to the last lead byte.
  for (size_t back = 1; back <= 4 && back <= n; ++back) {
    const auto c = static_cast<unsigned char>(s[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte
    size_t len = 1;
    if ((c & 0xE0) == 0xC0) len = 2;
    else if ((c & 0xF0) == 0xE0) len = 3;
    else if ((c & 0xF8) == 0xF0) len = 4;
    return back >= len ? n : n - back;
  }
  return n;  // only continuation bytes: nothing will complete them, let them through
}

std::string StreamDecoder::push(int32_t id) {
  pending_ += tok_.token_bytes(id);
  if (first_ && !pending_.empty()) {
    if (tok_.strips_leading_space() && pending_[0] == ' ') pending_.erase(0, 1);
    first_ = false;
  }
  const size_t k = utf8_complete_prefix(pending_);
  std::string out = pending_.substr(0, k);
  pending_.erase(0, k);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out;
  out.swap(pending_);
  return out;
}

}  // namespace lowbit
