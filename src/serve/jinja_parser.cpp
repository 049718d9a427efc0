#include "serve/jinja_parser.h"

#include <algorithm>
#include <cstdlib>
#include <initializer_list>
#include <set>

#include "base/error.h"

namespace lowbit::jinja {

namespace {

enum class ArgMode { Call, Parameters };

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : t_(std::move(tokens)) {}

  Program run() {
    Program p;
    while (cur_ < t_.size()) p.body.push_back(parse_any());
    return p;
  }

 private:
  std::vector<Token> t_;
  size_t cur_ = 0;
  int depth_ = 0;

  struct DepthGuard {
    Parser& p;
    explicit DepthGuard(Parser& parser) : p(parser) {
      if (++p.depth_ > kMaxParseDepth) p.fail("nesting deeper than " + std::to_string(kMaxParseDepth) + " levels");
    }
    ~DepthGuard() { --p.depth_; }
  };

  // --- token helpers ---
  int line() const {
    if (t_.empty()) return 1;
    return t_[std::min(cur_, t_.size() - 1)].line;
  }
  [[noreturn]] void fail(const std::string& msg) const {
    throw Error("jinja", "line " + std::to_string(line()) + ": " + msg);
  }
  std::string describe_current() const {
    if (cur_ >= t_.size()) return "end of template";
    const Token& tok = t_[cur_];
    if (tok.type == Tok::Ident) return "'" + tok.value + "'";
    if (tok.type == Tok::Text) return "text";
    if (tok.type == Tok::String) return "string literal";
    if (tok.type == Tok::Number) return "number " + tok.value;
    return token_name(tok.type);
  }
  bool is(Tok type, size_t ahead = 0) const { return cur_ + ahead < t_.size() && t_[cur_ + ahead].type == type; }
  bool is_ident(const char* name, size_t ahead = 0) const { return is(Tok::Ident, ahead) && t_[cur_ + ahead].value == name; }
  bool is_statement(std::initializer_list<const char*> names) const {
    if (!is(Tok::OpenStmt) || !is(Tok::Ident, 1)) return false;
    for (const char* n : names) {
      if (t_[cur_ + 1].value == n) return true;
    }
    return false;
  }
  const Token& expect(Tok type, const char* what) {
    if (!is(type)) fail(std::string("expected ") + what + ", got " + describe_current());
    return t_[cur_++];
  }
  void expect_ident(const char* name) {
    if (!is_ident(name)) fail(std::string("expected '") + name + "', got " + describe_current());
    ++cur_;
  }
  void expect_end_tag(const char* name) {
    expect(Tok::OpenStmt, "'{%'");
    expect_ident(name);
    expect(Tok::CloseStmt, "'%}'");
  }

  NodePtr node(NodeKind k, int ln) { return std::make_unique<Node>(k, ln); }
  NodePtr finish(NodePtr n);

  // Statements
  NodePtr parse_any();
  NodePtr parse_statement();
  void parse_body(NodeList& body, std::initializer_list<const char*> until, const char* opener, int opener_line);
  NodePtr parse_set(int ln);
  NodePtr parse_if(int ln);
  NodePtr parse_for(int ln);
  NodePtr parse_macro(int ln);
  NodePtr parse_call_block(int ln);
  NodePtr parse_filter_block(int ln);

  // Expressions, lowest precedence first
  NodePtr parse_expression();
  NodePtr parse_sequence(bool primary);
  NodePtr parse_or();
  NodePtr parse_and();
  NodePtr parse_not();
  NodePtr parse_comparison();
  NodePtr parse_additive();
  NodePtr parse_multiplicative();
  NodePtr parse_power();
  NodePtr parse_test();
  NodePtr parse_filter();
  NodePtr parse_unary_sign();
  NodePtr parse_call_member();
  NodePtr parse_call(NodePtr callee);
  NodePtr parse_member(NodePtr object);
  NodePtr parse_subscript();
  NodePtr parse_primary();
  void parse_args(ArgMode mode, NodeList& out);
  NodePtr binary(NodePtr left, const std::string& op, NodePtr right, int ln);
};

NodePtr Parser::finish(NodePtr n) {
  int h = 0;
  for (const NodeList* list : {&n->kids, &n->body, &n->alt, &n->params}) {
    for (const NodePtr& k : *list) {
      if (k) h = std::max(h, k->height);
    }
  }
  n->height = h + 1;
  if (n->height > kMaxTreeHeight) fail("expression or nesting too deep (syntax tree over " + std::to_string(kMaxTreeHeight) + " levels)");
  return n;
}

NodePtr Parser::binary(NodePtr left, const std::string& op, NodePtr right, int ln) {
  auto n = node(NodeKind::Binary, ln);
  n->name = op;
  n->kids.push_back(std::move(left));
  n->kids.push_back(std::move(right));
  return finish(std::move(n));
}

// ---------------------------------------------------------------------------------------------
// Statements

NodePtr Parser::parse_any() {
  const Token& tok = t_[cur_];
  switch (tok.type) {
    case Tok::Comment: {
      auto n = node(NodeKind::Comment, tok.line);
      ++cur_;
      return n;
    }
    case Tok::Text: {
      auto n = node(NodeKind::Text, tok.line);
      n->name = tok.value;
      ++cur_;
      return n;
    }
    case Tok::OpenStmt: return parse_statement();
    case Tok::OpenExpr: {
      auto n = node(NodeKind::Output, tok.line);
      ++cur_;
      n->kids.push_back(parse_expression());
      expect(Tok::CloseExpr, "'}}'");
      return finish(std::move(n));
    }
    default: fail("unexpected " + describe_current());
  }
}

void Parser::parse_body(NodeList& body, std::initializer_list<const char*> until, const char* opener, int opener_line) {
  while (!is_statement(until)) {
    if (cur_ >= t_.size()) {
      throw Error("jinja", "line " + std::to_string(opener_line) + ": unexpected end of template: '{% " + opener +
                               " %}' opened on line " + std::to_string(opener_line) + " is not closed (expected '{% end" +
                               opener + " %}')");
    }
    body.push_back(parse_any());
  }
}

NodePtr Parser::parse_statement() {
  DepthGuard guard(*this);
  const int ln = t_[cur_].line;
  expect(Tok::OpenStmt, "'{%'");
  if (!is(Tok::Ident)) fail("expected a statement name after '{%', got " + describe_current());
  const std::string name = t_[cur_++].value;
  if (name == "set") return parse_set(ln);
  if (name == "if") return parse_if(ln);
  if (name == "for") return parse_for(ln);
  if (name == "macro") return parse_macro(ln);
  if (name == "call") return parse_call_block(ln);
  if (name == "filter") return parse_filter_block(ln);
  if (name == "break" || name == "continue") {
    expect(Tok::CloseStmt, "'%}'");
    return node(name == "break" ? NodeKind::Break : NodeKind::Continue, ln);
  }
  static const std::set<std::string> kClosers = {"endif", "elif", "else", "endfor", "endset", "endmacro", "endcall", "endfilter"};
  if (kClosers.count(name)) fail("unexpected '{% " + name + " %}' (no open block it could belong to)");
  fail("unknown statement '" + name + "'");
}

NodePtr Parser::parse_set(int ln) {
  auto n = node(NodeKind::Set, ln);
  NodePtr target = parse_sequence(false);
  const NodeKind tk = target->kind;
  if (tk != NodeKind::Identifier && tk != NodeKind::TupleLit && tk != NodeKind::Member) {
    fail("invalid target of 'set' (expected a name, a tuple of names or namespace.attribute)");
  }
  n->kids.push_back(std::move(target));
  if (is(Tok::Equals)) {
    ++cur_;
    n->kids.push_back(parse_sequence(false));
  } else {
    n->kids.push_back(nullptr);
    expect(Tok::CloseStmt, "'=' or '%}'");
    parse_body(n->body, {"endset"}, "set", ln);
    expect(Tok::OpenStmt, "'{%'");
    expect_ident("endset");
  }
  expect(Tok::CloseStmt, "'%}'");
  return finish(std::move(n));
}

NodePtr Parser::parse_if(int ln) {
  auto top = node(NodeKind::If, ln);
  Node* cur = top.get();
  std::vector<Node*> chain;  // heights are fixed up innermost-first once the chain is complete
  while (true) {
    chain.push_back(cur);
    cur->kids.push_back(parse_expression());
    expect(Tok::CloseStmt, "'%}'");
    parse_body(cur->body, {"elif", "else", "endif"}, "if", ln);
    if (is_statement({"elif"})) {
      auto elif = node(NodeKind::If, t_[cur_].line);
      cur_ += 2;
      Node* next = elif.get();
      cur->alt.push_back(std::move(elif));
      cur = next;
      continue;
    }
    if (is_statement({"else"})) {
      cur_ += 2;
      expect(Tok::CloseStmt, "'%}'");
      parse_body(cur->alt, {"endif"}, "if", ln);
    }
    break;
  }
  expect_end_tag("endif");
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    int h = 0;
    for (const NodeList* list : {&(*it)->kids, &(*it)->body, &(*it)->alt}) {
      for (const NodePtr& k : *list) h = std::max(h, k->height);
    }
    (*it)->height = h + 1;
  }
  if (top->height > kMaxTreeHeight) fail("too many nested blocks");
  return top;
}

NodePtr Parser::parse_for(int ln) {
  auto n = node(NodeKind::For, ln);
  NodePtr target = parse_sequence(true);
  if (target->kind != NodeKind::Identifier && target->kind != NodeKind::TupleLit) {
    fail("expected a name or a tuple of names as the loop variable");
  }
  n->kids.push_back(std::move(target));
  if (!is_ident("in")) fail("expected 'in' after the loop variable, got " + describe_current());
  ++cur_;
  n->kids.push_back(parse_expression());
  expect(Tok::CloseStmt, "'%}'");
  parse_body(n->body, {"endfor", "else"}, "for", ln);
  if (is_statement({"else"})) {
    cur_ += 2;
    expect(Tok::CloseStmt, "'%}'");
    parse_body(n->alt, {"endfor"}, "for", ln);
  }
  expect_end_tag("endfor");
  return finish(std::move(n));
}

// Which of caller / varargs / kwargs the body of a macro or call block reads (simplified: any
// use of the name that is not one of the block's own parameters).
void scan_special(const Node* n, unsigned& found, int depth) {
  if (!n || depth > kMaxTreeHeight + 8) return;
  if (n->kind == NodeKind::Identifier) {
    if (n->name == "caller") found |= kUsesCaller;
    if (n->name == "varargs") found |= kUsesVarargs;
    if (n->name == "kwargs") found |= kUsesKwargs;
  }
  for (const NodeList* list : {&n->kids, &n->body, &n->alt}) {
    for (const NodePtr& k : *list) scan_special(k.get(), found, depth + 1);
  }
  for (const NodePtr& p : n->params) {  // parameter defaults of nested blocks
    if (p && p->kind == NodeKind::Kwarg) scan_special(p->kid(0), found, depth + 1);
  }
}

unsigned special_args(const NodeList& params, const NodeList& body) {
  unsigned found = 0;
  for (const NodePtr& s : body) scan_special(s.get(), found, 0);
  for (const NodePtr& p : params) {
    const std::string& name = p->name;  // Identifier and Kwarg both keep the name here
    if (name == "caller") found &= ~kUsesCaller;
    if (name == "varargs") found &= ~kUsesVarargs;
    if (name == "kwargs") found &= ~kUsesKwargs;
  }
  return found;
}

NodePtr Parser::parse_macro(int ln) {
  auto n = node(NodeKind::Macro, ln);
  NodePtr name = parse_primary();
  if (name->kind != NodeKind::Identifier) fail("expected a macro name after 'macro'");
  n->name = name->name;
  parse_args(ArgMode::Parameters, n->params);
  expect(Tok::CloseStmt, "'%}'");
  parse_body(n->body, {"endmacro"}, "macro", ln);
  expect_end_tag("endmacro");
  n->special = special_args(n->params, n->body);
  return finish(std::move(n));
}

NodePtr Parser::parse_call_block(int ln) {
  auto n = node(NodeKind::CallBlock, ln);
  if (is(Tok::LParen)) parse_args(ArgMode::Parameters, n->params);
  NodePtr callee = parse_primary();
  if (callee->kind != NodeKind::Identifier) fail("expected a macro name after 'call'");
  n->kids.push_back(std::move(callee));
  parse_args(ArgMode::Call, n->kids);
  expect(Tok::CloseStmt, "'%}'");
  parse_body(n->body, {"endcall"}, "call", ln);
  expect_end_tag("endcall");
  n->special = special_args(n->params, n->body);
  return finish(std::move(n));
}

NodePtr Parser::parse_filter_block(int ln) {
  auto n = node(NodeKind::FilterBlock, ln);
  NodePtr name = parse_primary();
  if (name->kind != NodeKind::Identifier) fail("expected a filter name after 'filter'");
  auto filter = node(NodeKind::Filter, ln);
  filter->name = name->name;
  filter->kids.push_back(nullptr);
  if (is(Tok::LParen)) {
    filter->flag = true;
    parse_args(ArgMode::Call, filter->kids);
  }
  n->kids.push_back(finish(std::move(filter)));
  expect(Tok::CloseStmt, "'%}'");
  parse_body(n->body, {"endfilter"}, "filter", ln);
  expect_end_tag("endfilter");
  return finish(std::move(n));
}

// ---------------------------------------------------------------------------------------------
// Expressions

NodePtr Parser::parse_expression() {
  DepthGuard guard(*this);
  const int ln = line();
  NodePtr a = parse_or();
  if (!is_ident("if")) return a;
  ++cur_;
  NodePtr test = parse_or();
  if (is_ident("else")) {
    ++cur_;
    auto n = node(NodeKind::Ternary, ln);
    n->kids.push_back(std::move(test));
    n->kids.push_back(std::move(a));
    n->kids.push_back(parse_expression());
    return finish(std::move(n));
  }
  auto n = node(NodeKind::Select, ln);
  n->kids.push_back(std::move(a));
  n->kids.push_back(std::move(test));
  return finish(std::move(n));
}

NodePtr Parser::parse_sequence(bool primary) {
  const int ln = line();
  NodePtr first = primary ? parse_primary() : parse_expression();
  if (!is(Tok::Comma)) return first;
  auto tuple = node(NodeKind::TupleLit, ln);
  tuple->kids.push_back(std::move(first));
  while (is(Tok::Comma)) {
    ++cur_;
    tuple->kids.push_back(primary ? parse_primary() : parse_expression());
  }
  return finish(std::move(tuple));
}

NodePtr Parser::parse_or() {
  NodePtr left = parse_and();
  while (is_ident("or")) {
    const int ln = t_[cur_++].line;
    left = binary(std::move(left), "or", parse_and(), ln);
  }
  return left;
}

NodePtr Parser::parse_and() {
  NodePtr left = parse_not();
  while (is_ident("and")) {
    const int ln = t_[cur_++].line;
    left = binary(std::move(left), "and", parse_not(), ln);
  }
  return left;
}

NodePtr Parser::parse_not() {
  if (!is_ident("not")) return parse_comparison();
  DepthGuard guard(*this);
  auto n = node(NodeKind::Unary, t_[cur_++].line);
  n->name = "not";
  n->kids.push_back(parse_not());
  return finish(std::move(n));
}

NodePtr Parser::parse_comparison() {
  NodePtr left = parse_additive();
  while (true) {
    std::string op;
    const int ln = line();
    if (is_ident("not") && is_ident("in", 1)) {
      op = "not in";
      cur_ += 2;
    } else if (is_ident("in")) {
      op = "in";
      ++cur_;
    } else if (is(Tok::Comparison)) {
      op = t_[cur_++].value;
    } else {
      return left;
    }
    left = binary(std::move(left), op, parse_additive(), ln);
  }
}

NodePtr Parser::parse_additive() {
  NodePtr left = parse_multiplicative();
  while (is(Tok::Additive)) {
    const Token& op = t_[cur_++];
    left = binary(std::move(left), op.value, parse_multiplicative(), op.line);
  }
  return left;
}

NodePtr Parser::parse_multiplicative() {
  NodePtr left = parse_power();
  while (is(Tok::Multiplicative)) {
    const Token& op = t_[cur_++];
    left = binary(std::move(left), op.value, parse_power(), op.line);
  }
  return left;
}

NodePtr Parser::parse_power() {
  NodePtr left = parse_test();
  while (is(Tok::Power)) {
    const Token& op = t_[cur_++];
    left = binary(std::move(left), op.value, parse_test(), op.line);
  }
  return left;
}

NodePtr Parser::parse_test() {
  NodePtr operand = parse_filter();
  while (is_ident("is")) {
    auto n = node(NodeKind::Test, t_[cur_++].line);
    if (is_ident("not")) {
      n->flag = true;
      ++cur_;
    }
    NodePtr name = parse_primary();
    if (name->kind != NodeKind::Identifier) fail("expected a test name after 'is'");
    n->name = name->name;
    n->kids.push_back(std::move(operand));
    if (is(Tok::LParen)) parse_args(ArgMode::Call, n->kids);  // lowbit extension: divisibleby(3)
    operand = finish(std::move(n));
  }
  return operand;
}

NodePtr Parser::parse_filter() {
  NodePtr operand = parse_unary_sign();
  while (is(Tok::Pipe)) {
    auto n = node(NodeKind::Filter, t_[cur_++].line);
    NodePtr name = parse_primary();
    if (name->kind != NodeKind::Identifier) fail("expected a filter name after '|'");
    n->name = name->name;
    n->kids.push_back(std::move(operand));
    if (is(Tok::LParen)) {
      n->flag = true;
      parse_args(ArgMode::Call, n->kids);
      if (is(Tok::Dot) || is(Tok::LBracket) || is(Tok::LParen)) fail("unexpected " + describe_current() + " after a filter call");
    }
    operand = finish(std::move(n));
  }
  return operand;
}

NodePtr Parser::parse_unary_sign() {
  if ((is(Tok::Unary) || is(Tok::Additive)) && (t_[cur_].value == "-" || t_[cur_].value == "+")) {
    DepthGuard guard(*this);
    auto n = node(NodeKind::Unary, t_[cur_].line);
    n->name = t_[cur_++].value;
    n->kids.push_back(parse_unary_sign());
    return finish(std::move(n));
  }
  return parse_call_member();
}

NodePtr Parser::parse_call_member() {
  NodePtr member = parse_member(parse_primary());
  return is(Tok::LParen) ? parse_call(std::move(member)) : std::move(member);
}

NodePtr Parser::parse_call(NodePtr callee) {
  while (is(Tok::LParen)) {
    auto call = node(NodeKind::Call, line());
    call->kids.push_back(std::move(callee));
    parse_args(ArgMode::Call, call->kids);
    callee = parse_member(finish(std::move(call)));
  }
  return callee;
}

void Parser::parse_args(ArgMode mode, NodeList& out) {
  expect(Tok::LParen, "'('");
  std::set<std::string> names;
  bool saw_keyword = false, saw_spread = false;
  const bool params = mode == ArgMode::Parameters;
  while (!is(Tok::RParen)) {
    if (cur_ >= t_.size()) fail("unexpected end of template in an argument list");
    const int ln = line();
    const bool kw_spread = is(Tok::Power);
    const bool spread = is(Tok::Multiplicative) && t_[cur_].value == "*";
    if (params && (kw_spread || spread)) fail("argument unpacking is not allowed in parameter declarations");
    if (kw_spread) {
      ++cur_;
      auto n = node(NodeKind::KwSpread, ln);
      n->kids.push_back(parse_expression());
      out.push_back(finish(std::move(n)));
      if (is(Tok::Comma)) ++cur_;
      if (!is(Tok::RParen)) fail("'**' must be applied to the final argument");
      break;
    }
    NodePtr arg;
    if (spread) {
      if (saw_spread) fail("only one '*' argument unpacking is allowed");
      saw_spread = true;
      ++cur_;
      arg = node(NodeKind::Spread, ln);
      arg->kids.push_back(parse_expression());
      arg = finish(std::move(arg));
    } else {
      arg = parse_expression();
      if (is(Tok::Equals)) {
        ++cur_;
        if (arg->kind != NodeKind::Identifier) fail(params ? "expected a name for a parameter" : "expected a name for a keyword argument");
        auto kw = node(NodeKind::Kwarg, ln);
        kw->name = arg->name;
        kw->kids.push_back(parse_expression());
        arg = finish(std::move(kw));
      }
      if (params) {
        if (arg->kind != NodeKind::Identifier && arg->kind != NodeKind::Kwarg) fail("expected a name for a parameter");
        if (!names.insert(arg->name).second) fail("duplicate parameter name: " + arg->name);
      }
      if (arg->kind == NodeKind::Kwarg) {
        saw_keyword = true;
      } else if (saw_keyword) {
        fail(params ? "non-default argument follows default argument" : "positional arguments must come before keyword arguments");
      } else if (saw_spread) {
        fail("positional arguments must not follow '*' argument unpacking");
      }
    }
    out.push_back(std::move(arg));
    if (is(Tok::Comma)) ++cur_;
  }
  expect(Tok::RParen, "')'");
}

// [index] or a slice [start:stop:step]
NodePtr Parser::parse_subscript() {
  const int ln = line();
  NodeList parts;
  bool slice = false;
  while (!is(Tok::RBracket)) {
    if (cur_ >= t_.size()) fail("unexpected end of template in a subscript");
    if (is(Tok::Colon)) {
      parts.push_back(nullptr);
      ++cur_;
      slice = true;
    } else {
      parts.push_back(parse_expression());
      if (is(Tok::Colon)) {
        ++cur_;
        slice = true;
      }
    }
  }
  if (parts.empty()) fail("expected an index or a slice inside '[]'");
  if (!slice) return std::move(parts[0]);
  if (parts.size() > 3) fail("a slice takes at most 3 parts");
  auto n = node(NodeKind::Slice, ln);
  n->kids = std::move(parts);
  n->kids.resize(3);
  return finish(std::move(n));
}

NodePtr Parser::parse_member(NodePtr object) {
  while (is(Tok::Dot) || is(Tok::LBracket)) {
    const bool computed = is(Tok::LBracket);
    auto n = node(NodeKind::Member, t_[cur_++].line);
    n->flag = computed;
    n->kids.push_back(std::move(object));
    if (computed) {
      n->kids.push_back(parse_subscript());
      expect(Tok::RBracket, "']'");
    } else {
      NodePtr prop = parse_primary();
      if (prop->kind != NodeKind::Identifier && prop->kind != NodeKind::IntLit) fail("expected a name after '.'");
      n->kids.push_back(std::move(prop));
    }
    object = finish(std::move(n));
  }
  return object;
}

NodePtr Parser::parse_primary() {
  if (cur_ >= t_.size()) fail("unexpected end of template, expected an expression");
  const Token& tok = t_[cur_++];
  switch (tok.type) {
    case Tok::Number: {
      const bool is_float = tok.value.find('.') != std::string::npos;
      auto n = node(is_float ? NodeKind::FloatLit : NodeKind::IntLit, tok.line);
      n->number = std::strtod(tok.value.c_str(), nullptr);
      return n;
    }
    case Tok::String: {
      auto n = node(NodeKind::StringLit, tok.line);
      n->name = tok.value;
      while (is(Tok::String)) n->name += t_[cur_++].value;  // adjacent literals concatenate
      return n;
    }
    case Tok::Ident: {
      auto n = node(NodeKind::Identifier, tok.line);
      n->name = tok.value;
      return n;
    }
    case Tok::LParen: {
      NodePtr e = parse_sequence(false);
      expect(Tok::RParen, "')'");
      return e;
    }
    case Tok::LBracket: {
      auto n = node(NodeKind::ArrayLit, tok.line);
      while (!is(Tok::RBracket)) {
        if (cur_ >= t_.size()) fail("unexpected end of template in a list literal");
        n->kids.push_back(parse_expression());
        if (is(Tok::Comma)) ++cur_;
      }
      ++cur_;
      return finish(std::move(n));
    }
    case Tok::LBrace: {
      auto n = node(NodeKind::ObjectLit, tok.line);
      while (!is(Tok::RBrace)) {
        if (cur_ >= t_.size()) fail("unexpected end of template in a dict literal");
        n->kids.push_back(parse_expression());
        expect(Tok::Colon, "':' between key and value");
        n->kids.push_back(parse_expression());
        if (is(Tok::Comma)) ++cur_;
      }
      ++cur_;
      return finish(std::move(n));
    }
    default:
      --cur_;
      fail("unexpected " + describe_current() + ", expected an expression");
  }
}

}  // namespace

Program parse(std::vector<Token> tokens) {
  Parser p(std::move(tokens));
  return p.run();
}

}  // namespace lowbit::jinja
