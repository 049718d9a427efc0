// Shared by the GGUF export tests: export a model with a --type spelling into the test's temp
// dir, collecting the report and the warnings.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "export/gguf_export.h"
#include "model/loader.h"
#include "testutil.h"

namespace lowbit::test {

inline std::string export_with(const ModelSource& src, const std::string& name, const std::string& type,
                               GgufExportReport* report = nullptr,
                               std::vector<std::string>* warnings = nullptr) {
  const auto tok = load_tokenizer_for(src, "");
  GgufExportOptions opt;
  if (!type.empty()) parse_export_type(type, opt);  // "": the automatic type
  opt.warn = [warnings](const std::string& w) {
    if (warnings) warnings->push_back(w);
  };
  const std::string out = temp_dir() + "/" + name;
  const GgufExportReport r = export_gguf(src, *tok, opt, out);
  if (report) *report = r;
  return out;
}

// `src` with tensor `name` replaced by fp32 `values` (e.g. with a NaN planted for error tests).
inline ModelSource with_tensor_values(const ModelSource& src, const std::string& name, std::vector<float> values) {
  ModelSource out = src;
  auto owned = std::make_shared<std::vector<float>>(std::move(values));
  TensorView& v = out.tensors[name];
  v.data = reinterpret_cast<const uint8_t*>(owned->data());
  v.dtype = DType::F32;
  v.nbytes = owned->size() * 4;
  out.owners.push_back(owned);
  return out;
}

}  // namespace lowbit::test
