#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include <recalign/spectral/eigen.hpp>
#include <recalign/spectral/spectrum.hpp>
#include <recalign/spectral/statistics.hpp>

#include "../common/helpers.hpp"

using namespace recalign;

namespace {
matrix_t random_spd(std::size_t n, std::uint64_t seed, std::size_t rank = 0) {
    const std::size_t k = rank ? rank : n + 3;
    const auto g = testing::random_rows(k, n, seed, 0.0);
    matrix_t a = xt::zeros<double>({n, n});
    for (std::size_t r = 0; r < k; ++r)
        for (std::size_t i = 0; i < n; ++i)
            for (std::size_t j = 0; j < n; ++j) a(i, j) += g[r * n + i] * g[r * n + j];
    return a;
}
double max_abs(const matrix_t& m) {
    double v = 0;
    for (double x : m) v = std::max(v, std::abs(x));
    return v;
}
}  // namespace

TEST_CASE("sym_eigen: descending, orthonormal, small residual, deterministic signs", "[eigen]") {
    const matrix_t a = random_spd(30, 1);
    const eigen_result e = sym_eigen(a);
    REQUIRE(e.converged());
    for (std::size_t i = 1; i < 30; ++i) CHECK(e.values(i - 1) >= e.values(i));
    const matrix_t v = e.vectors;
    matrix_t vtv = xt::zeros<double>({30, 30}), res = xt::zeros<double>({30, 30});
    for (std::size_t i = 0; i < 30; ++i)
        for (std::size_t j = 0; j < 30; ++j) {
            double s = 0, r = 0;
            for (std::size_t k = 0; k < 30; ++k) {
                s += v(k, i) * v(k, j);
                r += a(i, k) * v(k, j);
            }
            vtv(i, j) = s - (i == j ? 1.0 : 0.0);
            res(i, j) = r - v(i, j) * e.values(j);
        }
    CHECK(max_abs(vtv) < 1e-13);
    CHECK(max_abs(res) < 1e-12 * e.values(0));
    for (std::size_t j = 0; j < 30; ++j) {
        std::size_t arg = 0;
        for (std::size_t i = 1; i < 30; ++i)
            if (std::abs(v(i, j)) > std::abs(v(arg, j))) arg = i;
        CHECK(v(arg, j) > 0);
    }
    CHECK_THROWS_AS(sym_eigen(xt::zeros<double>({3, 4})), std::invalid_argument);
}

TEST_CASE("generalized_eigen solves A v = mu B v with B-orthonormal vectors, dropping null directions of B", "[eigen]") {
    const std::size_t n = 20;
    const matrix_t a = random_spd(n, 2);
    for (std::size_t rank : {0, 12}) {
        const matrix_t b = random_spd(n, 3, rank);
        const generalized_result g = generalized_eigen(a, b, {});
        REQUIRE(g.converged());
        const std::size_t r = rank ? rank : n;
        CHECK(g.rank_b == r);
        CHECK(g.dropped == n - r);
        REQUIRE(g.vectors.shape(1) == r);
        // VᵀBV = I and Vᵀ A V = diag(mu)
        for (std::size_t i = 0; i < r; ++i)
            for (std::size_t j = 0; j < r; ++j) {
                double vbv = 0, vav = 0;
                for (std::size_t p = 0; p < n; ++p)
                    for (std::size_t q = 0; q < n; ++q) {
                        vbv += g.vectors(p, i) * b(p, q) * g.vectors(q, j);
                        vav += g.vectors(p, i) * a(p, q) * g.vectors(q, j);
                    }
                CHECK(std::abs(vbv - (i == j ? 1.0 : 0.0)) < 1e-9);
                CHECK(std::abs(vav - (i == j ? g.values(i) : 0.0)) < 1e-8 * g.values(0));
            }
        if (rank == 0) {
            // Full-rank B: A v = mu B v.
            for (std::size_t j = 0; j < r; ++j)
                for (std::size_t p = 0; p < n; ++p) {
                    double av = 0, bv = 0;
                    for (std::size_t q = 0; q < n; ++q) {
                        av += a(p, q) * g.vectors(q, j);
                        bv += b(p, q) * g.vectors(q, j);
                    }
                    CHECK(std::abs(av - g.values(j) * bv) < 1e-8 * std::max(1.0, std::abs(av)));
                }
        }
    }
    generalized_options top3;
    top3.top = 3;
    CHECK(generalized_eigen(a, random_spd(n, 4), top3).vectors.shape(1) == 3);
}

TEST_CASE("explained fractions and the k that reaches a variance fraction", "[eigen]") {
    const vector_t v = {5.0, 3.0, 1.5, 0.5};
    const vector_t f = explained_fractions(v, 10.0);
    CHECK(f(0) == Approx(0.5));
    CHECK(f(3) == Approx(1.0));
    CHECK(k_for_fraction(v, 10.0, 0.0) == 0);
    CHECK(k_for_fraction(v, 10.0, 0.5) == 1);
    CHECK(k_for_fraction(v, 10.0, 0.51) == 2);
    CHECK(k_for_fraction(v, 10.0, 0.95) == 3);
    CHECK(k_for_fraction(v, 10.0, 0.96) == 4);
    CHECK(k_for_fraction(v, 10.0, 1.0) == 4);
    CHECK_THROWS_AS(k_for_fraction(v, 10.0, 1.5), std::invalid_argument);
}

TEST_CASE("exact_spectrum of the accumulator reproduces its covariance", "[eigen][spectrum]") {
    const std::size_t n = 400, d = 8;
    const auto x = testing::random_rows(n, d, 5);
    moment_accumulator m({d});
    m.update(batch_view(x.data(), n, d));
    for (centering c : {centering::centered, centering::uncentered}) {
        const spectrum s = exact_spectrum(m, c);
        const matrix_t sxx = m.sxx(c);
        matrix_t rebuilt = xt::zeros<double>({d, d});
        for (std::size_t k = 0; k < d; ++k)
            for (std::size_t i = 0; i < d; ++i)
                for (std::size_t j = 0; j < d; ++j) rebuilt(i, j) += s.eigenvalues(k) * s.basis(i, k) * s.basis(j, k);
        CHECK(testing::rel_diff(rebuilt, sxx) < 1e-13);
        CHECK(s.explained(d - 1) == Approx(1.0).epsilon(1e-12));
        CHECK(s.rank() == d);
    }
}

TEST_CASE("sym_eigen_in_place: the decomposition of sym_eigen, the matrix given back from its upper triangle", "[eigen]") {
    // n = 150 spans several of the 64 x 64 tiles of the triangle copies and the transpose.
    const std::size_t n = 150;
    const matrix_t a = random_spd(n, 4);
    const eigen_result ref = sym_eigen(a);
    REQUIRE(ref.converged());
    for (std::size_t k : {n, std::size_t(7)}) {
        // Only the upper triangle is read: the lower one holds garbage and is overwritten.
        matrix_t work = a;
        for (std::size_t i = 0; i < n; ++i)
            for (std::size_t j = 0; j < i; ++j) work(i, j) = -1e300;
        const eigen_result e = k == n ? sym_eigen_in_place(work) : sym_eigen_top_in_place(work, k);
        REQUIRE(e.converged());
        CHECK(xt::all(xt::equal(work, a)));
        REQUIRE(e.values.size() == k);
        REQUIRE(e.vectors.shape(0) == n);
        REQUIRE(e.vectors.shape(1) == k);
        for (std::size_t j = 0; j < k; ++j) {
            CHECK(std::abs(e.values(j) - ref.values(j)) <= 1e-12 * ref.values(0));
            // A v = λ v for each returned column, against the untouched input.
            double res = 0;
            for (std::size_t i = 0; i < n; ++i) {
                double r = -e.values(j) * e.vectors(i, j);
                for (std::size_t l = 0; l < n; ++l) r += a(i, l) * e.vectors(l, j);
                res = std::max(res, std::abs(r));
            }
            CHECK(res < 1e-11 * ref.values(0));
        }
    }
    matrix_t bad = xt::zeros<double>({3, 4});
    CHECK_THROWS_AS(sym_eigen_in_place(bad), std::invalid_argument);
    matrix_t small = xt::eye<double>(3);
    CHECK_THROWS_AS(sym_eigen_top_in_place(small, 4), std::invalid_argument);
}

TEST_CASE("dsyevd and dsyevr: the same eigenvalues and invariant subspaces, chosen by the memory allowed", "[eigen]") {
    // The spectra where MRRR is slow and the two drivers could differ most: the second moment of
    // fewer rows than columns, centered (a cluster of d − n + 1 zeros) and uncentered (one
    // eigenvalue far above the rest, and d − n zeros).
    const std::size_t n = 60, d = 130;
    const auto x = testing::random_rows(n, d, 11);
    moment_accumulator m({d});
    m.update(batch_view(x.data(), n, d));
    const std::uint64_t dc = divide_and_conquer_workspace(d);
    CHECK(dc >= 2 * 8 * d * d);
    CHECK(choose_driver(d, d, eigen_options{dc}) == eigen_driver::divide_and_conquer);
    CHECK(choose_driver(d, d, eigen_options{dc - 1}) == eigen_driver::mrrr);
    CHECK(choose_driver(d, d - 1, eigen_options{}) == eigen_driver::mrrr);  // a subset: dsyevr's index range
    for (centering c : {centering::centered, centering::uncentered}) {
        const matrix_t a = m.sxx(c);
        const eigen_result fast = sym_eigen(a, eigen_options{dc}), lean = sym_eigen(a, eigen_options{dc - 1});
        REQUIRE(fast.converged());
        REQUIRE(lean.converged());
        CHECK(fast.driver == eigen_driver::divide_and_conquer);
        CHECK(lean.driver == eigen_driver::mrrr);
        CHECK(std::string(eigen_driver_name(fast.driver)) == "dsyevd");
        const double top = fast.values(0);
        for (std::size_t j = 0; j < d; ++j) CHECK(std::abs(fast.values(j) - lean.values(j)) <= 1e-13 * top);
        // Column j of both: A v = λ v against the input; then the subspaces. The nonzero
        // eigenvalues are simple (random data): each vector agrees (signs fixed alike); the
        // zero cluster is determined only as a subspace: its projector agrees.
        const std::size_t rank = c == centering::centered ? n - 1 : n;
        for (const eigen_result* e : {&fast, &lean}) {
            double res = 0;
            for (std::size_t j = 0; j < d; ++j)
                for (std::size_t i = 0; i < d; ++i) {
                    double r = -e->values(j) * e->vectors(i, j);
                    for (std::size_t l = 0; l < d; ++l) r += a(i, l) * e->vectors(l, j);
                    res = std::max(res, std::abs(r));
                }
            CHECK(res < 1e-12 * top);
            CHECK(e->values(rank - 1) > 1e-6 * top);
            CHECK(std::abs(e->values(rank)) < 1e-12 * top);
        }
        double vectors = 0, cluster = 0;
        for (std::size_t j = 0; j < rank; ++j)
            for (std::size_t i = 0; i < d; ++i) vectors = std::max(vectors, std::abs(fast.vectors(i, j) - lean.vectors(i, j)));
        for (std::size_t i = 0; i < d; ++i)
            for (std::size_t l = 0; l < d; ++l) {
                double p = 0;
                for (std::size_t j = rank; j < d; ++j) p += fast.vectors(i, j) * fast.vectors(l, j) - lean.vectors(i, j) * lean.vectors(l, j);
                cluster = std::max(cluster, std::abs(p));
            }
        CHECK(vectors < 1e-9);
        CHECK(cluster < 1e-12);
        // In place (the input given back, the driver's storage its own) and consuming.
        for (std::uint64_t allowed : {dc, dc - 1}) {
            matrix_t work = a;
            for (std::size_t i = 0; i < d; ++i)
                for (std::size_t j = 0; j < i; ++j) work(i, j) = -1e300;  // only the upper triangle is read
            const eigen_result e = sym_eigen_in_place(work, eigen_options{allowed});
            CHECK(xt::all(xt::equal(work, a)));
            matrix_t gone = a;
            const eigen_result f = sym_eigen_consuming(std::move(gone), d, eigen_options{allowed});
            CHECK(gone.size() == 0);
            for (const eigen_result* g : {&e, &f}) {
                CHECK(g->driver == (allowed == dc ? eigen_driver::divide_and_conquer : eigen_driver::mrrr));
                CHECK(testing::rel_diff(g->values, fast.values) < 1e-13);
            }
        }
        // finish(): the statistics of both drivers, with and without Sxx kept.
        for (bool keep : {true, false}) {
            exact_finish_options o;
            o.second_moment = keep;
            o.solver.workspace_bytes = dc;
            const statistics sd = finish(m, c, o);
            o.solver.workspace_bytes = 0;
            const statistics sr = finish(m, c, o);
            CHECK(testing::rel_diff(sd.spec.eigenvalues, sr.spec.eigenvalues) < 1e-13);
            CHECK(sd.second_moment.has_value() == keep);
            if (keep) CHECK(xt::all(xt::equal(*sd.second_moment, a)));
        }
    }
}

TEST_CASE("fix_signs makes each column's first largest-magnitude entry positive, as a walk down the column finds it", "[eigen]") {
    // Columns: largest entry negative (flipped), positive (kept), a tie of +2 and -2 (the first,
    // at row 1, decides: kept), a tie of -3 then +3 (flipped), zeros, a NaN beside a negative peak.
    const double nan = std::numeric_limits<double>::quiet_NaN();
    matrix_t v = {{1.0, 0.5, 1.0, 0.0, 0.0, nan},
                  {-4.0, 3.0, 2.0, -3.0, 0.0, -2.0},
                  {2.0, -1.0, -2.0, 3.0, 0.0, 1.0}};
    const matrix_t before = v;
    fix_signs(v);
    const double flip[6] = {-1.0, 1.0, 1.0, -1.0, 1.0, -1.0};
    for (std::size_t i = 0; i < 3; ++i)
        for (std::size_t j = 0; j < 6; ++j) {
            INFO("row " << i << ", column " << j);
            if (std::isnan(before(i, j))) CHECK(std::isnan(v(i, j)));
            else CHECK(v(i, j) == flip[j] * before(i, j));
        }
    // A tall random basis: the same as the walk down each column.
    matrix_t w = xt::zeros<double>({1000, 7});
    const auto g = testing::random_rows(1000, 7, 11, 0.0);
    std::copy(g.begin(), g.end(), w.begin());
    matrix_t want = w;
    for (std::size_t j = 0; j < 7; ++j) {
        std::size_t best = 0;
        for (std::size_t i = 1; i < 1000; ++i)
            if (std::abs(want(i, j)) > std::abs(want(best, j))) best = i;
        if (want(best, j) < 0)
            for (std::size_t i = 0; i < 1000; ++i) want(i, j) = -want(i, j);
    }
    fix_signs(w);
    CHECK(std::equal(w.begin(), w.end(), want.begin()));
}
