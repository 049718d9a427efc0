#include "export/gguf_writer.h"

#include <bit>
#include <cstring>
#include <memory>

#include "base/atomic_file.h"
#include "base/error.h"

namespace lowbit {

static_assert(std::endian::native == std::endian::little, "the GGUF writer assumes little-endian");

namespace {

constexpr uint32_t kGgufVersion = 3;
constexpr int kMaxDims = 4;

template <class T>
std::string le(T v) {
  std::string s(sizeof(T), '\0');
  std::memcpy(s.data(), &v, sizeof(T));
  return s;
}

std::string gguf_string(const std::string& s) {
  return le<uint64_t>(s.size()) + s;
}

std::string array_head(GgufType elem, uint64_t count) {
  return le(static_cast<uint32_t>(elem)) + le(count);
}

template <class T>
std::string numeric_array(GgufType elem, const std::vector<T>& v) {
  std::string p = array_head(elem, v.size());
  for (const T& x : v) p += le(x);
  return p;
}

uint64_t pad_to(uint64_t n, uint64_t align) {
  return (n + align - 1) / align * align;
}

}  // namespace

GgufMeta GgufMeta::u8(uint8_t v) { return {GgufType::U8, le(v)}; }
GgufMeta GgufMeta::i8(int8_t v) { return {GgufType::I8, le(v)}; }
GgufMeta GgufMeta::u16(uint16_t v) { return {GgufType::U16, le(v)}; }
GgufMeta GgufMeta::i16(int16_t v) { return {GgufType::I16, le(v)}; }
GgufMeta GgufMeta::u32(uint32_t v) { return {GgufType::U32, le(v)}; }
GgufMeta GgufMeta::i32(int32_t v) { return {GgufType::I32, le(v)}; }
GgufMeta GgufMeta::u64(uint64_t v) { return {GgufType::U64, le(v)}; }
GgufMeta GgufMeta::i64(int64_t v) { return {GgufType::I64, le(v)}; }
GgufMeta GgufMeta::f32(float v) { return {GgufType::F32, le(v)}; }
GgufMeta GgufMeta::f64(double v) { return {GgufType::F64, le(v)}; }
GgufMeta GgufMeta::boolean(bool v) { return {GgufType::Bool, le<uint8_t>(v ? 1 : 0)}; }
GgufMeta GgufMeta::string(const std::string& v) { return {GgufType::String, gguf_string(v)}; }

GgufMeta GgufMeta::strings(const std::vector<std::string>& v) {
  std::string p = array_head(GgufType::String, v.size());
  for (const std::string& s : v) p += gguf_string(s);
  return {GgufType::Array, std::move(p)};
}
GgufMeta GgufMeta::f32s(const std::vector<float>& v) {
  return {GgufType::Array, numeric_array(GgufType::F32, v)};
}
GgufMeta GgufMeta::i32s(const std::vector<int32_t>& v) {
  return {GgufType::Array, numeric_array(GgufType::I32, v)};
}
GgufMeta GgufMeta::u32s(const std::vector<uint32_t>& v) {
  return {GgufType::Array, numeric_array(GgufType::U32, v)};
}
GgufMeta GgufMeta::i64s(const std::vector<int64_t>& v) {
  return {GgufType::Array, numeric_array(GgufType::I64, v)};
}
GgufMeta GgufMeta::bools(const std::vector<bool>& v) {
  std::string p = array_head(GgufType::Bool, v.size());
  for (bool b : v) p += le<uint8_t>(b ? 1 : 0);
  return {GgufType::Array, std::move(p)};
}

GgufMeta GgufMeta::array(const std::vector<GgufMeta>& items, GgufType elem_type) {
  if (!items.empty()) elem_type = items.front().type();
  std::string p = array_head(elem_type, items.size());
  for (const GgufMeta& m : items) {
    if (m.type() != elem_type)
      throw Error("export", std::string("GGUF array items of mixed types (") +
                                gguf_type_name(elem_type) + " and " + gguf_type_name(m.type()) +
                                ")");
    p += m.payload();
  }
  return {GgufType::Array, std::move(p)};
}

GgufWriter::GgufWriter(uint32_t alignment) : alignment_(alignment) {
  LOWBIT_ASSERT(alignment >= 1 && std::has_single_bit(alignment));
}

void GgufWriter::add(const std::string& key, GgufMeta value) {
  if (key.empty()) throw Error("export", "GGUF metadata key is empty");
  if (key == "general.alignment")
    throw Error("export", "GGUF key 'general.alignment' is written by the writer itself");
  for (const auto& kv : kv_)
    if (kv.first == key) throw Error("export", "duplicate GGUF metadata key '" + key + "'");
  kv_.emplace_back(key, std::move(value));
}

uint64_t GgufWriter::tensor_bytes(GgmlType type, const std::vector<int64_t>& shape) {
  LOWBIT_ASSERT(!shape.empty());
  uint64_t rows = 1;
  for (size_t i = 0; i + 1 < shape.size(); ++i) rows *= static_cast<uint64_t>(shape[i]);
  return rows * static_cast<uint64_t>(ggml_row_bytes(type, shape.back()));
}

void GgufWriter::add_tensor(const std::string& name, GgmlType type,
                            const std::vector<int64_t>& shape, TensorProducer produce) {
  if (name.empty()) throw Error("export", "GGUF tensor name is empty");
  for (const Tensor& t : tensors_)
    if (t.name == name) throw Error("export", "duplicate GGUF tensor '" + name + "'");
  if (shape.empty() || shape.size() > kMaxDims)
    throw Error("export", "tensor '" + name + "': " + std::to_string(shape.size()) +
                              " dimensions (GGUF allows 1 to 4)");
  for (int64_t d : shape)
    if (d < 1)
      throw Error("export", "tensor '" + name + "': dimension " + std::to_string(d) + " < 1");
  if (shape.back() % ggml_block_elems(type) != 0)
    throw Error("export", "tensor '" + name + "': row length " + std::to_string(shape.back()) +
                              " is not a multiple of " + ggml_type_label(type) + "'s block of " +
                              std::to_string(ggml_block_elems(type)));
  const uint64_t nbytes = tensor_bytes(type, shape);
  tensors_.push_back({name, type, shape, nbytes, data_size_, std::move(produce)});
  data_size_ += pad_to(nbytes, alignment_);
}

void GgufWriter::add_tensor(const std::string& name, GgmlType type,
                            const std::vector<int64_t>& shape, std::vector<uint8_t> bytes) {
  auto shared = std::make_shared<std::vector<uint8_t>>(std::move(bytes));
  add_tensor(name, type, shape, [shared] { return *shared; });
}

std::string GgufWriter::header_bytes() const {
  std::string h = "GGUF" + le(kGgufVersion) + le<uint64_t>(tensors_.size()) +
                  le<uint64_t>(kv_.size() + 1);
  for (const auto& [key, value] : kv_)
    h += gguf_string(key) + le(static_cast<uint32_t>(value.type())) + value.payload();
  h += gguf_string("general.alignment") + le(static_cast<uint32_t>(GgufType::U32)) + le(alignment_);
  for (const Tensor& t : tensors_) {
    h += gguf_string(t.name) + le(static_cast<uint32_t>(t.shape.size()));
    for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it)
      h += le(static_cast<uint64_t>(*it));  // ne[0] = innermost
    h += le(static_cast<uint32_t>(t.type)) + le(t.offset);
  }
  h.resize(pad_to(h.size(), alignment_), '\0');
  return h;
}

void GgufWriter::write(const std::string& path) const {
  AtomicFile f(path);
  f.write(header_bytes());
  const std::vector<uint8_t> zeros(alignment_, 0);
  for (const Tensor& t : tensors_) {
    const std::vector<uint8_t> bytes = t.produce();
    if (bytes.size() != t.nbytes)
      throw Error("export", "tensor '" + t.name + "': produced " + std::to_string(bytes.size()) +
                                " bytes, expected " + std::to_string(t.nbytes));
    f.write(bytes.data(), bytes.size());
    f.write(zeros.data(), pad_to(t.nbytes, alignment_) - t.nbytes);
  }
  f.commit();
}

}  // namespace lowbit
