// Incremental refinement passes (MATH.md §7): the statistics of [R, T] completed from a pass on
// T alone equal `joined` and the products of the full moments; the stopping rule's comparison.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include <recalign/align/incremental_refinement.hpp>
#include <recalign/core/blas.hpp>

#include "../common/helpers.hpp"

using namespace recalign;

namespace {
constexpr std::size_t D = 30, K = 7, C = 4, N = 410, A = 3, B = 4;

matrix_t random_basis(std::uint64_t seed, std::size_t k) {
    const std::vector<double> v = testing::random_rows(D, K, seed, 0.0);
    matrix_t b = xt::zeros<double>({D, K});
    std::copy(v.begin(), v.end(), b.begin());
    return xt::view(b, xt::all(), xt::range(0, k));
}

restricted_moments fed(const matrix_t& v, const std::vector<double>& x, const std::vector<std::int64_t>& y) {
    restricted_moments_options o;
    o.basis = v;
    o.classes = C;
    restricted_moments r(o);
    for (std::size_t r0 = 0; r0 < N; r0 += 64) {
        const std::size_t b = std::min<std::size_t>(64, N - r0);
        r.update(batch_view(x.data() + r0 * D, b, D), target_view::class_ids(y.data() + r0, b), r0);
    }
    return r;
}

matrix_t tn(const matrix_t& a, const matrix_t& b) {
    matrix_t o = xt::zeros<double>({a.shape(1), b.shape(1)});
    blas::gemm_tn(a.shape(1), b.shape(1), a.shape(0), 1.0, a.data(), b.data(), 0.0, o.data());
    return o;
}
}  // namespace

TEST_CASE("complete_pass: [R, T] from R known exactly and a pass on T alone, as joined", "[align][refinement]") {
    const std::vector<double> x = testing::random_rows(N, D, 5, 25.0);
    const std::vector<std::int64_t> y = testing::random_labels(N, C, 6);
    const matrix_t v = random_basis(9, K), t = random_basis(10, B);
    matrix_t w = xt::zeros<double>({K, A});
    for (std::size_t i = 0; i < K; ++i)
        for (std::size_t j = 0; j < A; ++j) w(i, j) = std::sin(1.0 + i * 3.0 + j);
    const restricted_moments rv = fed(v, x, y), rt = fed(t, x, y);
    for (centering c : {centering::centered, centering::uncentered}) {
        CAPTURE(centering_name(c));
        const restricted_statistics r = rv.finish(c).rotated(w);
        const restricted_statistics expected = joined(r, rt.finish(c));
        // What denoising_restart carries: [R, T], [Sxx R, 0], and R's products.
        refinement_pass p;
        p.carried = A;
        p.known.center = c;
        p.known.n = r.n;
        p.known.basis = xt::zeros<double>({D, A + B});
        p.known.sv = xt::zeros<double>({D, A + B});
        for (std::size_t i = 0; i < D; ++i)
            for (std::size_t j = 0; j < A + B; ++j) {
                p.known.basis(i, j) = j < A ? r.basis(i, j) : t(i, j - A);
                if (j < A) p.known.sv(i, j) = r.sv(i, j);
            }
        p.known.vsv = r.vsv;
        p.known.gram = tn(r.basis, r.basis);
        p.known.svsv = tn(r.sv, r.sv);
        p.known.cross = r.cross;
        REQUIRE(testing::rel_diff(p.fresh(), t) == 0.0);
        refinement_pass copy = p;
        const restricted_statistics got = complete_pass(std::move(copy), rt.finish(c));
        REQUIRE(got.k() == A + B);
        CHECK(testing::rel_diff(got.basis, expected.basis) == 0.0);
        CHECK(testing::rel_diff(got.sv, expected.sv) == 0.0);
        CHECK(testing::rel_diff(got.vsv, expected.vsv) < 1e-13);
        CHECK(testing::rel_diff(got.cross->sxy, expected.cross->sxy) == 0.0);
        // products() filled in without reading D x m again: the Gram matrices of [R, T].
        CHECK(testing::rel_diff(got.gram, tn(expected.basis, expected.basis)) < 1e-13);
        CHECK(testing::rel_diff(got.svsv, tn(expected.sv, expected.sv)) < 1e-13);
        REQUIRE(got.frame);
        // A pass on other directions, of other rows or in another centering is refused.
        refinement_pass other = p;
        CHECK_THROWS_AS(complete_pass(std::move(other), fed(random_basis(11, B), x, y).finish(c)), std::invalid_argument);
        refinement_pass centered = p;
        const centering o = c == centering::centered ? centering::uncentered : centering::centered;
        CHECK_THROWS_AS(complete_pass(std::move(centered), rt.finish(o)), std::invalid_argument);
    }
}

TEST_CASE("refinement_change: the largest change of the stopping curves", "[align][refinement]") {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    vector_t a = {0.1, -0.2, nan}, b = {0.1003, -0.2001, nan};
    CHECK(refinement_change(a, b) == Approx(3e-4).epsilon(1e-9));
    CHECK(std::isinf(refinement_change(vector_t{}, b)));
    CHECK(std::isinf(refinement_change(a, vector_t{0.1, 0.2})));
    CHECK(std::isinf(refinement_change(a, vector_t{0.1, -0.2, 0.0})));  // a curve point appeared
    CHECK(refinement_change(a, a) == 0.0);
    CHECK(refinement_stop < 2e-3 / 9);  // the MATH.md §7 margin: error <= 9 x change at ρ <= 0.9
}
