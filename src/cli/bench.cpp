// `nucleus bench`: prompt-processing (ppN) and text-generation (tgN) speed in
// the manner of llama-bench, with the FLOP/s and bytes/s the engine counted and
// their ratio to this machine's measured peaks (src/cost/probe.h).
//
// ppN: one batched prefill of N tokens into a fresh sequence.
// tgN: N decode steps of one token each, starting from an empty sequence (as
// llama-bench's tg does), so attention reads a context of 1..N positions.
// With -d D (llama-bench's depth) both start after D prompt positions
// prefilled untimed ("tg128 @ d2048"): attention then reads D+1..D+N.
// Tokens are random ids from a fixed seed: a BOS-only prompt would make every
// row identical, which is not what a real prompt costs.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/common.h"
#include "cost/probe.h"
#include "runtime/engine.h"
#include "util/error.h"

namespace nucleus::cli {
namespace {

struct BenchOptions {
  ModelOptions model;
  int64_t prompt = 512;
  int64_t gen = 128;
  int64_t depth = 0;  // positions already in the KV cache when ppN / tgN start
  int reps = 5;
  uint32_t seed = 1234;
  bool json = false;
  bool probe = false;
};

struct TestResult {
  std::string name;  // "pp512", "tg128"
  int64_t n_prompt = 0, n_gen = 0;
  std::vector<double> seconds;      // one per timed repetition
  std::vector<double> cpu_seconds;  // CPU time of the process (all threads) per repetition
  OpCounters counters;              // of one repetition (every repetition does the same work)

  int64_t tokens() const { return n_prompt + n_gen; }
  double mean_seconds() const {
    double s = 0;
    for (double t : seconds) s += t;
    return s / static_cast<double>(seconds.size());
  }
  // Mean and sample standard deviation of tokens/s over the repetitions
  // (per-repetition rates, as llama-bench averages them).
  std::pair<double, double> rate_stats() const {
    std::vector<double> ts;
    for (double t : seconds) ts.push_back(static_cast<double>(tokens()) / t);
    double mean = 0;
    for (double v : ts) mean += v;
    mean /= static_cast<double>(ts.size());
    double var = 0;
    for (double v : ts) var += (v - mean) * (v - mean);
    const double sd = ts.size() > 1 ? std::sqrt(var / static_cast<double>(ts.size() - 1)) : 0.0;
    return {mean, sd};
  }
  double bytes() const {
    return static_cast<double>(counters.weight_bytes + counters.kv_read_bytes +
                               counters.kv_write_bytes);
  }
};

std::string upper(std::string s) {
  for (char& ch : s) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return s;
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// llama-bench style: "1.10 B", "260.22 K"; sizes in GiB/MiB/KiB.
std::string count_label(double n) {
  if (n >= 1e9) return fixed(n / 1e9, 2) + " B";
  if (n >= 1e6) return fixed(n / 1e6, 2) + " M";
  return fixed(n / 1e3, 2) + " K";
}
std::string size_label(double bytes) {
  if (bytes >= 1024.0 * 1024 * 1024) return fixed(bytes / (1024.0 * 1024 * 1024), 2) + " GiB";
  if (bytes >= 1024.0 * 1024) return fixed(bytes / (1024.0 * 1024), 2) + " MiB";
  return fixed(bytes / 1024.0, 2) + " KiB";
}
// The short size class llama.cpp puts in a model description ("1B", "7B", "260K").
std::string size_class(double n) {
  if (n >= 1e9) return std::to_string(static_cast<int64_t>(std::lround(n / 1e9))) + "B";
  if (n >= 1e6) return std::to_string(static_cast<int64_t>(std::lround(n / 1e6))) + "M";
  return std::to_string(static_cast<int64_t>(std::lround(n / 1e3))) + "K";
}

std::vector<int32_t> random_tokens(int64_t n, int64_t vocab, std::mt19937& rng) {
  std::uniform_int_distribution<int32_t> dist(0, static_cast<int32_t>(vocab - 1));
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int32_t& id : t) id = dist(rng);
  return t;
}

using Clock = std::chrono::steady_clock;

// CPU time of the whole process: on a machine shared with other work, wall
// time includes the time the scheduler gave to others; CPU time does not
// (spinning pool workers are counted, so compare it at one thread).
double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string depth_suffix(int64_t depth) {
  return depth > 0 ? " @ d" + std::to_string(depth) : std::string();
}

// A sequence holding the depth's positions: a fork of `base` (prefilled
// once, untimed) when there is a depth, so repetitions share its blocks.
int32_t start_sequence(Engine& engine, int32_t base) {
  return base >= 0 ? engine.kv().fork(base) : engine.kv().create();
}

TestResult run_pp(Engine& engine, int64_t n, int32_t base, int64_t depth, int reps,
                  std::mt19937& rng) {
  TestResult r;
  r.name = "pp" + std::to_string(n) + depth_suffix(depth);
  r.n_prompt = n;
  const std::vector<int32_t> tokens = random_tokens(n, engine.vocab_size(), rng);
  std::vector<float> logits;
  for (int rep = -1; rep < reps; ++rep) {  // rep -1 is the warm-up
    const int32_t seq = start_sequence(engine, base);
    engine.reset_counters();
    const double c0 = process_cpu_seconds();
    const Clock::time_point t0 = Clock::now();
    engine.prefill(seq, tokens, logits);
    const double dt = seconds_since(t0);
    const double cpu = process_cpu_seconds() - c0;
    engine.kv().release(seq);
    if (rep < 0) continue;
    r.seconds.push_back(dt);
    r.cpu_seconds.push_back(cpu);
    r.counters = engine.counters();
  }
  return r;
}

TestResult run_tg(Engine& engine, int64_t n, int32_t base, int64_t depth, int reps,
                  std::mt19937& rng) {
  TestResult r;
  r.name = "tg" + std::to_string(n) + depth_suffix(depth);
  r.n_gen = n;
  const std::vector<int32_t> tokens = random_tokens(n, engine.vocab_size(), rng);
  std::vector<float> logits;
  Batch batch;
  for (int rep = -1; rep < reps; ++rep) {
    const int32_t seq = start_sequence(engine, base);
    engine.reset_counters();
    const double c0 = process_cpu_seconds();
    const Clock::time_point t0 = Clock::now();
    for (int64_t i = 0; i < n; ++i) {
      batch.clear();
      batch.add(seq, tokens[static_cast<size_t>(i)], true);
      engine.forward(batch, logits);
    }
    const double dt = seconds_since(t0);
    const double cpu = process_cpu_seconds() - c0;
    engine.kv().release(seq);
    if (rep < 0) continue;
    r.seconds.push_back(dt);
    r.cpu_seconds.push_back(cpu);
    r.counters = engine.counters();
  }
  return r;
}

void print_peaks(const cost::MachinePeaks& p, DType dtype, int threads, FILE* out) {
  std::fprintf(out,
               "peaks: %s; %s, %d thread(s): read %.1f GB/s, %s matmul peak %.1f GFLOP/s "
               "(all-thread peaks are for %d threads)\n",
               p.source.c_str(), p.isa.c_str(), threads, cost::peak_bandwidth(p, threads) / 1e9,
               dtype_name(dtype), cost::peak_flops(p, dtype, threads) / 1e9, p.threads);
}

int run_bench_command(const BenchOptions& o) {
  // Checked here rather than with CLI::Range so that bad values give one line.
  check(o.prompt >= 1,
        "bench: -p (prompt tokens) must be at least 1, got " + std::to_string(o.prompt));
  check(o.gen >= 1,
        "bench: -n (generated tokens) must be at least 1, got " + std::to_string(o.gen));
  check(o.depth >= 0, "bench: -d (depth) must be at least 0, got " + std::to_string(o.depth));
  check(o.reps >= 1 && o.reps <= 1000,
        "bench: -r (repetitions) must be in [1, 1000], got " + std::to_string(o.reps));
  const int threads = o.model.thread_count();
  cost::MachinePeaks peaks;
  if (o.probe) {
    cost::ProbeOptions po;
    po.threads = threads;
    peaks = cost::measure_peaks(po);
    const std::string cache = cost::peaks_cache_path();
    cost::save_peaks(peaks, cache);
    std::fprintf(stderr, "nucleus bench: measured peaks saved to %s\n", cache.c_str());
    if (o.model.model.empty()) {
      // Probing alone: show what was measured and stop.
      std::printf("read bandwidth: %.2f GB/s (1 thread), %.2f GB/s (%d threads)\n",
                  peaks.read_bw.one / 1e9, peaks.read_bw.all / 1e9, peaks.threads);
      std::printf("f32 FMA:        %.1f GFLOP/s, %.1f GFLOP/s\n", peaks.fma_f32.one / 1e9,
                  peaks.fma_f32.all / 1e9);
      std::printf("bf16 dot:       %.1f GFLOP/s, %.1f GFLOP/s\n", peaks.dot_bf16.one / 1e9,
                  peaks.dot_bf16.all / 1e9);
      std::printf("int8 dot:       %.1f GOP/s, %.1f GOP/s\n", peaks.dot_int8.one / 1e9,
                  peaks.dot_int8.all / 1e9);
      std::printf("isa: %s; %s\n", peaks.isa.c_str(), peaks.source.c_str());
      return 0;
    }
  } else {
    peaks = cost::cached_or_default_peaks();
  }

  const std::string path = o.model.model_path();
  LoadedModel lm = load_model(o.model);
  const ModelConfig& cfg = lm.model->config();
  check(o.depth + o.prompt <= cfg.context_length,
        "bench: -d + -p " + std::to_string(o.depth + o.prompt) + " exceeds the context length " +
            std::to_string(cfg.context_length) + " of " + path);
  check(o.depth + o.gen <= cfg.context_length,
        "bench: -d + -n " + std::to_string(o.depth + o.gen) + " exceeds the context length " +
            std::to_string(cfg.context_length) + " of " + path);
  check(cfg.vocab_size > 0, "bench: " + path + " has no vocabulary size");

  double n_params = 0, n_bytes = 0;
  for (const auto& [name, view] : lm.file->tensors) {
    n_params += static_cast<double>(view.numel());
    n_bytes += static_cast<double>(view.nbytes);
  }
  const DType dtype = layer_weight_type(*lm.file);
  std::string type = upper(dtype_name(dtype));
  std::string desc = cfg.arch;
  desc += " ";
  desc += size_class(n_params);
  desc += " ";
  desc += type;

  EngineOptions eo;
  eo.threads = threads;
  eo.kv_type = parse_kv_type(o.model.kv_type);
  eo.bf16_dot = kernels::parse_bf16_dot(o.model.bf16_dot.c_str());
  if (dtype == DType::BF16 && kernels::bf16dot_enabled(eo.bf16_dot))
    peaks = cost::with_bf16_dot_peak(peaks);
  // One sequence at a time (each repetition releases its own), plus the
  // prefilled depth it forks from.
  eo.max_sequences = o.depth > 0 ? 2 : 1;
  eo.context_length = o.depth + std::max(o.prompt, o.gen);
  Engine engine(lm.model, eo);

  std::mt19937 rng(o.seed);
  std::vector<TestResult> results;
  int32_t base = -1;
  if (o.depth > 0) {
    std::vector<float> logits;
    base = engine.kv().create();
    engine.prefill(base, random_tokens(o.depth, engine.vocab_size(), rng), logits);
  }
  results.push_back(run_pp(engine, o.prompt, base, o.depth, o.reps, rng));
  results.push_back(run_tg(engine, o.gen, base, o.depth, o.reps, rng));

  if (o.json) {
    nlohmann::json arr = nlohmann::json::array();
    for (const TestResult& r : results) {
      const auto [ts, sd] = r.rate_stats();
      const double sec = r.mean_seconds();
      std::vector<double> samples_ts;
      for (double s : r.seconds) samples_ts.push_back(static_cast<double>(r.tokens()) / s);
      const double flops_s = static_cast<double>(r.counters.total_flops()) / sec;
      const double bytes_s = r.bytes() / sec;
      arr.push_back({
          {"model_filename", path},
          {"model_type", desc},
          {"model_size", static_cast<int64_t>(n_bytes)},
          {"model_n_params", static_cast<int64_t>(n_params)},
          {"type", type},
          {"n_threads", threads},
          {"n_prompt", r.n_prompt},
          {"n_gen", r.n_gen},
          {"n_depth", o.depth},
          {"kv_type", o.model.kv_type},
          {"test", r.name},
          {"repetitions", o.reps},
          {"avg_ns", static_cast<int64_t>(std::llround(sec * 1e9))},
          {"avg_ts", ts},
          {"stddev_ts", sd},
          {"samples_ts", samples_ts},
          {"samples_cpu_s", r.cpu_seconds},
          {"flops", r.counters.total_flops()},
          {"matmul_flops", r.counters.matmul_flops},
          {"attention_flops", r.counters.attention_flops},
          {"bytes", static_cast<int64_t>(r.bytes())},
          {"flops_per_s", flops_s},
          {"bytes_per_s", bytes_s},
          {"mfu", cost::mfu(flops_s, peaks, dtype, threads)},
          {"mbu", cost::mbu(bytes_s, peaks, threads)},
          {"peak_flops_per_s", cost::peak_flops(peaks, dtype, threads)},
          {"peak_bytes_per_s", cost::peak_bandwidth(peaks, threads)},
          {"peaks_source", peaks.source},
      });
    }
    std::printf("%s\n", arr.dump(2).c_str());
    return 0;
  }

  // Markdown table like llama-bench's, with the engine's achieved rates added.
  std::string header =
      "| model | size | params | type | threads | test | t/s | GFLOP/s | GB/s | MFU | MBU |";
  std::printf("%s\n", header.c_str());
  std::printf("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  for (const TestResult& r : results) {
    const auto [ts, sd] = r.rate_stats();
    const double sec = r.mean_seconds();
    const double flops_s = static_cast<double>(r.counters.total_flops()) / sec;
    const double bytes_s = r.bytes() / sec;
    std::printf("| %s | %s | %s | %s | %d | %s | %.2f ± %.2f | %.1f | %.2f | %.1f%% | %.1f%% |\n",
                desc.c_str(), size_label(n_bytes).c_str(), count_label(n_params).c_str(),
                type.c_str(), threads, r.name.c_str(), ts, sd, flops_s / 1e9, bytes_s / 1e9,
                100.0 * cost::mfu(flops_s, peaks, dtype, threads),
                100.0 * cost::mbu(bytes_s, peaks, threads));
  }
  std::printf("\n");
  std::printf("kv cache: %s\n", o.model.kv_type.c_str());
  if (dtype == DType::BF16) {
    const kernels::Bf16Dot d = kernels::parse_bf16_dot(o.model.bf16_dot.c_str());
    std::printf("bf16 dot: %s -> %s (vdpbf16ps / fma probe ratio %.2f)\n",
                kernels::bf16_dot_name(d), kernels::bf16dot_enabled(d) ? "on" : "off",
                kernels::bf16dot_probe_ratio());
  }
  print_peaks(peaks, dtype, threads, stdout);
  return 0;
}

}  // namespace

Command add_bench(CLI::App& app) {
  auto opts = std::make_shared<BenchOptions>();
  CLI::App* sub = app.add_subcommand(
      "bench",
      "Prompt (ppN) and generation (tgN) speed like llama-bench, with achieved FLOP/s, bytes/s "
      "and their share of this machine's peaks");
  opts->model.add_to(sub);
  opts->model.add_kv_type_to(sub);
  sub->add_option("-p,--n-prompt", opts->prompt, "prompt tokens processed in one batch (ppN)")
      ->default_val(512);
  sub->add_option("-n,--n-gen", opts->gen, "tokens generated one at a time (tgN)")
      ->default_val(128);
  sub->add_option("-d,--n-depth", opts->depth,
                  "positions prefilled (untimed) before each test, as llama-bench's -d")
      ->default_val(0);
  sub->add_option("-r,--repetitions", opts->reps,
                  "timed repetitions of each test (after a warm-up)")
      ->default_val(5);
  sub->add_option("--seed", opts->seed, "seed of the random token ids")->default_val(1234);
  sub->add_flag("--json", opts->json, "print a JSON array of results instead of the table");
  sub->add_flag(
      "--probe", opts->probe,
      "measure this machine's bandwidth and peaks now and cache them (alone: only probe)");
  return Command{sub, [opts] { return run_bench_command(*opts); }};
}

}  // namespace nucleus::cli
