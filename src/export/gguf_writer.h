// A general GGUF version 3 writer (the layout io/gguf.h reads; docs/FORMAT.md "GGUF export").
//
//   "GGUF" u32 3, u64 tensor_count, u64 kv_count
//   kv_count x { string key, u32 value_type, value }       string = u64 length + bytes
//   tensor_count x { string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset }
//   zero padding to the alignment, then the data section: each tensor's bytes start at an
//   offset (relative to the data section) that is a multiple of the alignment, and are followed
//   by zero padding up to the next multiple (the last tensor too).
//
// Contract:
//  - Everything is little-endian. KV pairs and tensors are written in the order they were added;
//    the writer appends "general.alignment" (u32) after the caller's keys, so callers must not
//    add it. Same inputs -> identical bytes (no timestamps, no hash-map order).
//  - Shapes are given outermost first, as everywhere in lowbit ([n_out, n_in]); the writer
//    stores them reversed (ne[0] = innermost = cols). 1 to 4 dimensions, each >= 1; the
//    innermost must be a multiple of the type's block length.
//  - Tensor data comes from a producer called once per tensor during write(), in order, so at
//    most one tensor's bytes are in memory; it must return exactly the tensor's byte size.
//  - write() goes through AtomicFile: on any error (a producer throwing included) no file is
//    left behind. Bad keys/names (empty, duplicate) throw lowbit::Error("export", ...) when
//    added.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "export/ggml_blocks.h"
#include "io/gguf.h"

namespace lowbit {

// One metadata value, already encoded: its GGUF type and the bytes that follow the type id.
class GgufMeta {
 public:
  static GgufMeta u8(uint8_t v);
  static GgufMeta i8(int8_t v);
  static GgufMeta u16(uint16_t v);
  static GgufMeta i16(int16_t v);
  static GgufMeta u32(uint32_t v);
  static GgufMeta i32(int32_t v);
  static GgufMeta u64(uint64_t v);
  static GgufMeta i64(int64_t v);
  static GgufMeta f32(float v);
  static GgufMeta f64(double v);
  static GgufMeta boolean(bool v);
  static GgufMeta string(const std::string& v);
  // Arrays of one element type.
  static GgufMeta strings(const std::vector<std::string>& v);
  static GgufMeta f32s(const std::vector<float>& v);
  static GgufMeta i32s(const std::vector<int32_t>& v);
  static GgufMeta u32s(const std::vector<uint32_t>& v);
  static GgufMeta i64s(const std::vector<int64_t>& v);
  static GgufMeta bools(const std::vector<bool>& v);
  // An array whose items are themselves values of one type (e.g. arrays of arrays). All items
  // must have the same type (throws lowbit::Error otherwise); an empty list gets elem_type.
  static GgufMeta array(const std::vector<GgufMeta>& items, GgufType elem_type = GgufType::U8);

  GgufType type() const { return type_; }
  const std::string& payload() const { return payload_; }

 private:
  GgufMeta(GgufType t, std::string payload) : type_(t), payload_(std::move(payload)) {}
  GgufType type_;
  std::string payload_;
};

// Produces one tensor's bytes.
using TensorProducer = std::function<std::vector<uint8_t>()>;

class GgufWriter {
 public:
  explicit GgufWriter(uint32_t alignment = 32);  // a power of two (asserted)

  void add(const std::string& key, GgufMeta value);
  void add_tensor(const std::string& name, GgmlType type, const std::vector<int64_t>& shape,
                  TensorProducer produce);
  // Convenience: bytes already in memory (copied into the producer).
  void add_tensor(const std::string& name, GgmlType type, const std::vector<int64_t>& shape,
                  std::vector<uint8_t> bytes);

  // Storage bytes of a tensor of this type and shape (the producer's contract).
  static uint64_t tensor_bytes(GgmlType type, const std::vector<int64_t>& shape);

  // The size write() would give, without producing any tensor.
  uint64_t file_size() const { return header_bytes().size() + data_size_; }

  // Writes the file atomically. Throws lowbit::Error on I/O failure or a producer that returns
  // the wrong number of bytes (naming the tensor).
  void write(const std::string& path) const;

 private:
  struct Tensor {
    std::string name;
    GgmlType type;
    std::vector<int64_t> shape;  // outermost first
    uint64_t nbytes, offset;     // offset relative to the data section
    TensorProducer produce;
  };
  uint32_t alignment_;
  std::vector<std::pair<std::string, GgufMeta>> kv_;
  std::vector<Tensor> tensors_;
  uint64_t data_size_ = 0;  // padded

  std::string header_bytes() const;
};

}  // namespace lowbit
