// huge_page_resource: a std::pmr::memory_resource that hands out 2 MiB-aligned blocks and asks
// Linux to back them with transparent huge pages (madvise(MADV_HUGEPAGE); Debian runs THP in
// "madvise" mode, so without the call a table gets 4 KiB pages). Give it to
// conn_table_config::memory / director_config::memory: a random lookup then costs no page walk
// once the table outgrows what the TLB covers with 4 KiB pages.
//
// Control plane only (construction of tables). On systems without <sys/mman.h> it still
// allocates aligned memory, without the advice. Measured in bench/director_bench.cpp and
// bench/conn_bench.cpp (*_hugepages rows).
#pragma once

#include <cstddef>
#include <cstdlib>
#include <memory_resource>
#include <new>

#if __has_include(<sys/mman.h>)
#include <sys/mman.h>
#define L4LB_HAS_MADVISE 1
#endif

namespace l4lb::conn {

class huge_page_resource final : public std::pmr::memory_resource {
 public:
  static constexpr std::size_t page = std::size_t{2} << 20;

  /// Whether the advice is given on this platform.
  [[nodiscard]] static constexpr bool advises() noexcept {
#ifdef L4LB_HAS_MADVISE
    return true;
#else
    return false;
#endif
  }

 private:
  void* do_allocate(std::size_t bytes, std::size_t align) override {
    const std::size_t size = (bytes + page - 1) / page * page;
    void* p = std::aligned_alloc(align > page ? align : page, size == 0 ? page : size);
    if (!p) throw std::bad_alloc();
#ifdef L4LB_HAS_MADVISE
    (void)madvise(p, size, MADV_HUGEPAGE);  // advice only: refusal leaves 4 KiB pages
#endif
    return p;
  }
  void do_deallocate(void* p, std::size_t, std::size_t) override { std::free(p); }
  bool do_is_equal(const std::pmr::memory_resource& o) const noexcept override { return this == &o; }
};

}  // namespace l4lb::conn
