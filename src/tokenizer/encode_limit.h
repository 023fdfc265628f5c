#pragma once
// Longest text one encode call accepts (bytes); longer input throws Error.
// Encoding is linear in the input (tests/tokenizer_growth_test.cpp), so this
// bounds one call's time and its id/offset arithmetic (32-bit positions).
#include <cstddef>

namespace nucleus {

inline constexpr size_t kMaxEncodeBytes = size_t{256} << 20;

}  // namespace nucleus
