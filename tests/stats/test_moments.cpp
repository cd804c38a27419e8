#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include <recalign/stats/moments.hpp>

#include "../common/helpers.hpp"

using namespace recalign;

namespace {

moment_accumulator one_pass(const std::vector<double>& x, const std::vector<std::int64_t>& y, std::size_t n,
                            std::size_t d, std::size_t classes, std::size_t batch, std::size_t begin = 0) {
    moment_accumulator m({d, target_mode::class_ids, classes});
    for (std::size_t r = begin; r < begin + n; r += batch) {
        const std::size_t b = std::min(batch, begin + n - r);
        m.update(batch_view(x.data() + r * d, b, d), target_view::class_ids(y.data() + r, b), r);
    }
    return m;
}

// Bitwise equality of every statistic two accumulators expose.
void require_identical(const moment_accumulator& a, const moment_accumulator& b) {
    REQUIRE(a.n() == b.n());
    REQUIRE(testing::bit_equal(a.mean_x(), b.mean_x()));
    REQUIRE(testing::bit_equal(a.scatter_upper(), b.scatter_upper()));
    if (a.has_targets()) {
        REQUIRE(testing::bit_equal(a.mean_y(), b.mean_y()));
        REQUIRE(testing::bit_equal(a.sxy(centering::centered), b.sxy(centering::centered)));
        REQUIRE(testing::bit_equal(a.syy(centering::centered), b.syy(centering::centered)));
    }
}

}  // namespace

TEST_CASE("centered and uncentered moments equal a direct two-pass computation", "[moments]") {
    const std::size_t n = 1500, d = 9, classes = 4;
    const auto x = testing::random_rows(n, d, 11, 50.0);  // large offset: raw-moment subtraction would lose digits
    const auto y = testing::random_labels(n, classes, 12);
    const auto ref = testing::direct(x, n, d);
    for (std::size_t batch : {1, 7, 256, 1500}) {
        const moment_accumulator m = one_pass(x, y, n, d, classes, batch);
        CHECK(m.n() == n);
        CHECK(testing::rel_diff(m.mean_x(), ref.mean) < 1e-13);
        CHECK(testing::rel_diff(m.sxx(centering::centered), ref.centered) < 1e-12);
        CHECK(testing::rel_diff(m.sxx(centering::uncentered), ref.uncentered) < 1e-13);
        // The trace shortcut matches the matrix.
        const matrix_t s = m.sxx(centering::centered);
        double t = 0;
        for (std::size_t i = 0; i < d; ++i) t += s(i, i);
        CHECK(std::abs(t - m.trace_xx(centering::centered)) <= 1e-12 * t);
    }
}

TEST_CASE("cross moments equal a direct computation with one-hot and dense targets", "[moments]") {
    const std::size_t n = 800, d = 6, classes = 3;
    const auto x = testing::random_rows(n, d, 21);
    const auto y = testing::random_labels(n, classes, 22);
    std::vector<double> onehot(n * classes, 0.0);
    for (std::size_t r = 0; r < n; ++r) onehot[r * classes + static_cast<std::size_t>(y[r])] = 1.0;
    // Direct Sxy, Syy (uncentered) and their centered forms.
    std::vector<long double> mx(d, 0), my(classes, 0);
    for (std::size_t r = 0; r < n; ++r) {
        for (std::size_t i = 0; i < d; ++i) mx[i] += x[r * d + i] / static_cast<long double>(n);
        for (std::size_t j = 0; j < classes; ++j) my[j] += onehot[r * classes + j] / static_cast<long double>(n);
    }
    std::vector<long double> sxy(d * classes, 0), sxyc(d * classes, 0), syy(classes * classes, 0), syyc(classes * classes, 0);
    for (std::size_t r = 0; r < n; ++r) {
        for (std::size_t i = 0; i < d; ++i)
            for (std::size_t j = 0; j < classes; ++j) {
                sxy[i * classes + j] += x[r * d + i] * onehot[r * classes + j];
                sxyc[i * classes + j] += (x[r * d + i] - mx[i]) * (onehot[r * classes + j] - my[j]);
            }
        for (std::size_t i = 0; i < classes; ++i)
            for (std::size_t j = 0; j < classes; ++j) {
                syy[i * classes + j] += onehot[r * classes + i] * onehot[r * classes + j];
                syyc[i * classes + j] += (onehot[r * classes + i] - my[i]) * (onehot[r * classes + j] - my[j]);
            }
    }
    const moment_accumulator ids = one_pass(x, y, n, d, classes, 37);
    moment_accumulator dense({d, target_mode::dense, classes});
    for (std::size_t r = 0; r < n; r += 37) {
        const std::size_t b = std::min<std::size_t>(37, n - r);
        dense.update(batch_view(x.data() + r * d, b, d),
                     target_view::dense_rows(batch_view(onehot.data() + r * classes, b, classes)));
    }
    for (const moment_accumulator* m : std::array<const moment_accumulator*, 2>{&ids, &dense}) {
        CHECK(testing::rel_diff(m->sxy(centering::uncentered), sxy) < 1e-13);
        CHECK(testing::rel_diff(m->sxy(centering::centered), sxyc) < 1e-12);
        CHECK(testing::rel_diff(m->syy(centering::uncentered), syy) < 1e-13);
        CHECK(testing::rel_diff(m->syy(centering::centered), syyc) < 1e-12);
        CHECK(testing::rel_diff(m->mean_y(), my) < 1e-14);
    }
}

TEST_CASE("merge(A, B) equals one pass over A and B for random splits and batch sizes", "[moments][merge]") {
    const std::size_t n = 3000, d = 12, classes = 5;
    const auto x = testing::random_rows(n, d, 31, 20.0);
    const auto y = testing::random_labels(n, classes, 32);
    recalign::rng::stream split_rng(33, 0, 0);
    for (std::size_t batch : {1, 7, 1000}) {
        const moment_accumulator whole = one_pass(x, y, n, d, classes, batch);
        for (int trial = 0; trial < 3; ++trial) {
            const std::size_t cut = 1 + static_cast<std::size_t>(split_rng.bits(batch * 10 + trial) % (n - 1));
            moment_accumulator a = one_pass(x, y, cut, d, classes, batch, 0);
            const moment_accumulator b = one_pass(x, y, n - cut, d, classes, batch, cut);
            a.merge(b);
            INFO("batch " << batch << ", split at " << cut);
            CHECK(a.n() == n);
            CHECK(testing::rel_diff(a.mean_x(), whole.mean_x()) < 1e-13);
            CHECK(testing::rel_diff(a.sxx(centering::centered), whole.sxx(centering::centered)) < 1e-12);
            CHECK(testing::rel_diff(a.sxy(centering::centered), whole.sxy(centering::centered)) < 1e-12);
            CHECK(testing::rel_diff(a.syy(centering::centered), whole.syy(centering::centered)) < 1e-12);
            CHECK(testing::rel_diff(a.sxx(centering::uncentered), whole.sxx(centering::uncentered)) < 1e-13);
        }
    }
}

TEST_CASE("merging an empty state is a no-op and merging into an empty state copies", "[moments][merge]") {
    const std::size_t n = 100, d = 4;
    const auto x = testing::random_rows(n, d, 41);
    const auto y = testing::random_labels(n, 2, 42);
    moment_accumulator a = one_pass(x, y, n, d, 2, 10);
    const moment_accumulator before = a;
    a.merge(moment_accumulator({d, target_mode::class_ids, 2}));
    require_identical(a, before);
    moment_accumulator e({d, target_mode::class_ids, 2});
    e.merge(a);
    require_identical(e, a);
    // Self-merge doubles the data set.
    moment_accumulator twice = a;
    twice.merge(twice);
    CHECK(twice.n() == 2 * n);
    CHECK(testing::rel_diff(twice.sxx(centering::centered), 2.0 * a.sxx(centering::centered)) < 1e-14);
}

TEST_CASE("incompatible merges throw before anything changes", "[moments][merge]") {
    const auto x = testing::random_rows(50, 4, 51);
    const auto y = testing::random_labels(50, 3, 52);
    moment_accumulator a = one_pass(x, y, 50, 4, 3, 10);
    const moment_accumulator before = a;
    CHECK_THROWS_AS(a.merge(moment_accumulator({5, target_mode::class_ids, 3})), std::invalid_argument);
    CHECK_THROWS_AS(a.merge(moment_accumulator({4, target_mode::class_ids, 4})), std::invalid_argument);
    CHECK_THROWS_AS(a.merge(moment_accumulator({4, target_mode::dense, 3})), std::invalid_argument);
    CHECK_THROWS_AS(a.merge(moment_accumulator({4})), std::invalid_argument);
    CHECK_THROWS_WITH(a.merge(moment_accumulator({5, target_mode::class_ids, 3})), Catch::Contains("4") && Catch::Contains("5"));
    require_identical(a, before);
}

TEST_CASE("uint8, float32 and float64 input give the same statistics (uint8 to rounding)", "[moments][dtype]") {
    const std::size_t n = 500, d = 10;
    std::vector<std::uint8_t> u(n * d);
    recalign::rng::stream s(61, 0, 0);
    for (std::size_t i = 0; i < u.size(); ++i) u[i] = static_cast<std::uint8_t>(s.bits(i) & 0xff);
    std::vector<float> f(u.begin(), u.end());
    std::vector<double> g(u.begin(), u.end());
    moment_accumulator mu({d}), mf({d}), mg({d});
    mu.update(batch_view(u.data(), n, d));
    mf.update(batch_view(f.data(), n, d));
    mg.update(batch_view(g.data(), n, d));
    require_identical(mf, mg);
    // uint8 takes the exact integer path (test_moments_u8.cpp): the same numbers, other roundings.
    CHECK(mu.n() == mg.n());
    CHECK(testing::rel_diff(mu.mean_x(), mg.mean_x()) < 1e-15);
    CHECK(testing::rel_diff(mu.scatter_upper(), mg.scatter_upper()) < 1e-14);
}

TEST_CASE("the opt-in float32 kernels stay close to the double path", "[moments][dtype]") {
    const std::size_t n = 4000, d = 32;
    const auto xd = testing::random_rows(n, d, 71, 0.5);
    std::vector<float> xf(xd.begin(), xd.end());
    moment_options o{d};
    moment_accumulator exact(o);
    o.float32_kernels = true;
    moment_accumulator fast(o);
    for (std::size_t r = 0; r < n; r += 500) {
        exact.update(batch_view(xf.data() + r * d, 500, d));
        fast.update(batch_view(xf.data() + r * d, 500, d));
    }
    const double err = testing::rel_diff(fast.sxx(centering::centered), exact.sxx(centering::centered));
    CHECK(err > 0.0);   // it really took the single-precision path
    CHECK(err < 1e-5);  // single precision inside a batch of 500, double across batches
    CHECK(testing::bit_equal(fast.mean_x(), exact.mean_x()));
}

TEST_CASE("a rejected batch leaves the state exactly as it was (strong guarantee)", "[moments][errors]") {
    const std::size_t d = 5, classes = 3;
    const auto x = testing::random_rows(40, d, 81);
    const auto y = testing::random_labels(40, classes, 82);
    moment_accumulator m = one_pass(x, y, 40, d, classes, 8);
    const moment_accumulator before = m;
    auto bad = x;
    std::vector<std::int64_t> labels(y.begin(), y.begin() + 8);

    SECTION("wrong width") {
        CHECK_THROWS_WITH(m.update(batch_view(x.data(), 8, d - 1), target_view::class_ids(labels.data(), 8)),
                          Catch::Contains("columns"));
    }
    SECTION("NaN, naming row and column") {
        bad[3 * d + 2] = std::numeric_limits<double>::quiet_NaN();
        CHECK_THROWS_WITH(m.update(batch_view(bad.data(), 8, d), target_view::class_ids(labels.data(), 8), 100),
                          Catch::Contains("row 103") && Catch::Contains("column 2"));
    }
    SECTION("Inf in the last row") {
        bad[7 * d + 4] = -std::numeric_limits<double>::infinity();
        CHECK_THROWS_AS(m.update(batch_view(bad.data(), 8, d), target_view::class_ids(labels.data(), 8)),
                        std::invalid_argument);
    }
    SECTION("label out of range, above and below") {
        labels[5] = 3;
        CHECK_THROWS_WITH(m.update(batch_view(x.data(), 8, d), target_view::class_ids(labels.data(), 8)),
                          Catch::Contains("row 5") && Catch::Contains("label 3"));
        labels[5] = -1;
        CHECK_THROWS_AS(m.update(batch_view(x.data(), 8, d), target_view::class_ids(labels.data(), 8)),
                        std::invalid_argument);
    }
    SECTION("target / batch row-count mismatch") {
        CHECK_THROWS_WITH(m.update(batch_view(x.data(), 8, d), target_view::class_ids(labels.data(), 7)),
                          Catch::Contains("rows"));
    }
    SECTION("missing targets, or targets of the wrong form") {
        CHECK_THROWS_AS(m.update(batch_view(x.data(), 8, d)), std::invalid_argument);
        std::vector<double> dense(8 * classes, 0.0);
        CHECK_THROWS_AS(m.update(batch_view(x.data(), 8, d), target_view::dense_rows(batch_view(dense.data(), 8, classes))),
                        std::invalid_argument);
    }
    SECTION("NaN in dense targets") {
        moment_accumulator dm({d, target_mode::dense, 2});
        std::vector<double> t(16, 0.5);
        dm.update(batch_view(x.data(), 8, d), target_view::dense_rows(batch_view(t.data(), 8, 2)));
        const moment_accumulator dbefore = dm;
        t[9] = std::numeric_limits<double>::quiet_NaN();
        CHECK_THROWS_WITH(dm.update(batch_view(x.data(), 8, d), target_view::dense_rows(batch_view(t.data(), 8, 2))),
                          Catch::Contains("row 4"));
        require_identical(dm, dbefore);
    }
    require_identical(m, before);
    // And the accumulator still works afterwards.
    m.update(batch_view(x.data(), 8, d), target_view::class_ids(y.data(), 8));
    CHECK(m.n() == before.n() + 8);
}

TEST_CASE("bad construction arguments throw", "[moments][errors]") {
    CHECK_THROWS_AS(moment_accumulator({0}), std::invalid_argument);
    CHECK_THROWS_AS(moment_accumulator({4, target_mode::class_ids, 0}), std::invalid_argument);
    CHECK_THROWS_AS(moment_accumulator({4, target_mode::none, 3}), std::invalid_argument);
    moment_accumulator m({3});
    CHECK_THROWS_AS(m.sxy(centering::centered), std::logic_error);
    CHECK(m.empty());
}
