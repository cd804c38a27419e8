#include "recalign/core/blas.hpp"

#include <cblas.h>
#include <lapacke.h>

#include <algorithm>
#include <climits>
#include <utility>
#include <stdexcept>
#include <string>
#include <vector>

#include "recalign/core/errors.hpp"

namespace recalign::blas {

int to_blas_int(std::size_t v, const char* what) {
    if (v > static_cast<std::size_t>(INT_MAX)) {
        throw std::invalid_argument(std::string(what) + " = " + std::to_string(v) +
                                    " exceeds the BLAS index limit " + std::to_string(INT_MAX));
    }
    return static_cast<int>(v);
}

namespace {
void check_info(int info, const char* routine) {
    if (info < 0) {
        throw numerical_error(std::string(routine) + " rejected argument " + std::to_string(-info));
    }
}

// OpenBLAS packs a product's column-major N dimension (our row-major output's rows; the
// right-hand side's rows for trsm) into a per-thread buffer of 128 MiB, GEMM_R columns sized to
// fill it, and keeps every page it ever touched: one product with D = 150,528 output rows made
// both threads' buffers resident (262,144 kB) for the rest of the process (docs/benchmarks-log.md, mem8
// and mem9). On at most row_block rows per call each thread touches ≤ min(k, GEMM_Q = 384) x
// row_block / 2 doubles of it (12.6 MB). Rows of the output are independent, each computed by
// the same kernel over the same k: with one BLAS thread the blocks (multiples of 64 rows) give
// one call's bits. With more, OpenBLAS splits the one call's rows itself: its Haswell kernels
// gave the same bits at D = 12,288, 37,632 and 150,528, its SkylakeX kernels (AVX-512 machines)
// do not; they differ at rounding (1e-15 relative at 8,193 rows; tests/core/test_blas.cpp).
constexpr std::size_t row_block = 8192;

// f(first row, rows) over [0, m) in blocks of at most row_block rows, of near-equal sizes (a
// multiple of 64: no thin remainder block).
template <class F>
void by_row_blocks(std::size_t m, F f) {
    if (m <= row_block) {
        f(std::size_t{0}, m);
        return;
    }
    const std::size_t blocks = (m + row_block - 1) / row_block;
    const std::size_t step = ((m + blocks - 1) / blocks + 63) / 64 * 64;
    for (std::size_t i0 = 0; i0 < m; i0 += step) f(i0, std::min(step, m - i0));
}
}  // namespace

void syrk_tn(std::size_t n, std::size_t k, double alpha, const double* a, double beta, double* c) {
    const int ni = to_blas_int(n, "dimension"), ki = to_blas_int(k, "rows");
    if (ni == 0) return;
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, ni, ki, alpha, a, ni, beta, c, ni);
}

void syrk_tn(std::size_t n, std::size_t k, float alpha, const float* a, float beta, float* c) {
    const int ni = to_blas_int(n, "dimension"), ki = to_blas_int(k, "rows");
    if (ni == 0) return;
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, ni, ki, alpha, a, ni, beta, c, ni);
}

void syrk_nt(std::size_t m, std::size_t k, double alpha, const double* a, double beta, double* c) {
    const int mi = to_blas_int(m, "rows"), ki = to_blas_int(k, "columns");
    if (mi == 0) return;
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, mi, ki, alpha, a, ki > 0 ? ki : 1, beta, c, mi);
}

void syrk_nt(std::size_t m, std::size_t k, float alpha, const float* a, float beta, float* c) {
    const int mi = to_blas_int(m, "rows"), ki = to_blas_int(k, "columns");
    if (mi == 0) return;
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, mi, ki, alpha, a, ki > 0 ? ki : 1, beta, c, mi);
}

void trsm_right_upper(std::size_t m, std::size_t n, const double* r, double* b) {
    const int mi = to_blas_int(m, "rows"), ni = to_blas_int(n, "columns");
    if (mi == 0 || ni == 0) return;
    by_row_blocks(m, [&](std::size_t i0, std::size_t rows) {
        cblas_dtrsm(CblasRowMajor, CblasRight, CblasUpper, CblasNoTrans, CblasNonUnit, static_cast<int>(rows), ni, 1.0,
                    r, ni, b + i0 * n, ni);
    });
}

namespace {
// Row-major C (m x n) = alpha op(A) op(B) + beta C in blocks of C's rows (by_row_blocks): the rows
// i0.. of op(A) start at a + i0 * lda (A not transposed: A's rows) or a + i0 (transposed: A's
// columns).
template <class T, class Gemm>
void gemm_rows(Gemm gemm, bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a,
               std::size_t lda, const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc) {
    const int mi = to_blas_int(m, "rows"), ni = to_blas_int(n, "columns"), ki = to_blas_int(k, "inner");
    if (mi == 0 || ni == 0) return;
    const int la = to_blas_int(lda, "leading dimension"), lb = to_blas_int(ldb, "leading dimension"),
              lc = to_blas_int(ldc, "leading dimension");
    by_row_blocks(m, [&](std::size_t i0, std::size_t rows) {
        gemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, static_cast<int>(rows), ni, ki,
             alpha, k == 0 ? a : a + (ta ? i0 : i0 * lda), la, b, lb, beta, c + i0 * ldc, lc);
    });
}
}  // namespace

void gemm_tn(std::size_t m, std::size_t n, std::size_t k, double alpha, const double* a, const double* b,
             double beta, double* c) {
    gemm_rows(cblas_dgemm, true, false, m, n, k, alpha, a, m, b, n, beta, c, n);
}

void gemm_nn(std::size_t m, std::size_t n, std::size_t k, double alpha, const double* a, const double* b,
             double beta, double* c) {
    gemm_rows(cblas_dgemm, false, false, m, n, k, alpha, a, k, b, n, beta, c, n);
}

// The single-precision products stay one call: OpenBLAS's sgemm rounds rows differently where a
// call's thread split falls (4e-6 relative on 20,000 x 37 x 50), and the opt-in float32 paths'
// products have a batch's rows, not D.
void gemm_tn(std::size_t m, std::size_t n, std::size_t k, float alpha, const float* a, const float* b, float beta,
             float* c) {
    const int mi = to_blas_int(m, "rows"), ni = to_blas_int(n, "columns"), ki = to_blas_int(k, "inner");
    if (mi == 0 || ni == 0) return;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, mi, ni, ki, alpha, a, mi, b, ni, beta, c, ni);
}

void gemm_nn(std::size_t m, std::size_t n, std::size_t k, float alpha, const float* a, const float* b, float beta,
             float* c) {
    const int mi = to_blas_int(m, "rows"), ni = to_blas_int(n, "columns"), ki = to_blas_int(k, "inner");
    if (mi == 0 || ni == 0) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, mi, ni, ki, alpha, a, ki, b, ni, beta, c, ni);
}

void gemm_tn(std::size_t m, std::size_t n, std::size_t k, double alpha, const double* a, std::size_t lda,
             const double* b, std::size_t ldb, double beta, double* c, std::size_t ldc) {
    gemm_rows(cblas_dgemm, true, false, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void gemm_nn(std::size_t m, std::size_t n, std::size_t k, double alpha, const double* a, std::size_t lda,
             const double* b, std::size_t ldb, double beta, double* c, std::size_t ldc) {
    gemm_rows(cblas_dgemm, false, false, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void gemm_nt(std::size_t m, std::size_t n, std::size_t k, double alpha, const double* a, const double* b,
             double beta, double* c) {
    gemm_rows(cblas_dgemm, false, true, m, n, k, alpha, a, k, b, k, beta, c, n);
}

void symm_left_upper(std::size_t m, std::size_t n, double alpha, const double* a, const double* b, double beta,
                     double* c) {
    const int mi = to_blas_int(m, "rows"), ni = to_blas_int(n, "columns");
    if (mi == 0 || ni == 0) return;
    cblas_dsymm(CblasRowMajor, CblasLeft, CblasUpper, mi, ni, alpha, a, mi, b, ni, beta, c, ni);
}

void syr_upper(std::size_t n, double alpha, const double* x, double* a, std::size_t lda) {
    const int ni = to_blas_int(n, "dimension"), ld = to_blas_int(lda ? lda : n, "leading dimension");
    if (ni == 0) return;
    cblas_dsyr(CblasRowMajor, CblasUpper, ni, alpha, x, 1, a, ld);
}

void ger(std::size_t m, std::size_t n, double alpha, const double* x, const double* y, double* a, std::size_t lda) {
    const int mi = to_blas_int(m, "rows"), ni = to_blas_int(n, "columns");
    if (mi == 0 || ni == 0) return;
    cblas_dger(CblasRowMajor, mi, ni, alpha, x, 1, y, 1, a, lda ? to_blas_int(lda, "row stride") : ni);
}

namespace {
// Every strictly-upper (i < j) pair of a row-major n x n matrix in cache-sized tiles:
// f(a[i * n + j], a[j * n + i]). A plain double loop walks one side by columns, one cache
// miss per element once n x 8 bytes exceeds the cache (seconds at D = 24,576). Within a tile
// the lower side is walked by rows: its stores are contiguous, and only the upper side's loads
// stride. Tiles of 32 x 32: where n is a multiple of 256 (patch blocks of 768, D = 4,096,
// 12,288) a 64-row tile's rows fall into the same few cache sets: symmetrizing took 1.3 s at
// n = 12,288 instead of 0.2 (bench_layout; docs/benchmarks-log.md, the forty-second session).
template <class F>
void upper_lower_pairs(std::size_t n, double* a, F f) {
    constexpr std::size_t tile = 32;
    for (std::size_t i0 = 0; i0 < n; i0 += tile)
        for (std::size_t j0 = i0; j0 < n; j0 += tile) {
            const std::size_t i1 = std::min(n, i0 + tile), j1 = std::min(n, j0 + tile);
            for (std::size_t j = j0; j < j1; ++j)
                for (std::size_t i = i0, end = std::min(i1, j); i < end; ++i) f(a[i * n + j], a[j * n + i]);
        }
}
}  // namespace

void symmetrize_from_upper(std::size_t n, double* a) {
    upper_lower_pairs(n, a, [](double& up, double& low) { low = up; });
}

void symmetrize_from_lower(std::size_t n, double* a) {
    upper_lower_pairs(n, a, [](double& up, double& low) { up = low; });
}

void transpose_in_place(std::size_t n, double* a) {
    upper_lower_pairs(n, a, [](double& up, double& low) { std::swap(up, low); });
}

int syevd_rows(std::size_t n, double* a, double* w) {
    const int ni = to_blas_int(n, "dimension");
    if (ni == 0) return 0;
    // Row-major upper is column-major lower: calling the column-major routine on the
    // same buffer avoids LAPACKE's transposed copies, and its column-major eigenvector
    // columns are our rows.
    const int info = LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'V', 'L', ni, a, ni, w);
    check_info(info, "dsyevd");
    return info;
}

int syevd_values_rows(std::size_t n, double* a, double* w) {
    const int ni = to_blas_int(n, "dimension");
    if (ni == 0) return 0;
    const int info = LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'N', 'L', ni, a, ni, w);
    check_info(info, "dsyevd");
    return info;
}

int syevd_rows(std::size_t n, float* a, float* w) {
    const int ni = to_blas_int(n, "dimension");
    if (ni == 0) return 0;
    const int info = LAPACKE_ssyevd(LAPACK_COL_MAJOR, 'V', 'L', ni, a, ni, w);
    check_info(info, "ssyevd");
    return info;
}

namespace {
// syevd_top_rows for both precisions: LAPACKE's d/s routines differ only in name.
template <class T, class Sytrd, class Stedc, class Ormtr>
int syevd_top_rows_impl(std::size_t n, std::size_t k, T* a, T* w, T* z, Sytrd sytrd, Stedc stedc, Ormtr ormtr,
                        const char* name) {
    const int ni = to_blas_int(n, "dimension"), ki = to_blas_int(k, "eigenpairs");
    if (ni == 0) return 0;
    if (ki > ni) throw std::invalid_argument(std::string(name) + ": k = " + std::to_string(k) + " exceeds n = " + std::to_string(n));
    // Row-major upper is column-major lower (as syevd_rows); column j of the column-major
    // z (ldz = n) is row j of the row-major one.
    std::vector<T> e(n), tau(n);
    int info = sytrd(LAPACK_COL_MAJOR, 'L', ni, a, ni, w, e.data(), tau.data());
    check_info(info, name);
    if (info != 0) return info;
    info = stedc(LAPACK_COL_MAJOR, 'I', ni, w, e.data(), z, ni);
    check_info(info, name);
    if (info != 0 || ki == 0) return info;
    info = ormtr(LAPACK_COL_MAJOR, 'L', 'L', 'N', ni, ki, a, ni, tau.data(), z + (n - k) * n, ni);
    check_info(info, name);
    return info;
}
}  // namespace

int syevd_top_rows(std::size_t n, std::size_t k, double* a, double* w, double* z) {
    return syevd_top_rows_impl(n, k, a, w, z, LAPACKE_dsytrd, LAPACKE_dstedc, LAPACKE_dormtr, "dsytrd/dstedc/dormtr");
}

int syevd_top_rows(std::size_t n, std::size_t k, float* a, float* w, float* z) {
    return syevd_top_rows_impl(n, k, a, w, z, LAPACKE_ssytrd, LAPACKE_sstedc, LAPACKE_sormtr, "ssytrd/sstedc/sormtr");
}

int syevr_top_rows(std::size_t n, std::size_t k, double* a, double* w, double* z) {
    const int ni = to_blas_int(n, "dimension"), ki = to_blas_int(k, "eigenpairs");
    if (ni == 0 || ki == 0) return 0;
    if (ki > ni) throw std::invalid_argument("syevr_top_rows: k = " + std::to_string(k) + " exceeds n = " + std::to_string(n));
    // As syevd_rows: row-major upper read as column-major lower; column-major eigenvector
    // columns (ldz = n) are rows of z.
    // dsyevr's W has dimension N even for a subset (it is workspace too): a k-long w would
    // be written past its end; the first k of `all` are the selected eigenvalues.
    int found = 0;
    std::vector<int> support(2 * k);
    std::vector<double> all(n);
    const int info = LAPACKE_dsyevr(LAPACK_COL_MAJOR, 'V', 'I', 'L', ni, a, ni, 0.0, 0.0, ni - ki + 1, ni, 0.0, &found,
                                    all.data(), z, ni, support.data());
    check_info(info, "dsyevr");
    std::copy(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(k), w);
    if (info == 0 && found != ki) return 1;  // fewer pairs than asked: report as not converged
    return info;
}

int potrf_upper(std::size_t n, double* a) {
    const int ni = to_blas_int(n, "dimension");
    if (ni == 0) return 0;
    const int info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'U', ni, a, ni);
    check_info(info, "dpotrf");
    return info;
}

int potrf_upper_in_place(std::size_t n, double* a, double anorm, double* rcond) {
    const int ni = to_blas_int(n, "dimension");
    if (rcond) *rcond = 0.0;
    if (ni == 0) return 0;
    const int info = LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'L', ni, a, ni);
    check_info(info, "dpotrf");
    if (info != 0 || !rcond) return info;
    check_info(LAPACKE_dpocon(LAPACK_COL_MAJOR, 'L', ni, a, ni, anorm, rcond), "dpocon");
    return 0;
}

void trsm_left_upper(bool transpose, std::size_t n, std::size_t m, const double* r, double* b) {
    const int ni = to_blas_int(n, "rows"), mi = to_blas_int(m, "columns");
    if (ni == 0 || mi == 0) return;
    cblas_dtrsm(CblasRowMajor, CblasLeft, CblasUpper, transpose ? CblasTrans : CblasNoTrans, CblasNonUnit, ni, mi, 1.0,
                r, ni, b, mi);
}

int gesvd_right_in_place(std::size_t m, std::size_t n, double* a, double* s) {
    const int mi = to_blas_int(m, "rows"), ni = to_blas_int(n, "columns");
    if (mi == 0 || ni == 0) return 0;
    if (ni > mi) throw std::invalid_argument("gesvd_right_in_place: more columns than rows");
    // Column-major, the buffer is Aᵀ (n x m): its left singular vectors are A's right ones,
    // and dgesvd's JOBU = 'O' writes them over the leading n x n block (lda = n).
    std::vector<double> superb(n > 1 ? n - 1 : 1);
    double none = 0.0;
    const int info = LAPACKE_dgesvd(LAPACK_COL_MAJOR, 'O', 'N', ni, mi, a, ni, s, &none, 1, &none, 1, superb.data());
    check_info(info, "dgesvd");
    return info;
}

int gesdd_thin(std::size_t m, std::size_t n, double* a, double* s, double* u, double* vt) {
    const int mi = to_blas_int(m, "rows"), ni = to_blas_int(n, "columns");
    if (mi == 0 || ni == 0) return 0;
    const int info = LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'S', mi, ni, a, ni, s, u, ni, vt, ni);
    check_info(info, "dgesdd");
    return info;
}

int gesdd_overwrite_colmajor(std::size_t m, std::size_t n, double* a, double* s, double* vt) {
    const int mi = to_blas_int(m, "rows"), ni = to_blas_int(n, "columns");
    if (mi == 0 || ni == 0) return 0;
    if (m < n) throw std::invalid_argument("gesdd_overwrite_colmajor: needs m >= n");
    // dgesdd's JOBZ = 'O' forms U = Q U_R in blocks of rows through its workspace: LAPACK's
    // minimum for that path (2 n² + 3 n + its bidiagonal solver's 3 n² + 4 n) plus 4,096 rows of
    // n, rather than the m x n its workspace query asks for (a second U).
    const long double nn = static_cast<long double>(n);
    const long double words = 5.0L * nn * nn + 7.0L * nn + 4096.0L * nn;
    if (words > static_cast<long double>(INT32_MAX)) throw std::length_error("gesdd_overwrite_colmajor: workspace beyond the BLAS index limit");
    std::vector<double> work(static_cast<std::size_t>(words));
    std::vector<lapack_int> iwork(8 * n);
    const int info = LAPACKE_dgesdd_work(LAPACK_COL_MAJOR, 'O', mi, ni, a, mi, s, nullptr, 1, vt, ni, work.data(),
                                         static_cast<lapack_int>(work.size()), iwork.data());
    check_info(info, "dgesdd");
    return info;
}

int gesdd_thin_notrans(std::size_t m, std::size_t n, double* a, double* s, double* u, double* vt) {
    const int mi = to_blas_int(m, "rows"), ni = to_blas_int(n, "columns");
    if (mi == 0 || ni == 0) return 0;
    // Column-major Aᵀ (n x m, ld n) = U' Σ V'ᵀ: A = V' Σ U'ᵀ. V'ᵀ (n x m, ld n) read row-major
    // is V' (m x n) = A's U; U' (n x n) read row-major is U'ᵀ = A's Vᵀ.
    const int info = LAPACKE_dgesdd(LAPACK_COL_MAJOR, 'S', ni, mi, a, ni, s, vt, ni, u, ni);
    check_info(info, "dgesdd");
    return info;
}

}  // namespace recalign::blas
