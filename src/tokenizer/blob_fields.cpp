#include "tokenizer/blob_fields.h"

#include "base/error.h"

namespace lowbit {

std::string join_blob_fields(std::initializer_list<int32_t> fields, std::string_view body) {
  std::string out;
  out.reserve(4 * fields.size() + body.size());
  for (const int32_t f : fields) {
    const auto u = static_cast<uint32_t>(f);
    for (int shift = 0; shift < 32; shift += 8) out += static_cast<char>((u >> shift) & 0xFF);
  }
  out += body;
  return out;
}

std::string_view split_blob_fields(std::string_view bytes, std::span<int32_t> fields,
                                   std::string_view origin) {
  if (bytes.size() < 4 * fields.size()) {
    throw Error("tokenizer", std::string(origin) + ": blob too short for its " +
                                 std::to_string(fields.size()) + " header field(s)");
  }
  for (size_t i = 0; i < fields.size(); ++i) {
    uint32_t u = 0;
    for (int b = 0; b < 4; ++b)
      u |= uint32_t{static_cast<unsigned char>(bytes[4 * i + b])} << (8 * b);
    fields[i] = static_cast<int32_t>(u);
  }
  return bytes.substr(4 * fields.size());
}

}  // namespace lowbit
