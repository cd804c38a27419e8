// Denoising alignment (the paper's Theorem 3 and Eq. 9, MATH.md §4) and the label-free
// noise-impact diagnostic (Corollary 3.1, MATH.md §4).
//
// V* = top generalized eigenvectors of (Bs Bsᵀ, G), by whitening with G; its alignment for
// every K is fit(V*_K) of MATH.md §2 measured on the *clean* statistics (nested-basis
// Cholesky: all K in one sweep). The relative difference to the clean curve is the
// quantity of the paper's Figure 7.
#pragma once

#include <cstdint>
#include <string>

#include "recalign/align/alignment.hpp"
#include "recalign/align/noise.hpp"
#include "recalign/core/xt.hpp"
#include "recalign/spectral/eigen.hpp"
#include "recalign/spectral/statistics.hpp"

namespace recalign {

struct denoising_subspace_result {
    vector_t eigenvalues;   // descending generalized eigenvalues of (Bs Bsᵀ, G) on range(G)
    matrix_t basis;         // D x r, G-orthonormal columns, sign as in sym_eigen
    std::size_t rank_g = 0;   // directions of G kept by the whitening
    std::size_t dropped = 0;  // null directions of G
    std::size_t informative = 0;  // eigenvalues > rel_tol · largest: beyond, V* is arbitrary
    solver_status status = solver_status::converged;  // of the eigendecomposition of G and the SVD
};

// V* of Theorem 3. H = D_G^{-1/2} P_Gᵀ Bs Bsᵀ P_G D_G^{-1/2} is factorised as F Fᵀ with
// F = D_G^{-1/2} P_Gᵀ Bs, by an SVD of F (its singular values are accurate where the
// eigenvalues of F Fᵀ would have squared the rounding).
denoising_subspace_result denoising_subspace(const noise_moments& noisy, double rel_tol = 1e-12,
                                             const eigen_options& solver = {});
// The same consuming the noise moments: G is decomposed in place and both are released as
// soon as they are read, so that beside the two inputs it needs one D x D matrix at a time
// (the whitening, then Fᵀ with its SVD in place) and returns V* in the whitening's storage.
// `solver`: G's eigensolver (dsyevd in G's storage where its 2 D² fits, else dsyevr).
// `spill_dir` (not empty): where dsyevd decomposes C = F Fᵀ of the Cholesky route, G's factor
// waits in an unlinked file there (io::parked_matrix; same bits read back): 3 D x D at the peak.
denoising_subspace_result denoising_subspace(noise_moments&& noisy, double rel_tol = 1e-12,
                                             const eigen_options& solver = {}, const std::string& spill_dir = {});

// V* of a closed-form masking noise (dropout or mask) from Sxx itself, which serves as
// scratch and is restored bit for bit (also on a throw): G = K ⊙ Sxx is formed and factored
// (G = Rᵀ R) in Sxx's upper triangle, F = R⁻ᵀ q Sxx in one D x D, C = F Fᵀ in another (F
// released) and V* = R⁻¹ Y: beside Sxx at most two D x D at a time, plus dsyevd's 2 D² where
// `solver` allows it (else, with n < D, C's top n pairs: D x n). With `spill_dir` (not empty)
// and dsyevd, Sxx (holding R) waits in an unlinked file there while C is decomposed: C and
// dsyevd's 2 D² alone, 3 D x D at the peak (Sxx is read back, the same bits). The result of
// denoising_subspace(closed_form_noise(spec, sxx, n, shape)), which it falls back to (Bs and G
// formed) where G is not numerically positive definite.
denoising_subspace_result masking_denoising_subspace(matrix_t& sxx, const noise_spec& spec, std::uint64_t n,
                                                     const image_shape& shape = {}, double rel_tol = 1e-12,
                                                     const eigen_options& solver = {},
                                                     const std::string& spill_dir = {});

// V* of additive Gaussian noise in closed form (Corollary 3.1; MATH.md §4): Bs = Sxx and
// G = Sxx + shift·I (shift = nσ²) share the clean eigenvectors U, so V* = U (Λ + shift·I)^{-1/2}
// with generalized eigenvalues λ² / (λ + shift), in the order of λ: no D x D solve, one D x D
// (the basis). `clean`: finished statistics with the complete spectrum of that Sxx. The same
// rank_g, dropped and informative as denoising_subspace of closed_form_noise's Bs and G.
denoising_subspace_result gaussian_denoising_subspace(const statistics& clean, double shift, double rel_tol = 1e-12);

struct denoising_options {
    alignment_measure measure = alignment_measure::paper;
    double rel_tol = 1e-12;
};

struct denoising_result {
    alignment_measure measure = alignment_measure::paper;
    centering center = centering::uncentered;
    std::uint64_t n = 0;
    std::size_t dim = 0, classes = 0;
    denoising_subspace_result subspace;
    vector_t curve;                // alignment of span(V*_K) on the clean statistics, K = 1 .. max_k
    vector_t clean_curve;          // alignment of span(U_K) (alignment_curve), K = 1 .. max_k
    vector_t relative_difference;  // (curve − clean_curve) / clean_curve; NaN where clean_curve = 0
    double normaliser = 0.0;       // the clean curve's (so both curves share one scale)
    std::size_t skipped = 0;       // directions of V* adding nothing in the Sxx metric
    // K up to min(informative directions of V*, clean curve length): beyond, V* is not
    // determined (e.g. Gaussian noise on an Sxx of rank r < D leaves D − r null directions of
    // G); `stop_reason` says which limit ended the curve.
    std::size_t max_k = 0;
    std::string stop_reason;
};

// `clean`: finished exact statistics with targets (their one eigendecomposition is shared by
// every noise); `noisy` must be of the same data (n) and centering. The subspace overload
// reads Sxx where `clean` keeps it, else U Λ Uᵀ (its complete spectrum), by blocks: beside V*
// only O(D) blocks and K x C.
denoising_result denoising_alignment(const statistics& clean, const noise_moments& noisy,
                                     const denoising_options& options = {});
// The same for a denoising subspace found elsewhere (e.g. from a sketch and exact patch
// blocks, align/sketch_denoising.hpp): its alignment, measured on the clean statistics.
denoising_result denoising_alignment(const statistics& clean, denoising_subspace_result subspace,
                                     const denoising_options& options = {});

struct noise_impact_options {
    double rel_tol = 1e-12;
};

struct noise_impact_result {
    vector_t distance;    // element K-1: Σ sin² of the principal angles between span(V*_K) and span(U_K)
    vector_t normalised;  // distance / K, in [0, 1]
    std::size_t max_k = 0;  // K up to the informative directions of both V* and U
    solver_status status = solver_status::converged;
};

// Label-free: needs only the clean second moment and the noise expectations. Zero for every
// K means the noise model can never change any supervised task (Corollary 3.1).
// `clean`: finished statistics with the complete spectrum (the exact route).
noise_impact_result noise_impact(const statistics& clean, const noise_moments& noisy,
                                 const noise_impact_options& options = {});
// The same for a denoising subspace already computed (denoising_subspace of the noise): a
// sweep that also measures its alignment solves each noise's eigenproblem once.
noise_impact_result noise_impact(const statistics& clean, const denoising_subspace_result& subspace,
                                 const noise_impact_options& options = {});

}  // namespace recalign
