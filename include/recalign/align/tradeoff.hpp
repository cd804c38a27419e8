// The supervised + reconstruction trade-off of the paper's Theorem 1 (MATH.md §3):
//
//     L(V, W, Z) = ‖Wᵀ Vᵀ X − Y‖² + λ ‖Zᵀ Vᵀ X − X‖²,   V: D x K,
//
// solved in closed form from moments only: V* = top-K generalized eigenvectors of
// (Sxy Sxyᵀ + λ Sxx², Sxx) by whitening with Sxx, W* = M⁻¹ V*ᵀ Sxy, Z* = M⁻¹ V*ᵀ Sxx with
// M = V*ᵀ Sxx V*, and both losses at the optimum. The one eigendecomposition of Sxx in the
// finished statistics serves every λ (and every other analysis of the same state).
#pragma once

#include <cstdint>
#include <vector>

#include "recalign/core/xt.hpp"
#include "recalign/spectral/eigen.hpp"
#include "recalign/spectral/statistics.hpp"

namespace recalign {

struct tradeoff_options {
    std::vector<double> lambdas;               // each >= 0 and finite
    std::size_t k = 1;  // K: latent dimension
    // Directions of Sxx with eigenvalue <= rel_tol · largest are null: dropped from the
    // whitening (the loss cannot see them) and counted in the result.
    double rel_tol = 1e-12;
    // H(λ)'s solver when all its pairs are needed (K >= rank): dsyevd where its 2 r² fits
    // (spectral/eigen.hpp); the top K < rank are dsyevr's index range.
    eigen_options solver;
};

struct tradeoff_point {
    double lambda = 0.0;
    // D x K' encoder V*, Sxx-orthonormal (V*ᵀ Sxx V* = I). At λ = 0 only the first
    // min(K, C) columns are determined (the rest span null directions of Sxy Sxyᵀ, eigenvalue
    // 0): any completion gives the same losses.
    matrix_t v;
    matrix_t w;            // K' x C predictor head W*
    matrix_t z;            // K' x D decoder Z*
    vector_t eigenvalues;  // the top-K' generalized eigenvalues of (Sxy Sxyᵀ + λ Sxx², Sxx)
    double supervised_loss = 0.0;      // ‖W*ᵀ V*ᵀ X − Y‖² = tr(Syy) − tr(Sxyᵀ V M⁻¹ Vᵀ Sxy)
    double reconstruction_loss = 0.0;  // ‖Z*ᵀ V*ᵀ X − X‖² = tr(Sxx) − tr(Sxx V M⁻¹ Vᵀ Sxx)
    double loss = 0.0;                 // supervised + λ · reconstruction
    solver_status status = solver_status::converged;  // of this λ's eigensolve
};

struct tradeoff_result {
    centering center = centering::uncentered;
    std::uint64_t n = 0;
    std::size_t dim = 0, classes = 0;
    std::size_t k = 0;         // K' = min(K, rank of Sxx): the columns actually returned
    std::size_t rank_xx = 0;   // directions of Sxx kept by the whitening
    std::size_t dropped = 0;   // null directions of Sxx
    solver_status status = solver_status::converged;  // of the eigendecomposition of Sxx
    std::vector<tradeoff_point> points;  // one per λ, in the order given
};

// From finished statistics with targets and the complete spectrum (the exact route; the
// centering is the statistics'). Throws std::invalid_argument for K = 0, K > D, a negative or
// non-finite λ, or statistics that lack what it needs (statistics::require).
tradeoff_result tradeoff(const statistics& s, const tradeoff_options& options);

}  // namespace recalign
