#pragma once
// Syntax tree of a parsed template. One node struct per category keeps the
// evaluator a plain switch; unused fields stay empty.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "jinja/value.h"

namespace nucleus::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

enum class ExprKind {
  Literal,  // literal
  Name,     // name
  List,     // args = items (also tuples)
  Dict,     // args = key0, value0, key1, value1, ...
  GetAttr,  // args[0] . name
  GetItem,  // args[0] [ args[1] ]
  Slice,    // args[0] [ args[1] : args[2] : args[3] ]  (null = omitted)
  Call,     // args[0] ( args[1..], kwargs )
  Filter,   // args[0] | name ( args[1..], kwargs )
  Test,     // args[0] is [not] name ( args[1..] )
  Unary,    // name = "-", "+" or "not"; args[0]
  Binary,   // args[0] name args[1]; name in + - * / // % ** ~
  And,      // args[0] and args[1]
  Or,       // args[0] or args[1]
  Compare,  // args[0] ops[0] args[1] ops[1] args[2] ...  (chained)
  Cond,     // args[0] if args[1] else args[2] (args[2] may be null)
};

struct Expr {
  ExprKind kind;
  int line = 0;
  int depth = 1;  // height of this subtree, bounded to keep evaluation off deep stacks
  Value literal;
  std::string name;
  bool negated = false;  // Test: `is not`
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::string> ops;  // Compare
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

enum class StmtKind {
  Text,      // text
  Output,    // {{ expr }}
  If,        // branches: (condition or null for else, body)
  For,       // targets in expr [if filter] body [else else_body]
  Set,       // targets = expr, or ns_attr set on targets[0]
  SetBlock,  // {% set targets[0] %} body {% endset %}
  Macro,     // {% macro name(params) %} body {% endmacro %}
  Break,
  Continue,
  Scope,  // body rendered in place (the `generation` block of transformers)
};

struct Stmt {
  StmtKind kind;
  int line = 0;
  std::string text;
  ExprPtr expr;
  ExprPtr filter;
  std::vector<std::string> targets;
  std::string ns_attr;  // Set: `{% set ns.attr = ... %}`
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body body;
  Body else_body;
  std::string name;                                     // Macro
  std::vector<std::pair<std::string, ExprPtr>> params;  // Macro: name, default (may be null)
};

}  // namespace nucleus::jinja
