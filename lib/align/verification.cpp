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
        if (kb.is_of(blocks) && kb.leading.shape(0) <= k && kb.leading.shape(0) == kb.leading.shape(1))
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

known_blocks known_blocks::of(const patch_blocks& blocks, matrix_t leading) {
    known_blocks k;
    k.geometry = blocks.config_hash();
    k.dim = blocks.dim();
    k.n = blocks.n();
    k.leading = std::move(leading);
    return k;
}

bool known_blocks::is_of(const patch_blocks& blocks) const {
    return geometry == blocks.config_hash() && dim == blocks.dim() && n == blocks.n();
}

void know_blocks(restricted_statistics& s, const std::vector<const patch_blocks*>& blocks) {
    std::vector<known_blocks> full;
    for (const patch_blocks* b : blocks) {
        if (!b) continue;
        bool seen = false;
        for (const known_blocks& f : full) seen = seen || f.is_of(*b);
        if (!seen) full.push_back(known_blocks::of(*b, restricted_blocks(s, *b)));
    }
    s.blocks_known = std::move(full);
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

ritz_pairs_result ritz_pairs(const restricted_statistics& s, double rel_tol) {
    const std::size_t d = s.dim(), k = s.k();
    if (s.in_coordinates()) throw std::invalid_argument("ritz_alignment: the residuals need the pass's own basis");
    matrix_t vv = s.gram;
    if (!vv.size()) {
        vv = xt::zeros<double>({k, k});
        blas::gemm_tn(k, k, d, 1.0, s.basis.data(), s.basis.data(), 0.0, vv.data());
    }
    generalized_options o;
    o.rel_tol = rel_tol;
    const generalized_result e = generalized_eigen(s.vsv, vv, o);
    ritz_pairs_result out;
    out.values = e.values;
    out.vectors = e.vectors;
    out.refined = s.gram.size() ? s.coordinates(e.vectors) : s.rotated(e.vectors);
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

ritz_spectrum_result ritz_spectrum(const spectrum& sketch, const restricted_statistics& pass, bool with_basis,
                                   double rel_tol) {
    if (pass.dim() != sketch.dim || pass.n != sketch.n || pass.center != sketch.center)
        throw std::invalid_argument("ritz_spectrum: the verification pass (D = " + std::to_string(pass.dim()) +
                                    ", n = " + std::to_string(pass.n) + ", " + centering_name(pass.center) +
                                    ") is not of the sketch's rows (D = " + std::to_string(sketch.dim) + ", n = " +
                                    std::to_string(sketch.n) + ", " + centering_name(sketch.center) + ")");
    ritz_pairs_result p = ritz_pairs(pass, rel_tol);
    ritz_spectrum_result out;
    spectrum& s = out.spec;
    s.method = sketch.method;
    s.center = sketch.center;
    s.n = sketch.n;
    s.dim = sketch.dim;
    s.total = sketch.total;
    s.error_bound = sketch.error_bound;
    s.error_estimate = sketch.error_estimate;
    s.status = sketch.status;
    s.eigenvalues = std::move(p.values);
    s.explained = explained_fractions(s.eigenvalues, s.total);
    clip_negative_eigenvalues(s);  // Vᵀ Sxx V is PSD: a negative θ is rounding, recorded as finish() does
    s.ritz = true;
    const std::size_t d = pass.dim(), k = pass.k(), m = s.eigenvalues.size();
    if (with_basis) {
        s.basis = xt::zeros<double>({d, m});  // Y = V W
        if (d && m && k) blas::gemm_nn(d, m, k, 1.0, pass.basis.data(), p.vectors.data(), 0.0, s.basis.data());
        fix_signs(s.basis);  // Spectrum's convention; residuals and values do not depend on it
    }
    out.residuals = std::move(p.residuals);
    return out;
}

ritz_alignment_result ritz_alignment(const restricted_statistics& s, const alignment_options& options) {
    ritz_pairs_result p = ritz_pairs(s, options.rel_tol);
    ritz_alignment_result out;
    out.refined = std::move(p.refined);
    out.curve = basis_alignment(out.refined, options);
    out.residuals = std::move(p.residuals);
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

}  // namespace recalign
