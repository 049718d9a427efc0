#include "io/safetensors_writer.h"

#include <nlohmann/json.hpp>

#include "base/atomic_file.h"
#include "base/error.h"

namespace lowbit {

namespace {

size_t dtype_size(const std::string& d) {
  if (d == "F64" || d == "I64" || d == "U64") return 8;
  if (d == "F32" || d == "I32" || d == "U32") return 4;
  if (d == "F16" || d == "BF16" || d == "I16" || d == "U16") return 2;
  if (d == "U8" || d == "I8" || d == "BOOL" || d == "F8_E4M3" || d == "F8_E5M2") return 1;
  return 0;
}

int64_t round_up(int64_t v, int64_t a) { return (v + a - 1) / a * a; }

}  // namespace

void SafetensorsWriter::add(const std::string& name, const std::string& dtype,
                            std::vector<int64_t> shape, std::vector<uint8_t> bytes) {
  const size_t es = dtype_size(dtype);
  if (es == 0) throw Error("safetensors", "cannot write unknown dtype '" + dtype + "'");
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  LOWBIT_ASSERT(static_cast<size_t>(n) * es == bytes.size());
  for (const Entry& e : entries_) {
    if (e.name == name) throw Error("safetensors", "tensor '" + name + "' added twice");
  }
  entries_.push_back({name, dtype, std::move(shape), std::move(bytes)});
}

void SafetensorsWriter::write(const std::string& path) const {
  // Plan offsets (relative to the data section, which will start `align_`-aligned).
  nlohmann::ordered_json header;
  if (!metadata_.empty()) header["__metadata__"] = metadata_;
  std::vector<std::pair<int64_t, const Entry*>> plan;  // padding before each entry
  int64_t off = 0, pads = 0;
  for (const Entry& e : entries_) {
    const int64_t start = round_up(off, align_);
    if (start > off) {
      header["__pad." + std::to_string(pads++)] = {{"dtype", "U8"}, {"shape", {start - off}}, {"data_offsets", {off, start}}};
    }
    plan.emplace_back(start - off, &e);
    const int64_t end = start + static_cast<int64_t>(e.bytes.size());
    header[e.name] = {{"dtype", e.dtype}, {"shape", e.shape}, {"data_offsets", {start, end}}};
    off = end;
  }
  std::string json = header.dump();
  json.resize(static_cast<size_t>(round_up(8 + static_cast<int64_t>(json.size()), align_) - 8), ' ');
  AtomicFile f(path);
  const uint64_t n = json.size();
  f.write(&n, 8);
  f.write(json);
  const std::vector<uint8_t> zeros(static_cast<size_t>(align_), 0);
  for (const auto& [pad, e] : plan) {
    f.write(zeros.data(), static_cast<size_t>(pad));
    f.write(e->bytes.data(), e->bytes.size());
  }
  f.commit();
}

}  // namespace lowbit
