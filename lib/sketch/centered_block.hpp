// Internal to the Nyström update (not installed): converting and centering one block of a
// batch's columns into cache-sized scratch, shared by the dense sweeps (nystrom_sketch.cpp) and
// the sparse sign test matrix's first sweep (nystrom_sparse.cpp).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "recalign/core/batch.hpp"

namespace recalign::detail {

// Columns per block of the sweeps: a block of the batch (rows x 1024: 8 MB of doubles at
// 1000 rows) and of T (1024 x w) stay in the last-level cache, and 1024 is deep enough for
// OpenBLAS to split each GEMM over both threads (measured, bench_sketch ceiling at D = 49,152:
// 256 gave 0.89 / 0.77 of the bare GEMMs on one thread, 1024 gives 0.95 / 0.90).
constexpr std::size_t column_block = 1024;

// Rows [first, first + count) of a batch, as a batch.
inline batch_view rows_of(const batch_view& x, std::size_t first, std::size_t count) {
    batch_view v = x;
    if (x.data != nullptr) v.data = static_cast<const char*>(x.data) + first * x.cols * dtype_size(x.type);
    v.rows = count;
    return v;
}

// Columns [lo, hi) of out (rows x cb) = x[:, c0 : c0 + cb] * scale - shift[c0 : c0 + cb]; when
// sums / ss are given, adds Σ_rows out and Σ_rows out² to sums[lo : hi] and ss[lo : hi] (one sum
// per column: the loop vectorizes, the order is fixed, and a column's values do not depend on
// how the block's columns are shared between threads).
template <class In, class T>
[[gnu::always_inline]] inline void centered_columns(const In* in, std::size_t rows, std::size_t d, double scale,
                                                    const double* shift, std::size_t c0, std::size_t cb, std::size_t lo,
                                                    std::size_t hi, T* out, double* sums, double* ss) {
    const double* mu = shift + c0;
    constexpr std::size_t ahead = 4, line = 64 / sizeof(In);
    for (std::size_t r = 0; r < rows; ++r) {
        const In* row = in + r * d + c0;
        T* o = out + r * cb;
        // Each row's part of the block lies on its own page: ask for the row a few ahead, so
        // that the memory latency is not paid row after row.
        if (r + ahead < rows)
            for (std::size_t c = lo; c < hi; c += line) __builtin_prefetch(row + ahead * d + c);
        if (ss) {
            for (std::size_t c = lo; c < hi; ++c) {
                const double v = static_cast<double>(row[c]) * scale - mu[c];
                o[c] = static_cast<T>(v);
                sums[c] += v;
                ss[c] += v * v;
            }
        } else {
            for (std::size_t c = lo; c < hi; ++c) o[c] = static_cast<T>(static_cast<double>(row[c]) * scale - mu[c]);
        }
    }
}

// The same loop compiled for AVX2 (4 doubles an instruction instead of SSE2's 2; without FMA,
// which would round v * v + ss once instead of twice): the same operations in the same order
// per element, so the same bits, chosen at run time where the CPU has it. perf, float32 update
// at D = 150,528, batch 500 (loaded machine): the conversion took 15 % of the CPU time with
// SSE2, 14 % with AVX2, 12 % with AVX2 and the rows prefetched.
#if defined(__GNUC__) && defined(__x86_64__)
#define RECALIGN_AVX2_CONVERSION 1
template <class In, class T>
[[gnu::target("avx2")]] void centered_columns_avx2(const In* in, std::size_t rows, std::size_t d, double scale,
                                                   const double* shift, std::size_t c0, std::size_t cb, std::size_t lo,
                                                   std::size_t hi, T* out, double* sums, double* ss) {
    centered_columns(in, rows, d, scale, shift, c0, cb, lo, hi, out, sums, ss);
}
#endif

template <class In, class T>
void centered_block(const In* in, std::size_t rows, std::size_t d, double scale, const double* shift,
                    std::size_t c0, std::size_t cb, std::size_t lo, std::size_t hi, T* out, double* sums, double* ss) {
#ifdef RECALIGN_AVX2_CONVERSION
    static const bool avx2 = __builtin_cpu_supports("avx2");
    if (avx2) return centered_columns_avx2(in, rows, d, scale, shift, c0, cb, lo, hi, out, sums, ss);
#endif
    centered_columns(in, rows, d, scale, shift, c0, cb, lo, hi, out, sums, ss);
}

template <class T>
void centered_block(const batch_view& x, const double* shift, std::size_t c0, std::size_t cb, std::size_t lo,
                    std::size_t hi, T* out, double* sums, double* ss) {
    switch (x.type) {
        case dtype::u8: return centered_block(static_cast<const std::uint8_t*>(x.data), x.rows, x.cols, x.scale, shift, c0, cb, lo, hi, out, sums, ss);
        case dtype::f32: return centered_block(static_cast<const float*>(x.data), x.rows, x.cols, x.scale, shift, c0, cb, lo, hi, out, sums, ss);
        default: return centered_block(static_cast<const double*>(x.data), x.rows, x.cols, x.scale, shift, c0, cb, lo, hi, out, sums, ss);
    }
}

// Half `part` (0 or 1) of [0, n), the first half a multiple of 16 (whole cache lines of a row).
inline std::pair<std::size_t, std::size_t> half_of(std::size_t n, int part) {
    const std::size_t split = std::min(n, (n / 2 + 15) / 16 * 16);
    return part == 0 ? std::pair<std::size_t, std::size_t>{0, split} : std::pair<std::size_t, std::size_t>{split, n};
}
}  // namespace recalign::detail
