// blas::syevd_top_rows (all eigenvalues, the top k eigenvectors: Frequent Directions' shrink)
// against LAPACK's own xSYEVD on the same matrices, in both precisions: full-rank Gram
// matrices and rank-deficient ones (a cluster of zero eigenvalues, as a rank-deficient stream
// gives), for k = 0, 1, part and all. And the products on many rows cut into row blocks
// (OpenBLAS's buffers stay small) against one cblas call: the same bits with one BLAS thread.
#include <catch2/catch.hpp>

#include <cblas.h>
#include <lapacke.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
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

namespace {
// One cblas call on all m rows against blas::'s, which cuts products with more than 8,192
// output rows into row blocks (lib/core/blas.cpp by_row_blocks: OpenBLAS's buffers stay
// small): the same bits (`bits`: run with one BLAS thread), else the same to rounding; inner
// dimensions below and above OpenBLAS's GEMM_Q (384).
void check_products(std::size_t m, std::size_t n, std::size_t k, const std::vector<double>& a,
                    const std::vector<double>& at, const std::vector<double>& b, const std::vector<double>& bt,
                    const std::vector<double>& c0, bool bits) {
    const int mi = static_cast<int>(m), ni = static_cast<int>(n), ki = static_cast<int>(k);
    auto same = [bits](const std::vector<double>& x, const std::vector<double>& y) {
        if (x.size() != y.size()) return false;
        if (bits) return std::memcmp(x.data(), y.data(), x.size() * sizeof(double)) == 0;
        double top = 0.0, diff = 0.0;
        for (std::size_t i = 0; i < x.size(); ++i) {
            top = std::max(top, std::fabs(x[i]));
            diff = std::max(diff, std::fabs(x[i] - y[i]));
        }
        return diff <= 1e-14 * top;
    };
    std::vector<double> ref = c0, got = c0;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, mi, ni, ki, 0.7, a.data(), ki, b.data(), ni, 0.3, ref.data(), ni);
    blas::gemm_nn(m, n, k, 0.7, a.data(), b.data(), 0.3, got.data());
    CHECK(same(ref, got));
    ref = c0, got = c0;
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, mi, ni, ki, -1.0, at.data(), mi, b.data(), ni, 1.0, ref.data(), ni);
    blas::gemm_tn(m, n, k, -1.0, at.data(), b.data(), 1.0, got.data());
    CHECK(same(ref, got));
    ref = c0, got = c0;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, mi, ni, ki, 1.0, a.data(), ki, bt.data(), ki, 0.0, ref.data(), ni);
    blas::gemm_nt(m, n, k, 1.0, a.data(), bt.data(), 0.0, got.data());
    CHECK(same(ref, got));
    // The strided forms on the last n - 3 columns of C (the first n - 3 of B).
    ref = c0, got = c0;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, mi, ni - 3, ki, 1.0, a.data(), ki, b.data(), ni, 1.0,
                ref.data() + 3, ni);
    blas::gemm_nn(m, n - 3, k, 1.0, a.data(), k, b.data(), n, 1.0, got.data() + 3, n);
    CHECK(same(ref, got));
    ref = c0, got = c0;
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, mi, ni - 3, ki, 1.0, at.data(), mi, b.data(), ni, 1.0,
                ref.data() + 3, ni);
    blas::gemm_tn(m, n - 3, k, 1.0, at.data(), m, b.data(), n, 1.0, got.data() + 3, n);
    CHECK(same(ref, got));
    // B R⁻¹ with R (n x n) upper triangular, well conditioned.
    std::vector<double> r(n * n, 0.0);
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = i; j < n; ++j) r[i * n + j] = i == j ? 2.0 + 0.1 * static_cast<double>(i) : 0.05 * c0[i * n + j];  // C is m x n, m ≥ n (B is k x n: k < n in the last case)
    ref = c0, got = c0;
    cblas_dtrsm(CblasRowMajor, CblasRight, CblasUpper, CblasNoTrans, CblasNonUnit, mi, ni, 1.0, r.data(), ni, ref.data(), ni);
    blas::trsm_right_upper(m, n, r.data(), got.data());
    CHECK(same(ref, got));
}

// Operands in [-1, 1) from splitmix64: any values serve a comparison of bits, and drawing Gaussian
// rows (testing::random_rows) was most of this test's time (85 s under ASan).
std::vector<double> filled(std::size_t rows, std::size_t cols, std::uint64_t seed) {
    std::vector<double> x(rows * cols);
    std::uint64_t state = seed * 0x9E3779B97F4A7C15ULL;
    for (double& v : x) {
        std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        v = static_cast<double>((z ^ (z >> 31)) >> 11) * 0x1.0p-52 - 1.0;
    }
    return x;
}

// The operands are drawn once per shape and used for both thread counts.
void check_row_blocks(std::size_t m, std::size_t n, std::size_t k) {
    const auto a = filled(m, k, 11 + k), at = filled(k, m, 12 + k), b = filled(k, n, 13 + k), bt = filled(n, k, 14 + k);
    const auto c0 = filled(m, n, 15);
    const int threads = openblas_get_num_threads();
    for (const bool bits : {true, false}) {
        INFO("one BLAS thread: " << bits);
        openblas_set_num_threads(bits ? 1 : std::max(threads, 2));
        check_products(m, n, k, a, at, b, bt, c0, bits);
    }
    openblas_set_num_threads(threads);
}
}  // namespace

TEST_CASE("products on many rows, cut into row blocks, give one call's bits with one BLAS thread", "[blas]") {
    // With one thread every row of C is computed by the same kernel over the same k, in one call
    // or in blocks (multiples of 64 rows): the same bits, on any of OpenBLAS's kernels. With more
    // threads OpenBLAS splits the one call's rows itself, and whether that split gives the
    // blocks' bits depends on its kernels (Haswell's did at the image sizes below; SkylakeX's,
    // the default on AVX-512 machines, do not): to rounding.
    check_row_blocks(12288, 37, 50);   // 64x64x3: 2 blocks of 6,144 rows
    check_row_blocks(37632, 40, 300);  // 112x112x3: 5 blocks of 7,552 (the last 7,424)
    check_row_blocks(37632, 8, 500);   // k past GEMM_Q: OpenBLAS splits k the same way in every block
    check_row_blocks(20000, 37, 500);
    check_row_blocks(8193, 64, 64);    // just past one block
    check_row_blocks(8192, 5, 3);      // one block: one call
}

TEST_CASE("symm_left_upper reads the upper triangle only: the product with the whole symmetric matrix", "[blas]") {
    const std::size_t m = 37, n = 5;
    const std::vector<double> x = testing::random_rows(m, m, 3, 0.0), y = testing::random_rows(m, n, 4, 0.0);
    std::vector<double> full(m * m), upper(m * m, std::numeric_limits<double>::quiet_NaN());
    for (std::size_t i = 0; i < m; ++i)
        for (std::size_t j = i; j < m; ++j) full[i * m + j] = full[j * m + i] = upper[i * m + j] = x[i * m + j];
    std::vector<double> want(m * n), got(m * n, 1.0);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(m), static_cast<int>(n), static_cast<int>(m),
                2.0, full.data(), static_cast<int>(m), y.data(), static_cast<int>(n), 0.0, want.data(), static_cast<int>(n));
    blas::symm_left_upper(m, n, 2.0, upper.data(), y.data(), 0.0, got.data());  // the NaNs below are not read
    double worst = 0.0;
    for (std::size_t i = 0; i < m * n; ++i) {
        const double e = std::abs(got[i] - want[i]) / (1.0 + std::abs(want[i]));
        if (!(e <= worst)) worst = e;  // a NaN (a lower element read) is kept
    }
    CHECK(worst < 1e-13);
}

TEST_CASE("symmetrize and transpose in place move every off-diagonal pair, at any size against the tiles", "[blas]") {
    // Sizes below, at and across the 32 x 32 tiles, and multiples of 256 (the patch blocks' 768).
    for (std::size_t n : {0, 1, 2, 31, 32, 33, 64, 95, 257, 768}) {
        std::vector<double> a(n * n);
        for (std::size_t i = 0; i < n * n; ++i) a[i] = static_cast<double>(i) + 0.5;
        std::vector<double> up = a, low = a, tr = a, want_up = a, want_low = a, want_tr = a;
        for (std::size_t i = 0; i < n; ++i)
            for (std::size_t j = i + 1; j < n; ++j) {
                want_up[j * n + i] = a[i * n + j];
                want_low[i * n + j] = a[j * n + i];
                std::swap(want_tr[i * n + j], want_tr[j * n + i]);
            }
        blas::symmetrize_from_upper(n, up.data());
        blas::symmetrize_from_lower(n, low.data());
        blas::transpose_in_place(n, tr.data());
        // Counts, not the vectors (Catch would print all n² elements of a failure).
        auto differ = [](const std::vector<double>& x, const std::vector<double>& y) {
            std::size_t k = 0;
            for (std::size_t i = 0; i < x.size(); ++i) k += x[i] != y[i];
            return k;
        };
        INFO("n = " << n);
        CHECK(differ(up, want_up) == 0);
        CHECK(differ(low, want_low) == 0);
        CHECK(differ(tr, want_tr) == 0);
    }
}
