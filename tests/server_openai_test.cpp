// The HTTP API's translation layer without a server: request JSON ->
// RequestOptions (with OpenAI-shaped errors), events -> response JSON. The
// expected shapes and statuses are OpenAI's documented API (and vLLM's
// extensions), not outputs of this code.
#include <gtest/gtest.h>

#include <memory>

#include "formats/model_file.h"
#include "server/api_error.h"
#include "server/json_body.h"
#include "server/openai_request.h"
#include "server/openai_response.h"

namespace nucleus::server {
namespace {

using nlohmann::json;

struct ServerOpenAI : ::testing::Test {
  static void SetUpTestSuite() {
    LoadOptions lo;
    lo.vocab_only = true;
    file = std::make_unique<ModelFile>(
        load_model_file(std::string(NUCLEUS_MODELS_DIR) + "/stories260K.gguf", lo));
    tok = make_tokenizer(file->vocab);
  }
  static void TearDownTestSuite() {
    tok.reset();
    file.reset();
  }
  void SetUp() override {
    model.id = "stories260K";
    model.context_length = 64;
    model.vocab_size = tok->vocab_size();
    model.tokenizer = tok.get();
    tmpl = make_chat_template(
        "{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}",
        "<s>", "</s>", "test template");
    model.chat_template = &tmpl;
    model.chat_eos_ids = {2};
  }
  // The ApiError a request raises (status 0 when it is accepted).
  ApiError error_of(const std::string& body, Endpoint ep = Endpoint::Completions) {
    try {
      const json j = parse_json_body(body, BodyLimits{});
      if (ep == Endpoint::Chat)
        parse_chat_request(j, model, limits, 7);
      else
        parse_completion_request(j, model, limits, 7);
    } catch (const ApiError& e) {
      return e;
    }
    return ApiError(0, "accepted");
  }
  ParsedRequest completion(const std::string& body) {
    return parse_completion_request(json::parse(body), model, limits, 7);
  }

  static std::unique_ptr<ModelFile> file;
  static std::unique_ptr<Tokenizer> tok;
  ModelInfo model;
  ChatTemplate tmpl;
  RequestLimits limits;
};
std::unique_ptr<ModelFile> ServerOpenAI::file;
std::unique_ptr<Tokenizer> ServerOpenAI::tok;

TEST(ServerJsonBody, Utf8) {
  EXPECT_TRUE(is_valid_utf8("plain ascii"));
  EXPECT_TRUE(is_valid_utf8("\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"));  // é € 😀
  EXPECT_FALSE(is_valid_utf8("\xC3"));                                 // truncated
  EXPECT_FALSE(is_valid_utf8("\xC0\xAF"));                             // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xE0\x80\xAF"));                         // overlong, 3 bytes
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));                         // surrogate D800
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));                     // beyond U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\x80"));                                 // lone continuation
  EXPECT_FALSE(is_valid_utf8("\xFF"));
}

TEST(ServerJsonBody, Limits) {
  BodyLimits lim;
  lim.max_bytes = 100;
  lim.max_depth = 4;
  auto status = [&](const std::string& body) {
    try {
      parse_json_body(body, lim);
    } catch (const ApiError& e) {
      return e.status;
    }
    return 200;
  };
  EXPECT_EQ(status(R"({"a":[1,{"b":[2]}]})"), 200);
  EXPECT_EQ(status(std::string(101, ' ')), 413);
  EXPECT_EQ(status("{\"a\":\"\xFF\"}"), 400);
  EXPECT_EQ(status(R"({"a":[[[[1]]]]})"), 400);     // depth 5
  EXPECT_EQ(status(R"({"a":"[[[[[[[[[["})"), 200);  // brackets inside a string
  EXPECT_EQ(status(R"({"a":)"), 400);
  EXPECT_EQ(status(R"([1,2])"), 400);            // not an object
  // A number beyond double's range is nlohmann's out_of_range, not a
  // parse_error; it escaped as an unknown exception until fuzz_openai_request
  // found it (tests/data/fuzz/openai_request/number_out_of_double_range).
  EXPECT_EQ(status(R"({"n":1e400})"), 400);
  EXPECT_EQ(json_depth(R"({"a":"\"[[["})"), 1);  // escaped quote stays in the string
}

TEST(ServerJsonBody, ErrorShape) {
  const ApiError e(422, "'n' is bad", "n", "invalid_value");
  const json j = e.to_json();
  EXPECT_EQ(j["error"]["message"], "'n' is bad");
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  EXPECT_EQ(j["error"]["param"], "n");
  EXPECT_EQ(j["error"]["code"], "invalid_value");
  EXPECT_TRUE(ApiError(401, "x").to_json()["error"]["param"].is_null());
}

TEST_F(ServerOpenAI, CompletionDefaults) {
  const ParsedRequest r = completion(R"({"model":"stories260K","prompt":"Once upon a time"})");
  const auto& c = r.options.gen.config;
  EXPECT_EQ(r.options.gen.prompt, tok->encode("Once upon a time", tok->add_bos_default()));
  EXPECT_TRUE(c.do_sample);  // OpenAI: temperature 1
  EXPECT_EQ(c.temperature, 1.0);
  EXPECT_EQ(c.top_k, 0);  // not HF's 50
  EXPECT_EQ(c.top_p, 1.0);
  EXPECT_EQ(*c.max_new_tokens, 16);  // OpenAI's completions default
  EXPECT_EQ(c.seed, 7u);             // the server's fallback seed
  EXPECT_EQ(c.sampler_order, "hf");
  EXPECT_FALSE(r.stream);
  EXPECT_FALSE(r.logprobs);
  EXPECT_EQ(r.n, 1);
}

TEST_F(ServerOpenAI, CompletionSettings) {
  const ParsedRequest r = completion(
      R"({"prompt":[1,2,3],"temperature":0,"max_tokens":5,"seed":42,"stop":["a","bc"],
          "logit_bias":{"10":-100,"11":2.5},"logprobs":3,"stream":true,
          "stream_options":{"include_usage":true},"top_k":40,"min_p":0.1,"typical_p":0.9,
          "repetition_penalty":1.2,"user":"u"})");
  const auto& c = r.options.gen.config;
  EXPECT_EQ(r.options.gen.prompt, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_FALSE(c.do_sample);
  EXPECT_EQ(*c.max_new_tokens, 5);
  EXPECT_EQ(c.seed, 42u);
  EXPECT_EQ(c.stop_strings, (std::vector<std::string>{"a", "bc"}));
  ASSERT_EQ(c.sequence_bias.size(), 2u);
  EXPECT_EQ(c.sequence_bias[0].first, std::vector<int32_t>{10});
  EXPECT_EQ(c.sequence_bias[0].second, -100.0);
  EXPECT_EQ(c.top_k, 40);
  EXPECT_EQ(c.min_p, 0.1);
  EXPECT_EQ(c.typical_p, 0.9);
  EXPECT_EQ(c.repetition_penalty, 1.2);
  EXPECT_TRUE(r.logprobs);
  EXPECT_EQ(r.top_logprobs, 3);
  EXPECT_EQ(r.options.top_logprobs, 3);
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
}

TEST_F(ServerOpenAI, PenaltiesSelectTheLlamaOrder) {
  const ParsedRequest r =
      completion(R"({"prompt":"a","presence_penalty":0.5,"frequency_penalty":0.25})");
  EXPECT_EQ(r.options.gen.config.sampler_order, "llama.cpp");
  EXPECT_EQ(r.options.gen.config.presence_penalty, 0.5);
  EXPECT_EQ(r.options.gen.config.frequency_penalty, 0.25);
  const ApiError e = error_of(R"({"prompt":"a","presence_penalty":0.5,"sampler_order":"hf"})");
  EXPECT_EQ(e.status, 422);
  EXPECT_EQ(e.param, "presence_penalty");
}

TEST_F(ServerOpenAI, Beams) {
  const ParsedRequest r = completion(
      R"({"prompt":"a","num_beams":4,"n":2,"length_penalty":0.5,"early_stopping":"never"})");
  const auto& c = r.options.gen.config;
  EXPECT_TRUE(r.beams);
  EXPECT_FALSE(c.do_sample);  // beam search is deterministic here
  EXPECT_EQ(c.num_beams, 4);
  EXPECT_EQ(c.num_return_sequences, 2);
  EXPECT_EQ(c.length_penalty, 0.5);
  EXPECT_EQ(c.early_stopping, sampling::EarlyStopping::Never);
  EXPECT_EQ(error_of(R"({"prompt":"a","num_beams":2,"n":3})").status, 422);
  EXPECT_EQ(error_of(R"({"prompt":"a","num_beams":2,"logprobs":1})").status, 422);
}

TEST_F(ServerOpenAI, PromptForms) {
  EXPECT_EQ(completion(R"({"prompt":["Hello"]})").options.gen.prompt,
            tok->encode("Hello", tok->add_bos_default()));
  EXPECT_EQ(completion(R"({"prompt":[[5,6]]})").options.gen.prompt, (std::vector<int32_t>{5, 6}));
  const ApiError batched = error_of(R"({"prompt":["a","b"]})");
  EXPECT_EQ(batched.status, 422);
  EXPECT_EQ(batched.param, "prompt");
  EXPECT_EQ(error_of(R"({"prompt":""})").status, 422);
  EXPECT_EQ(error_of(R"({"prompt":[]})").status, 422);
  EXPECT_EQ(error_of(R"({"prompt":[1,"a"]})").status, 400);
  EXPECT_EQ(error_of(R"({"prompt":{"a":1}})").status, 400);
  EXPECT_EQ(error_of(R"({"prompt":5})").status, 400);
  EXPECT_EQ(error_of(R"({})").status, 400);
  const ApiError bad_id = error_of(R"({"prompt":[1,999999]})");
  EXPECT_EQ(bad_id.status, 422);
  EXPECT_EQ(bad_id.param, "prompt");
  EXPECT_EQ(error_of(R"({"prompt":[-1]})").status, 422);
}

TEST_F(ServerOpenAI, Context) {
  std::string ids = "[1";
  for (int i = 0; i < 63; ++i) ids += ",5";
  ids += "]";
  const ApiError full = error_of(R"({"prompt":)" + ids + "}");  // 64 tokens = the context
  EXPECT_EQ(full.status, 422);
  EXPECT_EQ(full.code, "context_length_exceeded");
  const ApiError too_long = error_of(R"({"prompt":[1,2,3],"max_tokens":62})");
  EXPECT_EQ(too_long.status, 422);
  EXPECT_EQ(too_long.param, "max_tokens");
  EXPECT_EQ(too_long.code, "context_length_exceeded");
  EXPECT_EQ(error_of(R"({"prompt":[1,2,3],"max_tokens":61})").status, 0);
  EXPECT_EQ(error_of(R"({"prompt":[1],"max_tokens":0})").status, 422);
}

TEST_F(ServerOpenAI, BadValuesAndTypes) {
  struct Case {
    const char* body;
    int status;
    const char* param;
  };
  const Case cases[] = {
      {R"({"prompt":"a","model":"gpt-4"})", 404, "model"},
      {R"({"prompt":"a","temperature":"hot"})", 400, "temperature"},
      {R"({"prompt":"a","temperature":-1})", 422, "temperature"},
      {R"({"prompt":"a","max_tokens":2.5})", 400, "max_tokens"},
      {R"({"prompt":"a","n":17})", 422, "n"},
      {R"({"prompt":"a","n":0})", 422, "n"},
      {R"({"prompt":"a","num_beams":17})", 422, "num_beams"},
      {R"({"prompt":"a","logprobs":21})", 422, "logprobs"},
      {R"({"prompt":"a","top_p":0})", 422, "top_p"},
      {R"({"prompt":"a","top_k":-2})", 422, "top_k"},
      {R"({"prompt":"a","stop":5})", 400, "stop"},
      {R"({"prompt":"a","stop":[""]})", 422, "stop"},
      {R"({"prompt":"a","stop":["1","2","3","4","5","6","7","8","9","10","11","12","13","14","15","16","17"]})",
       422, "stop"},
      {R"({"prompt":"a","logit_bias":{"abc":1}})", 422, "logit_bias"},
      {R"({"prompt":"a","logit_bias":{"99999999":1}})", 422, "logit_bias"},
      {R"({"prompt":"a","logit_bias":{"5":101}})", 422, "logit_bias"},
      {R"({"prompt":"a","logit_bias":[5]})", 400, "logit_bias"},
      {R"({"prompt":"a","stream":"yes"})", 400, "stream"},
      {R"({"prompt":"a","stream_options":{"include_usage":true}})", 422, "stream_options"},
      {R"({"prompt":"a","echo":true})", 422, "echo"},
      {R"({"prompt":"a","seed":"x"})", 400, "seed"},
      {R"({"prompt":"a","sampler_order":"mine"})", 422, "sampler_order"},
      {R"({"prompt":"a","presence_penalty":3})", 422, "presence_penalty"},
      {R"({"prompt":"a","early_stopping":"sometimes"})", 400, "early_stopping"},
      {R"({"prompt":"a","tools":[{"type":"function"}]})", 422, "tools"},
  };
  for (const Case& c : cases) {
    const ApiError e = error_of(c.body);
    EXPECT_EQ(e.status, c.status) << c.body << ": " << e.what();
    EXPECT_EQ(e.param, c.param) << c.body;
  }
  // Too long a stop string.
  EXPECT_EQ(error_of(R"({"prompt":"a","stop":")" + std::string(257, 'x') + "\"}").status, 422);
  // Greedy n > 1: the configuration's own validation.
  EXPECT_EQ(error_of(R"({"prompt":"a","temperature":0,"n":2})").status, 422);
  // Explicit nulls are absent fields.
  EXPECT_EQ(error_of(R"({"prompt":"a","temperature":null,"stop":null,"logprobs":null})").status, 0);
}

TEST_F(ServerOpenAI, Chat) {
  const ParsedRequest r =
      parse_chat_request(json::parse(R"({"messages":[{"role":"system","content":"Be brief."},
                      {"role":"user","content":[{"type":"text","text":"Hi"},{"type":"text","text":"!"}]}],
                      "max_completion_tokens":8,"max_tokens":3,"logprobs":true,"top_logprobs":2})"),
                         model, limits, 1);
  EXPECT_EQ(r.endpoint, Endpoint::Chat);
  EXPECT_EQ(r.options.gen.prompt,
            tok->encode_with_specials("<system>Be brief.\n<user>Hi!\n<assistant>", false));
  EXPECT_EQ(*r.options.gen.config.max_new_tokens, 8);  // max_completion_tokens wins
  EXPECT_EQ(r.options.gen.config.eos_token_ids, std::vector<int32_t>{2});
  EXPECT_TRUE(r.logprobs);
  EXPECT_EQ(r.options.top_logprobs, 2);
  // Without max_tokens a reply may fill the context.
  const ParsedRequest open = parse_chat_request(
      json::parse(R"({"messages":[{"role":"user","content":"Hi"}]})"), model, limits, 1);
  EXPECT_EQ(*open.options.gen.config.max_new_tokens,
            model.context_length - static_cast<int64_t>(open.options.gen.prompt.size()));

  EXPECT_EQ(error_of(R"({"messages":[]})", Endpoint::Chat).status, 422);
  EXPECT_EQ(error_of(R"({"messages":"hi"})", Endpoint::Chat).status, 400);
  EXPECT_EQ(error_of(R"({"messages":[{"content":"hi"}]})", Endpoint::Chat).status, 400);
  EXPECT_EQ(
      error_of(R"({"messages":[{"role":"user","content":[{"type":"image_url"}]}]})", Endpoint::Chat)
          .status,
      422);
  EXPECT_EQ(
      error_of(R"({"messages":[{"role":"user","content":"a"}],"top_logprobs":2})", Endpoint::Chat)
          .status,
      422);  // needs logprobs: true
  EXPECT_EQ(
      error_of(R"({"messages":[{"role":"user","content":"a"}],"logprobs":true,"top_logprobs":21})",
               Endpoint::Chat)
          .status,
      422);
  model.chat_template = nullptr;
  EXPECT_EQ(error_of(R"({"messages":[{"role":"user","content":"a"}]})", Endpoint::Chat).code,
            "no_chat_template");
}

TEST_F(ServerOpenAI, TokenizeDetokenize) {
  const json t = tokenize_request(json::parse(R"({"prompt":"Once upon"})"), model);
  EXPECT_EQ(t["tokens"].get<std::vector<int32_t>>(),
            tok->encode("Once upon", tok->add_bos_default()));
  EXPECT_EQ(t["count"], t["tokens"].size());
  EXPECT_EQ(t["max_model_len"], 64);
  const json d = detokenize_request(json{{"tokens", t["tokens"]}}, model);
  EXPECT_EQ(d["prompt"], "Once upon");
  try {
    detokenize_request(json::parse(R"({"tokens":[1,999999]})"), model);
    ADD_FAILURE() << "accepted an id beyond the vocabulary";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 422);
  }
}

serve::TokenEvent ev(int64_t index, int32_t token, const std::string& text, float lp,
                     std::vector<serve::TopLogprob> top = {}, bool last = false) {
  serve::TokenEvent t;
  t.index = index;
  t.token = token;
  t.text = text;
  t.logprob = lp;
  t.top = std::move(top);
  t.last = last;
  t.stop_reason = last ? "eos" : "";
  return t;
}

ResponseContext ctx() {
  ResponseContext c;
  c.id = "cmpl-1";
  c.model = "stories260K";
  c.created = 123;
  c.fingerprint = "fp_x";
  return c;
}

TEST_F(ServerOpenAI, CompletionBodyWithLogprobs) {
  ParsedRequest r = completion(R"({"prompt":[1,400],"logprobs":1})");
  ResponseContext c = ctx();
  c.tokenizer = tok.get();
  ResponseBuilder b(r, c);
  const int32_t a = tok->encode("Once", false).back();
  const int32_t u = tok->encode(" upon", false).back();
  b.on_token(ev(0, a, "", -0.5f, {{a, -0.5f}}));
  b.on_token(ev(0, u, "", -1.5f, {{7, -1.0f}}, true));
  GenerateResult res;
  res.sequences.push_back({{a, u}, "text", 0.0, "length", {}});
  const json j = b.body(res);
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["id"], "cmpl-1");
  EXPECT_EQ(j["system_fingerprint"], "fp_x");
  EXPECT_EQ(j["choices"][0]["text"], "text");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  const json& lp = j["choices"][0]["logprobs"];
  const std::string t0 = token_text(tok.get(), a, 400), t1 = token_text(tok.get(), u, a);
  EXPECT_EQ(lp["tokens"], json({t0, t1}));
  EXPECT_EQ(lp["token_logprobs"], json({-0.5, -1.5}));
  EXPECT_EQ(lp["top_logprobs"][0], json({{t0, -0.5}}));
  EXPECT_EQ(lp["text_offset"], json({0, static_cast<int64_t>(t0.size())}));  // ASCII: bytes = chars
  EXPECT_EQ(j["usage"],
            json({{"prompt_tokens", 2}, {"completion_tokens", 2}, {"total_tokens", 4}}));
}

TEST_F(ServerOpenAI, ChatStreamChunks) {
  ParsedRequest r =
      parse_chat_request(json::parse(R"({"messages":[{"role":"user","content":"Hi"}],"stream":true,
                      "stream_options":{"include_usage":true},"logprobs":true,"top_logprobs":1})"),
                         model, limits, 1);
  ResponseContext c = ctx();
  c.id = "chatcmpl-1";
  c.tokenizer = tok.get();
  ResponseBuilder b(r, c);
  const std::vector<json> first = b.on_token(ev(0, 400, "He", -0.25f, {{400, -0.25f}}));
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0]["object"], "chat.completion.chunk");
  const json& ch = first[0]["choices"][0];
  EXPECT_EQ(ch["delta"], json({{"role", "assistant"}, {"content", "He"}}));
  EXPECT_TRUE(ch["finish_reason"].is_null());
  const json& entry = ch["logprobs"]["content"][0];
  EXPECT_EQ(entry["logprob"], -0.25);
  EXPECT_TRUE(entry["bytes"].is_array());
  EXPECT_EQ(entry["top_logprobs"].size(), 1u);
  const std::vector<json> second = b.on_token(ev(0, 401, "llo", -0.5f, {{401, -0.5f}}, true));
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0]["choices"][0]["delta"], json({{"content", "llo"}}));
  GenerateResult res;
  res.sequences.push_back({{400, 401}, "Hello!", 0.0, "eos", {}});
  const std::vector<json> done = b.done_chunks(res);
  ASSERT_EQ(done.size(), 2u);
  // Text the stream held back comes with the finish_reason.
  EXPECT_EQ(done[0]["choices"][0]["delta"], json({{"content", "!"}}));
  EXPECT_EQ(done[0]["choices"][0]["finish_reason"], "stop");
  EXPECT_TRUE(done[1]["choices"].empty());
  EXPECT_EQ(done[1]["usage"]["completion_tokens"], 2);
}

TEST(ServerResponse, FinishReason) {
  EXPECT_EQ(finish_reason("eos"), "stop");
  EXPECT_EQ(finish_reason("stop"), "stop");
  EXPECT_EQ(finish_reason("length"), "length");
  EXPECT_EQ(finish_reason("time"), "length");
}

}  // namespace
}  // namespace nucleus::server
