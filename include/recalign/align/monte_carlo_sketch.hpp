// Monte-Carlo noises (and any user corruption) when the D x D expectations do not fit
// (MATH.md §4 Monte Carlo, §7 "Other noises"): instead of Bs = (1/S) Σ x'_s xᵀ and
// G = (1/S) Σ x'_s x'_sᵀ, their products with a D x l test matrix Ω,
//
//     G Ω,   Bs Ω,   Bsᵀ Ω         (D x l each, averaged over the S draws, summed over samples)
//
// from the same corruptions the exact route draws (monte_carlo_noise: key (seed, batch, draw,
// first_row), so the noise of a sample depends only on its seed, global row and draw). Linear in
// the data: merge is a sum, so shards, resume and MPI give one stream's bytes.
//
// Two uses, one accumulator:
//  * the sketch pass, Ω random (gaussian_test_matrix): the ranges G Ω, Bs Ω, Bsᵀ Ω span the
//    directions the corrupted samples emphasise; with the clean sketch's top basis U they are
//    the Ritz space (monte_carlo_ritz_basis);
//  * the verification pass, Ω = Q that Ritz space (orthonormal), `ranges` off: Qᵀ G Q (m x m)
//    and Bsᵀ Q only, so Qᵀ Bs Bsᵀ Q = (Bsᵀ Q)ᵀ (Bsᵀ Q) exactly and Theorem 3's problem restricted
//    to span Q is solved exactly (ritz_monte_carlo_denoising): the denoising subspace returned is
//    the best in span Q for the draws made.
// When span Q is all of R^D this is the exact route's answer, to rounding.
#pragma once

#include <cstdint>
#include <istream>
#include <ostream>
#include <string>

#include "recalign/align/noise.hpp"
#include "recalign/align/restricted_moments.hpp"
#include "recalign/align/verification.hpp"
#include "recalign/core/batch.hpp"
#include "recalign/core/serial.hpp"
#include "recalign/core/xt.hpp"

namespace recalign {

struct monte_carlo_sketch_options {
    matrix_t test;              // Ω: D x l, finite (part of the configuration, compared bit for bit)
    std::size_t draws = 16;     // S corruptions per sample
    std::uint64_t seed = 0;     // of the corruptions (noise_key::seed)
    std::string name;           // identifies the noise model: part of the configuration hash
    // G Ω and Bs Ω (D x l each) too; off, only Ωᵀ G Ω (l x l) and Bsᵀ Ω: a third of the memory
    // and half the flops, all a Ritz problem on span Ω needs.
    bool ranges = true;
};

// A D x l matrix of standard normal entries from the counter-based generator, a pure function
// of (seed, D, l): a resumed run or another rank regenerates it bit for bit.
matrix_t gaussian_test_matrix(std::size_t dim, std::size_t columns, std::uint64_t seed);

// The finished products (uncentered: x' and x as given, like monte_carlo_noise).
struct monte_carlo_products {
    std::uint64_t n = 0;
    matrix_t test;  // Ω (D x l)
    matrix_t g;     // G Ω    (with ranges; else 0 x 0)
    matrix_t bs;    // Bs Ω   (with ranges; else 0 x 0)
    matrix_t bs_t;  // Bsᵀ Ω
    matrix_t gq;    // Ωᵀ G Ω (l x l, symmetric)
};

// A batch read and corrupted S times (monte_carlo_sketch::prepare), its sums held apart from
// the state until commit: batch-sized (x, Σ_s x'_s Ω, with ranges Σ_s x'_s and x Ω) plus, with
// ranges, Σ_s x'_sᵀ (x'_s Ω) (D x l), which needs each draw and so cannot wait for commit.
struct monte_carlo_batch {
    std::uint64_t batch = 0, first_row = 0;  // the sketch's batch count when prepared; its first row
    matrix_t clean;      // x (rows x D)
    matrix_t projected;  // Σ_s x'_s Ω (rows x l), for Bsᵀ Ω = xᵀ Σ_s x'_s Ω
    matrix_t corrupted;  // ranges: Σ_s x'_s (rows x D), for Bs Ω = (Σ_s x'_s)ᵀ x Ω; else 0 x 0
    matrix_t tested;     // ranges: x Ω (rows x l); else 0 x 0
    matrix_t g;          // ranges: Σ_s x'_sᵀ x'_s Ω (D x l); else Σ_s Ωᵀ x'_sᵀ x'_s Ω (l x l)
    std::size_t rows() const noexcept { return clean.shape(0); }
};

class monte_carlo_sketch {
public:
    static constexpr checkpoint::state_kind kind = checkpoint::state_kind::monte_carlo_sketch;

    // Throws std::invalid_argument for an empty or non-finite Ω, draws = 0, sizes that overflow.
    monte_carlo_sketch(monte_carlo_sketch_options options, corrupt_fn corrupt);

    // Corrupts the batch S times (the exact route's keys) and adds xᵀ (x' Ω) and either x'ᵀ (x' Ω),
    // x'ᵀ (x Ω) (ranges) or (x' Ω)ᵀ (x' Ω) per draw. first_row defaults to n(). Strong guarantee: a
    // bad batch or a failing corruption (throws, changes the shape, non-finite output) leaves the
    // state as it was.
    void update(const batch_view& x);
    void update(const batch_view& x, std::uint64_t first_row);
    // update() in two steps, for a caller that must refuse a batch before any of its parts
    // changes (the CLI's and Python's verified routes): prepare() does all that can fail (reads
    // and checks the batch, runs every corruption) and changes nothing; commit() adds the sums
    // in place and cannot fail, except std::logic_error (before any change) for a batch that was
    // not prepared by this state at its current batch count.
    monte_carlo_batch prepare(const batch_view& x, std::uint64_t first_row) const;
    void commit(const monte_carlo_batch& b);

    // Sums; another Ω (bit for bit), draws, seed or name throws std::invalid_argument before
    // any change. Merging an empty state is a no-op.
    void merge(const monte_carlo_sketch& other);

    void save(std::ostream& os) const { checkpoint::save_state(os, *this); }
    // The corruption is code, not state: give it again (without one, update throws std::logic_error).
    static monte_carlo_sketch load(std::istream& is, corrupt_fn corrupt = {});
    void set_corrupter(corrupt_fn corrupt) { corrupt_ = std::move(corrupt); }

    std::uint64_t n() const noexcept { return n_; }
    std::uint64_t batches() const noexcept { return batches_; }
    std::size_t dim() const noexcept { return options_.test.shape(0); }
    std::size_t columns() const noexcept { return options_.test.shape(1); }
    std::uint64_t aux_dim() const noexcept { return columns(); }
    bool empty() const noexcept { return n_ == 0; }
    const monte_carlo_sketch_options& options() const noexcept { return options_; }
    std::uint64_t config_hash() const;

    monte_carlo_products products() const;

    // The checkpoint payload, defined in lib/align/monte_carlo_sketch_serial.cpp.
    template <class Archive>
    void save_payload(Archive& ar) const;
    template <class Archive>
    static monte_carlo_sketch load_payload(Archive& ar, checkpoint::budget& b);

private:
    void check_loaded() const;

    monte_carlo_sketch_options options_;
    corrupt_fn corrupt_;
    std::uint64_t n_ = 0, batches_ = 0;
    matrix_t g_, bs_, bs_t_;  // sums over draws (divided by S in products()); g_: Ωᵀ G Ω without ranges
};

// The Ritz space of a Monte-Carlo noise on a sketch route: an orthonormal basis of
// span(Q, G Ω, Bs Ω, Bsᵀ Ω) (Q: the clean sketch's orthonormal top basis, or that extended by
// other noises' subspaces), dependent columns left out (orthonormal_extension).
matrix_t monte_carlo_ritz_basis(const matrix_t& q, const monte_carlo_products& sketch);

// Theorem 3 restricted to span Q, exactly: `pass` is the verification pass on Q (clean
// restricted statistics, uncentered), `on_basis` the Monte-Carlo products with Ω = Q over the
// same rows (with or without ranges). The generalized eigenproblem (Qᵀ Bs Bsᵀ Q, Qᵀ G Q) gives V = Q W (G-orthonormal,
// descending μ) and the exact restricted statistics of V. Throws std::invalid_argument when
// Ω is not the pass's basis, the sample counts differ or the pass is centered.
ritz_denoising_result ritz_monte_carlo_denoising(const restricted_statistics& pass, const monte_carlo_products& on_basis,
                                                 double rel_tol = 1e-12);

}  // namespace recalign
