// Incremental refinement passes of the denoising sketch route (MATH.md §7, "Refining the
// denoising subspace" and "In the pass's coordinates"): after a verification pass on span Q,
// the next pass restarts on R = Q C (the sketch's U and every masking noise's Ritz vectors,
// all in span Q) and adds T, the preconditioned residuals (denoising_refinement). Everything
// about R is exact without reading the data (Sxx R = (Sxx Q) C, Rᵀ Sxx R = Cᵀ (Qᵀ Sxx Q) C,
// Rᵀ Sxy = Cᵀ Qᵀ Sxy), so the pass reads only T (about 64 directions per masking noise instead
// of the whole span), and complete_pass joins it to R (Rᵀ Sxx T = (Sxx R)ᵀ T, as `joined`).
// The stopping rule: the exact relative differences and normalised impacts (K <= 64) of the
// Ritz solutions on successive passes, compared (refinement_change), and the distance to the
// iteration's limit estimated from the last two changes (refinement_estimate).
#pragma once

#include <cstddef>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "recalign/align/alignment.hpp"
#include "recalign/align/noise.hpp"
#include "recalign/align/patch_blocks.hpp"
#include "recalign/align/restricted_moments.hpp"
#include "recalign/align/verified_memory.hpp"
#include "recalign/spectral/spectrum.hpp"

namespace recalign {

namespace io {
class row_spill;
}

// The next refinement pass before it reads anything: `known` holds the statistics of [R, T]
// as far as they are known: basis [R, T] (D x m), sv [Sxx R, 0] (D x m, the T columns filled
// by complete_pass), vsv, cross, gram and svsv of R (a x a, exact); `carried` = a.
struct refinement_pass {
    restricted_statistics known;
    std::size_t carried = 0;
    // While the pass reads T, known.sv waits on disk (known.sv_stored: after a restart from a
    // pass on disk, a view of the last pass's Sxx Q rotated as it is read), and known.basis may too
    // (spill(): io::row_spill, an unlinked file; a resumed checkpoint's pass is read into one):
    // nothing reads them until complete_pass. Copies of a spilled pass share its files (read only).
    std::shared_ptr<const io::row_spill> stored_basis;
    bool spilled() const noexcept { return stored_basis != nullptr; }
    std::size_t k() const noexcept;
    std::size_t dim() const noexcept;
    // T: the columns the pass reads (D x (m − a)).
    matrix_t fresh() const;
    // Moves known.basis and (unless it is there already) known.sv into unlinked files in `dir`
    // (2 D x m doubles out of memory; written whole, the matrices freed after): no-op when
    // spilled already. Throws file_error (no space in `dir`, ...) with the pass unchanged.
    void spill(const std::string& dir);
    // Reads known.basis back (the same bits); known.sv stays where it is (complete_pass reads it
    // a block of rows at a time; restricted_statistics::load_sv brings it back).
    void restore();
};

struct refinement_options {
    std::size_t rank = 0;                              // Ritz vectors kept per masking noise
    std::size_t count = denoising_refined_vectors;     // corrections per masking noise
    alignment_options alignment;                       // the measure of the stopping curves
};

struct refinement_step {
    refinement_pass next;  // empty when stopped
    bool stopped = false;  // estimate < refinement_stop
    double change = 0.0;   // refinement_change(before, curves, weights) (+inf without `before`)
    double estimate = 0.0; // refinement_estimate(previous_change, change)
    // The stopping curves of the pass it came from: for every masking noise, its relative
    // difference and normalised impact for K <= count (empty without labels); the change weighs
    // the impacts' by refinement_impact_weight.
    vector_t curves;
};

// WHICH directions of span Q a restart keeps, as coordinates C (m x a, orthonormal): the
// sketch's U (Q's first r columns), each masking noise's top `count` Ritz vectors (ritz[i]: its
// kept Ritz vectors' coordinates in Q, best first), the previous pass's top Ritz vectors (Q's
// columns r .. r + previous, laid out there by the last restart: LOBPCG's P block, span(x, x_prev)
// = span(x, x − x_prev), which stops the zig-zag of a restarted steepest descent), then the
// remaining Ritz vectors, in this order and orthonormalised in stages, so that C's first r +
// Σ min(count, kept) columns span exactly U and the tops (the next restart's P block).
// previous = 0: none (the first restart: Q is U and the sketched subspaces).
matrix_t restart_coordinates(std::size_t m, std::size_t r, const std::vector<matrix_t>& ritz, std::size_t count,
                             std::size_t previous);

// From a verification pass on span Q whose first r columns are the sketch's basis U (every
// basis of the denoising route starts with it): the Ritz vectors of each masking noise
// (min(rank, informative) of them) and their `count` corrections, then Sxx's own top `count`
// Ritz vectors and their exact residuals (clean_refinement: the clean curve every relative
// difference divides by is refined too); C = restart_coordinates (with `before`, the previous
// pass's tops too). Unless stopped, `pass` is consumed (its D x m basis and Sxx Q
// are freed as soon as R and Sxx R are formed; Sxx Q on disk stays there, next.known.sv_stored
// being a view of it that rotates its rows as they are read). `blocks[i]`: noise i's patch blocks (null: no refinement,
// Gaussian). With `before` (the previous pass's curves), `previous_change` (the change the
// previous restart measured; +inf or NaN: none) and an estimate below refinement_stop, nothing is
// built: `stopped`, and `pass` is left as it was (with its products) for the analyses. Throws
// std::invalid_argument for a pass that does not start with U, or of other data; file_error
// when a spill file cannot be made or read (every file is read or made before Q is consumed:
// `pass` is then as it was, strong guarantee; only an allocation failing after that, in R's
// orthonormal extension, would leave it consumed).
refinement_step denoising_restart(const spectrum& sketch, restricted_statistics& pass,
                                  const std::vector<noise_spec>& noises, const std::vector<const patch_blocks*>& blocks,
                                  const refinement_options& options, const vector_t* before = nullptr,
                                  double previous_change = std::numeric_limits<double>::infinity());

// The statistics of [R, T] from the pass on T alone (restricted_moments on next.fresh(), over
// the same rows and centering): the same numbers as joined(R's statistics, T's), with gram and
// svsv (products()) filled in, without a second D x m copy. A spilled `next`'s basis is read
// back; Sxx of [R, T] is then written to a new file beside its Sxx R (sv_stored; Sxx R read
// through the restart's view of the last Sxx Q, so the rotation is computed here): the restart
// (denoising_restart) and the analyses read it a block of rows at a time. Throws std::invalid_argument when
// `fresh` is not a pass on next.fresh() or of other data.
restricted_statistics complete_pass(refinement_pass&& next, restricted_statistics&& fresh);

// The largest absolute change between two passes' stopping curves (+inf when they differ in
// length or either is empty: no comparison, keep refining), each point's change times its weight
// when `weights` are given (one per point; throws std::invalid_argument otherwise).
double refinement_change(const vector_t& before, const vector_t& after, const vector_t* weights = nullptr);

// denoising_restart's weight of the normalised impacts' changes: each curve in units of its own
// accuracy target (the 1e-2 for the impact, 2e-3 for the relative differences, whose
// weight is 1), so the change and the estimate are in the relative differences' units.
constexpr double refinement_impact_weight = 2e-3 / 1e-2;

// An ESTIMATE of how far the stopping curves still are from where more passes would take them
// (MATH.md §7, "When the refinement stops"): with the last two changes c_prev, c and ρ = c / c_prev,
// the geometric tail c ρ / (1 − ρ), at least c; 0 when c = 0; +inf while it cannot be judged
// (fewer than two changes, either not finite, or ρ >= 1: the changes did not shrink). It does not
// include the method's own error (the approximate Ĝ and sketched residuals: where the passes
// settle is not the exact route's subspace; 1e-4 to 1.2e-3 measured at D = 3,072 and 12,288).
double refinement_estimate(double previous_change, double change);

// Refinement stops when refinement_estimate falls below this: a quarter of the 2e-3
// target, the rest left for the method's own error (MATH.md §7).
constexpr double refinement_stop = 5e-4;

}  // namespace recalign
