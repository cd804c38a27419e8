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

}  // namespace

void gram_of_rows(std::size_t m, std::size_t p, std::size_t d, const double* rows, const double* norms, double* gram) {
    gram_impl(m, p, d, rows, norms, gram);
}
void gram_of_rows(std::size_t m, std::size_t p, std::size_t d, const float* rows, const double* norms, float* gram) {
    gram_impl(m, p, d, rows, norms, gram);
}

}  // namespace recalign::fd_detail
