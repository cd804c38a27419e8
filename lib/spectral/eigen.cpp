#include "recalign/spectral/eigen.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

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
// descending eigenvalues with vectors as columns, signs fixed.
eigen_result descending(int info, const vector_t& w, const matrix_t& rows) {
    const std::size_t k = w.size(), n = rows.shape(1);
    eigen_result r;
    r.info = info;
    r.values = xt::zeros<double>({k});
    r.vectors = xt::zeros<double>({n, k});
    for (std::size_t j = 0; j < k; ++j) {
        const std::size_t src = k - 1 - j;
        r.values(j) = w(src);
        for (std::size_t i = 0; i < n; ++i) r.vectors(i, j) = rows(src, i);
    }
    fix_signs(r.vectors);
    return r;
}
}  // namespace

eigen_result sym_eigen(const matrix_t& a) {
    require_square(a, "sym_eigen");
    const std::size_t n = a.shape(0);
    matrix_t work = a;
    vector_t w = xt::zeros<double>({n});
    const int info = blas::syevd_rows(n, work.data(), w.data());
    return descending(info, w, work);
}

eigen_result sym_eigen_top(const matrix_t& a, std::size_t k) {
    require_square(a, "sym_eigen_top");
    const std::size_t n = a.shape(0);
    if (k > n) throw std::invalid_argument("sym_eigen_top: k = " + std::to_string(k) + " exceeds n = " + std::to_string(n));
    if (k == n) return sym_eigen(a);
    matrix_t work = a;
    vector_t w = xt::zeros<double>({k});
    matrix_t z = xt::zeros<double>({k, n});
    const int info = blas::syevr_top_rows(n, k, work.data(), w.data(), z.data());
    return descending(info, w, z);
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
