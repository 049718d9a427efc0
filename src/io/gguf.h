// GGUF reader (versions 2 and 3, little-endian), as written by llama.cpp's converters.
//
// File layout (all integers little-endian):
//   "GGUF" u32 version, u64 tensor_count, u64 kv_count
//   kv_count x { string key, u32 value_type, value }          string = u64 length + bytes
//   tensor_count x { string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset }
//   padding to general.alignment (u32 KV, default 32), then the data section; each tensor's
//   offset is relative to the data section and a multiple of the alignment.
// ne[0] is the innermost (contiguous) dimension; GgufTensorInfo::shape is reversed to the
// outermost-first order lowbit uses everywhere (a Linear weight is [n_out, n_in]).
//
// Contract: the constructor validates the whole header and tensor table against the file size
// and throws lowbit::Error("gguf", "<path>: <what> (<where>, offset N)") on any malformed input;
// it never reads outside the mapping. After construction every tensor's bytes lie inside the
// file, tensors do not overlap, names are unique. Tensors of ggml types lowbit cannot decode are
// listed (for `lowbit info`) but view() on them throws.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "io/tensor.h"

namespace lowbit {

class MappedFile;

// GGUF metadata value types (persisted ids; never renumber).
enum class GgufType : uint32_t {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  Bool = 7,
  String = 8,
  Array = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
};

// "u8", "i32", "string", "array", ... ; "type N" for an id outside the enum.
const char* gguf_type_name(GgufType t);

// Name of a ggml tensor type id for messages and listings: "F32", "Q4_K", ...; "type 99" for
// ids unknown to lowbit.
std::string ggml_type_name(uint32_t id);

// One metadata value. Scalars live in the field matching `type` (unsigned integers in u,
// signed integers in i, F32/F64 in f, Bool in b, String in str). Arrays keep elem_type and
// count; their payload is: strings for string arrays, items for nested arrays, and for
// numeric/bool arrays `raw`, which points at count little-endian elements inside the mapped
// file (valid while the owning GgufFile lives). Use GgufFile's typed getters, not the fields.
struct GgufValue {
  GgufType type = GgufType::U8;
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0.0;
  bool b = false;
  std::string str;
  GgufType elem_type = GgufType::U8;  // arrays only
  uint64_t count = 0;                 // arrays only
  const uint8_t* raw = nullptr;       // numeric/bool arrays
  std::vector<std::string> strings;   // string arrays
  std::vector<GgufValue> items;       // arrays of arrays
};

// One row of the metadata listing: key, type name ("u32", "array[string]") and a short
// printable value (strings escaped and cut to ~64 chars, arrays as "[N items]").
struct GgufKvEntry {
  std::string key, type, value;
};

struct GgufTensorInfo {
  std::string name;
  uint32_t ggml_type = 0;
  std::optional<DType> dtype;  // set when lowbit can decode ggml_type
  std::vector<int64_t> shape;  // outermost first (GGUF ne reversed)
  uint64_t offset = 0;         // relative to the data section
  uint64_t nbytes = 0;         // storage bytes; 0 when ggml_type's block size is unknown
};

class GgufFile {
 public:
  // Maps and validates `path`. Throws lowbit::Error("gguf" or "io", ...) naming the path.
  explicit GgufFile(const std::string& path);
  // Parses an in-memory image instead (tests use it so that AddressSanitizer sees every read;
  // a mapping's slack up to the page end would hide an overrun). `name` stands in for the path.
  GgufFile(const std::string& name, std::vector<uint8_t> bytes);
  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // file offset of the data section

  // --- metadata ---
  bool has(const std::string& key) const { return index_.count(key) != 0; }
  const GgufValue* find(const std::string& key) const;  // nullptr when absent
  size_t kv_count() const { return kv_.size(); }
  // Typed getters throw lowbit::Error naming the path and key when the key is missing or holds
  // another type. get_int accepts every integer type (a u64 above INT64_MAX throws); get_float
  // accepts F32/F64 and integers; the array getters accept the matching element types.
  std::string get_string(const std::string& key) const;
  int64_t get_int(const std::string& key) const;
  double get_float(const std::string& key) const;
  bool get_bool(const std::string& key) const;
  const std::vector<std::string>& get_string_array(const std::string& key) const;
  std::vector<float> get_float_array(const std::string& key) const;  // F32/F64 elements
  std::vector<int64_t> get_int_array(const std::string& key) const;  // any integer elements
  // As above, but return `fallback` when the key is absent (a wrong type still throws).
  int64_t get_int_or(const std::string& key, int64_t fallback) const;
  double get_float_or(const std::string& key, double fallback) const;
  // All KV pairs in file order, for `lowbit info`.
  std::vector<GgufKvEntry> list_metadata() const;

  // --- tensors ---
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }  // file order
  const GgufTensorInfo* find_tensor(const std::string& name) const;        // nullptr if absent
  // View of a tensor's bytes (named with its GGUF name). Throws lowbit::Error if the tensor is
  // missing or its ggml type is not supported ("... has type Q5_K (id 13), not supported yet").
  TensorView view(const std::string& name) const;
  TensorView view(const GgufTensorInfo& info) const;

 private:
  friend class GgufParser;
  std::string path_;
  std::unique_ptr<MappedFile> file_;  // the mapping, or null when parsing `bytes_`
  std::vector<uint8_t> bytes_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::map<std::string, size_t> index_;  // key -> position in kv_
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t> tensor_index_;  // name -> position in tensors_

  const GgufValue& require(const std::string& key) const;
  [[noreturn]] void type_error(const std::string& key, const GgufValue& v,
                               const char* wanted) const;
};

}  // namespace lowbit
