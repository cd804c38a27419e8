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
#include "recalign/spectral/spectrum.hpp"
#include "recalign/spectral/statistics.hpp"

namespace recalign {

// The alignment of span(V_1..k) for every k = 1..K (MATH.md §2 "General representation": the
// nested fit through a Cholesky of Vᵀ Sxx V), from restricted statistics with labels.
// `eigenvalues` are the exact Rayleigh quotients v_kᵀ Sxx v_k / v_kᵀ v_k. The `rank` measure
// is normalised by what the K directions hold (complete = false).
alignment_result basis_alignment(const restricted_statistics& s, const alignment_options& options = {});

// When the pass has its products (restricted_statistics::products), the Ritz steps below
// return `refined` in the pass's coordinates (W only: no D x K copy) and an empty
// subspace.basis; leading_columns forms the columns that are needed.
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
// Vᵀ Bd V (K x K, symmetric) for the pass's own basis V: patch_blocks::restrict_to, with what
// s.blocks_known holds for these blocks (the leading a x a) taken as known, so only the
// columns after it are swept over the blocks (D s (K − a) + D K (K − a) flops instead of
// D s K + D K²). Throws std::invalid_argument for a basis of another dimension or in coordinates.
matrix_t restricted_blocks(const restricted_statistics& s, const patch_blocks& blocks);
// Vᵀ Bd V of each distinct set of blocks in `blocks` (null entries skipped; known_blocks::is_of),
// swept once each over the columns not yet known (restricted_blocks), into s.blocks_known
// (replacing it): the masks of one patch size share their blocks, so each
// later restricted_blocks (ritz_denoising, verified_denoising) for them reads it instead of
// sweeping again. The same bits as sweeping each time.
void know_blocks(restricted_statistics& s, const std::vector<const patch_blocks*>& blocks);
// The step both closed-form and Monte-Carlo noises end in: the generalized eigenproblem
// (A, G) = (Vᵀ Bs Bsᵀ V, Vᵀ G V) on span V, its informative count (μ above rel_tol μ_1) and
// the exact statistics of the rotated basis V W.
ritz_denoising_result ritz_generalized(const restricted_statistics& s, const matrix_t& a, const matrix_t& g,
                                       double rel_tol);

// Rayleigh–Ritz for the second moment on span(V) (the sketch's own subspace, MATH.md §7
// "Alignment curve from a sketch"): the Ritz vectors Y = V W (Euclidean-orthonormal, W from
// (Vᵀ Sxx V, VᵀV)) in descending exact Rayleigh quotient θ, their alignment curve (exact for
// span Y_1..k) and the residual norms ‖Sxx y_j − θ_j y_j‖, exact too: by Davis–Kahan,
// sin ∠(y_j, the j-th eigenvector) <= residual_j / (gap to the rest of the spectrum), i.e. how
// far the sketch's subspaces are from the true top ones.
struct ritz_alignment_result {
    alignment_result curve;
    restricted_statistics refined;  // the statistics of Y
    vector_t residuals;             // ‖Sxx y_j − θ_j y_j‖ per Ritz vector
};
ritz_alignment_result ritz_alignment(const restricted_statistics& s, const alignment_options& options = {});

// The same Ritz pairs without labels (`recalign spectrum`): θ_j in descending order (each the
// exact second moment along y_j, and at most the j-th eigenvalue of Sxx by Cauchy interlacing),
// the statistics of Y and the residual norms. Directions of span V with a Gram eigenvalue at
// most rel_tol times the largest (a basis that is numerically rank-deficient) are dropped.
struct ritz_pairs_result {
    vector_t values;
    matrix_t vectors;  // W (K x r): the Ritz vectors are Y = V W
    restricted_statistics refined;
    vector_t residuals;
};
ritz_pairs_result ritz_pairs(const restricted_statistics& s, double rel_tol = alignment_options{}.rel_tol);

// A sketch's spectrum made exact for its own subspace (recalign spectrum and project): `pass`
// read the same rows again on the sketch's basis V, and the result holds the Ritz pairs of
// Sxx on span V (ritz_pairs) in place of the sketch's estimates: the values θ_j, each the exact
// second moment along y_j and at most the j-th eigenvalue of Sxx; the basis Y = V W (0 x 0
// without `with_basis`); the explained fractions of the exact trace; ritz = true, so that
// SubspaceProjector and every reader know the values are exact for these directions. The
// route, n, total and the sketch's own error information are kept; `residuals` holds
// ‖Sxx y_j − θ_j y_j‖. Throws std::invalid_argument when the pass is not of the sketch's rows
// (another D, n or centering).
struct ritz_spectrum_result {
    spectrum spec;
    vector_t residuals;
};
ritz_spectrum_result ritz_spectrum(const spectrum& sketch, const restricted_statistics& pass, bool with_basis = true,
                                   double rel_tol = alignment_options{}.rel_tol);

// Noise impact between two returned representations (the label-free diagnostic of
// noise_impact, on the subspaces actually returned): element K-1 = Σ sin² of the principal
// angles between span(V_1..K) and span(U_1..K), computed as K − ‖Q_Uᵀ Q_V‖_F² from nested
// orthonormal bases; K up to the shorter basis. Exact for these subspaces.
// `max_k` limits both to their leading columns (the bases are read in place: no D x K copies).
noise_impact_result basis_impact(const matrix_t& clean, const matrix_t& noisy, double rel_tol = 1e-12,
                                 std::size_t max_k = static_cast<std::size_t>(-1));
// The same from the Gram matrices Uᵀ U, Vᵀ V and Uᵀ V alone (e.g. of subspaces in one pass's
// coordinates, restricted_statistics::coordinates: Uᵀ V = W_uᵀ (Qᵀ Q) W_v).
noise_impact_result gram_impact(const matrix_t& uu, const matrix_t& vv, const matrix_t& uv, double rel_tol = 1e-12,
                                std::size_t max_k = static_cast<std::size_t>(-1));

// The first k columns of the basis of `s` (of Sxx times it with `sxx`), D x k: from s itself,
// or as Q W / (Sxx Q) W from the verification pass `pass` when s is in its coordinates.
matrix_t leading_columns(const restricted_statistics& s, const restricted_statistics& pass, std::size_t k,
                         bool sxx = false);

// The denoising analyses of a sketch route, every number exact for the returned subspaces:
// `clean` is the Ritz refinement of the sketch's subspace (ritz_alignment), `noisy` the
// verification pass on the sketched denoising subspace of `noise` (sketched_denoising_subspace),
// refined by ritz_denoising (Gaussian noise: the clean returned basis itself, Corollary 3.1,
// so its impact is 0 to rounding). Curves share the clean curve's normaliser, like denoising_alignment.
struct verified_denoising_result {
    denoising_result denoising;  // curve: alignment of the returned V*; clean_curve: of the returned U
    noise_impact_result impact;  // between the returned V* and U
};
verified_denoising_result verified_denoising(const ritz_alignment_result& clean, const restricted_statistics& noisy,
                                             const noise_spec& noise, const patch_blocks* blocks,
                                             const alignment_options& options = {});
// The same for a denoising subspace already refined on the pass's span (e.g. a Monte-Carlo
// noise's, ritz_monte_carlo_denoising in align/monte_carlo_sketch.hpp).
verified_denoising_result verified_denoising(const ritz_alignment_result& clean, const ritz_denoising_result& found,
                                             const alignment_options& options = {});

// The refinement step of Theorem 3's Ritz space (MATH.md §7 "Refining the denoising
// subspace"): from a verification pass on span Q (pass) and the sketch it came from, the Ritz
// vectors v_j (values μ_j) of ritz_denoising for the first `count` informative j, and their
// preconditioned residuals t_j = Ĝ⁻¹ (A v_j − μ_j G v_j), A = q² Sxx², G = c1 Sxx + c2 Bd,
// Ĝ = sketched_gram_solve's model. G v_j is exact (Sxx v_j from the pass, Bd v_j from the
// blocks); A v_j = q² Sxx s_j (s_j = Sxx v_j) is exact on the part of s_j in span Q and uses
// Sxx ≈ N + blockdiag(Sxx − N) on the rest, N = (Sxx Q)(Qᵀ Sxx Q)⁺(Sxx Q)ᵀ the Nyström
// approximation from span Q itself (rank m, not the sketch's r). One more pass on
// orthonormal_extension(Q, [t_1..t_count]) holds the next fixed-point iterate
// Ĝ⁻¹ (A v − μ (G − Ĝ) v) / μ of each v_j, so its Ritz step corrects what the sketch's Ĝ
// missed (the tail of Sxx off the blocks). Columns are scaled to unit norm. Gaussian noise:
// none (V* = U, Corollary 3.1). Throws std::invalid_argument for Monte-Carlo noises, missing
// or foreign blocks, or a pass and a sketch of different data.
matrix_t denoising_refinement(const spectrum& sketch, const restricted_statistics& pass, const noise_spec& noise,
                              const patch_blocks* blocks, std::size_t count, double rel_tol = 1e-12);
// The same from ritz_denoising(pass, noise, blocks, rel_tol) already computed (its Vᵀ Bd V is
// the costly part at high D: incremental_refinement.hpp computes it once per pass and noise).
matrix_t denoising_refinement(const spectrum& sketch, const restricted_statistics& pass, const noise_spec& noise,
                              const patch_blocks* blocks, std::size_t count, const ritz_denoising_result& ritz,
                              double rel_tol = 1e-12);
// What the step reads of the pass alone, the same for every noise: the eigendecomposition of
// Qᵀ Q (the pass's `gram`, or formed) and W⁺ for W = Qᵀ Sxx Q (eigenvalues above 1e-10 of the
// largest). Two m x m eigendecompositions (m = 1,216 in the 224 demo): a restart forms them once
// for all its masks. Throws std::invalid_argument for statistics in coordinates.
struct refinement_factors {
    eigen_result frame;  // of Qᵀ Q
    matrix_t nystrom;    // W⁺, m x m
};
refinement_factors refinement_factors_of(const restricted_statistics& pass);
// The same with the pass's factors already formed (the same bits as the forms above); throws
// std::invalid_argument for factors of another size.
matrix_t denoising_refinement(const spectrum& sketch, const restricted_statistics& pass, const noise_spec& noise,
                              const patch_blocks* blocks, std::size_t count, const ritz_denoising_result& ritz,
                              const refinement_factors& factors, double rel_tol = 1e-12);
// The same step in two parts, the first for several closed-form masking noises of one pass and
// one set of patch blocks at once (the masks of one patch size, e.g. the 224 demo's fixed-count
// and Bernoulli masks): the residuals r_j = A v_j − μ_j G v_j of each noise's first `count` Ritz
// vectors (ritz[i]: noise i's ritz_denoising on this pass; unscaled, D x min(count,
// informative) each), whose products on Q, Sxx Q and the blocks do not depend on the noise
// and run once for all of them side by side (each read of Sxx Q and each sweep of the blocks
// serves every noise; two D x (their columns) matrices at most); then refinement_direction
// solves one noise's with its Ĝ and scales the columns to unit norm. denoising_refinement is the
// two for one noise: the same bits where the wider products round each column alike
// (OpenBLAS's do here). Throws std::invalid_argument for a pass in another pass's coordinates,
// Gaussian or Monte-Carlo noises, a missing Ritz step, factors of another pass, blocks of
// another dimension.
std::vector<matrix_t> refinement_residuals(const restricted_statistics& pass, const std::vector<noise_spec>& noises,
                                           const patch_blocks& blocks, std::size_t count,
                                           const std::vector<const ritz_denoising_result*>& ritz,
                                           const refinement_factors& factors);
matrix_t refinement_direction(const spectrum& sketch, const restricted_statistics& pass, const noise_spec& noise,
                              const patch_blocks& blocks, matrix_t residuals, double rel_tol = 1e-12);
// The clean side of the same step: for Sxx's Ritz vectors v_j = Q w_j on span Q (values λ_j;
// `coords` m x k, Q's coordinates, VᵀV = I), the residuals Sxx v_j − λ_j v_j, exact (Sxx Q is
// the pass's), each scaled to unit norm (one below 1e-10 λ_1, rounding, is left 0). With them and the
// v_j kept, the next pass's span holds Sxx v_j: a block Krylov step on the clean top-k, whose
// Ritz vectors every relative difference divides by. Throws std::invalid_argument for a pass in
// coordinates or coordinates of another basis.
matrix_t clean_refinement(const restricted_statistics& pass, const matrix_t& coords, const vector_t& values);

// An orthonormal basis of span(Q, extra) (Q: D x m orthonormal, extra: D x e): Q's columns,
// then an orthonormal basis of what `extra` adds (projected out of Q twice, orthonormalised
// through the eigendecomposition of its Gram matrix, twice), without the directions below
// 1e-10 of the largest column norm of `extra` (dependent ones). BLAS-3, O(D (m + e) e). The
// verification pass of a sketch route runs on orthonormal_extension(U, [V_1, ..., V_m]): the
// Ritz steps on that richer span find better subspaces than on each V_i alone.
matrix_t orthonormal_extension(const matrix_t& q, const matrix_t& extra);
// The same in place: Q's first m columns (orthonormal) are extended in Q's own columns m..,
// where the new ones are written (Q: D x cap, allocated once for every extension of a basis
// being built; no D x (m + e) copy). `extra` is taken by value (move it in: it is the
// scratch). Returns m + the columns added; throws std::invalid_argument when m + e > cap.
std::size_t orthonormal_extension(matrix_t& q, std::size_t m, matrix_t extra);
// The first m columns of q (D x m): a basis built in place above, trimmed to what it holds.
matrix_t leading_columns_of(const matrix_t& q, std::size_t m);

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
// (`previous`), Q extended by Sxx Sxy = (Sxx Q)(Qᵀ Sxy) (exact since Sxy lies in span Q): one
// more pass then evaluates the richer space. Columns numerically dependent on earlier ones
// (relative norm below 1e-10 after two orthogonalisations) are left out. Throws
// std::invalid_argument without targets or when `previous` is not a pass on such a basis of
// this data (its first r columns U).
//
// With a preconditioner (`diagonal`: the exact diagonal of Sxx in the statistics' centering;
// `blocks`: exact diagonal blocks of Sxx), the first space also holds Ĝ⁻¹ Sxy and each
// following one Ĝ⁻¹ R, R = Sxy − Sxx X the exact residual of the Galerkin solution X of
// Sxx X = Sxy on the previous span (tradeoff_galerkin_residual), Ĝ = U Λ Uᵀ + E, E the
// diagonal (blocks) of Sxx − U Λ Uᵀ (sketch_preconditioned): the passes are block
// preconditioned CG towards Sxx⁻¹ Sxy, the supervised optimum, which lives in the
// low-variance tail the sketch misses; the space grows by at most 2 C columns a pass.
matrix_t tradeoff_ritz_basis(const statistics& sketch, const restricted_statistics* previous = nullptr,
                             const vector_t* diagonal = nullptr);
matrix_t tradeoff_ritz_basis(const statistics& sketch, const restricted_statistics* previous,
                             const patch_blocks& blocks);

// The exact residual R = Sxy − Sxx X of the Galerkin solution X = Q (Qᵀ Sxx Q)⁺ Qᵀ Sxy on a
// verification pass's span Q (D x C), and ‖R‖_F / ‖Sxy‖_F. X minimises the λ = 0 supervised
// loss over span Q (K >= C): its excess over the optimum is tr(Rᵀ Sxx⁻¹ R).
struct tradeoff_residual {
    matrix_t residual;
    double relative = 0.0;
    double supervised_loss = 0.0;  // tr(Syy) − tr(Sxyᵀ X): the λ = 0 loss of span Q (K >= C), exact
};
tradeoff_residual tradeoff_galerkin_residual(const statistics& sketch, const restricted_statistics& pass);

// Ĝ⁻¹ B for Ĝ = U Λ Uᵀ + E, E = diag(d − diag(U Λ Uᵀ)) floored at 1e-10 · mean(d), by
// Woodbury (one r x r eigendecomposition): the sketch's top part plus the exact diagonal of the
// rest, an approximation of Sxx⁻¹ that is cheap at any D.
matrix_t sketch_preconditioned(const spectrum& sketch, const vector_t& diagonal, const matrix_t& b);
// The same with E = blockdiag(Sxx − U Λ Uᵀ) over exact diagonal blocks of Sxx (one
// eigendecomposition per block, eigenvalues floored at 1e-10 · mean diag(Sxx)).
matrix_t sketch_preconditioned(const spectrum& sketch, const patch_blocks& blocks, const matrix_t& b);

// The trade-off's CG passes (`recalign tradeoff` on a sketch route, Python's VerifiedTradeoff).
// Coordinates per diagonal block of the preconditioner (runs of consecutive coordinates, at most
// D). Measured on 12,000 synthetic 32x32x3 images (NumPy, the same iteration, rank-256 Nyström):
// the λ = 0 loss's excess after 8 passes is 31 % with the diagonal alone, 2.9 % with blocks of
// 192, 2.5 % with 384 (1.0 % after 18 passes); blocks of 384 hold D · 192.5 doubles (232 MB at
// D = 150,528).
inline constexpr std::uint64_t tradeoff_preconditioner_block = 384;
// The adaptive stop: tradeoff_excess.estimate at most this. The estimate can be low by 10-70x
// where CG stagnates (that synthetic case: 2e-3 of the loss at a true excess of 2 %), hence 1e-4.
inline constexpr double tradeoff_stop = 1e-4;

// After a verification pass on span Q: ‖R‖_F / ‖Sxy‖_F of the Galerkin residual (exact) and
// tr(Rᵀ Ĝ⁻¹ R) / the λ = 0 loss of span Q (Ĝ from `blocks`, sketch_preconditioned; 0 when that
// loss is 0), an estimate of the loss's relative excess over its optimum. A loss below 1e-8
// tr Syy counts as 1e-8 tr Syy: an exact fit (n <= D) leaves a loss of rounding, and the ratio
// of two rounding-level numbers decided the stop (400 images of 16x16x3: 0.09 to 2.0 with
// OpenBLAS's SkylakeX kernels, never stopping, exactly 0 with its Haswell kernels).
struct tradeoff_excess {
    double residual = 0.0;
    double estimate = 0.0;
};
tradeoff_excess tradeoff_excess_estimate(const statistics& sketch, const patch_blocks& blocks,
                                         const restricted_statistics& pass);

}  // namespace recalign
