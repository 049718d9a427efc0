// Jinja interpreter (internal): walks a parsed Program over runtime values, following
// @huggingface/jinja's runtime. Builtins (filters, tests, methods, globals) live in
// jinja_builtins.cpp; the walk itself in jinja_eval.cpp.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/error.h"
#include "serve/jinja.h"
#include "serve/jinja_ast.h"
#include "serve/jinja_value.h"

namespace lowbit::jinja {

// A variable scope. For loops, macro calls and call blocks open one; `if` does not.
struct Scope {
  std::unordered_map<std::string, Value> vars;
  std::shared_ptr<Scope> parent;
  bool call_block = false;  // the scope a {% call %} passes to the macro (it holds `caller`)
  bool captured = false;    // referenced by a macro/caller closure (registered for cleanup)

  explicit Scope(std::shared_ptr<Scope> p = nullptr) : parent(std::move(p)) {}
  const Value* lookup(const std::string& name) const;
  void set(const std::string& name, Value v) { vars[name] = std::move(v); }
};
using ScopePtr = std::shared_ptr<Scope>;

class Interpreter;

struct CallContext {
  Interpreter& interp;
  ScopePtr site;  // scope of the call site
};

// raise_exception('msg'): a lowbit::Error whose message is exactly msg.
class TemplateRaise : public Error {
 public:
  using Error::Error;
};

struct BreakSignal {};
struct ContinueSignal {};

class Interpreter {
 public:
  explicit Interpreter(const RenderOptions& options) : opts_(options) {}
  ~Interpreter();  // breaks the reference cycles namespaces and closures may form
  Interpreter(const Interpreter&) = delete;
  Interpreter& operator=(const Interpreter&) = delete;

  std::string run(const Program& program, const nlohmann::ordered_json& context);

  // --- services for builtins ---
  [[noreturn]] void fail(const std::string& msg) const;  // runtime error at the current line
  void count_iterations(uint64_t n);                     // loop/item budget
  Value eval(const Node& node, const ScopePtr& scope);
  // Positional arguments, then one kwargs object if any keyword was given (reference convention).
  Args eval_call_args(const NodeList& nodes, size_t first, const ScopePtr& scope);
  // Positional arguments and keyword arguments separately.
  std::pair<Args, std::shared_ptr<ObjectData>> eval_args(const NodeList& nodes, size_t first, const ScopePtr& scope);
  Value new_namespace(std::shared_ptr<ObjectData> data);
  const RenderOptions& options() const { return opts_; }
  void set_line(int line) { line_ = line; }

 private:
  RenderOptions opts_;
  int line_ = 0;
  int depth_ = 0;
  uint64_t steps_ = 0, iterations_ = 0;
  std::vector<std::shared_ptr<ObjectData>> namespaces_;
  std::vector<ScopePtr> closures_;

  struct DepthGuard {
    Interpreter& in;
    explicit DepthGuard(Interpreter& i);
    ~DepthGuard() { --in.depth_; }
  };

  void append(std::string& out, const std::string& text) const;
  void render_block(const NodeList& body, const ScopePtr& scope, std::string& out);
  void render(const Node& node, const ScopePtr& scope, std::string& out);
  std::string render_to_string(const NodeList& body, const ScopePtr& scope);
  void render_for(const Node& node, const ScopePtr& scope, std::string& out);
  std::vector<Value> for_items(const Node& node, const ScopePtr& loop_scope, const Value& iterable);
  void bind_target(const Node& target, const Value& item, Scope& scope);
  void exec_set(const Node& node, const ScopePtr& scope);
  void define_macro(const Node& node, const ScopePtr& scope);
  Value call_block(const Node& node, const ScopePtr& scope);
  void bind_macro_args(const std::string& display_name, const Node& node, const NodeList& params, Args args,
                       const ScopePtr& scope);
  void capture(const ScopePtr& scope);

  Value eval_binary(const Node& node, const ScopePtr& scope);
  Value power(const Value& left, const Value& right) const;
  Value string_binary(const std::string& op, const Value& left, const Value& right) const;
  Value eval_unary(const Node& node, const ScopePtr& scope);
  Value eval_member(const Node& node, const ScopePtr& scope);
  Value eval_slice(const Value& object, const Node& slice, const ScopePtr& scope);
  Value eval_call(const Node& node, const ScopePtr& scope);
  Value eval_test(const Node& node, const ScopePtr& scope);
  Value eval_literal(const Node& node, const ScopePtr& scope);
};

// --- builtins (jinja_builtins.cpp) ---
void install_globals(Scope& global);
// The reference's `builtins` of a value: string methods, dict methods, `length`. Undefined if none.
Value builtin_member(Interpreter& in, const Value& object, const std::string& name);
// Applies filter node `filter` (Filter kind; kids[0] is the operand expression, ignored here).
Value apply_filter(Interpreter& in, const Value& operand, const Node& filter, const ScopePtr& scope);
// Runs test `name` on args (operand first). Unknown tests throw "Unknown test: name".
bool run_test(Interpreter& in, const std::string& name, const Args& args);
// Python-style slicing of a sequence of n items: the indexes taken, in order.
std::vector<size_t> slice_indexes(size_t n, const Value& start, const Value& stop, const Value& step);
// UTF-16 code-unit indexing of a string (JavaScript String.prototype.at). Undefined out of range.
Value string_at(const std::string& s, double index);

}  // namespace lowbit::jinja
