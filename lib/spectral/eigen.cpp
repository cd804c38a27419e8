#include "recalign/spectral/eigen.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "recalign/core/blas.hpp"

namespace recalign {

// Row by row (each column's first largest-magnitude entry, as a walk down it would find): a
// walk down each column of a row-major D x k basis touches one cache line per element: 0.40 s
// for k = 256 at D = 150,528 against 0.02 (bench_layout; docs/benchmarks-log.md, the
// forty-second session).
void fix_signs(matrix_t& v) {
    const std::size_t rows = v.shape(0), cols = v.shape(1);
    if (rows == 0 || cols == 0) return;
    std::vector<double> mag(cols, -1.0), top(cols, 0.0);
    for (std::size_t i = 0; i < rows; ++i) {
        const double* row = &v(i, 0);
        for (std::size_t j = 0; j < cols; ++j) {
            const double a = std::abs(row[j]);
            if (a > mag[j]) {
                mag[j] = a;
                top[j] = row[j];
            }
        }
    }
    bool any = false;
    for (std::size_t j = 0; j < cols; ++j) any = any || top[j] < 0;
    if (!any) return;
    for (std::size_t i = 0; i < rows; ++i) {
        double* row = &v(i, 0);
        for (std::size_t j = 0; j < cols; ++j)
            if (top[j] < 0) row[j] = -row[j];
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
eigen_result descending(int info, const vector_t& w, matrix_t rows, eigen_driver driver) {
    const std::size_t k = rows.shape(0), n = rows.shape(1);
    eigen_result r;
    r.info = info;
    r.driver = driver;
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

// dsyevd in `z`'s own storage (its upper triangle is read): the eigenvectors replace it.
eigen_result divide_and_conquer(matrix_t z) {
    vector_t w = xt::zeros<double>({z.shape(0)});
    const int info = blas::syevd_rows(z.shape(0), z.data(), w.data());
    return descending(info, w, std::move(z), eigen_driver::divide_and_conquer);
}

// dsyevr's top k pairs of the upper triangle of `a`, which LAPACK overwrites; `consume`:
// `a` is released before the eigenvectors are reordered.
eigen_result mrrr(matrix_t& a, std::size_t k, bool consume) {
    const std::size_t n = a.shape(0);
    vector_t w = xt::zeros<double>({k});  // syevr_top_rows gives LAPACK its n-long W itself
    matrix_t z = xt::zeros<double>({k, n});
    const int info = blas::syevr_top_rows(n, k, a.data(), w.data(), z.data());
    if (consume) a = matrix_t();
    return descending(info, w, std::move(z), eigen_driver::mrrr);
}

// On the upper triangle of `a`, which ends as the symmetric matrix of it on every way out:
// dsyevd works in a copy (its eigenvectors), dsyevr in `a`'s upper triangle, restored from
// the lower one (made equal to it first), which LAPACK never touches.
eigen_result eigen_restoring(matrix_t& a, std::size_t k, const eigen_options& options) {
    const std::size_t n = a.shape(0);
    blas::symmetrize_from_upper(n, a.data());
    if (choose_driver(n, k, options) == eigen_driver::divide_and_conquer) return divide_and_conquer(a);
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
    return mrrr(a, k, false);
}

void check_k(const matrix_t& a, std::size_t k, const char* who) {
    require_square(a, who);
    if (k > a.shape(0))
        throw std::invalid_argument(std::string(who) + ": k = " + std::to_string(k) + " exceeds n = " +
                                    std::to_string(a.shape(0)));
}
}  // namespace

const char* eigen_driver_name(eigen_driver d) { return d == eigen_driver::divide_and_conquer ? "dsyevd" : "dsyevr"; }

std::uint64_t divide_and_conquer_workspace(std::size_t n) {
    const long double m = static_cast<long double>(n);
    const long double bytes = 8.0L * (1.0L + 6.0L * m + 2.0L * m * m) + 4.0L * (3.0L + 5.0L * m);
    const auto most = std::numeric_limits<std::uint64_t>::max();
    return bytes >= static_cast<long double>(most) ? most : static_cast<std::uint64_t>(bytes);
}

eigen_driver choose_driver(std::size_t n, std::size_t k, const eigen_options& options) {
    return k == n && divide_and_conquer_workspace(n) <= options.workspace_bytes ? eigen_driver::divide_and_conquer
                                                                                : eigen_driver::mrrr;
}

eigen_result sym_eigen_in_place(matrix_t& a, const eigen_options& options) {
    require_square(a, "sym_eigen");
    return eigen_restoring(a, a.shape(0), options);
}

eigen_result sym_eigen_top_in_place(matrix_t& a, std::size_t k) {
    check_k(a, k, "sym_eigen_top");
    return eigen_restoring(a, k, eigen_options{0});
}

eigen_result sym_eigen_consuming(matrix_t&& a, std::size_t k, const eigen_options& options) {
    check_k(a, k, "sym_eigen");
    matrix_t own = std::move(a);
    if (choose_driver(own.shape(0), k, options) == eigen_driver::divide_and_conquer)
        return divide_and_conquer(std::move(own));
    return mrrr(own, k, true);
}

eigen_result sym_eigenvalues_consuming(matrix_t&& a) {
    require_square(a, "sym_eigenvalues");
    matrix_t own = std::move(a);
    const std::size_t n = own.shape(0);
    vector_t w = xt::zeros<double>({n});
    eigen_result r;
    r.info = blas::syevd_values_rows(n, own.data(), w.data());
    r.driver = eigen_driver::divide_and_conquer;
    own = matrix_t();
    r.values = xt::zeros<double>({n});
    for (std::size_t j = 0; j < n; ++j) r.values(j) = w(n - 1 - j);
    r.vectors = xt::zeros<double>({0, 0});
    return r;
}

eigen_result sym_eigen(const matrix_t& a, const eigen_options& options) {
    require_square(a, "sym_eigen");
    return sym_eigen_consuming(matrix_t(a), a.shape(0), options);
}

eigen_result sym_eigen_top(const matrix_t& a, std::size_t k) {
    check_k(a, k, "sym_eigen_top");
    return sym_eigen_consuming(matrix_t(a), k);
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
