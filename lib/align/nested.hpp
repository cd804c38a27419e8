// Internal helpers of the align/ analyses: the nested-basis trick of MATH.md §2 ("General
// representation") shared by the trade-off, the denoising alignment and the noise-impact
// diagnostic. Not installed.
#pragma once

#include <cstddef>
#include <vector>

#include "recalign/align/alignment.hpp"
#include "recalign/core/xt.hpp"
#include "recalign/stats/moments.hpp"

namespace recalign::detail {

// Ṽ = V R⁻¹ with Vᵀ M V = Rᵀ R (M = `metric`, or the identity when it is empty): columns
// nested (span(ṽ_1..k) = span(v_1..k)) and M-orthonormal. A column whose M-norm, after removing
// its projection on the earlier columns, is below rel_tol of its own M-norm (or whose M-norm is
// below rel_tol of the largest) adds nothing new: it is set to zero and flagged.
struct nested_basis {
    matrix_t columns;            // D x k
    std::vector<char> skipped;   // per column
    std::size_t n_skipped = 0;
};
// `v` is taken by value: moved in, it becomes the result's columns (no D x k copy).
nested_basis nested_orthonormalize(matrix_t v, const matrix_t& metric, double rel_tol);

// The factor behind it: Gram = Rᵀ R with dependent columns flagged (R_jj = 1, zero row/column).
struct nested_factor {
    matrix_t r;                  // k x k, upper triangular
    std::vector<char> skipped;   // per column
    std::size_t n_skipped = 0;
};
nested_factor nested_cholesky(const matrix_t& gram, double rel_tol);
// The same factoring in Gram's own storage (no K x K copy).
nested_factor nested_cholesky(matrix_t&& gram, double rel_tol);

// fit_contributions of the nested basis of V from the restricted statistics alone: Gram = Vᵀ Sxx V
// and vcross.sxy = Vᵀ Sxy (K x C), vcross.syy = Syy (MATH.md §7, the verification pass).
vector_t restricted_fit_contributions(matrix_t gram, const cross_moments& vcross, alignment_measure m,
                                      double rel_tol, std::size_t& skipped);

// c_k = ṽ_kᵀ Sxy W Sxyᵀ ṽ_k for an Sxx-orthonormal nested basis Ṽ: W = Syy for the paper and
// rank measures, W = I for fit. Σ_{i<=k} c_i is fit(V_k) of MATH.md §2.
vector_t fit_contributions(const matrix_t& vtilde, const cross_moments& cross, alignment_measure m);

// x ← x P (x: D x e, P: e x e) in x's own storage, a block of 256 rows at a time through a small
// scratch (no second D x e matrix at high D). The bits of one gemm_nn per block.
void multiply_rows_in_place(matrix_t& x, const matrix_t& p);

// Normaliser of a measure with the contributions of a complete basis (rank measure).
double measure_normaliser(const cross_moments& cross, alignment_measure m, const vector_t& complete_contributions);

}  // namespace recalign::detail
