// The libFuzzer entry of one target; CMake compiles this file once per target
// with NUCLEUS_FUZZ_TARGET set to its function name.
#include "fuzz/targets.h"

#define NUCLEUS_STR2(x) #x
#define NUCLEUS_STR(x) NUCLEUS_STR2(x)

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  nucleus::fuzz::warm_up(NUCLEUS_STR(NUCLEUS_FUZZ_TARGET));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nucleus::fuzz::NUCLEUS_FUZZ_TARGET(nucleus::fuzz::Input(data, size));
  return 0;
}
