#include "tokenizer/regex.h"

#include <algorithm>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "base/error.h"
#include "tokenizer/utf8.h"

namespace lowbit {

struct Regex::Impl {
  pcre2_code* code = nullptr;
  std::string origin;
  ~Impl() {
    if (code) pcre2_code_free(code);
  }
};

Regex::Regex(const std::string& pattern, std::string_view origin, bool literal)
    : impl_(std::make_unique<Impl>()) {
  impl_->origin = std::string(origin);
  uint32_t options = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF;
  options |= literal ? PCRE2_LITERAL : PCRE2_UCP;  // PCRE2_LITERAL rejects PCRE2_UCP
  int err = 0;
  PCRE2_SIZE err_off = 0;
  impl_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), options,
                              &err, &err_off, nullptr);
  if (!impl_->code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    throw Error("tokenizer", std::string(origin) + ": bad regex '" + pattern + "' at offset " +
                                 std::to_string(err_off) + ": " +
                                 reinterpret_cast<const char*>(msg));
  }
  pcre2_jit_compile(impl_->code, PCRE2_JIT_COMPLETE);  // optional speed-up; falls back silently
}

Regex::~Regex() = default;

std::vector<std::pair<size_t, size_t>> Regex::find_all(std::string_view subject) const {
  std::vector<std::pair<size_t, size_t>> out;
  struct FreeMatchData {
    void operator()(pcre2_match_data* p) const { pcre2_match_data_free(p); }
  };
  const std::unique_ptr<pcre2_match_data, FreeMatchData> holder(
      pcre2_match_data_create_from_pattern(impl_->code, nullptr));
  pcre2_match_data* md = holder.get();
  if (!md) throw Error("tokenizer", impl_->origin + ": out of memory for regex match data");
  const auto* s = reinterpret_cast<PCRE2_SPTR>(subject.data());
  size_t pos = 0;
  while (pos < subject.size()) {
    const int rc = pcre2_match(impl_->code, s, subject.size(), pos, 0, md, nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      throw Error("tokenizer",
                  impl_->origin + ": regex match failed with PCRE2 error " + std::to_string(rc));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    if (ov[1] > ov[0]) {
      out.emplace_back(ov[0], ov[1]);
      pos = ov[1];
    } else {
      pos = ov[0] + std::max<size_t>(1, utf8_char_len(subject.substr(ov[0])));  // skip empty match
    }
  }
  return out;
}

}  // namespace lowbit
