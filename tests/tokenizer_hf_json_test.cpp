// Hugging Face tokenizer.json tokenizers against independent references:
// llama.cpp's tokenizer test vectors (ggml-vocab-*.gguf.inp/.out) and the
// built-in cases of the npm llama-tokenizer-js / mistral-tokenizer-js /
// llama3-tokenizer-js packages. Provenance: tests/data/bpe/README.md.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tokenizer/hf_tokenizer.h"
#include "util/error.h"

namespace nucleus {
namespace {

const std::string kData = std::string(NUCLEUS_TEST_DATA) + "/bpe/";

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(f.good()) << path;
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

struct Case {
  std::string text;
  std::vector<int32_t> ids;
};

// .inp: strings separated by "\n__ggml_vocab_test__\n"; .out: one line of ids per string.
std::vector<Case> load_vectors(const std::string& stem) {
  const std::string inp = read_file(kData + stem + ".inp");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<Case> cases;
  for (size_t pos = 0; pos < inp.size();) {
    size_t end = inp.find(sep, pos);
    if (end == std::string::npos) end = inp.size();
    cases.push_back({inp.substr(pos, end - pos), {}});
    pos = end + sep.size();
  }
  std::istringstream out(read_file(kData + stem + ".out"));
  std::string line;
  for (auto& c : cases) {
    EXPECT_TRUE(std::getline(out, line)) << stem << ": .out has fewer lines than .inp has strings";
    std::istringstream ls(line);
    int32_t id;
    while (ls >> id) c.ids.push_back(id);
  }
  return cases;
}

std::string decode(const Tokenizer& tok, const std::vector<int32_t>& ids) {
  std::string s;
  int32_t prev = -1;
  for (int32_t id : ids) {
    s += tok.token_bytes(id, prev);
    prev = id;
  }
  return s;
}

// Runs every vector; returns the number that pass.
int run_vectors(const Tokenizer& tok, const std::string& stem, size_t expected_count) {
  const auto cases = load_vectors(stem);
  EXPECT_EQ(cases.size(), expected_count);
  int pass = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto ids = tok.encode(cases[i].text, false);
    EXPECT_EQ(ids, cases[i].ids) << stem << " case " << i << ": '" << cases[i].text << "'";
    EXPECT_EQ(decode(tok, ids), cases[i].text) << stem << " round trip, case " << i;
    if (ids == cases[i].ids) ++pass;
  }
  std::printf("%s: %d/%zu\n", stem.c_str(), pass, cases.size());
  return pass;
}

// The tokenizers are large; load each once for the whole binary.
const Tokenizer& llama3() {
  static const auto t = load_hf_tokenizer(kData + "llama3");
  return *t;
}
const Tokenizer& qwen3() {
  static const auto t = load_hf_tokenizer(kData + "qwen3/tokenizer.json");
  return *t;
}
const Tokenizer& llama2() {
  static const auto t = load_hf_tokenizer(kData + "llama2");
  return *t;
}
const Tokenizer& mistral() {
  static const auto t = load_hf_tokenizer(kData + "mistral-v0.1");
  return *t;
}

TEST(HfTokenizer, Llama3MatchesLlamaCppVectors) { EXPECT_EQ(run_vectors(llama3(), "ggml-vocab-llama-bpe.gguf", 46), 46); }

TEST(HfTokenizer, Qwen3MatchesLlamaCppQwen2Vectors) { EXPECT_EQ(run_vectors(qwen3(), "ggml-vocab-qwen2.gguf", 46), 46); }

TEST(HfTokenizer, Llama2JsonMatchesLlamaCppSpmVectors) {
  EXPECT_EQ(run_vectors(llama2(), "ggml-vocab-llama-spm.gguf", 46), 46);
}

TEST(HfTokenizer, SpecialIds) {
  // From each tokenizer_config.json / post_processor (see the files).
  EXPECT_EQ(llama3().bos_id(), 128000);  // <|begin_of_text|>
  EXPECT_EQ(llama3().eos_id(), 128001);  // <|end_of_text|>
  EXPECT_FALSE(llama3().add_bos_default());  // this early revision has no BOS template
  EXPECT_EQ(llama3().vocab_size(), 128256);
  EXPECT_EQ(qwen3().bos_id(), -1);       // bos_token: null
  EXPECT_EQ(qwen3().eos_id(), 151645);   // <|im_end|>
  EXPECT_FALSE(qwen3().add_bos_default());
  EXPECT_EQ(qwen3().vocab_size(), 151669);
  EXPECT_EQ(llama2().bos_id(), 1);
  EXPECT_EQ(llama2().eos_id(), 2);
  EXPECT_TRUE(llama2().add_bos_default());  // TemplateProcessing puts <s> first
  EXPECT_EQ(mistral().vocab_size(), 32000);
  EXPECT_TRUE(mistral().add_bos_default());  // add_bos_token: true
}

// The npm packages' own test cases.
void run_js_cases(const Tokenizer& tok, const std::string& key, size_t skip_last, int expected_pass) {
  const auto j = nlohmann::json::parse(read_file(kData + "js_tokenizer_package_vectors.json"));
  ASSERT_TRUE(j.contains(key)) << key;
  const auto& cases = j[key];
  ASSERT_GT(cases.size(), skip_last);
  int pass = 0;
  for (size_t i = 0; i + skip_last < cases.size(); ++i) {
    const auto& c = cases[i];
    const std::string text = c["text"];
    bool bos = true, eos = false;
    if (c.contains("add_bos")) bos = c["add_bos"];
    if (c.contains("options")) {
      // llama3-tokenizer-js: options null means its defaults, bos and eos.
      const auto& o = c["options"];
      bos = o.is_null() ? true : o.value("bos", true);
      eos = o.is_null() ? true : o.value("eos", true);
    }
    auto ids = tok.encode(text, bos);
    if (eos) ids.push_back(tok.eos_id());
    const auto expected = c["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(ids, expected) << key << " case " << i << ": '" << text << "'";
    if (ids == expected) ++pass;
    // Special tokens decode to nothing, so only plain text must round-trip.
    if (text.find("<|") == std::string::npos) {
      EXPECT_EQ(decode(tok, ids), text) << key << " round trip, case " << i;
    }
  }
  std::printf("%s: %d/%zu\n", key.c_str(), pass, cases.size() - skip_last);
  EXPECT_EQ(pass, expected_pass);
}

TEST(HfTokenizer, MistralMatchesMistralTokenizerJs) {
  run_js_cases(mistral(), "mistral-v0.1-spm (mistral-tokenizer-js@1.0.0)", 0, 12);
}

TEST(HfTokenizer, Llama2MatchesLlamaTokenizerJs) {
  run_js_cases(llama2(), "llama2-spm (llama-tokenizer-js@1.2.2)", 0, 12);
}

TEST(HfTokenizer, Llama3MatchesLlama3TokenizerJs) {
  // The last three cases use Llama 3.1's special-token names (<|eom_id|> and
  // renumbered reserved tokens) and a package option that turns unknown
  // special names into id 1; this Llama 3.0 tokenizer.json has neither, so
  // they cannot match and are skipped.
  run_js_cases(llama3(), "llama3-bpe (llama3-tokenizer-js@1.2.0)", 3, 19);
}

TEST(HfTokenizer, SpecialTokensAreMatchedBeforeTheModel) {
  // <|im_start|> = 151644 and <|im_end|> = 151645 in qwen3's added_tokens;
  // "user" alone is 872 and "\n" is 198 (vocab entries "user", "Ċ").
  EXPECT_EQ(qwen3().encode("<|im_start|>user\n<|im_end|>", false),
            (std::vector<int32_t>{151644, 872, 198, 151645}));
  EXPECT_EQ(decode(qwen3(), {151644, 872, 198, 151645}), "user\n");  // specials decode to nothing
  // </think> (151668) is a non-special added token: it is matched and decodes to itself.
  EXPECT_EQ(qwen3().encode("</think>", false), (std::vector<int32_t>{151668}));
  EXPECT_EQ(decode(qwen3(), {151668}), "</think>");
}

TEST(HfTokenizer, TokenBytesChecksRange) {
  EXPECT_THROW(llama3().token_bytes(128256, -1), Error);
  EXPECT_THROW(llama3().token_bytes(-1, -1), Error);
}

}  // namespace
}  // namespace nucleus
