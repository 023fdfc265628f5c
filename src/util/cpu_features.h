#pragma once
// What the CPU we run on can do, read once with CPUID (and XGETBV for the OS
// having enabled the wide registers). Kernels choose their code path from this.
#include <string>

namespace nucleus {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512dq = false;
  bool avx512vnni = false;
  bool avx512bf16 = false;
  // CPUID vendor and display family (base + extended), for choices made by
  // microarchitecture rather than by instruction set.
  bool amd = false;
  unsigned family = 0;

  bool has_avx512_core() const { return avx512f && avx512bw && avx512vl && avx512dq; }
  std::string describe() const;
};

// Detected once; the value never changes during the process.
const CpuFeatures& cpu_features();

}  // namespace nucleus
