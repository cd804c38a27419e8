#include "frequent_directions_shrink.hpp"

#include <cblas.h>

#include <algorithm>
#include <string>
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

template <class T>
void gram_impl(std::size_t m, std::size_t p, std::size_t d, const T* rows, const double* norms, T* gram) {
    const int mi = blas::to_blas_int(m, "rows"), di = blas::to_blas_int(d, "dimension");
    if (m == 0) return;
    p = std::min(p, m);
    const std::size_t q = m - p;
    const int pi = static_cast<int>(p), qi = static_cast<int>(q);
    for (std::size_t i = 0; i < p; ++i) {
        T* row = gram + i * m;
        row[i] = static_cast<T>(norms[i]);
        std::fill(row + i + 1, row + p, T(0));
    }
    if (q == 0) return;
    const T* fresh = rows + p * d;
    if (p > 0)  // the kept rows against the new ones: rows 0..p, columns p..m (upper triangle)
        fd_kernels<T>::gemm(CblasRowMajor, CblasNoTrans, CblasTrans, pi, qi, di, T(1), rows, di, fresh, di, T(0),
                         gram + p, mi);
    fd_kernels<T>::syrk(CblasRowMajor, CblasUpper, CblasNoTrans, qi, di, T(1), fresh, di, T(0), gram + p * m + p, mi);
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

void rotate_rows_in_place(std::size_t kept, std::size_t m, std::size_t d, const double* t, double* rows,
                          std::size_t block, double* scratch) {
    rotate_impl(kept, m, d, t, rows, block, scratch);
}
void rotate_rows_in_place(std::size_t kept, std::size_t m, std::size_t d, const float* t, float* rows,
                          std::size_t block, float* scratch) {
    rotate_impl(kept, m, d, t, rows, block, scratch);
}

void gram_of_rows(std::size_t m, std::size_t p, std::size_t d, const double* rows, const double* norms, double* gram) {
    gram_impl(m, p, d, rows, norms, gram);
}
void gram_of_rows(std::size_t m, std::size_t p, std::size_t d, const float* rows, const double* norms, float* gram) {
    gram_impl(m, p, d, rows, norms, gram);
}

}  // namespace recalign::fd_detail
