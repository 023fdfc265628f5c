// Hostile chat templates (the kind a GGUF file can carry): each one must end
// in one nucleus::Error naming the limit it hit, never a crash, a hang, a
// leak or unbounded memory. Prints a table of what each got and how long it
// took (not asserted: timings belong to benchmarks), for the README's Limits.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "chat/chat_template.h"
#include "jinja/jinja.h"
#include "util/error.h"

namespace nucleus {
namespace {

struct Hostile {
  const char* what;
  std::string source;
  const char* expect;  // substring of the error; "" = renders fine
};

std::string nested_json(int depth) {
  return std::string(static_cast<size_t>(depth), '[') +
         std::string(static_cast<size_t>(depth), ']');
}

TEST(JinjaLimits, HostileTemplates) {
  const Hostile cases[] = {
      {"range(10**9)", "{% for i in range(10**9) %}{% endfor %}", "range() longer than"},
      {"10^4 x 10^4 nested loops",
       "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
       "loop iterations"},
      {"self-recursive macro", "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
       "nested deeper than 64"},
      {"100k nested ifs",
       [] {
         std::string s;
         for (int i = 0; i < 100000; ++i) s += "{% if true %}";
         return s;
       }(),
       "nested deeper"},
      {"'x' * 10**9", "{{ 'x' * 10**9 }}", "too large"},
      {"[15 MB string] * 10**6", "{% set s = 'x' * 15000000 %}{{ ([s] * 1000000)|length }}",
       "too large"},
      {"string doubling x40",
       "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
       "{% endfor %}",
       "'~' result exceeds"},
      {"list doubling x40",
       "{% set ns = namespace(l=[1]) %}{% for i in range(40) %}{% set ns.l = ns.l + ns.l %}"
       "{% endfor %}",
       "'+' result longer than"},
      {"list nested 10^5 deep",
       "{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = [ns.l] %}"
       "{% endfor %}",
       "nested deeper than 256"},
      {"shared list printed (2^40 leaves)",
       "{% set ns = namespace(l=[1]) %}{% for i in range(40) %}{% set ns.l = [ns.l, ns.l] %}"
       "{% endfor %}{{ ns.l }}",
       "printed value exceeds"},
      {"shared list tojson (2^40 leaves)",
       "{% set ns = namespace(l=[1]) %}{% for i in range(40) %}{% set ns.l = [ns.l, ns.l] %}"
       "{% endfor %}{{ ns.l|tojson }}",
       "printed value exceeds"},
      {"replace() blow-up", "{{ ('a' * 1000000)|replace('a', 'a' * 1000) }}", "replace() result"},
      {"join() blow-up", "{{ (['a' * 1000000] * 15)|join('b' * 1000000) }}", "join"},
      {"100 MB of output", "{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}",
       "rendered output exceeds"},
      {"namespace holding itself", "{% set ns = namespace() %}{% set ns.me = ns %}{{ ns.me.me }}",
       ""},
      {"namespace chain 10^5 long",
       "{% set ns = namespace(n=none) %}{% for i in range(100000) %}"
       "{% set ns.n = namespace(n=ns.n) %}{% endfor %}{% set ns.n = none %}",
       ""},
  };
  jinja::Options options;
#ifdef NUCLEUS_SANITIZE
  // The full 10^6-iteration budget takes ~40 s under ASan; the limit is the
  // same code at any size.
  options.max_loop_iterations = 100'000;
#endif
  std::printf("| hostile template | result | ms |\n|---|---|---:|\n");
  for (const Hostile& h : cases) {
    SCOPED_TRACE(h.what);
    std::string result;
    const auto t0 = std::chrono::steady_clock::now();
    try {
      const jinja::Template t(h.source, options);
      result =
          "renders " + std::to_string(t.render(nlohmann::ordered_json::object()).size()) + " bytes";
      EXPECT_STREQ(h.expect, "") << "rendered without error";
    } catch (const Error& e) {
      result = e.what();
      EXPECT_NE(std::string(h.expect), "") << result;
      EXPECT_NE(result.find(h.expect), std::string::npos) << result;
      EXPECT_EQ(result.find('\n'), std::string::npos) << result;
    }
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::printf("| %s | %s | %.0f |\n", h.what, result.c_str(), ms);
  }
}

TEST(JinjaLimits, DeepJsonVariable) {
  // Messages and tools come from requests: a deeply nested one is refused
  // before the conversion recurses.
  const auto deep = nlohmann::ordered_json::parse(nested_json(1000));
  try {
    (void)render_chat("{{ messages }}", {}, false, "", "", {{"tools", deep}});
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("nested deeper than 256"), std::string::npos) << e.what();
  }
  // Realistic depths work.
  EXPECT_EQ(render_chat("{{ tools|length }}", {}, false, "", "",
                        {{"tools", nlohmann::ordered_json::parse(nested_json(50))}}),
            "1");
}

}  // namespace
}  // namespace nucleus
