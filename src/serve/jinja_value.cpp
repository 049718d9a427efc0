#include "serve/jinja_value.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "base/error.h"

namespace lowbit::jinja {

namespace {

[[noreturn]] void too_deep() { throw Error("jinja", "value nesting deeper than " + std::to_string(kMaxValueDepth)); }

void check_size(size_t n) {
  if (n > kMaxStringBytes) throw Error("jinja", "string longer than " + std::to_string(kMaxStringBytes) + " bytes");
}

int depth_of(const std::vector<Value>& items) {
  int d = 0;
  for (const Value& v : items) d = std::max(d, v.depth());
  return d + 1;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Value

Value Value::null() {
  Value v;
  v.kind_ = Kind::Null;
  return v;
}

Value Value::boolean(bool b) {
  Value v;
  v.kind_ = Kind::Bool;
  v.bool_ = b;
  return v;
}

Value Value::integer(double x) {
  Value v;
  v.kind_ = Kind::Int;
  v.num_ = x;
  return v;
}

Value Value::floating(double x) {
  Value v;
  v.kind_ = Kind::Float;
  v.num_ = x;
  return v;
}

Value Value::number(double x) {
  return std::isfinite(x) && std::trunc(x) == x ? integer(x) : floating(x);
}

Value Value::string(std::string s) {
  check_size(s.size());
  return string(std::make_shared<const std::string>(std::move(s)));
}

Value Value::string(std::shared_ptr<const std::string> s) {
  Value v;
  v.kind_ = Kind::String;
  v.ptr_ = std::const_pointer_cast<std::string>(std::move(s));
  return v;
}

Value Value::array(std::vector<Value> items, bool tuple) {
  if (items.size() > kMaxListItems) throw Error("jinja", "list longer than " + std::to_string(kMaxListItems) + " items");
  auto data = std::make_shared<ArrayData>();
  data->depth = depth_of(items);
  if (data->depth > kMaxValueDepth) too_deep();
  data->items = std::move(items);
  Value v;
  v.kind_ = tuple ? Kind::Tuple : Kind::Array;
  v.ptr_ = std::move(data);
  return v;
}

Value Value::object(std::shared_ptr<ObjectData> data) {
  int d = 0;
  for (const auto& [key, val] : data->entries) d = std::max(d, val.depth());
  data->depth = d + 1;
  if (data->depth > kMaxValueDepth) too_deep();
  Value v;
  v.kind_ = data->is_namespace ? Kind::Namespace : Kind::Object;
  v.ptr_ = std::move(data);
  return v;
}

Value Value::function(std::shared_ptr<FunctionData> fn) {
  Value v;
  v.kind_ = Kind::Function;
  v.ptr_ = std::move(fn);
  return v;
}

const std::vector<Value>& Value::items() const { return static_cast<const ArrayData*>(ptr_.get())->items; }

const void* Value::identity() const { return kind_ == Kind::String ? nullptr : ptr_.get(); }

int Value::depth() const {
  switch (kind_) {
    case Kind::Array:
    case Kind::Tuple: return static_cast<const ArrayData*>(ptr_.get())->depth;
    case Kind::Object:
    case Kind::Namespace: return obj().depth;
    case Kind::Function: return fn().depth;
    default: return 0;
  }
}

// ---------------------------------------------------------------------------------------------
// ObjectData

const Value* ObjectData::find(std::string_view key) const {
  if (!index_.empty()) {
    auto it = index_.find(std::string(key));
    return it == index_.end() ? nullptr : &entries[it->second].second;
  }
  for (const auto& [k, v] : entries) {
    if (k == key) return &v;
  }
  return nullptr;
}

void ObjectData::set(const std::string& key, Value v) {
  for (size_t i = 0; index_.empty() && i < entries.size(); ++i) {
    if (entries[i].first == key) {
      entries[i].second = std::move(v);
      return;
    }
  }
  if (!index_.empty()) {
    auto it = index_.find(key);
    if (it != index_.end()) {
      entries[it->second].second = std::move(v);
      return;
    }
    index_.emplace(key, entries.size());
  }
  entries.emplace_back(key, std::move(v));
  if (index_.empty() && entries.size() > 8) reindex();
}

void ObjectData::reindex() {
  index_.clear();
  for (size_t i = 0; i < entries.size(); ++i) index_.emplace(entries[i].first, i);
}

// ---------------------------------------------------------------------------------------------
// Types and truthiness

const char* type_name(const Value& v) {
  switch (v.kind()) {
    case Kind::Undefined: return "UndefinedValue";
    case Kind::Null: return "NullValue";
    case Kind::Bool: return "BooleanValue";
    case Kind::Int: return "IntegerValue";
    case Kind::Float: return "FloatValue";
    case Kind::String: return "StringValue";
    case Kind::Array: return "ArrayValue";
    case Kind::Tuple: return "TupleValue";
    case Kind::Object: return v.obj().is_kwargs ? "KeywordArgumentsValue" : "ObjectValue";
    case Kind::Namespace: return "NamespaceValue";
    case Kind::Function: return "FunctionValue";
  }
  return "?";
}

bool truthy(const Value& v) {
  switch (v.kind()) {
    case Kind::Undefined:
    case Kind::Null: return false;
    case Kind::Bool: return v.as_bool();
    case Kind::Int:
    case Kind::Float: return v.as_number() != 0 && !std::isnan(v.as_number());
    case Kind::String: return !v.str().empty();
    case Kind::Array:
    case Kind::Tuple: return !v.items().empty();
    case Kind::Object: return v.obj().size() > 0;
    case Kind::Namespace:
    case Kind::Function: return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Number and value printing

std::string js_number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  if (v == 0) return "0";
  std::string sign = v < 0 ? "-" : "";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, std::fabs(v), std::chars_format::scientific);
  std::string_view sv(buf, static_cast<size_t>(res.ptr - buf));
  size_t epos = sv.find('e');
  std::string digits(1, sv[0]);
  if (epos > 1) digits += sv.substr(2, epos - 2);
  int exp10 = 0;
  std::from_chars(sv.data() + epos + (sv[epos + 1] == '+' ? 2 : 1), sv.data() + sv.size(), exp10);
  const int k = static_cast<int>(digits.size()), n = exp10 + 1;
  if (k <= n && n <= 21) return sign + digits + std::string(static_cast<size_t>(n - k), '0');
  if (0 < n && n <= 21) return sign + digits.substr(0, static_cast<size_t>(n)) + "." + digits.substr(static_cast<size_t>(n));
  if (-6 < n && n <= 0) return sign + "0." + std::string(static_cast<size_t>(-n), '0') + digits;
  std::string e = std::string(n - 1 >= 0 ? "e+" : "e-") + std::to_string(std::abs(n - 1));
  if (k == 1) return sign + digits + e;
  return sign + digits.substr(0, 1) + "." + digits.substr(1) + e;
}

namespace {

// FloatValue.toString(): integral values keep one decimal (toFixed(1)), -0 prints "-0.0".
std::string float_display(double v) {
  if (v == 0 && std::signbit(v)) return "-0.0";
  if (std::isfinite(v) && std::fmod(v, 1.0) == 0) {
    if (std::fabs(v) >= 1e21) return js_number(v);
    char buf[400];
    std::snprintf(buf, sizeof buf, "%.1f", v);
    return buf;
  }
  return js_number(v);
}

const char* kFunctionText = "function () { [native code] }";

void append_json_string(std::string& out, std::string_view s, bool ensure_ascii) {
  static const char* kHex = "0123456789abcdef";
  auto hex4 = [&](unsigned u) {
    out += "\\u";
    for (int sh = 12; sh >= 0; sh -= 4) out += kHex[(u >> sh) & 15];
  };
  out += '"';
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"': out += "\\\""; continue;
      case '\\': out += "\\\\"; continue;
      case '\b': out += "\\b"; continue;
      case '\f': out += "\\f"; continue;
      case '\n': out += "\\n"; continue;
      case '\r': out += "\\r"; continue;
      case '\t': out += "\\t"; continue;
      default: break;
    }
    if (c < 0x20) {
      hex4(c);
    } else if (!ensure_ascii || c < 0x7f) {
      out += static_cast<char>(c);
    } else if (c == 0x7f) {
      hex4(c);
    } else {
      // Decode one code point (input is valid UTF-8) and escape its UTF-16 code units.
      unsigned cp = 0;
      size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
      cp = c & (len == 2 ? 0x1f : len == 3 ? 0x0f : 0x07);
      for (size_t j = 1; j < len && i + j < s.size(); ++j) cp = (cp << 6) | (static_cast<unsigned char>(s[i + j]) & 0x3f);
      i += len - 1;
      if (cp >= 0x10000) {
        cp -= 0x10000;
        hex4(0xd800 + (cp >> 10));
        hex4(0xdc00 + (cp & 0x3ff));
      } else {
        hex4(cp);
      }
    }
  }
  out += '"';
}

struct JsonWriter {
  const JsonOptions& opts;
  bool undefined_as_null;
  std::string item_sep, key_sep, indent_unit;

  void write(std::string& out, const Value& v, int depth) {
    if (depth > kMaxValueDepth) too_deep();
    check_size(out.size());
    switch (v.kind()) {
      case Kind::Null: out += "null"; return;
      case Kind::Undefined: out += undefined_as_null ? "null" : "undefined"; return;
      case Kind::Bool: out += v.as_bool() ? "true" : "false"; return;
      case Kind::Int:
      case Kind::Float: out += std::isfinite(v.as_number()) ? js_number(v.as_number()) : "null"; return;
      case Kind::String: append_json_string(out, v.str(), opts.ensure_ascii); return;
      case Kind::Array: write_array(out, v.items(), depth); return;
      case Kind::Object:
      case Kind::Namespace: write_object(out, v.obj(), depth); return;
      case Kind::Tuple:  // the reference's toJSON has no case for tuples
      case Kind::Function: throw Error("jinja", std::string("Cannot convert to JSON: ") + type_name(v));
    }
  }

  std::string padding(int depth) const {
    check_size(indent_unit.size() * static_cast<size_t>(depth + 1));
    std::string p = "\n";
    for (int i = 0; i < depth; ++i) p += indent_unit;
    return p;
  }

  void write_array(std::string& out, const std::vector<Value>& items, int depth) {
    const bool pretty = opts.indent > 0 && !items.empty();
    const std::string base = pretty ? padding(depth) : "", child = base + (pretty ? indent_unit : "");
    out += '[';
    for (size_t i = 0; i < items.size(); ++i) {
      if (i > 0) out += item_sep;
      out += child;
      write(out, items[i], depth + 1);
    }
    out += base;
    out += ']';
  }

  void write_object(std::string& out, const ObjectData& obj, int depth) {
    std::vector<const std::pair<std::string, Value>*> entries;
    for (const auto& e : obj.entries) entries.push_back(&e);
    if (opts.sort_keys) {
      std::stable_sort(entries.begin(), entries.end(), [](auto* a, auto* b) { return a->first < b->first; });
    }
    const bool pretty = opts.indent > 0 && !entries.empty();
    const std::string base = pretty ? padding(depth) : "", child = base + (pretty ? indent_unit : "");
    out += '{';
    for (size_t i = 0; i < entries.size(); ++i) {
      if (i > 0) out += item_sep;
      out += child;
      append_json_string(out, entries[i]->first, opts.ensure_ascii);
      out += key_sep;
      write(out, entries[i]->second, depth + 1);
    }
    out += base;
    out += '}';
  }
};

}  // namespace

std::string to_json(const Value& v, const JsonOptions& opts, bool undefined_as_null) {
  JsonWriter w{opts, undefined_as_null, ", ", ": ", ""};
  if (opts.custom_separators) {
    w.item_sep = opts.item_separator;
    w.key_sep = opts.key_separator;
  } else if (opts.indent > 0) {
    w.item_sep = ",";
  }
  if (opts.indent > 0) {
    check_size(static_cast<size_t>(opts.indent));
    w.indent_unit.assign(static_cast<size_t>(opts.indent), ' ');
  }
  std::string out;
  w.write(out, v, 0);
  check_size(out.size());
  return out;
}

std::string display(const Value& v) {
  switch (v.kind()) {
    case Kind::Undefined: return "undefined";
    case Kind::Null: return "null";
    case Kind::Bool: return v.as_bool() ? "true" : "false";
    case Kind::Int: return js_number(v.as_number());
    case Kind::Float: return float_display(v.as_number());
    case Kind::String: return v.str();
    case Kind::Function: return kFunctionText;
    default: return to_json(v, JsonOptions{}, false);
  }
}

std::string raw_string(const Value& v) {
  switch (v.kind()) {
    case Kind::Int:
    case Kind::Float: return js_number(v.as_number());
    case Kind::Array:
    case Kind::Tuple: {
      std::string out;
      for (size_t i = 0; i < v.items().size(); ++i) {
        if (i > 0) out += ',';
        out += display(v.items()[i]);
        check_size(out.size());
      }
      return out;
    }
    case Kind::Object:
    case Kind::Namespace: return "[object Map]";
    default: return display(v);
  }
}

// ---------------------------------------------------------------------------------------------
// Equality (JavaScript semantics on the underlying values)

namespace {

enum class JsType { Undefined, Null, Number, String, Boolean, Object };

JsType js_type(const Value& v) {
  switch (v.kind()) {
    case Kind::Undefined: return JsType::Undefined;
    case Kind::Null: return JsType::Null;
    case Kind::Bool: return JsType::Boolean;
    case Kind::Int:
    case Kind::Float: return JsType::Number;
    case Kind::String: return JsType::String;
    default: return JsType::Object;
  }
}

// StringToNumber: whitespace-trimmed decimal, Infinity, 0x/0o/0b integers; "" is 0; else NaN.
double string_to_number(std::string_view s) {
  const std::string t = trim(s);
  if (t.empty()) return 0;
  std::string_view body = t;
  bool neg = false;
  if (body[0] == '+' || body[0] == '-') {
    neg = body[0] == '-';
    body.remove_prefix(1);
  }
  if (body == "Infinity") return neg ? -INFINITY : INFINITY;
  if (body.size() > 2 && body[0] == '0' && std::string_view("xXoObB").find(body[1]) != std::string_view::npos) {
    if (t[0] == '+' || t[0] == '-') return NAN;
    const int base = (body[1] == 'x' || body[1] == 'X') ? 16 : (body[1] == 'o' || body[1] == 'O') ? 8 : 2;
    double r = 0;
    for (char c : body.substr(2)) {
      int d = std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : std::isxdigit(static_cast<unsigned char>(c)) ? (std::tolower(c) - 'a' + 10) : 99;
      if (d >= base) return NAN;
      r = r * base + d;
    }
    return r;
  }
  // Decimal literal: digits [. digits] [e[+-]digits] with at least one digit in the mantissa.
  size_t i = 0, mant = 0;
  while (i < body.size() && std::isdigit(static_cast<unsigned char>(body[i]))) ++i, ++mant;
  if (i < body.size() && body[i] == '.') {
    ++i;
    while (i < body.size() && std::isdigit(static_cast<unsigned char>(body[i]))) ++i, ++mant;
  }
  if (mant == 0) return NAN;
  if (i < body.size() && (body[i] == 'e' || body[i] == 'E')) {
    size_t j = i + 1;
    if (j < body.size() && (body[j] == '+' || body[j] == '-')) ++j;
    size_t digits = 0;
    while (j < body.size() && std::isdigit(static_cast<unsigned char>(body[j]))) ++j, ++digits;
    if (digits == 0) return NAN;
    i = j;
  }
  if (i != body.size()) return NAN;
  return std::strtod(t.c_str(), nullptr);
}

}  // namespace

bool strict_equal(const Value& a, const Value& b) {
  const JsType ta = js_type(a), tb = js_type(b);
  if (ta != tb) return false;
  switch (ta) {
    case JsType::Undefined:
    case JsType::Null: return true;
    case JsType::Boolean: return a.as_bool() == b.as_bool();
    case JsType::Number: return a.as_number() == b.as_number();
    case JsType::String: return a.str() == b.str();
    case JsType::Object: return a.identity() == b.identity();
  }
  return false;
}

bool loose_equal(const Value& a, const Value& b) {
  const JsType ta = js_type(a), tb = js_type(b);
  if (ta == tb) return strict_equal(a, b);
  auto nullish = [](JsType t) { return t == JsType::Null || t == JsType::Undefined; };
  if (nullish(ta) || nullish(tb)) return nullish(ta) && nullish(tb);
  if (ta == JsType::Number && tb == JsType::String) return a.as_number() == string_to_number(b.str());
  if (ta == JsType::String && tb == JsType::Number) return string_to_number(a.str()) == b.as_number();
  if (ta == JsType::Boolean) return loose_equal(Value::integer(a.as_bool() ? 1 : 0), b);
  if (tb == JsType::Boolean) return loose_equal(a, Value::integer(b.as_bool() ? 1 : 0));
  if (ta == JsType::Object) return loose_equal(Value::string(raw_string(a)), b);
  if (tb == JsType::Object) return loose_equal(a, Value::string(raw_string(b)));
  return false;
}

// ---------------------------------------------------------------------------------------------
// JSON input

namespace {

// ECMAScript array index: "0" or [1-9][0-9]* below 2^32 - 1. Such keys enumerate first, ascending.
bool array_index_key(const std::string& k, uint64_t& value) {
  if (k.empty() || k.size() > 10 || (k.size() > 1 && k[0] == '0')) return false;
  value = 0;
  for (char c : k) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  return value < 4294967295ULL;
}

Value convert(const nlohmann::ordered_json& j, int depth) {
  if (depth > kMaxValueDepth) too_deep();
  using T = nlohmann::ordered_json::value_t;
  switch (j.type()) {
    case T::null:
    case T::discarded: return Value::null();
    case T::boolean: return Value::boolean(j.get<bool>());
    case T::number_integer: return Value::integer(static_cast<double>(j.get<int64_t>()));
    case T::number_unsigned: return Value::integer(static_cast<double>(j.get<uint64_t>()));
    case T::number_float: return Value::number(j.get<double>());
    case T::string: return Value::string(j.get<std::string>());
    case T::binary: throw Error("jinja", "binary JSON values are not supported");
    case T::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& e : j) items.push_back(convert(e, depth + 1));
      return Value::array(std::move(items));
    }
    case T::object: {
      auto data = std::make_shared<ObjectData>();
      std::vector<std::pair<uint64_t, const std::string*>> numeric;
      for (const auto& [key, val] : j.items()) {
        uint64_t idx = 0;
        if (array_index_key(key, idx)) numeric.emplace_back(idx, &key);
      }
      std::sort(numeric.begin(), numeric.end());
      for (const auto& [idx, key] : numeric) data->set(*key, convert(j.at(*key), depth + 1));
      for (const auto& [key, val] : j.items()) {
        uint64_t idx = 0;
        if (!array_index_key(key, idx)) data->set(key, convert(val, depth + 1));
      }
      return Value::object(std::move(data));
    }
  }
  return Value::undefined();
}

}  // namespace

Value from_json(const nlohmann::ordered_json& j) { return convert(j, 0); }

}  // namespace lowbit::jinja
