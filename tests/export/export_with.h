// Shared by the GGUF export tests: export a model with a --type spelling into the test's temp
// dir, collecting the report and the warnings.
#pragma once

#include <string>
#include <vector>

#include "export/gguf_export.h"
#include "testutil.h"
#include "model/loader.h"

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

}  // namespace lowbit::test
