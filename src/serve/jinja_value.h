// Runtime values of the Jinja interpreter (internal to src/serve/jinja*.cpp).
//
// The interpreter reproduces @huggingface/jinja, a JavaScript renderer, so values follow its
// model: numbers are doubles tagged Int or Float, strings are UTF-8 here but measured in UTF-16
// code units where the reference measures them (length, indexing), and `==` is JavaScript's
// loose equality of the underlying values. Containers are shared (reference semantics, identity
// compared by pointer). Arrays and objects are immutable once built; namespaces are the only
// mutable container, so every reference cycle goes through a namespace or a macro's scope (the
// interpreter breaks those at the end of a render).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace lowbit::jinja {

enum class Kind : uint8_t { Undefined, Null, Bool, Int, Float, String, Array, Tuple, Object, Namespace, Function };

struct ArrayData;
struct ObjectData;
struct FunctionData;
class Value;

using Args = std::vector<Value>;

class Value {
 public:
  Value() = default;
  static Value undefined() { return Value(); }
  static Value null();
  static Value boolean(bool b);
  static Value integer(double v);  // an integer-valued double (JavaScript number)
  static Value floating(double v);
  static Value number(double v);  // Int when integral and finite, else Float (reference's input rule)
  static Value string(std::string s);
  static Value string(std::shared_ptr<const std::string> s);
  static Value array(std::vector<Value> items, bool tuple = false);
  static Value object(std::shared_ptr<ObjectData> data);  // Object or Namespace, per data->is_namespace
  static Value function(std::shared_ptr<FunctionData> fn);

  Kind kind() const { return kind_; }
  bool is(Kind k) const { return kind_ == k; }
  bool is_undefined() const { return kind_ == Kind::Undefined; }
  bool is_null() const { return kind_ == Kind::Null; }
  bool is_number() const { return kind_ == Kind::Int || kind_ == Kind::Float; }
  bool is_string() const { return kind_ == Kind::String; }
  bool is_array() const { return kind_ == Kind::Array || kind_ == Kind::Tuple; }  // ArrayValue or TupleValue
  bool is_object() const { return kind_ == Kind::Object; }                         // ObjectValue (and subclasses)
  bool is_attribute_container() const { return kind_ == Kind::Object || kind_ == Kind::Namespace; }

  bool as_bool() const { return bool_; }
  double as_number() const { return num_; }
  const std::string& str() const { return *static_cast<const std::string*>(ptr_.get()); }
  std::shared_ptr<const std::string> str_ptr() const { return std::static_pointer_cast<const std::string>(ptr_); }
  const std::vector<Value>& items() const;
  ObjectData& obj() const { return *static_cast<ObjectData*>(ptr_.get()); }
  std::shared_ptr<ObjectData> obj_ptr() const { return std::static_pointer_cast<ObjectData>(ptr_); }
  const FunctionData& fn() const { return *static_cast<const FunctionData*>(ptr_.get()); }
  const void* identity() const;  // the container/function pointer; null for primitives

  // Nesting depth of containers (0 for primitives), checked against kMaxValueDepth on creation.
  int depth() const;

 private:
  Kind kind_ = Kind::Undefined;
  bool bool_ = false;
  double num_ = 0;
  std::shared_ptr<void> ptr_;  // std::string (String), ArrayData, ObjectData or FunctionData per kind_
};

// Deepest container nesting a render may build or receive (JSON input included).
inline constexpr int kMaxValueDepth = 512;
// Longest string (bytes) any operation may build, the rendered output included.
inline constexpr size_t kMaxStringBytes = size_t(16) << 20;
// Longest list any operation may build (JSON input included).
inline constexpr size_t kMaxListItems = size_t(1) << 20;

struct ArrayData {
  std::vector<Value> items;
  int depth = 1;
};

// Insertion-ordered string-keyed map. Object = ObjectValue; with is_kwargs it is the reference's
// KeywordArgumentsValue; with is_namespace a NamespaceValue (mutable, no builtins).
struct ObjectData {
  std::vector<std::pair<std::string, Value>> entries;
  bool is_kwargs = false;
  bool is_namespace = false;
  int depth = 1;

  const Value* find(std::string_view key) const;
  void set(const std::string& key, Value v);  // replaces in place or appends
  void clear() {
    entries.clear();
    index_.clear();
  }
  size_t size() const { return entries.size(); }

 private:
  std::unordered_map<std::string, size_t> index_;  // built once the map grows past a few keys
  void reindex();
};

struct CallContext;  // defined by the interpreter
// A callable: builtin, bound method, macro or call-block caller. `impl` receives the positional
// arguments (a trailing kwargs object carries keyword arguments, as in the reference).
struct FunctionData {
  std::function<Value(Args&, CallContext&)> impl;
  int depth = 1;
};

// The reference's type names, used in error messages ("IntegerValue", "KeywordArgumentsValue"...).
const char* type_name(const Value& v);
bool truthy(const Value& v);

// --- JavaScript-compatible conversions -------------------------------------------------------
std::string js_number(double v);           // Number.prototype.toString()
std::string display(const Value& v);        // RuntimeValue.toString(): how `{{ v }}` prints
std::string raw_string(const Value& v);     // String(v.value): operand of `~`, `+` with a string
bool loose_equal(const Value& a, const Value& b);   // a.value == b.value
bool strict_equal(const Value& a, const Value& b);  // a.value === b.value

struct JsonOptions {
  int indent = 0;  // 0: compact
  bool ensure_ascii = false;
  bool sort_keys = false;
  bool custom_separators = false;
  std::string item_separator, key_separator;
};
// toJSON(value): undefined prints as "null" (or "undefined" when !undefined_as_null).
std::string to_json(const Value& v, const JsonOptions& opts, bool undefined_as_null = true);

// JSON context -> values. Keys keep JavaScript's own-property order (array-index keys first).
Value from_json(const nlohmann::ordered_json& j);

// --- UTF-8 helpers with JavaScript semantics ---------------------------------------------------
void append_utf8(std::string& out, uint32_t code_point);
size_t whitespace_at(std::string_view s, size_t i);      // bytes of a JS whitespace char at i, or 0
size_t whitespace_before(std::string_view s, size_t end); // bytes of a JS whitespace char ending at end
std::string trim_start(std::string_view s);
std::string trim_end(std::string_view s);
std::string trim(std::string_view s);
size_t utf16_length(std::string_view s);
std::vector<std::string> code_points(std::string_view s);  // Array.from(str)
std::string to_upper(std::string_view s);
std::string to_lower(std::string_view s);
std::string title_case(std::string_view s);   // /\b\w/g -> upper
std::string capitalize(std::string_view s);   // first code unit upper, rest unchanged
std::string sanitize_utf8(std::string_view s);  // invalid sequences -> U+FFFD (as Node decodes files)
double parse_int(std::string_view s);   // parseInt(s, 10); NaN when no digits
double parse_float(std::string_view s); // parseFloat(s)

}  // namespace lowbit::jinja
