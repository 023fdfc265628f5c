// Encoding time grows linearly with the input on every shipped tokenizer:
// c × n for the characters of issue 14 (ASCII letter, space, newline, digit,
// punctuation, 2-, 3- and 4-byte UTF-8) must cost at most ~2.8× more per
// doubling of n. A long run of one character class is what makes regex
// pre-tokenizers recurse or backtrack and BPE quadratic on one long word.
//
// Not a speed test: it compares the thread CPU time of n = 2^12 and 2^16 of
// the same tokenizer (best of 5) against a bound far below quadratic growth
// (64 = 16 × a 4× allowance, where quadratic gives 256). On a VM a thread's
// CPU time includes time the host took the vCPU away, so a 0.2 ms run and
// one stray millisecond in the large run once gave 57× under load: the small
// run is floored at 0.5 ms (a quadratic tokenizer taking 0.2 ms at 2^12
// still takes 51 ms > 32 ms at 2^16). bench/tokenizer_growth_bench.cpp
// prints the full table up to 2^18.
#include <gtest/gtest.h>

#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "formats/gguf.h"
#include "formats/llama2c.h"
#include "tokenizer/hf_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace nucleus {
namespace {

const std::string kData = NUCLEUS_TEST_DATA;

struct Shipped {
  const char* name;
  std::unique_ptr<Tokenizer> (*load)();
};

// Every tokenizer kind nucleus ships test data for.
const Shipped kTokenizers[] = {
    {"llama3_json", [] { return load_hf_tokenizer(kData + "/bpe/llama3"); }},
    {"qwen3_json", [] { return load_hf_tokenizer(kData + "/bpe/qwen3"); }},
    {"llama2_json", [] { return load_hf_tokenizer(kData + "/bpe/llama2"); }},
    {"mistral_json", [] { return load_hf_tokenizer(kData + "/bpe/mistral-v0.1"); }},
    {"gpt2_encoder_json", [] { return load_hf_tokenizer(kData + "/bpe/gpt2"); }},
    {"stories260K_json", [] { return load_hf_tokenizer(kData + "/bpe/stories260K-hf"); }},
    {"llama_spm_gguf",
     [] {
       return make_tokenizer(read_gguf_vocab(kData + "/tokenizer/ggml-vocab-llama-spm.gguf"));
     }},
    {"phi3_gguf",
     [] { return make_tokenizer(read_gguf_vocab(kData + "/tokenizer/ggml-vocab-phi-3.gguf")); }},
    {"gpt2_gguf",
     [] { return make_tokenizer(read_gguf_vocab(kData + "/bpe/ggml-vocab-gpt-2.gguf")); }},
    {"llama2c_bin",
     [] {
       return make_tokenizer(read_llama2c_vocab(kData + "/tokenizer/llama2_tokenizer.bin", 0));
     }},
};

const char* const kChars[] = {"a", " ",        "\n",           "1",
                              "-", "\xC3\xA9", "\xE4\xB8\xAD", "\xF0\x9F\x99\x82"};

double thread_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

double best_encode_seconds(const Tokenizer& tok, const std::string& text) {
  double best = 1e9;
  for (int rep = 0; rep < 5; ++rep) {
    const double t0 = thread_cpu_seconds();
    const std::vector<int32_t> ids = tok.encode(text, false);
    best = std::min(best, thread_cpu_seconds() - t0);
    EXPECT_FALSE(ids.empty());
  }
  return best;
}

std::string repeat(const char* c, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += c;
  return s;
}

class TokenizerGrowth : public ::testing::TestWithParam<Shipped> {};

TEST_P(TokenizerGrowth, LinearInRunLength) {
  const std::unique_ptr<Tokenizer> tok = GetParam().load();
  constexpr size_t kSmall = size_t{1} << 12, kLarge = size_t{1} << 16;
  for (const char* c : kChars) {
    SCOPED_TRACE(::testing::PrintToString(std::string(c)));
    const double small = best_encode_seconds(*tok, repeat(c, kSmall));
    const double large = best_encode_seconds(*tok, repeat(c, kLarge));
    // A floor for the small run keeps timer resolution from inflating the ratio.
    EXPECT_LT(large, 64.0 * std::max(small, 5e-4))
        << "2^12: " << small << " s, 2^16: " << large << " s";
  }
}

INSTANTIATE_TEST_SUITE_P(Shipped, TokenizerGrowth, ::testing::ValuesIn(kTokenizers),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace nucleus
