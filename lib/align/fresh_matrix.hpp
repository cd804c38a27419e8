// Internal helper of the refinement's restarts and passes: large D x k matrices whose first
// touch is cheap. Not installed.
//
// A fresh matrix of more than glibc's 32 MB mmap threshold is a new mapping: every 4 KB page
// faults on its first write. On this project's machine (a VM, transparent huge pages in
// "madvise" mode) touching 366 MB, one D x m basis at 112x112x3, costs 1.4-1.5 CPU s in page
// faults and 0.03-0.1 s when the range is advised MADV_HUGEPAGE (2 MB pages: 512x fewer faults;
// docs/benchmarks-log.md "time10"). The same bits either way; where the system says no (THP "never", an
// old kernel), nothing changes.
#pragma once

#include <algorithm>
#include <cstddef>

#include "recalign/core/xt.hpp"

namespace recalign::detail {

// rows x cols, uninitialised (xt::empty): matrix_t's allocator has advised a large one
// (recalign/core/xt.hpp), and nothing has touched its pages yet.
inline matrix_t fresh_matrix(std::size_t rows, std::size_t cols) {
    return matrix_t::from_shape({rows, cols});
}

// The same, zeroed (xt::zeros).
inline matrix_t fresh_zeros(std::size_t rows, std::size_t cols) {
    matrix_t m = fresh_matrix(rows, cols);
    std::fill(m.data(), m.data() + m.size(), 0.0);
    return m;
}

}  // namespace recalign::detail
