#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/json_depth.h"

namespace lowbit {

namespace {

using json = nlohmann::json;
constexpr const char* kComp = "safetensors";
constexpr uint64_t kMaxHeader = uint64_t{100} << 20;  // real headers are far below 100 MiB

bool parse_dtype(const std::string& s, DType* out) {
  if (s == "F32") *out = DType::F32;
  else if (s == "F16") *out = DType::F16;
  else if (s == "BF16") *out = DType::BF16;
  else return false;
  return true;
}

size_t dtype_bytes_by_name(const std::string& s) {
  static const std::map<std::string, size_t> sizes = {
      {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"I16", 2},
      {"I8", 1},  {"U8", 1},  {"U16", 2}, {"U32", 4},  {"U64", 8}, {"BOOL", 1},
      {"F8_E4M3", 1}, {"F8_E5M2", 1}};
  auto it = sizes.find(s);
  return it == sizes.end() ? 0 : it->second;
}

uint64_t json_u64(const json& j, const std::string& where) {
  if (!j.is_number_unsigned() && !(j.is_number_integer() && j.get<int64_t>() >= 0))
    throw Error(kComp, where + ": expected a non-negative integer");
  return j.get<uint64_t>();
}

}  // namespace

SafetensorsFile::SafetensorsFile(const std::string& path) : file_(path) {
  parse_header();
  check_no_overlap();
}

void SafetensorsFile::parse_header() {
  const std::string& p = file_.path();
  if (file_.size() < 8) throw Error(kComp, p + ": truncated: no 8-byte header length");
  uint64_t n = 0;
  std::memcpy(&n, file_.data(), 8);
  if (n > kMaxHeader || n > file_.size() - 8)
    throw Error(kComp, p + ": header length " + std::to_string(n) + " exceeds the file size " +
                           std::to_string(file_.size()));
  data_begin_ = 8 + n;
  const size_t data_size = file_.size() - data_begin_;
  check_json_depth(std::string_view(reinterpret_cast<const char*>(file_.data()) + 8, n), kComp, p + ": header");
  json header = json::parse(file_.data() + 8, file_.data() + 8 + n, nullptr, false);
  if (header.is_discarded() || !header.is_object())
    throw Error(kComp, p + ": header is not a valid JSON object");
  for (auto& [name, info] : header.items()) {
    if (name == "__metadata__") {
      if (!info.is_object()) throw Error(kComp, p + ": __metadata__ is not an object");
      for (auto& [k, v] : info.items()) metadata_[k] = v.is_string() ? v.get<std::string>() : v.dump();
      continue;
    }
    const std::string where = p + ": tensor '" + name + "'";
    if (!info.is_object() || !info.contains("dtype") || !info.contains("shape") ||
        !info.contains("data_offsets") || !info["dtype"].is_string() || !info["shape"].is_array() ||
        !info["data_offsets"].is_array() || info["data_offsets"].size() != 2)
      throw Error(kComp, where + ": needs dtype, shape and data_offsets [begin, end]");
    SafetensorsEntry e;
    e.dtype_name = info["dtype"].get<std::string>();
    const size_t elem = dtype_bytes_by_name(e.dtype_name);
    if (elem == 0) throw Error(kComp, where + ": unknown dtype '" + e.dtype_name + "'");
    e.supported = parse_dtype(e.dtype_name, &e.view.dtype);
    for (const json& d : info["shape"]) e.view.shape.push_back(static_cast<int64_t>(json_u64(d, where + " shape")));
    const int64_t numel = checked_numel(e.view.shape, kComp, where);
    const uint64_t begin = json_u64(info["data_offsets"][0], where + " data_offsets");
    const uint64_t end = json_u64(info["data_offsets"][1], where + " data_offsets");
    if (begin > end || end > data_size)
      throw Error(kComp, where + ": data_offsets [" + std::to_string(begin) + ", " +
                             std::to_string(end) + "] outside the data section of " +
                             std::to_string(data_size) + " bytes");
    if (end - begin != static_cast<uint64_t>(numel) * elem)
      throw Error(kComp, where + ": " + std::to_string(end - begin) + " bytes for " +
                             std::to_string(numel) + " elements of " + e.dtype_name);
    e.view.name = name;
    e.view.data = file_.data() + data_begin_ + begin;
    e.view.nbytes = end - begin;
    entries_.emplace(name, std::move(e));
  }
}

void SafetensorsFile::check_no_overlap() const {
  std::vector<std::pair<const uint8_t*, const SafetensorsEntry*>> spans;
  for (const auto& [name, e] : entries_)
    if (e.view.nbytes > 0) spans.emplace_back(e.view.data, &e);
  std::sort(spans.begin(), spans.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (size_t i = 1; i < spans.size(); ++i) {
    const auto& prev = *spans[i - 1].second;
    if (prev.view.data + prev.view.nbytes > spans[i].first)
      throw Error(kComp, path() + ": tensors '" + prev.view.name + "' and '" +
                             spans[i].second->view.name + "' overlap");
  }
}

const TensorView& SafetensorsFile::tensor(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) throw Error(kComp, path() + ": no tensor '" + name + "'");
  if (!it->second.supported)
    throw Error(kComp, path() + ": tensor '" + name + "' has dtype " + it->second.dtype_name +
                           " (supported: F32, F16, BF16)");
  return it->second.view;
}

namespace {

std::vector<std::string> shard_names(const std::string& index_path) {
  const std::string idx_text = read_text_file(index_path);
  check_json_depth(idx_text, kComp, index_path);
  json idx = json::parse(idx_text, nullptr, false);
  if (idx.is_discarded() || !idx.is_object() || !idx.contains("weight_map") ||
      !idx["weight_map"].is_object())
    throw Error(kComp, index_path + ": not a valid index (needs a weight_map object)");
  std::vector<std::string> names;
  for (auto& [tensor, file] : idx["weight_map"].items()) {
    if (!file.is_string()) throw Error(kComp, index_path + ": weight_map['" + tensor + "'] is not a file name");
    const std::string f = file.get<std::string>();
    if (f.find('/') != std::string::npos || f.empty())
      throw Error(kComp, index_path + ": shard name '" + f + "' must be a plain file name");
    if (std::find(names.begin(), names.end(), f) == names.end()) names.push_back(f);
  }
  return names;
}

}  // namespace

SafetensorsSet open_safetensors_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  std::vector<std::string> files;
  const fs::path single = fs::path(dir) / "model.safetensors";
  const fs::path index = fs::path(dir) / "model.safetensors.index.json";
  if (fs::exists(single)) files.push_back(single.string());
  else if (fs::exists(index))
    for (const auto& name : shard_names(index.string())) files.push_back((fs::path(dir) / name).string());
  else
    throw Error(kComp, dir + ": no model.safetensors or model.safetensors.index.json");
  SafetensorsSet set;
  for (const auto& f : files) {
    auto file = std::make_shared<const SafetensorsFile>(f);
    for (const auto& [name, e] : file->entries()) {
      if (!set.entries.emplace(name, &e).second)
        throw Error(kComp, f + ": tensor '" + name + "' also appears in another shard");
    }
    set.files.push_back(std::move(file));
  }
  return set;
}

}  // namespace lowbit
