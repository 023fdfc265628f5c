#include "formats/hf_vocab.h"

#include <algorithm>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <tuple>

#include "util/error.h"
#include "util/text_file.h"

namespace nucleus {

namespace {

using nlohmann::json;

bool is_byte_token(const std::string& s) {
  auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); };
  return s.size() == 6 && s.compare(0, 3, "<0x") == 0 && hex(s[3]) && hex(s[4]) && s[5] == '>';
}

// tokenizer_config.json writes special tokens as a string or as an
// AddedToken object {"content": ...}.
std::string token_content(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string())
    return v["content"].get<std::string>();
  return "";
}

}  // namespace

namespace {

// Every token of a tokenizer.json by id: model.vocab plus added_tokens (an
// added token may repeat a vocab entry with the same id), which must cover
// the ids 0..n-1 exactly.
struct TokenIds {
  std::map<int64_t, std::string> by_id;
  std::map<int64_t, bool> added_special;  // id -> "special" flag of an added token
  int64_t n = 0;
};

TokenIds read_token_ids(const json& t, const std::string& path) {
  const json& m = t["model"];
  TokenIds ids;
  auto put = [&](const std::string& tok, const json& idv, const std::string& field) {
    check(idv.is_number_integer(), path + ": " + field + " id of '" + tok + "' is not an integer");
    const int64_t id = idv.get<int64_t>();
    check(id >= 0 && id < (int64_t{1} << 24),
          path + ": " + field + " token '" + tok + "' has out-of-range id " + std::to_string(id));
    auto [it, fresh] = ids.by_id.emplace(id, tok);
    check(fresh || it->second == tok, path + ": id " + std::to_string(id) + " names both '" +
                                          it->second + "' and '" + tok + "'");
    return id;
  };
  for (const auto& [tok, id] : m["vocab"].items()) put(tok, id, "model.vocab");
  if (t.contains("added_tokens") && t["added_tokens"].is_array()) {
    for (const json& a : t["added_tokens"]) {
      check(a.is_object() && a.contains("id") && a.contains("content") && a["content"].is_string(),
            path + ": malformed entry in 'added_tokens'");
      const int64_t id = put(a["content"].get<std::string>(), a["id"], "added_tokens");
      ids.added_special[id] =
          a.contains("special") && a["special"].is_boolean() && a["special"].get<bool>();
    }
  }
  check(!ids.by_id.empty(), path + ": empty vocabulary");
  ids.n = ids.by_id.rbegin()->first + 1;
  check(static_cast<int64_t>(ids.by_id.size()) == ids.n,
        path + ": token ids are not contiguous (" + std::to_string(ids.by_id.size()) +
            " tokens, largest id " + std::to_string(ids.n - 1) + ")");
  return ids;
}

// The BOS/EOS/UNK/PAD tokens and add_bos/add_eos flags of tokenizer_config.json.
void apply_tokenizer_config(Vocab& v, const std::map<std::string, int32_t>& id_of,
                            const std::string& path, const std::string& config_path) {
  if (config_path.empty()) return;
  const json c = read_json_file(config_path);
  check(c.is_object(), config_path + ": not a JSON object");
  auto lookup = [&](const char* key, int32_t* out) {
    if (!c.contains(key)) return;
    const std::string s = token_content(c[key]);
    if (s.empty()) return;
    auto it = id_of.find(s);
    check(it != id_of.end(),
          config_path + ": field '" + key + "' names token '" + s + "' absent from " + path);
    *out = it->second;
  };
  lookup("bos_token", &v.bos_id);
  lookup("eos_token", &v.eos_id);
  lookup("unk_token", &v.unk_id);
  lookup("pad_token", &v.pad_id);
  if (c.contains("add_bos_token") && c["add_bos_token"].is_boolean())
    v.add_bos = c["add_bos_token"];
  if (c.contains("add_eos_token") && c["add_eos_token"].is_boolean())
    v.add_eos = c["add_eos_token"];
  // The chat template travels into GGUF as tokenizer.chat_template; a list of
  // named templates contributes its "default" entry.
  if (c.contains("chat_template")) {
    const json& t = c["chat_template"];
    if (t.is_string()) {
      v.chat_template = t.get<std::string>();
    } else if (t.is_array()) {
      for (const json& e : t)
        if (e.is_object() && e.value("name", "") == "default" && e.contains("template") &&
            e["template"].is_string())
          v.chat_template = e["template"].get<std::string>();
    }
  }
}

// The first special token of the post-processor's single-sequence template,
// e.g. "<|begin_of_text|>" for Llama 3 ("" when there is none).
std::string template_prefix(const json& pp) {
  if (!pp.is_object()) return "";
  if (pp.contains("processors") && pp["processors"].is_array()) {
    for (const json& p : pp["processors"]) {
      const std::string s = template_prefix(p);
      if (!s.empty()) return s;
    }
    return "";
  }
  if (!pp.contains("single") || !pp["single"].is_array() || pp["single"].empty()) return "";
  const json& first = pp["single"][0];
  if (first.is_object() && first.contains("SpecialToken") && first["SpecialToken"].is_object() &&
      first["SpecialToken"].contains("id") && first["SpecialToken"]["id"].is_string())
    return first["SpecialToken"]["id"].get<std::string>();
  return "";
}

Vocab read_byte_level_vocab(const json& t, const std::string& path, const std::string& config_path);

// The piece a merge entry produces: "a b" (or ["a", "b"]) -> "ab". Pieces may
// hold spaces themselves (Llama 2's tokenizer.json has U+0020 runs), so of
// several spaces the one split whose two sides are both tokens is taken;
// none or several: no result (such a merge cannot apply to escaped text).
std::optional<std::string> merge_result(const json& mg,
                                        const std::map<std::string, int32_t>& id_of) {
  if (mg.is_array() && mg.size() == 2 && mg[0].is_string() && mg[1].is_string())
    return mg[0].get<std::string>() + mg[1].get<std::string>();
  if (!mg.is_string()) return std::nullopt;
  const std::string& s = mg.get_ref<const std::string&>();
  std::optional<std::string> found;
  for (size_t i = s.find(' '); i != std::string::npos; i = s.find(' ', i + 1)) {
    if (i == 0 || i + 1 == s.size()) continue;
    if (!id_of.contains(s.substr(0, i)) || !id_of.contains(s.substr(i + 1))) continue;
    if (found) return std::nullopt;
    found = s.substr(0, i) + s.substr(i + 1);
  }
  return found;
}

// SentencePiece merges the adjacent pair whose joined piece scores highest;
// the tokenizer.json runtime merges the pair listed first in model.merges.
// tokenizer.json drops the scores, so they are rebuilt from the merge list:
// Normal pieces are ranked by the first merge that produces them (pieces no
// merge produces, such as single characters, after all of those, in id
// order), and the k-th gets score -k, the score SentencePiece's BPE trainer
// gives its k-th piece. Ranking by id alone is not enough: Llama 2 gives its
// whitespace runs ("▁▁", "▁▁▁▁", ...) the score -1e9, so they merge last,
// and its tokenizer.json lists their merges last; by id "▁▁" (259) would
// merge first, turning "  Hello" into "▁▁" + "Hello" instead of "▁" +
// "▁Hello". For a vocabulary of trained pieces only (stories260K) both
// rankings agree and reproduce the original scores exactly.
void assign_merge_scores(Vocab& v, const json& m, const std::map<std::string, int32_t>& id_of) {
  std::map<std::string, int64_t> first_merge;
  if (m.contains("merges") && m["merges"].is_array()) {
    int64_t rank = 0;
    for (const json& mg : m["merges"]) {
      if (auto joined = merge_result(mg, id_of)) first_merge.emplace(std::move(*joined), rank);
      ++rank;
    }
  }
  struct Key {
    int64_t rank;  // first merge producing the piece; INT64_MAX: none
    int32_t id;
    bool operator<(const Key& o) const { return std::tie(rank, id) < std::tie(o.rank, o.id); }
  };
  std::vector<Key> normal;
  for (size_t id = 0; id < v.tokens.size(); ++id) {
    if (v.types[id] != TokenType::Normal) continue;
    auto it = first_merge.find(v.tokens[id]);
    normal.push_back({it == first_merge.end() ? std::numeric_limits<int64_t>::max() : it->second,
                      static_cast<int32_t>(id)});
  }
  std::sort(normal.begin(), normal.end());
  // -(float)0 is -0.0f, as SentencePiece stores the first piece's score.
  for (size_t k = 0; k < normal.size(); ++k)
    v.scores[static_cast<size_t>(normal[k].id)] = -static_cast<float>(k);
}

}  // namespace

Vocab read_vocab_from_tokenizer_json(const std::string& path, const std::string& config_path) {
  const json t = read_json_file(path);
  check(t.is_object() && t.contains("model") && t["model"].is_object(),
        path + ": missing object 'model'");
  const json& m = t["model"];
  const bool byte_fallback = m.contains("byte_fallback") && m["byte_fallback"].is_boolean() &&
                             m["byte_fallback"].get<bool>();
  if (byte_fallback) return read_spm_vocab_from_tokenizer_json(path, config_path);
  return read_byte_level_vocab(t, path, config_path);
}

Vocab read_spm_vocab_from_tokenizer_json(const std::string& path, const std::string& config_path) {
  const json t = read_json_file(path);
  check(t.is_object() && t.contains("model") && t["model"].is_object(),
        path + ": missing object 'model'");
  const json& m = t["model"];
  const std::string type =
      m.contains("type") && m["type"].is_string() ? m["type"].get<std::string>() : "";
  const bool byte_fallback = m.contains("byte_fallback") && m["byte_fallback"].is_boolean() &&
                             m["byte_fallback"].get<bool>();
  check(type == "BPE" && byte_fallback,
        path + ": model type '" + type +
            "' without byte_fallback is not a SentencePiece-BPE vocabulary (only those convert)");
  check(m.contains("vocab") && m["vocab"].is_object(), path + ": missing object 'model.vocab'");

  const TokenIds ids = read_token_ids(t, path);
  const int64_t n = ids.n;

  std::string unk;
  if (m.contains("unk_token") && m["unk_token"].is_string()) unk = m["unk_token"];

  Vocab v;
  v.model = "llama";
  v.tokens.reserve(static_cast<size_t>(n));
  v.scores.reserve(static_cast<size_t>(n));
  v.types.reserve(static_cast<size_t>(n));
  std::map<std::string, int32_t> id_of;
  for (const auto& [id, tok] : ids.by_id) {
    TokenType ty = TokenType::Normal;
    auto added = ids.added_special.find(id);
    if (!unk.empty() && tok == unk)
      ty = TokenType::Unknown;
    else if (added != ids.added_special.end())
      ty = added->second ? TokenType::Control : TokenType::UserDefined;
    else if (is_byte_token(tok))
      ty = TokenType::Byte;
    v.tokens.push_back(tok);
    v.scores.push_back(0.0f);
    v.types.push_back(ty);
    id_of.emplace(tok, static_cast<int32_t>(id));
  }
  if (!unk.empty() && id_of.contains(unk)) v.unk_id = id_of[unk];
  assign_merge_scores(v, m, id_of);

  apply_tokenizer_config(v, id_of, path, config_path);
  return v;
}

namespace {

Vocab read_byte_level_vocab(const json& t, const std::string& path,
                            const std::string& config_path) {
  const json& m = t["model"];
  const std::string type =
      m.contains("type") && m["type"].is_string() ? m["type"].get<std::string>() : "";
  check(type == "BPE", path + ": model type '" + type + "' is not BPE");
  check(m.contains("vocab") && m["vocab"].is_object(), path + ": missing object 'model.vocab'");
  const std::string dump = t.contains("pre_tokenizer") ? t["pre_tokenizer"].dump() : "";
  check(dump.find("\"ByteLevel\"") != std::string::npos,
        path + ": BPE without byte_fallback or a ByteLevel pre-tokenizer is not supported");

  const TokenIds ids = read_token_ids(t, path);

  Vocab v;
  v.model = "gpt2";
  v.add_bos = false;
  v.add_space_prefix = false;
  std::map<std::string, int32_t> id_of;
  for (const auto& [id, tok] : ids.by_id) {
    auto added = ids.added_special.find(id);
    TokenType ty = TokenType::Normal;
    if (added != ids.added_special.end())
      ty = added->second ? TokenType::Control : TokenType::UserDefined;
    v.tokens.push_back(tok);
    v.types.push_back(ty);
    id_of.emplace(tok, static_cast<int32_t>(id));
  }
  check(!m.contains("merges") || m["merges"].is_array(), path + ": 'model.merges' is not an array");
  if (m.contains("merges")) {
    v.merges.reserve(m["merges"].size());
    for (const json& mg : m["merges"]) {
      if (mg.is_string()) {
        v.merges.push_back(mg.get<std::string>());
      } else {
        check(mg.is_array() && mg.size() == 2 && mg[0].is_string() && mg[1].is_string(),
              path + ": malformed merge " + mg.dump());
        std::string s = mg[0].get<std::string>();
        s += ' ';
        s += mg[1].get<std::string>();
        v.merges.push_back(std::move(s));
      }
    }
  }
  if (id_of.contains("<|begin_of_text|>"))
    v.pre = "llama-bpe";
  else if (id_of.contains("<|im_start|>"))
    v.pre = "qwen2";
  else
    v.pre = "default";

  const std::string prefix =
      t.contains("post_processor") ? template_prefix(t["post_processor"]) : "";
  if (!prefix.empty() && id_of.contains(prefix)) {
    v.add_bos = true;
    v.bos_id = id_of[prefix];
  }
  apply_tokenizer_config(v, id_of, path, config_path);
  return v;
}

}  // namespace

}  // namespace nucleus
