// Replaces the global operator new/delete (every form, all ending in malloc/free so ASan sees
// matching pairs) with versions that count allocations, so a test can show a data path allocates
// nothing. Include it in exactly ONE translation unit of a test program.
#pragma once

// The replacements pair new with malloc and delete with free on purpose; with inlining, GCC would
// otherwise warn at every call site of the program that includes this.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace l4lb_test {
inline std::atomic<std::uint64_t> allocations{0};
}  // namespace l4lb_test

void* operator new(std::size_t n) {
  l4lb_test::allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return ::operator new(n); }
// The nothrow forms too (std::stable_sort's temporary buffer uses them).
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  l4lb_test::allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(n ? n : 1);
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept { return ::operator new(n, t); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
