// The denoising subspace of Theorem 3 when Sxx does not fit (MATH.md §7): from a sketch's top
// eigenpairs U Λ (Sxx ≈ U Λ Uᵀ ⪯ Sxx) and, for patch masking, the exact per-patch blocks Bd.
//
//   masking:  Bs = q Sxx, G = c1 Sxx + c2 Bd ≈ Ĝ = E + c1 U Λ Uᵀ, E = (c1 + c2) Bd − c1 blockdiag(U Λ Uᵀ)
//             v = Ĝ⁻¹ U Λ w with q² S w = μ w, S = Λ (Uᵀ Ĝ⁻¹ U) Λ = Λ (T⁻¹ + c1 Λ)⁻¹ Λ, T = Uᵀ E⁺ U
//   Gaussian: G = Sxx + nσ²I has the eigenvectors of Sxx (Corollary 3.1): V* = U.
//
// The work is one factorisation per patch block (E is block diagonal: a Cholesky where every
// eigenvalue is provably above the null cut, else an eigendecomposition) and r x r problems;
// memory O(D·r + D·s). The subspace is approximate where the sketch is; its alignment must be
// measured exactly (a verification pass), never read off these eigenvalues.
#pragma once

#include <cstddef>

#include "recalign/align/denoising.hpp"
#include "recalign/align/noise.hpp"
#include "recalign/align/patch_blocks.hpp"
#include "recalign/spectral/spectrum.hpp"

namespace recalign {

struct sketch_denoising_options {
    // Directions of a block of E with eigenvalue <= rel_tol · (scale of G) are null (pixels
    // that never vary), dropped from the pseudo-inverse; the same tolerance cuts S.
    double rel_tol = 1e-12;
    // A block of E whose eigenvalues are all proven above that cut (a shifted Cholesky, MATH.md
    // §7) is solved by its Cholesky factor (E_b⁺ = E_b⁻¹ there, ~16x fewer flops at 768 x 768);
    // false: every block by its eigendecomposition (the reference the tests compare against).
    bool cholesky = true;
};

// Which route the blocks of E took (a diagnostic for tests and profiles).
struct block_solve_counts {
    std::size_t cholesky = 0, eigen = 0;
};

// `sketch`: the top-r eigenpairs of Sxx in the centering of the analysis (any route; a complete
// exact spectrum reproduces denoising_subspace of the closed form). `blocks`: the exact patch
// blocks of the same data, with the spec's patch size (1x1 for dropout); unused (may be null)
// for Gaussian noise. Returns at most r directions, G-orthonormal for Ĝ, descending μ.
// Throws std::invalid_argument when the pieces disagree (dimension, n, patch geometry) or the
// noise is not a closed-form family (Monte Carlo: sketch the corrupted samples instead).
denoising_subspace_result sketched_denoising_subspace(const spectrum& sketch, const noise_spec& noise,
                                                      const patch_blocks* blocks,
                                                      const sketch_denoising_options& options = {});

// Ĝ⁻¹ R for the masking model above (Ĝ = E + c1 U Λ Uᵀ, pseudo-inverse on the pixels that
// vary), R: D x e. The preconditioner of the refinement step (denoising_refinement): the sketch's
// top part and the exact blocks, so Ĝ⁻¹ G − I = −c1 Ĝ⁻¹ (the tail of Sxx off the blocks).
// Throws like sketched_denoising_subspace, and for Gaussian or Monte-Carlo noises.
// `counts` (optional) receives how many blocks took each route.
// `rhs` is taken by value: moved in, the result is formed in its storage (no second D x e).
matrix_t sketched_gram_solve(const spectrum& sketch, const noise_spec& noise, const patch_blocks& blocks,
                             matrix_t rhs, const sketch_denoising_options& options = {},
                             block_solve_counts* counts = nullptr);

}  // namespace recalign
