#include "nested.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <stdexcept>
#include <vector>

#include "recalign/core/blas.hpp"

namespace recalign::detail {

nested_factor nested_cholesky(const matrix_t& gram, double rel_tol) { return nested_cholesky(matrix_t(gram), rel_tol); }

nested_factor nested_cholesky(matrix_t&& gram, double rel_tol) {
    const std::size_t k = gram.shape(0);
    // Gram's upper triangle is the matrix (both triangles written: the strict lower one restores
    // it after dpotrf, which writes only the upper) and its diagonal is kept aside.
    blas::symmetrize_from_upper(k, gram.data());
    std::vector<double> diagonal(k);
    double top = 0.0;
    for (std::size_t i = 0; i < k; ++i) {
        diagonal[i] = gram(i, i);
        top = std::max(top, diagonal[i]);
    }
    // Gram = Rᵀ R (upper R, row-major), dropping dependent columns: a dropped column gets
    // R_jj = 1 and a zero row and column, so the triangular solve leaves the other columns
    // exactly as the Cholesky factor of the kept ones gives them; it is zeroed after.
    // Column j is dropped when its remainder R_jj² is not above rel_tol · Gram_jj, or Gram_jj
    // not above rel_tol · the largest. LAPACK's blocked dpotrf first: where it succeeds and drops
    // nothing, its R is the factor (the same arithmetic, in level-3 BLAS); otherwise the
    // right-looking loop below, one symmetric rank-1 update (BLAS dsyr) of the rest per row.
    nested_factor out;
    out.skipped.assign(k, 0);
    const auto dropped = [&](std::size_t j, double s) { return !(s > rel_tol * diagonal[j]) || !(diagonal[j] > rel_tol * top); };
    out.r = std::move(gram);  // factored in Gram's storage
    matrix_t& r = out.r;
    if (blas::potrf_upper_in_place(k, r.data()) == 0) {
        bool any = false;
        for (std::size_t j = 0; j < k && !any; ++j) any = dropped(j, r(j, j) * r(j, j));
        if (!any) {
            for (std::size_t i = 0; i < k; ++i)
                for (std::size_t j = 0; j < i; ++j) r(i, j) = 0.0;
            return out;
        }
    }
    blas::symmetrize_from_lower(k, r.data());  // Gram again
    for (std::size_t i = 0; i < k; ++i) r(i, i) = diagonal[i];
    // `r` holds the remainder Gram − Σ_{i<j} r_iᵀ r_i in its upper triangle at row j.
    for (std::size_t j = 0; j < k; ++j) {
        double* row = r.data() + j * k;
        const double s = row[j];
        std::fill(row, row + j, 0.0);
        if (dropped(j, s)) {
            out.skipped[j] = 1;
            ++out.n_skipped;
            std::fill(row + j + 1, row + k, 0.0);
            row[j] = 1.0;
            continue;
        }
        const double rjj = std::sqrt(s);
        row[j] = rjj;
        for (std::size_t c = j + 1; c < k; ++c) row[c] /= rjj;
        if (j + 1 < k) blas::syr_upper(k - j - 1, -1.0, row + j + 1, r.data() + (j + 1) * k + j + 1, k);
    }
    return out;
}

nested_basis nested_orthonormalize(matrix_t v, const matrix_t& metric, double rel_tol) {
    const std::size_t d = v.shape(0), k = v.shape(1);
    // Gram = Vᵀ M V (k x k).
    matrix_t gram = xt::zeros<double>({k, k});
    if (metric.size() == 0) {
        blas::gemm_tn(k, k, d, 1.0, v.data(), v.data(), 0.0, gram.data());
    } else {
        matrix_t mv = xt::zeros<double>({d, k});
        blas::gemm_nn(d, k, d, 1.0, metric.data(), v.data(), 0.0, mv.data());
        blas::gemm_tn(k, k, d, 1.0, v.data(), mv.data(), 0.0, gram.data());
    }
    const nested_factor f = nested_cholesky(gram, rel_tol);
    nested_basis out;
    out.skipped = f.skipped;
    out.n_skipped = f.n_skipped;
    out.columns = std::move(v);
    blas::trsm_right_upper(d, k, f.r.data(), out.columns.data());
    for (std::size_t j = 0; j < k; ++j)
        if (out.skipped[j])
            for (std::size_t i = 0; i < d; ++i) out.columns(i, j) = 0.0;
    return out;
}

namespace {
// c_i = Σ_j a(i, j) b(i, j): row i's contribution ã_i W ã_iᵀ, given b = A W.
vector_t row_dots(const matrix_t& a, const matrix_t& b) {
    const std::size_t k = a.shape(0), c = a.shape(1);
    vector_t out = xt::zeros<double>({k});
    for (std::size_t i = 0; i < k; ++i) {
        double s = 0.0;
        for (std::size_t j = 0; j < c; ++j) s += a(i, j) * b(i, j);
        out(i) = s;
    }
    return out;
}
}  // namespace

vector_t restricted_fit_contributions(matrix_t gram, const cross_moments& vcross, alignment_measure m,
                                      double rel_tol, std::size_t& skipped) {
    const std::size_t k = gram.shape(0), c = vcross.sxy.shape(1);
    const nested_factor f = nested_cholesky(std::move(gram), rel_tol);
    skipped = f.n_skipped;
    // ṽ_jᵀ Sxy = row j of R⁻ᵀ (Vᵀ Sxy): solve (Vᵀ Sxy)ᵀ R⁻¹ (C x K) in place.
    matrix_t at = xt::transpose(vcross.sxy);
    blas::trsm_right_upper(c, k, f.r.data(), at.data());
    cross_moments projected = vcross;
    projected.sxy = xt::transpose(at);
    for (std::size_t j = 0; j < k; ++j)
        if (f.skipped[j])
            for (std::size_t i = 0; i < c; ++i) projected.sxy(j, i) = 0.0;
    // fit_contributions with the identity as Ṽ (not formed: K x K): c_j = ã_j W ã_jᵀ.
    const matrix_t& a = projected.sxy;
    const matrix_t as = m != alignment_measure::fit ? projected.times_syy(a) : a;
    return row_dots(a, as);
}

vector_t fit_contributions(const matrix_t& vt, const cross_moments& cross, alignment_measure m) {
    const std::size_t d = vt.shape(0), k = vt.shape(1), c = cross.sxy.shape(1);
    matrix_t a = xt::zeros<double>({k, c});
    blas::gemm_tn(k, c, d, 1.0, vt.data(), cross.sxy.data(), 0.0, a.data());
    const matrix_t as = m != alignment_measure::fit ? cross.times_syy(a) : a;
    return row_dots(a, as);
}

double measure_normaliser(const cross_moments& cross, alignment_measure m, const vector_t& complete) {
    double t = 0.0;
    switch (m) {
        case alignment_measure::paper: t = cross.syy_frobenius2(); break;
        case alignment_measure::fit: t = cross.syy_trace(); break;
        case alignment_measure::rank:
        case alignment_measure::published:
            for (double v : complete) t += v;
            break;
    }
    return t;
}

}  // namespace recalign::detail

namespace recalign::detail {

void multiply_rows_in_place(matrix_t& x, const matrix_t& p) {
    const std::size_t d = x.shape(0), e = x.shape(1);
    if (p.shape(0) != e || p.shape(1) != e)
        throw std::invalid_argument("multiply_rows_in_place: P is not e x e for x's e columns");
    if (d == 0 || e == 0) return;
    constexpr std::size_t rows = 256;
    std::vector<double> t(std::min(d, rows) * e);
    for (std::size_t r0 = 0; r0 < d; r0 += rows) {
        const std::size_t rb = std::min(rows, d - r0);
        blas::gemm_nn(rb, e, e, 1.0, x.data() + r0 * e, p.data(), 0.0, t.data());
        std::copy(t.begin(), t.begin() + static_cast<std::ptrdiff_t>(rb * e), x.data() + r0 * e);
    }
}

}  // namespace recalign::detail
