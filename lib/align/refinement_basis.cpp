#include "recalign/align/verification.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "columns.hpp"
#include "fresh_matrix.hpp"
#include "nested.hpp"
#include "recalign/align/sketch_denoising.hpp"
#include "recalign/core/blas.hpp"
#include "recalign/io/spill.hpp"
#include "recalign/spectral/eigen.hpp"

// The bases the sketch routes verify: projections and orthonormal extensions, the denoising
// refinement's corrections (MATH.md §7 "Refining the denoising subspace").
namespace recalign {

namespace {
// x −= Q (Qᵀ x), once, for Q the first m columns of a D-row matrix of row stride ldq. Once is
// not enough in floating point: extension_columns projects twice, renormalising in between.
void project_out(const double* q, std::size_t ldq, std::size_t m, matrix_t& x) {
    const std::size_t d = x.shape(0), e = x.shape(1);
    if (m == 0 || e == 0) return;
    matrix_t c = xt::zeros<double>({m, e});
    blas::gemm_tn(m, e, d, 1.0, q, ldq, x.data(), e, 0.0, c.data(), e);
    blas::gemm_nn(d, e, m, -1.0, q, ldq, c.data(), e, 1.0, x.data(), e);
}
// An orthonormal basis of span(x) from XᵀX = P D Pᵀ: X P D^{-1/2} over the eigenvalues above
// `cut` (squared norms: directions below sqrt(cut) are dependent), in x itself when no
// direction is dropped (blocks of rows at a time: no second D x e matrix at high D).
void orthonormalize(matrix_t& x, double cut) {
    const std::size_t d = x.shape(0), e = x.shape(1);
    matrix_t g = xt::zeros<double>({e, e});
    blas::gemm_tn(e, e, d, 1.0, x.data(), x.data(), 0.0, g.data());
    const eigen_result eg = sym_eigen(g);
    std::size_t k = 0;
    while (k < e && eg.values(k) > cut) ++k;
    matrix_t p = xt::zeros<double>({e, k});
    for (std::size_t j = 0; j < k; ++j) {
        const double s = 1.0 / std::sqrt(eg.values(j));
        for (std::size_t i = 0; i < e; ++i) p(i, j) = eg.vectors(i, j) * s;
    }
    if (k < e) {
        matrix_t y = detail::fresh_zeros(d, k);
        blas::gemm_nn(d, k, e, 1.0, x.data(), p.data(), 0.0, y.data());
        x = std::move(y);
        return;
    }
    detail::multiply_rows_in_place(x, p);
}
}  // namespace

namespace {
// Bd M block by block: each block's rows of M gathered, its upper triangle into one reused
// scratch and DSYMM (a whole block made symmetric, allocated per block, was about half the
// time: 0.31 of 0.65 s a sweep at 224x224x3, docs/benchmarks-log.md, the thirty-eighth
// session); `emit(b, idx, mb, ob)` gets block b's rows of M and of Bd M (sb x k, row-major).
template <class Emit>
void block_products(const patch_blocks& blocks, centering c, const matrix_t& m, Emit&& emit) {
    const std::size_t k = m.shape(1);
    if (k == 0) return;
    std::vector<double> blk, mb, ob;
    for (std::size_t b = 0; b < blocks.blocks(); ++b) {
        const std::vector<std::size_t>& idx = blocks.indices(b);
        const std::size_t sb = idx.size();
        blk.resize(sb * sb);
        mb.resize(sb * k);
        ob.resize(sb * k);
        for (std::size_t i = 0; i < sb; ++i) std::copy(&m(idx[i], 0), &m(idx[i], 0) + k, mb.data() + i * k);
        blocks.block_upper(b, c, blk.data());
        blas::symm_left_upper(sb, k, 1.0, blk.data(), mb.data(), 0.0, ob.data());
        emit(b, idx, mb, ob);
    }
}
}  // namespace

namespace {
// W⁺ for W = Qᵀ Sxx Q (m x m) over its eigenvalues above 1e-10 of the largest (the Nyström
// approximation N = (Sxx Q) W⁺ (Sxx Q)ᵀ of Sxx from the pass's own span: directions of Q that
// Sxx maps to rounding add nothing but noise).
matrix_t nystrom_inverse(const matrix_t& w) {
    const std::size_t m = w.shape(0);
    matrix_t out = xt::zeros<double>({m, m});
    if (m == 0) return out;
    const eigen_result e = sym_eigen(w);
    const double cut = 1e-10 * std::max(e.values(0), 0.0);
    std::size_t k = 0;
    while (k < m && e.values(k) > cut) ++k;
    matrix_t f = xt::zeros<double>({m, k});
    for (std::size_t i = 0; i < m; ++i)
        for (std::size_t j = 0; j < k; ++j) f(i, j) = e.vectors(i, j) / std::sqrt(e.values(j));
    if (k) blas::gemm_nt(m, m, k, 1.0, f.data(), f.data(), 0.0, out.data());
    return out;
}

// P := Bd P − blockdiag(N) P in P's own storage for N = (Sxx Q) W⁺ (Sxx Q)ᵀ (winv = W⁺), block by
// block (the blocks partition the coordinates: block b's rows of the result read only block b's
// rows of P), and t = (Sxx Q)ᵀ P (m x k, the sum of the blocks' (Sxx Q)_bᵀ P_b). Each block's
// rows of Sxx Q are read from memory or disk (sv_rows, one read per run of consecutive
// coordinates): one read of Sxx Q for both terms and every column of P.
void block_terms_in_place(const patch_blocks& blocks, const restricted_statistics& pass, const matrix_t& winv,
                          matrix_t& p, matrix_t& t) {
    const std::size_t k = p.shape(1), m = pass.k();
    t = xt::zeros<double>({m, k});
    matrix_t g = xt::zeros<double>({m, k}), h = xt::zeros<double>({m, k});
    std::vector<double> sq, nb;
    block_products(blocks, pass.center, p, [&](std::size_t, const std::vector<std::size_t>& idx,
                                              const std::vector<double>& pb, std::vector<double>& ob) {
        const std::size_t sb = idx.size();
        if (m && sb) {
            sq.resize(sb * m);
            nb.assign(sb * k, 0.0);
            for (std::size_t i = 0; i < sb;) {
                std::size_t run = 1;
                while (i + run < sb && idx[i + run] == idx[i] + run) ++run;
                pass.sv_rows(idx[i], run, sq.data() + i * m);
                i += run;
            }
            blas::gemm_tn(m, k, sb, 1.0, sq.data(), pb.data(), 0.0, g.data());  // (Sxx Q)_bᵀ P_b
            for (std::size_t i = 0; i < g.size(); ++i) t.data()[i] += g.data()[i];
            blas::gemm_nn(m, k, m, 1.0, winv.data(), g.data(), 0.0, h.data());
            blas::gemm_nn(sb, k, m, 1.0, sq.data(), h.data(), 0.0, nb.data());  // N_bb P_b
            for (std::size_t i = 0; i < sb * k; ++i) ob[i] -= nb[i];
        }
        for (std::size_t i = 0; i < sb; ++i) std::copy(ob.data() + i * k, ob.data() + (i + 1) * k, &p(idx[i], 0));
    });
}
}  // namespace

namespace {
// out = (Sxx V) w + beta out (D x k) for a pass with its Sxx V in memory or on disk (sv_stored,
// incremental_refinement.hpp: a block of rows at a time, the same product on each block).
void sxx_product(const restricted_statistics& pass, const matrix_t& w, double beta, matrix_t& out) {
    const std::size_t d = pass.dim(), m = pass.k(), k = w.shape(1);
    if (!pass.sv_stored) {
        blas::gemm_nn(d, k, m, 1.0, pass.sv.data(), w.data(), beta, out.data());
        return;
    }
    constexpr std::size_t rows = 512;
    std::vector<double> block(std::min(d, rows) * m);
    for (std::size_t r0 = 0; r0 < d && k; r0 += rows) {
        const std::size_t rb = std::min(rows, d - r0);
        pass.sv_rows(r0, rb, block.data());
        blas::gemm_nn(rb, k, m, 1.0, block.data(), w.data(), beta, out.data() + r0 * k);
    }
}
}  // namespace

namespace {
// Statistics in `pass`'s coordinates with at least k columns (leading_columns' condition).
void check_coordinates(const restricted_statistics& s, const restricted_statistics& pass, std::size_t k) {
    if (pass.in_coordinates() || s.coords.shape(0) != pass.k() || s.dim() != pass.dim() || k > s.coords.shape(1))
        throw std::invalid_argument("leading_columns: the statistics are not in this pass's coordinates");
}
// out = Q w, or with `sxx` (Sxx Q) w (from memory or disk), for coordinates w (m x k).
void coordinate_product(const restricted_statistics& pass, const matrix_t& w, bool sxx, matrix_t& out) {
    if (sxx) sxx_product(pass, w, 0.0, out);
    else blas::gemm_nn(pass.dim(), w.shape(1), pass.k(), 1.0, pass.basis.data(), w.data(), 0.0, out.data());
}
}  // namespace

namespace {
// The checks every form of the refinement step makes first; true when the noise has nothing to
// refine (Gaussian: V* = U).
bool nothing_to_refine(const spectrum& sk, const restricted_statistics& pass, const noise_spec& noise,
                       const patch_blocks* blocks) {
    if (noise.draws > 0) throw std::invalid_argument("denoising_refinement: a Monte-Carlo noise has no closed form");
    if (sk.dim != pass.dim() || sk.n != pass.n || sk.center != pass.center)
        throw std::invalid_argument("denoising_refinement: the sketch and the verification pass are not of the same data");
    if (noise.family == noise_family::gaussian) return true;
    if (!blocks) throw std::invalid_argument("denoising_refinement: patch masking needs the exact patch blocks");
    return false;
}
}  // namespace

matrix_t denoising_refinement(const spectrum& sk, const restricted_statistics& pass, const noise_spec& noise,
                              const patch_blocks* blocks, std::size_t count, double rel_tol) {
    if (nothing_to_refine(sk, pass, noise, blocks)) return xt::zeros<double>({pass.dim(), std::size_t(0)});
    return denoising_refinement(sk, pass, noise, blocks, count, ritz_denoising(pass, noise, blocks, rel_tol),
                                refinement_factors_of(pass), rel_tol);
}

matrix_t denoising_refinement(const spectrum& sk, const restricted_statistics& pass, const noise_spec& noise,
                              const patch_blocks* blocks, std::size_t count, const ritz_denoising_result& ritz,
                              double rel_tol) {
    if (nothing_to_refine(sk, pass, noise, blocks)) return xt::zeros<double>({pass.dim(), std::size_t(0)});
    return denoising_refinement(sk, pass, noise, blocks, count, ritz, refinement_factors_of(pass), rel_tol);
}

refinement_factors refinement_factors_of(const restricted_statistics& pass) {
    if (pass.in_coordinates())
        throw std::invalid_argument("refinement_factors_of: the statistics are in another pass's coordinates");
    const std::size_t m = pass.k();
    matrix_t qq = pass.gram;
    if (!qq.size()) {
        qq = xt::zeros<double>({m, m});
        blas::gemm_tn(m, m, pass.dim(), 1.0, pass.basis.data(), pass.basis.data(), 0.0, qq.data());
    }
    refinement_factors f;
    f.frame = sym_eigen(qq);
    f.nystrom = nystrom_inverse(pass.vsv);
    return f;
}

matrix_t denoising_refinement(const spectrum& sk, const restricted_statistics& pass, const noise_spec& noise,
                              const patch_blocks* blocks, std::size_t count, const ritz_denoising_result& ritz,
                              const refinement_factors& factors, double rel_tol) {
    if (nothing_to_refine(sk, pass, noise, blocks)) return xt::zeros<double>({pass.dim(), std::size_t(0)});
    std::vector<matrix_t> r = refinement_residuals(pass, {noise}, *blocks, count, {&ritz}, factors);
    if (r[0].shape(1) == 0) return std::move(r[0]);
    return refinement_direction(sk, pass, noise, *blocks, std::move(r[0]), rel_tol);
}

namespace {
// Every noise's leading ks[i] Ritz coordinates side by side (m x total) when all are in the pass's
// coordinates (the restarts': products() came first); nothing otherwise.
std::optional<matrix_t> coordinates_side_by_side(const std::vector<const ritz_denoising_result*>& ritz,
                                                 const std::vector<std::size_t>& ks, std::size_t total,
                                                 const restricted_statistics& pass) {
    for (std::size_t i = 0; i < ritz.size(); ++i) {
        if (!ritz[i]->refined.in_coordinates()) return std::nullopt;
        check_coordinates(ritz[i]->refined, pass, ks[i]);
    }
    const std::size_t m = pass.k();
    matrix_t w = xt::zeros<double>({m, total});
    for (std::size_t i = 0, c0 = 0; i < ritz.size(); c0 += ks[i], ++i)
        for (std::size_t p = 0; p < m; ++p)
            std::copy(&ritz[i]->refined.coords(p, 0), &ritz[i]->refined.coords(p, 0) + ks[i], &w(p, c0));
    return w;
}

// Those vectors side by side (D x total): V W, or with `sxx` Sxx V W. From their coordinates
// `w` one product on Q (or one read of Sxx Q) serves them all; otherwise each is leading_columns'
// own.
matrix_t leading_side_by_side(const std::vector<const ritz_denoising_result*>& ritz, const std::vector<std::size_t>& ks,
                              std::size_t total, const restricted_statistics& pass, const std::optional<matrix_t>& w,
                              bool sxx) {
    const std::size_t d = pass.dim();
    matrix_t out = detail::fresh_zeros(d, total);
    if (w) {
        coordinate_product(pass, *w, sxx, out);
        return out;
    }
    for (std::size_t i = 0, c0 = 0; i < ritz.size(); c0 += ks[i], ++i) {
        if (ks[i] == 0) continue;
        const matrix_t x = leading_columns(ritz[i]->refined, pass, ks[i], sxx);
        for (std::size_t p = 0; p < d; ++p) std::copy(&x(p, 0), &x(p, 0) + ks[i], &out(p, c0));
    }
    return out;
}
}  // namespace

std::vector<matrix_t> refinement_residuals(const restricted_statistics& pass, const std::vector<noise_spec>& noises,
                                           const patch_blocks& blocks, std::size_t count,
                                           const std::vector<const ritz_denoising_result*>& ritz,
                                           const refinement_factors& factors) {
    const std::size_t d = pass.dim(), m = pass.k();
    if (pass.in_coordinates())
        throw std::invalid_argument("refinement_residuals: the statistics are in another pass's coordinates");
    if (ritz.size() != noises.size())
        throw std::invalid_argument("refinement_residuals: one Ritz step per noise");
    if (factors.frame.values.size() != m || factors.nystrom.shape(0) != m || factors.nystrom.shape(1) != m)
        throw std::invalid_argument("denoising_refinement: the factors are not of this pass (refinement_factors_of)");
    // The blocks' terms are formed in the rows they partition (block_products, in place).
    if (blocks.dim() != d) throw std::invalid_argument("denoising_refinement: the patch blocks are not of this pass's dimension");
    // Each noise's columns and, per column, its coefficients: A = q² Sxx², G = c1 Sxx + c2 Bd.
    std::vector<std::size_t> ks;
    std::vector<double> mu, c1, c2, q2;
    for (std::size_t i = 0; i < noises.size(); ++i) {
        if (noises[i].draws > 0 || noises[i].family == noise_family::gaussian || !ritz[i])
            throw std::invalid_argument("refinement_residuals: only closed-form masking noises, each with its Ritz step");
        const keep_probabilities keep = blocks.coefficients(noises[i]);
        ks.push_back(std::min(count, ritz[i]->subspace.informative));
        for (std::size_t j = 0; j < ks.back(); ++j) {
            mu.push_back(ritz[i]->subspace.eigenvalues(j));
            c1.push_back(keep.k_diff);
            c2.push_back(keep.k_same - keep.k_diff);
            q2.push_back(keep.q * keep.q);
        }
    }
    const std::size_t k = mu.size();
    std::vector<matrix_t> out;
    if (k == 0) {
        for (std::size_t i = 0; i < noises.size(); ++i) out.push_back(xt::zeros<double>({d, std::size_t(0)}));
        return out;
    }
    // Two D x k matrices at most (the noises' columns side by side), each product formed in the
    // storage of what it replaces (docs/benchmarks-log.md "mem224"; the fortieth session).
    const std::optional<matrix_t> w = coordinates_side_by_side(ritz, ks, k, pass);
    matrix_t v = leading_side_by_side(ritz, ks, k, pass, w, false);
    matrix_t sv = leading_side_by_side(ritz, ks, k, pass, w, true);
    // s_j = Q c_j + p_j with c = (QᵀQ)⁺ Qᵀ s (Q orthonormal in practice: then c = Qᵀ s). With
    // coordinates, Qᵀ S = (Qᵀ Sxx Q) W = vsv W: m x m x k flops instead of D x m x k.
    matrix_t qs = xt::zeros<double>({m, k});
    if (w) blas::gemm_nn(m, k, m, 1.0, pass.vsv.data(), w->data(), 0.0, qs.data());
    else blas::gemm_tn(m, k, d, 1.0, pass.basis.data(), sv.data(), 0.0, qs.data());
    const eigen_result& eq = factors.frame;
    const double top = m ? std::max(eq.values(0), 0.0) : 0.0;
    matrix_t pc = xt::zeros<double>({m, k}), coef = xt::zeros<double>({m, k});
    blas::gemm_tn(m, k, m, 1.0, eq.vectors.data(), qs.data(), 0.0, pc.data());
    for (std::size_t i = 0; i < m; ++i)
        for (std::size_t j = 0; j < k; ++j) pc(i, j) = eq.values(i) > 1e-12 * top ? pc(i, j) / eq.values(i) : 0.0;
    blas::gemm_nn(m, k, m, 1.0, eq.vectors.data(), pc.data(), 0.0, coef.data());
    // μ_j G v_j = μ_j (c1 Sxx v_j + c2 Bd v_j), exact, in V's storage (V is read no more).
    block_products(blocks, pass.center, v, [&](std::size_t, const std::vector<std::size_t>& idx,
                                              const std::vector<double>&, const std::vector<double>& ob) {
        for (std::size_t i = 0; i < idx.size(); ++i)
            for (std::size_t j = 0; j < k; ++j)
                v(idx[i], j) = mu[j] * (c1[j] * sv(idx[i], j) + c2[j] * ob[i * k + j]);
    });
    // P = S − Q c in S's storage. Sxx s ≈ (Sxx Q) c + [N + blockdiag(Sxx − N)] p with
    // N = (Sxx Q) W⁺ (Sxx Q)ᵀ, W = Qᵀ Sxx Q: the Nyström approximation of Sxx from span Q itself
    // (rank m, exact on span Q, N ⪯ Sxx), so (Sxx Q) c + N p = (Sxx Q)(c + W⁺ (Sxx Q)ᵀ p), one
    // product; the block terms replace P in its storage.
    blas::gemm_nn(d, k, m, -1.0, pass.basis.data(), coef.data(), 1.0, sv.data());
    matrix_t sqp;
    const matrix_t& winv = factors.nystrom;
    block_terms_in_place(blocks, pass, winv, sv, sqp);
    blas::gemm_nn(m, k, m, 1.0, winv.data(), sqp.data(), 1.0, coef.data());
    sxx_product(pass, coef, 1.0, sv);
    // r_j = q² Sxx s_j − μ_j G v_j, in the storage of Sxx S.
    for (std::size_t i = 0; i < d; ++i)
        for (std::size_t j = 0; j < k; ++j) sv(i, j) = q2[j] * sv(i, j) - v(i, j);
    v = matrix_t();
    for (std::size_t i = 0, c0 = 0; i < noises.size(); c0 += ks[i], ++i) {
        matrix_t r = detail::fresh_zeros(d, ks[i]);
        for (std::size_t p = 0; p < d && ks[i]; ++p) std::copy(&sv(p, c0), &sv(p, c0) + ks[i], &r(p, 0));
        out.push_back(std::move(r));
    }
    return out;
}

matrix_t refinement_direction(const spectrum& sk, const restricted_statistics& pass, const noise_spec& noise,
                              const patch_blocks& blocks, matrix_t residuals, double rel_tol) {
    const std::size_t d = pass.dim();
    if (residuals.shape(0) != d)
        throw std::invalid_argument("refinement_direction: the residuals are not of this pass's dimension");
    sketch_denoising_options so;
    so.rel_tol = rel_tol;
    // Formed in the residuals' storage; the blocks' factors kept in the pass's cache (made by
    // denoising_restart), on disk beside Sxx Q when that is there.
    const std::string dir = pass.sv_stored ? pass.sv_stored->directory() : std::string();
    matrix_t t = sketched_gram_solve(sk, noise, blocks, std::move(residuals), so, nullptr, pass.gram_solves.get(), dir);
    detail::unit_columns(t, 0.0);
    return t;
}

matrix_t clean_refinement(const restricted_statistics& pass, const matrix_t& coords, const vector_t& values) {
    const std::size_t d = pass.dim(), m = pass.k(), k = coords.shape(1);
    if (pass.in_coordinates() || coords.shape(0) != m || values.size() < k || pass.basis.shape(1) != m)
        throw std::invalid_argument("clean_refinement: the Ritz coordinates are not of this pass's basis");
    matrix_t out = detail::fresh_zeros(d, k);
    if (k == 0 || d == 0) return out;
    sxx_product(pass, coords, 0.0, out);  // Sxx Q w_j
    matrix_t lw = coords;
    for (std::size_t i = 0; i < m; ++i)
        for (std::size_t j = 0; j < k; ++j) lw(i, j) *= values(j);
    blas::gemm_nn(d, k, m, -1.0, pass.basis.data(), lw.data(), 1.0, out.data());  // − λ_j Q w_j
    // A residual at rounding level (v_j already an eigenvector, e.g. of an exact sketch) is no
    // direction: left 0, so orthonormal_extension drops it instead of reading rounding noise.
    const double floor = 1e-10 * std::max(values(0), 0.0);
    detail::unit_columns(out, floor * floor);
    return out;
}

matrix_t leading_columns(const restricted_statistics& s, const restricted_statistics& pass, std::size_t k, bool sxx) {
    const matrix_t& own = sxx ? s.sv : s.basis;
    if (!s.in_coordinates()) {
        if (k > own.shape(1)) throw std::invalid_argument("leading_columns: more columns than the basis has");
        return xt::view(own, xt::all(), xt::range(0, k));
    }
    check_coordinates(s, pass, k);
    matrix_t out = detail::fresh_zeros(pass.dim(), k);
    coordinate_product(pass, xt::view(s.coords, xt::all(), xt::range(0, k)), sxx, out);
    return out;
}

namespace {
// What `extra` (D x e, overwritten) adds to the orthonormal columns Q (the first m of a D-row
// matrix of row stride ldq): block classical Gram–Schmidt with a Cholesky-QR-like step, done
// twice (BCGS2, "twice is enough": the first projection leaves components along Q of about ε
// times the column's norm before it, which the renormalisation can magnify to ε / (1e-10) at
// the dependence cut; the second projection takes them back to ε, and its renormalisation cut
// drops a column that lost more than half its norm to it). O(D (m + e) e) in BLAS-3 (a column
// at a time would be quadratic in copies at high D). Two projections where there were four:
// each is two D x m x e products, at the demo's restart m = 1,024, e = 192.
void extension_columns(const double* q, std::size_t ldq, std::size_t m, matrix_t& y) {
    double largest = 0.0;
    for (double sq : detail::column_squares(y)) largest = std::max(largest, sq);
    project_out(q, ldq, m, y);
    orthonormalize(y, 1e-20 * largest);
    project_out(q, ldq, m, y);
    orthonormalize(y, 0.25);  // unit columns now: what drifted from orthonormal is renormalised
}
}  // namespace

matrix_t orthonormal_extension(const matrix_t& q, const matrix_t& extra) {
    const std::size_t d = q.shape(0), m = q.shape(1), e = extra.shape(1);
    if (extra.shape(0) != d) throw std::invalid_argument("orthonormal_extension: the bases have different dimensions");
    if (e == 0) return q;
    matrix_t y = extra;
    extension_columns(q.data(), m, m, y);
    matrix_t out = detail::fresh_zeros(d, m + y.shape(1));
    for (std::size_t i = 0; i < d; ++i) {
        for (std::size_t j = 0; j < m; ++j) out(i, j) = q(i, j);
        for (std::size_t j = 0; j < y.shape(1); ++j) out(i, m + j) = y(i, j);
    }
    return out;
}

std::size_t orthonormal_extension(matrix_t& q, std::size_t m, matrix_t extra) {
    const std::size_t d = q.shape(0), cap = q.shape(1), e = extra.shape(1);
    if (extra.shape(0) != d) throw std::invalid_argument("orthonormal_extension: the bases have different dimensions");
    if (m > cap || e > cap - m)
        throw std::invalid_argument("orthonormal_extension: " + std::to_string(m) + " + " + std::to_string(e) +
                                    " columns do not fit in " + std::to_string(cap));
    if (e == 0) return m;
    extension_columns(q.data(), cap, m, extra);
    const std::size_t k = extra.shape(1);
    if (k == 0) return m;  // every column was dependent: extra(i, 0) would bind to null storage
    for (std::size_t i = 0; i < d; ++i)
        std::copy(&extra(i, 0), &extra(i, 0) + k, &q(i, m));
    return m + k;
}

matrix_t leading_columns_of(const matrix_t& q, std::size_t m) {
    const std::size_t d = q.shape(0);
    if (m > q.shape(1)) throw std::invalid_argument("leading_columns_of: more columns than the matrix has");
    matrix_t out = detail::fresh_matrix(d, m);
    if (m == 0) return out;
    for (std::size_t i = 0; i < d; ++i) std::copy(&q(i, 0), &q(i, 0) + m, &out(i, 0));
    return out;
}

}  // namespace recalign
