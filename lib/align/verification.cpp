#include "recalign/align/verification.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "nested.hpp"
#include "recalign/core/blas.hpp"
#include "recalign/spectral/eigen.hpp"

namespace recalign {

alignment_result basis_alignment(const restricted_statistics& s, const alignment_options& options) {
    if (!s.cross) throw std::invalid_argument("basis_alignment: the verification pass read no labels");
    if (!(options.rel_tol >= 0.0)) throw std::invalid_argument("basis_alignment: rel_tol must be >= 0");
    const std::size_t k = s.k();
    alignment_result r;
    r.measure = options.measure;
    r.center = s.center;
    r.n = s.n;
    r.dim = s.dim();
    r.classes = s.cross->sxy.shape(1);
    r.max_k = k;
    r.complete = k == s.dim();
    // MATH.md §2, general representation: the nested Cholesky of Vᵀ Sxx V and Vᵀ Sxy only.
    r.contributions = detail::restricted_fit_contributions(s.vsv, *s.cross, options.measure, options.rel_tol, r.skipped);
    r.normaliser = detail::measure_normaliser(*s.cross, options.measure, r.contributions);
    r.eigenvalues = xt::zeros<double>({k});
    for (std::size_t j = 0; j < k; ++j) {
        double norm = 0.0;
        for (std::size_t i = 0; i < s.dim(); ++i) norm += s.basis(i, j) * s.basis(i, j);
        r.eigenvalues(j) = norm > 0 ? s.vsv(j, j) / norm : 0.0;
    }
    r.curve = xt::zeros<double>({k});
    double acc = 0.0;
    for (std::size_t j = 0; j < k; ++j) {
        acc += r.contributions(j);
        r.curve(j) = measure_value(options.measure, r.normaliser > 0 ? acc / r.normaliser : 0.0);
    }
    return r;
}

ritz_denoising_result ritz_denoising(const restricted_statistics& s, const noise_spec& noise, const patch_blocks* blocks,
                                     double rel_tol) {
    const std::size_t d = s.dim(), k = s.k();
    if (noise.draws > 0)
        throw std::invalid_argument("ritz_denoising: a Monte-Carlo noise has no closed form on span V");
    // Vᵀ Bs Bsᵀ V with Bs = q Sxx (Gaussian: q = 1): (Sxx V)ᵀ (Sxx V), exact from the pass.
    matrix_t a = xt::zeros<double>({k, k});
    blas::gemm_tn(k, k, d, 1.0, s.sv.data(), s.sv.data(), 0.0, a.data());
    matrix_t g;
    if (noise.family == noise_family::gaussian) {
        matrix_t vv = xt::zeros<double>({k, k});
        blas::gemm_tn(k, k, d, 1.0, s.basis.data(), s.basis.data(), 0.0, vv.data());
        const double shift = static_cast<double>(s.n) * noise.sigma * noise.sigma;
        g = s.vsv + shift * vv;
    } else {
        if (!blocks) throw std::invalid_argument("ritz_denoising: patch masking needs the exact patch blocks");
        if (blocks->dim() != d || blocks->n() != s.n)
            throw std::invalid_argument("ritz_denoising: the patch blocks (D = " + std::to_string(blocks->dim()) + ", n = " +
                                        std::to_string(blocks->n()) + ") are not of this data (D = " +
                                        std::to_string(d) + ", n = " + std::to_string(s.n) + ")");
        const keep_probabilities keep = blocks->coefficients(noise);
        a *= keep.q * keep.q;
        g = keep.k_diff * s.vsv + (keep.k_same - keep.k_diff) * blocks->restrict_to(s.basis, s.center);
    }
    generalized_options o;
    o.rel_tol = rel_tol;
    const generalized_result e = generalized_eigen(a, g, o);
    ritz_denoising_result out;
    denoising_subspace_result& sub = out.subspace;
    sub.status = solver_status_of(e.info);
    sub.eigenvalues = e.values;
    sub.rank_g = e.rank_b;
    sub.dropped = e.dropped;
    const double top = e.values.size() ? std::max(e.values(0), 0.0) : 0.0;
    while (sub.informative < e.values.size() && e.values(sub.informative) > rel_tol * top) ++sub.informative;
    out.refined = s.rotated(e.vectors);
    sub.basis = out.refined.basis;
    return out;
}

}  // namespace recalign
