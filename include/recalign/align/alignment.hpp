// Alignment between the reconstruction (top principal) subspace and a supervised task,
// from streaming statistics: MATH.md §2 (the paper's Eq. 7 and Section 6.8).
#pragma once

#include <cstdint>
#include <string>

#include "recalign/core/xt.hpp"
#include "recalign/spectral/statistics.hpp"

namespace recalign {

enum class alignment_measure : std::uint8_t {
    paper = 1,  // Σ_{i<=k} a_iᵀ Syy a_i / λ_i / ‖Syy‖_F²  (the paper's alignment_sweep)
    rank = 2,   // same numerator, normalised to reach 1 at the last available direction
    fit = 3,    // Σ_{i<=k} ‖a_i‖² / λ_i / tr(Syy): share of ‖Y‖² a linear probe on U_k explains
    // The authors' published code (MATH.md §8): the rank measure on the 0-100 square-root
    // scale, 100·√(rank fraction). Their pipeline centers the inputs and leaves the targets raw
    // (finish(m, centering::centered, centering::uncentered)).
    published = 4,
};
const char* measure_name(alignment_measure m);
// Parses "paper", "rank", "fit" or "published"; throws std::invalid_argument naming the bad value.
alignment_measure parse_measure(const std::string& s);
// The value a measure reports for a cumulative fraction f of its normaliser: f itself, or
// 100·√f for `published` (so relative differences of published curves are in that space).
double measure_value(alignment_measure m, double fraction);

struct alignment_options {
    alignment_measure measure = alignment_measure::paper;
    // Directions with λ_i <= rel_tol · λ_1 carry no reliable signal (rounding of the
    // eigensolver is ~1e-16 λ_1): they contribute 0 and are counted in `skipped`.
    double rel_tol = 1e-12;
};

struct alignment_result {
    alignment_measure measure = alignment_measure::paper;
    centering center = centering::uncentered;  // the statistics'
    route method = route::exact;  // route of the spectrum
    std::uint64_t n = 0;
    std::size_t dim = 0;
    std::size_t classes = 0;
    vector_t eigenvalues;    // descending, as used
    vector_t contributions;  // per direction, before normalising (0 where skipped)
    vector_t curve;          // element k-1 = alignment at k, for k = 1 .. max_k
    double normaliser = 0.0;
    std::size_t skipped = 0;  // directions under the tolerance
    std::size_t max_k = 0;    // directions available: dim (exact) or the sketch's rank
    // false when the spectrum holds only its top max_k < dim directions (a sketch): the curve
    // stops at max_k, and the `rank` measure is then normalised by what those directions hold
    // (it reaches 1 at max_k, not at the rank of X); `paper` and `fit` are exact prefixes.
    bool complete = true;
};

// All k in one sweep from finished statistics holding targets (any route: up to the rank of
// its spectrum; the centering is the statistics'). Each term divides by the spectrum's λ_i.
// A Frequent Directions spectrum underestimates every λ_i by up to its error_bound Δ, so its
// curve can overshoot the exact one where Δ is not small against λ_k (seen: 1.14 against an
// exact 0.99 with Δ ≈ λ_k); check s.spec.error_bound against the eigenvalues you read off.
alignment_result alignment_curve(const statistics& s, const alignment_options& options);

}  // namespace recalign
