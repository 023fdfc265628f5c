#pragma once
// The value model of the Jinja subset: Python-like dynamic values as a chat
// template sees them. Lists and dicts are immutable once built (transformers
// renders in an ImmutableSandboxedEnvironment), so they are shared by pointer;
// only namespace() objects are mutable, and they are shared on purpose because
// `{% set ns.x = ... %}` must be visible outside the loop that runs it.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace nucleus::jinja {

class Value;
// Bounds on values a template builds: lists and dicts nest at most
// kMaxValueDepth levels (printing, comparing and destroying a value recurse
// once per level), and no string, printed value or repetition result exceeds
// kMaxValueBytes (a doubling in a loop would otherwise grow without bound).
// 16 MiB is four times the largest request body the server accepts (4 MiB),
// and far more than any context window holds as text; printing a hostile
// value up to it takes ~0.2 s (8 s under ASan, inside the fuzzers' timeout).
inline constexpr int kMaxValueDepth = 256;
inline constexpr size_t kMaxValueBytes = size_t{16} << 20;

using List = std::vector<Value>;
// Insertion-ordered, like a Python dict (tojson and iteration keep the order).
using Dict = std::vector<std::pair<std::string, Value>>;

struct Args {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};
// A callable: builtin global, namespace() constructor or macro. `line` is the
// call site for error messages.
using Function = std::function<Value(Args& args, int line)>;

struct Namespace {
  std::map<std::string, Value> attrs;
};

struct Undefined {
  std::string name;  // why it is undefined ("'x' is undefined"), for error messages
};
struct None {};

class Value {
 public:
  using Storage = std::variant<Undefined, None, bool, int64_t, double, std::string,
                               std::shared_ptr<const List>, std::shared_ptr<const Dict>,
                               std::shared_ptr<Namespace>, std::shared_ptr<const Function>>;

  Value() : v_(Undefined{}) {}
  Value(None n) : v_(n) {}
  Value(bool b) : v_(b) {}
  Value(int i) : v_(static_cast<int64_t>(i)) {}
  Value(int64_t i) : v_(i) {}
  Value(double d) : v_(d) {}
  Value(std::string s) : v_(std::move(s)) {}
  Value(const char* s) : v_(std::string(s)) {}
  // Throw Error when the result would nest deeper than kMaxValueDepth.
  Value(List l);
  Value(Dict d);
  Value(std::shared_ptr<Namespace> ns) : v_(std::move(ns)) {}
  Value(Function f) : v_(std::make_shared<const Function>(std::move(f))) {}

  static Value undefined(std::string why) { return Value(Storage(Undefined{std::move(why)})); }
  static Value from_json(const nlohmann::ordered_json& j);

  bool is_undefined() const { return std::holds_alternative<Undefined>(v_); }
  bool is_none() const { return std::holds_alternative<None>(v_); }
  bool is_bool() const { return std::holds_alternative<bool>(v_); }
  bool is_int() const { return std::holds_alternative<int64_t>(v_); }
  bool is_float() const { return std::holds_alternative<double>(v_); }
  bool is_number() const { return is_int() || is_float(); }  // bool is not a number here
  bool is_string() const { return std::holds_alternative<std::string>(v_); }
  bool is_list() const { return std::holds_alternative<std::shared_ptr<const List>>(v_); }
  bool is_dict() const { return std::holds_alternative<std::shared_ptr<const Dict>>(v_); }
  bool is_namespace() const { return std::holds_alternative<std::shared_ptr<Namespace>>(v_); }
  bool is_function() const { return std::holds_alternative<std::shared_ptr<const Function>>(v_); }

  bool as_bool() const { return std::get<bool>(v_); }
  int64_t as_int() const { return std::get<int64_t>(v_); }
  double as_float() const { return std::get<double>(v_); }
  // Int or float (or bool, as Python treats it) as a double.
  double as_number() const;
  const std::string& as_string() const { return std::get<std::string>(v_); }
  const List& as_list() const { return *std::get<std::shared_ptr<const List>>(v_); }
  const Dict& as_dict() const { return *std::get<std::shared_ptr<const Dict>>(v_); }
  Namespace& as_namespace() const { return *std::get<std::shared_ptr<Namespace>>(v_); }
  const Function& as_function() const { return *std::get<std::shared_ptr<const Function>>(v_); }
  const std::string& undefined_name() const { return std::get<Undefined>(v_).name; }

  // Python truthiness; Undefined is false.
  bool truthy() const;
  // What `{{ v }}` prints: Python str() (None -> "None", True -> "True",
  // lists/dicts in Python repr), Undefined -> "".
  std::string str() const;
  // Python repr() (strings quoted), used inside lists and dicts.
  std::string repr() const;
  // json.dumps(v, ensure_ascii=False) with optional indent, as transformers'
  // tojson filter does. Throws Error for values JSON cannot hold.
  std::string to_json(int indent = -1) const;
  // Name of the Python type, for error messages.
  std::string type_name() const;

  // Dict lookup; nullptr when the key is absent.
  const Value* dict_get(const std::string& key) const;
  // Levels of list/dict nesting (0 for scalars, 1 for a flat list).
  int depth() const { return depth_; }

 private:
  explicit Value(Storage s) : v_(std::move(s)) {}
  Storage v_;
  int depth_ = 0;
};

// Python == between two values (1 == 1.0, lists and dicts deep).
bool equals(const Value& a, const Value& b);

// Python float repr: shortest round-trip digits, "1.0", "1e+16", "inf".
std::string format_float(double d);

}  // namespace nucleus::jinja
