// Globals, value methods and tests of the Jinja interpreter, after @huggingface/jinja's runtime.
// Filters are in jinja_filters.cpp.
#include <cmath>
#include <ctime>

#include "serve/jinja_builtins_util.h"

namespace lowbit::jinja {

// ---------------------------------------------------------------------------------------------
// Shared helpers (declared in jinja_builtins_util.h)

Value make_function(std::function<Value(Args&, CallContext&)> impl, int depth) {
  auto d = std::make_shared<FunctionData>();
  d->impl = std::move(impl);
  d->depth = depth;
  if (d->depth > kMaxValueDepth) throw Error("jinja", "value nesting deeper than " + std::to_string(kMaxValueDepth));
  return Value::function(std::move(d));
}

bool is_kwargs(const Value& v) { return v.is_object() && v.obj().is_kwargs; }

const Value* kwarg(const std::shared_ptr<ObjectData>& kw, const char* name) { return kw ? kw->find(name) : nullptr; }

bool raw_truthy(const Value& v) {
  switch (v.kind()) {
    case Kind::Undefined:
    case Kind::Null: return false;
    case Kind::Bool: return v.as_bool();
    case Kind::Int:
    case Kind::Float: return v.as_number() != 0 && !std::isnan(v.as_number());
    case Kind::String: return !v.str().empty();
    default: return true;  // JavaScript objects are always truthy
  }
}

std::string join_element(const Value& v) { return v.is_null() || v.is_undefined() ? "" : raw_string(v); }

int compare_values(Interpreter& in, const Value& a, const Value& b, bool case_sensitive) {
  if (a.is_null() && b.is_null()) return 0;
  if (a.is_null() || b.is_null()) in.fail(std::string("Cannot compare ") + type_name(a) + " with " + type_name(b));
  if (a.is_undefined() && b.is_undefined()) return 0;
  if (a.is_undefined() || b.is_undefined()) in.fail(std::string("Cannot compare ") + type_name(a) + " with " + type_name(b));
  auto numeric = [](const Value& v) { return v.is_number() || v.is(Kind::Bool); };
  if (numeric(a) && numeric(b)) {
    const double x = a.is(Kind::Bool) ? a.as_bool() : a.as_number(), y = b.is(Kind::Bool) ? b.as_bool() : b.as_number();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.kind() != b.kind()) in.fail(std::string("Cannot compare different types: ") + type_name(a) + " and " + type_name(b));
  if (!a.is_string()) in.fail(std::string("Cannot compare type: ") + type_name(a));
  const std::string x = case_sensitive ? a.str() : to_lower(a.str());
  const std::string y = case_sensitive ? b.str() : to_lower(b.str());
  return x < y ? -1 : x > y ? 1 : 0;
}

Value attribute_path(const Value& item, const std::string& path) {
  Value v = item;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    const std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (v.is_attribute_container()) {
      const Value* f = v.obj().find(part);
      v = f ? *f : Value();
    } else if (v.is_array()) {
      const double idx = parse_int(part);
      if (std::isnan(idx) || idx < 0 || idx >= static_cast<double>(v.items().size())) return Value();
      v = v.items()[static_cast<size_t>(idx)];
    } else {
      return Value();
    }
    if (dot == std::string::npos) return v;
    start = dot + 1;
  }
}

std::string js_replace(const std::string& s, const std::string& from, const std::string& to, const Value& count) {
  if (count.is(Kind::Int) && count.as_number() == 0) return s;
  double remaining = (count.is_null() || count.as_number() < 0) ? INFINITY : count.as_number();
  std::string out;
  if (from.empty()) {  // matches at every code point boundary, the end included
    const std::vector<std::string> cps = code_points(s);
    for (size_t i = 0; i <= cps.size(); ++i) {
      if (remaining > 0) {
        out += to;
        --remaining;
      }
      if (i < cps.size()) out += cps[i];
      if (out.size() > kMaxStringBytes) break;
    }
    return out;
  }
  size_t pos = 0;
  while (remaining > 0) {
    const size_t hit = s.find(from, pos);
    if (hit == std::string::npos) break;
    out.append(s, pos, hit - pos);
    out += to;
    pos = hit + from.size();
    --remaining;
    if (out.size() > kMaxStringBytes) break;
  }
  out.append(s, pos, std::string::npos);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Methods of strings, objects and arrays

namespace {

using StrPtr = std::shared_ptr<const std::string>;

Value string_method(StrPtr s, std::string (*f)(std::string_view)) {
  return make_function([s, f](Args&, CallContext&) { return Value::string(f(*s)); });
}

Value affix_method(StrPtr s, bool prefix) {
  const char* name = prefix ? "startswith" : "endswith";
  return make_function([s, prefix, name](Args& args, CallContext& ctx) {
    auto test = [&](const std::string& p) {
      if (p.size() > s->size()) return false;
      return prefix ? s->compare(0, p.size(), p) == 0 : s->compare(s->size() - p.size(), p.size(), p) == 0;
    };
    if (args.empty()) ctx.interp.fail(std::string(name) + "() requires at least one argument");
    const Value& pattern = args[0];
    if (pattern.is_string()) return Value::boolean(test(pattern.str()));
    if (!pattern.is_array()) ctx.interp.fail(std::string(name) + "() argument must be a string or tuple of strings");
    for (const Value& item : pattern.items()) {
      if (!item.is_string()) ctx.interp.fail(std::string(name) + "() tuple elements must be strings");
      if (test(item.str())) return Value::boolean(true);
    }
    return Value::boolean(false);
  });
}

Value split_string(Interpreter& in, const std::string& s, const Args& args) {
  const Value sep = args.size() > 0 ? args[0] : Value::null();
  if (!sep.is_string() && !sep.is_null()) in.fail("sep argument must be a string or null");
  const Value maxsplit = args.size() > 1 ? args[1] : Value::integer(-1);
  if (!maxsplit.is(Kind::Int)) in.fail("maxsplit argument must be a number");
  const double max = maxsplit.as_number();
  std::vector<Value> parts;
  if (sep.is_null()) {
    const std::string text = trim_start(s);
    size_t i = 0;
    while (i < text.size()) {
      const size_t start = i;
      while (i < text.size() && whitespace_at(text, i) == 0) ++i;
      if (max >= 0 && static_cast<double>(parts.size()) >= max) {
        parts.push_back(Value::string(text.substr(start)));
        break;
      }
      parts.push_back(Value::string(text.substr(start, i - start)));
      while (size_t n = whitespace_at(text, i)) i += n;
    }
  } else {
    const std::string& d = sep.str();
    if (d.empty()) in.fail("empty separator");
    std::vector<std::string> pieces;
    size_t pos = 0;
    for (size_t hit; (hit = s.find(d, pos)) != std::string::npos; pos = hit + d.size()) pieces.push_back(s.substr(pos, hit - pos));
    pieces.push_back(s.substr(pos));
    if (max >= 0 && static_cast<double>(pieces.size()) > max) {
      std::string rest;
      for (size_t i = static_cast<size_t>(max); i < pieces.size(); ++i) rest += (i > static_cast<size_t>(max) ? d : "") + pieces[i];
      pieces.resize(static_cast<size_t>(max));
      pieces.push_back(rest);
    }
    for (std::string& p : pieces) parts.push_back(Value::string(std::move(p)));
  }
  in.count_iterations(parts.size());
  return Value::array(std::move(parts));
}

Value string_member(const Value& object, const std::string& name) {
  StrPtr s = object.str_ptr();
  if (name == "length") return Value::integer(static_cast<double>(utf16_length(*s)));
  if (name == "upper") return string_method(s, to_upper);
  if (name == "lower") return string_method(s, to_lower);
  if (name == "strip") return string_method(s, trim);
  if (name == "lstrip") return string_method(s, trim_start);
  if (name == "rstrip") return string_method(s, trim_end);
  if (name == "title") return string_method(s, title_case);
  if (name == "capitalize") return string_method(s, capitalize);
  if (name == "startswith") return affix_method(s, true);
  if (name == "endswith") return affix_method(s, false);
  if (name == "split") return make_function([s](Args& args, CallContext& ctx) { return split_string(ctx.interp, *s, args); });
  if (name == "replace") {
    return make_function([s](Args& args, CallContext& ctx) {
      Interpreter& in = ctx.interp;
      if (args.size() < 2) in.fail("replace() requires at least two arguments");
      if (!args[0].is_string() || !args[1].is_string()) in.fail("replace() arguments must be strings");
      Value count = Value::null();
      if (args.size() > 2) {
        const Value* c = is_kwargs(args[2]) ? args[2].obj().find("count") : &args[2];
        count = c ? *c : Value::null();
      }
      if (!count.is(Kind::Int) && !count.is_null()) in.fail("replace() count argument must be a number or null");
      return Value::string(js_replace(*s, args[0].str(), args[1].str(), count));
    });
  }
  return Value();
}

Value dictsort(Interpreter& in, const Value& object, Args& args) {
  std::shared_ptr<ObjectData> kw;
  Args positional;
  for (const Value& a : args) {
    if (is_kwargs(a)) kw = a.obj_ptr();
    else positional.push_back(a);
  }
  auto pick = [&](size_t i, const char* name, Value fallback) {
    if (i < positional.size()) return positional[i];
    const Value* v = kwarg(kw, name);
    return v ? *v : fallback;
  };
  const Value case_sensitive = pick(0, "case_sensitive", Value::boolean(false));
  if (!case_sensitive.is(Kind::Bool)) in.fail("case_sensitive must be a boolean");
  const Value by = pick(1, "by", Value::string("key"));
  if (!by.is_string()) in.fail("by must be a string");
  if (by.str() != "key" && by.str() != "value") in.fail("by must be either 'key' or 'value'");
  const Value reverse = pick(2, "reverse", Value::boolean(false));
  if (!reverse.is(Kind::Bool)) in.fail("reverse must be a boolean");
  std::vector<Value> pairs;
  for (const auto& [key, val] : object.obj().entries) pairs.push_back(Value::array({Value::string(key), val}));
  const size_t idx = by.str() == "key" ? 0 : 1;
  std::stable_sort(pairs.begin(), pairs.end(), [&](const Value& a, const Value& b) {
    const int r = compare_values(in, a.items()[idx], b.items()[idx], case_sensitive.as_bool());
    return (reverse.as_bool() ? -r : r) < 0;
  });
  return Value::array(std::move(pairs));
}

Value object_member(const Value& object, const std::string& name) {
  const int depth = object.depth() + 1;
  if (name == "get") {
    return make_function(
        [object](Args& args, CallContext& ctx) {
          const Value key = args.empty() ? Value() : args[0];
          if (!key.is_string()) ctx.interp.fail(std::string("Object key must be a string: got ") + type_name(key));
          if (const Value* v = object.obj().find(key.str())) return *v;
          return args.size() > 1 ? args[1] : Value::null();
        },
        depth);
  }
  if (name == "items" || name == "keys" || name == "values") {
    return make_function(
        [object, name](Args&, CallContext& ctx) {
          std::vector<Value> out;
          for (const auto& [key, val] : object.obj().entries) {
            if (name == "items") out.push_back(Value::array({Value::string(key), val}));
            else out.push_back(name == "keys" ? Value::string(key) : val);
          }
          ctx.interp.count_iterations(out.size());
          return Value::array(std::move(out));
        },
        depth);
  }
  if (name == "dictsort") {
    return make_function([object](Args& args, CallContext& ctx) { return dictsort(ctx.interp, object, args); }, depth);
  }
  return Value();
}

}  // namespace

Value builtin_member(Interpreter&, const Value& object, const std::string& name) {
  if (object.is_string()) return string_member(object, name);
  if (object.is_array()) return name == "length" ? Value::integer(static_cast<double>(object.items().size())) : Value();
  if (object.is_object()) return object_member(object, name);
  return Value();
}

Value string_at(const std::string& s, double index) {
  const double len = static_cast<double>(utf16_length(s));
  const double i = index < 0 ? len + index : index;
  if (i < 0 || i >= len) return Value();
  double pos = 0;
  for (const std::string& cp : code_points(s)) {
    const bool astral = cp.size() == 4;
    if (pos == i) return Value::string(astral ? "\xef\xbf\xbd" : cp);
    if (astral && pos + 1 == i) return Value::string("\xef\xbf\xbd");
    pos += astral ? 2 : 1;
  }
  return Value();
}

std::vector<size_t> slice_indexes(size_t n, const Value& start_v, const Value& stop_v, const Value& step_v) {
  const long long len = static_cast<long long>(n);
  const long long step = step_v.is_undefined() ? 1 : static_cast<long long>(step_v.as_number());
  std::vector<size_t> out;
  if (step == 0) return out;
  long long start, stop;
  if (step > 0) {
    start = start_v.is_undefined() ? 0 : static_cast<long long>(start_v.as_number());
    stop = stop_v.is_undefined() ? len : static_cast<long long>(stop_v.as_number());
    start = start < 0 ? std::max(len + start, 0LL) : std::min(start, len);
    stop = stop < 0 ? std::max(len + stop, 0LL) : std::min(stop, len);
    for (long long i = start; i < stop; i += step) out.push_back(static_cast<size_t>(i));
  } else {
    start = start_v.is_undefined() ? len - 1 : static_cast<long long>(start_v.as_number());
    stop = stop_v.is_undefined() ? -1 : static_cast<long long>(stop_v.as_number());
    start = start < 0 ? std::max(len + start, -1LL) : std::min(start, len - 1);
    stop = stop < -1 ? std::max(len + stop, -1LL) : std::min(stop, len - 1);
    for (long long i = start; i > stop; i += step) out.push_back(static_cast<size_t>(i));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Tests

bool run_test(Interpreter& in, const std::string& name, const Args& args) {
  const Value& a = args[0];
  const Value b = args.size() > 1 ? args[1] : Value();
  if (name == "boolean") return a.is(Kind::Bool);
  if (name == "callable") return a.is(Kind::Function);
  if (name == "odd" || name == "even") {
    if (!a.is(Kind::Int)) in.fail("cannot " + name + " on " + type_name(a));
    const bool even = std::fmod(a.as_number(), 2) == 0;
    return name == "even" ? even : !even;
  }
  if (name == "false") return a.is(Kind::Bool) && !a.as_bool();
  if (name == "true") return a.is(Kind::Bool) && a.as_bool();
  if (name == "none") return a.is_null();
  if (name == "string") return a.is_string();
  if (name == "number") return a.is_number();
  if (name == "integer") return a.is(Kind::Int);
  if (name == "iterable") return a.is(Kind::Array) || a.is_string();
  if (name == "mapping") return a.is_object();
  if (name == "sequence") return a.is_array() || a.is_object() || a.is_string();
  if (name == "lower") return a.is_string() && a.str() == to_lower(a.str());
  if (name == "upper") return a.is_string() && a.str() == to_upper(a.str());
  if (name == "defined") return !a.is_undefined();
  if (name == "undefined") return a.is_undefined();
  if (name == "equalto" || name == "eq" || name == "sameas") return strict_equal(a, b);
  // lowbit extensions (the reference has no tests with arguments)
  if (name == "ne") return !strict_equal(a, b);
  if (name == "divisibleby") {
    if (!a.is_number() || !b.is_number()) in.fail("divisibleby needs numbers");
    return std::fmod(a.as_number(), b.as_number()) == 0;
  }
  if (name == "gt" || name == "ge" || name == "lt" || name == "le") {
    const int c = compare_values(in, a, b, true);
    return name == "gt" ? c > 0 : name == "ge" ? c >= 0 : name == "lt" ? c < 0 : c <= 0;
  }
  in.fail("Unknown test: " + name);
}

// ---------------------------------------------------------------------------------------------
// Globals

namespace {

Value range_fn(Args& args, CallContext& ctx) {
  Interpreter& in = ctx.interp;
  double v[3] = {0, 0, 1};
  bool given[3] = {false, false, false};
  for (size_t i = 0; i < args.size() && i < 3; ++i) {
    if (args[i].is_undefined()) continue;
    if (!args[i].is_number() && !args[i].is(Kind::Bool)) in.fail("range() arguments must be numbers");
    v[i] = args[i].is(Kind::Bool) ? args[i].as_bool() : args[i].as_number();
    given[i] = true;
  }
  double start = v[0], stop = v[1], step = v[2];
  if (!given[1]) {
    stop = given[0] ? start : NAN;
    start = 0;
  }
  if (step == 0) in.fail("range() step must not be zero");
  const double estimate = std::ceil((stop - start) / step);
  if (estimate > static_cast<double>(in.options().max_loop_iterations)) {
    in.fail("range() of " + js_number(estimate) + " items exceeds the iteration limit");
  }
  std::vector<Value> out;
  if (estimate > 0) out.reserve(static_cast<size_t>(estimate));
  for (double i = start; step > 0 ? i < stop : i > stop; i += step) {
    in.count_iterations(1);
    out.push_back(Value::number(i));
  }
  return Value::array(std::move(out));
}

Value raise_fn(Args& args, CallContext&) {
  const std::string msg = args.empty() || args[0].is_undefined() ? "" : raw_string(args[0]);
  throw TemplateRaise("jinja", msg);
}

Value strftime_fn(Args& args, CallContext& ctx) {
  if (args.empty() || !args[0].is_string()) ctx.interp.fail("strftime_now() expects a format string");
  static const char* kMonths[] = {"January", "February", "March",     "April",   "May",      "June",
                                  "July",    "August",   "September", "October", "November", "December"};
  const std::time_t now = ctx.interp.options().now.value_or(std::time(nullptr));
  std::tm tm{};
  localtime_r(&now, &tm);
  auto pad2 = [](int n) { return (n < 10 ? "0" : "") + std::to_string(n); };
  const std::string& f = args[0].str();
  std::string out;
  for (size_t i = 0; i < f.size(); ++i) {
    const char c = i + 1 < f.size() && f[i] == '%' ? f[i + 1] : '\0';
    std::string rep;
    switch (c) {
      case 'Y': rep = std::to_string(tm.tm_year + 1900); break;
      case 'm': rep = pad2(tm.tm_mon + 1); break;
      case 'd': rep = pad2(tm.tm_mday); break;
      case 'b': rep = std::string(kMonths[tm.tm_mon]).substr(0, 3); break;
      case 'B': rep = kMonths[tm.tm_mon]; break;
      case 'H': rep = pad2(tm.tm_hour); break;
      case 'M': rep = pad2(tm.tm_min); break;
      case '%': rep = "%"; break;
      default: out += f[i]; continue;
    }
    out += rep;
    ++i;
  }
  return Value::string(out);
}

Value namespace_fn(Args& args, CallContext& ctx) {
  Interpreter& in = ctx.interp;
  Args positional = args;
  std::shared_ptr<ObjectData> kw;
  if (!positional.empty() && is_kwargs(positional.back())) {
    kw = positional.back().obj_ptr();
    positional.pop_back();
  }
  if (positional.size() > 1) in.fail("namespace expected at most 1 argument, got " + std::to_string(positional.size()));
  auto data = std::make_shared<ObjectData>();
  if (positional.size() == 1) {
    const Value& src = positional[0];
    if (src.is_object()) {
      for (const auto& [key, val] : src.obj().entries) data->set(key, val);
    } else if (src.is_array()) {
      for (const Value& pair : src.items()) {
        std::vector<Value> kv;
        if (pair.is_array()) kv = pair.items();
        if (pair.is_string()) {
          for (std::string& cp : code_points(pair.str())) kv.push_back(Value::string(std::move(cp)));
        }
        if (kv.size() != 2) in.fail("namespace expected an object or an iterable of [key, value] pairs");
        if (!kv[0].is_string()) in.fail("namespace keys must be strings");
        data->set(kv[0].str(), kv[1]);
      }
    } else {
      in.fail(std::string("'") + type_name(src) + "' object is not iterable");
    }
  }
  if (kw) {
    for (const auto& [key, val] : kw->entries) data->set(key, val);
  }
  return in.new_namespace(std::move(data));
}

}  // namespace

void install_globals(Scope& global) {
  global.set("namespace", make_function(namespace_fn));
  global.set("false", Value::boolean(false));
  global.set("true", Value::boolean(true));
  global.set("none", Value::null());
  global.set("raise_exception", make_function(raise_fn));
  global.set("range", make_function(range_fn));
  global.set("strftime_now", make_function(strftime_fn));
  global.set("True", Value::boolean(true));
  global.set("False", Value::boolean(false));
  global.set("None", Value::null());
}

}  // namespace lowbit::jinja
