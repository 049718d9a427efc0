// TESTS ONLY: crafts small GGUF files byte by byte, so that each malformed-input test is one
// precise mutation of a valid file. Not a general writer (no validation on purpose).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

namespace lowbit::test {

// --- little-endian encoders ---
template <class T>
std::string le(T v) {
  std::string s(sizeof(T), '\0');
  std::memcpy(s.data(), &v, sizeof(T));
  return s;
}
inline std::string gguf_str(const std::string& s) {
  return le<uint64_t>(s.size()) + s;
}

inline std::string f32_bytes(const std::vector<float>& v) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(s.data(), v.data(), s.size());
  return s;
}

// GGUF metadata value type ids.
enum : uint32_t {
  kU8 = 0,
  kI8 = 1,
  kU16 = 2,
  kI16 = 3,
  kU32 = 4,
  kI32 = 5,
  kF32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kU64 = 10,
  kI64 = 11,
  kF64 = 12,
};

// One KV pair: `payload` is the encoded value that follows the u32 type id.
struct GgufKv {
  std::string key;
  uint32_t type = kU32;
  std::string payload;
};

inline GgufKv kv_u32(const std::string& k, uint32_t v) {
  return {k, kU32, le(v)};
}
inline GgufKv kv_i32(const std::string& k, int32_t v) {
  return {k, kI32, le(v)};
}
inline GgufKv kv_u64(const std::string& k, uint64_t v) {
  return {k, kU64, le(v)};
}
inline GgufKv kv_f32(const std::string& k, float v) {
  return {k, kF32, le(v)};
}
inline GgufKv kv_bool(const std::string& k, bool v) {
  return {k, kBool, le<uint8_t>(v)};
}
inline GgufKv kv_string(const std::string& k, const std::string& v) {
  return {k, kString, gguf_str(v)};
}
inline GgufKv kv_strings(const std::string& k, const std::vector<std::string>& v) {
  std::string p = le<uint32_t>(kString) + le<uint64_t>(v.size());
  for (const auto& s : v) p += gguf_str(s);
  return {k, kArray, p};
}
inline GgufKv kv_f32s(const std::string& k, const std::vector<float>& v) {
  return {k, kArray, le<uint32_t>(kF32) + le<uint64_t>(v.size()) + f32_bytes(v)};
}
inline GgufKv kv_i32s(const std::string& k, const std::vector<int32_t>& v) {
  std::string p = le<uint32_t>(kI32) + le<uint64_t>(v.size());
  for (int32_t x : v) p += le(x);
  return {k, kArray, p};
}

struct GgufTensorSpec {
  std::string name;
  std::vector<uint64_t> ne;        // innermost first, as stored
  uint32_t type = 0;               // ggml type id
  std::string data;                // bytes written at the tensor's offset
  std::optional<uint64_t> offset;  // default: next multiple of `alignment` after the previous
};

inline GgufTensorSpec tensor_spec(std::string name, std::vector<uint64_t> ne, uint32_t type,
                                  std::string data) {
  GgufTensorSpec t;
  t.name = std::move(name);
  t.ne = std::move(ne);
  t.type = type;
  t.data = std::move(data);
  return t;
}

struct GgufBuilder {
  std::string magic = "GGUF";
  uint32_t version = 3;
  std::optional<uint64_t> tensor_count, kv_count;  // override the true counts
  std::optional<uint32_t> n_dims_override;         // written for every tensor when set
  uint64_t alignment = 32;  // padding + default offsets; add a general.alignment KV to change it
  std::vector<GgufKv> kvs;
  std::vector<GgufTensorSpec> tensors;

  // Header, KVs, tensor infos, zero padding to `alignment`, then the data blob. The blob ends
  // where the last tensor's data ends (no trailing padding), so every strict prefix of the
  // result is missing bytes that a tensor needs.
  std::string build() const {
    std::string out = magic + le(version);
    out += le<uint64_t>(tensor_count.value_or(tensors.size()));
    out += le<uint64_t>(kv_count.value_or(kvs.size()));
    for (const auto& kv : kvs) out += gguf_str(kv.key) + le(kv.type) + kv.payload;
    std::vector<uint64_t> offsets;
    uint64_t next = 0;
    for (const auto& t : tensors) {
      const uint64_t off = t.offset.value_or((next + alignment - 1) / alignment * alignment);
      offsets.push_back(off);
      next = off + t.data.size();
      out += gguf_str(t.name) + le<uint32_t>(n_dims_override.value_or(t.ne.size()));
      for (uint64_t d : t.ne) out += le(d);
      out += le(t.type) + le(off);
    }
    out.resize((out.size() + alignment - 1) / alignment * alignment, '\0');
    std::string blob;
    for (size_t k = 0; k < tensors.size(); ++k) {
      if (tensors[k].data.empty()) continue;
      blob.resize(std::max<size_t>(blob.size(), offsets[k] + tensors[k].data.size()), '\0');
      std::memcpy(blob.data() + offsets[k], tensors[k].data.data(), tensors[k].data.size());
    }
    return out + blob;
  }
};

}  // namespace lowbit::test
