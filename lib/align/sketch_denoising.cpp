#include "recalign/align/sketch_denoising.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "recalign/core/blas.hpp"
#include "recalign/spectral/eigen.hpp"

namespace recalign {

namespace {
const char* who = "sketched_denoising_subspace";

void refuse(const std::string& why) { throw std::invalid_argument(std::string(who) + ": " + why); }

// Corollary 3.1: G = Sxx + nσ²I shares the eigenvectors of Sxx; μ_i = λ_i² / (λ_i + nσ²),
// and v_i = u_i / √(λ_i + nσ²) is G-orthonormal.
denoising_subspace_result gaussian(const spectrum& s, double sigma, double rel_tol) {
    const std::size_t d = s.dim, r = s.rank();
    const double shift = static_cast<double>(s.n) * sigma * sigma;
    denoising_subspace_result out;
    out.status = s.status;
    out.rank_g = r;
    out.eigenvalues = xt::zeros<double>({r});
    out.basis = xt::zeros<double>({d, r});
    for (std::size_t j = 0; j < r; ++j) {
        const double lam = std::max(s.eigenvalues(j), 0.0), g = lam + shift;
        out.eigenvalues(j) = g > 0 ? lam * lam / g : 0.0;
        const double scale = g > 0 ? 1.0 / std::sqrt(g) : 0.0;
        for (std::size_t i = 0; i < d; ++i) out.basis(i, j) = s.basis(i, j) * scale;
    }
    // λ²/(λ + nσ²) is increasing in λ: the order of the spectrum is kept.
    const double top = r > 0 ? out.eigenvalues(0) : 0.0;
    while (out.informative < r && out.eigenvalues(out.informative) > rel_tol * top) ++out.informative;
    return out;
}
}  // namespace

denoising_subspace_result sketched_denoising_subspace(const spectrum& s, const noise_spec& noise,
                                                      const patch_blocks* blocks,
                                                      const sketch_denoising_options& options) {
    if (!(options.rel_tol >= 0.0)) refuse("rel_tol must be >= 0");
    if (noise.draws > 0) refuse("a Monte-Carlo noise has no closed form: sketch the corrupted samples instead");
    if (noise.family == noise_family::gaussian) return gaussian(s, noise.sigma, options.rel_tol);
    const std::size_t d = s.dim, r = s.rank();
    if (!blocks) refuse("patch masking needs the exact patch blocks of the data (MATH.md §7)");
    if (blocks->dim() != d) refuse("the patch blocks have D = " + std::to_string(blocks->dim()) + ", the sketch " + std::to_string(d));
    if (blocks->n() != s.n)
        refuse("the patch blocks cover " + std::to_string(blocks->n()) + " samples, the sketch " + std::to_string(s.n));
    const keep_probabilities keep = blocks->coefficients(noise);
    const double q = keep.q, c1 = keep.k_diff, csame = keep.k_same;  // c1 + c2 = P(keep both, same patch)

    denoising_subspace_result out;
    out.status = s.status;
    // Scale of G for the null cut: ‖G‖ <= c1 λ_1 + (c1 + c2) max_i Bd_ii (+ the sketch's tail).
    // (One block at a time, here and below: all of them unpacked would be D·s doubles.)
    double max_diag = 0.0;
    for (std::size_t b = 0; b < blocks->blocks(); ++b) {
        const matrix_t bd = blocks->block(b, s.center);
        for (std::size_t i = 0; i < bd.shape(0); ++i) max_diag = std::max(max_diag, bd(i, i));
    }
    const double lam1 = r > 0 ? std::max(s.eigenvalues(0), 0.0) : 0.0;
    const double cut = options.rel_tol * (c1 * lam1 + csame * max_diag);

    // X = E⁺ U (D x r), block by block: E_b = (c1 + c2) Bd_b − c1 U_b Λ U_bᵀ = P D Pᵀ.
    matrix_t x = xt::zeros<double>({d, r});
    std::size_t kept = 0;
    for (std::size_t b = 0; b < blocks->blocks(); ++b) {
        const std::vector<std::size_t>& idx = blocks->indices(b);
        const std::size_t sb = idx.size();
        matrix_t ub = xt::zeros<double>({sb, r});
        for (std::size_t i = 0; i < sb; ++i)
            for (std::size_t j = 0; j < r; ++j) ub(i, j) = s.basis(idx[i], j);
        matrix_t e = csame * blocks->block(b, s.center);
        matrix_t ul = ub;
        for (std::size_t i = 0; i < sb; ++i)
            for (std::size_t j = 0; j < r; ++j) ul(i, j) *= s.eigenvalues(j);
        blas::gemm_nt(sb, sb, r, -c1, ul.data(), ub.data(), 1.0, e.data());
        const eigen_result eb = sym_eigen(e);
        out.status = worst(out.status, solver_status_of(eb.info));
        // E_b⁺ U_b = P_+ D_+⁻¹ P_+ᵀ U_b.
        std::size_t rb = 0;
        while (rb < sb && eb.values(rb) > cut) ++rb;
        kept += rb;
        if (rb == 0) continue;
        matrix_t pu = xt::zeros<double>({rb, r});  // P_+ᵀ U_b, scaled by D_+⁻¹
        matrix_t p = xt::view(eb.vectors, xt::all(), xt::range(0, rb));
        blas::gemm_tn(rb, r, sb, 1.0, p.data(), ub.data(), 0.0, pu.data());
        for (std::size_t i = 0; i < rb; ++i)
            for (std::size_t j = 0; j < r; ++j) pu(i, j) /= eb.values(i);
        matrix_t xb = xt::zeros<double>({sb, r});
        blas::gemm_nn(sb, r, rb, 1.0, p.data(), pu.data(), 0.0, xb.data());
        for (std::size_t i = 0; i < sb; ++i)
            for (std::size_t j = 0; j < r; ++j) x(idx[i], j) = xb(i, j);
    }
    out.rank_g = kept;
    out.dropped = d - kept;
    if (r == 0) {
        out.eigenvalues = xt::zeros<double>({std::size_t(0)});
        out.basis = xt::zeros<double>({d, std::size_t(0)});
        return out;
    }
    // T = Uᵀ E⁺ U; with L = (c1 Λ)^{1/2} and M = I + L T L = Rᵀ R (Woodbury):
    // Uᵀ Ĝ⁻¹ U = T − T L M⁻¹ L T, and Ĝ⁻¹ U Λ W = X (Λ W − L M⁻¹ L T Λ W).
    matrix_t t = xt::zeros<double>({r, r});
    blas::gemm_tn(r, r, d, 1.0, s.basis.data(), x.data(), 0.0, t.data());
    for (std::size_t i = 0; i < r; ++i)
        for (std::size_t j = i + 1; j < r; ++j) t(i, j) = t(j, i) = 0.5 * (t(i, j) + t(j, i));
    vector_t l = xt::zeros<double>({r});
    for (std::size_t j = 0; j < r; ++j) l(j) = std::sqrt(c1 * std::max(s.eigenvalues(j), 0.0));
    matrix_t m = xt::eye<double>(r);
    for (std::size_t i = 0; i < r; ++i)
        for (std::size_t j = 0; j < r; ++j) m(i, j) += l(i) * t(i, j) * l(j);
    matrix_t chol = m;
    if (blas::potrf_upper(r, chol.data()) != 0) {
        out.status = worst(out.status, solver_status::breakdown);  // I + L T L is PD in exact arithmetic
        out.eigenvalues = xt::zeros<double>({std::size_t(0)});
        out.basis = xt::zeros<double>({d, std::size_t(0)});
        return out;
    }
    // solve(B): M⁻¹ B for an r x k right-hand side, through Rᵀ R.
    auto solve = [&](matrix_t rhs) {
        const std::size_t k = rhs.shape(1);
        for (std::size_t c = 0; c < k; ++c) {
            for (std::size_t i = 0; i < r; ++i) {  // Rᵀ y = b
                double v = rhs(i, c);
                for (std::size_t p = 0; p < i; ++p) v -= chol(p, i) * rhs(p, c);
                rhs(i, c) = v / chol(i, i);
            }
            for (std::size_t i = r; i-- > 0;) {  // R z = y
                double v = rhs(i, c);
                for (std::size_t p = i + 1; p < r; ++p) v -= chol(i, p) * rhs(p, c);
                rhs(i, c) = v / chol(i, i);
            }
        }
        return rhs;
    };
    // K = Uᵀ Ĝ⁻¹ U = T − (T L) M⁻¹ (L T).
    matrix_t lt = xt::zeros<double>({r, r});
    for (std::size_t i = 0; i < r; ++i)
        for (std::size_t j = 0; j < r; ++j) lt(i, j) = l(i) * t(i, j);
    const matrix_t mlt = solve(lt);
    matrix_t kmat = t;
    blas::gemm_tn(r, r, r, -1.0, lt.data(), mlt.data(), 1.0, kmat.data());
    // S = Λ K Λ; q² S w = μ w.
    matrix_t smat = xt::zeros<double>({r, r});
    for (std::size_t i = 0; i < r; ++i)
        for (std::size_t j = 0; j < r; ++j) smat(i, j) = s.eigenvalues(i) * kmat(i, j) * s.eigenvalues(j);
    for (std::size_t i = 0; i < r; ++i)
        for (std::size_t j = i + 1; j < r; ++j) smat(i, j) = smat(j, i) = 0.5 * (smat(i, j) + smat(j, i));
    const eigen_result es = sym_eigen(smat);
    out.status = worst(out.status, solver_status_of(es.info));
    const double top = std::max(es.values(0), 0.0);
    std::size_t k = 0;
    while (k < r && es.values(k) > options.rel_tol * top) ++k;
    out.informative = k;
    out.eigenvalues = xt::zeros<double>({k});
    for (std::size_t j = 0; j < k; ++j) out.eigenvalues(j) = q * q * es.values(j);
    // Z = Λ W − L M⁻¹ L T Λ W, then V = X Z, columns scaled to vᵀ Ĝ v = wᵀ S w = s_j → 1.
    matrix_t lw = xt::zeros<double>({r, k});
    for (std::size_t i = 0; i < r; ++i)
        for (std::size_t j = 0; j < k; ++j) lw(i, j) = s.eigenvalues(i) * es.vectors(i, j);
    matrix_t tlw = xt::zeros<double>({r, k});
    blas::gemm_nn(r, k, r, 1.0, lt.data(), lw.data(), 0.0, tlw.data());  // L T Λ W
    matrix_t corr = solve(tlw);
    matrix_t z = lw;
    for (std::size_t i = 0; i < r; ++i)
        for (std::size_t j = 0; j < k; ++j) z(i, j) -= l(i) * corr(i, j);
    out.basis = xt::zeros<double>({d, k});
    blas::gemm_nn(d, k, r, 1.0, x.data(), z.data(), 0.0, out.basis.data());
    for (std::size_t j = 0; j < k; ++j) {
        const double scale = 1.0 / std::sqrt(es.values(j));
        for (std::size_t i = 0; i < d; ++i) out.basis(i, j) *= scale;
    }
    fix_signs(out.basis);
    return out;
}

}  // namespace recalign
