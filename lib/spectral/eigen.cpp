#include "recalign/spectral/eigen.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "recalign/core/blas.hpp"

namespace recalign {

void fix_signs(matrix_t& v) {
    const std::size_t rows = v.shape(0), cols = v.shape(1);
    for (std::size_t j = 0; j < cols; ++j) {
        std::size_t best = 0;
        double mag = -1.0;
        for (std::size_t i = 0; i < rows; ++i) {
            const double a = std::abs(v(i, j));
            if (a > mag) {
                mag = a;
                best = i;
            }
        }
        if (rows > 0 && v(best, j) < 0)
            for (std::size_t i = 0; i < rows; ++i) v(i, j) = -v(i, j);
    }
}

namespace {
void require_square(const matrix_t& a, const char* who) {
    if (a.shape(0) != a.shape(1))
        throw std::invalid_argument(std::string(who) + ": matrix is " + std::to_string(a.shape(0)) + " x " +
                                    std::to_string(a.shape(1)) + ", not square");
}

// LAPACK's k eigenpairs in ascending order, eigenvector i in row i of `rows` (k x n): as
// descending eigenvalues with vectors as columns, signs fixed. k = n: in place (a transpose
// and a reversal of every row), so the n x n eigenvectors are never held twice.
eigen_result descending(int info, const vector_t& w, matrix_t rows) {
    const std::size_t k = w.size(), n = rows.shape(1);
    eigen_result r;
    r.info = info;
    r.values = xt::zeros<double>({k});
    for (std::size_t j = 0; j < k; ++j) r.values(j) = w(k - 1 - j);
    if (k == n) {
        blas::transpose_in_place(n, rows.data());  // column j: eigenvector j, ascending
        for (std::size_t i = 0; i < n; ++i) std::reverse(rows.data() + i * n, rows.data() + (i + 1) * n);
        r.vectors = std::move(rows);
    } else {
        r.vectors = xt::zeros<double>({n, k});
        for (std::size_t j = 0; j < k; ++j)
            for (std::size_t i = 0; i < n; ++i) r.vectors(i, j) = rows(k - 1 - j, i);
    }
    fix_signs(r.vectors);
    return r;
}

// dsyevr on the upper triangle of `a`, which LAPACK overwrites; the lower one (made equal to
// it first) is untouched and restores it, on every way out.
eigen_result eigen_restoring(matrix_t& a, std::size_t k) {
    const std::size_t n = a.shape(0);
    blas::symmetrize_from_upper(n, a.data());
    std::vector<double> diagonal(n);
    for (std::size_t i = 0; i < n; ++i) diagonal[i] = a(i, i);
    struct restore {
        matrix_t& a;
        const std::vector<double>& d;
        ~restore() {
            blas::symmetrize_from_lower(d.size(), a.data());
            for (std::size_t i = 0; i < d.size(); ++i) a(i, i) = d[i];
        }
    } guard{a, diagonal};
    vector_t w = xt::zeros<double>({k});  // syevr_top_rows gives LAPACK its n-long W itself
    matrix_t z = xt::zeros<double>({k, n});
    const int info = blas::syevr_top_rows(n, k, a.data(), w.data(), z.data());
    return descending(info, w, std::move(z));
}

void check_k(const matrix_t& a, std::size_t k, const char* who) {
    require_square(a, who);
    if (k > a.shape(0))
        throw std::invalid_argument(std::string(who) + ": k = " + std::to_string(k) + " exceeds n = " +
                                    std::to_string(a.shape(0)));
}
}  // namespace

eigen_result sym_eigen_in_place(matrix_t& a) {
    require_square(a, "sym_eigen");
    return eigen_restoring(a, a.shape(0));
}

eigen_result sym_eigen_top_in_place(matrix_t& a, std::size_t k) {
    check_k(a, k, "sym_eigen_top");
    return eigen_restoring(a, k);
}

eigen_result sym_eigen(const matrix_t& a) {
    require_square(a, "sym_eigen");
    matrix_t work = a;
    return sym_eigen_in_place(work);
}

eigen_result sym_eigen_top(const matrix_t& a, std::size_t k) {
    check_k(a, k, "sym_eigen_top");
    matrix_t work = a;
    return sym_eigen_top_in_place(work, k);
}

generalized_result generalized_eigen(const matrix_t& a, const matrix_t& b, const generalized_options& options) {
    const std::size_t n = b.shape(0);
    if (b.shape(1) != n || a.shape(0) != n || a.shape(1) != n)
        throw std::invalid_argument("generalized_eigen: A and B must be square and of the same size");
    if (!(options.rel_tol >= 0.0)) throw std::invalid_argument("generalized_eigen: rel_tol must be >= 0");
    generalized_result r;
    const eigen_result eb = sym_eigen(b);
    r.info = eb.info;
    const double cut = n > 0 ? options.rel_tol * std::max(eb.values(0), 0.0) : 0.0;
    std::size_t rank = 0;
    while (rank < n && eb.values(rank) > cut) ++rank;
    r.rank_b = rank;
    r.dropped = n - rank;
    // W = P_r D_r^{-1/2}  (n x r)
    matrix_t w = xt::zeros<double>({n, rank});
    for (std::size_t j = 0; j < rank; ++j) {
        const double s = 1.0 / std::sqrt(eb.values(j));
        for (std::size_t i = 0; i < n; ++i) w(i, j) = eb.vectors(i, j) * s;
    }
    // H = Wᵀ A W (r x r)
    matrix_t aw = xt::zeros<double>({n, rank});
    blas::gemm_nn(n, rank, n, 1.0, a.data(), w.data(), 0.0, aw.data());
    matrix_t h = xt::zeros<double>({rank, rank});
    blas::gemm_tn(rank, rank, n, 1.0, w.data(), aw.data(), 0.0, h.data());
    // Symmetrize against rounding before the symmetric solver reads one triangle.
    for (std::size_t i = 0; i < rank; ++i)
        for (std::size_t j = i + 1; j < rank; ++j) h(i, j) = h(j, i) = 0.5 * (h(i, j) + h(j, i));
    const eigen_result eh = sym_eigen(h);
    if (r.info == 0) r.info = eh.info;
    const std::size_t keep = options.top == 0 ? rank : std::min(options.top, rank);
    r.values = xt::zeros<double>({keep});
    for (std::size_t k = 0; k < keep; ++k) r.values(k) = eh.values(k);
    matrix_t q = xt::zeros<double>({rank, keep});
    for (std::size_t i = 0; i < rank; ++i)
        for (std::size_t k = 0; k < keep; ++k) q(i, k) = eh.vectors(i, k);
    r.vectors = xt::zeros<double>({n, keep});
    blas::gemm_nn(n, keep, rank, 1.0, w.data(), q.data(), 0.0, r.vectors.data());
    fix_signs(r.vectors);
    return r;
}

vector_t explained_fractions(const vector_t& values, double total) {
    vector_t out = xt::zeros<double>({values.size()});
    double acc = 0.0;
    for (std::size_t i = 0; i < values.size(); ++i) {
        acc += std::max(values(i), 0.0);
        out(i) = total > 0 ? acc / total : 0.0;
    }
    return out;
}

std::size_t k_for_fraction(const vector_t& values, double total, double fraction) {
    if (!(fraction >= 0.0 && fraction <= 1.0))
        throw std::invalid_argument("variance fraction " + std::to_string(fraction) + " is not in [0, 1]");
    double acc = 0.0;
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (acc >= fraction * total) return i;
        acc += std::max(values(i), 0.0);
    }
    return values.size();
}

}  // namespace recalign
