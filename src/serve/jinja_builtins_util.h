// Helpers shared by jinja_builtins.cpp and jinja_filters.cpp (internal).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "serve/jinja_eval.h"

namespace lowbit::jinja {

Value make_function(std::function<Value(Args&, CallContext&)> impl, int depth = 1);
bool is_kwargs(const Value& v);
const Value* kwarg(const std::shared_ptr<ObjectData>& kw, const char* name);
// JavaScript truthiness of the underlying value (objects and arrays are truthy even when empty).
bool raw_truthy(const Value& v);
// How Array.prototype.join prints an item: null/undefined as "", else String(value).
std::string join_element(const Value& v);
// The reference's compareRuntimeValues: numbers and booleans together, strings (optionally
// case-insensitive), null with null, undefined with undefined; anything else is an error.
int compare_values(Interpreter& in, const Value& a, const Value& b, bool case_sensitive);
// Dotted attribute path ("a.b.0") into objects and arrays; undefined when missing.
Value attribute_path(const Value& item, const std::string& path);
// String.prototype.replace with a literal pattern and an optional count (null: all).
std::string js_replace(const std::string& s, const std::string& from, const std::string& to, const Value& count);

}  // namespace lowbit::jinja
