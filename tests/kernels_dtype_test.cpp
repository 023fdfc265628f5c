// Element conversions against ggml's definitions. Every expected value below is
// computed by hand in the comment next to it (IEEE half: 1 sign, 5 exponent
// bits with bias 15, 10 mantissa bits; bfloat16: the upper 16 bits of an f32).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/dtype.h"
#include "util/error.h"

namespace nucleus::kernels {
namespace {

uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

TEST(Fp16, DecodesKnownValues) {
  EXPECT_EQ(fp16_to_fp32(0x3C00), 1.0f);                   // exp 15 -> 2^0, mantissa 0
  EXPECT_EQ(fp16_to_fp32(0xC000), -2.0f);                  // sign, exp 16 -> 2^1
  EXPECT_EQ(fp16_to_fp32(0x3555), 0.333251953125f);        // 2^-2 * (1 + 341/1024) = 1365/4096
  EXPECT_EQ(fp16_to_fp32(0x7BFF), 65504.0f);               // 2^15 * (1 + 1023/1024), largest finite
  EXPECT_EQ(fp16_to_fp32(0x0400), std::ldexp(1.0f, -14));  // smallest normal
  EXPECT_EQ(fp16_to_fp32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal: 1 * 2^-24
  EXPECT_EQ(fp16_to_fp32(0x03FF), std::ldexp(1023.0f, -24));  // largest subnormal
  EXPECT_EQ(fp16_to_fp32(0x0200), std::ldexp(1.0f, -15));     // 512 * 2^-24
  EXPECT_EQ(fp16_to_fp32(0x8001), -std::ldexp(1.0f, -24));
  EXPECT_EQ(bits_of(fp16_to_fp32(0x0000)), 0x00000000u);
  EXPECT_EQ(bits_of(fp16_to_fp32(0x8000)), 0x80000000u);  // -0 keeps its sign
  EXPECT_EQ(fp16_to_fp32(0x7C00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(fp16_to_fp32(0xFC00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(fp16_to_fp32(0x7E00)));
  EXPECT_TRUE(std::isnan(fp16_to_fp32(0x7C01)));  // signalling payload is still nan
}

TEST(Fp16, EncodesWithRoundToNearestEven) {
  EXPECT_EQ(fp32_to_fp16(1.0f), 0x3C00);
  EXPECT_EQ(fp32_to_fp16(-2.0f), 0xC000);
  EXPECT_EQ(fp32_to_fp16(65504.0f), 0x7BFF);
  // The f16 spacing at 1.0 is 2^-10. 1 + 2^-11 lies exactly between 0x3C00 and
  // 0x3C01: ties go to the even mantissa (0x3C00).
  EXPECT_EQ(fp32_to_fp16(1.0f + std::ldexp(1.0f, -11)), 0x3C00);
  // 1 + 3*2^-11 lies between 0x3C01 and 0x3C02: the even one is 0x3C02.
  EXPECT_EQ(fp32_to_fp16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);
  // Just above the tie rounds up.
  EXPECT_EQ(fp32_to_fp16(1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20)), 0x3C01);
  // Just below the tie rounds down.
  EXPECT_EQ(fp32_to_fp16(1.0f + std::ldexp(1.0f, -11) - std::ldexp(1.0f, -20)), 0x3C00);
}

TEST(Fp16, EncodesOverflowInfNan) {
  // 65520 is halfway between 65504 (0x7BFF, odd) and 65536 (would be 0x7C00):
  // the tie goes to the even encoding, which is infinity.
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7C00);
  EXPECT_EQ(fp32_to_fp16(65519.996f), 0x7BFF);  // below the tie
  EXPECT_EQ(fp32_to_fp16(1e6f), 0x7C00);
  EXPECT_EQ(fp32_to_fp16(-1e6f), 0xFC00);
  EXPECT_EQ(fp32_to_fp16(std::numeric_limits<float>::infinity()), 0x7C00);
  EXPECT_EQ(fp32_to_fp16(-std::numeric_limits<float>::infinity()), 0xFC00);
  // ggml makes every nan the quiet nan 0x7E00 (with the input's sign).
  EXPECT_EQ(fp32_to_fp16(std::numeric_limits<float>::quiet_NaN()), 0x7E00);
  EXPECT_EQ(fp32_to_fp16(from_bits(0x7F800001u)), 0x7E00);
  EXPECT_EQ(fp32_to_fp16(from_bits(0xFFC00000u)), 0xFE00);
}

TEST(Fp16, EncodesSubnormals) {
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_EQ(fp32_to_fp16(-std::ldexp(1.0f, -24)), 0x8001);
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -15)), 0x0200);
  // 2^-25 is halfway between 0 and 2^-24: even is 0.
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -25)), 0x0000);
  EXPECT_EQ(fp32_to_fp16(-std::ldexp(1.0f, -25)), 0x8000);
  // Slightly above half the smallest subnormal rounds up to it.
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -25) + std::ldexp(1.0f, -35)), 0x0001);
  // 1.5 * 2^-24 is halfway between 1 and 2 units: even is 2.
  EXPECT_EQ(fp32_to_fp16(std::ldexp(3.0f, -25)), 0x0002);
  // 1.25 * 2^-24 rounds down to 1 unit.
  EXPECT_EQ(fp32_to_fp16(std::ldexp(5.0f, -26)), 0x0001);
  // 1023.5 units is halfway between 0x03FF and 0x0400 (the smallest normal): even is 0x0400.
  EXPECT_EQ(fp32_to_fp16(std::ldexp(2047.0f, -25)), 0x0400);
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -30)), 0x0000);  // far below: zero
}

TEST(Fp16, RoundTripsEveryFiniteHalf) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7C00) == 0x7C00) continue;  // inf/nan checked above
    ASSERT_EQ(fp32_to_fp16(fp16_to_fp32(static_cast<uint16_t>(h))), h) << std::hex << h;
  }
}

TEST(Bf16, DecodesAndEncodes) {
  EXPECT_EQ(bf16_to_fp32(0x3F80), 1.0f);       // f32 bits 0x3F800000
  EXPECT_EQ(bf16_to_fp32(0x4049), 3.140625f);  // 0x40490000 = 2 * (1 + 0x49/128)
  EXPECT_EQ(bf16_to_fp32(0xC000), -2.0f);
  EXPECT_EQ(bf16_to_fp32(0x0001), std::ldexp(1.0f, -133));  // f32 subnormal 2^16 * 2^-149
  EXPECT_EQ(bf16_to_fp32(0x7F80), std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(bf16_to_fp32(0x7FC0)));

  EXPECT_EQ(fp32_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(fp32_to_bf16(from_bits(0x3F808000u)), 0x3F80);  // tie, even is 0x3F80
  EXPECT_EQ(fp32_to_bf16(from_bits(0x3F818000u)), 0x3F82);  // tie, even is 0x3F82
  EXPECT_EQ(fp32_to_bf16(from_bits(0x3F808001u)), 0x3F81);  // above tie
  EXPECT_EQ(fp32_to_bf16(from_bits(0x3F807FFFu)), 0x3F80);  // below tie
  // FLT_MAX = 0x7F7FFFFF: the dropped half is above the tie, carries into inf.
  EXPECT_EQ(fp32_to_bf16(from_bits(0x7F7FFFFFu)), 0x7F80);
  EXPECT_EQ(fp32_to_bf16(std::numeric_limits<float>::infinity()), 0x7F80);
  // nan: upper half with the quiet bit (64) forced on.
  EXPECT_EQ(fp32_to_bf16(from_bits(0x7F800001u)), 0x7FC0);
  EXPECT_EQ(fp32_to_bf16(from_bits(0xFFC00000u)), 0xFFC0);
  EXPECT_EQ(fp32_to_bf16(from_bits(0x00010000u)), 0x0001);  // subnormals are kept
}

TEST(Q8_0, DequantizesKnownBlock) {
  BlockQ8_0 b;
  b.d = 0x3800;  // 2^-1 = 0.5
  for (int j = 0; j < 32; ++j) b.qs[j] = static_cast<int8_t>(j - 16);
  b.qs[0] = -128;
  b.qs[31] = 127;
  float out[32];
  dequantize_row(DType::Q8_0, &b, out, 32);
  EXPECT_EQ(out[0], -64.0f);  // -128 * 0.5
  for (int j = 1; j < 31; ++j) EXPECT_EQ(out[j], (j - 16) * 0.5f) << j;
  EXPECT_EQ(out[31], 63.5f);  // 127 * 0.5
}

TEST(Q4_0, DequantizesKnownBlock) {
  BlockQ4_0 b;
  b.d = 0x4000;  // 2.0
  // byte j: low nibble j (element j), high nibble 15-j (element j+16).
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  float out[32];
  dequantize_row(DType::Q4_0, &b, out, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(out[j], (j - 8) * 2.0f) << j;       // (nibble - 8) * d
    EXPECT_EQ(out[j + 16], (7 - j) * 2.0f) << j;  // (15 - j - 8) * d
  }
}

TEST(Q8_0, QuantizesWithRoundHalfAwayFromZero) {
  // amax = 127 gives d = 1 exactly (f16 0x3C00) and id = 1, so q = roundf(x).
  float x[32] = {};
  x[0] = -127.0f;
  x[1] = 2.5f;     // roundf: 3 (round-half-even would give 2)
  x[2] = -2.5f;    // -3
  x[3] = 0.49f;    // 0
  x[4] = 126.6f;   // 127
  x[5] = 0.5f;     // 1
  x[6] = -1.5f;    // -2
  x[7] = 3.4999f;  // 3
  BlockQ8_0 b;
  quantize_row(DType::Q8_0, x, &b, 32);
  EXPECT_EQ(b.d, 0x3C00);
  const int expect[8] = {-127, 3, -3, 0, 127, 1, -2, 3};
  for (int j = 0; j < 8; ++j) EXPECT_EQ(b.qs[j], expect[j]) << j;
  for (int j = 8; j < 32; ++j) EXPECT_EQ(b.qs[j], 0) << j;

  // amax = 63.5 gives d = 0.5 (0x3800) and id = 2: q = roundf(2x).
  float y[32] = {};
  y[0] = 63.5f;   // 127
  y[1] = 1.25f;   // 2.5 -> 3
  y[2] = -0.75f;  // -1.5 -> -2
  y[3] = 0.2f;    // 0.4 -> 0
  quantize_row(DType::Q8_0, y, &b, 32);
  EXPECT_EQ(b.d, 0x3800);
  EXPECT_EQ(b.qs[0], 127);
  EXPECT_EQ(b.qs[1], 3);
  EXPECT_EQ(b.qs[2], -2);
  EXPECT_EQ(b.qs[3], 0);

  // An all-zero block: d = 0 and id is defined as 0.
  float z[32] = {};
  quantize_row(DType::Q8_0, z, &b, 32);
  EXPECT_EQ(b.d, 0x0000);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(b.qs[j], 0);
}

TEST(Q4_0, QuantizesWithSignedMax) {
  // The value of largest magnitude is -8: d = -8 / -8 = 1 (0x3C00), id = 1,
  // q = min(15, (int8)(x + 8.5)) with truncation toward zero.
  float x[32] = {};
  x[0] = -8.0f;   // 0.5 -> 0
  x[1] = 7.0f;    // 15.5 -> 15
  x[2] = 7.6f;    // 16.1 -> 16 -> min 15
  x[3] = 0.4f;    // 8.9 -> 8
  x[4] = 0.5f;    // 9.0 -> 9
  x[5] = -0.5f;   // 8.0 -> 8
  x[6] = -0.6f;   // 7.9 -> 7
  x[16] = -7.9f;  // 0.6 -> 0
  x[17] = 3.0f;   // 11.5 -> 11
  BlockQ4_0 b;
  quantize_row(DType::Q4_0, x, &b, 32);
  EXPECT_EQ(b.d, 0x3C00);
  // zeros quantize to (int8)(8.5) = 8.
  EXPECT_EQ(b.qs[0], 0x00);            // lo 0, hi 0
  EXPECT_EQ(b.qs[1], 15 | (11 << 4));  // lo 15, hi 11
  EXPECT_EQ(b.qs[2], 15 | (8 << 4));
  EXPECT_EQ(b.qs[3], 8 | (8 << 4));
  EXPECT_EQ(b.qs[4], 9 | (8 << 4));
  EXPECT_EQ(b.qs[5], 8 | (8 << 4));
  EXPECT_EQ(b.qs[6], 7 | (8 << 4));
  for (int j = 7; j < 16; ++j) EXPECT_EQ(b.qs[j], 8 | (8 << 4)) << j;

  // The value of largest magnitude is +16: d = 16 / -8 = -2 (0xC000), id = -0.5.
  float y[32] = {};
  y[0] = 16.0f;   // -8 + 8.5 = 0.5 -> 0
  y[1] = -14.0f;  // 7 + 8.5 = 15.5 -> 15
  y[2] = -15.9f;  // 7.95 + 8.5 = 16.45 -> 16 -> min 15
  y[3] = 1.0f;    // -0.5 + 8.5 = 8
  y[4] = -1.0f;   // 0.5 + 8.5 = 9
  quantize_row(DType::Q4_0, y, &b, 32);
  EXPECT_EQ(b.d, 0xC000);
  EXPECT_EQ(b.qs[0] & 0x0f, 0);
  EXPECT_EQ(b.qs[1] & 0x0f, 15);
  EXPECT_EQ(b.qs[2] & 0x0f, 15);
  EXPECT_EQ(b.qs[3] & 0x0f, 8);
  EXPECT_EQ(b.qs[4] & 0x0f, 9);
}

TEST(Quantize, RoundTripStaysWithinHalfAStepPlusScaleRounding) {
  std::vector<float> x(64);
  for (int i = 0; i < 64; ++i) x[i] = std::sin(0.37f * i) * (i < 32 ? 3.0f : 0.01f);
  std::vector<BlockQ8_0> q8(2);
  std::vector<BlockQ4_0> q4(2);
  std::vector<float> back(64);
  quantize_row(DType::Q8_0, x.data(), q8.data(), 64);
  dequantize_row(DType::Q8_0, q8.data(), back.data(), 64);
  for (int i = 0; i < 64; ++i) {
    // Half a step, plus |q| <= 127 times the f16 rounding of d (relative 2^-11).
    const float d = fp16_to_fp32(q8[i / 32].d);
    EXPECT_LE(std::fabs(back[i] - x[i]), d * (0.5f + 127.0f / 2048.0f) * 1.01f) << i;
  }
  quantize_row(DType::Q4_0, x.data(), q4.data(), 64);
  dequantize_row(DType::Q4_0, q4.data(), back.data(), 64);
  for (int i = 0; i < 64; ++i) {
    // Half a step, except that x = -max maps to 8 + 8.5 and is clamped to 15: one step.
    const float d = std::fabs(fp16_to_fp32(q4[i / 32].d));
    EXPECT_LE(std::fabs(back[i] - x[i]), d * (1.0f + 8.0f / 2048.0f) * 1.01f) << i;
  }
}

TEST(Quantize, RejectsPartialBlocks) {
  std::vector<float> x(40, 1.0f);
  std::vector<uint8_t> out(128);
  EXPECT_THROW(quantize_row(DType::Q8_0, x.data(), out.data(), 40), Error);
  EXPECT_THROW(dequantize_row(DType::Q4_0, out.data(), x.data(), 40), Error);
}

}  // namespace
}  // namespace nucleus::kernels
