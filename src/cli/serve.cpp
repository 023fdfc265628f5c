// nucleus serve: an OpenAI-compatible HTTP server (src/server/) over the
// continuous-batching scheduler (src/serve/). It listens first and loads the
// model after, so /health says 503 while loading; SIGTERM/SIGINT drain.
#include <pthread.h>

#include <algorithm>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>

#include "chat/chat_template.h"
#include "cli/common.h"
#include "kernels/matmul_bf16dot.h"
#include "kv/kv_cache.h"
#include "serve/service.h"
#include "server/auth.h"
#include "server/http_server.h"
#include "util/error.h"
#include "util/text_file.h"

namespace nucleus::cli {
namespace {

struct ServeOpts {
  ModelOptions model;
  std::string host = "127.0.0.1";
  int port = 8080;
  int64_t parallel = 16;
  int64_t kv_cache_mib = 0;
  int64_t max_queue = 64;
  int64_t step_tokens = 256;
  bool no_prefix_cache = false;
  std::string api_key, api_key_file;
  std::string chat_template;
  std::string served_name;
  double drain_timeout = 30.0;
  size_t max_connections = 1024;
};

// --chat-template: a tokenizer_config.json, or a Jinja file. Default: the
// tokenizer_config.json beside the model, else the GGUF file's own
// tokenizer.chat_template; none: chat requests are refused.
std::optional<ChatTemplate> chat_template_for(const ServeOpts& o, const ModelFile& f) {
  namespace fs = std::filesystem;
  const Vocab& v = f.vocab;
  auto text = [&](int32_t id) { return id >= 0 && id < v.size() ? v.tokens[id] : std::string(); };
  if (!o.chat_template.empty()) {
    if (fs::path(o.chat_template).extension() == ".json")
      return load_chat_template(o.chat_template);
    return make_chat_template(read_text_file(o.chat_template), text(v.bos_id), text(v.eos_id),
                              o.chat_template);
  }
  std::error_code ec;
  const fs::path model(o.model.model_path());
  const fs::path cfg =
      (fs::is_directory(model, ec) ? model : model.parent_path()) / "tokenizer_config.json";
  if (fs::is_regular_file(cfg, ec)) return load_chat_template(cfg.string());
  if (!v.chat_template.empty())
    return make_chat_template(v.chat_template, text(v.bos_id), text(v.eos_id),
                              o.model.model_path() + ": tokenizer.chat_template");
  return std::nullopt;
}

uint64_t fnv1a(uint64_t h, const std::string& s) {
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

// Names what produced the tokens: the model file (path, size) and how it was
// loaded. Kernels are bit-identical across ISAs and thread counts, so those
// are not part of it.
std::string fingerprint(const ServeOpts& o) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(o.model.model_path(), ec);
  uint64_t h = fnv1a(0xcbf29ce484222325ull, o.model.model_path());
  h = fnv1a(h, std::to_string(ec ? 0 : size) + "/" + o.model.quantize);
  char buf[32];
  std::snprintf(buf, sizeof buf, "fp_%012llx",
                static_cast<unsigned long long>(h & 0xFFFFFFFFFFFFull));
  return buf;
}

int run_serve(ServeOpts& o) {
  check(o.api_key.empty() || o.api_key_file.empty(), "give --api-key or --api-key-file, not both");
  server::ServerOptions so;
  so.host = o.host;
  so.port = o.port;
  so.api_key = o.api_key_file.empty() ? o.api_key : server::read_api_key_file(o.api_key_file);
  so.max_connections = o.max_connections;

  // SIGTERM/SIGINT go to one thread that sigwait()s for them; every thread
  // started after this (HTTP connections, the engine's pool, the scheduler)
  // inherits the blocked mask. While the model loads there is nothing to
  // drain, so a signal then ends the process at once.
  std::signal(SIGPIPE, SIG_IGN);
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  struct StopState {
    std::mutex mu;
    std::condition_variable cv;
    int signal = 0;
    bool ready = false;
  };
  auto stop = std::make_shared<StopState>();  // shared: the thread may outlive this frame
  std::thread([stop, stop_signals] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    std::lock_guard<std::mutex> lock(stop->mu);
    if (!stop->ready) {
      std::fprintf(stderr, "nucleus serve: %s while loading: stopped\n", strsignal(sig));
      std::_Exit(0);
    }
    stop->signal = sig;
    stop->cv.notify_all();
  }).detach();

  server::HttpServer http(so);
  const int port = http.bind();
  http.start();
  std::fprintf(stderr, "nucleus serve: listening on http://%s:%d (loading %s)\n", o.host.c_str(),
               port, o.model.model_path().c_str());

  LoadedModel m = load_model(o.model);
  const std::optional<ChatTemplate> tmpl = chat_template_for(o, *m.file);
  const ModelConfig& mc = m.model->config();

  EngineOptions eo;
  eo.threads = o.model.thread_count();
  eo.kv_type = parse_kv_type(o.model.kv_type);
  eo.bf16_dot = kernels::parse_bf16_dot(o.model.bf16_dot.c_str());
  eo.max_sequences = std::max<int64_t>(1, o.parallel);
  // K and V, every layer, block_size positions of kv_dim elements of the KV
  // type (checked against the cache's own accounting below).
  const int64_t bytes_per_block = 2 * mc.n_layers * eo.kv_block_size *
                                  static_cast<int64_t>(row_bytes(eo.kv_type, mc.kv_dim()));
  if (o.kv_cache_mib > 0)
    eo.kv_blocks = std::max<int64_t>(1, o.kv_cache_mib * 1024 * 1024 / bytes_per_block);
  Engine engine(m.model, eo);
  const KvMemory kvm = engine.kv().memory();
  check(kvm.bytes_per_block == bytes_per_block,
        "internal: KV block size differs from the --kv-cache-mib estimate");

  serve::ServiceOptions svo;
  svo.scheduler.max_running = o.parallel;
  svo.scheduler.step_tokens = o.step_tokens;
  svo.scheduler.prefix_cache = !o.no_prefix_cache;
  svo.max_queue = o.max_queue;
  serve::Service service(engine, m.tokenizer.get(), svo);

  server::Backend backend;
  backend.service = &service;
  backend.model.id = o.served_name.empty()
                         ? std::filesystem::path(o.model.model_path()).stem().string()
                         : o.served_name;
  backend.model.context_length = engine.context_length();
  backend.model.vocab_size = engine.vocab_size();
  backend.model.tokenizer = m.tokenizer.get();
  backend.model.chat_template = tmpl ? &*tmpl : nullptr;
  if (tmpl && m.tokenizer) {
    // A chat reply also ends at the template's end-of-turn token.
    std::vector<int32_t> eos = mc.eos_ids;
    if (eos.empty() && m.tokenizer->eos_id() >= 0) eos.push_back(m.tokenizer->eos_id());
    const std::vector<int32_t> eot =
        tmpl->eos_token.empty() ? std::vector<int32_t>{}
                                : m.tokenizer->encode_with_specials(tmpl->eos_token, false);
    if (eot.size() == 1 && std::find(eos.begin(), eos.end(), eot[0]) == eos.end())
      eos.push_back(eot[0]);
    backend.model.chat_eos_ids = eos;
  }
  backend.fingerprint = fingerprint(o);
  backend.created = std::chrono::duration_cast<std::chrono::seconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
  http.set_backend(&backend);
  {
    std::lock_guard<std::mutex> lock(stop->mu);
    stop->ready = true;
  }
  std::fprintf(stderr,
               "nucleus serve: ready: model '%s', context %lld, %d threads, KV pool %lld blocks "
               "(%.1f MiB), parallel %lld, chat template %s\n",
               backend.model.id.c_str(), static_cast<long long>(engine.context_length()),
               eo.threads, static_cast<long long>(kvm.blocks_total),
               static_cast<double>(kvm.bytes_total()) / (1024.0 * 1024.0),
               static_cast<long long>(o.parallel), tmpl ? tmpl->origin.c_str() : "none");

  int sig = 0;
  {
    std::unique_lock<std::mutex> lock(stop->mu);
    stop->cv.wait(lock, [&] { return stop->signal != 0; });
    sig = stop->signal;
  }
  std::fprintf(stderr, "nucleus serve: %s: draining (up to %.0f s)\n", strsignal(sig),
               o.drain_timeout);
  service.stop(std::chrono::milliseconds(static_cast<int64_t>(o.drain_timeout * 1000.0)));
  http.stop();
  http.set_backend(nullptr);
  std::fprintf(stderr, "nucleus serve: stopped\n");
  return 0;
}

}  // namespace

Command add_serve(CLI::App& app) {
  auto o = std::make_shared<ServeOpts>();
  CLI::App* sub =
      app.add_subcommand("serve", "OpenAI-compatible HTTP server (continuous batching)");
  o->model.add_to(sub);
  sub->add_option("--host", o->host, "address to listen on (default 127.0.0.1: this machine only)");
  sub->add_option("--port", o->port, "port (default 8080; 0: any free port, printed on stderr)")
      ->check(CLI::Range(0, 65535));
  sub->add_option("--parallel", o->parallel, "requests decoded together (default 16)")
      ->check(CLI::Range(1, 1024));
  sub->add_option("--kv-cache-mib", o->kv_cache_mib,
                  "KV pool size in MiB (default: --parallel x the context); requests beyond it "
                  "are pre-empted and recomputed, never failed")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30));
  sub->add_option("--max-queue", o->max_queue, "waiting requests beyond this get 429 (default 64)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
  sub->add_option("--step-tokens", o->step_tokens,
                  "rows per forward step: decode rows + prefill chunks (default 256)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  sub->add_flag("--no-prefix-cache", o->no_prefix_cache, "do not reuse KV blocks across requests");
  auto* key = sub->add_option("--api-key", o->api_key, "require 'Authorization: Bearer KEY'");
  sub->add_option("--api-key-file", o->api_key_file, "read the API key from the file's first line")
      ->excludes(key);
  sub->add_option(
      "--chat-template", o->chat_template,
      "chat template: a tokenizer_config.json or a Jinja file (default: "
      "tokenizer_config.json beside the model, else the GGUF's tokenizer.chat_template)");
  sub->add_option("--served-model-name", o->served_name,
                  "the model id clients use (default: the model file's name without extension)");
  sub->add_option("--drain-timeout", o->drain_timeout,
                  "seconds in-flight requests may finish after SIGTERM (default 30)")
      ->check(CLI::Range(0.0, 86400.0));
  sub->add_option("--max-connections", o->max_connections,
                  "connections served at once, one thread each (default 1024)")
      ->check(CLI::Range(size_t{1}, size_t{65536}));
  return {sub, [o] { return run_serve(*o); }};
}

}  // namespace nucleus::cli
