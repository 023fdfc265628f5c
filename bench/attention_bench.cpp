// Decode attention of one row at TinyLlama's shape (32 query heads, 4 KV
// heads of 64, 16-position blocks) for each KV cache type and context: one
// iteration is all 4 KV groups of one layer, single-threaded, so 22× the time
// is what attention adds to a decode step of TinyLlama on one core.
//
// The KV blocks of all 22 layers are distinct memory (the per-layer slice of
// a real cache is 22 × larger than one layer's), so each iteration cycles to
// the next layer's copy and reads it from DRAM as decode does.
//
// Run e.g.: ./build/attention_bench --benchmark_min_time=0.5s
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "kernels/attention.h"
#include "kernels/dtype.h"
#include "kernels/kv_layout.h"

namespace nucleus::kernels {
namespace {

constexpr int64_t kHeads = 32, kKvHeads = 4, kHeadDim = 64, kBlock = 16, kLayers = 22;

void run(benchmark::State& state, DType type, int64_t context) {
  const int64_t kv_dim = kKvHeads * kHeadDim;
  const size_t rb = row_bytes(type, kv_dim);
  const int64_t nb = (context + kBlock - 1) / kBlock;
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> row(static_cast<size_t>(kv_dim));
  // One block's keys and values, stored once and copied into every block of
  // every layer.
  const KvLayout layout{type, kKvHeads, kHeadDim, kBlock};
  std::vector<uint8_t> one(layout.block_bytes()), one_v(one.size());
  for (int64_t j = 0; j < kBlock; ++j) {
    for (auto& v : row) v = dist(rng);
    kv_write_key(layout, one.data(), j, row.data());
    kv_write_value(layout, one_v.data(), j, row.data());
  }
  std::vector<uint8_t> k(one.size() * static_cast<size_t>(nb * kLayers));
  std::vector<uint8_t> v(k.size());
  for (size_t off = 0; off < k.size(); off += one.size()) {
    std::copy(one.begin(), one.end(), k.begin() + static_cast<std::ptrdiff_t>(off));
    std::copy(one_v.begin(), one_v.end(), v.begin() + static_cast<std::ptrdiff_t>(off));
  }
  std::vector<const void*> kp, vp;
  for (int64_t b = 0; b < nb * kLayers; ++b) {
    kp.push_back(k.data() + static_cast<size_t>(b) * one.size());
    vp.push_back(v.data() + static_cast<size_t>(b) * one.size());
  }
  std::vector<float> q(static_cast<size_t>(kHeads * kHeadDim)), out(q.size());
  for (auto& x : q) x = dist(rng);
  const AttentionShape shape{kHeads, kKvHeads, kHeadDim, kBlock, type};
  int64_t layer = 0;
  for (auto _ : state) {
    const size_t first = static_cast<size_t>(layer * nb);
    for (int64_t g = 0; g < kKvHeads; ++g)
      attention_kv_group(shape, q.data(), std::span<const void* const>(kp.data() + first, nb),
                         std::span<const void* const>(vp.data() + first, nb), context, g,
                         out.data());
    benchmark::DoNotOptimize(out.data());
    layer = (layer + 1) % kLayers;
  }
  state.SetBytesProcessed(state.iterations() * 2 * context * static_cast<int64_t>(rb));
  state.counters["ctx"] = static_cast<double>(context);
}

const bool registered = [] {
  for (DType t : {DType::F32, DType::F16, DType::Q8_0})
    for (int64_t ctx : {512, 2048, 8192}) {
      const std::string name =
          std::string("attention/") + dtype_name(t) + "/ctx=" + std::to_string(ctx);
      // CPU time (the default): the machine may be shared with other work.
      benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& st) {
        run(st, t, ctx);
      })->Unit(benchmark::kMicrosecond);
    }
  return true;
}();

}  // namespace
}  // namespace nucleus::kernels
