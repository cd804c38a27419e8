#include "recalign/spectral/statistics.hpp"

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "recalign/sketch/frequent_directions.hpp"
#include "recalign/sketch/nystrom_sketch.hpp"
#include "recalign/spectral/eigen.hpp"
#include "recalign/stats/class_moments.hpp"

namespace recalign {

const char* statistic_name(statistic s) {
    switch (s) {
        case statistic::full_spectrum: return "the complete spectrum of Sxx (all D eigenpairs)";
        case statistic::second_moment: return "the D x D second moment Sxx";
        case statistic::targets: return "the label statistics Sxy and Syy";
    }
    return "unknown statistic";
}

const char* analysis_name(analysis a) {
    switch (a) {
        case analysis::spectrum: return "spectrum";
        case analysis::alignment: return "alignment";
        case analysis::projection: return "projection";
        case analysis::tradeoff: return "tradeoff";
        case analysis::denoising: return "denoising";
        case analysis::noise_impact: return "noise impact";
    }
    return "unknown analysis";
}

bool route_provides(route r, statistic s, bool labels) {
    switch (s) {
        case statistic::targets: return labels;
        case statistic::full_spectrum:
        case statistic::second_moment: return r == route::exact;
    }
    return false;
}

namespace {
// What each analysis reads beyond the top eigenpairs (MATH.md §2–§5). The trade-off whitens
// with every eigenpair of Sxx (§3); denoising needs G and Bs, functions of the whole Sxx (§4),
// and measures V* with the complete clean spectrum; the noise impact compares V* with U_K
// for every K (§4). Alignment, spectrum and projections work on any top-k spectrum.
std::vector<statistic> needs(analysis a) {
    switch (a) {
        case analysis::spectrum:
        case analysis::projection: return {};
        case analysis::alignment: return {statistic::targets};
        case analysis::tradeoff: return {statistic::targets, statistic::full_spectrum};
        case analysis::denoising: return {statistic::targets, statistic::full_spectrum, statistic::second_moment};
        case analysis::noise_impact: return {statistic::full_spectrum, statistic::second_moment};
    }
    return {};
}

std::string way_out(statistic s) {
    return s == statistic::targets ? "accumulate the labels (--labels)"
                                   : "only the exact route (D x D moments, --method exact) provides it; a sketch holds "
                                     "its top eigenpairs only";
}
}  // namespace

void check_route(route r, analysis a, bool labels) {
    for (statistic s : needs(a))
        if (!route_provides(r, s, labels))
            throw std::invalid_argument(std::string(analysis_name(a)) + " needs " + statistic_name(s) + ", which " +
                                        (s == statistic::targets ? std::string("a run without labels")
                                                                 : std::string("the ") + route_name(r) + " route") +
                                        " does not provide: " + way_out(s));
}

bool statistics::provides(statistic s) const noexcept {
    switch (s) {
        case statistic::full_spectrum: return spec.complete();
        case statistic::second_moment: return second_moment.has_value();
        case statistic::targets: return cross.has_value();
    }
    return false;
}

void statistics::require(statistic s, const std::string& who) const {
    if (!provides(s))
        throw std::invalid_argument(who + " needs " + statistic_name(s) + ", which these statistics (" +
                                    route_name(method) + " route, " + std::to_string(spec.rank()) + " of " +
                                    std::to_string(dim) + " eigenpairs) do not hold: " + way_out(s));
}

const matrix_t& statistics::sxx(const std::string& who) const {
    require(statistic::second_moment, who);
    return *second_moment;
}

const cross_moments& statistics::targets(const std::string& who) const {
    require(statistic::targets, who);
    return *cross;
}

statistics make_statistics(spectrum spec, vector_t mean, std::optional<cross_moments> cross,
                           std::optional<matrix_t> second_moment) {
    const std::size_t d = spec.dim;
    auto refuse = [](const std::string& why) { throw std::invalid_argument("make_statistics: " + why); };
    if (spec.basis.shape(0) != d || spec.basis.shape(1) != spec.rank())
        refuse("the spectrum's basis is not " + std::to_string(d) + " x " + std::to_string(spec.rank()));
    if (mean.size() != d) refuse("the mean has " + std::to_string(mean.size()) + " entries, not D = " + std::to_string(d));
    if (cross) {
        // (Raw targets under centered inputs come only from with_raw_targets, which knows that
        // its Sxy is the centered one; here an uncentered Sxy could not be told from it.)
        if (cross->center != spec.center)
            refuse(std::string("the spectrum is ") + centering_name(spec.center) + " but the cross statistics are " +
                   centering_name(cross->center));
        if (cross->n != spec.n)
            refuse("the cross statistics cover " + std::to_string(cross->n) + " samples, the spectrum " +
                   std::to_string(spec.n));
        const std::size_t c = cross->sxy.shape(1);
        const bool syy_ok = cross->one_hot() ? cross->class_counts.size() == c
                                             : cross->syy.shape(0) == c && cross->syy.shape(1) == c;
        if (cross->sxy.shape(0) != d || !syy_ok)
            refuse("Sxy must be D x C and Syy C x C (or C class counts) with D = " + std::to_string(d));
    }
    if (second_moment && (second_moment->shape(0) != d || second_moment->shape(1) != d))
        refuse("the second moment is not " + std::to_string(d) + " x " + std::to_string(d));
    statistics s;
    s.method = spec.method;
    s.center = spec.center;
    s.n = spec.n;
    s.dim = d;
    s.spec = std::move(spec);
    s.mean = std::move(mean);
    s.cross = std::move(cross);
    s.second_moment = std::move(second_moment);
    return s;
}

statistics finish(const moment_accumulator& m, centering c) { return finish(m, c, exact_finish_options{}); }

statistics finish(const moment_accumulator& m, centering c, std::size_t top) {
    exact_finish_options o;
    o.top = top;
    return finish(m, c, o);
}

namespace {
// The finish of the exact route on Sxx (consumed), with the accumulator's other parts read
// before: one eigendecomposition kept beside Sxx or done in its storage.
statistics finish_exact(matrix_t sxx_in, spectrum s, vector_t mean, std::optional<cross_moments> cross,
                        const exact_finish_options& options) {
    const std::size_t k = options.top == 0 ? s.dim : options.top;
    std::optional<matrix_t> sxx(std::move(sxx_in));
    eigen_result e;
    if (!options.second_moment) {
        e = sym_eigen_consuming(std::move(*sxx), k, options.solver);  // the eigenvectors in its storage (dsyevd)
        sxx.reset();
    } else {
        e = k == s.dim ? sym_eigen_in_place(*sxx, options.solver) : sym_eigen_top_in_place(*sxx, k);
    }
    s.status = solver_status_of(e.info);
    s.eigenvalues = std::move(e.values);
    s.basis = std::move(e.vectors);
    s.explained = explained_fractions(s.eigenvalues, s.total);
    clip_negative_eigenvalues(s);
    return make_statistics(std::move(s), std::move(mean), std::move(cross), std::move(sxx));
}

// Everything of `m` but Sxx, read before Sxx is formed (or taken).
spectrum exact_meta(const moment_accumulator& m, centering c, const exact_finish_options& options) {
    if (options.top > m.dim())
        throw std::invalid_argument("finish: " + std::to_string(options.top) + " eigenpairs asked of D = " +
                                    std::to_string(m.dim()));
    spectrum s;
    s.method = route::exact;
    s.center = c;
    s.n = m.n();
    s.dim = m.dim();
    s.total = m.trace_xx(c);
    return s;
}
}  // namespace

statistics finish(const moment_accumulator& m, centering c, const exact_finish_options& options) {
    // One eigendecomposition of one copy of Sxx, kept beside it: every analysis of this state
    // reads these two matrices, none recomputes them. The solver works inside that copy.
    spectrum s = exact_meta(m, c, options);
    std::optional<cross_moments> cross;
    if (m.has_targets()) cross = m.cross(c);
    return finish_exact(m.sxx(c), std::move(s), m.mean_x(), std::move(cross), options);
}

exact_parts release_exact(moment_accumulator&& m, centering c, const exact_finish_options& options) {
    exact_parts p;
    p.meta = exact_meta(m, c, options);
    if (m.has_targets()) p.cross = m.cross(c);
    p.mean = m.mean_x();
    p.sxx = std::move(m).release_sxx(c);
    return p;
}

statistics finish(exact_parts&& p, const exact_finish_options& options) {
    return finish_exact(std::move(p.sxx), std::move(p.meta), std::move(p.mean), std::move(p.cross), options);
}

statistics finish(moment_accumulator&& m, centering c, const exact_finish_options& options) {
    return finish(release_exact(std::move(m), c, options), options);
}

statistics finish(const moment_accumulator& m, centering inputs, centering targets) {
    return finish(m, inputs, targets, exact_finish_options{});
}

statistics finish(const moment_accumulator& m, centering inputs, centering targets, const exact_finish_options& options) {
    if (inputs == targets) return finish(m, inputs, options);
    if (inputs == centering::uncentered)
        throw std::invalid_argument("finish: centering the targets but not the inputs is not supported");
    return with_raw_targets(finish(m, centering::centered, options), m.has_targets() ? m.syy(centering::uncentered) : matrix_t());
}

statistics with_raw_targets(statistics s, const matrix_t& raw_syy) {
    if (s.center != centering::centered)
        throw std::invalid_argument("with_raw_targets: the statistics are not centered");
    if (!s.cross || s.cross->center == centering::uncentered) return s;
    cross_moments& c = *s.cross;
    if (!c.one_hot()) {
        if (raw_syy.shape(0) != c.classes() || raw_syy.shape(1) != c.classes())
            throw std::invalid_argument("with_raw_targets: dense targets need their raw C x C Syy");
        c.syy = raw_syy;
    }
    c.center = centering::uncentered;  // Syy = diag(n_c) for one-hot targets (MATH.md §1)
    return s;
}

double global_std(const statistics& s) {
    double tr = s.spec.total;  // trace in s.center, exact on every route
    if (s.center == centering::uncentered)
        for (double m : s.mean) tr -= static_cast<double>(s.n) * m * m;
    const double values = static_cast<double>(s.n) * static_cast<double>(s.dim);
    return values > 0 && tr > 0 ? std::sqrt(tr / values) : 0.0;
}

statistics standardize_global(statistics s) {
    const double sigma = global_std(s);
    if (!(sigma > 0)) throw std::invalid_argument("standardize_global: the inputs have no variance");
    const double a = 1.0 / sigma, a2 = a * a;
    s.spec.eigenvalues *= a2;
    s.spec.total *= a2;
    s.spec.error_bound *= a2;
    s.spec.error_estimate *= a2;
    s.mean *= a;
    if (s.second_moment) *s.second_moment *= a2;
    if (s.cross) s.cross->sxy *= a;
    return s;
}

namespace {
void check_labels(const spectrum& spec, const class_moments& labels) {
    if (labels.dim() != spec.dim)
        throw std::invalid_argument("finish: the label statistics have D = " + std::to_string(labels.dim()) +
                                    ", the sketch " + std::to_string(spec.dim));
    if (labels.n() != spec.n)
        throw std::invalid_argument("finish: the label statistics cover " + std::to_string(labels.n()) +
                                    " samples, the sketch " + std::to_string(spec.n));
}

// A sketch's spectrum and mean with the label statistics of the same rows, when given.
statistics from_sketch(spectrum spec, vector_t mean, const class_moments* labels) {
    clip_negative_eigenvalues(spec);
    std::optional<cross_moments> cross;
    if (labels) {
        check_labels(spec, *labels);
        cross = labels->cross(spec.center);
    }
    return make_statistics(std::move(spec), std::move(mean), std::move(cross));
}

// The same with the label statistics consumed (class_moments::cross &&): checked before.
statistics from_sketch(spectrum spec, vector_t mean, class_moments&& labels) {
    clip_negative_eigenvalues(spec);
    check_labels(spec, labels);
    cross_moments cross = std::move(labels).cross(spec.center);
    return make_statistics(std::move(spec), std::move(mean), std::move(cross));
}
}  // namespace

statistics finish(const frequent_directions& fd, const class_moments* labels, const sketch_finish_options& options) {
    frequent_directions_spectrum_options o;
    o.rank = options.rank;
    return from_sketch(frequent_directions_spectrum(fd, o), fd.mean(), labels);
}

statistics finish(const nystrom_sketch& sketch, const class_moments* labels, const sketch_finish_options& options) {
    nystrom_spectrum_options o;
    o.rank = options.rank;
    return from_sketch(nystrom_spectrum(sketch, o), sketch.mean(), labels);
}

statistics finish(const frequent_directions& fd, class_moments&& labels, const sketch_finish_options& options) {
    frequent_directions_spectrum_options o;
    o.rank = options.rank;
    return from_sketch(frequent_directions_spectrum(fd, o), fd.mean(), std::move(labels));
}

statistics finish(const nystrom_sketch& sketch, class_moments&& labels, const sketch_finish_options& options) {
    nystrom_spectrum_options o;
    o.rank = options.rank;
    return from_sketch(nystrom_spectrum(sketch, o), sketch.mean(), std::move(labels));
}

}  // namespace recalign
