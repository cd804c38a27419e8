// Internal helper of the refinement's restarts and passes: large D x k matrices whose first
// touch is cheap. Not installed.
//
// A fresh matrix of more than glibc's 32 MB mmap threshold is a new mapping: every 4 KB page
// faults on its first write. On this project's machine (a VM, transparent huge pages in
// "madvise" mode) touching 366 MB, one D x m basis at 112x112x3, costs 1.4-1.5 CPU s in page
// faults and 0.03-0.1 s when the range is advised MADV_HUGEPAGE (2 MB pages: 512x fewer faults;
// BENCHMARKS.md "time10"). The same bits either way; where the system says no (THP "never", an
// old kernel), nothing changes.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include <sys/mman.h>

#include "recalign/core/xt.hpp"

namespace recalign::detail {

// Advises huge pages for the whole 2 MB extents inside [p, p + n doubles), for 4 MB or more
// (smaller ones may come from the heap, shared with other allocations). Before anything touches
// them; errors are ignored (advice only).
inline void advise_huge_pages(double* p, std::size_t n) {
    constexpr std::uintptr_t huge = std::uintptr_t(2) << 20;
    if (n * sizeof(double) < 2 * huge) return;
    const std::uintptr_t b = (reinterpret_cast<std::uintptr_t>(p) + huge - 1) / huge * huge;
    const std::uintptr_t e = reinterpret_cast<std::uintptr_t>(p + n) / huge * huge;
    if (e > b) ::madvise(reinterpret_cast<void*>(b), e - b, MADV_HUGEPAGE);
}

// rows x cols, uninitialised (xt::empty), advised before any page is touched.
inline matrix_t fresh_matrix(std::size_t rows, std::size_t cols) {
    matrix_t m = xt::empty<double>({rows, cols});
    if (m.size()) advise_huge_pages(m.data(), m.size());
    return m;
}

// The same, zeroed (xt::zeros).
inline matrix_t fresh_zeros(std::size_t rows, std::size_t cols) {
    matrix_t m = fresh_matrix(rows, cols);
    std::fill(m.data(), m.data() + m.size(), 0.0);
    return m;
}

}  // namespace recalign::detail
