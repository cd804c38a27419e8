// The analyses of a representation V found from a sketch, computed exactly from the
// verification pass (restricted_moments, MATH.md §7): numbers about V are exact for V, so
// none is inflated by an underestimated eigenvalue of the sketch.
#pragma once

#include "recalign/align/alignment.hpp"
#include "recalign/align/denoising.hpp"
#include "recalign/align/noise.hpp"
#include "recalign/align/patch_blocks.hpp"
#include "recalign/align/restricted_moments.hpp"

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

}  // namespace recalign
