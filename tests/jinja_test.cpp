// Unit tests of the Jinja subset. Every expectation is written by hand from
// Jinja2 / Python semantics (the reasoning is in the comment where it is not
// obvious); none comes from running our engine.
#include "jinja/jinja.h"

#include <gtest/gtest.h>

#include <string>

#include "util/error.h"

using nucleus::Error;
using nucleus::jinja::Options;
using nucleus::jinja::Template;
using json = nlohmann::ordered_json;

namespace {

std::string R(const std::string& src, const json& vars = json::object(), Options o = {}) {
  return Template(src, o).render(vars);
}

// transformers' settings for chat templates.
std::string HF(const std::string& src, const json& vars = json::object()) {
  Options o;
  o.trim_blocks = true;
  o.lstrip_blocks = true;
  return R(src, vars, o);
}

// Expects an Error whose message contains every piece of `parts`.
void expect_error(const std::string& src, std::initializer_list<std::string> parts,
                  const json& vars = json::object()) {
  try {
    std::string out = R(src, vars);
    ADD_FAILURE() << "no error for: " << src << "\nrendered: " << out;
  } catch (const Error& e) {
    std::string msg = e.what();
    for (const auto& p : parts)
      EXPECT_NE(msg.find(p), std::string::npos) << "message '" << msg << "' lacks '" << p << "'";
  }
}

// ---- text, comments, whitespace control -----------------------------------

TEST(JinjaLex, TextAndComments) {
  EXPECT_EQ(R("plain text"), "plain text");
  EXPECT_EQ(R("a{# a comment #}b"), "ab");
  EXPECT_EQ(R("a{# multi\nline {{ not parsed }} #}b"), "ab");
  EXPECT_EQ(R("{{ 'x' }}"), "x");
  EXPECT_EQ(R("{ not a tag }"), "{ not a tag }");
}

TEST(JinjaLex, DashStripsWhitespaceBothSides) {
  EXPECT_EQ(R("a  \n {{- 'x' -}} \n  b"), "axb");
  EXPECT_EQ(R("a \n{%- if true -%}\n X \n{%- endif -%}\n b"), "aXb");
  EXPECT_EQ(R("a \n {#- c -#} \n b"), "ab");
  // Only the marked side is stripped.
  EXPECT_EQ(R("a {{- 'x' }} b"), "ax b");
  EXPECT_EQ(R("a {{ 'x' -}} b"), "a xb");
}

TEST(JinjaLex, TrailingNewlineAndNewlineNormalisation) {
  EXPECT_EQ(R("a\n"), "a");
  EXPECT_EQ(R("a\n\n"), "a\n");
  Options keep;
  keep.keep_trailing_newline = true;
  EXPECT_EQ(R("a\n", json::object(), keep), "a\n");
  EXPECT_EQ(R("a\r\nb\rc"), "a\nb\nc");
}

TEST(JinjaLex, TrimBlocks) {
  Options o;
  o.trim_blocks = true;
  // Without trim_blocks the newline after each block tag stays.
  EXPECT_EQ(R("{% if true %}\nX\n{% endif %}\nY"), "\nX\n\nY");
  EXPECT_EQ(R("{% if true %}\nX\n{% endif %}\nY", json::object(), o), "X\nY");
  // Only one newline is removed; {{ }} is not a block tag; comments are.
  EXPECT_EQ(R("{% if true %}\n\nX{% endif %}", json::object(), o), "\nX");
  EXPECT_EQ(R("{{ 'a' }}\nb", json::object(), o), "a\nb");
  EXPECT_EQ(R("{# c #}\nb", json::object(), o), "b");
  // `+%}` keeps the newline.
  EXPECT_EQ(R("{% if true +%}\nX{% endif %}", json::object(), o), "\nX");
}

TEST(JinjaLex, LstripBlocks) {
  Options o;
  o.lstrip_blocks = true;
  EXPECT_EQ(R("  {% if true %}X{% endif %}", json::object(), o), "X");
  EXPECT_EQ(R("a\n \t{% if true %}X{% endif %}", json::object(), o), "a\nX");
  // Not when text precedes the tag on its line, not for {{ }}, not with {%+.
  EXPECT_EQ(R("a  {% if true %}X{% endif %}", json::object(), o), "a  X");
  EXPECT_EQ(R("  {{ 'x' }}", json::object(), o), "  x");
  EXPECT_EQ(R("  {%+ if true %}X{% endif %}", json::object(), o), "  X");
  // Comments are lstripped too.
  EXPECT_EQ(R("a\n  {# c #}b", json::object(), o), "a\nb");
}

TEST(JinjaLex, TrimAndLstripTogether) {
  // The classic indented-loop layout collapses to clean lines:
  // "<ul>\n" + ("  <li>1</li>\n" + "  <li>2</li>\n") + "</ul>".
  const std::string src =
      "<ul>\n  {% for i in [1, 2] %}\n  <li>{{ i }}</li>\n  {% endfor %}\n</ul>";
  EXPECT_EQ(HF(src), "<ul>\n  <li>1</li>\n  <li>2</li>\n</ul>");
  // A block tag after a trimmed block tag on the next line is still at line start.
  EXPECT_EQ(HF("{% if true %}\n    {% if true %}\nX\n    {% endif %}\n{% endif %}\n"), "X\n");
}

TEST(JinjaLex, Raw) {
  EXPECT_EQ(R("{% raw %}{{ x }}{% if %}{% endraw %}!"), "{{ x }}{% if %}!");
  EXPECT_EQ(R("a {%- raw -%}  {{ y }}  {%- endraw -%}  b"), "a{{ y }}b");
}

TEST(JinjaLex, DelimiterInsideStringOrBrackets) {
  EXPECT_EQ(R("{{ '%}' }}{{ '}}' }}"), "%}}}");
  // `}}` closing a nested dict is not the end of the tag.
  EXPECT_EQ(R("{{ {'a': {'b': 1}}['a']['b'] }}"), "1");
}

// ---- literals ---------------------------------------------------------------

TEST(JinjaExpr, StringLiterals) {
  EXPECT_EQ(R(R"({{ 'a\nb' }})"), "a\nb");
  EXPECT_EQ(R(R"({{ "it's" }})"), "it's");
  EXPECT_EQ(R(R"({{ 'x\'y\\z' }})"), "x'y\\z");
  EXPECT_EQ(R(R"({{ '\u00e9\x41\t' }})"),
            "\xC3\xA9"
            "A\t");
  EXPECT_EQ(R(R"({{ '\q' }})"), "\\q");  // unknown escapes keep the backslash
  EXPECT_EQ(R("{{ 'a' 'b' \"c\" }}"), "abc");
  EXPECT_EQ(R("{{ 'multi\nline' }}"), "multi\nline");
}

TEST(JinjaExpr, NumbersAndPrinting) {
  EXPECT_EQ(R("{{ 42 }} {{ -7 }} {{ 1_000 }}"), "42 -7 1000");
  EXPECT_EQ(R("{{ 1.0 }} {{ 2.5 }} {{ 1e3 }} {{ 0.1 + 0.2 }}"),
            "1.0 2.5 1000.0 0.30000000000000004");
  EXPECT_EQ(R("{{ 1e16 }} {{ 1e15 }} {{ 0.0001 }} {{ 0.00001 }}"),
            "1e+16 1000000000000000.0 0.0001 1e-05");
  EXPECT_EQ(R("{{ none }} {{ None }} {{ true }} {{ False }}"), "None None True False");
  EXPECT_EQ(R("{{ [1, 'a', none, true, 1.5] }}"), "[1, 'a', None, True, 1.5]");
  EXPECT_EQ(R("{{ {'a': 1, 'b': [\"it's\"]} }}"), "{'a': 1, 'b': [\"it's\"]}");
  EXPECT_EQ(R("{{ (1, 2) }} {{ () }} {{ (3,) }}"), "[1, 2] [] [3]");  // tuples are lists here
}

// ---- operators --------------------------------------------------------------

TEST(JinjaExpr, Arithmetic) {
  EXPECT_EQ(R("{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 2 ** 10 }} {{ 2 ** 3 ** 2 }}"),
            "7 9 1024 64");  // Jinja's ** is left-assoc
  EXPECT_EQ(R("{{ 7 / 2 }} {{ 4 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 % -3 }}"),
            "3.5 2.0 3 -4 2 -2");
  EXPECT_EQ(R("{{ 1 + 1.5 }} {{ true + 1 }} {{ 7.5 // 2 }}"), "2.5 2 3.0");
  EXPECT_EQ(R("{{ 'ab' + 'cd' }} {{ [1] + [2, 3] }} {{ 'ab' * 3 }} {{ 2 * [0] }}"),
            "abcd [1, 2, 3] ababab [0, 0]");
}

TEST(JinjaExpr, ConcatAndPrecedence) {
  EXPECT_EQ(R("{{ 'a' ~ 1 ~ none ~ true }}"), "a1NoneTrue");
  EXPECT_EQ(R("{{ 'a' ~ 2 * 3 }}"), "a6");  // * binds tighter than ~
  EXPECT_EQ(R("{{ (1 + 2) ~ 'x' }}"), "3x");
  EXPECT_EQ(R("{{ 'v=' ~ x }}"), "v=");                // undefined prints as ""
  EXPECT_EQ(R("{{ 'ab' + '  c  ' | trim }}"), "abc");  // filter binds tighter than +
  EXPECT_EQ(R("{{ [1, 2, 3] | length - 1 }}"), "2");
  EXPECT_EQ(R("{{ -2 | abs }}"), "2");       // (-2)|abs
  EXPECT_EQ(R("{{ not 1 == 2 }}"), "True");  // not (1 == 2)
}

TEST(JinjaExpr, Comparisons) {
  EXPECT_EQ(R("{{ 1 < 2 < 3 }} {{ 1 < 3 < 2 }} {{ 1 == 1.0 }} {{ 'a' != 'b' }} {{ 'ab' < 'b' }} {{ "
              "2 >= 2 }}"),
            "True False True True True True");
  EXPECT_EQ(R("{{ 'b' in 'abc' }} {{ 2 not in [1, 3] }} {{ 'k' in {'k': 1} }} {{ 'z' in x }}"),
            "True True True False");
  EXPECT_EQ(R("{{ [1, [2]] == [1, [2]] }} {{ none == none }} {{ x == none }}"), "True True False");
}

TEST(JinjaExpr, LogicAndConditional) {
  EXPECT_EQ(R("{{ 0 or 'x' }} {{ 'a' and 'b' }} {{ '' and 'b' }} {{ not [] }} {{ not 'a' }}"),
            "x b  True False");
  EXPECT_EQ(R("{{ 'y' if 1 else 'n' }}{{ 'y' if 0 else 'n' }}[{{ 'y' if 0 }}]"), "yn[]");
  EXPECT_EQ(R("{{ 'a' if false else 'b' if true else 'c' }}"), "b");
}

// ---- variables, attributes, subscripts ------------------------------------

TEST(JinjaExpr, AttributeAndSubscript) {
  json v = {{"m", {{"role", "user"}, {"content", "hi"}}}, {"l", {10, 20, 30}}};
  EXPECT_EQ(R("{{ m.role }} {{ m['content'] }} {{ m[\"role\"] }}", v), "user hi user");
  EXPECT_EQ(R("{{ l[0] }} {{ l[-1] }} {{ l.1 }} [{{ l[5] }}]", v), "10 30 20 []");
  EXPECT_EQ(R("[{{ m.missing }}]{{ m.missing is defined }}", v), "[]False");
  EXPECT_EQ(R("{{ 'héllo'[1] }}{{ 'abc'[-1] }}"),
            "\xC3\xA9"
            "c");
}

TEST(JinjaExpr, Slices) {
  EXPECT_EQ(R("{{ [1, 2, 3, 4][1:] }} {{ [1, 2, 3][::-1] }} {{ [1, 2, 3, 4, 5][::2] }} {{ [1, 2, "
              "3][:-1] }}"),
            "[2, 3, 4] [3, 2, 1] [1, 3, 5] [1, 2]");
  EXPECT_EQ(R("{{ [1, 2, 3][5:] }} {{ [1, 2, 3][-2:] }} {{ [1, 2, 3, 4][3:0:-2] }}"),
            "[] [2, 3] [4, 2]");
  EXPECT_EQ(R("{{ 'abcdef'[1:4] }} {{ 'héllo'[1:3] }} {{ 'abc'[::-1] }}"), "bcd \xC3\xA9l cba");
}

TEST(JinjaExpr, Undefined) {
  EXPECT_EQ(R("[{{ x }}]"), "[]");
  EXPECT_EQ(R("{% if x %}y{% else %}n{% endif %}"), "n");
  EXPECT_EQ(R("{{ x is defined }} {{ x is undefined }} {{ x | length }}"), "False True 0");
  EXPECT_EQ(R("{% for i in x %}{{ i }}{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(R("{{ x | default('d') }} {{ x == x }}"), "d True");
}

// ---- statements -------------------------------------------------------------

TEST(JinjaStmt, IfElifElse) {
  const std::string src =
      "{% if n == 1 %}one{% elif n == 2 %}two{% elif n == 3 %}three{% else %}many{% endif %}";
  EXPECT_EQ(R(src, {{"n", 1}}), "one");
  EXPECT_EQ(R(src, {{"n", 2}}), "two");
  EXPECT_EQ(R(src, {{"n", 3}}), "three");
  EXPECT_EQ(R(src, {{"n", 9}}), "many");
  EXPECT_EQ(
      R("{% if a %}{% if b %}ab{% else %}a{% endif %}{% endif %}", {{"a", true}, {"b", false}}),
      "a");
}

TEST(JinjaStmt, ForLoopVariables) {
  // a: index 1, index0 0, revindex 3, revindex0 2, first, not last, length 3 ...
  EXPECT_EQ(R("{% for x in ['a', 'b', 'c'] %}{{ x }}{{ loop.index }}{{ loop.index0 }}{{ "
              "loop.revindex }}{{ loop.revindex0 }}"
              "{{ loop.first }}{{ loop.last }}{{ loop.length }}|{% endfor %}"),
            "a1032TrueFalse3|b2121FalseFalse3|c3210FalseTrue3|");
  EXPECT_EQ(
      R("{% for x in [1, 2, 3] %}{{ loop.previtem }}<{{ x }}>{{ loop.nextitem }};{% endfor %}"),
      "<1>2;1<2>3;2<3>;");
  EXPECT_EQ(R("{% for x in [1, 2, 3] %}{{ loop.cycle('odd', 'even') }} {% endfor %}"),
            "odd even odd ");
  EXPECT_EQ(R("[{{ loop }}]"), "[]");  // no loop outside a for
}

TEST(JinjaStmt, ForOverDictsAndUnpacking) {
  json v = {{"d", {{"b", 1}, {"a", 2}}}};  // insertion order b, a is kept
  EXPECT_EQ(R("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", v), "b=1;a=2;");
  EXPECT_EQ(R("{% for k in d %}{{ k }}{% endfor %}", v), "ba");
  EXPECT_EQ(R("{% for (a, b) in [[1, 2], [3, 4]] %}{{ a + b }},{% endfor %}"), "3,7,");
  EXPECT_EQ(R("{% for c in 'hé' %}[{{ c }}]{% endfor %}"), "[h][\xC3\xA9]");
  EXPECT_EQ(R("{% for k, v in d | items %}{{ k }}{{ v }}{% endfor %}", v), "b1a2");
}

TEST(JinjaStmt, ForFilterElseBreakContinue) {
  // The inline filter runs first, so loop.length counts kept items: 2 and 4, length 2.
  EXPECT_EQ(R("{% for x in [1, 2, 3, 4] if x is even %}{{ x }}{{ loop.length }}{% endfor %}"),
            "2242");
  EXPECT_EQ(R("{% for x in [] %}x{% else %}none{% endfor %}"), "none");
  EXPECT_EQ(R("{% for x in [1, 2, 3, 4] %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 "
              "%}{% break %}{% endif %}{{ x }}{% endfor %}"),
            "13");
}

TEST(JinjaStmt, SetAndScoping) {
  EXPECT_EQ(R("{% set x = 1 %}{{ x }}"), "1");
  EXPECT_EQ(R("{% set a, b = 1, 2 %}{{ a }}{{ b }}"), "12");
  EXPECT_EQ(R("{% set x %}hi {{ 1 }}{% endset %}[{{ x }}]"), "[hi 1]");
  // if does not open a scope ...
  EXPECT_EQ(R("{% if true %}{% set x = 5 %}{% endif %}{{ x }}"), "5");
  // ... a for loop does: each iteration starts from the outer x = 1, and the
  // outer x is unchanged afterwards: "2" (1+1), "3" (1+2), then "1".
  EXPECT_EQ(R("{% set x = 1 %}{% for i in [1, 2] %}{% set x = x + i %}{{ x }}{% endfor %}{{ x }}"),
            "231");
  // Template variables can be shadowed.
  EXPECT_EQ(R("{% set v = v ~ '!' %}{{ v }}", {{"v", "a"}}), "a!");
}

TEST(JinjaStmt, Namespace) {
  EXPECT_EQ(R("{% set ns = namespace(total=0, seen=false) %}{% for i in [1, 2, 3] %}{% set "
              "ns.total = ns.total + i %}"
              "{% set ns.seen = true %}{% endfor %}{{ ns.total }} {{ ns.seen }}"),
            "6 True");
  EXPECT_EQ(R("{% set ns = namespace({'a': 1}, b=2) %}{{ ns.a }}{{ ns.b }}{{ ns['a'] }}"), "121");
}

TEST(JinjaStmt, Macros) {
  const std::string m =
      "{% macro greet(name, greeting='Hello') %}{{ greeting }}, {{ name }}!{% endmacro %}";
  EXPECT_EQ(R(m + "{{ greet('Bob') }} {{ greet('Al', greeting='Hi') }} {{ greet(greeting='Yo', "
                  "name='Cy') }}"),
            "Hello, Bob! Hi, Al! Yo, Cy!");
  // Macros see template variables; missing arguments are undefined.
  EXPECT_EQ(R("{% macro f(a, b) %}{{ a }}[{{ b }}]{{ g }}{% endmacro %}{{ f(1) }}", {{"g", "G"}}),
            "1[]G");
  // Recursion within the depth limit: countdown 3 2 1.
  EXPECT_EQ(
      R("{% macro c(n) %}{{ n }}{% if n > 1 %} {{ c(n - 1) }}{% endif %}{% endmacro %}{{ c(3) }}"),
      "3 2 1");
}

TEST(JinjaStmt, GenerationBlock) {
  // transformers' AssistantTracker extension renders the body unchanged.
  EXPECT_EQ(R("a{% generation %}b{{ 1 }}{% endgeneration %}c"), "ab1c");
}

// ---- filters ----------------------------------------------------------------

TEST(JinjaFilter, StringFilters) {
  EXPECT_EQ(R("[{{ '  a b \n' | trim }}]"), "[a b]");
  EXPECT_EQ(R("[{{ 'xxaxx' | trim('x') }}]"), "[a]");
  EXPECT_EQ(R("{{ 'aBc' | upper }} {{ 'aBc' | lower }} {{ 'hello world' | title }} {{ 'hELLO' | "
              "capitalize }}"),
            "ABC abc Hello World Hello");
  EXPECT_EQ(R("{{ 'a-b-c' | replace('-', '+') }} {{ 'a-b-c' | replace('-', '', 1) }}"),
            "a+b+c ab-c");
  EXPECT_EQ(R("{{ 5 | string ~ 1 }} {{ none | string }}"), "51 None");
  EXPECT_EQ(R("{{ 'héllo' | length }} {{ 'abc' | reverse }}"), "5 cba");
}

TEST(JinjaFilter, DefaultJoinLength) {
  EXPECT_EQ(R("{{ x | default('d') }} {{ '' | default('d') }} {{ '' | default('d', true) }} {{ x | "
              "d }}|"),
            "d  d |");
  EXPECT_EQ(R("{{ [1, 2, 3] | join(', ') }} {{ ['a', 'b'] | join }}"), "1, 2, 3 ab");
  EXPECT_EQ(R("{{ [1, 2] | length }} {{ {'a': 1} | length }} {{ [] | count }}"), "2 1 0");
}

TEST(JinjaFilter, ConversionsAndSequences) {
  EXPECT_EQ(
      R("{{ '42' | int + 1 }} {{ 'x' | int }} {{ 3.9 | int }} {{ '2.5' | float }} {{ 2 | float }}"),
      "43 0 3 2.5 2.0");
  EXPECT_EQ(R("{{ [3, 1, 2] | first }}{{ [3, 1, 2] | last }} {{ [1, 2] | reverse | list }} {{ 'ab' "
              "| list }}"),
            "32 [2, 1] ['a', 'b']");
  json v = {{"ms", {{{"role", "system"}, {"content", "S"}}, {{"role", "user"}, {"content", "U"}}}}};
  EXPECT_EQ(R("{{ ms | map(attribute='role') | join(',') }}", v), "system,user");
  EXPECT_EQ(
      R("{{ ms | selectattr('role', 'equalto', 'user') | map(attribute='content') | list }}", v),
      "['U']");
  EXPECT_EQ(R("{{ ms | rejectattr('role', 'eq', 'user') | list | length }}", v), "1");
  EXPECT_EQ(R("{{ ['a', 'b'] | map('upper') | join }} {{ [0, 1, 2] | select | list }} {{ [1, 2, 3] "
              "| reject('odd') | list }}"),
            "AB [1, 2] [2]");
}

TEST(JinjaFilter, ToJson) {
  // json.dumps(..., ensure_ascii=False): ", " and ": " separators, key order kept.
  EXPECT_EQ(R("{{ {'b': [1, 2.5, none, true], 'a': 'x\"y\\n\\u00e9'} | tojson }}"),
            "{\"b\": [1, 2.5, null, true], \"a\": \"x\\\"y\\n\xC3\xA9\"}");
  EXPECT_EQ(R("{{ 'tab\\there' | tojson }} {{ [] | tojson }} {{ {} | tojson }} {{ 1.0 | tojson }}"),
            "\"tab\\there\" [] {} 1.0");
  // With indent, json.dumps switches the item separator to ",".
  EXPECT_EQ(R("{{ {'a': [1, 2], 'b': {}} | tojson(indent=2) }}"),
            "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": {}\n}");
  EXPECT_EQ(R("{{ {'b': 1, 'a': {'d': 1, 'c': 2}} | tojson(sort_keys=true) }}"),
            "{\"a\": {\"c\": 2, \"d\": 1}, \"b\": 1}");
  json v = {{"tool", {{"name", "f"}, {"parameters", {{"type", "object"}}}}}};
  EXPECT_EQ(R("{{ tool | tojson }}", v),
            "{\"name\": \"f\", \"parameters\": {\"type\": \"object\"}}");
  EXPECT_EQ(R("{{ '\\x01' | tojson }}"), "\"\\u0001\"");
}

// ---- tests (is ...) -----------------------------------------------------------

TEST(JinjaTests, IsTests) {
  json v = {{"s", "x"},           {"n", nullptr}, {"d", json::object()},
            {"l", json::array()}, {"f", false},   {"i", 3}};
  EXPECT_EQ(R("{{ s is string }}{{ i is string }}{{ n is none }}{{ s is not none }}{{ d is mapping "
              "}}{{ l is mapping }}",
              v),
            "TrueFalseTrueTrueTrueFalse");
  EXPECT_EQ(R("{{ f is false }}{{ 0 is false }}{{ true is true }}{{ i is number }}{{ i is integer "
              "}}{{ 1.5 is float }}",
              v),
            "TrueFalseTrueTrueTrueTrue");
  EXPECT_EQ(R("{{ l is iterable }}{{ l is sequence }}{{ i is iterable }}{{ f is boolean }}", v),
            "TrueTrueFalseTrue");
  EXPECT_EQ(R("{{ 3 is odd }}{{ 3 is even }}{{ 9 is divisibleby 3 }}{{ 9 is divisibleby(4) }}{{ "
              "'a' is in 'abc' }}"),
            "TrueFalseTrueFalseTrue");
  EXPECT_EQ(R("{{ 2 is eq 2 }}{{ 2 is ne 2 }}{{ 'ab' is lower }}{{ none is sameas none }}{{ "
              "namespace is callable }}"),
            "TrueFalseTrueTrueTrue");
  EXPECT_EQ(R("{{ x is defined and x.y }}"), "False");  // short-circuit keeps x.y from failing
}

// ---- methods ------------------------------------------------------------------

TEST(JinjaMethods, StringMethods) {
  EXPECT_EQ(R("[{{ '  a  '.strip() }}][{{ '  a  '.lstrip() }}][{{ '  a  '.rstrip() }}]"),
            "[a][a  ][  a]");
  EXPECT_EQ(R("[{{ '\\n\\na\\n'.strip('\\n') }}][{{ 'xya'.lstrip('yx') }}]"), "[a][a]");
  EXPECT_EQ(R("{{ 'hello'.startswith('he') }}{{ 'hello'.endswith('lo') }}{{ "
              "'hello'.startswith('lo') }}{{ 'hi'.endswith(('x', 'i')) }}"),
            "TrueTrueFalseTrue");
  EXPECT_EQ(R("{{ 'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a b c'.split(' ', 1) }} {{ "
              "'abc'.split('x') }}"),
            "['a', 'b', '', 'c'] ['a', 'b'] ['a', 'b c'] ['abc']");
  EXPECT_EQ(
      R("{{ 'x</think>y</think>z'.split('</think>')[-1] }}{{ 'x</think>y'.split('</think>')[0] }}"),
      "zx");
  EXPECT_EQ(R("{{ 'aB'.upper() }}{{ 'aB'.lower() }}{{ 'a-a'.replace('a', 'b') }}{{ 'abc'.find('c') "
              "}}{{ '-'.join(['a', 'b']) }}"),
            "ABabb-b2a-b");
}

TEST(JinjaMethods, DictMethods) {
  json v = {{"d", {{"k", 1}, {"j", 2}}}};
  EXPECT_EQ(
      R("{{ d.items() | length }} {{ d.keys() | join(',') }} {{ d.values() | join(',') }}", v),
      "2 k,j 1,2");
  EXPECT_EQ(R("{% for k, v in d.items() %}{{ k }}{{ v }}{% endfor %}", v), "k1j2");
  EXPECT_EQ(R("{{ d.get('k') }} {{ d.get('z') }} {{ d.get('z', 7) }}", v), "1 None 7");
}

TEST(JinjaGlobals, RangeDictRaise) {
  EXPECT_EQ(
      R("{{ range(3) | list }} {{ range(1, 7, 2) | list }} {{ range(3, 0, -1) | join(',') }}"),
      "[0, 1, 2] [1, 3, 5] 3,2,1");
  EXPECT_EQ(R("{{ dict(a=1, b='x') }}"), "{'a': 1, 'b': 'x'}");
  expect_error(
      "{% if true %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif "
      "%}",
      {"raise_exception", "Only user and assistant roles are supported!", "line 1"});
}

TEST(JinjaRender, JsonVariables) {
  json v = {{"messages", {{{"role", "user"}, {"content", "hi"}}}},
            {"flag", true},
            {"n", nullptr},
            {"f", 0.5}};
  EXPECT_EQ(R("{{ messages[0].role }}:{{ messages[0]['content'] }} {{ flag }} {{ n }} {{ f }}", v),
            "user:hi True None 0.5");
  std::map<std::string, nucleus::jinja::Value> m;
  m["x"] = nucleus::jinja::Value("direct");
  EXPECT_EQ(Template("{{ x }}").render(m), "direct");
  Template t("{{ a }}");  // one parse, many renders
  EXPECT_EQ(t.render(json{{"a", 1}}), "1");
  EXPECT_EQ(t.render(json{{"a", 2}}), "2");
}

// ---- errors -----------------------------------------------------------------

TEST(JinjaErrors, UnterminatedConstructs) {
  expect_error("abc {{ x", {"line 1", "unterminated", "'{{'"});
  expect_error("a\n{% if x", {"line 2", "unterminated", "'{%'"});
  expect_error("{# never closed", {"unterminated comment"});
  expect_error("{{ 'abc }}", {"unterminated string"});
  expect_error("{% raw %}abc", {"raw"});
  expect_error("{% if x %}a", {"unterminated", "if", "endif"});
  expect_error("{% for x in y %}a", {"unterminated", "for", "endfor"});
  expect_error("{% macro m() %}a", {"endmacro"});
  expect_error("{% set x %}a", {"endset"});
  expect_error("{% for x in y %}{% endif %}", {"endfor", "endif"});
  expect_error("{% endif %}", {"unexpected", "endif"});
  expect_error("{% else %}", {"else"});
  expect_error("{{ (1 + 2 }}", {"unterminated"});  // `}}` inside an open '(' is not a tag end
  expect_error("{{ (1 + 2 ] }}", {"expected ')'"});
  expect_error("{{ [1, 2 }}", {"unterminated"});  // `}}` inside an open '[' is not a tag end
}

TEST(JinjaErrors, UnknownAndUnsupported) {
  expect_error("a\nb\n{{ x | frobnicate }}", {"line 3", "unknown filter 'frobnicate'"});
  expect_error("{{ x is frobbed }}", {"unknown test 'frobbed'"});
  expect_error("{% frob %}", {"unknown statement", "frob"});
  expect_error("{% include 'other.jinja' %}", {"unsupported statement", "include"});
  expect_error("{% extends 'base' %}", {"unsupported statement", "extends"});
  expect_error("{% call m() %}{% endcall %}", {"unsupported statement", "call"});
  expect_error("{{ 'a'.frob() }}", {"unsupported method", "str.frob()"});
  expect_error("{{ [1].append(2) }}", {"list.append()", "immutable"});
  expect_error("{{ '%s' % 1 }}", {"'%'", "not supported"});
  expect_error("{{ f(*args) }}", {"*args"});
  expect_error("{% for x in y recursive %}{% endfor %}", {"recursive"});
  expect_error("{{ a ? b }}", {"unexpected character '?'"});
  expect_error("{{ }}", {"empty expression"});
  expect_error("{% %}", {"empty statement"});
  expect_error("{% break %}", {"outside of a for loop"});
  expect_error("{{ 1 2 }}", {"unexpected number 2"});
}

TEST(JinjaErrors, RuntimeErrors) {
  expect_error("{{ x.y }}", {"'x' is undefined", "attribute 'y'"});
  expect_error("{{ x['y'] }}", {"'x' is undefined"});
  expect_error("{{ x.y.z }}", {"dict object has no attribute 'y'", "reading attribute 'z'"},
               json{{"x", json::object()}});
  expect_error("{{ x + 1 }}", {"'x' is undefined"});
  expect_error("{{ 'a' + 1 }}", {"unsupported operand types for +: 'str' and 'int'"});
  expect_error("{{ 1 / 0 }}", {"division by zero"});
  expect_error("{{ 1 // 0 }}", {"division or modulo by zero"});
  expect_error("{{ 9223372036854775807 + 1 }}", {"integer overflow"});
  expect_error("{{ 1 < 'a' }}", {"'<' not supported"});
  expect_error("{{ 1 in 2 }}", {"not a container"});
  expect_error("{% for x in 5 %}{% endfor %}", {"'int' object is not iterable"});
  expect_error("{% set a, b = [1] %}", {"cannot unpack"});
  expect_error("{% set s = 'x' %}{% set s.attr = 1 %}", {"not a namespace"});
  expect_error("{{ x() }}", {"'x' is undefined"});
  expect_error("{{ (1)() }}", {"not callable"});
  expect_error("{{ range(10000000) | length }}", {"range() longer than"});
  expect_error("{{ [1, 2][::0] }}", {"slice step cannot be zero"});
  expect_error("{{ x | tojson }}", {"undefined"});
  expect_error("{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}", {"takes 1 argument"});
  expect_error("{% macro m(a) %}{% endmacro %}{{ m(b=1) }}", {"no parameter 'b'"});
  expect_error("{{ 'x' * 100000000 }}", {"too large"});
}

TEST(JinjaErrors, HostileNestingIsRefusedNotCrashing) {
  // Deep parentheses, `not` chains, unary chains and nested blocks stop at the
  // parser's nesting limit instead of overflowing the stack.
  expect_error("{{ " + std::string(100000, '(') + "1" + std::string(100000, ')') + " }}",
               {"nested deeper"});
  std::string nots;
  for (int i = 0; i < 100000; ++i) nots += "not ";
  expect_error("{{ " + nots + "1 }}", {"nested deeper"});
  expect_error("{{ " + std::string(100000, '-') + "1 }}", {"nested deeper"});
  std::string ifs;
  for (int i = 0; i < 100000; ++i) ifs += "{% if true %}";
  expect_error(ifs, {"nested deeper"});
  EXPECT_EQ(R(std::string(100000, '[')).size(), 100000u);  // plain text: no tags
  expect_error("{{ " + std::string(100000, '[') + " }}", {"unterminated"});
  // A flat but very long chain makes a deep left-leaning tree; its height is bounded too.
  std::string chain = "{{ 1";
  for (int i = 0; i < 100000; ++i) chain += " + 1";
  expect_error(chain + " }}", {"nested deeper"});
  std::string filters = "{{ 'a'";
  for (int i = 0; i < 100000; ++i) filters += " | trim";
  expect_error(filters + " }}", {"nested deeper"});
  // Within the limits, nesting works.
  EXPECT_EQ(R("{{ " + std::string(50, '(') + "1" + std::string(50, ')') + " }}"), "1");
  // Unbounded macro recursion stops at the call-depth limit.
  expect_error("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", {"nested deeper than 64"});
}

TEST(JinjaErrors, LoopBudget) {
  Options o;
  o.max_loop_iterations = 1000;
  const std::string nested =
      "{% for i in range(100) %}{% for j in range(100) %}{% endfor %}{% endfor %}";
  try {
    R(nested, json::object(), o);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("exceeds 1000 loop iterations"), std::string::npos)
        << e.what();
  }
  o.max_loop_iterations = 100 + 100 * 100;  // exactly enough
  EXPECT_EQ(R(nested, json::object(), o), "");
}

}  // namespace
