// blas::syevd_top_rows (all eigenvalues, the top k eigenvectors: Frequent Directions' shrink)
// against LAPACK's own xSYEVD on the same matrices, in both precisions: full-rank Gram
// matrices and rank-deficient ones (a cluster of zero eigenvalues, as a rank-deficient stream
// gives), for k = 0, 1, part and all.
#include <catch2/catch.hpp>

#include <lapacke.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include <recalign/core/blas.hpp>

#include "../common/helpers.hpp"

using namespace recalign;

namespace {
template <class T>
void check_top_rows(std::size_t n, std::size_t rank_rows, std::size_t width, double tol) {
    // G = X Xᵀ, X (n x width) with only `rank_rows` independent rows (the rest repeat them).
    const auto g = testing::random_rows(rank_rows, width, 7 + n + rank_rows, 0.0);
    std::vector<T> x(n * width), gram(n * n, T(0));
    for (std::size_t r = 0; r < n; ++r)
        for (std::size_t c = 0; c < width; ++c) x[r * width + c] = static_cast<T>(g[(r % rank_rows) * width + c]);
    blas::syrk_nt(n, width, T(1), x.data(), T(0), gram.data());
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < i; ++j) gram[i * n + j] = gram[j * n + i];
    std::vector<T> ref = gram, ref_w(n);
    // The reference: LAPACK's xSYEVD (column-major lower = row-major upper; row j of `ref`
    // is then the eigenvector of ref_w[j]).
    const int ni = static_cast<int>(n);
    int info = 0;
    if constexpr (sizeof(T) == 8)
        info = LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'V', 'L', ni, ref.data(), ni, ref_w.data());
    else
        info = LAPACKE_ssyevd(LAPACK_COL_MAJOR, 'V', 'L', ni, ref.data(), ni, ref_w.data());
    REQUIRE(info == 0);
    const double top = static_cast<double>(ref_w[n - 1]);
    for (std::size_t k : {std::size_t(0), std::size_t(1), n / 2, n}) {
        INFO("n " << n << ", rank " << std::min(rank_rows, width) << ", k " << k << (sizeof(T) == 8 ? ", double" : ", float"));
        std::vector<T> a = gram, w(n), z(n * n);
        REQUIRE(blas::syevd_top_rows(n, k, a.data(), w.data(), z.data()) == 0);
        for (std::size_t i = 0; i < n; ++i) CHECK(std::abs(static_cast<double>(w[i] - ref_w[i])) <= tol * top);
        for (std::size_t j = n - k; j < n; ++j) {
            const T* v = z.data() + j * n;
            double norm = 0, dot = 0, res = 0;
            for (std::size_t i = 0; i < n; ++i) {
                norm += static_cast<double>(v[i]) * v[i];
                dot += static_cast<double>(v[i]) * ref[j * n + i];
                double r = -static_cast<double>(w[j]) * v[i];
                for (std::size_t l = 0; l < n; ++l) r += static_cast<double>(gram[i * n + l]) * v[l];
                res = std::max(res, std::abs(r));
            }
            CHECK(std::abs(norm - 1.0) <= tol * n);
            CHECK(res <= tol * top);
            // Nonzero eigenvalues of random data are simple: the same vector up to sign.
            if (static_cast<double>(w[j]) > 1e-3 * top) CHECK(std::abs(std::abs(dot) - 1.0) <= 1e3 * tol);
        }
    }
    CHECK_THROWS_AS(blas::syevd_top_rows(n, n + 1, gram.data(), std::vector<T>(n).data(), std::vector<T>(n * n).data()),
                    std::invalid_argument);
}
}  // namespace

TEST_CASE("syevd_top_rows: LAPACK's xSYEVD eigenvalues and top eigenvectors, both precisions", "[blas]") {
    check_top_rows<double>(80, 80, 200, 1e-12);   // full rank
    check_top_rows<double>(90, 50, 200, 1e-12);   // rank 50: a cluster of 40 zeros
    check_top_rows<float>(80, 80, 200, 2e-5);
    check_top_rows<float>(90, 50, 200, 2e-5);
}
