#include "jinja/parser.h"

#include <algorithm>
#include <set>

#include "util/error.h"

namespace nucleus::jinja {

namespace {

[[noreturn]] void fail(int line, const std::string& msg) {
  throw Error("jinja: line " + std::to_string(line) + ": " + msg);
}

std::string describe(const Token& t) {
  switch (t.type) {
    case TokenType::Name:
      return "name '" + t.text + "'";
    case TokenType::String:
      return "string literal";
    case TokenType::Int:
    case TokenType::Float:
      return "number " + t.text;
    case TokenType::Op:
      return "'" + t.text + "'";
  }
  return "token";
}

class Parser {
 public:
  explicit Parser(std::vector<Segment> segs) : segs_(std::move(segs)) {}

  Body parse_template() {
    Body body = parse_body();
    if (si_ < segs_.size()) {
      // parse_body stops only at a block keyword nobody opened.
      fail(segs_[si_].line, "unexpected '{% " + keyword() + " %}' outside of a matching block");
    }
    return body;
  }

 private:
  // ---- statement level -------------------------------------------------

  // The keyword of the statement segment at si_ ("" when not a statement).
  std::string keyword() const {
    if (si_ >= segs_.size() || segs_[si_].type != SegmentType::Statement) return "";
    const auto& toks = segs_[si_].tokens;
    if (toks.empty() || toks[0].type != TokenType::Name) return "";
    return toks[0].text;
  }

  static bool is_block_terminator(const std::string& kw) {
    static const std::set<std::string> kStops = {"elif",   "else",     "endif",        "endfor",
                                                 "endset", "endmacro", "endgeneration"};
    return kStops.count(kw) > 0;
  }

  // Parses statements until end of input or a block terminator keyword (left
  // unconsumed for the caller).
  Body parse_body() {
    Body body;
    while (si_ < segs_.size()) {
      const Segment& seg = segs_[si_];
      if (seg.type == SegmentType::Text) {
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::Text;
        s->line = seg.line;
        s->text = seg.text;
        body.push_back(std::move(s));
        ++si_;
      } else if (seg.type == SegmentType::Output) {
        begin_segment(1, 0);
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::Output;
        s->line = seg.line;
        if (at_end()) fail(seg.line, "empty expression '{{ }}'");
        s->expr = parse_expression(true);
        expect_end("'{{ ... }}' expression");
        body.push_back(std::move(s));
        ++si_;
      } else {
        if (is_block_terminator(keyword())) return body;
        body.push_back(parse_statement());
      }
    }
    return body;
  }

  void begin_segment(int /*unused*/, size_t first_token) {
    toks_ = &segs_[si_].tokens;
    ti_ = first_token;
    seg_line_ = segs_[si_].line;
  }

  // Consumes the terminator statement `kw` that must close the block opened at open_line.
  void expect_terminator(const std::string& kw, const std::string& opener, int open_line) {
    if (si_ >= segs_.size())
      fail(open_line, "unterminated '{% " + opener + " %}' block (missing '{% " + kw + " %}')");
    if (keyword() != kw)
      fail(segs_[si_].line, "expected '{% " + kw + " %}' to close '{% " + opener +
                                " %}' from line " + std::to_string(open_line) + ", found '{% " +
                                keyword() + " %}'");
    begin_segment(1, 1);
    expect_end("'{% " + kw + " %}'");
    ++si_;
  }

  Body parse_nested_body() {
    if (++nesting_ > kMaxParseNesting)
      fail(seg_line_, "blocks nested deeper than " + std::to_string(kMaxParseNesting));
    Body b = parse_body();
    --nesting_;
    return b;
  }

  StmtPtr parse_statement() {
    const Segment& seg = segs_[si_];
    begin_segment(1, 0);
    if (at_end()) fail(seg.line, "empty statement '{% %}'");
    const Token& first = next();
    if (first.type != TokenType::Name)
      fail(seg.line, "expected a statement keyword, found " + describe(first));
    const std::string kw = first.text;
    auto s = std::make_unique<Stmt>();
    s->line = seg.line;
    if (kw == "if") {
      s->kind = StmtKind::If;
      ExprPtr cond = parse_expression(true);
      expect_end("'{% if %}'");
      ++si_;
      while (true) {
        Body b = parse_nested_body();
        s->branches.emplace_back(std::move(cond), std::move(b));
        if (si_ >= segs_.size())
          fail(s->line, "unterminated '{% if %}' block (missing '{% endif %}')");
        std::string k = keyword();
        begin_segment(1, 1);
        if (k == "elif") {
          if (!s->branches.back().first) fail(seg_line_, "'{% elif %}' after '{% else %}'");
          cond = parse_expression(true);
          expect_end("'{% elif %}'");
          ++si_;
        } else if (k == "else") {
          if (!s->branches.back().first) fail(seg_line_, "second '{% else %}' in one '{% if %}'");
          cond = nullptr;
          expect_end("'{% else %}'");
          ++si_;
        } else if (k == "endif") {
          expect_end("'{% endif %}'");
          ++si_;
          break;
        } else {
          fail(seg_line_, "expected '{% endif %}' to close '{% if %}' from line " +
                              std::to_string(s->line) + ", found '{% " + k + " %}'");
        }
      }
      return s;
    }
    if (kw == "for") {
      s->kind = StmtKind::For;
      s->targets = parse_targets();
      expect_name("in", "'{% for %}'");
      s->expr = parse_tuple(false);
      if (peek_name("if")) {
        next();
        s->filter = parse_expression(false);
      }
      if (peek_name("recursive")) fail(seg_line_, "recursive for loops are not supported");
      expect_end("'{% for %}'");
      ++si_;
      ++loop_depth_;
      s->body = parse_nested_body();
      --loop_depth_;
      if (si_ < segs_.size() && keyword() == "else") {
        begin_segment(1, 1);
        expect_end("'{% else %}'");
        ++si_;
        s->else_body = parse_nested_body();
      }
      expect_terminator("endfor", "for", s->line);
      return s;
    }
    if (kw == "set") {
      const Token& t = next_checked("a variable name after 'set'");
      if (t.type != TokenType::Name)
        fail(t.line, "expected a variable name after 'set', found " + describe(t));
      s->targets.push_back(t.text);
      if (peek_op(".")) {
        next();
        const Token& a = next_checked("an attribute name");
        if (a.type != TokenType::Name)
          fail(a.line, "expected an attribute name after '.', found " + describe(a));
        s->ns_attr = a.text;
      } else {
        while (peek_op(",")) {
          next();
          const Token& n = next_checked("a variable name");
          if (n.type != TokenType::Name)
            fail(n.line, "expected a variable name, found " + describe(n));
          s->targets.push_back(n.text);
        }
      }
      if (at_end()) {
        if (s->targets.size() != 1 || !s->ns_attr.empty())
          fail(seg_line_, "block '{% set %}' takes exactly one plain variable name");
        s->kind = StmtKind::SetBlock;
        ++si_;
        s->body = parse_nested_body();
        expect_terminator("endset", "set", s->line);
        return s;
      }
      s->kind = StmtKind::Set;
      expect_op("=", "'{% set %}'");
      s->expr = parse_tuple(true);
      expect_end("'{% set %}'");
      ++si_;
      return s;
    }
    if (kw == "macro") {
      s->kind = StmtKind::Macro;
      const Token& n = next_checked("a macro name");
      if (n.type != TokenType::Name) fail(n.line, "expected a macro name, found " + describe(n));
      s->name = n.text;
      expect_op("(", "'{% macro %}'");
      while (!peek_op(")")) {
        const Token& p = next_checked("a parameter name");
        if (p.type != TokenType::Name)
          fail(p.line, "expected a macro parameter name, found " + describe(p));
        ExprPtr def;
        if (peek_op("=")) {
          next();
          def = parse_expression(true);
        } else if (!s->params.empty() && s->params.back().second) {
          fail(p.line,
               "macro parameter '" + p.text + "' without default follows one with a default");
        }
        s->params.emplace_back(p.text, std::move(def));
        if (!peek_op(",")) break;
        next();
      }
      expect_op(")", "'{% macro %}'");
      expect_end("'{% macro %}'");
      ++si_;
      int saved_loops = loop_depth_;
      loop_depth_ = 0;  // a loop around the definition is not around the body
      s->body = parse_nested_body();
      loop_depth_ = saved_loops;
      expect_terminator("endmacro", "macro", s->line);
      return s;
    }
    if (kw == "break" || kw == "continue") {
      if (loop_depth_ == 0) fail(seg.line, "'{% " + kw + " %}' outside of a for loop");
      s->kind = kw == "break" ? StmtKind::Break : StmtKind::Continue;
      expect_end("'{% " + kw + " %}'");
      ++si_;
      return s;
    }
    if (kw == "generation") {
      // transformers' AssistantTracker extension: renders its body unchanged
      // (it only records where assistant text lies).
      s->kind = StmtKind::Scope;
      expect_end("'{% generation %}'");
      ++si_;
      s->body = parse_nested_body();
      expect_terminator("endgeneration", "generation", s->line);
      return s;
    }
    static const std::set<std::string> kKnownUnsupported = {
        "block",  "extends",    "include", "import", "from",      "with",  "call",
        "filter", "autoescape", "do",      "trans",  "pluralize", "endraw"};
    if (kKnownUnsupported.count(kw)) fail(seg.line, "unsupported statement '{% " + kw + " %}'");
    fail(seg.line, "unknown statement '{% " + kw + " %}'");
  }

  std::vector<std::string> parse_targets() {
    std::vector<std::string> names;
    bool paren = peek_op("(");
    if (paren) next();
    while (true) {
      const Token& t = next_checked("a loop variable name");
      if (t.type != TokenType::Name)
        fail(t.line, "expected a loop variable name, found " + describe(t));
      names.push_back(t.text);
      if (!peek_op(",")) break;
      next();
    }
    if (paren) expect_op(")", "loop variables");
    return names;
  }

  // ---- token helpers ---------------------------------------------------

  bool at_end() const { return ti_ >= toks_->size(); }
  const Token* peek() const { return at_end() ? nullptr : &(*toks_)[ti_]; }
  bool peek_op(const char* op) const {
    const Token* t = peek();
    return t && t->type == TokenType::Op && t->text == op;
  }
  bool peek_name(const char* n) const {
    const Token* t = peek();
    return t && t->type == TokenType::Name && t->text == n;
  }
  const Token& next() { return (*toks_)[ti_++]; }
  const Token& next_checked(const std::string& what) {
    if (at_end()) fail(last_line(), "expected " + what + ", found end of tag");
    return next();
  }
  int last_line() const {
    return toks_->empty() ? seg_line_
                          : (*toks_)[std::min(ti_, toks_->size()) - (ti_ > 0 ? 1 : 0)].line;
  }
  void expect_op(const char* op, const std::string& where) {
    if (at_end())
      fail(last_line(), std::string("expected '") + op + "' in " + where + ", found end of tag");
    const Token& t = next();
    if (t.type != TokenType::Op || t.text != op)
      fail(t.line, std::string("expected '") + op + "' in " + where + ", found " + describe(t));
  }
  void expect_name(const char* n, const std::string& where) {
    if (at_end())
      fail(last_line(), std::string("expected '") + n + "' in " + where + ", found end of tag");
    const Token& t = next();
    if (t.type != TokenType::Name || t.text != n)
      fail(t.line, std::string("expected '") + n + "' in " + where + ", found " + describe(t));
  }
  void expect_end(const std::string& where) {
    if (!at_end()) fail(peek()->line, "unexpected " + describe(*peek()) + " in " + where);
  }

  // ---- expressions -----------------------------------------------------

  ExprPtr node(ExprKind kind, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line;
    return e;
  }
  // Records the subtree height once the children are attached.
  ExprPtr done(ExprPtr e) {
    int d = 0;
    for (const auto& a : e->args)
      if (a) d = std::max(d, a->depth);
    for (const auto& kv : e->kwargs)
      if (kv.second) d = std::max(d, kv.second->depth);
    e->depth = d + 1;
    if (e->depth > kMaxExprDepth)
      fail(e->line, "expression nested deeper than " + std::to_string(kMaxExprDepth));
    return e;
  }
  ExprPtr binary(ExprKind kind, const std::string& op, ExprPtr a, ExprPtr b, int line) {
    auto e = node(kind, line);
    e->name = op;
    e->args.push_back(std::move(a));
    e->args.push_back(std::move(b));
    return done(std::move(e));
  }

  struct Nest {
    Parser& p;
    Nest(Parser& parser, int line) : p(parser) {
      if (++p.nesting_ > kMaxParseNesting)
        fail(line, "expression nested deeper than " + std::to_string(kMaxParseNesting));
    }
    ~Nest() { --p.nesting_; }
  };

  int cur_line() const { return at_end() ? last_line() : peek()->line; }

  // Comma-separated expressions without brackets form a tuple (a list here).
  ExprPtr parse_tuple(bool with_condexpr) {
    int line = cur_line();
    ExprPtr first = parse_expression(with_condexpr);
    if (!peek_op(",")) return first;
    auto list = node(ExprKind::List, line);
    list->args.push_back(std::move(first));
    while (peek_op(",")) {
      next();
      if (at_end() || peek_name("if")) break;
      list->args.push_back(parse_expression(with_condexpr));
    }
    return done(std::move(list));
  }

  ExprPtr parse_expression(bool with_condexpr) {
    if (at_end()) fail(last_line(), "expected an expression, found end of tag");
    ExprPtr e = parse_or();
    while (with_condexpr && peek_name("if")) {
      int line = next().line;
      auto c = node(ExprKind::Cond, line);
      ExprPtr cond = parse_or();
      ExprPtr other;
      if (peek_name("else")) {
        next();
        other = parse_expression(true);
      }
      c->args.push_back(std::move(e));
      c->args.push_back(std::move(cond));
      c->args.push_back(std::move(other));
      e = done(std::move(c));
    }
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr e = parse_and();
    while (peek_name("or")) {
      int line = next().line;
      e = binary(ExprKind::Or, "or", std::move(e), parse_and(), line);
    }
    return e;
  }

  ExprPtr parse_and() {
    ExprPtr e = parse_not();
    while (peek_name("and")) {
      int line = next().line;
      e = binary(ExprKind::And, "and", std::move(e), parse_not(), line);
    }
    return e;
  }

  ExprPtr parse_not() {
    if (peek_name("not")) {
      int line = next().line;
      Nest guard(*this, line);
      auto e = node(ExprKind::Unary, line);
      e->name = "not";
      e->args.push_back(parse_not());
      return done(std::move(e));
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    int line = cur_line();
    ExprPtr first = parse_math1();
    ExprPtr cmp;
    while (true) {
      std::string op;
      const Token* t = peek();
      if (!t) break;
      if (t->type == TokenType::Op && (t->text == "==" || t->text == "!=" || t->text == "<" ||
                                       t->text == ">" || t->text == "<=" || t->text == ">=")) {
        op = t->text;
        next();
      } else if (t->type == TokenType::Name && t->text == "in") {
        op = "in";
        next();
      } else if (t->type == TokenType::Name && t->text == "not" && ti_ + 1 < toks_->size() &&
                 (*toks_)[ti_ + 1].type == TokenType::Name && (*toks_)[ti_ + 1].text == "in") {
        op = "not in";
        ti_ += 2;
      } else {
        break;
      }
      if (!cmp) {
        cmp = node(ExprKind::Compare, line);
        cmp->args.push_back(std::move(first));
      }
      cmp->ops.push_back(op);
      cmp->args.push_back(parse_math1());
    }
    return cmp ? done(std::move(cmp)) : std::move(first);
  }

  ExprPtr parse_math1() {
    ExprPtr e = parse_concat();
    while (peek_op("+") || peek_op("-")) {
      const Token& t = next();
      e = binary(ExprKind::Binary, t.text, std::move(e), parse_concat(), t.line);
    }
    return e;
  }

  ExprPtr parse_concat() {
    ExprPtr e = parse_math2();
    while (peek_op("~")) {
      int line = next().line;
      e = binary(ExprKind::Binary, "~", std::move(e), parse_math2(), line);
    }
    return e;
  }

  ExprPtr parse_math2() {
    ExprPtr e = parse_pow();
    while (peek_op("*") || peek_op("/") || peek_op("//") || peek_op("%")) {
      const Token& t = next();
      e = binary(ExprKind::Binary, t.text, std::move(e), parse_pow(), t.line);
    }
    return e;
  }

  ExprPtr parse_pow() {
    ExprPtr e = parse_unary(true);
    while (peek_op("**")) {
      int line = next().line;
      e = binary(ExprKind::Binary, "**", std::move(e), parse_unary(true), line);
    }
    return e;
  }

  ExprPtr parse_unary(bool with_filter) {
    int line = cur_line();
    Nest guard(*this, line);
    ExprPtr e;
    if (peek_op("-") || peek_op("+")) {
      const Token& t = next();
      e = node(ExprKind::Unary, t.line);
      e->name = t.text;
      e->args.push_back(parse_unary(false));
      e = done(std::move(e));
    } else {
      e = parse_primary();
    }
    e = parse_postfix(std::move(e));
    if (with_filter) e = parse_filter_expr(std::move(e));
    return e;
  }

  ExprPtr parse_primary() {
    if (at_end()) fail(last_line(), "expected an expression, found end of tag");
    const Token& t = next();
    if (t.type == TokenType::Name) {
      if (t.text == "true" || t.text == "True") return literal(Value(true), t.line);
      if (t.text == "false" || t.text == "False") return literal(Value(false), t.line);
      if (t.text == "none" || t.text == "None") return literal(Value(None{}), t.line);
      auto e = node(ExprKind::Name, t.line);
      e->name = t.text;
      return done(std::move(e));
    }
    if (t.type == TokenType::String) {
      std::string s = t.text;
      // Adjacent string literals concatenate, as in Python.
      while (peek() && peek()->type == TokenType::String) s += next().text;
      return literal(Value(std::move(s)), t.line);
    }
    if (t.type == TokenType::Int) return literal(Value(t.int_value), t.line);
    if (t.type == TokenType::Float) return literal(Value(t.float_value), t.line);
    if (t.text == "(") {
      if (peek_op(")")) {
        next();
        return done(node(ExprKind::List, t.line));
      }
      ExprPtr inner = parse_expression(true);
      if (peek_op(",")) {
        auto list = node(ExprKind::List, t.line);
        list->args.push_back(std::move(inner));
        while (peek_op(",")) {
          next();
          if (peek_op(")")) break;
          list->args.push_back(parse_expression(true));
        }
        inner = done(std::move(list));
      }
      expect_op(")", "parenthesised expression");
      return inner;
    }
    if (t.text == "[") {
      auto list = node(ExprKind::List, t.line);
      while (!peek_op("]")) {
        list->args.push_back(parse_expression(true));
        if (!peek_op(",")) break;
        next();
      }
      expect_op("]", "list literal");
      return done(std::move(list));
    }
    if (t.text == "{") {
      auto dict = node(ExprKind::Dict, t.line);
      while (!peek_op("}")) {
        dict->args.push_back(parse_expression(true));
        expect_op(":", "dict literal");
        dict->args.push_back(parse_expression(true));
        if (!peek_op(",")) break;
        next();
      }
      expect_op("}", "dict literal");
      return done(std::move(dict));
    }
    fail(t.line, "unexpected " + describe(t) + " in expression");
  }

  ExprPtr literal(Value v, int line) {
    auto e = node(ExprKind::Literal, line);
    e->literal = std::move(v);
    return done(std::move(e));
  }

  ExprPtr parse_postfix(ExprPtr e) {
    while (true) {
      if (peek_op(".")) {
        int line = next().line;
        const Token& a = next_checked("an attribute name after '.'");
        if (a.type == TokenType::Name) {
          auto g = node(ExprKind::GetAttr, line);
          g->name = a.text;
          g->args.push_back(std::move(e));
          e = done(std::move(g));
        } else if (a.type == TokenType::Int) {
          auto g = node(ExprKind::GetItem, line);
          g->args.push_back(std::move(e));
          g->args.push_back(literal(Value(a.int_value), line));
          e = done(std::move(g));
        } else {
          fail(a.line, "expected an attribute name after '.', found " + describe(a));
        }
      } else if (peek_op("[")) {
        e = parse_subscript(std::move(e));
      } else if (peek_op("(")) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr obj) {
    int line = next().line;  // '['
    Nest guard(*this, line);
    ExprPtr start, stop, step;
    if (!peek_op(":")) {
      start = parse_expression(true);
      if (peek_op("]")) {
        next();
        auto g = node(ExprKind::GetItem, line);
        g->args.push_back(std::move(obj));
        g->args.push_back(std::move(start));
        return done(std::move(g));
      }
    }
    expect_op(":", "subscript");
    if (!peek_op("]") && !peek_op(":")) stop = parse_expression(true);
    if (peek_op(":")) {
      next();
      if (!peek_op("]")) step = parse_expression(true);
    }
    expect_op("]", "slice");
    auto s = node(ExprKind::Slice, line);
    s->args.push_back(std::move(obj));
    s->args.push_back(std::move(start));
    s->args.push_back(std::move(stop));
    s->args.push_back(std::move(step));
    return done(std::move(s));
  }

  // Parses `( args )` into e (args appended after what e already holds).
  void parse_call_args(Expr& e) {
    expect_op("(", "call");
    Nest guard(*this, e.line);
    while (!peek_op(")")) {
      if (peek_op("*") || peek_op("**"))
        fail(peek()->line, "'*args' / '**kwargs' in calls are not supported");
      if (peek() && peek()->type == TokenType::Name && ti_ + 1 < toks_->size() &&
          (*toks_)[ti_ + 1].type == TokenType::Op && (*toks_)[ti_ + 1].text == "=") {
        std::string key = next().text;
        next();
        e.kwargs.emplace_back(key, parse_expression(true));
      } else {
        if (!e.kwargs.empty()) fail(cur_line(), "positional argument follows keyword argument");
        e.args.push_back(parse_expression(true));
      }
      if (!peek_op(",")) break;
      next();
    }
    expect_op(")", "call arguments");
  }

  ExprPtr parse_call(ExprPtr callee) {
    auto c = node(ExprKind::Call, callee->line);
    c->args.push_back(std::move(callee));
    parse_call_args(*c);
    return done(std::move(c));
  }

  ExprPtr parse_filter_expr(ExprPtr e) {
    while (true) {
      if (peek_op("|")) {
        int line = next().line;
        const Token& n = next_checked("a filter name after '|'");
        if (n.type != TokenType::Name)
          fail(n.line, "expected a filter name after '|', found " + describe(n));
        auto f = node(ExprKind::Filter, line);
        f->name = n.text;
        f->args.push_back(std::move(e));
        if (peek_op("(")) parse_call_args(*f);
        e = done(std::move(f));
      } else if (peek_name("is")) {
        int line = next().line;
        auto t = node(ExprKind::Test, line);
        if (peek_name("not")) {
          next();
          t->negated = true;
        }
        const Token& n = next_checked("a test name after 'is'");
        if (n.type != TokenType::Name)
          fail(n.line, "expected a test name after 'is', found " + describe(n));
        t->name = n.text;
        t->args.push_back(std::move(e));
        const Token* p = peek();
        if (peek_op("(")) {
          parse_call_args(*t);
        } else if (p &&
                   (p->type == TokenType::Name || p->type == TokenType::String ||
                    p->type == TokenType::Int || p->type == TokenType::Float || peek_op("[") ||
                    peek_op("{")) &&
                   !peek_name("else") && !peek_name("or") && !peek_name("and") &&
                   !peek_name("if")) {
          if (peek_name("is")) fail(p->line, "tests cannot be chained with 'is'");
          t->args.push_back(parse_postfix(parse_primary()));
        }
        e = done(std::move(t));
      } else if (peek_op("(")) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }

  std::vector<Segment> segs_;
  size_t si_ = 0;
  const std::vector<Token>* toks_ = nullptr;
  size_t ti_ = 0;
  int seg_line_ = 0;
  int nesting_ = 0;
  int loop_depth_ = 0;
};

}  // namespace

Body parse(std::vector<Segment> segments) {
  return Parser(std::move(segments)).parse_template();
}

}  // namespace nucleus::jinja
