#include "recalign/align/denoising.hpp"

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
                                                const eigen_options& solver, bool release_bs) {
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
    denoising_subspace_result out;
    out.rank_g = d;
    blas::trsm_left_upper(true, d, d, g.data(), bs.data());  // F = R⁻ᵀ Bs
    matrix_t c = matrix_t::from_shape({d, d});
    blas::syrk_nt(d, d, 1.0, bs.data(), 0.0, c.data());  // upper triangle: all the solver reads
    if (release_bs) bs = matrix_t();
    // rank(C) <= n: where dsyevd's workspace does not fit `solver`, only the top n pairs.
    const bool subset = n > 0 && n < d && solver.workspace_bytes < divide_and_conquer_workspace(d);
    const std::size_t k = subset ? static_cast<std::size_t>(n) : d;
    eigen_result ey = sym_eigen_consuming(std::move(c), k, solver);
    out.status = solver_status_of(ey.info);
    out.eigenvalues = std::move(ey.values);
    blas::trsm_left_upper(false, d, k, g.data(), ey.vectors.data());  // V* = R⁻¹ Y
    g = matrix_t();
    out.basis = std::move(ey.vectors);
    fix_signs(out.basis);
    const double top = out.eigenvalues(0);
    while (out.informative < k && out.eigenvalues(out.informative) > rel_tol * top) ++out.informative;
    return out;
}
}  // namespace

denoising_subspace_result denoising_subspace(const noise_moments& noisy, double rel_tol, const eigen_options& solver) {
    check_noisy(noisy, noisy.g.shape(0), "denoising_subspace");
    matrix_t bs = noisy.bs;  // F is formed in its storage
    return denoising_subspace_of(bs, noisy.g, noisy.n, rel_tol, solver, false);
}

denoising_subspace_result denoising_subspace(noise_moments&& noisy, double rel_tol, const eigen_options& solver) {
    check_noisy(noisy, noisy.g.shape(0), "denoising_subspace");
    noise_moments own = std::move(noisy);
    return denoising_subspace_of(own.bs, std::move(own.g), own.n, rel_tol, solver, true);
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
    const matrix_t& sxx = clean.sxx(who);
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

    // Eq. (9): the supervised fit of span(V*_K) on the clean statistics, all K at once.
    matrix_t vk = xt::view(res.subspace.basis, xt::all(), xt::range(0, k));
    const detail::nested_basis nb = detail::nested_orthonormalize(std::move(vk), sxx, options.rel_tol);
    res.skipped = nb.n_skipped;
    const vector_t contrib = detail::fit_contributions(nb.columns, cross, options.measure);
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
    // Euclidean-orthonormal nested basis Q of V*; with the complete eigenbasis U of Sxx,
    // Σ sin² θ(span Q_K, span U_K) = ‖U_{>K}ᵀ Q_K‖_F²: a sum of small squares, no cancellation
    // against K (so it resolves distances far below the rounding of K itself).
    matrix_t vk = xt::view(sub.basis, xt::all(), xt::range(0, k));
    const detail::nested_basis q = detail::nested_orthonormalize(std::move(vk), matrix_t(), options.rel_tol);
    matrix_t c = xt::zeros<double>({d, k});  // c(i, j) = u_iᵀ q_j
    blas::gemm_tn(d, k, d, 1.0, eu.basis.data(), q.columns.data(), 0.0, c.data());
    // T(K) = Σ_{j<K} Σ_{i>=K} c_ij² (0-based); T(K) = T(K-1) − Σ_{j<K-1} c_{K-1,j}² + Σ_{i>=K} c_{i,K-1}².
    double t = 0.0;
    for (std::size_t kk = 1; kk <= k; ++kk) {
        const std::size_t row = kk - 1;
        for (std::size_t j = 0; j + 1 < kk; ++j) t -= c(row, j) * c(row, j);
        for (std::size_t i = kk; i < d; ++i) t += c(i, kk - 1) * c(i, kk - 1);
        res.distance(kk - 1) = t;
        res.normalised(kk - 1) = t / static_cast<double>(kk);
    }
    return res;
}

}  // namespace recalign
