#include "jinja/jinja.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <unordered_map>

#include "jinja/ast.h"
#include "jinja/parser.h"
#include "util/error.h"

namespace nucleus::jinja {

namespace {

[[noreturn]] void fail(int line, const std::string& msg) {
  throw Error("jinja: line " + std::to_string(line) + ": " + msg);
}

// ---- UTF-8 helpers: Python strings index by code point ----------------

std::vector<std::string> code_points(const std::string& s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
    if (i + n > s.size()) n = 1;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) n = 1;
    out.push_back(s.substr(i, n));
    i += n;
  }
  return out;
}

int64_t utf8_length(const std::string& s) {
  int64_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

// Python's str.isspace() set, for strip()/split() without arguments.
bool is_py_space(const std::string& cp) {
  if (cp.size() == 1) {
    unsigned char c = static_cast<unsigned char>(cp[0]);
    return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F);
  }
  static const char* const kSpaces[] = {"\u0085", "\u00a0", "\u1680", "\u2000", "\u2001",
                                        "\u2002", "\u2003", "\u2004", "\u2005", "\u2006",
                                        "\u2007", "\u2008", "\u2009", "\u200a", "\u2028",
                                        "\u2029", "\u202f", "\u205f", "\u3000"};
  for (const char* s : kSpaces)
    if (cp == s) return true;
  return false;
}

enum class StripSide { Both, Left, Right };

std::string py_strip(const std::string& s, const Value* chars, StripSide side, int line) {
  std::vector<std::string> cps = code_points(s);
  std::vector<std::string> set;
  bool whitespace = !chars || chars->is_none() || chars->is_undefined();
  if (!whitespace) {
    if (!chars->is_string())
      fail(line, "strip characters must be a string, not " + chars->type_name());
    set = code_points(chars->as_string());
  }
  auto strip_it = [&](const std::string& cp) {
    return whitespace ? is_py_space(cp) : std::find(set.begin(), set.end(), cp) != set.end();
  };
  size_t b = 0, e = cps.size();
  if (side != StripSide::Right)
    while (b < e && strip_it(cps[b])) ++b;
  if (side != StripSide::Left)
    while (e > b && strip_it(cps[e - 1])) --e;
  std::string out;
  for (size_t i = b; i < e; ++i) out += cps[i];
  return out;
}

std::vector<std::string> py_split(const std::string& s, const Value* sep, int64_t maxsplit,
                                  int line) {
  std::vector<std::string> out;
  if (!sep || sep->is_none()) {
    // Runs of whitespace separate; leading/trailing whitespace yields nothing.
    std::vector<std::string> cps = code_points(s);
    size_t i = 0;
    while (i < cps.size()) {
      while (i < cps.size() && is_py_space(cps[i])) ++i;
      if (i >= cps.size()) break;
      if (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit) {
        // Python keeps the unsplit remainder as is, trailing whitespace included.
        std::string rest;
        for (size_t k = i; k < cps.size(); ++k) rest += cps[k];
        out.push_back(std::move(rest));
        return out;
      }
      std::string word;
      while (i < cps.size() && !is_py_space(cps[i])) word += cps[i++];
      out.push_back(word);
    }
    return out;
  }
  if (!sep->is_string()) fail(line, "split separator must be a string, not " + sep->type_name());
  const std::string& d = sep->as_string();
  if (d.empty()) fail(line, "split: empty separator");
  size_t pos = 0;
  while (maxsplit < 0 || static_cast<int64_t>(out.size()) < maxsplit) {
    size_t f = s.find(d, pos);
    if (f == std::string::npos) break;
    out.push_back(s.substr(pos, f - pos));
    pos = f + d.size();
  }
  out.push_back(s.substr(pos));
  return out;
}

std::string ascii_map(std::string s, int (*f)(int)) {
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x80)
      c = static_cast<char>(f(static_cast<unsigned char>(c)));
  return s;
}

std::string py_capitalize(const std::string& s) {
  std::string out = ascii_map(s, [](int c) { return std::tolower(c); });
  if (!out.empty() && static_cast<unsigned char>(out[0]) < 0x80)
    out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
  return out;
}

std::string py_title(const std::string& s) {
  std::string out = s;
  bool prev_letter = false;
  for (char& c : out) {
    unsigned char u = static_cast<unsigned char>(c);
    bool letter = u < 0x80 && std::isalpha(u);
    if (letter) c = static_cast<char>(prev_letter ? std::tolower(u) : std::toupper(u));
    prev_letter = letter || u >= 0x80;
  }
  return out;
}

std::string replace_all(const std::string& s, const std::string& from, const std::string& to,
                        int64_t count) {
  std::string out;
  if (from.empty()) {
    // Python inserts `to` between every character (and at both ends).
    std::vector<std::string> cps = code_points(s);
    int64_t done = 0;
    for (const auto& cp : cps) {
      if (count < 0 || done < count) {
        out += to;
        ++done;
      }
      out += cp;
      if (out.size() > kMaxValueBytes)
        throw Error("jinja: replace() result exceeds " + std::to_string(kMaxValueBytes) + " bytes");
    }
    if (count < 0 || done < count) out += to;
    return out;
  }
  size_t pos = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    size_t f = s.find(from, pos);
    if (f == std::string::npos) break;
    out.append(s, pos, f - pos);
    out += to;
    pos = f + from.size();
    ++done;
    if (out.size() > kMaxValueBytes)
      throw Error("jinja: replace() result exceeds " + std::to_string(kMaxValueBytes) + " bytes");
  }
  out.append(s, pos, std::string::npos);
  return out;
}

// ---- scopes ---------------------------------------------------------------

struct Frame {
  std::unordered_map<std::string, Value> vars;
  std::shared_ptr<Frame> parent;

  const Value* find(const std::string& name) const {
    for (const Frame* f = this; f; f = f->parent.get()) {
      auto it = f->vars.find(name);
      if (it != f->vars.end()) return &it->second;
    }
    return nullptr;
  }
};
using FramePtr = std::shared_ptr<Frame>;

enum class Flow { Normal, Break, Continue };

// Python's list(x) for the iterables templates use.
std::vector<Value> iterate(const Value& v, int line) {
  if (v.is_undefined()) return {};
  if (v.is_list()) return v.as_list();
  if (v.is_dict()) {
    std::vector<Value> keys;
    for (const auto& kv : v.as_dict()) keys.emplace_back(kv.first);
    return keys;
  }
  if (v.is_string()) {
    std::vector<Value> out;
    for (auto& cp : code_points(v.as_string())) out.emplace_back(std::move(cp));
    return out;
  }
  fail(line, "'" + v.type_name() + "' object is not iterable");
}

// Python slice semantics over n items; returns the selected indices.
std::vector<int64_t> slice_indices(int64_t n, const Value& start, const Value& stop,
                                   const Value& step, int line) {
  auto as_opt_int = [&](const Value& v, const char* what) -> std::optional<int64_t> {
    if (v.is_undefined() || v.is_none()) return std::nullopt;
    if (v.is_int()) return v.as_int();
    if (v.is_bool()) return v.as_bool() ? 1 : 0;
    fail(line, std::string("slice ") + what + " must be an integer, not " + v.type_name());
  };
  int64_t st = as_opt_int(step, "step").value_or(1);
  if (st == 0) fail(line, "slice step cannot be zero");
  auto clamp = [&](std::optional<int64_t> x, int64_t dflt) {
    if (!x) return dflt;
    int64_t i = *x;
    if (i < 0) i += n;
    if (st > 0) return std::clamp<int64_t>(i, 0, n);
    return std::clamp<int64_t>(i, -1, n - 1);
  };
  int64_t b = clamp(as_opt_int(start, "start"), st > 0 ? 0 : n - 1);
  int64_t e = clamp(as_opt_int(stop, "stop"), st > 0 ? n : -1);
  std::vector<int64_t> idx;
  if (st > 0)
    for (int64_t i = b; i < e; i += st) idx.push_back(i);
  else
    for (int64_t i = b; i > e; i += st) idx.push_back(i);
  return idx;
}

const Value* find_kwarg(const Args& a, const char* name) {
  for (const auto& kv : a.keyword)
    if (kv.first == name) return &kv.second;
  return nullptr;
}

// Binds call arguments to parameter names (Python-style, positional first);
// unknown keywords and surplus positionals are errors.
std::vector<const Value*> bind(const Args& a, const std::vector<const char*>& names,
                               const std::string& what, int line) {
  if (a.positional.size() > names.size())
    fail(line, what + " takes at most " + std::to_string(names.size()) + " argument(s), got " +
                   std::to_string(a.positional.size()));
  std::vector<const Value*> out(names.size(), nullptr);
  for (size_t i = 0; i < a.positional.size(); ++i) out[i] = &a.positional[i];
  for (const auto& kv : a.keyword) {
    auto it =
        std::find_if(names.begin(), names.end(), [&](const char* n) { return kv.first == n; });
    if (it == names.end())
      fail(line, what + " got an unexpected keyword argument '" + kv.first + "'");
    size_t i = static_cast<size_t>(it - names.begin());
    if (out[i]) fail(line, what + " got multiple values for argument '" + kv.first + "'");
    out[i] = &kv.second;
  }
  return out;
}

const std::string& need_string(const Value* v, const std::string& what, int line) {
  if (!v || !v->is_string())
    fail(line,
         what + " must be a string" + (v ? ", not " + v->type_name() : std::string(" (missing)")));
  return v->as_string();
}

int64_t need_int(const Value* v, const std::string& what, int line) {
  if (v && v->is_int()) return v->as_int();
  if (v && v->is_bool()) return v->as_bool();
  fail(line,
       what + " must be an integer" + (v ? ", not " + v->type_name() : std::string(" (missing)")));
}

Value sort_keys_deep(const Value& v) {
  if (v.is_list()) {
    List l;
    for (const auto& e : v.as_list()) l.push_back(sort_keys_deep(e));
    return Value(std::move(l));
  }
  if (v.is_dict()) {
    Dict d;
    for (const auto& kv : v.as_dict()) d.emplace_back(kv.first, sort_keys_deep(kv.second));
    std::stable_sort(d.begin(), d.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    return Value(std::move(d));
  }
  return v;
}

// ---- the evaluator --------------------------------------------------------

class Interp {
 public:
  explicit Interp(int64_t max_iterations) : max_iterations_(max_iterations) {}
  Value eval(const Expr& e, const FramePtr& f);
  Flow exec(const Body& body, const FramePtr& f, std::string& out);

 private:
  Value eval_binary(const Expr& e, const Value& a, const Value& b);
  bool compare(const std::string& op, const Value& a, const Value& b, int line);
  Value get_attr(const Value& obj, const std::string& name, int line);
  Value get_item(const Value& obj, const Value& key, int line);
  Value call(const Expr& e, const FramePtr& f);
  Value call_method(const Value& obj, const std::string& name, Args& a, int line);
  Value apply_filter(const std::string& name, const Value& v, Args& a, int line, const FramePtr& f);
  bool apply_test(const std::string& name, const Value& v, Args& a, int line);
  Args eval_args(const Expr& e, size_t first, const FramePtr& f);
  void exec_for(const Stmt& s, const FramePtr& f, std::string& out);
  void assign(const Stmt& s, const Value& v, const FramePtr& f);
  Value make_macro(const Stmt& s, const FramePtr& f);
  void count_iteration(int line) {
    if (++iterations_ > max_iterations_)
      fail(line, "template exceeds " + std::to_string(max_iterations_) + " loop iterations");
  }

  int64_t max_iterations_;
  int64_t iterations_ = 0;
  int call_depth_ = 0;
};

[[noreturn]] void undefined_error(const Value& v, int line, const std::string& doing) {
  fail(line, v.undefined_name() + " (" + doing + ")");
}

Value Interp::eval(const Expr& e, const FramePtr& f) {
  switch (e.kind) {
    case ExprKind::Literal:
      return e.literal;
    case ExprKind::Name: {
      const Value* v = f->find(e.name);
      return v ? *v : Value::undefined("'" + e.name + "' is undefined");
    }
    case ExprKind::List: {
      List l;
      l.reserve(e.args.size());
      for (const auto& a : e.args) l.push_back(eval(*a, f));
      return Value(std::move(l));
    }
    case ExprKind::Dict: {
      Dict d;
      for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
        Value k = eval(*e.args[i], f);
        if (!k.is_string()) fail(e.line, "dict keys must be strings here, not " + k.type_name());
        Value v = eval(*e.args[i + 1], f);
        auto it = std::find_if(d.begin(), d.end(),
                               [&](const auto& kv) { return kv.first == k.as_string(); });
        if (it != d.end())
          it->second = std::move(v);
        else
          d.emplace_back(k.as_string(), std::move(v));
      }
      return Value(std::move(d));
    }
    case ExprKind::GetAttr:
      return get_attr(eval(*e.args[0], f), e.name, e.line);
    case ExprKind::GetItem:
      return get_item(eval(*e.args[0], f), eval(*e.args[1], f), e.line);
    case ExprKind::Slice: {
      Value obj = eval(*e.args[0], f);
      Value start = e.args[1] ? eval(*e.args[1], f) : Value();
      Value stop = e.args[2] ? eval(*e.args[2], f) : Value();
      Value step = e.args[3] ? eval(*e.args[3], f) : Value();
      if (obj.is_undefined()) undefined_error(obj, e.line, "slicing it");
      if (obj.is_list()) {
        const List& l = obj.as_list();
        List out;
        for (int64_t i : slice_indices(static_cast<int64_t>(l.size()), start, stop, step, e.line))
          out.push_back(l[static_cast<size_t>(i)]);
        return Value(std::move(out));
      }
      if (obj.is_string()) {
        std::vector<std::string> cps = code_points(obj.as_string());
        std::string out;
        for (int64_t i : slice_indices(static_cast<int64_t>(cps.size()), start, stop, step, e.line))
          out += cps[static_cast<size_t>(i)];
        return Value(std::move(out));
      }
      fail(e.line, "cannot slice a " + obj.type_name());
    }
    case ExprKind::Call:
      return call(e, f);
    case ExprKind::Filter: {
      Value v = eval(*e.args[0], f);
      Args a = eval_args(e, 1, f);
      return apply_filter(e.name, v, a, e.line, f);
    }
    case ExprKind::Test: {
      Value v = eval(*e.args[0], f);
      Args a = eval_args(e, 1, f);
      return Value(apply_test(e.name, v, a, e.line) != e.negated);
    }
    case ExprKind::Unary: {
      Value v = eval(*e.args[0], f);
      if (e.name == "not") return Value(!v.truthy());
      if (v.is_undefined()) undefined_error(v, e.line, "unary " + e.name);
      if (v.is_bool()) v = Value(static_cast<int64_t>(v.as_bool()));
      if (v.is_int()) {
        if (e.name == "+") return v;
        if (v.as_int() == INT64_MIN) fail(e.line, "integer overflow");
        return Value(-v.as_int());
      }
      if (v.is_float()) return Value(e.name == "+" ? v.as_float() : -v.as_float());
      fail(e.line, "bad operand type for unary " + e.name + ": '" + v.type_name() + "'");
    }
    case ExprKind::Binary:
      return eval_binary(e, eval(*e.args[0], f), eval(*e.args[1], f));
    case ExprKind::And: {
      Value a = eval(*e.args[0], f);
      return a.truthy() ? eval(*e.args[1], f) : a;
    }
    case ExprKind::Or: {
      Value a = eval(*e.args[0], f);
      return a.truthy() ? a : eval(*e.args[1], f);
    }
    case ExprKind::Compare: {
      Value left = eval(*e.args[0], f);
      for (size_t i = 0; i < e.ops.size(); ++i) {
        Value right = eval(*e.args[i + 1], f);
        if (!compare(e.ops[i], left, right, e.line)) return Value(false);
        left = std::move(right);
      }
      return Value(true);
    }
    case ExprKind::Cond: {
      if (eval(*e.args[1], f).truthy()) return eval(*e.args[0], f);
      return e.args[2] ? eval(*e.args[2], f)
                       : Value::undefined("inline if without else is undefined");
    }
  }
  fail(e.line, "unknown expression");
}

Args Interp::eval_args(const Expr& e, size_t first, const FramePtr& f) {
  Args a;
  for (size_t i = first; i < e.args.size(); ++i) a.positional.push_back(eval(*e.args[i], f));
  for (const auto& kv : e.kwargs) a.keyword.emplace_back(kv.first, eval(*kv.second, f));
  return a;
}

Value Interp::eval_binary(const Expr& e, const Value& a0, const Value& b0) {
  const std::string& op = e.name;
  const int line = e.line;
  if (op == "~") {
    std::string r = a0.str();
    const std::string b = b0.str();
    if (r.size() + b.size() > kMaxValueBytes)
      fail(line, "'~' result exceeds " + std::to_string(kMaxValueBytes) + " bytes");
    return Value(r += b);
  }
  if (a0.is_undefined()) undefined_error(a0, line, "operand of '" + op + "'");
  if (b0.is_undefined()) undefined_error(b0, line, "operand of '" + op + "'");
  // Python treats bools as the integers 0 and 1 in arithmetic.
  Value a = a0.is_bool() ? Value(static_cast<int64_t>(a0.as_bool())) : a0;
  Value b = b0.is_bool() ? Value(static_cast<int64_t>(b0.as_bool())) : b0;
  auto type_error = [&]() -> Value {
    fail(line, "unsupported operand types for " + op + ": '" + a0.type_name() + "' and '" +
                   b0.type_name() + "'");
  };
  if (op == "+") {
    if (a.is_string() && b.is_string()) {
      if (a.as_string().size() + b.as_string().size() > kMaxValueBytes)
        fail(line, "'+' result exceeds " + std::to_string(kMaxValueBytes) + " bytes");
      return Value(a.as_string() + b.as_string());
    }
    if (a.is_list() && b.is_list()) {
      if (a.as_list().size() + b.as_list().size() > static_cast<size_t>(kMaxRangeLength))
        fail(line, "'+' result longer than " + std::to_string(kMaxRangeLength) + " items");
      List l = a.as_list();
      l.insert(l.end(), b.as_list().begin(), b.as_list().end());
      return Value(std::move(l));
    }
  }
  if (op == "*" && ((a.is_string() || a.is_list()) != (b.is_string() || b.is_list()))) {
    const Value& seq = (a.is_string() || a.is_list()) ? a : b;
    const Value& n = (a.is_string() || a.is_list()) ? b : a;
    if (!n.is_int()) return type_error();
    int64_t times = std::max<int64_t>(0, n.as_int());
    // A list's unit is its items plus the bytes of its strings, which the
    // repetition copies.
    size_t unit = seq.is_string() ? seq.as_string().size() : seq.as_list().size();
    if (seq.is_list())
      for (const Value& x : seq.as_list()) unit += x.is_string() ? x.as_string().size() : 0;
    if (unit != 0 && static_cast<uint64_t>(times) > kMaxValueBytes / unit)
      fail(line, "sequence repetition result too large");
    if (seq.is_string()) {
      std::string out;
      for (int64_t i = 0; i < times; ++i) out += seq.as_string();
      return Value(std::move(out));
    }
    List out;
    for (int64_t i = 0; i < times; ++i)
      out.insert(out.end(), seq.as_list().begin(), seq.as_list().end());
    return Value(std::move(out));
  }
  if (op == "%" && a.is_string()) fail(line, "string formatting with '%' is not supported");
  if (!a.is_number() || !b.is_number()) return type_error();
  if (a.is_int() && b.is_int() && op != "/") {
    int64_t x = a.as_int(), y = b.as_int(), r = 0;
    if (op == "+") {
      if (__builtin_add_overflow(x, y, &r)) fail(line, "integer overflow in '+'");
      return Value(r);
    }
    if (op == "-") {
      if (__builtin_sub_overflow(x, y, &r)) fail(line, "integer overflow in '-'");
      return Value(r);
    }
    if (op == "*") {
      if (__builtin_mul_overflow(x, y, &r)) fail(line, "integer overflow in '*'");
      return Value(r);
    }
    if (op == "//" || op == "%") {
      if (y == 0) fail(line, "integer division or modulo by zero");
      if (x == INT64_MIN && y == -1) fail(line, "integer overflow in '" + op + "'");
      int64_t q = x / y, m = x % y;
      if (m != 0 && ((m < 0) != (y < 0))) {
        --q;
        m += y;
      }
      return Value(op == "//" ? q : m);
    }
    if (op == "**") {
      if (y < 0) return Value(std::pow(static_cast<double>(x), static_cast<double>(y)));
      int64_t acc = 1;
      for (int64_t i = 0; i < y; ++i) {
        if (__builtin_mul_overflow(acc, x, &acc)) fail(line, "integer overflow in '**'");
        if (acc == 0 || acc == 1) break;
      }
      if (acc == 1 && x == -1 && (y % 2) == 1) acc = -1;
      return Value(acc);
    }
  }
  double x = a.as_number(), y = b.as_number();
  if (op == "+") return Value(x + y);
  if (op == "-") return Value(x - y);
  if (op == "*") return Value(x * y);
  if (op == "/") {
    if (y == 0) fail(line, "division by zero");
    return Value(x / y);
  }
  if (op == "//" || op == "%") {
    if (y == 0) fail(line, "float division or modulo by zero");
    if (op == "//") return Value(std::floor(x / y));
    double m = std::fmod(x, y);
    if (m != 0 && ((m < 0) != (y < 0))) m += y;
    return Value(m);
  }
  if (op == "**") return Value(std::pow(x, y));
  return type_error();
}

bool Interp::compare(const std::string& op, const Value& a, const Value& b, int line) {
  if (op == "==") return equals(a, b);
  if (op == "!=") return !equals(a, b);
  if (op == "in" || op == "not in") {
    bool found = false;
    if (b.is_string()) {
      if (!a.is_string())
        fail(line, "'in <string>' requires a string on the left, not " + a.type_name());
      found = b.as_string().find(a.as_string()) != std::string::npos;
    } else if (b.is_list()) {
      for (const auto& x : b.as_list())
        if (equals(a, x)) {
          found = true;
          break;
        }
    } else if (b.is_dict()) {
      found = a.is_string() && b.dict_get(a.as_string()) != nullptr;
    } else if (!b.is_undefined()) {
      fail(line, "argument of type '" + b.type_name() + "' is not a container for 'in'");
    }
    return op == "in" ? found : !found;
  }
  bool a_num = a.is_number() || a.is_bool(), b_num = b.is_number() || b.is_bool();
  int c = 0;
  if (a_num && b_num) {
    double x = a.as_number(), y = b.as_number();
    if (a.is_int() && b.is_int())
      c = a.as_int() < b.as_int() ? -1 : a.as_int() > b.as_int() ? 1 : 0;
    else if (std::isnan(x) || std::isnan(y))
      return false;
    else
      c = x < y ? -1 : x > y ? 1 : 0;
  } else if (a.is_string() && b.is_string()) {
    int r = a.as_string().compare(b.as_string());
    c = r < 0 ? -1 : r > 0 ? 1 : 0;
  } else {
    fail(line,
         "'" + op + "' not supported between '" + a.type_name() + "' and '" + b.type_name() + "'");
  }
  if (op == "<") return c < 0;
  if (op == ">") return c > 0;
  if (op == "<=") return c <= 0;
  return c >= 0;
}

Value Interp::get_attr(const Value& obj, const std::string& name, int line) {
  if (obj.is_undefined()) undefined_error(obj, line, "reading attribute '" + name + "'");
  if (obj.is_dict()) {
    const Value* v = obj.dict_get(name);
    if (v) return *v;
  } else if (obj.is_namespace()) {
    auto& attrs = obj.as_namespace().attrs;
    auto it = attrs.find(name);
    if (it != attrs.end()) return it->second;
  }
  return Value::undefined(obj.type_name() + " object has no attribute '" + name + "'");
}

Value Interp::get_item(const Value& obj, const Value& key, int line) {
  if (obj.is_undefined()) undefined_error(obj, line, "subscripting it");
  if (obj.is_list() || obj.is_string()) {
    if (key.is_int() || key.is_bool()) {
      int64_t i = key.is_int() ? key.as_int() : key.as_bool();
      if (obj.is_list()) {
        int64_t n = static_cast<int64_t>(obj.as_list().size());
        if (i < 0) i += n;
        if (i >= 0 && i < n) return obj.as_list()[static_cast<size_t>(i)];
      } else {
        std::vector<std::string> cps = code_points(obj.as_string());
        int64_t n = static_cast<int64_t>(cps.size());
        if (i < 0) i += n;
        if (i >= 0 && i < n) return Value(cps[static_cast<size_t>(i)]);
      }
      return Value::undefined(obj.type_name() + " index " +
                              std::to_string(key.is_int() ? key.as_int() : 0) + " out of range");
    }
  } else if (obj.is_dict() || obj.is_namespace()) {
    if (key.is_string()) return get_attr(obj, key.as_string(), line);
  }
  return Value::undefined(obj.type_name() + " object has no item " + key.repr());
}

Value Interp::call(const Expr& e, const FramePtr& f) {
  const Expr& callee = *e.args[0];
  if (callee.kind == ExprKind::GetAttr) {
    Value obj = eval(*callee.args[0], f);
    if (obj.is_undefined())
      undefined_error(obj, e.line, "calling its method '" + callee.name + "'");
    if (obj.is_string() || obj.is_list() || obj.is_dict()) {
      // A dict entry holding a function (loop.cycle) is called, not a method.
      const Value* entry = obj.is_dict() ? obj.dict_get(callee.name) : nullptr;
      if (!entry || !entry->is_function()) {
        Args a = eval_args(e, 1, f);
        return call_method(obj, callee.name, a, e.line);
      }
    }
  }
  Value fn = eval(callee, f);
  if (fn.is_undefined()) undefined_error(fn, e.line, "calling it");
  if (!fn.is_function()) fail(e.line, "'" + fn.type_name() + "' object is not callable");
  Args a = eval_args(e, 1, f);
  return fn.as_function()(a, e.line);
}

Value Interp::call_method(const Value& obj, const std::string& name, Args& a, int line) {
  const std::string what = obj.type_name() + "." + name + "()";
  if (obj.is_string()) {
    const std::string& s = obj.as_string();
    if (name == "strip" || name == "lstrip" || name == "rstrip") {
      auto p = bind(a, {"chars"}, what, line);
      StripSide side = name == "strip"    ? StripSide::Both
                       : name == "lstrip" ? StripSide::Left
                                          : StripSide::Right;
      return Value(py_strip(s, p[0], side, line));
    }
    if (name == "startswith" || name == "endswith") {
      auto p = bind(a, {"prefix"}, what, line);
      if (!p[0]) fail(line, what + " needs an argument");
      std::vector<std::string> options;
      if (p[0]->is_list()) {
        for (const auto& x : p[0]->as_list())
          options.push_back(need_string(&x, what + " argument", line));
      } else {
        options.push_back(need_string(p[0], what + " argument", line));
      }
      for (const auto& o : options) {
        bool hit = name == "startswith"
                       ? s.compare(0, o.size(), o) == 0 && s.size() >= o.size()
                       : s.size() >= o.size() && s.compare(s.size() - o.size(), o.size(), o) == 0;
        if (hit) return Value(true);
      }
      return Value(false);
    }
    if (name == "split") {
      auto p = bind(a, {"sep", "maxsplit"}, what, line);
      int64_t maxsplit = p[1] ? need_int(p[1], "maxsplit", line) : -1;
      List out;
      for (auto& part : py_split(s, p[0], maxsplit, line)) out.emplace_back(std::move(part));
      return Value(std::move(out));
    }
    if (name == "upper" || name == "lower" || name == "title" || name == "capitalize") {
      bind(a, {}, what, line);
      if (name == "upper") return Value(ascii_map(s, [](int c) { return std::toupper(c); }));
      if (name == "lower") return Value(ascii_map(s, [](int c) { return std::tolower(c); }));
      if (name == "title") return Value(py_title(s));
      return Value(py_capitalize(s));
    }
    if (name == "replace") {
      auto p = bind(a, {"old", "new", "count"}, what, line);
      return Value(replace_all(s, need_string(p[0], "replace old", line),
                               need_string(p[1], "replace new", line),
                               p[2] ? need_int(p[2], "replace count", line) : -1));
    }
    if (name == "find") {
      auto p = bind(a, {"sub"}, what, line);
      size_t pos = s.find(need_string(p[0], "find argument", line));
      return Value(pos == std::string::npos ? int64_t{-1} : utf8_length(s.substr(0, pos)));
    }
    if (name == "join") {
      auto p = bind(a, {"iterable"}, what, line);
      if (!p[0]) fail(line, what + " needs an argument");
      std::string out;
      bool first = true;
      for (const auto& x : iterate(*p[0], line)) {
        if (!first) out += s;
        first = false;
        out += need_string(&x, "join item", line);
        if (out.size() > kMaxValueBytes)
          fail(line, "join() result exceeds " + std::to_string(kMaxValueBytes) + " bytes");
      }
      return Value(std::move(out));
    }
  } else if (obj.is_dict()) {
    const Dict& d = obj.as_dict();
    if (name == "items" || name == "keys" || name == "values") {
      bind(a, {}, what, line);
      List out;
      for (const auto& [k, v] : d) {
        if (name == "items")
          out.emplace_back(List{Value(k), v});
        else if (name == "keys")
          out.emplace_back(k);
        else
          out.push_back(v);
      }
      return Value(std::move(out));
    }
    if (name == "get") {
      auto p = bind(a, {"key", "default"}, what, line);
      if (!p[0]) fail(line, what + " needs a key");
      const Value* v = p[0]->is_string() ? obj.dict_get(p[0]->as_string()) : nullptr;
      if (v) return *v;
      return p[1] ? *p[1] : Value(None{});
    }
  }
  static const char* const kMutating[] = {"append", "extend",  "insert", "pop",
                                          "remove", "clear",   "update", "setdefault",
                                          "sort",   "reverse", "popitem"};
  for (const char* m : kMutating)
    if (name == m)
      fail(line,
           "unsupported method " + what + ": templates cannot modify values (immutable sandbox)");
  fail(line, "unsupported method " + what);
}

bool Interp::apply_test(const std::string& name, const Value& v, Args& a, int line) {
  const std::string what = "test '" + name + "'";
  auto arg = [&]() -> const Value& {
    auto p = bind(a, {"other"}, what, line);
    if (!p[0]) fail(line, what + " needs an argument");
    return *p[0];
  };
  auto no_args = [&]() { bind(a, {}, what, line); };
  if (name == "defined") return no_args(), !v.is_undefined();
  if (name == "undefined") return no_args(), v.is_undefined();
  if (name == "none") return no_args(), v.is_none();
  if (name == "string") return no_args(), v.is_string();
  if (name == "number") return no_args(), v.is_number();
  if (name == "integer") return no_args(), v.is_int();
  if (name == "float") return no_args(), v.is_float();
  if (name == "boolean") return no_args(), v.is_bool();
  if (name == "true") return no_args(), v.is_bool() && v.as_bool();
  if (name == "false") return no_args(), v.is_bool() && !v.as_bool();
  if (name == "mapping") return no_args(), v.is_dict();
  if (name == "sequence") return no_args(), v.is_list() || v.is_string() || v.is_dict();
  if (name == "iterable")
    return no_args(), v.is_list() || v.is_string() || v.is_dict() || v.is_undefined();
  if (name == "callable") return no_args(), v.is_function();
  if (name == "lower" || name == "upper") {
    no_args();
    if (!v.is_string()) return false;
    const std::string& s = v.as_string();
    return name == "lower" ? s == ascii_map(s, [](int c) { return std::tolower(c); })
                           : s == ascii_map(s, [](int c) { return std::toupper(c); });
  }
  if (name == "odd" || name == "even") {
    no_args();
    int64_t i = need_int(&v, what + " value", line);
    return ((i % 2) != 0) == (name == "odd");
  }
  if (name == "divisibleby") {
    int64_t n = need_int(&arg(), what + " argument", line);
    if (n == 0) fail(line, "divisibleby 0");
    return need_int(&v, what + " value", line) % n == 0;
  }
  if (name == "eq" || name == "equalto" || name == "==") return equals(v, arg());
  if (name == "ne" || name == "!=") return !equals(v, arg());
  if (name == "lt" || name == "lessthan" || name == "<") return compare("<", v, arg(), line);
  if (name == "gt" || name == "greaterthan" || name == ">") return compare(">", v, arg(), line);
  if (name == "le" || name == "<=") return compare("<=", v, arg(), line);
  if (name == "ge" || name == ">=") return compare(">=", v, arg(), line);
  if (name == "in") return compare("in", v, arg(), line);
  if (name == "sameas") {
    const Value& o = arg();
    if (v.is_none() || v.is_bool()) return equals(v, o) && v.type_name() == o.type_name();
    return (v.is_namespace() || v.is_function()) && equals(v, o);
  }
  fail(line, "unknown test '" + name + "'");
}

Value Interp::apply_filter(const std::string& name, const Value& v, Args& a, int line,
                           const FramePtr& f) {
  const std::string what = "filter '" + name + "'";
  auto no_args = [&]() { bind(a, {}, what, line); };
  if (name == "trim") {
    auto p = bind(a, {"chars"}, what, line);
    if (v.is_undefined()) return Value("");
    return Value(py_strip(v.is_string() ? v.as_string() : v.str(), p[0], StripSide::Both, line));
  }
  if (name == "tojson") {
    // transformers' replacement: json.dumps(x, ensure_ascii=False, indent, separators, sort_keys)
    auto p = bind(a, {"ensure_ascii", "indent", "separators", "sort_keys"}, what, line);
    if (p[0] && p[0]->truthy()) fail(line, "tojson(ensure_ascii=True) is not supported");
    if (p[2] && !p[2]->is_none()) fail(line, "tojson(separators=...) is not supported");
    int indent = -1;
    if (p[1] && !p[1]->is_none()) {
      indent = static_cast<int>(std::clamp<int64_t>(need_int(p[1], "tojson indent", line), 0, 64));
    }
    Value x = (p[3] && p[3]->truthy()) ? sort_keys_deep(v) : v;
    try {
      return Value(x.to_json(indent));
    } catch (const Error& err) {
      fail(line, err.what());
    }
  }
  if (name == "length" || name == "count") {
    no_args();
    if (v.is_undefined()) return Value(int64_t{0});
    if (v.is_string()) return Value(utf8_length(v.as_string()));
    if (v.is_list()) return Value(static_cast<int64_t>(v.as_list().size()));
    if (v.is_dict()) return Value(static_cast<int64_t>(v.as_dict().size()));
    if (v.is_namespace()) return Value(static_cast<int64_t>(v.as_namespace().attrs.size()));
    fail(line, "object of type '" + v.type_name() + "' has no length");
  }
  if (name == "upper" || name == "lower" || name == "capitalize" || name == "title") {
    no_args();
    std::string s = v.is_undefined() ? std::string() : v.str();
    if (name == "upper") return Value(ascii_map(s, [](int c) { return std::toupper(c); }));
    if (name == "lower") return Value(ascii_map(s, [](int c) { return std::tolower(c); }));
    if (name == "title") return Value(py_title(s));
    return Value(py_capitalize(s));
  }
  if (name == "default" || name == "d") {
    auto p = bind(a, {"default_value", "boolean"}, what, line);
    bool use_default = v.is_undefined() || (p[1] && p[1]->truthy() && !v.truthy());
    if (!use_default) return v;
    return p[0] ? *p[0] : Value("");
  }
  if (name == "join") {
    auto p = bind(a, {"d", "attribute"}, what, line);
    std::string sep = p[0] ? need_string(p[0], "join separator", line) : std::string();
    std::string out;
    bool first = true;
    for (const auto& x : iterate(v, line)) {
      if (!first) out += sep;
      first = false;
      out += p[1] ? get_item(x, *p[1], line).str() : x.str();
      if (out.size() > kMaxValueBytes)
        fail(line, "join result exceeds " + std::to_string(kMaxValueBytes) + " bytes");
    }
    return Value(std::move(out));
  }
  if (name == "replace") {
    auto p = bind(a, {"old", "new", "count"}, what, line);
    std::string s = v.is_undefined() ? std::string() : v.str();
    return Value(replace_all(
        s, need_string(p[0], "replace old", line), need_string(p[1], "replace new", line),
        (p[2] && !p[2]->is_none()) ? need_int(p[2], "replace count", line) : -1));
  }
  if (name == "string") return no_args(), Value(v.str());
  if (name == "safe") return no_args(), v;
  if (name == "int") {
    auto p = bind(a, {"default", "base"}, what, line);
    Value dflt = p[0] ? *p[0] : Value(int64_t{0});
    if (v.is_int()) return v;
    if (v.is_bool()) return Value(static_cast<int64_t>(v.as_bool()));
    if (v.is_float()) {
      double d = v.as_float();
      if (!std::isfinite(d) || std::fabs(d) >= 9.2e18) return dflt;
      return Value(static_cast<int64_t>(d));
    }
    if (v.is_string()) {
      std::string s = py_strip(v.as_string(), nullptr, StripSide::Both, line);
      try {
        size_t used = 0;
        int64_t i = std::stoll(s, &used, 10);
        if (used == s.size()) return Value(i);
        double d = std::stod(s, &used);
        if (used == s.size() && std::isfinite(d) && std::fabs(d) < 9.2e18)
          return Value(static_cast<int64_t>(d));
      } catch (const std::exception&) {
      }
    }
    return dflt;
  }
  if (name == "float") {
    auto p = bind(a, {"default"}, what, line);
    Value dflt = p[0] ? *p[0] : Value(0.0);
    if (v.is_number() || v.is_bool()) return Value(v.as_number());
    if (v.is_string()) {
      std::string s = py_strip(v.as_string(), nullptr, StripSide::Both, line);
      try {
        size_t used = 0;
        double d = std::stod(s, &used);
        if (used == s.size()) return Value(d);
      } catch (const std::exception&) {
      }
    }
    return dflt;
  }
  if (name == "abs") {
    no_args();
    if (v.is_int()) {
      if (v.as_int() == INT64_MIN) fail(line, "integer overflow in abs");
      return Value(v.as_int() < 0 ? -v.as_int() : v.as_int());
    }
    if (v.is_float()) return Value(std::fabs(v.as_float()));
    fail(line, what + " expects a number, not " + v.type_name());
  }
  if (name == "list") return no_args(), Value(iterate(v, line));
  if (name == "first" || name == "last") {
    no_args();
    std::vector<Value> items = iterate(v, line);
    if (items.empty()) return Value::undefined("empty sequence has no " + name + " item");
    return name == "first" ? items.front() : items.back();
  }
  if (name == "reverse") {
    no_args();
    if (v.is_string()) {
      std::vector<std::string> cps = code_points(v.as_string());
      std::string out;
      for (auto it = cps.rbegin(); it != cps.rend(); ++it) out += *it;
      return Value(std::move(out));
    }
    std::vector<Value> items = iterate(v, line);
    std::reverse(items.begin(), items.end());
    return Value(List(std::move(items)));
  }
  if (name == "items") {
    no_args();
    if (v.is_undefined()) return Value(List{});
    if (!v.is_dict()) fail(line, what + " expects a mapping, not " + v.type_name());
    List out;
    for (const auto& [k, x] : v.as_dict()) out.emplace_back(List{Value(k), x});
    return Value(std::move(out));
  }
  if (name == "map") {
    std::vector<Value> items = iterate(v, line);
    List out;
    if (const Value* attr = find_kwarg(a, "attribute")) {
      if (a.positional.size() != 0 || a.keyword.size() > 2)
        fail(line, "map(attribute=...) takes only 'attribute' and 'default'");
      const Value* dflt = find_kwarg(a, "default");
      if (!dflt && a.keyword.size() == 2)
        fail(line, "map(attribute=...) takes only 'attribute' and 'default'");
      for (const auto& x : items) {
        Value r = get_item(x, *attr, line);
        out.push_back(r.is_undefined() && dflt ? *dflt : r);
      }
      return Value(std::move(out));
    }
    if (a.positional.empty()) fail(line, "map needs a filter name or attribute=");
    std::string filter = need_string(&a.positional[0], "map filter name", line);
    Args rest;
    rest.positional.assign(a.positional.begin() + 1, a.positional.end());
    rest.keyword = a.keyword;
    for (const auto& x : items) {
      Args copy = rest;
      out.push_back(apply_filter(filter, x, copy, line, f));
    }
    return Value(std::move(out));
  }
  if (name == "select" || name == "reject" || name == "selectattr" || name == "rejectattr") {
    bool by_attr = name == "selectattr" || name == "rejectattr";
    bool keep_if = name == "select" || name == "selectattr";
    if (!a.keyword.empty()) fail(line, what + " takes positional arguments only");
    size_t at = 0;
    const Value* attr = nullptr;
    if (by_attr) {
      if (a.positional.empty()) fail(line, what + " needs an attribute name");
      attr = &a.positional[at++];
    }
    std::string test = at < a.positional.size()
                           ? need_string(&a.positional[at++], what + " test name", line)
                           : std::string();
    Args targs;
    targs.positional.assign(a.positional.begin() + static_cast<std::ptrdiff_t>(at),
                            a.positional.end());
    List out;
    for (const auto& x : iterate(v, line)) {
      Value subject = by_attr ? get_item(x, *attr, line) : x;
      Args copy = targs;
      bool ok = test.empty() ? subject.truthy() : apply_test(test, subject, copy, line);
      if (ok == keep_if) out.push_back(x);
    }
    return Value(std::move(out));
  }
  fail(line, "unknown filter '" + name + "'");
}

void Interp::assign(const Stmt& s, const Value& v, const FramePtr& f) {
  if (!s.ns_attr.empty()) {
    const Value* target = f->find(s.targets[0]);
    if (!target || !target->is_namespace())
      fail(s.line, "cannot set attribute '" + s.ns_attr + "' on '" + s.targets[0] +
                       "': it is not a namespace()");
    target->as_namespace().attrs[s.ns_attr] = v;
    return;
  }
  if (s.targets.size() == 1) {
    f->vars[s.targets[0]] = v;
    return;
  }
  std::vector<Value> items = iterate(v, s.line);
  if (items.size() != s.targets.size())
    fail(s.line, "cannot unpack " + std::to_string(items.size()) + " values into " +
                     std::to_string(s.targets.size()) + " names");
  for (size_t i = 0; i < items.size(); ++i) f->vars[s.targets[i]] = items[i];
}

void Interp::exec_for(const Stmt& s, const FramePtr& f, std::string& out) {
  std::vector<Value> items = iterate(eval(*s.expr, f), s.line);
  auto bind_targets = [&](Frame& fr, const Value& item) {
    if (s.targets.size() == 1) {
      fr.vars[s.targets[0]] = item;
      return;
    }
    std::vector<Value> parts = iterate(item, s.line);
    if (parts.size() != s.targets.size())
      fail(s.line, "cannot unpack " + std::to_string(parts.size()) + " values into " +
                       std::to_string(s.targets.size()) + " loop variables");
    for (size_t i = 0; i < parts.size(); ++i) fr.vars[s.targets[i]] = parts[i];
  };
  if (s.filter) {
    std::vector<Value> kept;
    for (const auto& item : items) {
      count_iteration(s.line);
      auto fr = std::make_shared<Frame>();
      fr->parent = f;
      bind_targets(*fr, item);
      if (eval(*s.filter, fr).truthy()) kept.push_back(item);
    }
    items = std::move(kept);
  }
  if (items.empty()) {
    auto fr = std::make_shared<Frame>();
    fr->parent = f;
    exec(s.else_body, fr, out);
    return;
  }
  const int64_t n = static_cast<int64_t>(items.size());
  for (int64_t i = 0; i < n; ++i) {
    count_iteration(s.line);
    auto fr = std::make_shared<Frame>();
    fr->parent = f;
    bind_targets(*fr, items[static_cast<size_t>(i)]);
    Dict loop;
    loop.emplace_back("index", Value(i + 1));
    loop.emplace_back("index0", Value(i));
    loop.emplace_back("revindex", Value(n - i));
    loop.emplace_back("revindex0", Value(n - i - 1));
    loop.emplace_back("first", Value(i == 0));
    loop.emplace_back("last", Value(i == n - 1));
    loop.emplace_back("length", Value(n));
    loop.emplace_back("depth", Value(int64_t{1}));
    loop.emplace_back("depth0", Value(int64_t{0}));
    if (i > 0) loop.emplace_back("previtem", items[static_cast<size_t>(i - 1)]);
    if (i + 1 < n) loop.emplace_back("nextitem", items[static_cast<size_t>(i + 1)]);
    loop.emplace_back("cycle", Value(Function([i](Args& a, int line) -> Value {
                        if (!a.keyword.empty() || a.positional.empty())
                          fail(line, "loop.cycle() takes one or more positional arguments");
                        return a.positional[static_cast<size_t>(i) % a.positional.size()];
                      })));
    fr->vars["loop"] = Value(std::move(loop));
    if (exec(s.body, fr, out) == Flow::Break) break;
  }
}

Value Interp::make_macro(const Stmt& s, const FramePtr& f) {
  std::weak_ptr<Frame> home = f;
  const Stmt* def = &s;
  Interp* self = this;
  return Value(Function([self, def, home](Args& a, int line) -> Value {
    FramePtr parent = home.lock();
    if (!parent) fail(line, "macro '" + def->name + "' called after its scope ended");
    if (a.positional.size() > def->params.size())
      fail(line, "macro '" + def->name + "' takes " + std::to_string(def->params.size()) +
                     " argument(s), got " + std::to_string(a.positional.size()));
    auto fr = std::make_shared<Frame>();
    fr->parent = parent;
    std::vector<bool> given(def->params.size(), false);
    for (size_t i = 0; i < a.positional.size(); ++i) {
      fr->vars[def->params[i].first] = a.positional[i];
      given[i] = true;
    }
    for (const auto& [k, v] : a.keyword) {
      auto it = std::find_if(def->params.begin(), def->params.end(),
                             [&key = k](const auto& p) { return p.first == key; });
      if (it == def->params.end())
        fail(line, "macro '" + def->name + "' has no parameter '" + k + "'");
      size_t idx = static_cast<size_t>(it - def->params.begin());
      if (given[idx]) fail(line, "macro '" + def->name + "' got multiple values for '" + k + "'");
      fr->vars[k] = v;
      given[idx] = true;
    }
    for (size_t i = 0; i < def->params.size(); ++i) {
      if (given[i]) continue;
      fr->vars[def->params[i].first] =
          def->params[i].second
              ? self->eval(*def->params[i].second, fr)
              : Value::undefined("macro parameter '" + def->params[i].first + "' is undefined");
    }
    if (++self->call_depth_ > kMaxCallDepth) {
      fail(line, "macro calls nested deeper than " + std::to_string(kMaxCallDepth) +
                     " (recursive macro?)");
    }
    std::string out;
    self->exec(def->body, fr, out);
    --self->call_depth_;
    return Value(std::move(out));
  }));
}

Flow Interp::exec(const Body& body, const FramePtr& f, std::string& out) {
  for (const auto& sp : body) {
    const Stmt& s = *sp;
    switch (s.kind) {
      case StmtKind::Text:
        out += s.text;
        break;
      case StmtKind::Output:
        out += eval(*s.expr, f).str();
        break;
      case StmtKind::If:
        for (const auto& [cond, b] : s.branches) {
          if (!cond || eval(*cond, f).truthy()) {
            Flow fl = exec(b, f, out);
            if (fl != Flow::Normal) return fl;
            break;
          }
        }
        break;
      case StmtKind::For:
        exec_for(s, f, out);
        break;
      case StmtKind::Set:
        assign(s, eval(*s.expr, f), f);
        break;
      case StmtKind::SetBlock: {
        std::string captured;
        exec(s.body, f, captured);
        f->vars[s.targets[0]] = Value(std::move(captured));
        break;
      }
      case StmtKind::Macro:
        f->vars[s.name] = make_macro(s, f);
        break;
      case StmtKind::Break:
        return Flow::Break;
      case StmtKind::Continue:
        return Flow::Continue;
      case StmtKind::Scope: {
        Flow fl = exec(s.body, f, out);
        if (fl != Flow::Normal) return fl;
        break;
      }
    }
    if (out.size() > kMaxOutputBytes)
      fail(s.line, "rendered output exceeds " + std::to_string(kMaxOutputBytes) + " bytes");
  }
  return Flow::Normal;
}

// Every namespace() of one render, kept alive until the render ends and then
// emptied: a namespace can hold itself (`set ns.me = ns`) or a long chain of
// others, which would otherwise leak or be destroyed recursively.
class NamespaceRegistry {
 public:
  NamespaceRegistry() = default;
  NamespaceRegistry(const NamespaceRegistry&) = delete;
  NamespaceRegistry& operator=(const NamespaceRegistry&) = delete;
  ~NamespaceRegistry() {
    for (const auto& ns : made_) ns->attrs.clear();
  }
  // Throws past 10^6 namespaces in one render (real templates make one or two).
  std::shared_ptr<Namespace> make(int line) {
    if (made_.size() >= 1'000'000) fail(line, "more than 1000000 namespace() objects");
    return made_.emplace_back(std::make_shared<Namespace>());
  }

 private:
  std::vector<std::shared_ptr<Namespace>> made_;
};

void add_builtins(Frame& root, NamespaceRegistry& namespaces) {
  root.vars["range"] = Value(Function([](Args& a, int line) -> Value {
    if (!a.keyword.empty() || a.positional.empty() || a.positional.size() > 3)
      fail(line, "range() takes 1 to 3 integer arguments");
    int64_t start = 0, stop = 0, step = 1;
    if (a.positional.size() == 1) {
      stop = need_int(&a.positional[0], "range stop", line);
    } else {
      start = need_int(&a.positional[0], "range start", line);
      stop = need_int(&a.positional[1], "range stop", line);
      if (a.positional.size() == 3) step = need_int(&a.positional[2], "range step", line);
    }
    if (step == 0) fail(line, "range() step must not be zero");
    List out;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
      if (static_cast<int64_t>(out.size()) >= kMaxRangeLength)
        fail(line, "range() longer than " + std::to_string(kMaxRangeLength));
      out.emplace_back(i);
      if ((step > 0 && i > INT64_MAX - step) || (step < 0 && i < INT64_MIN - step)) break;
    }
    return Value(std::move(out));
  }));
  root.vars["namespace"] = Value(Function([&namespaces](Args& a, int line) -> Value {
    auto ns = namespaces.make(line);
    if (a.positional.size() > 1)
      fail(line, "namespace() takes at most one positional (mapping) argument");
    if (a.positional.size() == 1) {
      if (!a.positional[0].is_dict())
        fail(line, "namespace() positional argument must be a mapping");
      for (const auto& [k, v] : a.positional[0].as_dict()) ns->attrs[k] = v;
    }
    for (const auto& [k, v] : a.keyword) ns->attrs[k] = v;
    return Value(ns);
  }));
  root.vars["dict"] = Value(Function([](Args& a, int line) -> Value {
    if (!a.positional.empty()) fail(line, "dict() takes keyword arguments only");
    Dict d;
    for (const auto& kv : a.keyword) d.push_back(kv);
    return Value(std::move(d));
  }));
  root.vars["raise_exception"] = Value(Function([](Args& a, int line) -> Value {
    std::string msg = a.positional.empty() ? std::string() : a.positional[0].str();
    fail(line, "raise_exception: " + msg);
  }));
}

}  // namespace

Template::Template(const std::string& source, const Options& options)
    : body_(std::make_shared<const Body>(parse(lex(source, options)))), options_(options) {}

std::string Template::render(const std::map<std::string, Value>& vars) const {
  NamespaceRegistry namespaces;  // outlives every frame and value of the render
  auto root = std::make_shared<Frame>();
  add_builtins(*root, namespaces);
  for (const auto& [k, v] : vars) root->vars[k] = v;
  Interp interp(options_.max_loop_iterations);
  std::string out;
  interp.exec(*body_, root, out);
  return out;
}

std::string Template::render(const nlohmann::ordered_json& vars) const {
  if (!vars.is_object() && !vars.is_null())
    throw Error("jinja: template variables must be a JSON object, not " +
                std::string(vars.type_name()));
  std::map<std::string, Value> m;
  if (vars.is_object())
    for (auto it = vars.begin(); it != vars.end(); ++it) m[it.key()] = Value::from_json(it.value());
  return render(m);
}

}  // namespace nucleus::jinja
