#include "recalign/align/tradeoff.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "recalign/core/blas.hpp"
#include "recalign/spectral/eigen.hpp"

namespace recalign {

namespace {
// The top k <= C eigenpairs of H(0) = F Fᵀ (F: the first r rows of `f`, r x C, r >= C), a matrix
// of rank <= C: F's left singular vectors and squared singular values (a thin SVD, O(r C²)),
// instead of a dense r x r eigensolve. Signs as sym_eigen's.
eigen_result top_of_gram(const matrix_t& f, std::size_t r, std::size_t c, std::size_t k) {
    matrix_t a = xt::view(f, xt::range(0, r), xt::all());
    matrix_t u = matrix_t::from_shape({r, c}), vt = matrix_t::from_shape({c, c});
    vector_t s = xt::zeros<double>({c});
    eigen_result out;
    out.info = blas::gesdd_thin(r, c, a.data(), s.data(), u.data(), vt.data());
    out.values = xt::zeros<double>({k});
    for (std::size_t j = 0; j < k; ++j) out.values(j) = s(j) * s(j);
    out.vectors = xt::view(u, xt::all(), xt::range(0, k));
    fix_signs(out.vectors);
    return out;
}
}  // namespace

tradeoff_result tradeoff(const statistics& stats, const tradeoff_options& options) {
    const cross_moments& cross = stats.targets("tradeoff");
    stats.require(statistic::full_spectrum, "tradeoff");
    const std::size_t d = stats.dim, c = stats.classes();
    if (options.k == 0 || options.k > d)
        throw std::invalid_argument("tradeoff: K = " + std::to_string(options.k) + " must be in [1, " +
                                    std::to_string(d) + "]");
    if (!(options.rel_tol >= 0.0)) throw std::invalid_argument("tradeoff: rel_tol must be >= 0");
    for (double l : options.lambdas)
        if (!(l >= 0.0) || !std::isfinite(l))
            throw std::invalid_argument("tradeoff: lambda = " + std::to_string(l) + " must be finite and >= 0");

    const matrix_t& sxy = cross.sxy;
    tradeoff_result res;
    res.center = stats.center;
    res.n = stats.n;
    res.dim = d;
    res.classes = c;

    // Sxx = P D Pᵀ, the statistics' own; MATH.md §3: F = D^{-1/2} Pᵀ Sxy, H(λ) = F Fᵀ + λ D.
    // Memory beyond the statistics: H (r x r) and a few D x max(K, C) blocks; the whitened
    // and half-whitened bases P D^{∓1/2} are never formed (the scalings act on the small
    // factors, and P_r is applied as P with zero rows beyond r).
    const vector_t& values = stats.spec.eigenvalues;
    const matrix_t& basis = stats.spec.basis;  // D x D
    res.status = stats.spec.status;
    const double cut = options.rel_tol * std::max(values(0), 0.0);
    std::size_t r = 0;
    while (r < d && values(r) > cut) ++r;
    res.rank_xx = r;
    res.dropped = d - r;
    const std::size_t k = std::min(options.k, r);
    res.k = k;
    matrix_t f = xt::zeros<double>({d, c});  // rows < r: F; the rest unused
    blas::gemm_tn(d, c, d, 1.0, basis.data(), sxy.data(), 0.0, f.data());
    for (std::size_t j = 0; j < r; ++j) {
        const double s = 1.0 / std::sqrt(values(j));
        for (std::size_t i = 0; i < c; ++i) f(j, i) *= s;
    }
    const double tr_yy = cross.syy_trace();
    const double tr_xx = stats.spec.total;  // tr(Sxx), tracked exactly by the accumulator

    matrix_t h = xt::zeros<double>({r, r});
    matrix_t scaled = xt::zeros<double>({d, k});  // D_r^{∓1/2} Q, zero below row r
    for (double lambda : options.lambdas) {
        tradeoff_point p;
        p.lambda = lambda;
        const eigen_result eh = lambda == 0.0 && k <= c && c <= r ? top_of_gram(f, r, c, k) : [&] {
            blas::syrk_nt(r, c, 1.0, f.data(), 0.0, h.data());  // upper triangle: all the solver reads
            for (std::size_t j = 0; j < r; ++j) h(j, j) += lambda * values(j);
            return k < r ? sym_eigen_top_in_place(h, k) : sym_eigen_in_place(h, options.solver);
        }();
        p.status = solver_status_of(eh.info);
        const matrix_t& q = eh.vectors;  // r x k
        p.eigenvalues = eh.values;
        // V* = P_r D_r^{-1/2} Q.
        for (std::size_t i = 0; i < r; ++i) {
            const double s = 1.0 / std::sqrt(values(i));
            for (std::size_t j = 0; j < k; ++j) scaled(i, j) = q(i, j) * s;
        }
        p.v = xt::zeros<double>({d, k});
        blas::gemm_nn(d, k, d, 1.0, basis.data(), scaled.data(), 0.0, p.v.data());
        // M = V*ᵀ Sxx V* = Qᵀ Q = I (whitening), so W* = V*ᵀ Sxy = Qᵀ F and Z* = V*ᵀ Sxx = Qᵀ D^{1/2} Pᵀ:
        // Eqs. (5), (6) without an inverse.
        p.w = xt::zeros<double>({k, c});
        blas::gemm_tn(k, c, r, 1.0, q.data(), f.data(), 0.0, p.w.data());
        for (std::size_t i = 0; i < r; ++i) {
            const double s = std::sqrt(values(i));
            for (std::size_t j = 0; j < k; ++j) scaled(i, j) = q(i, j) * s;
        }
        matrix_t zt = xt::zeros<double>({d, k});  // Z*ᵀ = P_r D_r^{1/2} Q
        blas::gemm_nn(d, k, d, 1.0, basis.data(), scaled.data(), 0.0, zt.data());
        p.z = xt::transpose(zt);
        double fit_y = 0.0, fit_x = 0.0;
        for (double v : p.w) fit_y += v * v;
        for (double v : p.z) fit_x += v * v;
        p.supervised_loss = tr_yy - fit_y;
        p.reconstruction_loss = tr_xx - fit_x;
        p.loss = p.supervised_loss + lambda * p.reconstruction_loss;
        res.points.push_back(std::move(p));
    }
    return res;
}

}  // namespace recalign
