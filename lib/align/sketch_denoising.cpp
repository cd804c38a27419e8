#include "recalign/align/sketch_denoising.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "nested.hpp"
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
// E_b⁻¹ X in X's storage by a Cholesky factor of E_b (sb x sb, symmetric, left intact) when
// every eigenvalue of E_b is proven above `cut`, so that E_b⁺ = E_b⁻¹ (MATH.md §7, "Cholesky
// where it is proven"): the floating-point Cholesky of E_b − σI with σ = 2(cut + κ Σ|e_ii|),
// κ = 2(sb + 2)u, runs to completion only if λ_min(E_b) > cut (Higham, Thm 10.3, whatever the
// order of the sums). Returns false (X untouched) when that is not proven: the eigen route.
bool cholesky_solve(const matrix_t& eb, double cut, matrix_t& x) {
    const std::size_t sb = eb.shape(0), w = x.shape(1);
    const double u = std::numeric_limits<double>::epsilon() / 2, kappa = 2.0 * static_cast<double>(sb + 2) * u;
    if (sb == 0 || kappa * static_cast<double>(sb) > 0.25) return false;
    double trace = 0.0;
    for (std::size_t i = 0; i < sb; ++i) trace += std::abs(eb(i, i));
    const double sigma = 2.0 * (cut + kappa * trace);
    if (!std::isfinite(sigma)) return false;
    matrix_t f = eb;
    for (std::size_t i = 0; i < sb; ++i) f(i, i) -= sigma;
    if (blas::potrf_upper_in_place(sb, f.data()) != 0) return false;  // the proof
    f = eb;
    if (blas::potrf_upper_in_place(sb, f.data()) != 0) return false;  // E_b = Rᵀ R (upper triangle)
    blas::trsm_left_upper(true, sb, w, f.data(), x.data());          // Rᵀ Y = X
    blas::trsm_left_upper(false, sb, w, f.data(), x.data());         // R Z = Y
    return true;
}

// The masking model's pieces from the sketch and the blocks (MATH.md §7): keep
// probabilities, and E⁺ applied to U and to optional extra right-hand sides R, block by block:
// E_b = (c1 + c2) Bd_b − c1 U_b Λ U_bᵀ; where every eigenvalue is proven above the null cut,
// E_b⁺ = E_b⁻¹ by Cholesky; else E_b = P D Pᵀ, E_b⁺ = P_+ D_+⁻¹ P_+ᵀ (directions with
// eigenvalue <= rel_tol · scale of G are null: pixels that never vary).
struct block_solve {
    keep_probabilities keep;
    matrix_t eu;  // E⁺ U: D x r
    matrix_t er;  // E⁺ R: D x e, in the storage of R (moved in)
    std::size_t kept = 0;
    solver_status status = solver_status::converged;
    block_solve_counts counts;
};

block_solve solve_blocks(const spectrum& s, const noise_spec& noise, const patch_blocks* blocks,
                         const sketch_denoising_options& options, matrix_t* rhs) {
    const double rel_tol = options.rel_tol;
    const std::size_t d = s.dim, r = s.rank(), e = rhs ? rhs->shape(1) : 0;
    if (!blocks) refuse("patch masking needs the exact patch blocks of the data (MATH.md §7)");
    if (blocks->dim() != d) refuse("the patch blocks have D = " + std::to_string(blocks->dim()) + ", the sketch " + std::to_string(d));
    if (blocks->n() != s.n)
        refuse("the patch blocks cover " + std::to_string(blocks->n()) + " samples, the sketch " + std::to_string(s.n));
    if (rhs && rhs->shape(0) != d) refuse("a right-hand side of " + std::to_string(rhs->shape(0)) + " rows for D = " + std::to_string(d));
    block_solve out;
    out.keep = blocks->coefficients(noise);
    const double c1 = out.keep.k_diff, csame = out.keep.k_same;  // c1 + c2 = P(keep both, same patch)
    // Scale of G for the null cut: ‖G‖ <= c1 λ_1 + (c1 + c2) max_i Bd_ii (+ the sketch's tail).
    // (One block at a time below: all of them unpacked would be D·s doubles.)
    const double max_diag = blocks->max_diagonal(s.center);
    const double lam1 = r > 0 ? std::max(s.eigenvalues(0), 0.0) : 0.0;
    const double cut = rel_tol * (c1 * lam1 + csame * max_diag);
    out.eu = xt::zeros<double>({d, r});
    // E⁺R over R itself: each block reads its rows of R before it writes them (the blocks
    // partition the coordinates); rows no block solves (rb = 0, or none) are set to 0 below.
    if (rhs) out.er = std::move(*rhs);
    else out.er = xt::zeros<double>({d, e});
    std::vector<char> solved(e ? d : 0, 0);
    const std::size_t w = r + e;  // [U_b, R_b] solved together
    bool nonnegative = true;
    vector_t root = xt::zeros<double>({r});
    for (std::size_t j = 0; j < r; ++j) {
        nonnegative = nonnegative && s.eigenvalues(j) >= 0.0;
        root(j) = std::sqrt(std::max(s.eigenvalues(j), 0.0));
    }
    for (std::size_t b = 0; b < blocks->blocks(); ++b) {
        const std::vector<std::size_t>& idx = blocks->indices(b);
        const std::size_t sb = idx.size();
        matrix_t ub = xt::zeros<double>({sb, r}), rb_all = xt::zeros<double>({sb, w});
        for (std::size_t i = 0; i < sb; ++i) {
            for (std::size_t j = 0; j < r; ++j) rb_all(i, j) = ub(i, j) = s.basis(idx[i], j);
            for (std::size_t j = 0; j < e; ++j) rb_all(i, r + j) = out.er(idx[i], j);
        }
        matrix_t eb_mat = csame * blocks->block(b, s.center);
        matrix_t ul = ub;
        if (nonnegative) {  // − c1 (U_b Λ^½)(U_b Λ^½)ᵀ: one SYRK, half a GEMM's flops
            for (std::size_t i = 0; i < sb; ++i)
                for (std::size_t j = 0; j < r; ++j) ul(i, j) *= root(j);
            blas::syrk_nt(sb, r, -c1, ul.data(), 1.0, eb_mat.data());
            blas::symmetrize_from_upper(sb, eb_mat.data());
        } else {
            for (std::size_t i = 0; i < sb; ++i)
                for (std::size_t j = 0; j < r; ++j) ul(i, j) *= s.eigenvalues(j);
            blas::gemm_nt(sb, sb, r, -c1, ul.data(), ub.data(), 1.0, eb_mat.data());
        }
        if (options.cholesky && cholesky_solve(eb_mat, cut, rb_all)) {
            ++out.counts.cholesky;
            out.kept += sb;
            for (std::size_t i = 0; i < sb; ++i) {
                for (std::size_t j = 0; j < r; ++j) out.eu(idx[i], j) = rb_all(i, j);
                for (std::size_t j = 0; j < e; ++j) out.er(idx[i], j) = rb_all(i, r + j);
                if (e) solved[idx[i]] = 1;
            }
            continue;
        }
        ++out.counts.eigen;
        const eigen_result eb = sym_eigen(eb_mat);
        out.status = worst(out.status, solver_status_of(eb.info));
        std::size_t rb = 0;
        while (rb < sb && eb.values(rb) > cut) ++rb;
        out.kept += rb;
        if (rb == 0) continue;
        matrix_t pu = xt::zeros<double>({rb, w});  // P_+ᵀ [U_b, R_b], scaled by D_+⁻¹
        matrix_t p = xt::view(eb.vectors, xt::all(), xt::range(0, rb));
        blas::gemm_tn(rb, w, sb, 1.0, p.data(), rb_all.data(), 0.0, pu.data());
        for (std::size_t i = 0; i < rb; ++i)
            for (std::size_t j = 0; j < w; ++j) pu(i, j) /= eb.values(i);
        matrix_t xb = xt::zeros<double>({sb, w});
        blas::gemm_nn(sb, w, rb, 1.0, p.data(), pu.data(), 0.0, xb.data());
        for (std::size_t i = 0; i < sb; ++i) {
            for (std::size_t j = 0; j < r; ++j) out.eu(idx[i], j) = xb(i, j);
            for (std::size_t j = 0; j < e; ++j) out.er(idx[i], j) = xb(i, r + j);
            if (e) solved[idx[i]] = 1;
        }
    }
    for (std::size_t i = 0; i < solved.size(); ++i)
        if (!solved[i]) std::fill(&out.er(i, 0), &out.er(i, 0) + e, 0.0);
    return out;
}

// Woodbury for Ĝ = E + U L² Uᵀ, L = (c1 Λ)^{1/2}: T = Uᵀ E⁺ U, M = I + L T L = Rᵀ R,
// Ĝ⁻¹ = E⁺ − E⁺ U L M⁻¹ L Uᵀ E⁺ (on range E; null pixels stay null).
struct woodbury {
    matrix_t t;     // T
    vector_t l;     // diag L
    matrix_t chol;  // R (upper)
    bool ok = true;
    // M⁻¹ B for an r x k right-hand side, through Rᵀ R (two triangular solves, dtrsm).
    matrix_t solve(matrix_t rhs) const {
        const std::size_t r = chol.shape(0), k = rhs.shape(1);
        blas::trsm_left_upper(true, r, k, chol.data(), rhs.data());   // Rᵀ y = b
        blas::trsm_left_upper(false, r, k, chol.data(), rhs.data());  // R z = y
        return rhs;
    }
};

woodbury make_woodbury(const spectrum& s, const matrix_t& eu, double c1) {
    const std::size_t d = s.dim, r = s.rank();
    woodbury w;
    w.t = xt::zeros<double>({r, r});
    blas::gemm_tn(r, r, d, 1.0, s.basis.data(), eu.data(), 0.0, w.t.data());
    for (std::size_t i = 0; i < r; ++i)
        for (std::size_t j = i + 1; j < r; ++j) w.t(i, j) = w.t(j, i) = 0.5 * (w.t(i, j) + w.t(j, i));
    w.l = xt::zeros<double>({r});
    for (std::size_t j = 0; j < r; ++j) w.l(j) = std::sqrt(c1 * std::max(s.eigenvalues(j), 0.0));
    w.chol = xt::eye<double>(r);
    for (std::size_t i = 0; i < r; ++i)
        for (std::size_t j = 0; j < r; ++j) w.chol(i, j) += w.l(i) * w.t(i, j) * w.l(j);
    w.ok = r == 0 || blas::potrf_upper(r, w.chol.data()) == 0;  // I + L T L is PD in exact arithmetic
    return w;
}
}  // namespace

matrix_t sketched_gram_solve(const spectrum& s, const noise_spec& noise, const patch_blocks& blocks, matrix_t rhs,
                             const sketch_denoising_options& options, block_solve_counts* counts) {
    if (!(options.rel_tol >= 0.0)) refuse("rel_tol must be >= 0");
    if (noise.draws > 0 || noise.family == noise_family::gaussian)
        refuse("Ĝ from blocks is for closed-form masking noises only");
    const std::size_t e = rhs.shape(1);
    block_solve bs = solve_blocks(s, noise, &blocks, options, &rhs);
    if (counts) *counts = bs.counts;
    const std::size_t d = s.dim, r = s.rank();
    matrix_t out = std::move(bs.er);
    if (r == 0 || e == 0) return out;
    const woodbury w = make_woodbury(s, bs.eu, bs.keep.k_diff);
    if (!w.ok) throw std::runtime_error(std::string(who) + ": I + L T L is not positive definite (rounding)");
    // Ĝ⁻¹ R = E⁺R − E⁺U L M⁻¹ L Uᵀ E⁺R.
    matrix_t y = xt::zeros<double>({r, e});
    blas::gemm_tn(r, e, d, 1.0, s.basis.data(), out.data(), 0.0, y.data());
    for (std::size_t i = 0; i < r; ++i)
        for (std::size_t j = 0; j < e; ++j) y(i, j) *= w.l(i);
    matrix_t z = w.solve(y);
    for (std::size_t i = 0; i < r; ++i)
        for (std::size_t j = 0; j < e; ++j) z(i, j) *= w.l(i);
    blas::gemm_nn(d, e, r, -1.0, bs.eu.data(), z.data(), 1.0, out.data());
    return out;
}

denoising_subspace_result sketched_denoising_subspace(const spectrum& s, const noise_spec& noise,
                                                      const patch_blocks* blocks,
                                                      const sketch_denoising_options& options) {
    if (!(options.rel_tol >= 0.0)) refuse("rel_tol must be >= 0");
    if (noise.draws > 0) refuse("a Monte-Carlo noise has no closed form: sketch the corrupted samples instead");
    if (noise.family == noise_family::gaussian) return gaussian(s, noise.sigma, options.rel_tol);
    const std::size_t d = s.dim, r = s.rank();
    block_solve bs = solve_blocks(s, noise, blocks, options, nullptr);
    const double q = bs.keep.q, c1 = bs.keep.k_diff;
    matrix_t& x = bs.eu;  // E⁺ U

    denoising_subspace_result out;
    out.status = worst(s.status, bs.status);
    out.rank_g = bs.kept;
    out.dropped = d - bs.kept;
    if (r == 0) {
        out.eigenvalues = xt::zeros<double>({std::size_t(0)});
        out.basis = xt::zeros<double>({d, std::size_t(0)});
        return out;
    }
    // T = Uᵀ E⁺ U; with L = (c1 Λ)^{1/2} and M = I + L T L = Rᵀ R (Woodbury):
    // Uᵀ Ĝ⁻¹ U = T − T L M⁻¹ L T, and Ĝ⁻¹ U Λ W = X (Λ W − L M⁻¹ L T Λ W).
    const woodbury wb = make_woodbury(s, x, c1);
    if (!wb.ok) {
        out.status = worst(out.status, solver_status::breakdown);
        out.eigenvalues = xt::zeros<double>({std::size_t(0)});
        out.basis = xt::zeros<double>({d, std::size_t(0)});
        return out;
    }
    const matrix_t& t = wb.t;
    const vector_t& l = wb.l;
    // K = Uᵀ Ĝ⁻¹ U = T − (T L) M⁻¹ (L T).
    matrix_t lt = xt::zeros<double>({r, r});
    for (std::size_t i = 0; i < r; ++i)
        for (std::size_t j = 0; j < r; ++j) lt(i, j) = l(i) * t(i, j);
    const matrix_t mlt = wb.solve(lt);
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
    matrix_t corr = wb.solve(tlw);
    matrix_t z = lw;
    for (std::size_t i = 0; i < r; ++i)
        for (std::size_t j = 0; j < k; ++j) z(i, j) -= l(i) * corr(i, j);
    if (k == r) {  // V = X Z in X's storage, a block of rows at a time (no second D x r matrix)
        detail::multiply_rows_in_place(x, z);
        out.basis = std::move(x);
    } else {
        out.basis = xt::zeros<double>({d, k});
        blas::gemm_nn(d, k, r, 1.0, x.data(), z.data(), 0.0, out.basis.data());
    }
    for (std::size_t j = 0; j < k; ++j) {
        const double scale = 1.0 / std::sqrt(es.values(j));
        for (std::size_t i = 0; i < d; ++i) out.basis(i, j) *= scale;
    }
    fix_signs(out.basis);
    return out;
}

}  // namespace recalign
