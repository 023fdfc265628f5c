#pragma once
// Counts heap allocations by replacing the global operator new, so a test can
// check that a hot path makes none. Include from exactly one file of a test
// binary (every tests/*_test.cpp is its own binary).
#include <atomic>
#include <cstdlib>
#include <new>

// The replacements pair malloc with free, which GCC cannot see through inlining.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace nucleus::testutil {
inline std::atomic<long> g_allocations{0};
// Allocations so far in this process.
inline long allocations() {
  return g_allocations.load(std::memory_order_relaxed);
}
}  // namespace nucleus::testutil

void* operator new(size_t n) {
  nucleus::testutil::g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, size_t) noexcept {
  std::free(p);
}
// The nothrow forms too (std::stable_sort's temporary buffer uses them): a
// library nothrow new paired with the free() above is a mismatch that
// AddressSanitizer reports.
void* operator new(size_t n, const std::nothrow_t&) noexcept {
  nucleus::testutil::g_allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(n ? n : 1);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
