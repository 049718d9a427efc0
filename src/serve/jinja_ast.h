// Jinja syntax tree (internal). One node type; what `name`, `kids`, `body`, `alt` and `params`
// hold depends on the kind, as listed per kind below. A parsed tree is immutable, so one
// Template may render on many threads at once.
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace lowbit::jinja {

enum class NodeKind {
  // Expressions
  Identifier,  // name
  IntLit,      // number
  FloatLit,    // number
  StringLit,   // name = value (also template text)
  ArrayLit,    // kids = elements
  TupleLit,    // kids = elements
  ObjectLit,   // kids = key0, value0, key1, value1, ...
  Binary,      // name = operator ("+", "and", "not in", ...), kids = left, right
  Unary,       // name = "not" | "-" | "+", kids = operand
  Member,      // flag = computed ([...]), kids = object, property (Identifier/IntLit after a dot)
  Slice,       // kids = start, stop, step (each may be null)
  Call,        // kids = callee, arguments... (arguments may be Kwarg, Spread, KwSpread)
  Filter,      // name = filter, flag = called with (...), kids = operand (null in a filter block), args...
  Test,        // name = test, flag = negated, kids = operand, args... (args: lowbit extension)
  Ternary,     // kids = condition, if_true, if_false
  Select,      // `a if b` without else: kids = value, condition
  Kwarg,       // name = key, kids = value
  Spread,      // *expr: kids = expr
  KwSpread,    // **expr: kids = expr
  // Statements
  Text,        // name = text
  Output,      // {{ expr }}: kids = expr
  If,          // kids = condition, body, alt = else branch (an elif is a nested If)
  For,         // kids = target (Identifier or TupleLit), iterable (maybe Select); body, alt = else
  Set,         // kids = target, value (null for a block set); body = block
  Macro,       // name, params (Identifier or Kwarg with default), body; special = uses caller/varargs/kwargs
  CallBlock,   // kids = callee, call arguments...; params = caller parameters; body
  FilterBlock, // kids = Filter node with a null operand; body
  Break,
  Continue,
  Comment,
};

struct Node;
using NodePtr = std::unique_ptr<Node>;
using NodeList = std::vector<NodePtr>;

enum SpecialArg : unsigned { kUsesCaller = 1, kUsesVarargs = 2, kUsesKwargs = 4 };

struct Node {
  NodeKind kind;
  int line = 0;
  int height = 1;  // longest path to a leaf, kept below kMaxTreeHeight so evaluation recursion is bounded
  std::string name;
  double number = 0;
  bool flag = false;
  unsigned special = 0;
  NodeList kids, body, alt, params;

  Node(NodeKind k, int ln) : kind(k), line(ln) {}
  const Node* kid(size_t i) const { return i < kids.size() ? kids[i].get() : nullptr; }
};

// Deepest syntax tree the parser builds (long operator chains included).
inline constexpr int kMaxTreeHeight = 512;

struct Program {
  NodeList body;
};

}  // namespace lowbit::jinja
