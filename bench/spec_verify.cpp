// The ceiling of speculative decoding: the cost of one target forward of k
// rows of one sequence at a given context, relative to one row (decode).
// Rows share every weight read, so for a bandwidth-bound model k rows cost
// little more than one. Interleaved best-of-N.
//   spec_verify MODEL.gguf [threads=2] [context=256] [reps=5]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "formats/model_file.h"
#include "runtime/engine.h"

int main(int argc, char** argv) {
  using namespace nucleus;
  if (argc < 2) {
    std::fprintf(stderr, "usage: spec_verify MODEL [threads] [context] [reps]\n");
    return 2;
  }
  const int threads = argc > 2 ? std::atoi(argv[2]) : 2;
  const int64_t ctx = argc > 3 ? std::atoll(argv[3]) : 256;
  const int reps = argc > 4 ? std::atoi(argv[4]) : 5;
  try {
    auto file = std::make_shared<const ModelFile>(load_model_file(argv[1]));
    auto model = std::make_shared<const Model>(file);
    EngineOptions eo;
    eo.threads = threads;
    eo.max_sequences = 1;
    eo.context_length = ctx + 64;
    Engine e(model, eo);
    const int32_t seq = e.kv().create();
    std::vector<int32_t> prompt(static_cast<size_t>(ctx));
    for (int64_t i = 0; i < ctx; ++i) prompt[static_cast<size_t>(i)] = static_cast<int32_t>((i * 7919) % e.vocab_size());
    std::vector<float> logits;
    e.prefill(seq, prompt, logits);
    const std::vector<int> ks = {1, 2, 4, 8};
    std::vector<double> best(ks.size(), 1e30);
    Batch b;
    for (int r = 0; r < reps + 1; ++r) {
      for (size_t i = 0; i < ks.size(); ++i) {
        b.clear();
        for (int j = 0; j < ks[i]; ++j) b.add(seq, static_cast<int32_t>(j + 1), true);
        const auto t0 = std::chrono::steady_clock::now();
        e.forward(b, logits);
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        e.kv().truncate(seq, ctx);
        if (r > 0) best[i] = std::min(best[i], s);  // the first round warms up
      }
    }
    std::printf("rows  ms/forward  ratio_to_1_row\n");
    for (size_t i = 0; i < ks.size(); ++i)
      std::printf("%4d  %10.2f  %14.2f\n", ks[i], best[i] * 1e3, best[i] / best[0]);
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "error: %s\n", ex.what());
    return 1;
  }
  return 0;
}
