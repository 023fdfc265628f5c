#include "jinja/value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "util/error.h"

namespace nucleus::jinja {

namespace {

int nested_depth(int deepest_child) {
  if (deepest_child + 1 > kMaxValueDepth)
    throw Error("jinja: lists/dicts nested deeper than " + std::to_string(kMaxValueDepth) +
                " levels");
  return deepest_child + 1;
}

// Printing a value whose parts are shared can be exponentially larger than
// the value; stop at the same bound as any other string.
void check_print_size(const std::string& out) {
  if (out.size() > kMaxValueBytes)
    throw Error("jinja: printed value exceeds " + std::to_string(kMaxValueBytes) + " bytes");
}

Value from_json_at(const nlohmann::ordered_json& j, int depth);

}  // namespace

Value::Value(List l) {
  int d = 0;
  for (const Value& x : l) d = std::max(d, x.depth_);
  depth_ = nested_depth(d);
  v_ = std::make_shared<const List>(std::move(l));
}

Value::Value(Dict dict) {
  int d = 0;
  for (const auto& kv : dict) d = std::max(d, kv.second.depth_);
  depth_ = nested_depth(d);
  v_ = std::make_shared<const Dict>(std::move(dict));
}

Value Value::from_json(const nlohmann::ordered_json& j) {
  return from_json_at(j, 0);
}

namespace {

Value from_json_at(const nlohmann::ordered_json& j, int depth) {
  // Checked before descending: the recursion itself must stay bounded.
  if (depth > kMaxValueDepth)
    throw Error("jinja: JSON variable nested deeper than " + std::to_string(kMaxValueDepth) +
                " levels");
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null:
      return Value(None{});
    case nlohmann::ordered_json::value_t::boolean:
      return Value(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer:
      return Value(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      uint64_t u = j.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return Value(static_cast<double>(u));
      return Value(static_cast<int64_t>(u));
    }
    case nlohmann::ordered_json::value_t::number_float:
      return Value(j.get<double>());
    case nlohmann::ordered_json::value_t::string:
      return Value(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      List l;
      l.reserve(j.size());
      for (const auto& e : j) l.push_back(from_json_at(e, depth + 1));
      return Value(std::move(l));
    }
    case nlohmann::ordered_json::value_t::object: {
      Dict d;
      d.reserve(j.size());
      for (auto it = j.begin(); it != j.end(); ++it)
        d.emplace_back(it.key(), from_json_at(it.value(), depth + 1));
      return Value(std::move(d));
    }
    default:
      throw Error("jinja: cannot use a JSON value of type " + std::string(j.type_name()) +
                  " as a template variable");
  }
}

}  // namespace

double Value::as_number() const {
  if (is_int()) return static_cast<double>(as_int());
  if (is_bool()) return as_bool() ? 1.0 : 0.0;
  return as_float();
}

bool Value::truthy() const {
  if (is_undefined() || is_none()) return false;
  if (is_bool()) return as_bool();
  if (is_int()) return as_int() != 0;
  if (is_float()) return as_float() != 0.0;
  if (is_string()) return !as_string().empty();
  if (is_list()) return !as_list().empty();
  if (is_dict()) return !as_dict().empty();
  return true;
}

std::string format_float(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  if (d == 0.0) return std::signbit(d) ? "-0.0" : "0.0";
  // Shortest round-trip digits in scientific form, then laid out the way
  // Python's repr does: positional for exponents in [-4, 16), else d.ddde+XX.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  bool neg = sci[0] == '-';
  if (neg) sci.erase(0, 1);
  size_t e = sci.find('e');
  std::string mant = sci.substr(0, e);
  int exp = std::stoi(sci.substr(e + 1));
  std::string digits;
  for (char c : mant)
    if (c != '.') digits += c;
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  std::string out = neg ? "-" : "";
  if (exp >= -4 && exp < 16) {
    if (exp < 0) {
      out += "0.";
      out.append(static_cast<size_t>(-exp - 1), '0');
      out += digits;
    } else {
      size_t int_len = static_cast<size_t>(exp) + 1;
      if (digits.size() <= int_len) {
        out += digits;
        out.append(int_len - digits.size(), '0');
        out += ".0";
      } else {
        out += digits.substr(0, int_len);
        out += '.';
        out += digits.substr(int_len);
      }
    }
  } else {
    out += digits[0];
    if (digits.size() > 1) {
      out += '.';
      out += digits.substr(1);
    }
    char eb[16];
    std::snprintf(eb, sizeof eb, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    out += eb;
  }
  return out;
}

// Appends Python's repr of s to out (no temporary: printing a list of many
// strings then costs one buffer).
static void py_repr_string_into(const std::string& s, std::string& out) {
  // Python picks single quotes unless the string has ' and no ".
  char q = (s.find('\'') != std::string::npos && s.find('"') == std::string::npos) ? '"' : '\'';
  out += q;
  for (unsigned char c : s) {
    if (c == static_cast<unsigned char>(q) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", c);
      out += b;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += q;
}

static std::string py_repr_string(const std::string& s) {
  std::string out;
  py_repr_string_into(s, out);
  return out;
}

std::string Value::str() const {
  if (is_undefined()) return "";
  if (is_string()) return as_string();
  return repr();
}

namespace {

// Appends v's repr to out: one buffer for the whole value, so a value whose
// parts are shared costs time linear in what is printed (up to the bound).
void repr_into(const Value& v, std::string& out) {
  if (v.is_list()) {
    out += '[';
    bool first = true;
    for (const auto& e : v.as_list()) {
      if (!first) out += ", ";
      first = false;
      repr_into(e, out);
      check_print_size(out);
    }
    out += ']';
  } else if (v.is_dict()) {
    out += '{';
    bool first = true;
    for (const auto& [k, x] : v.as_dict()) {
      if (!first) out += ", ";
      first = false;
      py_repr_string_into(k, out);
      out += ": ";
      repr_into(x, out);
      check_print_size(out);
    }
    out += '}';
  } else if (v.is_int()) {
    // The leaves of a hostile shared list are mostly ints: no temporary.
    char b[24];
    const auto r = std::to_chars(b, b + sizeof b, v.as_int());
    out.append(b, r.ptr);
  } else if (v.is_string()) {
    py_repr_string_into(v.as_string(), out);
  } else {
    out += v.repr();
  }
}

}  // namespace

std::string Value::repr() const {
  if (is_undefined()) return "";
  if (is_none()) return "None";
  if (is_bool()) return as_bool() ? "True" : "False";
  if (is_int()) return std::to_string(as_int());
  if (is_float()) return format_float(as_float());
  if (is_string()) return py_repr_string(as_string());
  if (is_list() || is_dict()) {
    std::string out;
    repr_into(*this, out);
    return out;
  }
  if (is_namespace()) return "<Namespace>";
  return "<function>";
}

static void json_string(std::string& out, const std::string& s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20) {
          char b[8];
          std::snprintf(b, sizeof b, "\\u%04x", c);
          out += b;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

static void json_dump(std::string& out, const Value& v, int indent, int level) {
  auto newline = [&](int lvl) {
    out += '\n';
    out.append(static_cast<size_t>(indent) * static_cast<size_t>(lvl), ' ');
  };
  // json.dumps uses ", " and ": " without indent, "," and ": " with it.
  const char* item_sep = indent >= 0 ? "," : ", ";
  if (v.is_none() || v.is_undefined()) {
    // Jinja passes Undefined to json.dumps, which rejects it; None is null.
    if (v.is_undefined())
      throw Error("tojson: cannot serialize an undefined value: " + v.undefined_name());
    out += "null";
  } else if (v.is_bool()) {
    out += v.as_bool() ? "true" : "false";
  } else if (v.is_int()) {
    out += std::to_string(v.as_int());
  } else if (v.is_float()) {
    double d = v.as_float();
    if (std::isnan(d))
      out += "NaN";
    else if (std::isinf(d))
      out += d > 0 ? "Infinity" : "-Infinity";
    else
      out += format_float(d);
  } else if (v.is_string()) {
    json_string(out, v.as_string());
  } else if (v.is_list()) {
    const List& l = v.as_list();
    if (l.empty()) {
      out += "[]";
      return;
    }
    out += '[';
    for (size_t i = 0; i < l.size(); ++i) {
      if (i) out += item_sep;
      if (indent >= 0) newline(level + 1);
      json_dump(out, l[i], indent, level + 1);
      check_print_size(out);
    }
    if (indent >= 0) newline(level);
    out += ']';
  } else if (v.is_dict()) {
    const Dict& d = v.as_dict();
    if (d.empty()) {
      out += "{}";
      return;
    }
    out += '{';
    for (size_t i = 0; i < d.size(); ++i) {
      if (i) out += item_sep;
      if (indent >= 0) newline(level + 1);
      json_string(out, d[i].first);
      out += ": ";
      json_dump(out, d[i].second, indent, level + 1);
      check_print_size(out);
    }
    if (indent >= 0) newline(level);
    out += '}';
  } else {
    throw Error("jinja: tojson: a " + v.type_name() + " is not JSON serializable");
  }
}

std::string Value::to_json(int indent) const {
  std::string out;
  json_dump(out, *this, indent, 0);
  return out;
}

std::string Value::type_name() const {
  if (is_undefined()) return "undefined";
  if (is_none()) return "NoneType";
  if (is_bool()) return "bool";
  if (is_int()) return "int";
  if (is_float()) return "float";
  if (is_string()) return "str";
  if (is_list()) return "list";
  if (is_dict()) return "dict";
  if (is_namespace()) return "Namespace";
  return "function";
}

const Value* Value::dict_get(const std::string& key) const {
  for (const auto& [k, v] : as_dict())
    if (k == key) return &v;
  return nullptr;
}

bool equals(const Value& a, const Value& b) {
  // Python: True == 1 and 1 == 1.0; Undefined equals only Undefined.
  bool a_num = a.is_number() || a.is_bool(), b_num = b.is_number() || b.is_bool();
  if (a_num && b_num) {
    if (a.is_float() || b.is_float()) return a.as_number() == b.as_number();
    int64_t x = a.is_bool() ? a.as_bool() : a.as_int();
    int64_t y = b.is_bool() ? b.as_bool() : b.as_int();
    return x == y;
  }
  if (a.is_undefined() || b.is_undefined()) return a.is_undefined() && b.is_undefined();
  if (a.is_none() || b.is_none()) return a.is_none() && b.is_none();
  if (a.is_string() && b.is_string()) return a.as_string() == b.as_string();
  if (a.is_list() && b.is_list()) {
    const List &x = a.as_list(), &y = b.as_list();
    if (x.size() != y.size()) return false;
    for (size_t i = 0; i < x.size(); ++i)
      if (!equals(x[i], y[i])) return false;
    return true;
  }
  if (a.is_dict() && b.is_dict()) {
    const Dict &x = a.as_dict(), &y = b.as_dict();
    if (x.size() != y.size()) return false;
    for (const auto& [k, v] : x) {
      const Value* o = b.dict_get(k);
      if (!o || !equals(v, *o)) return false;
    }
    return true;
  }
  if (a.is_namespace() && b.is_namespace()) return &a.as_namespace() == &b.as_namespace();
  if (a.is_function() && b.is_function()) return &a.as_function() == &b.as_function();
  return false;
}

}  // namespace nucleus::jinja
