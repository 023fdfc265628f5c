// Encoding time of c × n for n = 2^10 … 2^18 on every shipped tokenizer, with
// the largest growth per doubling (issue 14: at most ~2.2×). Best of 3, thread
// CPU time. Prints a markdown table; run from the repository root:
//
//   build/tokenizer_growth_bench [tests/data] [max_log2 = 18]
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "formats/gguf.h"
#include "formats/llama2c.h"
#include "tokenizer/hf_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace {

using nucleus::Tokenizer;

double thread_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

}  // namespace

int main(int argc, char** argv) try {
  const std::string data = argc > 1 ? argv[1] : "tests/data";
  const int max_log2 = argc > 2 ? std::atoi(argv[2]) : 18;
  const std::vector<std::pair<const char*, std::function<std::unique_ptr<Tokenizer>()>>> toks = {
      {"llama3 json", [&] { return nucleus::load_hf_tokenizer(data + "/bpe/llama3"); }},
      {"qwen3 json", [&] { return nucleus::load_hf_tokenizer(data + "/bpe/qwen3"); }},
      {"llama2 json", [&] { return nucleus::load_hf_tokenizer(data + "/bpe/llama2"); }},
      {"mistral json", [&] { return nucleus::load_hf_tokenizer(data + "/bpe/mistral-v0.1"); }},
      {"gpt2 encoder.json", [&] { return nucleus::load_hf_tokenizer(data + "/bpe/gpt2"); }},
      {"llama spm gguf",
       [&] {
         return nucleus::make_tokenizer(
             nucleus::read_gguf_vocab(data + "/tokenizer/ggml-vocab-llama-spm.gguf"));
       }},
      {"gpt2 gguf",
       [&] {
         return nucleus::make_tokenizer(
             nucleus::read_gguf_vocab(data + "/bpe/ggml-vocab-gpt-2.gguf"));
       }},
      {"llama2.c bin",
       [&] {
         return nucleus::make_tokenizer(
             nucleus::read_llama2c_vocab(data + "/tokenizer/llama2_tokenizer.bin", 0));
       }},
  };
  const std::pair<const char*, const char*> chars[] = {
      {"a", "a"}, {"' '", " "},      {"\\n", "\n"},          {"1", "1"},
      {"-", "-"}, {"é", "\xC3\xA9"}, {"中", "\xE4\xB8\xAD"}, {"🙂", "\xF0\x9F\x99\x82"}};
  std::printf(
      "| tokenizer | c | ms at 2^10 | ms at 2^%d | growth per doubling, mean | largest single "
      "doubling |\n",
      max_log2);
  std::printf("|---|---|---:|---:|---:|---:|\n");
  for (const auto& [name, load] : toks) {
    const std::unique_ptr<Tokenizer> tok = load();
    for (const auto& [label, c] : chars) {
      std::vector<double> t;
      for (int k = 10; k <= max_log2; ++k) {
        std::string text;
        for (size_t i = 0; i < (size_t{1} << k); ++i) text += c;
        double best = 1e9;
        for (int rep = 0; rep < 3; ++rep) {
          const double t0 = thread_cpu_seconds();
          (void)tok->encode(text, false);
          best = std::min(best, thread_cpu_seconds() - t0);
        }
        t.push_back(best);
      }
      double worst = 0;
      // Ratios from 2^13 on: below, timer resolution and fixed costs dominate.
      for (size_t i = 3; i < t.size(); ++i) worst = std::max(worst, t[i] / t[i - 1]);
      const double mean = std::pow(t.back() / t.front(), 1.0 / static_cast<double>(t.size() - 1));
      std::printf("| %s | %s | %.3f | %.1f | %.2f | %.2f |\n", name, label, 1e3 * t.front(),
                  1e3 * t.back(), mean, worst);
      std::fflush(stdout);
    }
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "error: %s\n", e.what());
  return 1;
}
