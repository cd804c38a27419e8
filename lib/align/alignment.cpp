#include "recalign/align/alignment.hpp"

#include <cmath>
#include <stdexcept>

#include "recalign/core/blas.hpp"

namespace recalign {

const char* measure_name(alignment_measure m) {
    switch (m) {
        case alignment_measure::paper: return "paper";
        case alignment_measure::rank: return "rank";
        case alignment_measure::fit: return "fit";
        case alignment_measure::published: return "published";
    }
    return "unknown";
}

alignment_measure parse_measure(const std::string& s) {
    if (s == "paper") return alignment_measure::paper;
    if (s == "rank") return alignment_measure::rank;
    if (s == "fit") return alignment_measure::fit;
    if (s == "published") return alignment_measure::published;
    throw std::invalid_argument("unknown alignment measure '" + s + "' (expected paper, rank, fit or published)");
}

double measure_value(alignment_measure m, double fraction) {
    // MATH.md §8: 100·√(Σ_{j<=K} ‖Y Yᵀ q_j‖² / Σ_j ‖Y Yᵀ q_j‖²).
    return m == alignment_measure::published ? 100.0 * std::sqrt(std::max(fraction, 0.0)) : fraction;
}

alignment_result alignment_curve(const statistics& stats, const alignment_options& options) {
    const cross_moments& cross = stats.targets("alignment_curve");
    const spectrum& s = stats.spec;  // make_statistics checked that the two agree
    const std::size_t d = s.dim, k = s.rank();
    if (!(options.rel_tol >= 0.0)) throw std::invalid_argument("alignment_curve: rel_tol must be >= 0");
    const std::size_t c = cross.sxy.shape(1);
    alignment_result r;
    r.measure = options.measure;
    r.center = s.center;
    r.method = s.method;
    r.n = s.n;
    r.dim = d;
    r.classes = c;
    r.max_k = k;
    r.complete = k == d;
    r.eigenvalues = s.eigenvalues;
    r.contributions = xt::zeros<double>({k});
    r.curve = xt::zeros<double>({k});
    if (k == 0) return r;

    // a_i = Sxyᵀ u_i for all i at once: A = Uᵀ Sxy (k x C).  MATH.md §2.
    matrix_t a = xt::zeros<double>({k, c});
    blas::gemm_tn(k, c, d, 1.0, s.basis.data(), cross.sxy.data(), 0.0, a.data());
    const matrix_t as = options.measure != alignment_measure::fit ? cross.times_syy(a) : matrix_t(xt::zeros<double>({k, c}));

    const double cut = options.rel_tol * std::max(s.eigenvalues(0), 0.0);
    for (std::size_t i = 0; i < k; ++i) {
        const double lam = s.eigenvalues(i);
        if (!(lam > cut)) {
            ++r.skipped;
            continue;
        }
        double q = 0.0;
        for (std::size_t j = 0; j < c; ++j)
            q += a(i, j) * (options.measure == alignment_measure::fit ? a(i, j) : as(i, j));
        r.contributions(i) = q / lam;
    }
    switch (options.measure) {
        case alignment_measure::paper: {
            r.normaliser = cross.syy_frobenius2();
            break;
        }
        case alignment_measure::fit: {
            r.normaliser = cross.syy_trace();
            break;
        }
        case alignment_measure::rank:
        case alignment_measure::published: {
            double t = 0.0;
            for (double v : r.contributions) t += v;
            r.normaliser = t;
            break;
        }
    }
    double acc = 0.0;
    for (std::size_t i = 0; i < k; ++i) {
        acc += r.contributions(i);
        r.curve(i) = measure_value(options.measure, r.normaliser > 0 ? acc / r.normaliser : 0.0);
    }
    return r;
}

}  // namespace recalign
