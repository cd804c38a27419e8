// Theorem 1 (MATH.md §3): the closed-form trade-off against direct evaluations on the rows.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include <recalign/align/tradeoff.hpp>
#include <recalign/core/blas.hpp>
#include <recalign/spectral/eigen.hpp>

#include "../common/helpers.hpp"

using namespace recalign;

namespace {

struct data {
    std::size_t n, d, c;
    std::vector<double> x;
    std::vector<std::int64_t> y;
    moment_accumulator acc;
};

data make(std::size_t n, std::size_t d, std::size_t c, std::uint64_t seed) {
    data s{n, d, c, testing::random_rows(n, d, seed), testing::random_labels(n, c, seed + 1),
           moment_accumulator({d, target_mode::class_ids, c})};
    // Make the labels learnable from x: shift class-dependent coordinates.
    for (std::size_t r = 0; r < n; ++r) s.x[r * d + static_cast<std::size_t>(s.y[r]) % d] += 2.0;
    for (std::size_t r0 = 0; r0 < n; r0 += 37) {
        const std::size_t b = std::min<std::size_t>(37, n - r0);
        s.acc.update(batch_view(s.x.data() + r0 * d, b, d), target_view::class_ids(s.y.data() + r0, b));
    }
    return s;
}

// ‖Wᵀ Vᵀ x − y‖² and ‖Zᵀ Vᵀ x − x‖² summed over the rows (uncentered), directly.
std::pair<double, double> direct_losses(const data& s, const matrix_t& v, const matrix_t& w, const matrix_t& z) {
    const std::size_t k = v.shape(1);
    double sup = 0.0, rec = 0.0;
    std::vector<double> h(k);
    for (std::size_t r = 0; r < s.n; ++r) {
        const double* x = s.x.data() + r * s.d;
        for (std::size_t j = 0; j < k; ++j) {
            h[j] = 0.0;
            for (std::size_t i = 0; i < s.d; ++i) h[j] += v(i, j) * x[i];
        }
        for (std::size_t c = 0; c < s.c; ++c) {
            double p = 0.0;
            for (std::size_t j = 0; j < k; ++j) p += w(j, c) * h[j];
            const double t = (static_cast<std::int64_t>(c) == s.y[r]) ? 1.0 : 0.0;
            sup += (p - t) * (p - t);
        }
        for (std::size_t i = 0; i < s.d; ++i) {
            double p = 0.0;
            for (std::size_t j = 0; j < k; ++j) p += z(j, i) * h[j];
            rec += (p - x[i]) * (p - x[i]);
        }
    }
    return {sup, rec};
}

// Optimal W, Z for a given V (least squares, Eqs. 5-6) and the total loss.
double loss_for(const data& s, const matrix_t& v, double lambda) {
    const matrix_t sxx = s.acc.sxx(centering::uncentered), sxy = s.acc.sxy(centering::uncentered);
    const std::size_t k = v.shape(1), d = s.d;
    matrix_t m = xt::zeros<double>({k, k}), sv = xt::zeros<double>({d, k});
    blas::gemm_nn(d, k, d, 1.0, sxx.data(), v.data(), 0.0, sv.data());
    blas::gemm_tn(k, k, d, 1.0, v.data(), sv.data(), 0.0, m.data());
    // Solve with the inverse of a small SPD matrix by Gauss-Jordan.
    matrix_t inv = xt::eye<double>(k);
    matrix_t a = m;
    for (std::size_t i = 0; i < k; ++i) {
        const double p = a(i, i);
        for (std::size_t j = 0; j < k; ++j) {
            a(i, j) /= p;
            inv(i, j) /= p;
        }
        for (std::size_t r = 0; r < k; ++r)
            if (r != i) {
                const double f = a(r, i);
                for (std::size_t j = 0; j < k; ++j) {
                    a(r, j) -= f * a(i, j);
                    inv(r, j) -= f * inv(i, j);
                }
            }
    }
    matrix_t vsxy = xt::zeros<double>({k, s.c}), vsxx = xt::zeros<double>({k, d});
    blas::gemm_tn(k, s.c, d, 1.0, v.data(), sxy.data(), 0.0, vsxy.data());
    blas::gemm_tn(k, d, d, 1.0, v.data(), sxx.data(), 0.0, vsxx.data());
    matrix_t w = xt::zeros<double>({k, s.c}), z = xt::zeros<double>({k, d});
    blas::gemm_nn(k, s.c, k, 1.0, inv.data(), vsxy.data(), 0.0, w.data());
    blas::gemm_nn(k, d, k, 1.0, inv.data(), vsxx.data(), 0.0, z.data());
    const auto l = direct_losses(s, v, w, z);
    return l.first + lambda * l.second;
}

}  // namespace

TEST_CASE("tradeoff: losses at the optimum equal direct evaluation on the rows", "[align][tradeoff]") {
    const data s = make(400, 12, 3, 11);
    tradeoff_options o;
    o.lambdas = {0.0, 0.1, 1.0, 10.0};
    o.k = 4;
    const tradeoff_result r = tradeoff(finish(s.acc, centering::uncentered), o);
    REQUIRE(r.points.size() == 4);
    REQUIRE(r.k == 4);
    REQUIRE(r.dropped == 0);
    const matrix_t sxx = s.acc.sxx(centering::uncentered);
    for (const tradeoff_point& p : r.points) {
        CAPTURE(p.lambda);
        const auto l = direct_losses(s, p.v, p.w, p.z);
        CHECK(std::abs(l.first - p.supervised_loss) <= 1e-9 * std::abs(l.first));
        CHECK(std::abs(l.second - p.reconstruction_loss) <= 1e-9 * std::abs(l.second));
        // V*ᵀ Sxx V* = I (the whitening's normalisation).
        matrix_t sv = xt::zeros<double>({s.d, o.k}), m = xt::zeros<double>({o.k, o.k});
        blas::gemm_nn(s.d, o.k, s.d, 1.0, sxx.data(), p.v.data(), 0.0, sv.data());
        blas::gemm_tn(o.k, o.k, s.d, 1.0, p.v.data(), sv.data(), 0.0, m.data());
        CHECK(testing::rel_diff(m, xt::eval(xt::eye<double>(o.k))) < 1e-10);
        // Random bases (with their own optimal W, Z) never do better.
        for (std::uint64_t t = 0; t < 20; ++t) {
            matrix_t v = xt::zeros<double>({s.d, o.k});
            rng::stream st(99, t, 0);
            for (std::size_t i = 0; i < v.size(); ++i) v.data()[i] = st.normal(i);
            CHECK(loss_for(s, v, p.lambda) >= p.loss * (1 - 1e-12));
        }
        // And a small perturbation of the optimum does not either.
        matrix_t v = p.v;
        rng::stream st(7, 0, 0);
        for (std::size_t i = 0; i < v.size(); ++i) v.data()[i] += 1e-3 * st.normal(i) * std::abs(p.v.data()[i]);
        CHECK(loss_for(s, v, p.lambda) >= p.loss * (1 - 1e-12));
        CHECK(std::abs(loss_for(s, p.v, p.lambda) - p.loss) <= 1e-9 * p.loss);
    }
}

TEST_CASE("tradeoff: lambda -> 0 is OLS, lambda -> infinity is the PCA projector", "[align][tradeoff]") {
    const data s = make(500, 10, 3, 5);
    const matrix_t sxx = s.acc.sxx(centering::uncentered), sxy = s.acc.sxy(centering::uncentered);
    tradeoff_options o;
    o.lambdas = {0.0, 1e9};
    o.k = 4;  // K >= C
    const tradeoff_result r = tradeoff(finish(s.acc, centering::uncentered), o);
    // OLS: V* W* (D x C) = Sxx⁻¹ Sxy  (W*ᵀ V*ᵀ = Y Xᵀ (X Xᵀ)⁻¹).
    matrix_t vw = xt::zeros<double>({s.d, s.c});
    blas::gemm_nn(s.d, s.c, o.k, 1.0, r.points[0].v.data(), r.points[0].w.data(), 0.0, vw.data());
    matrix_t back = xt::zeros<double>({s.d, s.c});
    blas::gemm_nn(s.d, s.c, s.d, 1.0, sxx.data(), vw.data(), 0.0, back.data());  // Sxx (V W) should be Sxy
    CHECK(testing::rel_diff(back, sxy) < 1e-9);
    // PCA: V* Z* (D x D) = U_K U_Kᵀ.
    const eigen_result e = sym_eigen(sxx);
    matrix_t proj = xt::zeros<double>({s.d, s.d}), vz = xt::zeros<double>({s.d, s.d});
    matrix_t uk = xt::view(e.vectors, xt::all(), xt::range(0, o.k));
    blas::gemm_nt(s.d, s.d, o.k, 1.0, uk.data(), uk.data(), 0.0, proj.data());
    blas::gemm_nn(s.d, s.d, o.k, 1.0, r.points[1].v.data(), r.points[1].z.data(), 0.0, vz.data());
    CHECK(testing::rel_diff(vz, proj) < 1e-6);
}

TEST_CASE("tradeoff: bad arguments throw", "[align][tradeoff]") {
    const data s = make(50, 6, 2, 3);
    tradeoff_options o;
    o.lambdas = {1.0};
    o.k = 0;
    CHECK_THROWS_AS(tradeoff(finish(s.acc, centering::uncentered), o), std::invalid_argument);
    o.k = 7;
    CHECK_THROWS_AS(tradeoff(finish(s.acc, centering::uncentered), o), std::invalid_argument);
    o.k = 2;
    o.lambdas = {-1.0};
    CHECK_THROWS_AS(tradeoff(finish(s.acc, centering::uncentered), o), std::invalid_argument);
    moment_accumulator no_targets({6});
    o.lambdas = {1.0};
    CHECK_THROWS_WITH(tradeoff(finish(no_targets, centering::uncentered), o), Catch::Contains("label statistics"));
}
