// The analyses of a representation V found from a sketch, computed exactly from the
// verification pass (restricted_moments, MATH.md §7): numbers about V are exact for V, so
// none is inflated by an underestimated eigenvalue of the sketch.
#pragma once

#include "recalign/align/alignment.hpp"
#include "recalign/align/denoising.hpp"
#include "recalign/align/noise.hpp"
#include "recalign/align/patch_blocks.hpp"
#include "recalign/align/restricted_moments.hpp"
#include "recalign/align/tradeoff.hpp"
#include "recalign/spectral/statistics.hpp"

namespace recalign {

// The alignment of span(V_1..k) for every k = 1..K (MATH.md §2 "General representation": the
// nested fit through a Cholesky of Vᵀ Sxx V), from restricted statistics with labels.
// `eigenvalues` are the exact Rayleigh quotients v_kᵀ Sxx v_k / v_kᵀ v_k. The `rank` measure
// is normalised by what the K directions hold (complete = false).
alignment_result basis_alignment(const restricted_statistics& s, const alignment_options& options = {});

struct ritz_denoising_result {
    denoising_subspace_result subspace;  // V W: G-orthonormal on span V, descending μ
    restricted_statistics refined;       // the statistics of V W (exact)
};

// Rayleigh–Ritz for Theorem 3's problem on span(V): the generalized eigenproblem
// (Vᵀ Bs Bsᵀ V, Vᵀ G V) restricted to span V, which the verification pass gives exactly:
// masking: Vᵀ Bs Bsᵀ V = q² (Sxx V)ᵀ(Sxx V), Vᵀ G V = c1 Vᵀ Sxx V + c2 Vᵀ Bd V (blocks needed);
// Gaussian: (Sxx V)ᵀ(Sxx V) and Vᵀ Sxx V + nσ² VᵀV (blocks may be null).
ritz_denoising_result ritz_denoising(const restricted_statistics& s, const noise_spec& noise, const patch_blocks* blocks,
                                     double rel_tol = 1e-12);

// Theorem 1's trade-off at high D (MATH.md §7): Rayleigh–Ritz on span(V), i.e. the top-K
// generalized eigenvectors of (Vᵀ Sxy Sxyᵀ V + λ (Sxx V)ᵀ(Sxx V), Vᵀ Sxx V), all exact from
// the verification pass on V. `trace_xx` is tr(Sxx) in the statistics' centering (every
// route's spectrum::total). The encoders returned are V W (Sxx-orthonormal) and the losses
// are exactly theirs; being feasible, they bound the optimal losses of `tradeoff` from above
// (equal when span V holds the optimum). Throws std::invalid_argument without labels, for
// K = 0 or K > D, a negative or non-finite λ.
tradeoff_result ritz_tradeoff(const restricted_statistics& s, double trace_xx, const tradeoff_options& options);

// The Ritz space of that trade-off: an orthonormal basis of span(U, Sxy) from a sketch's
// statistics (top-r basis U, exact Sxy). Given the verification pass on such a basis Q
// (`previous`), span(U, Sxy, Sxx Sxy) instead, with Sxx Sxy = (Sxx Q)(Qᵀ Sxy) exactly since
// Sxy lies in span Q: one more pass then evaluates the richer space. Columns numerically
// dependent on earlier ones (relative norm below 1e-10 after two orthogonalisations) are
// left out. Throws std::invalid_argument without targets or when `previous` is not a pass
// on span(U, Sxy) of this data.
matrix_t tradeoff_ritz_basis(const statistics& sketch, const restricted_statistics* previous = nullptr);

}  // namespace recalign
