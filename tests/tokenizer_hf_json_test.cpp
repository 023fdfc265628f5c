// Hugging Face tokenizer.json tokenizers against independent references:
// llama.cpp's tokenizer test vectors (ggml-vocab-*.gguf.inp/.out) and the
// built-in cases of the npm llama-tokenizer-js / mistral-tokenizer-js /
// llama3-tokenizer-js packages. Provenance: tests/data/bpe/README.md.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tokenizer/hf_tokenizer.h"
#include "tokenizer_test_support.h"
#include "util/error.h"

namespace nucleus {
namespace {

const std::string kData = std::string(NUCLEUS_TEST_DATA) + "/bpe/";

using test::read_file;

// llama.cpp's vocab test vectors: .inp strings, .out ids per string.
std::vector<test::VectorCase> load_vectors(const std::string& stem) {
  return test::read_vectors(kData + stem + ".inp", kData + stem + ".out");
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

TEST(HfTokenizer, Llama3MatchesLlamaCppVectors) {
  EXPECT_EQ(run_vectors(llama3(), "ggml-vocab-llama-bpe.gguf", 46), 46);
}

TEST(HfTokenizer, Qwen3MatchesLlamaCppQwen2Vectors) {
  EXPECT_EQ(run_vectors(qwen3(), "ggml-vocab-qwen2.gguf", 46), 46);
}

TEST(HfTokenizer, Llama2JsonMatchesLlamaCppSpmVectors) {
  EXPECT_EQ(run_vectors(llama2(), "ggml-vocab-llama-spm.gguf", 46), 46);
}

TEST(HfTokenizer, Stories260KJsonMatchesLlama2cRunC) {
  // tok512.out: the same 46 strings encoded by llama2.c run.c's encode()
  // with the stories260K 512-token vocabulary (no BOS).
  const auto tok = load_hf_tokenizer(kData + "stories260K-hf");
  EXPECT_EQ(run_vectors(*tok, "tok512", 46), 46);
  EXPECT_EQ(tok->vocab_size(), 512);
}

TEST(HfTokenizer, SpecialIds) {
  // From each tokenizer_config.json / post_processor (see the files).
  EXPECT_EQ(llama3().bos_id(), 128000);      // <|begin_of_text|>
  EXPECT_EQ(llama3().eos_id(), 128001);      // <|end_of_text|>
  EXPECT_FALSE(llama3().add_bos_default());  // this early revision has no BOS template
  EXPECT_EQ(llama3().vocab_size(), 128256);
  EXPECT_EQ(qwen3().bos_id(), -1);      // bos_token: null
  EXPECT_EQ(qwen3().eos_id(), 151645);  // <|im_end|>
  EXPECT_FALSE(qwen3().add_bos_default());
  EXPECT_EQ(qwen3().vocab_size(), 151669);
  EXPECT_EQ(llama2().bos_id(), 1);
  EXPECT_EQ(llama2().eos_id(), 2);
  EXPECT_TRUE(llama2().add_bos_default());  // TemplateProcessing puts <s> first
  EXPECT_EQ(mistral().vocab_size(), 32000);
  EXPECT_TRUE(mistral().add_bos_default());  // add_bos_token: true
}

// The npm packages' own test cases.
void run_js_cases(const Tokenizer& tok, const std::string& key, size_t skip_last,
                  int expected_pass) {
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

TEST(HfTokenizer, ByteLevelTokensCarryPartialUtf8) {
  // llama3-tokenizer-js: "🦙" (F0 9F A6 99) is [9468, 99, 247]; the first
  // token holds F0 9F, so a streaming decoder must hold bytes back.
  const std::vector<int32_t> ids{9468, 99, 247};
  EXPECT_EQ(llama3().token_bytes(9468, -1), "\xF0\x9F");
  StreamingDetokenizer s(llama3());
  std::vector<std::string> out;
  for (int32_t id : ids) out.push_back(s.push(id));
  EXPECT_EQ(out, (std::vector<std::string>{"", "", "\xF0\x9F\xA6\x99"}));
  EXPECT_EQ(s.flush(), "");
}

TEST(HfTokenizer, TokenBytesChecksRange) {
  EXPECT_THROW(llama3().token_bytes(128256, -1), Error);
  EXPECT_THROW(llama3().token_bytes(-1, -1), Error);
}

// ---------------------------------------------------------------- small files

// A SentencePiece-style toy: Metaspace with prepend_scheme "first", byte
// fallback, fused unknowns, an added token with lstrip/rstrip, a BOS template.
const char* kToyJson = R"({
  "model": {"type": "BPE", "unk_token": "<unk>", "byte_fallback": true, "fuse_unk": true,
            "vocab": {"<unk>": 0, "<s>": 1, "▁": 2, "a": 3, "b": 4, "▁a": 5, "▁b": 6, "<0x21>": 7, "<x>": 8},
            "merges": ["▁ a", ["▁", "b"]]},
  "added_tokens": [
    {"id": 1, "content": "<s>", "special": true, "normalized": false, "lstrip": false, "rstrip": false, "single_word": false},
    {"id": 8, "content": "<x>", "special": false, "normalized": false, "lstrip": true, "rstrip": true, "single_word": false}],
  "normalizer": null,
  "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": true},
  "decoder": {"type": "Sequence", "decoders": [{"type": "ByteFallback"},
              {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": true}]},
  "post_processor": {"type": "TemplateProcessing",
    "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
    "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}}
})";

TEST(HfTokenizerToy, MetaspaceAddedTokensByHand) {
  const auto tok = parse_hf_tokenizer(kToyJson, "");
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_TRUE(tok->add_bos_default());
  // "a b" -> "▁a▁b" (prefix at the start) -> pieces "▁a", "▁b" -> merges.
  EXPECT_EQ(tok->encode("a b", true), (std::vector<int32_t>{1, 5, 6}));
  EXPECT_EQ(tok->decode({1, 5, 6}), "a b");
  // "<x>" takes the spaces around it (lstrip/rstrip); "b!" does not start
  // the input, so gets no "▁"; '!' falls back to byte token <0x21>.
  EXPECT_EQ(tok->encode("a <x> b!", false), (std::vector<int32_t>{5, 8, 4, 7}));
  EXPECT_EQ(tok->decode({5, 8, 4, 7}), "a<x>b!");
  // '?' has no byte token: unknown, and the two unknowns fuse into one.
  EXPECT_EQ(tok->encode("a??", false), (std::vector<int32_t>{5, 0}));
  EXPECT_EQ(tok->token_bytes(1, -1), "");  // special tokens decode to nothing
  // The Metaspace decoder drops every "▁" of the first token (as HF does)
  // and turns later ones into spaces: "▁" then "▁a" -> "" + " a".
  EXPECT_EQ(tok->decode({2, 5}), " a");
}

std::string toy_with(const std::string& from, const std::string& to) {
  std::string s = kToyJson;
  const size_t pos = s.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  s.replace(pos, from.size(), to);
  return s;
}

void expect_refusal(const std::string& json, const std::string& message) {
  try {
    parse_hf_tokenizer(json, "");
    ADD_FAILURE() << "expected Error: " << message;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
  }
}

TEST(HfTokenizerToy, RefusesWhatItDoesNotImplement) {
  expect_refusal(toy_with(R"("type": "BPE")", R"("type": "Unigram")"),
                 "tokenizer.json: model.type 'Unigram' is not supported");
  expect_refusal(toy_with(R"("normalizer": null)", R"("normalizer": {"type": "Lowercase"})"),
                 "tokenizer.json: normalizer.type 'Lowercase' is not supported");
  expect_refusal(
      toy_with(
          R"("normalizer": null)",
          R"("normalizer": {"type": "Sequence", "normalizers": [{"type": "NFC"}, {"type": "NFKC"}]})"),
      "tokenizer.json: normalizer.normalizers[1].type 'NFKC' is not supported");
  expect_refusal(
      toy_with(
          R"("type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": true},)",
          R"("type": "Whitespace"},)"),
      "tokenizer.json: pre_tokenizer.type 'Whitespace' is not supported");
  expect_refusal(toy_with(R"({"type": "ByteFallback"})", R"({"type": "WordPiece"})"),
                 "tokenizer.json: decoder.decoders[0].type 'WordPiece' is not supported");
  expect_refusal(toy_with(R"("type": "TemplateProcessing")", R"("type": "BertProcessing")"),
                 "tokenizer.json: post_processor.type 'BertProcessing' is not supported");
  expect_refusal(
      toy_with(R"("fuse_unk": true)", R"("fuse_unk": true, "continuing_subword_prefix": "##")"),
      "tokenizer.json: model.continuing_subword_prefix '##' is not supported");
  expect_refusal(toy_with(R"("fuse_unk": true)", R"("fuse_unk": true, "dropout": 0.1)"),
                 "tokenizer.json: model.dropout must be null");
  expect_refusal(toy_with(R"("b": 4)", R"("b": -4)"),
                 "tokenizer.json: model.vocab['b'] must be an id");
  expect_refusal(toy_with(R"("▁ a")", R"("▁ q")"),
                 "merge 0 ('▁' 'q') uses a token missing from the vocabulary");
  expect_refusal(toy_with(R"("unk_token": "<unk>")", R"("unk_token": "<nope>")"),
                 "tokenizer.json: model.unk_token '<nope>' is not in model.vocab");
  expect_refusal(toy_with(R"("prepend_scheme": "first", "split": true},)",
                          R"("prepend_scheme": "sometimes"},)"),
                 "tokenizer.json: pre_tokenizer.prepend_scheme 'sometimes' is not supported");
  expect_refusal(
      toy_with(
          R"("type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": true},)",
          R"("type": "Split", "pattern": {"Regex": "("}, "behavior": "Isolated"},)"),
      "tokenizer.json: pre_tokenizer.pattern: cannot compile regex '('");
  expect_refusal(
      toy_with(R"({"type": "ByteFallback"})",
               R"({"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 0, "stop": 1})"),
      "tokenizer.json: decoder.decoders[1].stop > 0 after a Fuse decoder is not supported");
  expect_refusal(toy_with(R"("<x>": 8)", R"("<x>": 9000000)"),
                 "tokenizer.json: token ids reach 9000000 with only 11 tokens");
  std::string deep = R"({"type": "NFC"})";
  for (int i = 0; i < 20; ++i) deep = R"({"type": "Sequence", "normalizers": [)" + deep + "]}";
  expect_refusal(toy_with(R"("normalizer": null)", "\"normalizer\": " + deep),
                 "nests Sequences more than 8 deep");
  expect_refusal("{\"model\": ", "tokenizer.json: (file) is not valid JSON");
  expect_refusal("[]", "tokenizer.json: (top level) must be an object");
  EXPECT_THROW(load_hf_tokenizer(kData + "no-such-dir"), Error);
  EXPECT_THROW(load_hf_tokenizer(kData + "no-such-file.json"), Error);
  try {
    parse_hf_tokenizer(kToyJson, R"({"bos_token": "<nope>"})");
    ADD_FAILURE() << "expected Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bos_token '<nope>' is not in the vocabulary"),
              std::string::npos)
        << e.what();
  }
}

TEST(HfTokenizerToy, DigitsWhitespaceSplitAndStripNormalizer) {
  // Character-level vocabulary without merges, so the ids show the pieces:
  // each piece is spelled out, and a piece that is itself a token stays whole
  // only with ignore_merges (on here).
  const std::string json = R"({
    "model": {"type": "BPE", "ignore_merges": true,
              "vocab": {"a": 0, "1": 1, "2": 2, "12": 3, "a1": 4, "b": 5}, "merges": []},
    "normalizer": {"type": "Strip", "strip_left": true, "strip_right": true},
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "WhitespaceSplit"},
                      {"type": "Digits", "individual_digits": DIGITS}]}
  })";
  auto with = [&](const char* digits) {
    std::string s = json;
    s.replace(s.find("DIGITS"), 6, digits);
    return parse_hf_tokenizer(s, "");
  };
  // " \t a12 b\n" -> strip -> "a12 b" -> whitespace split "a12", "b" ->
  // digits: "a", "1", "2" (individual) or "a", "12" (contiguous).
  EXPECT_EQ(with("true")->encode(" \t a12 b\n", false), (std::vector<int32_t>{0, 1, 2, 5}));
  EXPECT_EQ(with("false")->encode(" \t a12 b\n", false), (std::vector<int32_t>{0, 3, 5}));
}

TEST(HfTokenizerToy, SplitStringPatternReplaceAndStrip) {
  // Split on the literal "-" (MergedWithPrevious), a regex Replace
  // normalizer turning runs of spaces into one "▁", and a Strip decoder
  // removing one trailing "-"; checked by hand on a tiny vocabulary.
  const auto tok = parse_hf_tokenizer(R"({
    "model": {"type": "BPE", "vocab": {"a": 0, "-": 1, "▁": 2, "a-": 3, "▁a": 4}, "merges": ["a -", "▁ a"]},
    "normalizer": {"type": "Replace", "pattern": {"Regex": " +"}, "content": "▁"},
    "pre_tokenizer": {"type": "Split", "pattern": {"String": "-"}, "behavior": "MergedWithPrevious", "invert": false},
    "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
                {"type": "Strip", "content": "-", "start": 0, "stop": 1}]}
  })",
                                      "");
  // "a-   a-a" -> "a-▁a-a" -> pieces "a-", "▁a-", "a". In "▁a-" the pair
  // (a,-) has rank 0 and (▁,a) rank 1, so a+- merges first: ▁ | a-.
  EXPECT_EQ(tok->encode("a-   a-a", false), (std::vector<int32_t>{3, 2, 3, 0}));
  // Strip before any Fuse acts on every token: each "a-" loses its "-".
  EXPECT_EQ(tok->decode({3, 2, 3, 0}), "a aa");
  EXPECT_EQ(tok->bos_id(), -1);
  EXPECT_FALSE(tok->add_bos_default());
}

}  // namespace
}  // namespace nucleus
