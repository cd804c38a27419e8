// Thin, checked wrappers over the BLAS / LAPACK calls the library makes, on contiguous
// row-major buffers. Dimensions are size_t at the call site and checked to fit BLAS's int
// here, once; every LAPACK `info` is checked (negative: a bug, thrown as numerical_error;
// positive: a numerical outcome, returned to the caller to report).
#pragma once

#include <cstddef>

namespace recalign::blas {

// C (n x n, upper triangle) = alpha * Aᵀ A + beta * C, A is (k x n) row-major.
void syrk_tn(std::size_t n, std::size_t k, double alpha, const double* a, double beta, double* c);
void syrk_tn(std::size_t n, std::size_t k, float alpha, const float* a, float beta, float* c);

// C (m x m, upper triangle) = alpha * A Aᵀ + beta * C, A is (m x k) row-major (the Gram
// matrix of the rows of A: what Frequent Directions factorises).
void syrk_nt(std::size_t m, std::size_t k, double alpha, const double* a, double beta, double* c);
void syrk_nt(std::size_t m, std::size_t k, float alpha, const float* a, float beta, float* c);

// C (m x n) = alpha * Aᵀ B + beta * C, A is (k x m), B is (k x n), all row-major.
void gemm_tn(std::size_t m, std::size_t n, std::size_t k, double alpha, const double* a,
             const double* b, double beta, double* c);
// C (m x n) = alpha * A B + beta * C, A is (m x k), B is (k x n).
void gemm_nn(std::size_t m, std::size_t n, std::size_t k, double alpha, const double* a,
             const double* b, double beta, double* c);
// Single-precision versions (the opt-in float32 kernel paths).
void gemm_tn(std::size_t m, std::size_t n, std::size_t k, float alpha, const float* a,
             const float* b, float beta, float* c);
void gemm_nn(std::size_t m, std::size_t n, std::size_t k, float alpha, const float* a,
             const float* b, float beta, float* c);
// The same two with leading dimensions (row strides) of A, B and C: products on a block of
// columns of a wider row-major matrix in place (e.g. the first m of its columns).
void gemm_tn(std::size_t m, std::size_t n, std::size_t k, double alpha, const double* a, std::size_t lda,
             const double* b, std::size_t ldb, double beta, double* c, std::size_t ldc);
void gemm_nn(std::size_t m, std::size_t n, std::size_t k, double alpha, const double* a, std::size_t lda,
             const double* b, std::size_t ldb, double beta, double* c, std::size_t ldc);
// C (m x n) = alpha * A Bᵀ + beta * C, A is (m x k), B is (n x k).
void gemm_nt(std::size_t m, std::size_t n, std::size_t k, double alpha, const double* a,
             const double* b, double beta, double* c);

// C (m x n) = alpha A B + beta C for A symmetric (m x m, only its upper triangle read), B m x n;
// row-major, contiguous.
void symm_left_upper(std::size_t m, std::size_t n, double alpha, const double* a, const double* b, double beta,
                     double* c);

// A (n x n, upper triangle, row stride lda; 0: n) += alpha x xᵀ.
void syr_upper(std::size_t n, double alpha, const double* x, double* a, std::size_t lda = 0);
// A (m x n, row stride lda; 0: n) += alpha x yᵀ.
void ger(std::size_t m, std::size_t n, double alpha, const double* x, const double* y, double* a, std::size_t lda = 0);

// Copies the upper triangle of a row-major n x n matrix onto its lower triangle.
void symmetrize_from_upper(std::size_t n, double* a);
// Copies the lower triangle onto the upper one.
void symmetrize_from_lower(std::size_t n, double* a);
// Transposes a square n x n matrix in place.
void transpose_in_place(std::size_t n, double* a);

// Symmetric eigendecomposition (divide and conquer, dsyevd) of the upper triangle of the
// row-major n x n matrix `a`. On return `w` holds the eigenvalues in ascending order and
// row i of `a` the i-th eigenvector. Returns LAPACK's info (> 0: did not converge).
int syevd_rows(std::size_t n, double* a, double* w);
// Eigenvalues only (jobz = 'N': the tridiagonal reduction, then its values), O(n) workspace;
// `a`'s upper triangle is overwritten.
int syevd_values_rows(std::size_t n, double* a, double* w);
// The same in single precision (ssyevd: Frequent Directions' opt-in float32 shrinks).
int syevd_rows(std::size_t n, float* a, float* w);

// All eigenvalues but only the top k eigenvectors of the upper triangle of the row-major
// n x n matrix `a`: the tridiagonal reduction (xSYTRD), divide and conquer on the tridiagonal
// matrix (xSTEDC, what xSYEVD runs) and the back-transformation (xORMTR) of the top k
// vectors only, where xSYEVD back-transforms all n (Frequent Directions' shrink needs the top
// ℓ of 2ℓ). `a` is destroyed; `w` (n) holds the eigenvalues ascending; `z` is n x n scratch
// whose rows n−k .. n−1 hold on return the eigenvectors of w[n−k] .. w[n−1] (as syevd_rows:
// row i for w[i]); its other rows are the tridiagonal matrix's vectors. Returns LAPACK's info.
int syevd_top_rows(std::size_t n, std::size_t k, double* a, double* w, double* z);
int syevd_top_rows(std::size_t n, std::size_t k, float* a, float* w, float* z);

// The top k eigenpairs only (dsyevr, MRRR, eigenvalues il = n-k+1 .. n; k = n: all of them)
// of the upper triangle of the row-major n x n matrix `a`. LAPACK overwrites that triangle,
// diagonal included, and never touches the strict lower one; its workspace is O(n). On return
// `w` (of length k; LAPACK's n-long W is allocated inside) holds the k eigenvalues in ascending order and row i of `z` (k x n) the i-th
// eigenvector. O(n² k) after the tridiagonal reduction instead of the full
// back-transformation. Returns LAPACK's info.
int syevr_top_rows(std::size_t n, std::size_t k, double* a, double* w, double* z);

// Cholesky factor of the upper triangle (row-major): on success a = Rᵀ R with R upper.
// Returns LAPACK's info (> 0: not positive definite at that order).
int potrf_upper(std::size_t n, double* a);

// The same in place without LAPACKE's row-major copy (row-major upper is column-major lower):
// on success the upper triangle holds R with A = Rᵀ R and the strict lower triangle is never
// touched (so a symmetric A is restored from it and its diagonal). With `rcond`, `anorm` (the
// 1-norm of A, taken before) gives in *rcond LAPACK's estimate (dpocon) of A's reciprocal 1-norm
// condition number; 0 when A is not positive definite. Returns LAPACK's info of dpotrf.
int potrf_upper_in_place(std::size_t n, double* a, double anorm = 0.0, double* rcond = nullptr);
// B (n x m) = R⁻ᵀ B (`transpose`) or R⁻¹ B in place, R (n x n) upper triangular row-major,
// non-unit diagonal (the two sides of a generalized eigenproblem reduced by a Cholesky factor).
void trsm_left_upper(bool transpose, std::size_t n, std::size_t m, const double* r, double* b);

// Singular values and right singular vectors of a row-major (m x n) matrix, m >= n, in its
// own buffer: dgesvd on the column-major n x m matrix the buffer also is (no transposed
// copies, workspace O(m)). On return `s` holds the n singular values, descending, and the
// first n·n entries of `a` are the row-major n x n matrix Vᵀ; the rest is destroyed.
// Returns LAPACK's info.
int gesvd_right_in_place(std::size_t m, std::size_t n, double* a, double* s);

// Thin SVD of a row-major (m x n) matrix, m >= n: a = U diag(s) Vᵀ. `u` is (m x n),
// `vt` is (n x n). Returns LAPACK's info.
int gesdd_thin(std::size_t m, std::size_t n, double* a, double* s, double* u, double* vt);
// Thin SVD of a column-major m x n matrix A (the row-major n x m array `a`), m >= n, with U
// written over A: the first n columns of `a` become U, column-major;
// Vᵀ (n x n) column-major. A workspace of about (5 n + 4,096) n doubles instead of a second m x n.
// (Frequent Directions' finish, when a sketch's directions reach rounding level.)
int gesdd_overwrite_colmajor(std::size_t m, std::size_t n, double* a, double* s, double* vt);
// gesdd_thin's factorisation without LAPACKE's row-major copies: the row-major A is LAPACK's
// column-major Aᵀ, whose right singular vectors are A's left ones, so for a tall A (m >> n)
// no m x n transpose is made in or out (a Nyström reconstruction at D = 150,528).
int gesdd_thin_notrans(std::size_t m, std::size_t n, double* a, double* s, double* u, double* vt);

// B (m x n) = B R⁻¹ in place, R (n x n) upper triangular row-major, non-unit diagonal
// (the solve E = Y R⁻¹ of the stable Nyström reconstruction).
void trsm_right_upper(std::size_t m, std::size_t n, const double* r, double* b);

// Checks that a dimension fits BLAS's int; throws std::invalid_argument naming `what`.
int to_blas_int(std::size_t v, const char* what);

}  // namespace recalign::blas
