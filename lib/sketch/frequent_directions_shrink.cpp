#include "frequent_directions_shrink.hpp"

#include <cblas.h>

#include <algorithm>
#include <string>
#include <type_traits>
#include <vector>

#include "recalign/core/blas.hpp"

namespace recalign::fd_detail {

namespace {
// One precision's BLAS entry points (the d and s routines differ only in name).
template <class T>
struct fd_kernels;
template <>
struct fd_kernels<double> {
    static constexpr auto gemm = cblas_dgemm;
    static constexpr auto syrk = cblas_dsyrk;
};
template <>
struct fd_kernels<float> {
    static constexpr auto gemm = cblas_sgemm;
    static constexpr auto syrk = cblas_ssyrk;
};

// Columns [c0, c0 + w) of rows [0, m) of the row-major m x d `rows`, as floats, into `out` (m x w).
void block_to_float(std::size_t m, std::size_t d, const double* rows, std::size_t c0, std::size_t w, float* out) {
    for (std::size_t i = 0; i < m; ++i) {
        const double* src = rows + i * d + c0;
        float* dst = out + i * w;
        for (std::size_t c = 0; c < w; ++c) dst[c] = static_cast<float>(src[c]);
    }
}

// The Gram matrix of gram_of_rows in T from rows stored as R: for R = T in one block, read in
// place (lda = d); otherwise `block` columns at a time converted into `scratch` (m x block), the
// products summed block by block and the last block left in `scratch`.
template <class T, class R>
void gram_impl(std::size_t m, std::size_t p, std::size_t d, const R* rows, const double* norms, T* gram,
               std::size_t block, T* scratch) {
    const int mi = blas::to_blas_int(m, "rows");
    blas::to_blas_int(d, "dimension");
    if (m == 0) return;
    p = std::min(p, m);
    const std::size_t q = m - p;
    const int pi = static_cast<int>(p), qi = static_cast<int>(q);
    for (std::size_t i = 0; i < p; ++i) {  // the kept rows' block: their squared norms
        T* row = gram + i * m;
        row[i] = static_cast<T>(norms[i]);
        std::fill(row + i + 1, row + p, T(0));
    }
    if (q == 0) return;
    if constexpr (std::is_same_v<R, T>) block = d;
    for (std::size_t c0 = 0; c0 < d; c0 += block) {
        const std::size_t w = std::min(block, d - c0);
        const T* b = nullptr;
        std::size_t ld = d;
        if constexpr (std::is_same_v<R, T>) {
            b = rows + c0;
        } else {
            block_to_float(m, d, rows, c0, w, scratch);
            b = scratch;
            ld = w;
        }
        const int wi = static_cast<int>(w), li = static_cast<int>(ld);
        const T beta = c0 == 0 ? T(0) : T(1);
        const T* fresh = b + p * ld;
        if (p > 0)  // the kept rows against the new ones: rows 0..p, columns p..m (upper triangle)
            fd_kernels<T>::gemm(CblasRowMajor, CblasNoTrans, CblasTrans, pi, qi, wi, T(1), b, li, fresh, li, beta,
                                gram + p, mi);
        fd_kernels<T>::syrk(CblasRowMajor, CblasUpper, CblasNoTrans, qi, wi, T(1), fresh, li, beta, gram + p * m + p, mi);
    }
}

template <class T>
void rotate_impl(std::size_t kept, std::size_t m, std::size_t d, const T* t, T* rows, std::size_t block, T* scratch) {
    if (kept == 0 || d == 0) return;
    const int ki = blas::to_blas_int(kept, "rows kept"), mi = blas::to_blas_int(m, "rows"),
              di = blas::to_blas_int(d, "dimension");
    for (std::size_t c0 = 0; c0 < d; c0 += block) {
        const std::size_t w = std::min(block, d - c0);
        const int wi = static_cast<int>(w);
        fd_kernels<T>::gemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ki, wi, mi, T(1), t, mi, rows + c0, di, T(0),
                            scratch, wi);
        for (std::size_t j = 0; j < kept; ++j) std::copy(scratch + j * w, scratch + (j + 1) * w, rows + j * d + c0);
    }
}

}  // namespace

void gram_of_rows(std::size_t m, std::size_t p, std::size_t d, const double* rows, const double* norms, float* gram,
                  std::size_t block, float* scratch) {
    gram_impl(m, p, d, rows, norms, gram, block, scratch);
}

void rotate_rows_in_place(std::size_t kept, std::size_t m, std::size_t d, const float* t, double* rows,
                          std::size_t block, float* in, float* out, bool last_converted) {
    if (kept == 0 || d == 0) return;
    const int ki = blas::to_blas_int(kept, "rows kept"), mi = blas::to_blas_int(m, "rows");
    blas::to_blas_int(d, "dimension");
    const std::size_t last = block * ((d - 1) / block);
    for (std::size_t c0 = last + block; c0 >= block;) {  // the blocks last to first
        c0 -= block;
        const std::size_t w = std::min(block, d - c0);
        const int wi = static_cast<int>(w);
        if (!(last_converted && c0 == last)) block_to_float(m, d, rows, c0, w, in);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ki, wi, mi, 1.0f, t, mi, in, wi, 0.0f, out, wi);
        for (std::size_t j = 0; j < kept; ++j) {
            double* dst = rows + j * d + c0;
            for (std::size_t c = 0; c < w; ++c) dst[c] = static_cast<double>(out[j * w + c]);
        }
    }
}

void rotate_rows_in_place(std::size_t kept, std::size_t m, std::size_t d, const double* t, double* rows,
                          std::size_t block, double* scratch) {
    rotate_impl(kept, m, d, t, rows, block, scratch);
}
void rotate_rows_in_place(std::size_t kept, std::size_t m, std::size_t d, const float* t, float* rows,
                          std::size_t block, float* scratch) {
    rotate_impl(kept, m, d, t, rows, block, scratch);
}

void gram_of_rows(std::size_t m, std::size_t p, std::size_t d, const double* rows, const double* norms, double* gram) {
    gram_impl(m, p, d, rows, norms, gram, d, static_cast<double*>(nullptr));
}
void gram_of_rows(std::size_t m, std::size_t p, std::size_t d, const float* rows, const double* norms, float* gram) {
    gram_impl(m, p, d, rows, norms, gram, d, static_cast<float*>(nullptr));
}

}  // namespace recalign::fd_detail
