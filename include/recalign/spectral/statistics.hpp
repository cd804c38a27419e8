// Finished statistics: the one value every route (exact moments, Frequent Directions,
// Nyström) produces at the end of a run, and the only thing the analyses read
// (alignment_curve, tradeoff, denoising_alignment, noise_impact, subspace projections).
// Accumulators only accumulate; `finish` turns one into statistics once, so that several
// analyses of one state share one eigendecomposition and never ask which route made it.
//
// What a route cannot provide is known before any data is read: `check_route` refuses an
// analysis whose needs the route cannot meet, with the way out, so that a CLI or a Python
// estimator says so up front instead of after hours of reading (issue 12).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "recalign/core/xt.hpp"
#include "recalign/spectral/eigen.hpp"
#include "recalign/spectral/spectrum.hpp"
#include "recalign/stats/moments.hpp"

namespace recalign {

class class_moments;        // stats/class_moments.hpp
class frequent_directions;  // sketch/frequent_directions.hpp
class nystrom_sketch;       // sketch/nystrom_sketch.hpp

// What an analysis may need beyond the top eigenpairs that every route gives.
enum class statistic : std::uint8_t {
    full_spectrum = 1,  // all D eigenpairs of Sxx (exact route)
    second_moment = 2,  // the D x D matrix Sxx itself (exact route)
    targets = 3,        // Sxy and Syy (any route that read labels)
};
const char* statistic_name(statistic s);

// The analyses, for check_route.
enum class analysis : std::uint8_t { spectrum = 1, alignment = 2, projection = 3, tradeoff = 4, denoising = 5, noise_impact = 6 };
const char* analysis_name(analysis a);

// Whether a route can provide a statistic at all (targets: when labels are read).
bool route_provides(route r, statistic s, bool labels);
// Throws std::invalid_argument when route `r` (with or without labels) cannot serve analysis
// `a`, saying what the analysis needs and the way out. Call it before reading any data.
void check_route(route r, analysis a, bool labels);

struct statistics {
    route method = route::exact;
    centering center = centering::uncentered;
    std::uint64_t n = 0;
    std::size_t dim = 0;
    // Exact route: all D eigenpairs; a sketch: its top k, with its error information.
    spectrum spec;
    // Mean of the rows (length D), exact on every route.
    vector_t mean;
    // Sxx (D x D, symmetric, in `center`): exact route only.
    std::optional<matrix_t> second_moment;
    // Sxy (D x C) and Syy (C x C) in `center`: when labels (or dense targets) were accumulated.
    std::optional<cross_moments> cross;

    std::size_t classes() const noexcept { return cross ? cross->sxy.shape(1) : 0; }
    bool provides(statistic s) const noexcept;
    // Throws std::invalid_argument "<who> needs <statistic> ..." when this value lacks it.
    void require(statistic s, const std::string& who) const;
    const matrix_t& sxx(const std::string& who) const;
    const cross_moments& targets(const std::string& who) const;
};

// Assembles statistics from their parts (what finish() does for each route), checking that
// they describe one state: the same dimension, centering and sample count. For callers that
// hold a spectrum and cross statistics of their own (e.g. a reduction across processes).
// Throws std::invalid_argument naming the disagreement.
statistics make_statistics(spectrum spec, vector_t mean, std::optional<cross_moments> cross,
                           std::optional<matrix_t> second_moment = std::nullopt);

// Exact route: the full D x D second moment in centering c, its complete eigendecomposition,
// the mean and (when the accumulator holds targets) the cross statistics.
statistics finish(const moment_accumulator& m, centering c);
// The same with only the top `top` eigenpairs of Sxx (0 or D: all), through dsyevr's subset
// instead of a full decomposition; the analyses that need the complete spectrum then refuse.
statistics finish(const moment_accumulator& m, centering c, std::size_t top);

// Inputs and targets centered separately. The authors' published code (MATH.md §8) centers
// the inputs and leaves the one-hot targets raw: with centered inputs Sxy is the same either
// way (Σ (x − μ) = 0), so only Syy changes, and the cross statistics then say
// centering::uncentered while the spectrum says centered. (inputs, targets) = (uncentered,
// centered) is refused (std::invalid_argument); equal choices are finish(m, c).
statistics finish(const moment_accumulator& m, centering inputs, centering targets);
// The same change on statistics finished centered (any route): one-hot targets only need
// their class counts; dense targets need `raw_syy` (C x C, uncentered), else it throws.
statistics with_raw_targets(statistics s, const matrix_t& raw_syy = matrix_t());

// The authors' global standardisation (MATH.md §8): every input divided by one number σ, the
// standard deviation of all n·D values centered per coordinate, σ = √(tr(centered Sxx) / (n D)).
// Exact on finished statistics of any route: Sxx, its eigenvalues, total and error information
// scale by 1/σ², Sxy and the mean by 1/σ. Every alignment measure and mask noise is invariant
// to it; the λ trade-off and Gaussian noise are not. Throws std::invalid_argument when σ = 0.
double global_std(const statistics& s);
statistics standardize_global(statistics s);

struct exact_finish_options {
    std::size_t top = 0;        // eigenpairs to keep (0 or D: all)
    bool second_moment = true;  // keep Sxx in the statistics (denoising and noise impact read it)
    eigen_options solver;       // the memory the eigensolver may add (eigen.hpp: dsyevd or dsyevr)
};
// The general form of the two above. Memory beyond the accumulator at the peak, in D x D
// matrices: with dsyevr (top < D, or a solver allowance below dsyevd's 2 D²) two, Sxx and the
// eigenvectors (dsyevr works inside Sxx); with dsyevd four when Sxx is kept (Sxx, the
// eigenvectors, the workspace) and three when not (the eigenvectors replace Sxx in its
// storage). Without the second moment Sxx is released once decomposed.
statistics finish(const moment_accumulator& m, centering c, const exact_finish_options& options);
// The same consuming the accumulator (the end of a run): Sxx is formed in the accumulator's
// own storage (moment_accumulator::release_sxx), so one D x D matrix less at the peak: with
// dsyevd and without the second moment three in all (Sxx, then the eigenvectors in its
// storage, and dsyevd's 2 D² workspace), with dsyevr two. Results bitwise equal to finish(m, ...).
statistics finish(moment_accumulator&& m, centering c, const exact_finish_options& options);
// With the centerings of finish(m, inputs, targets).
statistics finish(const moment_accumulator& m, centering inputs, centering targets, const exact_finish_options& options);

// The same in two steps, for work that needs Sxx before its eigenvectors exist (the exact
// denoise solves its masking noises beside Sxx alone, then decomposes it in its storage):
// release_exact forms Sxx in the accumulator's storage and reads every other part;
// finish(exact_parts&&) decomposes it as finish(moment_accumulator&&) does (bitwise equal).
struct exact_parts {
    spectrum meta;  // everything of the spectrum but the decomposition
    vector_t mean;
    std::optional<cross_moments> cross;
    matrix_t sxx;
};
exact_parts release_exact(moment_accumulator&& m, centering c, const exact_finish_options& options = {});
statistics finish(exact_parts&& parts, const exact_finish_options& options);

struct sketch_finish_options {
    std::size_t rank = 0;  // eigenpairs to keep (0 = the sketch's own k)
};
// Sketch routes: the sketch's top eigenpairs (in the centering it was built with) with its
// error bound or estimate; Sxy and Syy from `labels` (per-class means, exact for one-hot
// targets) when given. Throws std::invalid_argument when `labels` is of another dimension or
// sample count than the sketch.
statistics finish(const frequent_directions& fd, const class_moments* labels, const sketch_finish_options& options = {});
statistics finish(const nystrom_sketch& sketch, const class_moments* labels, const sketch_finish_options& options = {});
// The same with `labels` consumed (class_moments::cross &&): its means are given back as Sxy is
// formed, so the two are not both resident. The same bits. A refused `labels` is left as it was.
statistics finish(const frequent_directions& fd, class_moments&& labels, const sketch_finish_options& options = {});
statistics finish(const nystrom_sketch& sketch, class_moments&& labels, const sketch_finish_options& options = {});

}  // namespace recalign
