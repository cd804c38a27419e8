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
#include <memory>
#include <string>
#include <vector>

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

struct gram_solve_cache;  // below
// The same, recording on the way the entry of `cache` that sketched_gram_solve (below) forms at
// its first call with these pieces (the blocks' factors, E⁺U, Woodbury's T and M's factor), in
// unlinked files in `dir` when it is not empty (else in memory: a copy of E⁺U), unless the cache
// holds it already: the refinement's first restart then solves with them (the bits of an
// uncached call). `cache` may be null: none. Throws file_error when the files cannot be made or
// written, the cache as it was.
denoising_subspace_result sketched_denoising_subspace(const spectrum& sketch, const noise_spec& noise,
                                                      const patch_blocks* blocks, const sketch_denoising_options& options,
                                                      gram_solve_cache* cache, const std::string& dir = {});

// Ĝ⁻¹ R for the masking model above (Ĝ = E + c1 U Λ Uᵀ, pseudo-inverse on the pixels that
// vary), R: D x e. The preconditioner of the refinement step (denoising_refinement): the sketch's
// top part and the exact blocks, so Ĝ⁻¹ G − I = −c1 Ĝ⁻¹ (the tail of Sxx off the blocks).
// Throws like sketched_denoising_subspace, and for Gaussian or Monte-Carlo noises.
// `counts` (optional) receives how many blocks took each route.
// `rhs` is taken by value: moved in, the result is formed in its storage (no second D x e).
matrix_t sketched_gram_solve(const spectrum& sketch, const noise_spec& noise, const patch_blocks& blocks,
                             matrix_t rhs, const sketch_denoising_options& options = {},
                             block_solve_counts* counts = nullptr);

// What sketched_gram_solve forms from the sketch, the blocks and the noise's coefficients alone,
// kept for the next call with the same pieces (the refinement's restarts solve with the same
// Ĝ every pass: docs/benchmarks-log.md "time10"): each block's factor of E (its Cholesky factor, packed;
// or the eigenvectors kept and their eigenvalues), E⁺U (D x r) and Woodbury's T and M's factor.
// One entry per (sketch, blocks, coefficients, options), matched by content (the sketch's
// eigenvalues and a hash of its basis, the blocks' address, n, geometry and largest diagonal),
// at most gram_solve_cache_entries, the oldest dropped first. A cached call returns the bits of
// an uncached one. Not serialised: a resumed run forms it again, the same bits. Not for
// concurrent calls (one restart at a time uses it).
struct gram_solve_cache {
    struct entry;  // lib/align/sketch_denoising.cpp
    std::vector<std::shared_ptr<const entry>> entries;
};
inline constexpr std::size_t gram_solve_cache_entries = 4;

// The same with `cache` (may be null: none). A new entry's factors and E⁺U wait in unlinked
// files in `dir` (io::row_spill: about D (s + 1) / 2 + D r doubles written, D (s + 1) + D r
// reserved: 0.77 GB written, 1.24 GB reserved per noise at 224x224x3 with 16x16 patches and
// r = 256) when `dir` is not empty, else in memory (the same doubles). Throws file_error when
// they cannot be made or written (a full disk), with the cache as it was (an entry is kept only
// once complete). Each
// block's right-hand sides are solved apart from U's (cholesky_solve), so a cached call and
// the call that formed the entry give the same bits, and a resumed run (its cache empty) the
// bits of one that did not stop.
matrix_t sketched_gram_solve(const spectrum& sketch, const noise_spec& noise, const patch_blocks& blocks,
                             matrix_t rhs, const sketch_denoising_options& options, block_solve_counts* counts,
                             gram_solve_cache* cache, const std::string& dir = {});

}  // namespace recalign
