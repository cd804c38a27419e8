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
        if (s.gram.size()) norm = s.gram(j, j);
        else
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
    // With the pass's products (restricted_statistics::products) every factor is m x m already.
    matrix_t a = s.svsv;
    if (!a.size()) {
        a = xt::zeros<double>({k, k});
        blas::gemm_tn(k, k, d, 1.0, s.sv.data(), s.sv.data(), 0.0, a.data());
    }
    matrix_t g;
    if (noise.family == noise_family::gaussian) {
        matrix_t vv = s.gram;
        if (!vv.size()) {
            vv = xt::zeros<double>({k, k});
            blas::gemm_tn(k, k, d, 1.0, s.basis.data(), s.basis.data(), 0.0, vv.data());
        }
        const double shift = static_cast<double>(s.n) * noise.sigma * noise.sigma;
        g = s.vsv + shift * vv;
    } else {
        if (!blocks) throw std::invalid_argument("ritz_denoising: patch masking needs the exact patch blocks");
        if (s.in_coordinates())
            throw std::invalid_argument("ritz_denoising: patch masking needs the pass's own basis (Vᵀ Bd V)");
        if (blocks->dim() != d || blocks->n() != s.n)
            throw std::invalid_argument("ritz_denoising: the patch blocks (D = " + std::to_string(blocks->dim()) + ", n = " +
                                        std::to_string(blocks->n()) + ") are not of this data (D = " +
                                        std::to_string(d) + ", n = " + std::to_string(s.n) + ")");
        const keep_probabilities keep = blocks->coefficients(noise);
        a *= keep.q * keep.q;
        g = keep.k_diff * s.vsv + (keep.k_same - keep.k_diff) * restricted_blocks(s, *blocks);
    }
    return ritz_generalized(s, a, g, rel_tol);
}

matrix_t restricted_blocks(const restricted_statistics& s, const patch_blocks& blocks) {
    if (s.in_coordinates()) throw std::invalid_argument("restricted_blocks: Vᵀ Bd V needs the pass's own basis");
    const std::size_t d = s.dim(), k = s.k();
    const matrix_t* known = nullptr;
    for (const known_blocks& kb : s.blocks_known)
        if (kb.blocks == &blocks && kb.leading.shape(0) <= k && kb.leading.shape(0) == kb.leading.shape(1))
            known = &kb.leading;
    if (!known) return blocks.restrict_to(s.basis, s.center);
    const std::size_t a = known->shape(0), b = k - a;
    if (blocks.dim() != d) throw std::invalid_argument("restricted_blocks: the blocks are not of dimension " + std::to_string(d));
    if (b == 0) return *known;
    // Vᵀ Bd T for the columns T after the known ones, block by block: V_bᵀ (Bd_b T_b).
    matrix_t vt = xt::zeros<double>({k, b});
    for (std::size_t blk = 0; blk < blocks.blocks(); ++blk) {
        const std::vector<std::size_t>& idx = blocks.indices(blk);
        const std::size_t sb = idx.size();
        matrix_t vb = xt::zeros<double>({sb, k}), tb = xt::zeros<double>({sb, b}), bt = xt::zeros<double>({sb, b});
        for (std::size_t i = 0; i < sb; ++i) {
            const double* row = &s.basis(idx[i], 0);
            std::copy(row, row + k, &vb(i, 0));
            std::copy(row + a, row + k, &tb(i, 0));
        }
        const matrix_t bd = blocks.block(blk, s.center);
        blas::gemm_nn(sb, b, sb, 1.0, bd.data(), tb.data(), 0.0, bt.data());
        blas::gemm_tn(k, b, sb, 1.0, vb.data(), bt.data(), 1.0, vt.data());
    }
    matrix_t out = xt::zeros<double>({k, k});
    for (std::size_t i = 0; i < a; ++i)
        for (std::size_t j = 0; j < a; ++j) out(i, j) = (*known)(i, j);
    for (std::size_t i = 0; i < k; ++i)
        for (std::size_t j = 0; j < b; ++j) out(i, a + j) = vt(i, j);
    for (std::size_t i = 0; i < a; ++i)  // the lower-left block: Tᵀ Bd R = (Rᵀ Bd T)ᵀ
        for (std::size_t j = 0; j < b; ++j) out(a + j, i) = vt(i, j);
    for (std::size_t i = 0; i < b; ++i)
        for (std::size_t j = i; j < b; ++j) out(a + i, a + j) = out(a + j, a + i) = 0.5 * (vt(a + i, j) + vt(a + j, i));
    return out;
}

ritz_denoising_result ritz_generalized(const restricted_statistics& s, const matrix_t& a, const matrix_t& g,
                                       double rel_tol) {
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
    // In the pass's coordinates when it has its products: V W is then never formed (D x K).
    out.refined = s.gram.size() ? s.coordinates(e.vectors) : s.rotated(e.vectors);
    sub.basis = out.refined.basis;
    return out;
}

ritz_alignment_result ritz_alignment(const restricted_statistics& s, const alignment_options& options) {
    const std::size_t d = s.dim(), k = s.k();
    if (s.in_coordinates()) throw std::invalid_argument("ritz_alignment: the residuals need the pass's own basis");
    matrix_t vv = s.gram;
    if (!vv.size()) {
        vv = xt::zeros<double>({k, k});
        blas::gemm_tn(k, k, d, 1.0, s.basis.data(), s.basis.data(), 0.0, vv.data());
    }
    generalized_options o;
    o.rel_tol = options.rel_tol;
    const generalized_result e = generalized_eigen(s.vsv, vv, o);
    ritz_alignment_result out;
    out.refined = s.gram.size() ? s.coordinates(e.vectors) : s.rotated(e.vectors);
    out.curve = basis_alignment(out.refined, options);
    // ‖(Sxx V) w_j − θ_j V w_j‖ from the pass's V and Sxx V, a block of rows at a time.
    const std::size_t r = e.vectors.shape(1);
    out.residuals = xt::zeros<double>({r});
    constexpr std::size_t rows = 512;
    std::vector<double> y(std::min(d, rows) * r), sy(std::min(d, rows) * r), svr(s.sv_stored ? std::min(d, rows) * k : 0);
    for (std::size_t r0 = 0; r0 < d; r0 += rows) {
        const std::size_t rb = std::min(rows, d - r0);
        if (s.sv_stored) s.sv_rows(r0, rb, svr.data());  // Sxx V on disk (incremental_refinement.hpp)
        blas::gemm_nn(rb, r, k, 1.0, s.basis.data() + r0 * k, e.vectors.data(), 0.0, y.data());
        blas::gemm_nn(rb, r, k, 1.0, s.sv_stored ? svr.data() : s.sv.data() + r0 * k, e.vectors.data(), 0.0, sy.data());
        for (std::size_t i = 0; i < rb; ++i)
            for (std::size_t j = 0; j < r; ++j) {
                const double v = sy[i * r + j] - e.values(j) * y[i * r + j];
                out.residuals(j) += v * v;
            }
    }
    for (std::size_t j = 0; j < r; ++j) out.residuals(j) = std::sqrt(out.residuals(j));
    return out;
}

noise_impact_result basis_impact(const matrix_t& clean, const matrix_t& noisy, double rel_tol, std::size_t max_k) {
    const std::size_t d = clean.shape(0);
    if (noisy.shape(0) != d) throw std::invalid_argument("basis_impact: the bases have different dimensions");
    const std::size_t cu = clean.shape(1), cv = noisy.shape(1);
    matrix_t uu = xt::zeros<double>({cu, cu}), vv = xt::zeros<double>({cv, cv}), uv = xt::zeros<double>({cu, cv});
    blas::gemm_tn(cu, cu, d, 1.0, clean.data(), clean.data(), 0.0, uu.data());
    blas::gemm_tn(cv, cv, d, 1.0, noisy.data(), noisy.data(), 0.0, vv.data());
    blas::gemm_tn(cu, cv, d, 1.0, clean.data(), noisy.data(), 0.0, uv.data());
    return gram_impact(uu, vv, uv, rel_tol, max_k);
}

noise_impact_result gram_impact(const matrix_t& uu, const matrix_t& vv, const matrix_t& uv, double rel_tol,
                                std::size_t max_k) {
    // Q_U = U R_u⁻¹ and Q_V = V R_v⁻¹ (nested_orthonormalize's factors of the leading ku, kv
    // columns), so Q_Uᵀ Q_V = R_u⁻ᵀ (Uᵀ V) R_v⁻¹: Gram matrices only, no D x K copies.
    const std::size_t cu = uu.shape(0), cv = vv.shape(0);
    if (uv.shape(0) != cu || uv.shape(1) != cv) throw std::invalid_argument("gram_impact: Uᵀ V of the wrong shape");
    const std::size_t ku = std::min(cu, max_k), kv = std::min(cv, max_k);
    auto leading = [](const matrix_t& g, std::size_t rows, std::size_t cols) {
        matrix_t out = xt::zeros<double>({rows, cols});
        for (std::size_t i = 0; i < rows; ++i)
            for (std::size_t j = 0; j < cols; ++j) out(i, j) = g(i, j);
        return out;
    };
    const detail::nested_factor fu = detail::nested_cholesky(leading(uu, ku, ku), rel_tol);
    const detail::nested_factor fv = detail::nested_cholesky(leading(vv, kv, kv), rel_tol);
    matrix_t x = leading(uv, ku, kv);
    blas::trsm_right_upper(ku, kv, fv.r.data(), x.data());  // (Uᵀ V) R_v⁻¹
    matrix_t xt_ = xt::transpose(x);
    blas::trsm_right_upper(kv, ku, fu.r.data(), xt_.data());  // (R_u⁻ᵀ Uᵀ V R_v⁻¹)ᵀ
    matrix_t c = xt::transpose(xt_);  // c(i, j) = u_iᵀ v_j of the nested orthonormal bases
    for (std::size_t i = 0; i < ku; ++i)
        for (std::size_t j = 0; j < kv; ++j)
            if (fu.skipped[i] || fv.skipped[j]) c(i, j) = 0.0;
    noise_impact_result res;
    const std::size_t k = std::min(ku, kv);
    res.max_k = k;
    res.distance = xt::zeros<double>({k});
    res.normalised = xt::zeros<double>({k});
    if (k == 0) return res;
    // Σ_{i,j<K} c_ij², grown by the new row and column of each K.
    double inside = 0.0;
    for (std::size_t kk = 1; kk <= k; ++kk) {
        const std::size_t m = kk - 1;
        for (std::size_t j = 0; j < kk; ++j) inside += c(m, j) * c(m, j);
        for (std::size_t i = 0; i < m; ++i) inside += c(i, m) * c(i, m);
        const double t = std::max(0.0, static_cast<double>(kk) - inside);
        res.distance(m) = t;
        res.normalised(m) = t / static_cast<double>(kk);
    }
    return res;
}

namespace {
// The impact between the clean returned basis and V* (its basis, or its coordinates W and Gram
// in the same pass as the clean one: Uᵀ V = W_uᵀ (Qᵀ Q) W_v, no D-long vector).
noise_impact_result impact_of(const restricted_statistics& clean, const matrix_t& coords, const matrix_t& gram,
                              const matrix_t& basis, double rel_tol, std::size_t k) {
    if (!clean.in_coordinates() && !coords.size()) return basis_impact(clean.basis, basis, rel_tol, k);
    if (!clean.in_coordinates() || !coords.size() || coords.shape(0) != clean.coords.shape(0))
        throw std::invalid_argument("verified_denoising: the clean and the noisy subspaces are not in one pass's coordinates");
    const matrix_t& q = *clean.frame;
    const std::size_t m = q.shape(0), cu = clean.coords.shape(1), cv = coords.shape(1);
    matrix_t qw = xt::zeros<double>({m, cv}), uv = xt::zeros<double>({cu, cv});
    blas::gemm_nn(m, cv, m, 1.0, q.data(), coords.data(), 0.0, qw.data());
    blas::gemm_tn(cu, cv, m, 1.0, clean.coords.data(), qw.data(), 0.0, uv.data());
    return gram_impact(clean.gram, gram, uv, rel_tol, k);
}

// The curve, its relative differences and the noise impact of the returned V*
// (subspace.basis), with `refined` the exact restricted statistics of V* (basis_alignment
// reads them); `subspace` is moved into the result. `release` (optional): the basis of
// `refined` when it may be freed once read (subspace.basis holds V*: D x K doubles fewer at
// the peak of basis_impact).
verified_denoising_result finish_verified(const ritz_alignment_result& clean, denoising_subspace_result&& subspace,
                                          const restricted_statistics& refined, matrix_t* release,
                                          const alignment_options& options) {
    const alignment_result a = basis_alignment(refined, options);
    const matrix_t refined_coords = refined.in_coordinates() ? refined.coords : matrix_t();
    const matrix_t refined_gram = refined.in_coordinates() ? refined.gram : matrix_t();
    const centering refined_center = refined.center;
    const std::uint64_t refined_n = refined.n;
    const std::size_t refined_dim = refined.dim();
    if (release) *release = matrix_t();
    verified_denoising_result out;
    denoising_result& d = out.denoising;
    d.measure = options.measure;
    d.center = refined_center;
    d.n = refined_n;
    d.dim = refined_dim;
    d.classes = a.classes;
    d.subspace = std::move(subspace);
    d.normaliser = clean.curve.normaliser;
    d.skipped = a.skipped;
    const std::size_t k = std::min(d.subspace.informative, clean.curve.curve.size());
    d.max_k = k;
    if (k < clean.curve.curve.size())
        d.stop_reason = "the denoising encoder found on the sketch's span has " + std::to_string(k) +
                        " informative directions: the curve stops at K = " + std::to_string(k) + " of " +
                        std::to_string(clean.curve.curve.size());
    d.curve = xt::zeros<double>({k});
    d.clean_curve = xt::zeros<double>({k});
    d.relative_difference = xt::zeros<double>({k});
    double acc = 0.0;
    for (std::size_t j = 0; j < k; ++j) {
        acc += a.contributions(j);
        d.curve(j) = measure_value(options.measure, d.normaliser > 0 ? acc / d.normaliser : 0.0);
        d.clean_curve(j) = clean.curve.curve(j);
        d.relative_difference(j) = d.clean_curve(j) != 0 ? (d.curve(j) - d.clean_curve(j)) / d.clean_curve(j)
                                                         : std::numeric_limits<double>::quiet_NaN();
    }
    out.impact = impact_of(clean.refined, refined_coords, refined_gram, d.subspace.basis, options.rel_tol, k);
    return out;
}
}  // namespace


verified_denoising_result verified_denoising(const ritz_alignment_result& clean, const restricted_statistics& noisy,
                                             const noise_spec& noise, const patch_blocks* blocks,
                                             const alignment_options& options) {
    if (noise.family == noise_family::gaussian && noise.draws == 0) {
        // Corollary 3.1: G = Sxx + nσ²I keeps the eigenvectors of Sxx, so V* is the clean
        // returned basis itself (μ = θ² / (θ + nσ²), increasing in θ: the same order), and
        // its restricted statistics are the clean ones (no D x K copy of them).
        denoising_subspace_result v;
        v.basis = clean.refined.basis;
        const std::size_t k = clean.refined.k();
        v.eigenvalues = xt::zeros<double>({k});
        const double shift = static_cast<double>(clean.refined.n) * noise.sigma * noise.sigma;
        const double top = k ? std::max(clean.curve.eigenvalues(0), 0.0) : 0.0;
        for (std::size_t j = 0; j < k; ++j) {
            const double t = std::max(clean.curve.eigenvalues(j), 0.0);
            v.eigenvalues(j) = t > 0 ? t * t / (t + shift) : 0.0;
            if (t > options.rel_tol * top) v.informative = j + 1;
        }
        v.rank_g = k;
        return finish_verified(clean, std::move(v), clean.refined, nullptr, options);
    }
    ritz_denoising_result r = ritz_denoising(noisy, noise, blocks, options.rel_tol);
    r.refined.sv = matrix_t();  // not read below: D x K doubles fewer at the peak
    return finish_verified(clean, std::move(r.subspace), r.refined, &r.refined.basis, options);
}

verified_denoising_result verified_denoising(const ritz_alignment_result& clean, const ritz_denoising_result& found,
                                             const alignment_options& options) {
    denoising_subspace_result v = found.subspace;
    return finish_verified(clean, std::move(v), found.refined, nullptr, options);
}

tradeoff_result ritz_tradeoff(const restricted_statistics& s, double trace_xx, const tradeoff_options& options) {
    if (!s.cross) throw std::invalid_argument("ritz_tradeoff: the verification pass read no labels");
    const std::size_t d = s.dim(), m = s.k(), c = s.cross->sxy.shape(1);
    if (options.k == 0 || options.k > d)
        throw std::invalid_argument("ritz_tradeoff: K = " + std::to_string(options.k) + " must be in [1, " +
                                    std::to_string(d) + "]");
    if (!(options.rel_tol >= 0.0)) throw std::invalid_argument("ritz_tradeoff: rel_tol must be >= 0");
    for (double l : options.lambdas)
        if (!(l >= 0.0) || !std::isfinite(l))
            throw std::invalid_argument("ritz_tradeoff: lambda = " + std::to_string(l) + " must be finite and >= 0");
    const matrix_t& f = s.cross->sxy;  // Vᵀ Sxy: m x C
    matrix_t ffT = xt::zeros<double>({m, m});
    blas::gemm_nt(m, m, c, 1.0, f.data(), f.data(), 0.0, ffT.data());
    matrix_t ss = xt::zeros<double>({m, m});  // (Sxx V)ᵀ (Sxx V)
    blas::gemm_tn(m, m, d, 1.0, s.sv.data(), s.sv.data(), 0.0, ss.data());
    const double tr_yy = s.cross->syy_trace();

    tradeoff_result res;
    res.center = s.center;
    res.n = s.n;
    res.dim = d;
    res.classes = c;
    for (double lambda : options.lambdas) {
        generalized_options o;
        o.rel_tol = options.rel_tol;
        const generalized_result e = generalized_eigen(ffT + lambda * ss, s.vsv, o);
        res.rank_xx = e.rank_b;
        res.dropped = e.dropped;
        const std::size_t k = std::min(options.k, e.values.size());
        res.k = k;
        tradeoff_point p;
        p.lambda = lambda;
        p.status = solver_status_of(e.info);
        p.eigenvalues = xt::zeros<double>({k});
        matrix_t w = xt::zeros<double>({m, k});
        for (std::size_t j = 0; j < k; ++j) {
            p.eigenvalues(j) = e.values(j);
            for (std::size_t i = 0; i < m; ++i) w(i, j) = e.vectors(i, j);
        }
        // V* = V W with W ᵀ (Vᵀ Sxx V) W = I, so M = I: W* = Wᵀ Vᵀ Sxy and Z* = (Sxx V W)ᵀ.
        p.v = xt::zeros<double>({d, k});
        blas::gemm_nn(d, k, m, 1.0, s.basis.data(), w.data(), 0.0, p.v.data());
        p.w = xt::zeros<double>({k, c});
        blas::gemm_tn(k, c, m, 1.0, w.data(), f.data(), 0.0, p.w.data());
        matrix_t sw = xt::zeros<double>({d, k});
        blas::gemm_nn(d, k, m, 1.0, s.sv.data(), w.data(), 0.0, sw.data());
        p.z = xt::transpose(sw);
        double fit_y = 0.0, fit_x = 0.0;
        for (double v : p.w) fit_y += v * v;
        for (double v : sw) fit_x += v * v;
        p.supervised_loss = tr_yy - fit_y;
        p.reconstruction_loss = trace_xx - fit_x;
        p.loss = p.supervised_loss + lambda * p.reconstruction_loss;
        res.status = worst(res.status, p.status);
        res.points.push_back(std::move(p));
    }
    return res;
}

namespace {
// x -= Q (Qᵀ x), twice (once is not enough in floating point).
// x −= Q (Qᵀ x), twice, for Q the first m columns of a D-row matrix of row stride ldq.
void project_out(const double* q, std::size_t ldq, std::size_t m, matrix_t& x) {
    const std::size_t d = x.shape(0), e = x.shape(1);
    if (m == 0 || e == 0) return;
    matrix_t c = xt::zeros<double>({m, e});
    for (int round = 0; round < 2; ++round) {
        blas::gemm_tn(m, e, d, 1.0, q, ldq, x.data(), e, 0.0, c.data(), e);
        blas::gemm_nn(d, e, m, -1.0, q, ldq, c.data(), e, 1.0, x.data(), e);
    }
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
        matrix_t y = xt::zeros<double>({d, k});
        blas::gemm_nn(d, k, e, 1.0, x.data(), p.data(), 0.0, y.data());
        x = std::move(y);
        return;
    }
    constexpr std::size_t rows = 256;
    std::vector<double> t(std::min(d, rows) * e);
    for (std::size_t r0 = 0; r0 < d; r0 += rows) {
        const std::size_t rb = std::min(rows, d - r0);
        blas::gemm_nn(rb, e, e, 1.0, x.data() + r0 * e, p.data(), 0.0, t.data());
        std::copy(t.begin(), t.begin() + static_cast<std::ptrdiff_t>(rb * e), x.data() + r0 * e);
    }
}
}  // namespace

namespace {
// Bd M − blockdiag(U Λ Uᵀ) M · drop_low + U Λ Uᵀ M · add_low, block by block (D x k); with
// drop_low = add_low = 0 it is Bd M.
matrix_t blockwise(const patch_blocks& blocks, centering c, const spectrum* low, const matrix_t& m) {
    const std::size_t d = m.shape(0), k = m.shape(1), r = low ? low->rank() : 0;
    matrix_t out = xt::zeros<double>({d, k});
    for (std::size_t b = 0; b < blocks.blocks(); ++b) {
        const std::vector<std::size_t>& idx = blocks.indices(b);
        const std::size_t sb = idx.size();
        matrix_t mb = xt::zeros<double>({sb, k}), ob = xt::zeros<double>({sb, k});
        for (std::size_t i = 0; i < sb; ++i)
            for (std::size_t j = 0; j < k; ++j) mb(i, j) = m(idx[i], j);
        const matrix_t blk = blocks.block(b, c);
        blas::gemm_nn(sb, k, sb, 1.0, blk.data(), mb.data(), 0.0, ob.data());
        if (r > 0) {  // − U_b Λ U_bᵀ M_b
            matrix_t ub = xt::zeros<double>({sb, r}), um = xt::zeros<double>({r, k});
            for (std::size_t i = 0; i < sb; ++i)
                for (std::size_t j = 0; j < r; ++j) ub(i, j) = low->basis(idx[i], j);
            blas::gemm_tn(r, k, sb, 1.0, ub.data(), mb.data(), 0.0, um.data());
            for (std::size_t i = 0; i < r; ++i)
                for (std::size_t j = 0; j < k; ++j) um(i, j) *= std::max(low->eigenvalues(i), 0.0);
            blas::gemm_nn(sb, k, r, -1.0, ub.data(), um.data(), 1.0, ob.data());
        }
        for (std::size_t i = 0; i < sb; ++i)
            for (std::size_t j = 0; j < k; ++j) out(idx[i], j) = ob(i, j);
    }
    return out;
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

matrix_t denoising_refinement(const spectrum& sk, const restricted_statistics& pass, const noise_spec& noise,
                              const patch_blocks* blocks, std::size_t count, double rel_tol) {
    if (noise.draws > 0) throw std::invalid_argument("denoising_refinement: a Monte-Carlo noise has no closed form");
    if (noise.family == noise_family::gaussian) return xt::zeros<double>({pass.dim(), std::size_t(0)});
    if (!blocks) throw std::invalid_argument("denoising_refinement: patch masking needs the exact patch blocks");
    return denoising_refinement(sk, pass, noise, blocks, count, ritz_denoising(pass, noise, blocks, rel_tol), rel_tol);
}

matrix_t denoising_refinement(const spectrum& sk, const restricted_statistics& pass, const noise_spec& noise,
                              const patch_blocks* blocks, std::size_t count, const ritz_denoising_result& ritz,
                              double rel_tol) {
    const std::size_t d = pass.dim(), m = pass.k(), r = sk.rank();
    if (noise.draws > 0) throw std::invalid_argument("denoising_refinement: a Monte-Carlo noise has no closed form");
    if (sk.dim != d || sk.n != pass.n || sk.center != pass.center)
        throw std::invalid_argument("denoising_refinement: the sketch and the verification pass are not of the same data");
    if (noise.family == noise_family::gaussian) return xt::zeros<double>({d, std::size_t(0)});
    if (!blocks) throw std::invalid_argument("denoising_refinement: patch masking needs the exact patch blocks");
    const keep_probabilities keep = blocks->coefficients(noise);
    const std::size_t k = std::min(count, ritz.subspace.informative);
    if (k == 0) return xt::zeros<double>({d, std::size_t(0)});
    // Each D x k temporary is freed once read for the last time (BENCHMARKS.md "mem224": at the
    // block solves only R is left, not six of them).
    matrix_t v = leading_columns(ritz.refined, pass, k);
    matrix_t sv = leading_columns(ritz.refined, pass, k, true);
    // s_j = Q c_j + p_j with c = (QᵀQ)⁺ Qᵀ s (Q orthonormal in practice: then c = Qᵀ s).
    matrix_t qs = xt::zeros<double>({m, k}), qq = pass.gram;
    blas::gemm_tn(m, k, d, 1.0, pass.basis.data(), sv.data(), 0.0, qs.data());
    if (!qq.size()) {
        qq = xt::zeros<double>({m, m});
        blas::gemm_tn(m, m, d, 1.0, pass.basis.data(), pass.basis.data(), 0.0, qq.data());
    }
    const eigen_result eq = sym_eigen(qq);
    const double top = m ? std::max(eq.values(0), 0.0) : 0.0;
    matrix_t pc = xt::zeros<double>({m, k}), coef = xt::zeros<double>({m, k});
    blas::gemm_tn(m, k, m, 1.0, eq.vectors.data(), qs.data(), 0.0, pc.data());
    for (std::size_t i = 0; i < m; ++i)
        for (std::size_t j = 0; j < k; ++j) pc(i, j) = eq.values(i) > 1e-12 * top ? pc(i, j) / eq.values(i) : 0.0;
    blas::gemm_nn(m, k, m, 1.0, eq.vectors.data(), pc.data(), 0.0, coef.data());
    matrix_t p = sv;
    blas::gemm_nn(d, k, m, -1.0, pass.basis.data(), coef.data(), 1.0, p.data());
    // Sxx s ≈ (Sxx Q) c + [U Λ Uᵀ + blockdiag(Sxx − U Λ Uᵀ)] p.
    matrix_t as = blockwise(*blocks, pass.center, &sk, p);
    sxx_product(pass, coef, 1.0, as);
    if (r > 0) {
        matrix_t up = xt::zeros<double>({r, k});
        blas::gemm_tn(r, k, d, 1.0, sk.basis.data(), p.data(), 0.0, up.data());
        for (std::size_t i = 0; i < r; ++i)
            for (std::size_t j = 0; j < k; ++j) up(i, j) *= std::max(sk.eigenvalues(i), 0.0);
        blas::gemm_nn(d, k, r, 1.0, sk.basis.data(), up.data(), 1.0, as.data());
    }
    p = matrix_t();
    // R = q² Sxx S − (c1 S + c2 Bd V) diag(μ), in the storage of Sxx S.
    matrix_t bdv = blockwise(*blocks, pass.center, nullptr, v);
    v = matrix_t();
    const double c1 = keep.k_diff, c2 = keep.k_same - keep.k_diff, q2 = keep.q * keep.q;
    matrix_t res = std::move(as);
    for (std::size_t i = 0; i < d; ++i)
        for (std::size_t j = 0; j < k; ++j)
            res(i, j) = q2 * res(i, j) - ritz.subspace.eigenvalues(j) * (c1 * sv(i, j) + c2 * bdv(i, j));
    sv = matrix_t();
    bdv = matrix_t();
    sketch_denoising_options so;
    so.rel_tol = rel_tol;
    matrix_t t = sketched_gram_solve(sk, noise, *blocks, res, so);
    for (std::size_t j = 0; j < k; ++j) {
        double sq = 0.0;
        for (std::size_t i = 0; i < d; ++i) sq += t(i, j) * t(i, j);
        const double scale = sq > 0 ? 1.0 / std::sqrt(sq) : 0.0;
        for (std::size_t i = 0; i < d; ++i) t(i, j) *= scale;
    }
    return t;
}

matrix_t leading_columns(const restricted_statistics& s, const restricted_statistics& pass, std::size_t k, bool sxx) {
    const matrix_t& own = sxx ? s.sv : s.basis;
    if (!s.in_coordinates()) {
        if (k > own.shape(1)) throw std::invalid_argument("leading_columns: more columns than the basis has");
        return xt::view(own, xt::all(), xt::range(0, k));
    }
    const matrix_t& q = sxx ? pass.sv : pass.basis;
    const std::size_t d = pass.dim(), m = pass.k();
    if (pass.in_coordinates() || s.coords.shape(0) != m || s.dim() != d || k > s.coords.shape(1))
        throw std::invalid_argument("leading_columns: the statistics are not in this pass's coordinates");
    matrix_t w = xt::view(s.coords, xt::all(), xt::range(0, k));
    matrix_t out = xt::zeros<double>({d, k});
    if (sxx && pass.sv_stored) sxx_product(pass, w, 0.0, out);
    else blas::gemm_nn(d, k, m, 1.0, q.data(), w.data(), 0.0, out.data());
    return out;
}

namespace {
// What `extra` (D x e, overwritten) adds to the orthonormal columns Q (the first m of a D-row
// matrix of row stride ldq): block Gram–Schmidt with a Cholesky-QR-like step, done twice,
// O(D (m + e) e) in BLAS-3 (a column at a time would be quadratic in copies at high D).
void extension_columns(const double* q, std::size_t ldq, std::size_t m, matrix_t& y) {
    const std::size_t d = y.shape(0), e = y.shape(1);
    double largest = 0.0;
    for (std::size_t j = 0; j < e; ++j) {
        double sq = 0.0;
        for (std::size_t i = 0; i < d; ++i) sq += y(i, j) * y(i, j);
        largest = std::max(largest, sq);
    }
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
    matrix_t out = xt::zeros<double>({d, m + y.shape(1)});
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
    matrix_t out = xt::empty<double>({d, m});
    if (m == 0) return out;
    for (std::size_t i = 0; i < d; ++i) std::copy(&q(i, 0), &q(i, 0) + m, &out(i, 0));
    return out;
}

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
    return {res.relative, res.supervised_loss > 0 ? e / res.supervised_loss : 0.0};
}

}  // namespace recalign
