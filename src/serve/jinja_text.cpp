// UTF-8 string helpers with the semantics of the JavaScript functions the reference renderer
// calls (String.prototype.trim, toUpperCase, parseInt, ...).
#include <cctype>
#include <cmath>
#include <cstdlib>

#include "serve/jinja_value.h"

namespace lowbit::jinja {

namespace {

// Decodes the code point at s[i] (valid or not); returns its byte length in `len`.
// Invalid bytes decode as themselves with length 1 (never produced after sanitize_utf8).
uint32_t decode(std::string_view s, size_t i, size_t& len) {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) {
    len = 1;
    return c;
  }
  size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
  if (n == 0 || i + n > s.size()) {
    len = 1;
    return c;
  }
  uint32_t cp = c & (n == 2 ? 0x1f : n == 3 ? 0x0f : 0x07);
  for (size_t j = 1; j < n; ++j) {
    const auto d = static_cast<unsigned char>(s[i + j]);
    if ((d & 0xc0) != 0x80) {
      len = 1;
      return c;
    }
    cp = (cp << 6) | (d & 0x3f);
  }
  len = n;
  return cp;
}

}  // namespace

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

namespace {

// JavaScript WhiteSpace + LineTerminator (the /\s/ class).
bool js_space(uint32_t cp) {
  if (cp <= 32) return cp == 32 || (cp >= 9 && cp <= 13);
  return cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202f || cp == 0x205f || cp == 0x3000 || cp == 0xfeff;
}

// Simple case mappings for Latin, Greek, Cyrillic and fullwidth Latin; other scripts unchanged.
// Returns the mapped code point, or 0 when a multi-code-point result was appended to `special`.
uint32_t upper_cp(uint32_t c, std::string& special) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') ? c - 32 : c;
  if (c == 0xdf) {
    special = "SS";
    return 0;
  }
  if (c == 0xb5) return 0x39c;
  if (c == 0xff) return 0x178;
  if ((c >= 0xe0 && c <= 0xfe && c != 0xf7)) return c - 32;
  if (c == 0x131) return 'I';
  if (c == 0x17f) return 'S';
  if ((c >= 0x100 && c <= 0x12f) || (c >= 0x132 && c <= 0x137) || (c >= 0x14a && c <= 0x177)) return (c & 1) ? c - 1 : c;
  if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e)) return (c & 1) ? c : c - 1;
  if (c >= 0x3b1 && c <= 0x3c9) return c == 0x3c2 ? 0x3a3 : c - 32;
  if (c == 0x3ac) return 0x386;
  if (c >= 0x3ad && c <= 0x3af) return c - 37;
  if (c == 0x3cc) return 0x38c;
  if (c == 0x3cd || c == 0x3ce) return c - 63;
  if (c >= 0x430 && c <= 0x44f) return c - 32;
  if (c >= 0x450 && c <= 0x45f) return c - 80;
  if ((c >= 0x460 && c <= 0x481) || (c >= 0x48a && c <= 0x4bf) || (c >= 0x4d0 && c <= 0x52f)) return (c & 1) ? c - 1 : c;
  if (c >= 0xff41 && c <= 0xff5a) return c - 32;
  return c;
}

uint32_t lower_cp(uint32_t c, std::string& special) {
  if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
  if ((c >= 0xc0 && c <= 0xde && c != 0xd7)) return c + 32;
  if (c == 0x178) return 0xff;
  if (c == 0x130) {
    special = "i\xcc\x87";
    return 0;
  }
  if ((c >= 0x100 && c <= 0x12f) || (c >= 0x132 && c <= 0x137) || (c >= 0x14a && c <= 0x177)) return (c & 1) ? c : c + 1;
  if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e)) return (c & 1) ? c + 1 : c;
  if (c >= 0x391 && c <= 0x3a9 && c != 0x3a2) return c + 32;
  if (c == 0x386) return 0x3ac;
  if (c >= 0x388 && c <= 0x38a) return c + 37;
  if (c == 0x38c) return 0x3cc;
  if (c == 0x38e || c == 0x38f) return c + 63;
  if (c >= 0x410 && c <= 0x42f) return c + 32;
  if (c >= 0x400 && c <= 0x40f) return c + 80;
  if ((c >= 0x460 && c <= 0x481) || (c >= 0x48a && c <= 0x4bf) || (c >= 0x4d0 && c <= 0x52f)) return (c & 1) ? c : c + 1;
  if (c >= 0xff21 && c <= 0xff3a) return c + 32;
  return c;
}

template <class F>
std::string map_case(std::string_view s, F f) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t len = 0;
    const uint32_t cp = decode(s, i, len);
    if (len == 1 && cp >= 0x80) {
      out += s[i];  // stray byte: copy
    } else {
      std::string special;
      const uint32_t m = f(cp, special);
      if (m == 0 && !special.empty()) out += special;
      else append_utf8(out, m);
    }
    i += len;
  }
  return out;
}

bool word_byte(unsigned char c) { return std::isalnum(c) || c == '_'; }

}  // namespace

size_t whitespace_at(std::string_view s, size_t i) {
  if (i >= s.size()) return 0;
  size_t len = 0;
  const uint32_t cp = decode(s, i, len);
  return js_space(cp) && !(len == 1 && cp >= 0x80) ? len : 0;
}

size_t whitespace_before(std::string_view s, size_t end) {
  if (end == 0) return 0;
  if (static_cast<unsigned char>(s[end - 1]) < 0x80) return whitespace_at(s, end - 1);
  size_t start = end - 1;
  while (start > 0 && end - start < 4 && (static_cast<unsigned char>(s[start]) & 0xc0) == 0x80) --start;
  const size_t len = whitespace_at(s, start);
  return start + len == end ? len : 0;
}

std::string trim_start(std::string_view s) {
  size_t i = 0;
  while (size_t n = whitespace_at(s, i)) i += n;
  return std::string(s.substr(i));
}

std::string trim_end(std::string_view s) {
  size_t end = s.size();
  while (size_t n = whitespace_before(s, end)) end -= n;
  return std::string(s.substr(0, end));
}

std::string trim(std::string_view s) { return trim_end(trim_start(s)); }

size_t utf16_length(std::string_view s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size();) {
    size_t len = 0;
    const uint32_t cp = decode(s, i, len);
    n += cp >= 0x10000 ? 2 : 1;
    i += len;
  }
  return n;
}

std::vector<std::string> code_points(std::string_view s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    size_t len = 0;
    decode(s, i, len);
    out.emplace_back(s.substr(i, len));
    i += len;
  }
  return out;
}

std::string to_upper(std::string_view s) { return map_case(s, upper_cp); }
std::string to_lower(std::string_view s) { return map_case(s, lower_cp); }

std::string title_case(std::string_view s) {
  std::string out(s);
  for (size_t i = 0; i < out.size(); ++i) {
    const auto c = static_cast<unsigned char>(out[i]);
    const bool boundary = i == 0 || !word_byte(static_cast<unsigned char>(out[i - 1]));
    if (boundary && c >= 'a' && c <= 'z') out[i] = static_cast<char>(c - 32);
  }
  return out;
}

std::string capitalize(std::string_view s) {
  if (s.empty()) return "";
  size_t len = 0;
  const uint32_t cp = decode(s, 0, len);
  if (cp >= 0x10000) return std::string(s);  // charAt(0) is half a surrogate pair: unchanged
  return to_upper(s.substr(0, len)) + std::string(s.substr(len));
}

std::string sanitize_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    size_t len = 0;
    const uint32_t cp = decode(s, i, len);
    const bool overlong = (len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
    const bool invalid = (len == 1) || overlong || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff);
    if (invalid) {
      out += "\xef\xbf\xbd";
      i += 1;
    } else {
      out.append(s.substr(i, len));
      i += len;
    }
  }
  return out;
}

double parse_int(std::string_view s) {
  const std::string t = trim_start(s);
  size_t i = 0;
  if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
  const size_t digits_start = i;
  while (i < t.size() && t[i] >= '0' && t[i] <= '9') ++i;
  if (i == digits_start) return NAN;
  return std::strtod(t.substr(0, i).c_str(), nullptr);
}

double parse_float(std::string_view s) {
  const std::string t = trim_start(s);
  size_t i = 0;
  if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
  if (t.compare(i, 8, "Infinity") == 0) return t[0] == '-' ? -INFINITY : INFINITY;
  size_t mant = 0;
  while (i < t.size() && std::isdigit(static_cast<unsigned char>(t[i]))) ++i, ++mant;
  if (i < t.size() && t[i] == '.') {
    size_t j = i + 1, frac = 0;
    while (j < t.size() && std::isdigit(static_cast<unsigned char>(t[j]))) ++j, ++frac;
    if (mant + frac > 0) {
      i = j;
      mant += frac;
    }
  }
  if (mant == 0) return NAN;
  if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
    size_t j = i + 1;
    if (j < t.size() && (t[j] == '+' || t[j] == '-')) ++j;
    const size_t exp_start = j;
    while (j < t.size() && std::isdigit(static_cast<unsigned char>(t[j]))) ++j;
    if (j > exp_start) i = j;
  }
  return std::strtod(t.substr(0, i).c_str(), nullptr);
}

}  // namespace lowbit::jinja
