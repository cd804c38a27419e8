// Frequent Directions sketch of the second-moment matrix (MATH.md §6; Liberty 2013,
// Ghashami, Liberty, Phillips, Woodruff 2016): an ℓ x D matrix B with
//
//     0 ⪯ C − BᵀB   and   ‖C − BᵀB‖₂ ≤ Δ ≤ Σ_{i>k} λ_i(C) / (ℓ + 1 − k)   for every k ≤ ℓ,
//
// where C is the centered scatter M (or, for `centering::uncentered`, S = M + n μμᵀ) and Δ is
// the shrinkage accumulated so far, reported by shrinkage() and in every result.
//
// Rows go into a 2ℓ-row buffer; when it is full, the top ℓ + 1 eigenvalues and top ℓ
// eigenvectors of the small 2ℓ x 2ℓ Gram matrix B Bᵀ (whose block of the ℓ rows the previous
// shrink kept is diagonal: only the new rows' blocks are formed) shrink it back to at
// most ℓ rows (subtracting the (ℓ+1)-th squared singular value from all of them), so the
// cost is one O(ℓ² D) factorisation per ℓ new rows, never one per row. Rows are centered per batch and folded in with Chan's
// rule as one extra row √(n_a n_b / n) δᵀ (MATH.md §1): the sketch approximates the
// centered scatter; the uncentered one is the sketch plus the exact row √n μᵀ, added when
// a result is formed. n, μ and the trace are kept exactly.
#pragma once

#include <cstdint>
#include <istream>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "recalign/core/batch.hpp"
#include "recalign/core/serial.hpp"
#include "recalign/core/xt.hpp"
#include "recalign/spectral/spectrum.hpp"
#include "recalign/stats/moments.hpp"

namespace recalign {

struct frequent_directions_options {
    std::size_t dim = 0;  // D
    std::size_t ell = 0;  // ℓ: rows kept after a shrink (memory: a 2ℓ x D buffer)
    centering center = centering::centered;
    // Opt-in: each shrink (the Gram matrix B Bᵀ, its top eigenpairs, the rotation) in
    // single precision (SSYRK, SSYTRD/SSTEDC/SORMTR, SGEMM: about 2x faster), reading the
    // double rows 8,192 columns at a time; the rows kept, Δ, the mean and the trace stay in
    // double. Δ then bounds the shrinks of exact arithmetic: each shrink
    // also perturbs BᵀB by single-precision rounding, about 1e-7 of λ_max(B Bᵀ) (tests/sketch
    // compare both paths). Not part of the configuration (such sketches merge with double
    // ones) and not saved: a loaded sketch shrinks in double until set_float32_kernels(true).
    bool float32_kernels = false;
};

class frequent_directions {
public:
    static constexpr checkpoint::state_kind kind = checkpoint::state_kind::frequent_directions;

    explicit frequent_directions(const frequent_directions_options& options);

    // Adds a batch (rows = samples). Strong guarantee for bad input: a batch of the wrong
    // width or holding NaN/Inf throws std::invalid_argument and leaves the state as it was.
    // (A LAPACK failure inside a shrink, which would be a bug, throws numerical_error.)
    void update(const batch_view& x, std::uint64_t first_row = 0);

    // Stack and shrink: the merged Δ is Δ_a + Δ_b + the new shrinkage, so the guarantee
    // carries over. Merging an empty state is a no-op; a different dimension, ℓ or centering
    // throws std::invalid_argument naming both values, before anything changes.
    void merge(const frequent_directions& other);

    void save(std::ostream& os) const { checkpoint::save_state(os, *this); }
    static frequent_directions load(std::istream& is) { return checkpoint::load_state<frequent_directions>(is); }

    std::uint64_t n() const noexcept { return n_; }
    std::size_t dim() const noexcept { return options_.dim; }
    std::uint64_t aux_dim() const noexcept { return options_.ell; }
    bool empty() const noexcept { return n_ == 0; }
    const frequent_directions_options& options() const noexcept { return options_; }
    std::uint64_t config_hash() const;
    // Switches the precision of later shrinks (options().float32_kernels); nothing else changes.
    void set_float32_kernels(bool on) noexcept { options_.float32_kernels = on; }

    // Δ: the accumulated shrinkage, ‖C − BᵀB‖₂ ≤ Δ.
    double shrinkage() const noexcept { return delta_; }
    // Number of shrinks (factorisations) so far, merges included.
    std::uint64_t shrinks() const noexcept { return shrinks_; }
    const vector_t& mean() const noexcept { return mean_; }
    // Exact trace of C (the chosen centering), without the sketch's error.
    double trace() const;
    // Rows currently held (at most 2ℓ − 1 between updates).
    std::size_t rows() const noexcept { return rows_; }
    // The sketch B (rows() x D) of the *centered* scatter: BᵀB ≈ M; with `extra_rows` zero rows
    // after it (room for a row the caller adds, without a second copy).
    matrix_t sketch(std::size_t extra_rows = 0) const;
    // The same rows in place (rows() x D, row-major; valid until the state next changes).
    const double* sketch_rows() const noexcept { return buffer_.data(); }

    // The checkpoint payload (recalign/core/serial.hpp), defined in lib/sketch/frequent_directions_serial.cpp.
    template <class Archive>
    void save_payload(Archive& ar) const;
    template <class Archive>
    static frequent_directions load_payload(Archive& ar, checkpoint::budget& b);

private:
    static frequent_directions_options validated_options(std::uint64_t dim, std::uint64_t ell, std::uint8_t center,
                                                         const checkpoint::budget& b);
    void check_loaded() const;
    // Grows the buffer (and the shrink scratch) to full size; called before any change.
    void reserve_buffer();
    // Appends `count` rows, shrinking whenever the buffer fills. Needs reserve_buffer().
    void append_rows(const double* src, std::size_t count);
    void shrink();
    // The shrink's arithmetic: reads rows_ rows of buffer_, writes the kept rows to its head,
    // returns (kept, δ). T = double, or float for the opt-in single-precision kernels.
    template <class T>
    std::pair<std::size_t, double> shrink_in(std::vector<T>& gram, std::vector<T>& z, std::vector<T>& eig,
                                             std::vector<T>& transform, std::vector<T>& shrunk);

    frequent_directions_options options_;
    std::uint64_t n_ = 0;
    std::uint64_t shrinks_ = 0;
    double trace_ = 0.0;  // trace of the centered scatter M
    double delta_ = 0.0;  // Δ
    vector_t mean_;
    std::vector<double> buffer_;  // up to 2ℓ rows of D, row-major; rows_ in use
    std::size_t rows_ = 0;
    // The first diag_rows_ rows of buffer_ are those the last shrink kept: mutually orthogonal
    // (their Gram block is diagonal), so the next shrink forms only the new rows' blocks.
    // Saved with the state (older states: 0, the whole Gram matrix once).
    std::size_t diag_rows_ = 0;
    // Scratch, never serialized.
    std::vector<double> norms_;
    std::vector<double> xb_, gram_, z_, eig_, transform_, shrunk_, chan_;
    std::vector<float> bf_, gf_, zf_, ef_, tf_, sf_;
};

struct frequent_directions_spectrum_options {
    std::size_t rank = 0;     // eigenpairs to return (0 = ℓ); fewer if the sketch has fewer
    // Directions with λ <= rel_tol · λ_1 are numerically undetermined and not returned.
    double rel_tol = 1e-12;
    // Robust FD's bias correction (Luo et al. 2017): every returned eigenvalue is raised by Δ/2
    // (plain FD never overestimates, by up to Δ), and error_bound becomes Δ/2, a two-sided
    // bound |λ_i(C) − λ_i| ≤ Δ/2. The basis is unchanged. Off by default.
    bool robust_shift = false;
};

// Top eigenpairs of BᵀB (plus √n μᵀ for the uncentered route), from the sketch's Gram matrix
// and a Rayleigh–Ritz step on its top eigenvectors (as accurate as a thin SVD of the sketch for
// every direction above rel_tol, without copying it): method "frequent_directions", `total` = the exact trace, error_bound = Δ
// (‖C − BᵀB‖₂ ≤ Δ for the whole sketch, and 0 ≤ λ_i(C) − λ_i ≤ Δ for every returned λ_i);
// with robust_shift, λ_i + Δ/2 and error_bound = Δ/2 (|λ_i(C) − λ_i| ≤ Δ/2).
spectrum frequent_directions_spectrum(const frequent_directions& fd,
                                      const frequent_directions_spectrum_options& options = {});

}  // namespace recalign
