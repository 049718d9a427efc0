// Filters of the Jinja interpreter, dispatched as @huggingface/jinja dispatches them: first on
// whether the filter is called with parentheses, then on the operand's type. Error texts are the
// reference's. lowbit's extensions (count, d, round, select, reject, map by filter name, bare
// `default`) only apply where the reference raises an error.
#include <cmath>
#include <unordered_set>

#include "serve/jinja_builtins_util.h"

namespace lowbit::jinja {

namespace {

[[noreturn]] void cannot_apply(Interpreter& in, const std::string& name, const Value& v) {
  in.fail("Cannot apply filter \"" + name + "\" to type: " + type_name(v));
}

Value unique(Interpreter& in, const Value& operand) {
  std::unordered_set<std::string> strings;
  std::unordered_set<double> numbers;
  std::unordered_set<const void*> objects;
  bool seen_nan = false, seen_true = false, seen_false = false, seen_null = false, seen_undefined = false;
  std::vector<Value> out;
  for (const Value& v : operand.items()) {
    bool fresh = false;
    switch (v.kind()) {
      case Kind::String: fresh = strings.insert(v.str()).second; break;
      case Kind::Int:
      case Kind::Float:
        if (std::isnan(v.as_number())) {
          fresh = !seen_nan;
          seen_nan = true;
        } else {
          fresh = numbers.insert(v.as_number() == 0 ? 0.0 : v.as_number()).second;
        }
        break;
      case Kind::Bool: {
        bool& seen = v.as_bool() ? seen_true : seen_false;
        fresh = !seen;
        seen = true;
        break;
      }
      case Kind::Null:
        fresh = !seen_null;
        seen_null = true;
        break;
      case Kind::Undefined:
        fresh = !seen_undefined;
        seen_undefined = true;
        break;
      default: fresh = objects.insert(v.identity()).second; break;
    }
    if (fresh) out.push_back(v);
  }
  in.count_iterations(operand.items().size());
  return Value::array(std::move(out));
}

Value sorted(Interpreter& in, const Value& operand, bool reverse, bool case_sensitive, const Value& attribute) {
  std::vector<Value> items = operand.items();
  in.count_iterations(items.size());
  auto key = [&](const Value& v) {
    if (attribute.is_null()) return v;
    return attribute_path(v, attribute.is_string() ? attribute.str() : js_number(attribute.as_number()));
  };
  std::stable_sort(items.begin(), items.end(), [&](const Value& a, const Value& b) {
    const int r = compare_values(in, key(a), key(b), case_sensitive);
    return (reverse ? -r : r) < 0;
  });
  return Value::array(std::move(items));
}

std::string indent_lines(const std::string& s, const std::string& indent, bool first, bool blank) {
  std::string out;
  size_t start = 0;
  for (size_t i = 0;; ++i) {
    const size_t nl = s.find('\n', start);
    const std::string line = s.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    if (i > 0) out += '\n';
    if ((!first && i == 0) || (!blank && line.empty())) out += line;
    else out += indent + line;
    if (out.size() > kMaxStringBytes) break;
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  return out;
}

Value to_int(const Value& operand, bool as_int, const Value& fallback) {
  if (operand.is_string()) {
    const double v = as_int ? parse_int(operand.str()) : parse_float(operand.str());
    if (std::isnan(v)) return fallback;
    return as_int ? Value::integer(v) : Value::floating(v);
  }
  if (operand.is(Kind::Bool)) return as_int ? Value::integer(operand.as_bool()) : Value::floating(operand.as_bool());
  return as_int ? Value::integer(std::trunc(operand.as_number()) + 0.0) : Value::floating(operand.as_number());
}

Value round_number(const Value& operand, const Value& precision, const std::string& method) {
  const double scale = std::pow(10.0, precision.is_number() ? precision.as_number() : 0);
  const double x = operand.as_number() * scale;
  const double r = method == "floor" ? std::floor(x) : method == "ceil" ? std::ceil(x) : std::nearbyint(x);  // Python's round: ties to even
  return Value::floating(r / scale);
}

// --- filters written without parentheses: {{ x | name }} ---

Value array_filter(Interpreter& in, const Value& operand, const std::string& name) {
  const auto& items = operand.items();
  if (name == "list") return operand;
  if (name == "first") return items.empty() ? Value() : items.front();
  if (name == "last") return items.empty() ? Value() : items.back();
  if (name == "length" || name == "count") return Value::integer(static_cast<double>(items.size()));
  if (name == "reverse") return Value::array(std::vector<Value>(items.rbegin(), items.rend()));
  if (name == "sort") return sorted(in, operand, false, false, Value::null());
  if (name == "join") {
    std::string out;
    for (const Value& v : items) {
      out += join_element(v);
      if (out.size() > kMaxStringBytes) break;
    }
    return Value::string(std::move(out));
  }
  if (name == "string") return Value::string(to_json(operand, JsonOptions{}, false));
  if (name == "unique") return unique(in, operand);
  in.fail("Unknown ArrayValue filter: " + name);
}

Value string_filter(Interpreter& in, const Value& operand, const std::string& name) {
  const std::string& s = operand.str();
  if (name == "length" || name == "count") return Value::integer(static_cast<double>(utf16_length(s)));
  if (name == "upper") return Value::string(to_upper(s));
  if (name == "lower") return Value::string(to_lower(s));
  if (name == "title") return Value::string(title_case(s));
  if (name == "capitalize") return Value::string(capitalize(s));
  if (name == "trim") return Value::string(trim(s));
  if (name == "indent") return Value::string(indent_lines(s, "    ", false, false));
  if (name == "join" || name == "string") return operand;
  if (name == "int") return to_int(operand, true, Value::integer(0));
  if (name == "float") return to_int(operand, false, Value::floating(0));
  in.fail("Unknown StringValue filter: " + name);
}

Value identifier_filter(Interpreter& in, const Value& operand, const std::string& name) {
  if (name == "safe") return operand;
  if (name == "tojson") return Value::string(to_json(operand, JsonOptions{}));
  if (name == "default" || name == "d") return operand.is_undefined() ? Value::string("") : operand;
  if (operand.is_array()) return array_filter(in, operand, name);
  if (operand.is_string()) return string_filter(in, operand, name);
  if (operand.is_number()) {
    const double v = operand.as_number();
    if (name == "abs") return operand.is(Kind::Int) ? Value::integer(std::fabs(v)) : Value::floating(std::fabs(v));
    if (name == "int") return Value::integer(std::trunc(v) + 0.0);
    if (name == "float") return Value::floating(v);
    if (name == "string") return Value::string(display(operand));
    if (name == "round") return round_number(operand, Value::integer(0), "common");
    in.fail("Unknown NumericValue filter: " + name);
  }
  if (operand.is_object()) {
    if (name == "items") {
      std::vector<Value> pairs;
      for (const auto& [key, val] : operand.obj().entries) pairs.push_back(Value::array({Value::string(key), val}));
      return Value::array(std::move(pairs));
    }
    if (name == "length" || name == "count") return Value::integer(static_cast<double>(operand.obj().size()));
    const Value builtin = builtin_member(in, operand, name);
    if (builtin.is(Kind::Function)) {
      Args none;
      CallContext ctx{in, nullptr};
      return builtin.fn().impl(none, ctx);
    }
    in.fail("Unknown ObjectValue filter: " + name);
  }
  if (operand.is(Kind::Bool)) {
    if (name == "bool") return operand;
    if (name == "int") return Value::integer(operand.as_bool() ? 1 : 0);
    if (name == "float") return Value::floating(operand.as_bool() ? 1 : 0);
    if (name == "string") return Value::string(operand.as_bool() ? "true" : "false");
    in.fail("Unknown BooleanValue filter: " + name);
  }
  cannot_apply(in, name, operand);
}

// --- filters called with arguments: {{ x | name(args) }} ---

struct CallArgs {
  Args positional;
  std::shared_ptr<ObjectData> keywords;
  Value get(size_t i, const char* key, Value fallback) const {
    if (i < positional.size()) return positional[i];
    const Value* v = kwarg(keywords, key);
    return v ? *v : fallback;
  }
};

Value tojson_filter(Interpreter& in, const Value& operand, const CallArgs& a) {
  JsonOptions opts;
  const Value indent = a.get(SIZE_MAX, "indent", Value::null());
  if (!indent.is(Kind::Int) && !indent.is_null()) in.fail("If set, indent must be a number");
  if (indent.is(Kind::Int) && indent.as_number() < 0) in.fail("Invalid count value: " + js_number(indent.as_number()));
  if (indent.is(Kind::Int)) opts.indent = static_cast<int>(std::min(indent.as_number(), 1e9));
  const Value ascii = a.get(SIZE_MAX, "ensure_ascii", Value::boolean(false));
  if (!ascii.is(Kind::Bool)) in.fail("If set, ensure_ascii must be a boolean");
  const Value sort_keys = a.get(SIZE_MAX, "sort_keys", Value::boolean(false));
  if (!sort_keys.is(Kind::Bool)) in.fail("If set, sort_keys must be a boolean");
  const Value seps = a.get(SIZE_MAX, "separators", Value::null());
  if (seps.is_array()) {
    if (seps.items().size() != 2 || !seps.items()[0].is_string() || !seps.items()[1].is_string()) {
      in.fail("separators must be a tuple of two strings");
    }
    opts.custom_separators = true;
    opts.item_separator = seps.items()[0].str();
    opts.key_separator = seps.items()[1].str();
  } else if (!seps.is_null()) {
    in.fail("If set, separators must be a tuple of two strings");
  }
  opts.ensure_ascii = ascii.as_bool();
  opts.sort_keys = sort_keys.as_bool();
  return Value::string(to_json(operand, opts));
}

Value select_attr(Interpreter& in, const Value& operand, const Node& filter, const ScopePtr& scope, bool select) {
  const std::string& name = filter.name;
  for (const Value& item : operand.items()) {
    if (!item.is_attribute_container()) in.fail("`" + name + "` can only be applied to array of objects");
  }
  for (size_t i = 1; i < filter.kids.size(); ++i) {
    if (filter.kids[i]->kind != NodeKind::StringLit) in.fail("arguments of `" + name + "` must be strings");
  }
  Args args = in.eval_call_args(filter.kids, 1, scope);
  if (args.empty()) in.fail("arguments of `" + name + "` must be strings");
  const std::string attr = args[0].str();
  std::vector<Value> out;
  for (const Value& item : operand.items()) {
    const Value* a = item.obj().find(attr);
    bool result = false;
    if (a) {
      if (args.size() > 1) result = run_test(in, args[1].str(), Args{*a, args.size() > 2 ? args[2] : Value()});
      else result = truthy(*a);
    }
    if (result == select) out.push_back(item);
  }
  in.count_iterations(operand.items().size());
  return Value::array(std::move(out));
}

Value map_filter(Interpreter& in, const Value& operand, const CallArgs& a) {
  const Value* attr = kwarg(a.keywords, "attribute");
  std::vector<Value> out;
  in.count_iterations(operand.items().size());
  if (attr) {
    if (!attr->is_string()) in.fail("attribute must be a string");
    const Value* fallback = kwarg(a.keywords, "default");
    for (const Value& item : operand.items()) {
      if (!item.is_attribute_container()) in.fail("items in map must be an object");
      const Value v = attribute_path(item, attr->str());
      out.push_back(v.is_undefined() && fallback ? *fallback : v);
    }
    return Value::array(std::move(out));
  }
  if (!a.positional.empty() && a.positional[0].is_string()) {  // extension: map('upper')
    for (const Value& item : operand.items()) out.push_back(identifier_filter(in, item, a.positional[0].str()));
    return Value::array(std::move(out));
  }
  in.fail("`map` expressions without `attribute` set are not currently supported.");
}

Value select_test(Interpreter& in, const Value& operand, const CallArgs& a, bool select) {
  std::vector<Value> out;
  in.count_iterations(operand.items().size());
  for (const Value& item : operand.items()) {
    bool r = truthy(item);
    if (!a.positional.empty()) {
      if (!a.positional[0].is_string()) in.fail("the test name must be a string");
      Args targs{item};
      targs.insert(targs.end(), a.positional.begin() + 1, a.positional.end());
      r = run_test(in, a.positional[0].str(), targs);
    }
    if (r == select) out.push_back(item);
  }
  return Value::array(std::move(out));
}

Value array_call_filter(Interpreter& in, const Value& operand, const Node& filter, const ScopePtr& scope, const CallArgs& a) {
  const std::string& name = filter.name;
  if (name == "sort") {
    const Value reverse = a.get(0, "reverse", Value::boolean(false));
    if (!reverse.is(Kind::Bool)) in.fail("reverse must be a boolean");
    const Value cs = a.get(1, "case_sensitive", Value::boolean(false));
    if (!cs.is(Kind::Bool)) in.fail("case_sensitive must be a boolean");
    const Value attribute = a.get(2, "attribute", Value::null());
    if (!attribute.is_string() && !attribute.is(Kind::Int) && !attribute.is_null()) {
      in.fail("attribute must be a string, integer, or null");
    }
    return sorted(in, operand, reverse.as_bool(), cs.as_bool(), attribute);
  }
  if (name == "selectattr" || name == "rejectattr") return select_attr(in, operand, filter, scope, name == "selectattr");
  if (name == "map") return map_filter(in, operand, a);
  if (name == "select" || name == "reject") return select_test(in, operand, a, name == "select");
  if (name == "length" || name == "count" || name == "first" || name == "last" || name == "unique" || name == "list" ||
      name == "reverse") {
    return array_filter(in, operand, name);  // extension: tolerate empty parentheses
  }
  in.fail("Unknown ArrayValue filter: " + name);
}

Value string_call_filter(Interpreter& in, const Value& operand, const std::string& name, const CallArgs& a) {
  if (name == "indent") {
    const Value width = a.get(0, "width", Value::integer(4));
    if (!width.is(Kind::Int) && !width.is_string()) in.fail("width must be an integer or a string");
    const Value first = a.get(1, "first", Value::boolean(false));
    const Value blank = a.get(2, "blank", Value::boolean(false));
    std::string pad;
    if (width.is_string()) {
      pad = width.str();
    } else {
      if (width.as_number() > static_cast<double>(kMaxStringBytes)) in.fail("indent width too large");
      pad.assign(static_cast<size_t>(std::max(0.0, width.as_number())), ' ');
    }
    return Value::string(indent_lines(operand.str(), pad, raw_truthy(first), raw_truthy(blank)));
  }
  if (name == "replace") {
    Args args = a.positional;
    auto kw = a.keywords ? a.keywords : std::make_shared<ObjectData>();
    kw->is_kwargs = true;
    args.push_back(Value::object(kw));
    const Value fn = builtin_member(in, operand, "replace");
    CallContext ctx{in, nullptr};
    return fn.fn().impl(args, ctx);
  }
  if (name == "trim" || name == "upper" || name == "lower" || name == "title" || name == "capitalize" ||
      name == "length" || name == "count") {
    return string_filter(in, operand, name);  // extension: tolerate empty parentheses
  }
  in.fail("Unknown StringValue filter: " + name);
}

Value call_filter(Interpreter& in, const Value& operand, const Node& filter, const ScopePtr& scope) {
  const std::string& name = filter.name;
  const bool lazy_args = name == "selectattr" || name == "rejectattr";  // these check their argument nodes first
  CallArgs a;
  if (!lazy_args) {
    auto [positional, keywords] = in.eval_args(filter.kids, 1, scope);
    a.positional = std::move(positional);
    a.keywords = std::move(keywords);
  }
  in.set_line(filter.line);
  if (name == "tojson") return tojson_filter(in, operand, a);
  if (name == "join") {
    std::vector<std::string> parts;
    if (operand.is_string()) {
      parts = code_points(operand.str());
    } else if (operand.is_array()) {
      for (const Value& v : operand.items()) parts.push_back(join_element(v));
    } else {
      cannot_apply(in, name, operand);
    }
    const Value sep = a.get(0, "separator", Value::string(""));
    if (!sep.is_string()) in.fail("separator must be a string");
    std::string out;
    for (size_t i = 0; i < parts.size(); ++i) {
      if (i > 0) out += sep.str();
      out += parts[i];
      if (out.size() > kMaxStringBytes) break;
    }
    return Value::string(std::move(out));
  }
  if (name == "int" || name == "float") {
    const bool as_int = name == "int";
    const Value fallback = a.get(0, "default", as_int ? Value::integer(0) : Value::floating(0));
    if (operand.is_string() || operand.is_number() || operand.is(Kind::Bool)) return to_int(operand, as_int, fallback);
    cannot_apply(in, name, operand);
  }
  if (name == "default" || name == "d") {
    const Value fallback = a.positional.empty() ? Value::string("") : a.positional[0];
    const Value boolean = a.get(1, "boolean", Value::boolean(false));
    if (!boolean.is(Kind::Bool)) in.fail("`default` filter flag must be a boolean");
    return operand.is_undefined() || (boolean.as_bool() && !truthy(operand)) ? fallback : operand;
  }
  if (operand.is_array()) return array_call_filter(in, operand, filter, scope, a);
  if (operand.is_string()) return string_call_filter(in, operand, name, a);
  if (operand.is_object()) {
    const Value builtin = builtin_member(in, operand, name);
    if (builtin.is(Kind::Function)) {
      Args args = in.eval_call_args(filter.kids, 1, scope);
      CallContext ctx{in, scope};
      return builtin.fn().impl(args, ctx);
    }
    in.fail("Unknown ObjectValue filter: " + name);
  }
  if (operand.is_number() && name == "round") {  // extension
    const Value method = a.get(1, "method", Value::string("common"));
    return round_number(operand, a.get(0, "precision", Value::integer(0)), method.is_string() ? method.str() : "common");
  }
  cannot_apply(in, name, operand);
}

}  // namespace

Value apply_filter(Interpreter& in, const Value& operand, const Node& filter, const ScopePtr& scope) {
  if (!filter.flag) return identifier_filter(in, operand, filter.name);
  return call_filter(in, operand, filter, scope);
}

}  // namespace lowbit::jinja
