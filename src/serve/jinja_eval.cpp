#include "serve/jinja_eval.h"

#include <cmath>
#include <new>
#include <optional>

namespace lowbit::jinja {

namespace {

constexpr size_t kMaxNamespaces = 1'000'000;
constexpr size_t kMaxClosureScopes = 1'000'000;

Value loop_object(size_t i, const std::vector<Value>& items) {
  const size_t n = items.size();
  auto d = std::make_shared<ObjectData>();
  d->entries.reserve(9);
  d->entries.emplace_back("index", Value::integer(static_cast<double>(i + 1)));
  d->entries.emplace_back("index0", Value::integer(static_cast<double>(i)));
  d->entries.emplace_back("revindex", Value::integer(static_cast<double>(n - i)));
  d->entries.emplace_back("revindex0", Value::integer(static_cast<double>(n - i) - 1));
  d->entries.emplace_back("first", Value::boolean(i == 0));
  d->entries.emplace_back("last", Value::boolean(i + 1 == n));
  d->entries.emplace_back("length", Value::integer(static_cast<double>(n)));
  d->entries.emplace_back("previtem", i > 0 ? items[i - 1] : Value());
  d->entries.emplace_back("nextitem", i + 1 < n ? items[i + 1] : Value());
  return Value::object(std::move(d));
}

bool numeric_like(const Value& v) { return v.is_number() || v.is(Kind::Bool); }
double numeric_value(const Value& v) { return v.is(Kind::Bool) ? (v.as_bool() ? 1 : 0) : v.as_number(); }

}  // namespace

const Value* Scope::lookup(const std::string& name) const {
  for (const Scope* s = this; s; s = s->parent.get()) {
    auto it = s->vars.find(name);
    if (it != s->vars.end()) return &it->second;
  }
  return nullptr;
}

Interpreter::DepthGuard::DepthGuard(Interpreter& i) : in(i) {
  if (++in.depth_ > in.opts_.max_depth) {
    --in.depth_;
    in.fail("template nesting or recursion deeper than " + std::to_string(in.opts_.max_depth) + " levels");
  }
  if (++in.steps_ > in.opts_.max_steps) {
    --in.depth_;
    in.fail("template exceeded " + std::to_string(in.opts_.max_steps) + " evaluation steps");
  }
}

Interpreter::~Interpreter() {
  // Namespaces and closure scopes stay alive (held here) while their contents are dropped, so no
  // destructor ever recurses along a chain of them, and cycles through them are broken.
  for (auto& ns : namespaces_) ns->clear();
  for (auto& scope : closures_) scope->vars.clear();
}

void Interpreter::fail(const std::string& msg) const {
  throw Error("jinja", "line " + std::to_string(line_) + ": " + msg);
}

void Interpreter::count_iterations(uint64_t n) {
  iterations_ += n;
  if (iterations_ > opts_.max_loop_iterations) {
    fail("template exceeded " + std::to_string(opts_.max_loop_iterations) + " loop iterations");
  }
}

Value Interpreter::new_namespace(std::shared_ptr<ObjectData> data) {
  if (namespaces_.size() >= kMaxNamespaces) fail("too many namespaces");
  data->is_namespace = true;
  namespaces_.push_back(data);
  return Value::object(std::move(data));
}

void Interpreter::capture(const ScopePtr& scope) {
  if (scope->captured) return;
  if (closures_.size() >= kMaxClosureScopes) fail("too many macro definitions");
  scope->captured = true;
  closures_.push_back(scope);
}

std::string Interpreter::run(const Program& program, const nlohmann::ordered_json& context) {
  auto global = std::make_shared<Scope>();
  install_globals(*global);
  if (!context.is_null() && !context.is_object()) throw Error("jinja", "the render context must be a JSON object");
  if (context.is_object()) {
    for (const auto& [key, val] : context.items()) {
      if (global->vars.count(key)) throw Error("jinja", "Variable already declared: " + key);
      global->set(key, from_json(val));
    }
  }
  std::string out;
  try {
    render_block(program.body, global, out);
  } catch (const BreakSignal&) {
    fail("'break' outside of a loop");
  } catch (const ContinueSignal&) {
    fail("'continue' outside of a loop");
  } catch (const TemplateRaise&) {
    throw;
  } catch (const Error& e) {
    if (e.message().rfind("line ", 0) == 0) throw;
    fail(std::string(e.message()));
  } catch (const std::bad_alloc&) {
    fail("out of memory");
  } catch (const std::length_error&) {
    fail("string or list too long");
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Statements

void Interpreter::append(std::string& out, const std::string& text) const {
  if (out.size() + text.size() > opts_.max_output_bytes) {
    fail("output longer than " + std::to_string(opts_.max_output_bytes) + " bytes");
  }
  out += text;
}

void Interpreter::render_block(const NodeList& body, const ScopePtr& scope, std::string& out) {
  for (const NodePtr& n : body) render(*n, scope, out);
}

std::string Interpreter::render_to_string(const NodeList& body, const ScopePtr& scope) {
  std::string s;
  render_block(body, scope, s);
  return s;
}

void Interpreter::render(const Node& n, const ScopePtr& scope, std::string& out) {
  DepthGuard guard(*this);
  line_ = n.line;
  switch (n.kind) {
    case NodeKind::Text: append(out, n.name); return;
    case NodeKind::Comment: return;
    case NodeKind::If: {
      const bool cond = truthy(eval(*n.kid(0), scope));
      append(out, render_to_string(cond ? n.body : n.alt, scope));
      return;
    }
    case NodeKind::For: render_for(n, scope, out); return;
    case NodeKind::Set: exec_set(n, scope); return;
    case NodeKind::Macro: define_macro(n, scope); return;
    case NodeKind::Break: throw BreakSignal{};
    case NodeKind::Continue: throw ContinueSignal{};
    default: break;
  }
  Value v;
  if (n.kind == NodeKind::Output) {
    v = eval(*n.kid(0), scope);
  } else if (n.kind == NodeKind::CallBlock) {
    v = call_block(n, scope);
  } else if (n.kind == NodeKind::FilterBlock) {
    Value body = Value::string(render_to_string(n.body, scope));
    line_ = n.line;
    v = apply_filter(*this, body, *n.kid(0), scope);
  } else {
    fail("unexpected syntax node");
  }
  if (!v.is_null() && !v.is_undefined()) append(out, display(v));
}

void Interpreter::bind_target(const Node& target, const Value& item, Scope& scope) {
  if (target.kind == NodeKind::Identifier) {
    scope.set(target.name, item);
    return;
  }
  for (size_t j = 0; j < target.kids.size(); ++j) {
    const Node& t = *target.kids[j];
    if (t.kind != NodeKind::Identifier) fail("Cannot unpack non-identifier type: " + std::string("expression"));
    scope.set(t.name, j < item.items().size() ? item.items()[j] : Value());
  }
}

// The items a for loop visits: validated for tuple unpacking, filtered by an `if` clause.
std::vector<Value> Interpreter::for_items(const Node& node, const ScopePtr& loop_scope, const Value& iterable) {
  const Node& target = *node.kid(0);
  const Node* test = node.kid(1)->kind == NodeKind::Select ? node.kid(1)->kid(1) : nullptr;
  std::vector<Value> candidates;
  if (iterable.is_object()) {
    for (const auto& [key, val] : iterable.obj().entries) candidates.push_back(Value::string(key));
  } else {
    candidates = iterable.items();
  }
  if (target.kind == NodeKind::Identifier && !test) return candidates;
  std::vector<Value> items;
  for (const Value& c : candidates) {
    count_iterations(1);
    if (target.kind == NodeKind::TupleLit) {
      if (!c.is(Kind::Array)) fail(std::string("Cannot unpack non-iterable type: ") + type_name(c));
      const size_t expected = target.kids.size(), actual = c.items().size();
      if (expected != actual) fail(std::string("Too ") + (expected > actual ? "few" : "many") + " items to unpack");
    }
    if (test) {
      auto s = std::make_shared<Scope>(loop_scope);
      bind_target(target, c, *s);
      if (!truthy(eval(*test, s))) continue;
    }
    items.push_back(c);
  }
  return items;
}

void Interpreter::render_for(const Node& node, const ScopePtr& scope, std::string& out) {
  auto loop_scope = std::make_shared<Scope>(scope);
  const Node& iter = *node.kid(1);
  const Value iterable = eval(iter.kind == NodeKind::Select ? *iter.kid(0) : iter, loop_scope);
  line_ = node.line;
  if (!iterable.is_array() && !iterable.is_object()) {
    fail(std::string("Expected iterable or object type in for loop: got ") + type_name(iterable));
  }
  const std::vector<Value> items = for_items(node, loop_scope, iterable);
  bool no_iteration = true;
  for (size_t i = 0; i < items.size(); ++i) {
    count_iterations(1);
    loop_scope->set("loop", loop_object(i, items));
    bind_target(*node.kid(0), items[i], *loop_scope);
    // As in the reference, an iteration ended by break/continue contributes no output, and a
    // loop whose every iteration hit `continue` counts as not having iterated.
    std::string iteration;
    try {
      render_block(node.body, loop_scope, iteration);
    } catch (const ContinueSignal&) {
      continue;
    } catch (const BreakSignal&) {
      break;
    }
    append(out, iteration);
    no_iteration = false;
  }
  if (no_iteration) append(out, render_to_string(node.alt, loop_scope));
}

void Interpreter::exec_set(const Node& node, const ScopePtr& scope) {
  const Node& target = *node.kid(0);
  const Value rhs = node.kid(1) ? eval(*node.kid(1), scope) : Value::string(render_to_string(node.body, scope));
  line_ = node.line;
  if (target.kind == NodeKind::Identifier) {
    scope->set(target.name, rhs);
  } else if (target.kind == NodeKind::TupleLit) {
    if (!rhs.is_array()) fail(std::string("Cannot unpack non-iterable type in set: ") + type_name(rhs));
    const size_t want = target.kids.size(), have = rhs.items().size();
    if (want != have) fail(std::string("Too ") + (want > have ? "few" : "many") + " items to unpack in set");
    for (size_t i = 0; i < want; ++i) {
      if (target.kids[i]->kind != NodeKind::Identifier) fail("Cannot unpack to non-identifier in set");
      scope->set(target.kids[i]->name, rhs.items()[i]);
    }
  } else {
    const Value object = eval(*target.kid(0), scope);
    line_ = node.line;
    if (!object.is(Kind::Namespace)) fail("cannot assign attribute on non-namespace object");
    if (target.kid(1)->kind != NodeKind::Identifier) fail("Cannot assign to member with non-identifier property");
    ObjectData& ns = object.obj();
    ns.set(target.kid(1)->name, rhs);
    ns.depth = std::max(ns.depth, rhs.depth() + 1);
    if (ns.depth > kMaxValueDepth) fail("value nesting deeper than " + std::to_string(kMaxValueDepth));
  }
}

// ---------------------------------------------------------------------------------------------
// Macros and call blocks

void Interpreter::bind_macro_args(const std::string& display_name, const Node& node, const NodeList& params, Args args,
                                  const ScopePtr& scope) {
  std::vector<std::pair<std::string, Value>> keywords;
  if (!args.empty() && args.back().is_object() && args.back().obj().is_kwargs) {
    keywords = args.back().obj().entries;
    args.pop_back();
  }
  std::vector<std::pair<std::string, const Node*>> pending;
  for (size_t i = 0; i < params.size(); ++i) {
    const Node& p = *params[i];
    bool have = i < args.size();
    Value v = have ? args[i] : Value();
    if (!have) {
      for (auto it = keywords.begin(); it != keywords.end(); ++it) {
        if (it->first == p.name) {
          v = it->second;
          have = true;
          keywords.erase(it);
          break;
        }
      }
    }
    if (!have && p.kind == NodeKind::Kwarg) pending.emplace_back(p.name, p.kid(0));
    scope->set(p.name, v);
  }
  if (node.special & kUsesKwargs) {
    auto kw = std::make_shared<ObjectData>();
    kw->entries = std::move(keywords);
    scope->set("kwargs", Value::object(std::move(kw)));
  } else if (!keywords.empty()) {
    fail("macro " + display_name + " takes no keyword argument '" + keywords.front().first + "'");
  }
  if (node.special & kUsesVarargs) {
    std::vector<Value> rest;
    for (size_t i = params.size(); i < args.size(); ++i) rest.push_back(args[i]);
    scope->set("varargs", Value::array(std::move(rest)));
  } else if (args.size() > params.size()) {
    fail("macro " + display_name + " takes not more than " + std::to_string(params.size()) + " argument(s)");
  }
  for (const auto& [name, expr] : pending) scope->set(name, eval(*expr, scope));
}

void Interpreter::define_macro(const Node& node, const ScopePtr& scope) {
  capture(scope);
  const Node* macro = &node;
  ScopePtr defining = scope;
  auto fn = std::make_shared<FunctionData>();
  fn->impl = [this, macro, defining](Args& args, CallContext& ctx) -> Value {
    ScopePtr parent = defining;
    if (macro->special & kUsesCaller) {
      Value caller;
      if (ctx.site && ctx.site->call_block) {
        auto it = ctx.site->vars.find("caller");
        if (it != ctx.site->vars.end()) caller = it->second;
      }
      parent = std::make_shared<Scope>(defining);
      parent->set("caller", caller);
    }
    auto local = std::make_shared<Scope>(parent);
    bind_macro_args("'" + macro->name + "'", *macro, macro->params, args, local);
    return Value::string(render_to_string(macro->body, local));
  };
  scope->set(node.name, Value::function(std::move(fn)));
}

Value Interpreter::call_block(const Node& node, const ScopePtr& scope) {
  capture(scope);
  const Node* block = &node;
  auto caller = std::make_shared<FunctionData>();
  caller->impl = [this, block, scope](Args& args, CallContext&) -> Value {
    auto env = std::make_shared<Scope>(scope);
    bind_macro_args("None", *block, block->params, args, env);
    return Value::string(render_to_string(block->body, env));
  };
  auto [positional, keywords] = eval_args(node.kids, 1, scope);
  positional.push_back(Value::object(keywords));
  const Value fn = eval(*node.kid(0), scope);
  line_ = node.line;
  if (!fn.is(Kind::Function)) fail(std::string("Cannot call something that is not a function: got ") + type_name(fn));
  auto site = std::make_shared<Scope>(scope);
  site->call_block = true;
  site->set("caller", Value::function(std::move(caller)));
  CallContext ctx{*this, site};
  return fn.fn().impl(positional, ctx);
}

// ---------------------------------------------------------------------------------------------
// Expressions

std::pair<Args, std::shared_ptr<ObjectData>> Interpreter::eval_args(const NodeList& nodes, size_t first,
                                                                     const ScopePtr& scope) {
  Args positional;
  auto keywords = std::make_shared<ObjectData>();
  keywords->is_kwargs = true;
  for (size_t i = first; i < nodes.size(); ++i) {
    const Node& a = *nodes[i];
    if (a.kind == NodeKind::Spread) {
      const Value v = eval(*a.kid(0), scope);
      if (!v.is_array()) fail(std::string("Cannot unpack non-iterable type: ") + type_name(v));
      count_iterations(v.items().size());
      positional.insert(positional.end(), v.items().begin(), v.items().end());
    } else if (a.kind != NodeKind::Kwarg && a.kind != NodeKind::KwSpread) {
      positional.push_back(eval(a, scope));
    }
  }
  auto add = [&](const std::string& key, Value v) {
    if (keywords->find(key)) fail("Got multiple values for keyword argument '" + key + "'");
    keywords->set(key, std::move(v));
  };
  for (size_t i = first; i < nodes.size(); ++i) {
    const Node& a = *nodes[i];
    if (a.kind == NodeKind::Kwarg) {
      add(a.name, eval(*a.kid(0), scope));
    } else if (a.kind == NodeKind::KwSpread) {
      const Value v = eval(*a.kid(0), scope);
      if (!v.is_object()) fail(std::string("Argument after ** must be a mapping, not ") + type_name(v));
      for (const auto& [key, val] : v.obj().entries) add(key, val);
    }
  }
  return {std::move(positional), std::move(keywords)};
}

Args Interpreter::eval_call_args(const NodeList& nodes, size_t first, const ScopePtr& scope) {
  for (size_t i = first; i < nodes.size(); ++i) {
    const NodeKind k = nodes[i]->kind;
    if (k == NodeKind::Kwarg || k == NodeKind::Spread || k == NodeKind::KwSpread) {
      auto [positional, keywords] = eval_args(nodes, first, scope);
      if (keywords->size() > 0) positional.push_back(Value::object(std::move(keywords)));
      return positional;
    }
  }
  Args args;
  args.reserve(nodes.size() - std::min(first, nodes.size()));
  for (size_t i = first; i < nodes.size(); ++i) args.push_back(eval(*nodes[i], scope));
  return args;
}

Value Interpreter::eval(const Node& n, const ScopePtr& scope) {
  DepthGuard guard(*this);
  line_ = n.line;
  switch (n.kind) {
    case NodeKind::Identifier: {
      const Value* v = scope->lookup(n.name);
      return v ? *v : Value();
    }
    case NodeKind::IntLit: return Value::integer(n.number);
    case NodeKind::FloatLit: return Value::floating(n.number);
    case NodeKind::StringLit: return Value::string(n.name);
    case NodeKind::ArrayLit:
    case NodeKind::TupleLit:
    case NodeKind::ObjectLit: return eval_literal(n, scope);
    case NodeKind::Binary: return eval_binary(n, scope);
    case NodeKind::Unary: return eval_unary(n, scope);
    case NodeKind::Member: return eval_member(n, scope);
    case NodeKind::Call: return eval_call(n, scope);
    case NodeKind::Filter: {
      const Value operand = eval(*n.kid(0), scope);
      line_ = n.line;
      return apply_filter(*this, operand, n, scope);
    }
    case NodeKind::Test: return eval_test(n, scope);
    case NodeKind::Ternary: return truthy(eval(*n.kid(0), scope)) ? eval(*n.kid(1), scope) : eval(*n.kid(2), scope);
    case NodeKind::Select: return truthy(eval(*n.kid(1), scope)) ? eval(*n.kid(0), scope) : Value();
    default: fail("this expression cannot be evaluated here");
  }
}

Value Interpreter::eval_literal(const Node& n, const ScopePtr& scope) {
  if (n.kind != NodeKind::ObjectLit) {
    std::vector<Value> items;
    items.reserve(n.kids.size());
    for (const NodePtr& k : n.kids) items.push_back(eval(*k, scope));
    return Value::array(std::move(items), n.kind == NodeKind::TupleLit);
  }
  auto data = std::make_shared<ObjectData>();
  for (size_t i = 0; i + 1 < n.kids.size(); i += 2) {
    const Value key = eval(*n.kids[i], scope);
    if (!key.is_string()) fail(std::string("Object keys must be strings: got ") + type_name(key));
    data->set(key.str(), eval(*n.kids[i + 1], scope));
  }
  return Value::object(std::move(data));
}

// Arithmetic and comparison of two numbers; nullopt for an operator numbers do not support.
static std::optional<Value> numeric_binary(const std::string& op, const Value& left, const Value& right) {
  const double a = left.as_number(), b = right.as_number();
  const bool is_float = left.is(Kind::Float) || right.is(Kind::Float);
  auto num = [&](double r) { return is_float ? Value::floating(r) : Value::integer(r); };
  if (op == "+") return num(a + b);
  if (op == "-") return num(a - b);
  if (op == "*") return num(a * b);
  if (op == "/") return Value::floating(a / b);
  if (op == "//") return num(std::floor(a / b));
  if (op == "%") return num(std::fmod(a, b));  // JavaScript's %: the sign of the dividend
  if (op == "<") return Value::boolean(a < b);
  if (op == ">") return Value::boolean(a > b);
  if (op == ">=") return Value::boolean(a >= b);
  if (op == "<=") return Value::boolean(a <= b);
  return std::nullopt;
}

Value Interpreter::eval_binary(const Node& n, const ScopePtr& scope) {
  const std::string& op = n.name;
  const Value left = eval(*n.kid(0), scope);
  if (op == "and") return truthy(left) ? eval(*n.kid(1), scope) : left;
  if (op == "or") return truthy(left) ? left : eval(*n.kid(1), scope);
  const Value right = eval(*n.kid(1), scope);
  line_ = n.line;
  if (op == "==") return Value::boolean(loose_equal(left, right));
  if (op == "!=") return Value::boolean(!loose_equal(left, right));
  // The reference tries these cases in this order; an operator a case does not handle falls
  // through to the string cases below, then to the error.
  if (left.is_number() && right.is_number() && op != "~" && op != "**") {
    if (auto r = numeric_binary(op, left, right)) return *r;
  } else if (left.is_undefined() || right.is_undefined()) {
    if (right.is_undefined() && (op == "in" || op == "not in")) return Value::boolean(op == "not in");
    if (op == "~" && !left.is_null() && !right.is_null()) {
      return Value::string((left.is_undefined() ? "" : raw_string(left)) + (right.is_undefined() ? "" : raw_string(right)));
    }
    fail("Cannot perform operation " + op + " on undefined values");
  } else if (left.is_null() || right.is_null()) {
    fail("Cannot perform operation on null values");
  } else if (op == "~") {
    return Value::string(raw_string(left) + raw_string(right));
  } else if (op == "**" && numeric_like(left) && numeric_like(right)) {
    return power(left, right);
  } else if (left.is_array() && right.is_array()) {
    if (op == "+") {
      count_iterations(left.items().size() + right.items().size());
      std::vector<Value> items = left.items();
      items.insert(items.end(), right.items().begin(), right.items().end());
      return Value::array(std::move(items));
    }
  } else if (right.is_array() && (op == "in" || op == "not in")) {
    count_iterations(right.items().size());
    bool member = false;
    for (const Value& x : right.items()) member = member || strict_equal(x, left);
    return Value::boolean(member == (op == "in"));
  }
  return string_binary(op, left, right);
}

Value Interpreter::power(const Value& left, const Value& right) const {
  const double a = numeric_value(left), b = numeric_value(right);
  if (a == 0 && b < 0) fail("0.0 cannot be raised to a negative power");
  const double r = (std::fabs(a) == 1 && std::isinf(b)) ? NAN : std::pow(a, b);  // JavaScript: 1 ** Infinity is NaN
  if (!std::isfinite(r)) fail("Exponentiation result is not a finite real number");
  return (left.is(Kind::Float) || right.is(Kind::Float) || b < 0) ? Value::floating(r) : Value::integer(r);
}

Value Interpreter::string_binary(const std::string& op, const Value& left, const Value& right) const {
  if ((left.is_string() || right.is_string()) && op == "+") return Value::string(raw_string(left) + raw_string(right));
  if (left.is_string() && right.is_string() && (op == "in" || op == "not in")) {
    const bool found = right.str().find(left.str()) != std::string::npos;
    return Value::boolean(found == (op == "in"));
  }
  if (left.is_string() && right.is_object() && (op == "in" || op == "not in")) {
    const bool found = right.obj().find(left.str()) != nullptr;
    return Value::boolean(found == (op == "in"));
  }
  fail("Unknown operator \"" + op + "\" between " + type_name(left) + " and " + type_name(right));
}

Value Interpreter::eval_unary(const Node& n, const ScopePtr& scope) {
  const Value arg = eval(*n.kid(0), scope);
  line_ = n.line;
  if (n.name == "not") return Value::boolean(!truthy(arg));
  if (numeric_like(arg)) {
    const double r = (n.name == "-" ? -1 : 1) * numeric_value(arg);
    return arg.is(Kind::Float) ? Value::floating(r) : Value::integer(r);
  }
  fail("Unknown operator \"" + n.name + "\" for " + type_name(arg));
}

Value Interpreter::eval_member(const Node& n, const ScopePtr& scope) {
  const Value object = eval(*n.kid(0), scope);
  const Node& prop = *n.kid(1);
  Value key;
  if (n.flag) {
    if (prop.kind == NodeKind::Slice) return eval_slice(object, prop, scope);
    key = eval(prop, scope);
  } else if (prop.kind == NodeKind::IntLit) {
    key = Value::integer(prop.number);
  } else {
    key = Value::string(prop.name);
  }
  line_ = n.line;
  if (object.is_attribute_container()) {
    if (!key.is_string()) fail(std::string("Cannot access property with non-string: got ") + type_name(key));
    if (const Value* v = object.obj().find(key.str())) return *v;
    return object.is_object() ? builtin_member(*this, object, key.str()) : Value();
  }
  if (object.is_array() || object.is_string()) {
    if (key.is(Kind::Int)) {
      if (object.is_string()) return string_at(object.str(), key.as_number());
      const double size = static_cast<double>(object.items().size());
      const double i = key.as_number() < 0 ? size + key.as_number() : key.as_number();
      return (i >= 0 && i < size) ? object.items()[static_cast<size_t>(i)] : Value();
    }
    if (key.is_string()) return builtin_member(*this, object, key.str());
    fail(std::string("Cannot access property with non-string/non-number: got ") + type_name(key));
  }
  if (!key.is_string()) fail(std::string("Cannot access property with non-string: got ") + type_name(key));
  return builtin_member(*this, object, key.str());
}

Value Interpreter::eval_slice(const Value& object, const Node& slice, const ScopePtr& scope) {
  if (!object.is_array() && !object.is_string()) fail("Slice object must be an array or string");
  Value parts[3];
  static const char* kNames[3] = {"start", "stop", "step"};
  for (size_t i = 0; i < 3; ++i) {
    if (slice.kid(i)) parts[i] = eval(*slice.kid(i), scope);
    line_ = slice.line;
    if (!parts[i].is(Kind::Int) && !parts[i].is_undefined()) {
      fail(std::string("Slice ") + kNames[i] + " must be numeric or undefined");
    }
  }
  if (object.is_array()) {
    const std::vector<size_t> idx = slice_indexes(object.items().size(), parts[0], parts[1], parts[2]);
    count_iterations(idx.size());
    std::vector<Value> items;
    items.reserve(idx.size());
    for (size_t i : idx) items.push_back(object.items()[i]);
    return Value::array(std::move(items));
  }
  const std::vector<std::string> cps = code_points(object.str());
  const std::vector<size_t> idx = slice_indexes(cps.size(), parts[0], parts[1], parts[2]);
  count_iterations(idx.size() / 64);
  std::string out;
  for (size_t i : idx) out += cps[i];
  return Value::string(std::move(out));
}

Value Interpreter::eval_call(const Node& n, const ScopePtr& scope) {
  Args args = eval_call_args(n.kids, 1, scope);
  const Value fn = eval(*n.kid(0), scope);
  line_ = n.line;
  if (!fn.is(Kind::Function)) fail(std::string("Cannot call something that is not a function: got ") + type_name(fn));
  CallContext ctx{*this, scope};
  return fn.fn().impl(args, ctx);
}

Value Interpreter::eval_test(const Node& n, const ScopePtr& scope) {
  Args args{eval(*n.kid(0), scope)};
  for (size_t i = 1; i < n.kids.size(); ++i) args.push_back(eval(*n.kids[i], scope));
  line_ = n.line;
  const bool r = run_test(*this, n.name, args);
  return Value::boolean(n.flag ? !r : r);
}

}  // namespace lowbit::jinja
