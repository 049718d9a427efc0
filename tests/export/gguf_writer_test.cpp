// GGUF writer -> lowbit's GgufFile reader: every metadata type (scalars, strings, arrays of each
// element type, nested arrays) and tensors of every written ggml type round-trip; the layout
// is aligned and deterministic; bad input throws lowbit::Error and leaves no file behind.
#include "export/gguf_writer.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "base/error.h"
#include "base/half.h"
#include "io/gguf.h"
#include "testutil.h"

namespace lowbit {
namespace {

namespace fs = std::filesystem;

std::vector<uint8_t> bytes_of(const std::string& s) {
  return std::vector<uint8_t>(s.begin(), s.end());
}

GgufFile read_back(const std::string& path) {
  return GgufFile(path, bytes_of(test::read_file(path)));
}

// Files in `dir` (to check that nothing, not even a temp file, was left behind).
size_t file_count(const std::string& dir) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++n;
  return n;
}

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + 31 * i);
  return v;
}

void add_every_kv(GgufWriter& w) {
  w.add("t.u8", GgufMeta::u8(250));
  w.add("t.i8", GgufMeta::i8(-120));
  w.add("t.u16", GgufMeta::u16(65000));
  w.add("t.i16", GgufMeta::i16(-32000));
  w.add("t.u32", GgufMeta::u32(4000000000u));
  w.add("t.i32", GgufMeta::i32(-2000000000));
  w.add("t.u64", GgufMeta::u64(uint64_t{1} << 60));
  w.add("t.i64", GgufMeta::i64(-(int64_t{1} << 60)));
  w.add("t.f32", GgufMeta::f32(1.5e-5f));
  w.add("t.f64", GgufMeta::f64(3.141592653589793));
  w.add("t.bool", GgufMeta::boolean(true));
  w.add("t.string", GgufMeta::string("h\xC3\xA9llo \xE2\x96\x81world"));
  w.add("t.empty_string", GgufMeta::string(""));
  w.add("t.strings", GgufMeta::strings({"<s>", "", "\xE2\x96\x81the"}));
  w.add("t.f32s", GgufMeta::f32s({0.0f, -1.25f, 3e38f}));
  w.add("t.i32s", GgufMeta::i32s({1, -2, 2147483647}));
  w.add("t.u32s", GgufMeta::u32s({7, 4294967295u}));
  w.add("t.i64s", GgufMeta::i64s({-5, int64_t{1} << 50}));
  w.add("t.bools", GgufMeta::bools({true, false, true}));
  w.add("t.empty_array", GgufMeta::f32s({}));
  w.add("t.nested", GgufMeta::array({GgufMeta::i32s({1, 2}), GgufMeta::i32s({3})}));
}

TEST(GgufWriter, EveryMetadataTypeRoundTrips) {
  GgufWriter w;
  add_every_kv(w);
  const std::string path = test::temp_dir() + "/kv.gguf";
  w.write(path);
  const GgufFile g = read_back(path);
  EXPECT_EQ(g.version(), 3u);
  EXPECT_EQ(g.kv_count(), 22u);  // 21 + general.alignment
  EXPECT_EQ(g.get_int("general.alignment"), 32);
  EXPECT_EQ(g.find("general.alignment")->type, GgufType::U32);
  EXPECT_EQ(g.get_int("t.u8"), 250);
  EXPECT_EQ(g.get_int("t.i8"), -120);
  EXPECT_EQ(g.get_int("t.u16"), 65000);
  EXPECT_EQ(g.get_int("t.i16"), -32000);
  EXPECT_EQ(g.get_int("t.u32"), 4000000000LL);
  EXPECT_EQ(g.get_int("t.i32"), -2000000000);
  EXPECT_EQ(g.get_int("t.u64"), int64_t{1} << 60);
  EXPECT_EQ(g.get_int("t.i64"), -(int64_t{1} << 60));
  const GgufType want_types[] = {GgufType::U8,  GgufType::I8,  GgufType::U16, GgufType::I16,
                                 GgufType::U32, GgufType::I32, GgufType::U64, GgufType::I64};
  const char* keys[] = {"t.u8", "t.i8", "t.u16", "t.i16", "t.u32", "t.i32", "t.u64", "t.i64"};
  for (int i = 0; i < 8; ++i) EXPECT_EQ(g.find(keys[i])->type, want_types[i]) << keys[i];
  EXPECT_EQ(g.get_float("t.f32"), 1.5e-5f);
  EXPECT_EQ(g.find("t.f32")->type, GgufType::F32);
  EXPECT_EQ(g.get_float("t.f64"), 3.141592653589793);
  EXPECT_TRUE(g.get_bool("t.bool"));
  EXPECT_EQ(g.get_string("t.string"), "h\xC3\xA9llo \xE2\x96\x81world");
  EXPECT_EQ(g.get_string("t.empty_string"), "");
  EXPECT_EQ(g.get_string_array("t.strings"),
            (std::vector<std::string>{"<s>", "", "\xE2\x96\x81the"}));
  EXPECT_EQ(g.get_float_array("t.f32s"), (std::vector<float>{0.0f, -1.25f, 3e38f}));
  EXPECT_EQ(g.get_int_array("t.i32s"), (std::vector<int64_t>{1, -2, 2147483647}));
  EXPECT_EQ(g.find("t.i32s")->elem_type, GgufType::I32);
  EXPECT_EQ(g.get_int_array("t.u32s"), (std::vector<int64_t>{7, 4294967295LL}));
  EXPECT_EQ(g.get_int_array("t.i64s"), (std::vector<int64_t>{-5, int64_t{1} << 50}));
  const GgufValue* bools = g.find("t.bools");
  ASSERT_EQ(bools->elem_type, GgufType::Bool);
  ASSERT_EQ(bools->count, 3u);
  EXPECT_EQ(std::vector<uint8_t>(bools->raw, bools->raw + 3), (std::vector<uint8_t>{1, 0, 1}));
  EXPECT_TRUE(g.get_float_array("t.empty_array").empty());
  const GgufValue* nested = g.find("t.nested");
  ASSERT_EQ(nested->elem_type, GgufType::Array);
  ASSERT_EQ(nested->items.size(), 2u);
  EXPECT_EQ(nested->items[0].count, 2u);
  EXPECT_EQ(nested->items[1].count, 1u);
  // File order is insertion order.
  const auto listed = g.list_metadata();
  EXPECT_EQ(listed.front().key, "t.u8");
  EXPECT_EQ(listed.back().key, "general.alignment");
}

TEST(GgufWriter, TensorsRoundTripAlignedWithReversedDims) {
  struct Case {
    const char* name;
    GgmlType type;
    std::vector<int64_t> shape;
    DType dtype;
  };
  const std::vector<Case> cases = {
      {"a.f32", GgmlType::F32, {3}, DType::F32},  // 12 bytes: the next one needs padding
      {"b.f16", GgmlType::F16, {2, 5}, DType::F16},
      {"c.q4_0", GgmlType::Q4_0, {3, 64}, DType::Q4_0},
      {"d.q8_0", GgmlType::Q8_0, {2, 2, 32}, DType::Q8_0},
  };
  GgufWriter w(64);
  std::vector<std::vector<uint8_t>> data;
  for (size_t i = 0; i < cases.size(); ++i) {
    data.push_back(
        pattern(GgufWriter::tensor_bytes(cases[i].type, cases[i].shape), static_cast<uint8_t>(i)));
    if (cases[i].type == GgmlType::Q4_0 || cases[i].type == GgmlType::Q8_0)
      for (size_t b = 0; b < data[i].size(); b += cases[i].type == GgmlType::Q4_0 ? 18 : 34)
        data[i][b + 1] = 0x3C;  // keep every block's d finite (1.x)
    w.add_tensor(cases[i].name, cases[i].type, cases[i].shape, data[i]);
  }
  const std::string path = test::temp_dir() + "/t.gguf";
  w.write(path);
  const GgufFile g = read_back(path);
  EXPECT_EQ(g.alignment(), 64u);
  EXPECT_EQ(g.data_offset() % 64, 0u);
  ASSERT_EQ(g.tensors().size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    const GgufTensorInfo& t = g.tensors()[i];
    EXPECT_EQ(t.name, cases[i].name);
    EXPECT_EQ(t.ggml_type, static_cast<uint32_t>(cases[i].type));
    EXPECT_EQ(t.shape, cases[i].shape);  // the reader reverses ne back to outermost first
    EXPECT_EQ(t.offset % 64, 0u);
    const TensorView v = g.view(t);
    EXPECT_EQ(v.dtype, cases[i].dtype);
    EXPECT_EQ(std::vector<uint8_t>(v.data, v.data + v.nbytes), data[i]) << t.name;
  }
  // ne[0] is the innermost dimension: the first dim stored for c.q4_0 is 64.
  const std::string raw = test::read_file(path);
  const size_t at = raw.find("c.q4_0") + 6;
  uint32_t n_dims = 0;
  uint64_t ne0 = 0;
  std::memcpy(&n_dims, raw.data() + at, 4);
  std::memcpy(&ne0, raw.data() + at + 4, 8);
  EXPECT_EQ(n_dims, 2u);
  EXPECT_EQ(ne0, 64u);
  EXPECT_EQ(raw.size() % 64, 0u) << "the last tensor is padded too";
}

TEST(GgufWriter, Deterministic) {
  auto write = [](const std::string& path) {
    GgufWriter w;
    add_every_kv(w);
    w.add_tensor("x", GgmlType::F32, {4, 4}, pattern(64, 9));
    w.write(path);
    return test::read_file(path);
  };
  const std::string dir = test::temp_dir();
  EXPECT_EQ(write(dir + "/a.gguf"), write(dir + "/b.gguf"));
}

TEST(GgufWriter, BadInputThrows) {
  GgufWriter w;
  w.add("k", GgufMeta::u32(1));
  EXPECT_THROW(w.add("k", GgufMeta::u32(2)), Error);
  EXPECT_THROW(w.add("", GgufMeta::u32(2)), Error);
  EXPECT_THROW(w.add("general.alignment", GgufMeta::u32(64)), Error);
  EXPECT_THROW(GgufMeta::array({GgufMeta::u32(1), GgufMeta::i32(1)}), Error);
  w.add_tensor("t", GgmlType::F32, {2}, pattern(8, 0));
  EXPECT_THROW(w.add_tensor("t", GgmlType::F32, {2}, pattern(8, 0)), Error);
  EXPECT_THROW(w.add_tensor("q", GgmlType::Q4_0, {2, 48}, pattern(0, 0)), Error);  // 48 % 32
  EXPECT_THROW(w.add_tensor("z", GgmlType::F32, {0, 4}, pattern(0, 0)), Error);
  EXPECT_THROW(w.add_tensor("five", GgmlType::F32, {1, 1, 1, 1, 1}, pattern(4, 0)), Error);
}

TEST(GgufWriter, FailedWriteLeavesNoFile) {
  const std::string dir = test::temp_dir();
  GgufWriter w;
  w.add("k", GgufMeta::u32(1));
  w.add_tensor("ok", GgmlType::F32, {2}, pattern(8, 0));
  w.add_tensor("short", GgmlType::F32, {4}, [] { return std::vector<uint8_t>(3); });
  EXPECT_THROW(w.write(dir + "/bad.gguf"), Error);
  GgufWriter w2;
  w2.add_tensor("boom", GgmlType::F32, {2},
                []() -> std::vector<uint8_t> { throw Error("test", "producer failed"); });
  EXPECT_THROW(w2.write(dir + "/bad2.gguf"), Error);
  EXPECT_EQ(file_count(dir), 0u);
}

}  // namespace
}  // namespace lowbit
