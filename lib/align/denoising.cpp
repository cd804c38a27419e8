#include "recalign/align/denoising.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "nested.hpp"
#include "recalign/core/blas.hpp"
#include "recalign/io/spill.hpp"
#include "recalign/spectral/eigen.hpp"

namespace recalign {

namespace {
void check_noisy(const noise_moments& noisy, std::size_t d, const char* who) {
    if (noisy.bs.shape(0) != d || noisy.bs.shape(1) != d || noisy.g.shape(0) != d || noisy.g.shape(1) != d)
        throw std::invalid_argument(std::string(who) + ": the noise moments are not " + std::to_string(d) + " x " +
                                    std::to_string(d));
}

// V* from Bs and a G with null (or numerically null) directions, by the eigen whitening of G
// (consumed); `release_bs`: Bs's owner, emptied once Fᵀ is formed.
denoising_subspace_result whitened_subspace(const matrix_t& bs, matrix_t g, double rel_tol,
                                            const eigen_options& solver, matrix_t* release_bs) {
    const std::size_t d = g.shape(0);
    denoising_subspace_result out;
    // G = P D Pᵀ, whitening W = P_r D_r^{-1/2} (Theorem 3; MATH.md §4).
    eigen_result eg = sym_eigen_consuming(std::move(g), d, solver);
    out.status = solver_status_of(eg.info);
    const double cut = d > 0 ? rel_tol * std::max(eg.values(0), 0.0) : 0.0;
    std::size_t r = 0;
    while (r < d && eg.values(r) > cut) ++r;
    out.rank_g = r;
    out.dropped = d - r;
    out.eigenvalues = xt::zeros<double>({r});
    out.basis = xt::zeros<double>({d, r});
    if (r == 0) return out;
    matrix_t w;
    if (r == d) {
        w = std::move(eg.vectors);
    } else {
        w = xt::zeros<double>({d, r});
        for (std::size_t i = 0; i < d; ++i)
            for (std::size_t j = 0; j < r; ++j) w(i, j) = eg.vectors(i, j);
        eg.vectors = matrix_t();
    }
    for (std::size_t j = 0; j < r; ++j) {
        const double s = 1.0 / std::sqrt(eg.values(j));
        for (std::size_t i = 0; i < d; ++i) w(i, j) *= s;
    }
    // Fᵀ = Bsᵀ W (D x r); H = F Fᵀ, so the eigenvectors of H are the right singular vectors of Fᵀ.
    matrix_t ft = xt::zeros<double>({d, r});
    blas::gemm_tn(d, r, d, 1.0, bs.data(), w.data(), 0.0, ft.data());
    if (release_bs) *release_bs = matrix_t();
    vector_t s = xt::zeros<double>({r});
    out.status = worst(out.status, solver_status_of(blas::gesvd_right_in_place(d, r, ft.data(), s.data())));
    for (std::size_t j = 0; j < r; ++j) out.eigenvalues(j) = s(j) * s(j);
    // V* = W V, in W's storage by blocks of rows (Vᵀ is the leading r x r of ft).
    const std::size_t block = 256;
    matrix_t tmp = xt::zeros<double>({std::min(block, d), r});
    for (std::size_t i0 = 0; i0 < d; i0 += block) {
        const std::size_t rows = std::min(block, d - i0);
        blas::gemm_nt(rows, r, r, 1.0, w.data() + i0 * r, ft.data(), 0.0, tmp.data());
        std::copy(tmp.data(), tmp.data() + rows * r, w.data() + i0 * r);
    }
    ft = matrix_t();
    out.basis = std::move(w);
    fix_signs(out.basis);
    const double top = out.eigenvalues(0);
    while (out.informative < r && out.eigenvalues(out.informative) > rel_tol * top) ++out.informative;
    return out;
}

// The Cholesky route's second half: beside R (the upper triangle of `r`, D x D row-major, only
// read) and F = R⁻ᵀ Bs (consumed), C = F Fᵀ (SYRK; F released once C is formed), its
// eigenvectors Y (in C's storage with dsyevd, or C's top n pairs beside it, see below) and
// V* = R⁻¹ Y in place (TRSM). Peak beside R: F and C, then C and dsyevd's 2 D² (or Y). Where
// dsyevd is taken and `spill_dir` is not empty, `r` waits on disk meanwhile (io::parked_matrix:
// C and the workspace alone, 3 D x D in all) and is read back, the same bits, for the TRSM.
denoising_subspace_result cholesky_subspace(matrix_t& r, matrix_t f, std::uint64_t n, double rel_tol,
                                            const eigen_options& solver, const std::string& spill_dir) {
    const std::size_t d = f.shape(0);
    denoising_subspace_result out;
    out.rank_g = d;
    matrix_t c = matrix_t::from_shape({d, d});
    blas::syrk_nt(d, d, 1.0, f.data(), 0.0, c.data());  // upper triangle: all the solver reads
    f = matrix_t();
    // rank(C) <= n: where dsyevd's workspace does not fit `solver`, only the top n pairs.
    const bool subset = n > 0 && n < d && solver.workspace_bytes < divide_and_conquer_workspace(d);
    const std::size_t k = subset ? static_cast<std::size_t>(n) : d;
    std::optional<io::parked_matrix> parked;
    if (!spill_dir.empty() && d > 0 && choose_driver(d, k, solver) == eigen_driver::divide_and_conquer)
        parked.emplace(spill_dir, r);
    eigen_result ey;
    try {
        ey = sym_eigen_consuming(std::move(c), k, solver);
    } catch (...) {
        if (parked) r = parked->restore();
        throw;
    }
    if (parked) {
        r = parked->restore();
        parked.reset();
    }
    out.status = solver_status_of(ey.info);
    out.eigenvalues = std::move(ey.values);
    blas::trsm_left_upper(false, d, k, r.data(), ey.vectors.data());  // V* = R⁻¹ Y
    out.basis = std::move(ey.vectors);
    fix_signs(out.basis);
    const double top = k > 0 ? out.eigenvalues(0) : 0.0;
    while (out.informative < k && out.eigenvalues(out.informative) > rel_tol * top) ++out.informative;
    return out;
}

// V* through one Cholesky of G = Rᵀ R where G is numerically positive definite (dpocon's
// estimate of its reciprocal condition number above rel_tol: no direction of G would fall
// under the whitening's rel_tol cut): F = R⁻ᵀ Bs in Bs's storage (TRSM), C = F Fᵀ =
// R⁻ᵀ Bs Bsᵀ R⁻¹ (SYRK), its eigenvectors Y in C's storage and V* = R⁻¹ Y in place (TRSM):
// SciPy's eigh(Bs Bsᵀ, G) without forming Bs Bsᵀ. Beside Bs and G one D x D at a time (C, then
// Y), plus dsyevd's workspace where `solver` allows it. Bs = Σ E[x̃] xᵀ has rank <= n, so are
// C's nonzero eigenvalues: with n < D and no room for dsyevd, only the top n pairs are computed
// (dsyevr's index range: Y is D x n, O(D n) workspace, no back transformation of the null
// directions, beyond which V* is arbitrary anyway; not where dsyevd fits: at n = 0.73 D, D =
// 2,048 it took 2.5x dsyevd's CPU time, MRRR on the cluster of C's smallest nonzero
// eigenvalues). Otherwise G is restored (from its
// untouched strict lower triangle and its diagonal) and the whitening above finds V*.
denoising_subspace_result denoising_subspace_of(matrix_t& bs, matrix_t g, std::uint64_t n, double rel_tol,
                                                const eigen_options& solver, bool release_bs,
                                                const std::string& spill_dir) {
    if (!(rel_tol >= 0.0)) throw std::invalid_argument("denoising_subspace: rel_tol must be >= 0");
    const std::size_t d = g.shape(0);
    blas::symmetrize_from_upper(d, g.data());  // the upper triangle is G (as the whitening reads it)
    double anorm = 0.0;
    std::vector<double> diagonal(d);
    for (std::size_t i = 0; i < d; ++i) {
        double row = 0.0;
        for (std::size_t j = 0; j < d; ++j) row += std::abs(g(i, j));
        anorm = std::max(anorm, row);
        diagonal[i] = g(i, i);
    }
    double rcond = 0.0;
    if (d == 0 || blas::potrf_upper_in_place(d, g.data(), anorm, &rcond) != 0 || !(rcond > rel_tol)) {
        blas::symmetrize_from_lower(d, g.data());
        for (std::size_t i = 0; i < d; ++i) g(i, i) = diagonal[i];
        return whitened_subspace(bs, std::move(g), rel_tol, solver, release_bs ? &bs : nullptr);
    }
    blas::trsm_left_upper(true, d, d, g.data(), bs.data());  // F = R⁻ᵀ Bs
    return cholesky_subspace(g, std::move(bs), n, rel_tol, solver, spill_dir);  // bs: the caller's copy or its own
}
}  // namespace

denoising_subspace_result denoising_subspace(const noise_moments& noisy, double rel_tol, const eigen_options& solver) {
    check_noisy(noisy, noisy.g.shape(0), "denoising_subspace");
    matrix_t bs = noisy.bs;  // F is formed in its storage
    return denoising_subspace_of(bs, noisy.g, noisy.n, rel_tol, solver, false, std::string());
}

denoising_subspace_result denoising_subspace(noise_moments&& noisy, double rel_tol, const eigen_options& solver,
                                             const std::string& spill_dir) {
    check_noisy(noisy, noisy.g.shape(0), "denoising_subspace");
    noise_moments own = std::move(noisy);
    return denoising_subspace_of(own.bs, std::move(own.g), own.n, rel_tol, solver, true, spill_dir);
}

denoising_subspace_result masking_denoising_subspace(matrix_t& sxx, const noise_spec& spec, std::uint64_t n,
                                                     const image_shape& shape, double rel_tol,
                                                     const eigen_options& solver, const std::string& spill_dir) {
    if (!(rel_tol >= 0.0)) throw std::invalid_argument("denoising_subspace: rel_tol must be >= 0");
    const std::size_t d = sxx.shape(0);
    if (sxx.shape(1) != d) throw std::invalid_argument("masking_denoising_subspace: Sxx is not square");
    const mask_kernel k = masking_kernel(spec, d, shape);
    if (d == 0) return denoising_subspace(closed_form_noise(spec, sxx, n, shape), rel_tol, solver);
    // G's 1-norm and Sxx's diagonal before G is written over Sxx's upper triangle (as
    // denoising_subspace_of reads them from the G that closed_form_noise forms).
    double anorm = 0.0;
    std::vector<double> diagonal(d);
    for (std::size_t i = 0; i < d; ++i) {
        const double* si = sxx.data() + i * d;
        double row = 0.0;
        for (std::size_t j = 0; j < d; ++j) row += std::abs(si[j] * k(i, j));
        anorm = std::max(anorm, row);
        diagonal[i] = si[i];
    }
    for (std::size_t i = 0; i < d; ++i) {
        double* si = sxx.data() + i * d;
        for (std::size_t j = i; j < d; ++j) si[j] *= k(i, j);
    }
    // From here on, and also on a throw, Sxx is restored from its strict lower triangle and
    // its diagonal when this returns (the factor R lives in its upper triangle until then);
    // only if reading it back from its spill file fails (cholesky_subspace) is it left empty.
    struct restore_sxx {
        matrix_t& a;
        const std::vector<double>& diag;
        ~restore_sxx() {
            if (a.size() != diag.size() * diag.size()) return;  // not read back from its spill file
            blas::symmetrize_from_lower(diag.size(), a.data());
            for (std::size_t i = 0; i < diag.size(); ++i) a(i, i) = diag[i];
        }
    };
    {
        restore_sxx guard{sxx, diagonal};
        double rcond = 0.0;
        if (blas::potrf_upper_in_place(d, sxx.data(), anorm, &rcond) == 0 && rcond > rel_tol) {
            matrix_t f = matrix_t::from_shape({d, d});  // Bs = q Sxx from its lower triangle
            for (std::size_t i = 0; i < d; ++i) {
                const double* si = sxx.data() + i * d;
                double* fi = f.data() + i * d;
                for (std::size_t j = 0; j < i; ++j) fi[j] = si[j] * k.keep.q;
                fi[i] = diagonal[i] * k.keep.q;
            }
            blas::symmetrize_from_lower(d, f.data());
            blas::trsm_left_upper(true, d, d, sxx.data(), f.data());  // F = R⁻ᵀ Bs
            return cholesky_subspace(sxx, std::move(f), n, rel_tol, solver, spill_dir);
        }
    }
    // G is not numerically positive definite: the whitening, on Bs and G formed.
    return denoising_subspace(closed_form_noise(spec, sxx, n, shape), rel_tol, solver);
}

denoising_subspace_result gaussian_denoising_subspace(const statistics& clean, double shift, double rel_tol) {
    const char* who = "gaussian_denoising_subspace";
    clean.require(statistic::full_spectrum, who);
    if (!(rel_tol >= 0.0)) throw std::invalid_argument("denoising_subspace: rel_tol must be >= 0");
    if (!(shift >= 0.0) || !std::isfinite(shift))
        throw std::invalid_argument(std::string(who) + ": the shift n·sigma² must be finite and >= 0");
    const vector_t& lambda = clean.spec.eigenvalues;  // descending: so are λ + shift, G's eigenvalues
    const matrix_t& u = clean.spec.basis;
    const std::size_t d = clean.dim;
    denoising_subspace_result out;
    out.status = clean.spec.status;
    const double cut = d > 0 ? rel_tol * std::max(lambda(0) + shift, 0.0) : 0.0;
    std::size_t r = 0;
    while (r < d && lambda(r) + shift > cut) ++r;
    out.rank_g = r;
    out.dropped = d - r;
    // λ² / (λ + shift) grows with λ >= 0; a stable sort keeps U's order where rounding left
    // tiny negative λ.
    vector_t mu = xt::zeros<double>({r});
    std::vector<std::size_t> order(r);
    for (std::size_t j = 0; j < r; ++j) {
        mu(j) = lambda(j) * lambda(j) / (lambda(j) + shift);
        order[j] = j;
    }
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return mu(a) > mu(b); });
    out.eigenvalues = xt::zeros<double>({r});
    out.basis = matrix_t::from_shape({d, r});
    std::vector<double> scale(r);
    for (std::size_t j = 0; j < r; ++j) {
        out.eigenvalues(j) = mu(order[j]);
        scale[j] = 1.0 / std::sqrt(lambda(order[j]) + shift);
    }
    for (std::size_t i = 0; i < d; ++i) {
        const double* ui = u.data() + i * u.shape(1);
        double* vi = out.basis.data() + i * r;
        for (std::size_t j = 0; j < r; ++j) vi[j] = ui[order[j]] * scale[j];
    }
    fix_signs(out.basis);
    const double top = r > 0 ? out.eigenvalues(0) : 0.0;
    while (out.informative < r && out.eigenvalues(out.informative) > rel_tol * top) ++out.informative;
    return out;
}

namespace {
void check_same_data(const statistics& clean, const noise_moments& noisy, const char* who) {
    check_noisy(noisy, clean.dim, who);
    if (noisy.n != clean.n)
        throw std::invalid_argument(std::string(who) + ": the noise moments cover " + std::to_string(noisy.n) +
                                    " samples, the clean statistics " + std::to_string(clean.n));
}

// V_Kᵀ A for the leading K columns of V (D x r) and A (D x C): K x C.
matrix_t leading_transpose_times(const matrix_t& v, std::size_t k, const matrix_t& a) {
    const std::size_t d = v.shape(0), c = a.shape(1);
    matrix_t out = xt::zeros<double>({k, c});
    if (k && c && d) blas::gemm_tn(k, c, d, 1.0, v.data(), v.shape(1), a.data(), c, 0.0, out.data(), c);
    return out;
}

// V_Kᵀ Sxx V_K (K x K) by blocks of 256 (O(256 D) beside V): Sxx V_b where the statistics
// keep Sxx, else (Uᵀ V_K)_bᵀ Λ_b (Uᵀ V_K)_b over blocks of U's columns (Sxx = U Λ Uᵀ: the
// exact denoise's final report, which decomposed Sxx in its own storage).
matrix_t metric_gram(const statistics& clean, const matrix_t& v, std::size_t k) {
    const std::size_t d = v.shape(0), r = v.shape(1), block = 256;
    matrix_t gram = xt::zeros<double>({k, k});
    if (k == 0 || d == 0) return gram;
    matrix_t tmp = xt::zeros<double>({d, std::min(block, k)});
    if (clean.second_moment) {
        const matrix_t& sxx = *clean.second_moment;
        for (std::size_t j0 = 0; j0 < k; j0 += block) {
            const std::size_t b = std::min(block, k - j0);
            blas::gemm_nn(d, b, d, 1.0, sxx.data(), d, v.data() + j0, r, 0.0, tmp.data(), b);
            blas::gemm_tn(k, b, d, 1.0, v.data(), r, tmp.data(), b, 0.0, gram.data() + j0, k);
        }
        return gram;
    }
    const matrix_t& u = clean.spec.basis;
    const vector_t& lambda = clean.spec.eigenvalues;
    const std::size_t m = u.shape(1);
    matrix_t w = xt::zeros<double>({std::min(block, m), k}), lw = w;
    for (std::size_t i0 = 0; i0 < m; i0 += block) {
        const std::size_t b = std::min(block, m - i0);
        blas::gemm_tn(b, k, d, 1.0, u.data() + i0, m, v.data(), r, 0.0, w.data(), k);
        for (std::size_t i = 0; i < b; ++i)
            for (std::size_t j = 0; j < k; ++j) lw(i, j) = lambda(i0 + i) * w(i, j);
        blas::gemm_tn(k, k, b, 1.0, w.data(), k, lw.data(), k, 1.0, gram.data(), k);
    }
    return gram;
}

// Why the denoising curve ends where it does (the curve is only defined where V* is).
std::string stop_reason(const denoising_result& r, std::size_t clean_k) {
    if (r.max_k < clean_k)
        return "V* is determined only for its " + std::to_string(r.subspace.informative) +
               " generalized eigenvalues above rel_tol times the largest (" + std::to_string(r.subspace.dropped) +
               " null directions of G; beyond, any completion is optimal): the curve stops at K = " +
               std::to_string(r.max_k) + " of " + std::to_string(clean_k);
    return "";
}

}  // namespace

denoising_result denoising_alignment(const statistics& clean, const noise_moments& noisy,
                                     const denoising_options& options) {
    const char* who = "denoising_alignment";
    clean.targets(who);
    clean.require(statistic::full_spectrum, who);
    clean.sxx(who);
    check_same_data(clean, noisy, who);
    return denoising_alignment(clean, denoising_subspace(noisy, options.rel_tol), options);
}

denoising_result denoising_alignment(const statistics& clean, denoising_subspace_result subspace,
                                     const denoising_options& options) {
    const char* who = "denoising_alignment";
    const cross_moments& cross = clean.targets(who);
    clean.require(statistic::full_spectrum, who);
    const std::size_t d = clean.dim;
    if (subspace.basis.shape(0) != d)
        throw std::invalid_argument(std::string(who) + ": the subspace has " + std::to_string(subspace.basis.shape(0)) +
                                    " rows, the statistics D = " + std::to_string(d));
    denoising_result res;
    res.measure = options.measure;
    res.center = clean.center;
    res.n = clean.n;
    res.dim = d;
    res.classes = clean.classes();

    alignment_options ao;
    ao.measure = options.measure;
    ao.rel_tol = options.rel_tol;
    const alignment_result clean_curve = alignment_curve(clean, ao);
    res.normaliser = clean_curve.normaliser;
    res.subspace = std::move(subspace);
    res.max_k = std::min(res.subspace.informative, clean_curve.max_k);
    res.stop_reason = stop_reason(res, clean_curve.max_k);
    const std::size_t k = res.max_k;

    // Eq. (9): the supervised fit of span(V*_K) on the clean statistics, all K at once, from
    // Gram = V_Kᵀ Sxx V_K and V_Kᵀ Sxy (the nested basis never formed: no D x K copy).
    const vector_t contrib = [&] {
        cross_moments vcross = cross;
        vcross.sxy = leading_transpose_times(res.subspace.basis, k, cross.sxy);
        return detail::restricted_fit_contributions(metric_gram(clean, res.subspace.basis, k), vcross, options.measure,
                                                    options.rel_tol, res.skipped);
    }();
    res.curve = xt::zeros<double>({k});
    res.clean_curve = xt::zeros<double>({k});
    res.relative_difference = xt::zeros<double>({k});
    double acc = 0.0;
    for (std::size_t i = 0; i < k; ++i) {
        acc += contrib(i);
        res.curve(i) = measure_value(options.measure, res.normaliser > 0 ? acc / res.normaliser : 0.0);
        res.clean_curve(i) = clean_curve.curve(i);
        res.relative_difference(i) = res.clean_curve(i) != 0.0 ? (res.curve(i) - res.clean_curve(i)) / res.clean_curve(i)
                                                               : std::numeric_limits<double>::quiet_NaN();
    }
    return res;
}

noise_impact_result noise_impact(const statistics& clean, const noise_moments& noisy,
                                 const noise_impact_options& options) {
    const char* who = "noise_impact";
    clean.require(statistic::full_spectrum, who);
    check_same_data(clean, noisy, who);
    return noise_impact(clean, denoising_subspace(noisy, options.rel_tol), options);
}

noise_impact_result noise_impact(const statistics& clean, const denoising_subspace_result& sub,
                                 const noise_impact_options& options) {
    const char* who = "noise_impact";
    clean.require(statistic::full_spectrum, who);
    const std::size_t d = clean.dim;
    if (sub.basis.shape(0) != d)
        throw std::invalid_argument(std::string(who) + ": the subspace has " + std::to_string(sub.basis.shape(0)) +
                                    " rows, the statistics D = " + std::to_string(d));
    noise_impact_result res;
    const spectrum& eu = clean.spec;
    res.status = worst(sub.status, eu.status);
    std::size_t rank_u = 0;
    const double cut = d > 0 ? options.rel_tol * std::max(eu.eigenvalues(0), 0.0) : 0.0;
    while (rank_u < d && eu.eigenvalues(rank_u) > cut) ++rank_u;
    const std::size_t k = std::min(sub.informative, rank_u);
    res.max_k = k;
    res.distance = xt::zeros<double>({k});
    res.normalised = xt::zeros<double>({k});
    if (k == 0) return res;
    // Euclidean-orthonormal nested basis Q = V*_K R⁻¹ (V*_Kᵀ V*_K = Rᵀ R); with the complete
    // eigenbasis U of Sxx, Σ sin² θ(span Q_K, span U_K) = ‖U_{>K}ᵀ Q_K‖_F²: a sum of small
    // squares, no cancellation against K (so it resolves distances far below the rounding of K
    // itself). c = Uᵀ Q = (Uᵀ V*_K) R⁻¹ by blocks of rows (Q never formed: beside U and V* only
    // R and a block): row i of c adds Σ_{j<K} c_ij² to T(K) for every K <= i (0-based i, j).
    const std::size_t r = sub.basis.shape(1), m = eu.basis.shape(1), block = 256;
    matrix_t gram = xt::zeros<double>({k, k});
    blas::gemm_tn(k, k, d, 1.0, sub.basis.data(), r, sub.basis.data(), r, 0.0, gram.data(), k);
    const detail::nested_factor f = detail::nested_cholesky(std::move(gram), options.rel_tol);
    std::vector<double> t(k + 1, 0.0);
    matrix_t c = xt::zeros<double>({std::min(block, m), k});
    for (std::size_t i0 = 0; i0 < m; i0 += block) {
        const std::size_t b = std::min(block, m - i0);
        blas::gemm_tn(b, k, d, 1.0, eu.basis.data() + i0, m, sub.basis.data(), r, 0.0, c.data(), k);
        blas::trsm_right_upper(b, k, f.r.data(), c.data());
        for (std::size_t ii = 0; ii < b; ++ii) {
            const double* ci = c.data() + ii * k;
            const std::size_t last = std::min(i0 + ii, k);
            double prefix = 0.0;
            for (std::size_t kk = 1; kk <= last; ++kk) {
                if (!f.skipped[kk - 1]) prefix += ci[kk - 1] * ci[kk - 1];
                t[kk] += prefix;
            }
        }
    }
    for (std::size_t kk = 1; kk <= k; ++kk) {
        res.distance(kk - 1) = t[kk];
        res.normalised(kk - 1) = t[kk] / static_cast<double>(kk);
    }
    return res;
}

}  // namespace recalign
