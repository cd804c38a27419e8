// Internal to the verification pass (not installed): the element-wise work
// of an update between its BLAS calls (checking a batch and summing its columns, converting a
// block of its columns) split by columns between the two threads of a detail::second_thread
// (sketch/second_thread.hpp), as the Nyström update does. Each element and each column sum is
// computed exactly as on one thread, so the bits do not depend on the thread count.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "../sketch/second_thread.hpp"
#include "recalign/core/batch.hpp"

namespace recalign::detail {

// Half `part` (0 or 1) of [0, n), the first a multiple of 16 columns (whole cache lines of a row).
inline std::pair<std::size_t, std::size_t> column_half(std::size_t n, int part) {
    const std::size_t split = std::min(n, (n / 2 + 15) / 16 * 16);
    return part == 0 ? std::pair<std::size_t, std::size_t>{0, split} : std::pair<std::size_t, std::size_t>{split, n};
}

// check_shifted_sums(x, d, shift, sums, scratch, chunk_rows, first_row), the sums on two threads:
// the shape first on this one, then the column sums by halves; a value that is not finite is
// named by check_shifted_sums itself (sums as it leaves them: the caller's are a scratch).
inline void check_shifted_sums(second_thread& two, const batch_view& x, std::size_t d, const double* shift, double* sums,
                               std::vector<double>& scratch, std::size_t chunk_rows, std::uint64_t first_row) {
    check_shifted_sums(batch_rows(x, 0, 0), d, shift, sums, scratch, chunk_rows, first_row);  // shape, pointer, scale
    if (x.rows == 0) return;
    bool finite[2] = {true, true};
    auto half = [&](int part) {
        const auto [lo, hi] = column_half(d, part);
        finite[part] = shifted_sums_columns(x, shift, chunk_rows, lo, hi, sums);
    };
    two.run(half);
    if (finite[0] && finite[1]) return;
    std::fill(sums, sums + d, 0.0);
    check_shifted_sums(x, d, shift, sums, scratch, chunk_rows, first_row);  // throws, naming the value
}

// gather_shifted(x, shift, cols, first_col, count, out), half of the columns on each thread.
inline void gather_shifted(second_thread& two, const batch_view& x, const double* shift, const std::size_t* cols,
                           std::size_t first_col, std::size_t count, double* out) {
    auto half = [&](int part) {
        const auto [lo, hi] = column_half(count, part);
        gather_shifted(x, shift, cols, first_col, count, lo, hi, out);
    };
    two.run(half);
}

}  // namespace recalign::detail
