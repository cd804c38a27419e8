#include "recalign/align/verification.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "nested.hpp"
#include "recalign/align/sketch_denoising.hpp"
#include "recalign/core/blas.hpp"
#include "recalign/spectral/eigen.hpp"

// The trade-off's verification passes at high D (MATH.md §7, Theorem 1 on a sketch): the
// preconditioned Galerkin residual and the Ritz basis of the next pass.
namespace recalign {

matrix_t sketch_preconditioned(const spectrum& sk, const vector_t& diagonal, const matrix_t& b) {
    const std::size_t d = sk.dim, r = sk.rank(), c = b.shape(1);
    if (diagonal.size() != d || b.shape(0) != d)
        throw std::invalid_argument("sketch_preconditioned: the diagonal or B is not of dimension " + std::to_string(d));
    double mean = 0.0;
    for (double v : diagonal) mean += std::max(v, 0.0);
    mean = d ? mean / static_cast<double>(d) : 0.0;
    const double floor = std::max(1e-10 * mean, std::numeric_limits<double>::min());
    vector_t einv = xt::zeros<double>({d});
    for (std::size_t i = 0; i < d; ++i) {
        double low = 0.0;
        for (std::size_t j = 0; j < r; ++j) low += sk.basis(i, j) * sk.basis(i, j) * std::max(sk.eigenvalues(j), 0.0);
        einv(i) = 1.0 / std::max(diagonal(i) - low, floor);
    }
    matrix_t f = b, eu = sk.basis;  // E⁻¹ B, E⁻¹ U
    for (std::size_t i = 0; i < d; ++i) {
        for (std::size_t j = 0; j < c; ++j) f(i, j) *= einv(i);
        for (std::size_t j = 0; j < r; ++j) eu(i, j) *= einv(i);
    }
    if (r == 0) return f;
    // M = Λ⁻¹ + Uᵀ E⁻¹ U (directions with λ <= 0 left out: Λ⁻¹ infinite).
    matrix_t m = xt::zeros<double>({r, r});
    blas::gemm_tn(r, r, d, 1.0, sk.basis.data(), eu.data(), 0.0, m.data());
    for (std::size_t j = 0; j < r; ++j) m(j, j) += sk.eigenvalues(j) > 0 ? 1.0 / sk.eigenvalues(j) : 1e300;
    const eigen_result e = sym_eigen(m);
    matrix_t y = xt::zeros<double>({r, c}), py = xt::zeros<double>({r, c}), z = xt::zeros<double>({r, c});
    blas::gemm_tn(r, c, d, 1.0, sk.basis.data(), f.data(), 0.0, y.data());       // Uᵀ E⁻¹ B
    blas::gemm_tn(r, c, r, 1.0, e.vectors.data(), y.data(), 0.0, py.data());     // Pᵀ Y
    for (std::size_t i = 0; i < r; ++i)
        for (std::size_t j = 0; j < c; ++j) py(i, j) /= e.values(i);
    blas::gemm_nn(r, c, r, 1.0, e.vectors.data(), py.data(), 0.0, z.data());     // M⁻¹ Y
    blas::gemm_nn(d, c, r, -1.0, eu.data(), z.data(), 1.0, f.data());            // E⁻¹B − E⁻¹U M⁻¹ Y
    return f;
}

matrix_t sketch_preconditioned(const spectrum& sk, const patch_blocks& blocks, const matrix_t& b) {
    const std::size_t d = sk.dim, r = sk.rank(), c = b.shape(1);
    if (blocks.dim() != d || b.shape(0) != d)
        throw std::invalid_argument("sketch_preconditioned: the blocks or B are not of dimension " + std::to_string(d));
    if (blocks.n() != sk.n)
        throw std::invalid_argument("sketch_preconditioned: the blocks cover " + std::to_string(blocks.n()) +
                                    " samples, the sketch " + std::to_string(sk.n));
    // E_b = Bd_b − U_b Λ U_bᵀ per block, inverted through its eigenvalues floored at 1e-10 times
    // the mean of diag(Sxx) (E ⪰ 0 when U Λ Uᵀ ⪯ Sxx; rounding and FD's bias otherwise).
    double mean = 0.0;
    for (std::size_t i = 0; i < blocks.blocks(); ++i) {
        const matrix_t bd = blocks.block(i, sk.center);
        for (std::size_t j = 0; j < bd.shape(0); ++j) mean += std::max(bd(j, j), 0.0);
    }
    mean = d ? mean / static_cast<double>(d) : 0.0;
    const double floor = std::max(1e-10 * mean, std::numeric_limits<double>::min());
    const std::size_t w = r + c;
    matrix_t out = xt::zeros<double>({d, w});  // [E⁻¹ U, E⁻¹ B]
    for (std::size_t i = 0; i < blocks.blocks(); ++i) {
        const std::vector<std::size_t>& idx = blocks.indices(i);
        const std::size_t sb = idx.size();
        matrix_t e = blocks.block(i, sk.center), ub = xt::zeros<double>({sb, r}), rhs = xt::zeros<double>({sb, w});
        for (std::size_t a = 0; a < sb; ++a) {
            for (std::size_t j = 0; j < r; ++j) rhs(a, j) = ub(a, j) = sk.basis(idx[a], j);
            for (std::size_t j = 0; j < c; ++j) rhs(a, r + j) = b(idx[a], j);
        }
        if (r > 0) {
            matrix_t ul = ub;
            for (std::size_t a = 0; a < sb; ++a)
                for (std::size_t j = 0; j < r; ++j) ul(a, j) *= std::max(sk.eigenvalues(j), 0.0);
            blas::gemm_nt(sb, sb, r, -1.0, ul.data(), ub.data(), 1.0, e.data());
        }
        const eigen_result eg = sym_eigen(e);
        matrix_t t = xt::zeros<double>({sb, w});
        blas::gemm_tn(sb, w, sb, 1.0, eg.vectors.data(), rhs.data(), 0.0, t.data());
        for (std::size_t a = 0; a < sb; ++a)
            for (std::size_t j = 0; j < w; ++j) t(a, j) /= std::max(eg.values(a), floor);
        blas::gemm_nn(sb, w, sb, 1.0, eg.vectors.data(), t.data(), 0.0, rhs.data());
        for (std::size_t a = 0; a < sb; ++a)
            for (std::size_t j = 0; j < w; ++j) out(idx[a], j) = rhs(a, j);
    }
    matrix_t f = xt::view(out, xt::all(), xt::range(r, w));
    if (r == 0) return f;
    matrix_t eu = xt::view(out, xt::all(), xt::range(0, r));
    out = matrix_t();
    // Ĝ⁻¹ B = E⁻¹B − E⁻¹U (Λ⁻¹ + Uᵀ E⁻¹ U)⁻¹ Uᵀ E⁻¹ B (Woodbury, as for the diagonal).
    matrix_t m = xt::zeros<double>({r, r});
    blas::gemm_tn(r, r, d, 1.0, sk.basis.data(), eu.data(), 0.0, m.data());
    for (std::size_t j = 0; j < r; ++j) m(j, j) += sk.eigenvalues(j) > 0 ? 1.0 / sk.eigenvalues(j) : 1e300;
    const eigen_result e = sym_eigen(m);
    matrix_t y = xt::zeros<double>({r, c}), py = xt::zeros<double>({r, c}), z = xt::zeros<double>({r, c});
    blas::gemm_tn(r, c, d, 1.0, sk.basis.data(), f.data(), 0.0, y.data());
    blas::gemm_tn(r, c, r, 1.0, e.vectors.data(), y.data(), 0.0, py.data());
    for (std::size_t i = 0; i < r; ++i)
        for (std::size_t j = 0; j < c; ++j) py(i, j) /= e.values(i);
    blas::gemm_nn(r, c, r, 1.0, e.vectors.data(), py.data(), 0.0, z.data());
    blas::gemm_nn(d, c, r, -1.0, eu.data(), z.data(), 1.0, f.data());
    return f;
}

tradeoff_residual tradeoff_galerkin_residual(const statistics& sketch, const restricted_statistics& pass) {
    const cross_moments& cross = sketch.targets("tradeoff_galerkin_residual");
    if (!pass.cross || pass.in_coordinates() || pass.dim() != sketch.dim || pass.n != sketch.n ||
        pass.center != sketch.center)
        throw std::invalid_argument("tradeoff_galerkin_residual: the pass is not a verification pass of these statistics");
    const std::size_t d = pass.dim(), m = pass.k(), c = cross.sxy.shape(1);
    // X = Q M⁺ Qᵀ Sxy, M = Qᵀ Sxx Q (directions below 1e-12 of its largest eigenvalue dropped).
    const eigen_result em = sym_eigen(pass.vsv);
    const double top = m ? std::max(em.values(0), 0.0) : 0.0;
    matrix_t pf = xt::zeros<double>({m, c}), coef = xt::zeros<double>({m, c});
    blas::gemm_tn(m, c, m, 1.0, em.vectors.data(), pass.cross->sxy.data(), 0.0, pf.data());
    for (std::size_t i = 0; i < m; ++i)
        for (std::size_t j = 0; j < c; ++j) pf(i, j) = em.values(i) > 1e-12 * top ? pf(i, j) / em.values(i) : 0.0;
    blas::gemm_nn(m, c, m, 1.0, em.vectors.data(), pf.data(), 0.0, coef.data());
    tradeoff_residual out;
    out.residual = cross.sxy;
    blas::gemm_nn(d, c, m, -1.0, pass.sv.data(), coef.data(), 1.0, out.residual.data());
    double rr = 0.0, bb = 0.0, fit = 0.0;
    for (std::size_t i = 0; i < m; ++i)
        for (std::size_t j = 0; j < c; ++j) fit += pass.cross->sxy(i, j) * coef(i, j);
    out.supervised_loss = pass.cross->syy_trace() - fit;
    for (double v : out.residual) rr += v * v;
    for (double v : cross.sxy) bb += v * v;
    out.relative = bb > 0 ? std::sqrt(rr / bb) : 0.0;
    return out;
}

namespace {
matrix_t tradeoff_basis(const statistics& sketch, const restricted_statistics* previous,
                        const std::function<matrix_t(const matrix_t&)>& precondition) {
    const cross_moments& cross = sketch.targets("tradeoff_ritz_basis");
    if (!previous) {
        matrix_t q = orthonormal_extension(sketch.spec.basis, cross.sxy);
        if (precondition) q = orthonormal_extension(q, precondition(cross.sxy));
        return q;
    }
    if (!previous->cross || previous->in_coordinates() || previous->dim() != sketch.dim || previous->n != sketch.n ||
        previous->center != sketch.center || previous->k() < sketch.spec.rank() ||
        xt::view(previous->basis, xt::all(), xt::range(0, sketch.spec.rank())) != sketch.spec.basis)
        throw std::invalid_argument(
            "tradeoff_ritz_basis: the previous pass is not a verification pass on span(U, Sxy, ...) of these statistics");
    // Sxx Sxy = (Sxx Q)(Qᵀ Sxy), exact since Sxy lies in span Q (after the second pass it adds
    // nothing and is left out as dependent).
    const std::size_t d = sketch.dim, m = previous->k(), c = cross.sxy.shape(1);
    matrix_t sxx_sxy = xt::zeros<double>({d, c});
    blas::gemm_nn(d, c, m, 1.0, previous->sv.data(), previous->cross->sxy.data(), 0.0, sxx_sxy.data());
    matrix_t q = orthonormal_extension(previous->basis, sxx_sxy);
    if (precondition) {
        // One block step of preconditioned CG on Sxx W = Sxy: the exact residual of the
        // Galerkin solution on span Q, preconditioned (MATH.md §7, "Trade-off").
        const tradeoff_residual res = tradeoff_galerkin_residual(sketch, *previous);
        q = orthonormal_extension(q, precondition(res.residual));
    }
    return q;
}
}  // namespace

matrix_t tradeoff_ritz_basis(const statistics& sketch, const restricted_statistics* previous, const vector_t* diagonal) {
    std::function<matrix_t(const matrix_t&)> pre;
    if (diagonal) pre = [&](const matrix_t& b) { return sketch_preconditioned(sketch.spec, *diagonal, b); };
    return tradeoff_basis(sketch, previous, pre);
}

matrix_t tradeoff_ritz_basis(const statistics& sketch, const restricted_statistics* previous, const patch_blocks& blocks) {
    return tradeoff_basis(sketch, previous,
                          [&](const matrix_t& b) { return sketch_preconditioned(sketch.spec, blocks, b); });
}

tradeoff_excess tradeoff_excess_estimate(const statistics& sketch, const patch_blocks& blocks,
                                         const restricted_statistics& pass) {
    const tradeoff_residual res = tradeoff_galerkin_residual(sketch, pass);
    const matrix_t z = sketch_preconditioned(sketch.spec, blocks, res.residual);
    double e = 0.0;
    for (std::size_t i = 0; i < z.size(); ++i) e += z.data()[i] * res.residual.data()[i];
    // A loss below 1e-8 of tr Syy is an exact fit (span Q holds the targets' least squares, as
    // when n <= D): relative to it, the ratio of two rounding-level numbers would decide the stop.
    const double floor = 1e-8 * pass.cross->syy_trace();
    return {res.relative, res.supervised_loss > 0 ? e / std::max(res.supervised_loss, floor) : 0.0};
}

}  // namespace recalign
