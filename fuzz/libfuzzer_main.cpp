// The libFuzzer entry of one target; CMake compiles this file once per target
// with NUCLEUS_FUZZ_TARGET set to its function name.
#include "fuzz/targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nucleus::fuzz::NUCLEUS_FUZZ_TARGET(nucleus::fuzz::Input(data, size));
  return 0;
}
