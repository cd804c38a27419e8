// The Nyström sketch's finishing linear algebra: the stable reconstruction of a pass (Tropp et
// al. 2017) over the whole basis [K | T_s], the spectrum it gives and the probes' error estimate.
// The streaming accumulator itself is in nystrom_sketch.cpp.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "nystrom_basis.hpp"
#include "tall_svd.hpp"
#include "recalign/core/blas.hpp"
#include "recalign/sketch/nystrom_sketch.hpp"
#include "recalign/spectral/eigen.hpp"

namespace recalign {

namespace detail {
namespace {
matrix_t basis_range(const nystrom_sketch& sk, const matrix_t& y, const std::vector<double>& uncentering) {
    const matrix_t& ky = sk.krylov_range();  // already in the chosen centering
    const std::size_t d = y.shape(0), ms = ky.shape(1), s = sk.width(), w = ms + s, yw = y.shape(1);
    matrix_t out = xt::zeros<double>({d, w});
    for (std::size_t i = 0; i < d; ++i) {
        if (ms) std::memcpy(out.data() + i * w, ky.data() + i * ms, ms * sizeof(double));
        std::memcpy(out.data() + i * w + ms, y.data() + i * yw, s * sizeof(double));
    }
    if (!uncentering.empty())
        blas::ger(d, s, static_cast<double>(sk.n()), sk.mean().data(), uncentering.data(), out.data() + ms, w);
    return out;
}

}  // namespace

// Tropp, Yurtsever, Udell, Cevher 2017, Algorithm 3 (stable Nyström for a PSD matrix from
// Y = A Ω, the first s columns of y): the shift ν keeps the Cholesky factorisation of
// Ωᵀ(Y + νΩ) away from rounding trouble; σ² − ν undoes it. If the Cholesky still fails the
// shift grows (a few times). Ω is regenerated block by block; besides y, one D x s copy
// (Y + νΩ, then E) and U are held.
reconstruction reconstruct(const nystrom_sketch& sk, const matrix_t& y, const std::vector<double>& uncentering) {
    const std::size_t d = y.shape(0), s = basis_width(sk);  // the whole basis [K | T_s] (block Krylov)
    reconstruction r;
    matrix_t yn = basis_range(sk, y, uncentering);
    double norm = 0.0;
    for (double v : yn) norm += v * v;
    norm = std::sqrt(norm);
    const bool zero = norm == 0.0;
    r.nu = zero ? 1.0 : std::sqrt(static_cast<double>(d)) * DBL_EPSILON * norm;
    const std::size_t cbmax = std::min(d, regenerated_rows);
    std::vector<double> scratch(cbmax * (sk.width() + sk.options().probes)), om(cbmax * s);
    matrix_t b;
    double added = 0.0;  // the multiple of Ω already in yn
    for (int attempt = 0; attempt < 6; ++attempt) {
        b = xt::zeros<double>({s, s});
        const double step = r.nu - added;
        for (std::size_t c0 = 0; c0 < d; c0 += regenerated_rows) {
            const std::size_t cb = std::min(regenerated_rows, d - c0);
            basis_rows(sk, c0, cb, scratch, om.data());
            double* yb = yn.data() + c0 * s;
            for (std::size_t i = 0; i < cb * s; ++i) yb[i] += step * om[i];
            blas::gemm_tn(s, s, cb, 1.0, om.data(), yb, 1.0, b.data());  // Ωᵀ (Y + νΩ)
        }
        added = r.nu;
        for (std::size_t i = 0; i < s; ++i)
            for (std::size_t j = i + 1; j < s; ++j) b(i, j) = 0.5 * (b(i, j) + b(j, i));
        r.info = blas::potrf_upper(s, b.data());
        if (r.info == 0) break;
        r.nu *= 100.0;
    }
    if (r.info != 0) {
        r.status = solver_status::breakdown;
        return r;
    }
    blas::trsm_right_upper(d, s, b.data(), yn.data());  // E = (Y + νΩ) R⁻¹
    vector_t sv = xt::zeros<double>({s});
    if (!svd_cholqr2(yn, r.u, sv)) {
        r.u = xt::zeros<double>({d, s});
        matrix_t vt = xt::zeros<double>({s, s});
        r.info = blas::gesdd_thin_notrans(d, s, yn.data(), sv.data(), r.u.data(), vt.data());
    }
    r.status = solver_status_of(r.info);
    r.lambda = xt::zeros<double>({s});
    for (std::size_t i = 0; i < s; ++i) r.lambda(i) = zero ? 0.0 : std::max(sv(i) * sv(i) - r.nu, 0.0);
    return r;
}
}  // namespace detail

using detail::columns;
using detail::reconstruct;
using detail::reconstruction;
using detail::regenerated_rows;
using detail::test_columns;

spectrum nystrom_spectrum(const nystrom_sketch& sk, const nystrom_spectrum_options& options) {
    if (sk.n() == 0)
        throw std::logic_error("nystrom_spectrum: pass " + std::to_string(sk.pass()) + " has seen no data");
    const std::size_t d = sk.dim(), s = sk.width(), t = sk.options().probes;
    const std::size_t want = options.rank == 0 ? sk.options().rank : options.rank;
    if (want > s)
        throw std::invalid_argument("nystrom_spectrum: rank " + std::to_string(want) + " exceeds the sketch width " +
                                    std::to_string(s));
    // The state's own range, centered: the uncentered sketch's term n μ (μᵀ T) is added to the
    // columns copied from it (no D x (s + probes) copy of the whole range at the finish's peak).
    const matrix_t& y = sk.centered_range();
    const std::vector<double> mt = sk.uncentering();
    reconstruction r = reconstruct(sk, y, mt);
    spectrum out;
    out.method = route::nystrom;
    out.center = sk.options().center;
    out.n = sk.n();
    out.dim = d;
    out.total = sk.trace();
    out.status = r.status;
    const std::size_t k = r.status == solver_status::converged ? want : 0;
    out.eigenvalues = xt::zeros<double>({k});
    out.basis = xt::zeros<double>({d, k});
    for (std::size_t j = 0; j < k; ++j) out.eigenvalues(j) = r.lambda(j);
    for (std::size_t i = 0; i < d; ++i)
        for (std::size_t j = 0; j < k; ++j) out.basis(i, j) = r.u(i, j);
    fix_signs(out.basis);
    out.explained = explained_fractions(out.eigenvalues, out.total);
    if (t > 0 && r.status == solver_status::converged) {
        // Residual of the probes: C G − U_k Λ_k (U_kᵀ G).
        matrix_t res = columns(y, s, t);
        if (!mt.empty()) blas::ger(d, t, static_cast<double>(sk.n()), sk.mean().data(), mt.data() + s, res.data());
        matrix_t ug = xt::zeros<double>({k, t});
        const std::size_t cbmax = std::min(d, regenerated_rows);
        std::vector<double> scratch(cbmax * (s + t)), g(cbmax * t);
        for (std::size_t c0 = 0; c0 < d; c0 += regenerated_rows) {
            const std::size_t cb = std::min(regenerated_rows, d - c0);
            test_columns(sk, c0, cb, s, t, scratch, g.data());
            blas::gemm_tn(k, t, cb, 1.0, out.basis.data() + c0 * k, g.data(), 1.0, ug.data());  // U_kᵀ G
        }
        for (std::size_t j = 0; j < k; ++j)
            for (std::size_t c = 0; c < t; ++c) ug(j, c) *= out.eigenvalues(j);
        blas::gemm_nn(d, t, k, -1.0, out.basis.data(), ug.data(), 1.0, res.data());
        double ss = 0.0;
        for (double v : res) ss += v * v;
        out.error_estimate = std::sqrt(ss / static_cast<double>(t));
    }
    return out;
}

double nystrom_relative_error(const nystrom_sketch& sketch, const nystrom_spectrum_options& options) {
    const spectrum sp = nystrom_spectrum(sketch, options);
    if (!(sp.total > 0.0)) return sp.error_estimate == 0.0 ? 0.0 : std::numeric_limits<double>::quiet_NaN();
    return sp.error_estimate / sp.total;
}

}  // namespace recalign
