// Symmetric and whitened generalized eigenproblems (MATH.md §3), explained variance.
// Solvers report numerical outcomes (non-convergence, dropped directions) in their result;
// bad arguments throw.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>

#include "recalign/core/xt.hpp"

namespace recalign {

// Which LAPACK driver solved a symmetric eigenproblem.
enum class eigen_driver : std::uint8_t {
    divide_and_conquer = 1,  // dsyevd: NumPy's eigh; 2 n² + O(n) doubles of workspace
    mrrr = 2,                // dsyevr: O(n) workspace, also for a top-k index range
};
const char* eigen_driver_name(eigen_driver d);  // "dsyevd", "dsyevr"

// How much memory a solver may allocate beside its input and the eigenvectors it returns.
// All n pairs: dsyevd when its workspace fits, dsyevr otherwise (dsyevr's time depends on the
// spectrum: 2.7x dsyevd's CPU on a centered, 4.8x on an uncentered Sxx of n = 3,000 < D = 4,096
// rows; docs/benchmarks-log.md).
// Top k < n pairs: dsyevr's index range always (no back-transformation of the other n - k).
// Both give the same eigenvalues and invariant subspaces to rounding.
struct eigen_options {
    std::uint64_t workspace_bytes = std::numeric_limits<std::uint64_t>::max();
};
// Bytes of dsyevd's workspace for an n x n problem with eigenvectors (LAPACK's LWORK and
// LIWORK: 1 + 6n + 2n² doubles, 3 + 5n ints); the maximum when it does not fit 64 bits.
std::uint64_t divide_and_conquer_workspace(std::size_t n);
// The driver `options` choose for k of n pairs.
eigen_driver choose_driver(std::size_t n, std::size_t k, const eigen_options& options);

struct eigen_result {
    vector_t values;   // descending
    matrix_t vectors;  // n x n, column i is the eigenvector of values(i); sign: largest entry > 0
    int info = 0;      // LAPACK info: 0 = converged
    eigen_driver driver = eigen_driver::mrrr;
    bool converged() const noexcept { return info == 0; }
};

// Eigendecomposition of a symmetric matrix (its upper triangle is read).
eigen_result sym_eigen(const matrix_t& a, const eigen_options& options = {});
// Only its top k eigenpairs (values descending, vectors n x k), when k < n is all that is
// needed: the full back-transformation of the other n - k vectors is never done.
eigen_result sym_eigen_top(const matrix_t& a, std::size_t k);
// The same without a copy of `a`: dsyevr works in `a`'s upper triangle and `a` is restored
// from its untouched lower one, so the decomposition needs the eigenvectors and O(n) beside
// `a` (at D = 24,576 one 4.8 GB matrix, not three); dsyevd (when `options` allow its 2 n²)
// works in the returned eigenvectors' storage and leaves `a` as it is. On return, also after
// an exception, `a` is the symmetric matrix of its upper triangle (both triangles written).
eigen_result sym_eigen_in_place(matrix_t& a, const eigen_options& options = {});
eigen_result sym_eigen_top_in_place(matrix_t& a, std::size_t k);
// Consuming `a`: the eigenvectors are returned in its storage (k = n) or beside it, and `a`
// is released. Peak beside `a`: dsyevd its 2 n² workspace, dsyevr the n x k eigenvectors.
eigen_result sym_eigen_consuming(matrix_t&& a, std::size_t k, const eigen_options& options = {});
// Its eigenvalues alone (dsyevd without vectors: O(n) workspace beside `a`, no back
// transformation), `a` consumed; `vectors` is empty (0 x 0).
eigen_result sym_eigenvalues_consuming(matrix_t&& a);

struct generalized_options {
    // Directions of B with eigenvalue <= rel_tol * (largest eigenvalue of B) are null
    // directions: dropped from the whitening and counted in the result.
    double rel_tol = 1e-12;
    std::size_t top = 0;  // keep only the top this-many eigenpairs (0 = all)
};

struct generalized_result {
    vector_t values;   // descending eigenvalues of A v = μ B v on range(B)
    matrix_t vectors;  // n x r, B-orthonormal (VᵀBV = I), sign as in sym_eigen
    std::size_t rank_b = 0;   // directions of B kept by the whitening
    std::size_t dropped = 0;  // null directions of B dropped
    int info = 0;             // first non-zero LAPACK info of the two eigensolves
    bool converged() const noexcept { return info == 0; }
};

// Top generalized eigenvectors of (A, B), B symmetric positive semi-definite, by whitening
// with B = P D Pᵀ: H = D^{-1/2} Pᵀ A P D^{-1/2}, V = P D^{-1/2} · eigvecs(H).
generalized_result generalized_eigen(const matrix_t& a, const matrix_t& b, const generalized_options& options = {});

// Cumulative explained fractions: element k-1 = Σ_{i<k} values(i) / total.
vector_t explained_fractions(const vector_t& values, double total);

// Smallest k with Σ_{i<k} values(i) >= fraction * total (MATH.md §5); values.size() if never.
std::size_t k_for_fraction(const vector_t& values, double total, double fraction);

// Makes each column's largest-magnitude entry positive: a deterministic sign, so that bases
// from different routes and runs can be compared column by column.
void fix_signs(matrix_t& columns);

}  // namespace recalign
