// The verification pass's accumulator (MATH.md §7): Vᵀ Sxx V, Sxx V and Vᵀ Sxy of a fixed
// basis, equal to the same products of the full moments; merge, checkpoints and bad batches
// like every accumulator.
#include <catch2/catch.hpp>

#include <cblas.h>

#include <limits>
#include <thread>

#include <recalign/align/restricted_moments.hpp>
#include <recalign/core/blas.hpp>
#include <recalign/core/errors.hpp>

#include "../common/helpers.hpp"
#include "second_thread.hpp"

using namespace recalign;

namespace {
constexpr std::size_t D = 30, K = 7, C = 4, N = 410;

matrix_t random_basis(std::uint64_t seed) {
    const std::vector<double> v = testing::random_rows(D, K, seed, 0.0);
    matrix_t b = xt::zeros<double>({D, K});
    std::copy(v.begin(), v.end(), b.begin());
    return b;
}

restricted_moments make(const matrix_t& v, std::size_t classes = C) {
    restricted_moments_options o;
    o.basis = v;
    o.classes = classes;
    return restricted_moments(o);
}

void feed(restricted_moments& r, const std::vector<double>& x, const std::vector<std::int64_t>& y, std::size_t from,
          std::size_t to, std::size_t batch) {
    for (std::size_t r0 = from; r0 < to; r0 += batch) {
        const std::size_t b = std::min(batch, to - r0);
        r.update(batch_view(x.data() + r0 * D, b, D), target_view::class_ids(y.data() + r0, b), r0);
    }
}
}  // namespace

TEST_CASE("restricted moments equal the products of the full moments", "[align][restricted]") {
    const std::vector<double> x = testing::random_rows(N, D, 3, 25.0);
    const std::vector<std::int64_t> y = testing::random_labels(N, C, 4);
    const matrix_t v = random_basis(8);
    restricted_moments r = make(v);
    feed(r, x, y, 0, N, 64);
    moment_accumulator acc({D, target_mode::class_ids, C});
    acc.update(batch_view(x.data(), N, D), target_view::class_ids(y.data(), N));
    CHECK(r.n() == N);
    for (centering c : {centering::centered, centering::uncentered}) {
        CAPTURE(centering_name(c));
        const matrix_t sxx = acc.sxx(c), sxy = acc.sxy(c);
        matrix_t sv = xt::zeros<double>({D, K}), vsv = xt::zeros<double>({K, K}), vsy = xt::zeros<double>({K, C});
        blas::gemm_nn(D, K, D, 1.0, sxx.data(), v.data(), 0.0, sv.data());
        blas::gemm_tn(K, K, D, 1.0, v.data(), sv.data(), 0.0, vsv.data());
        blas::gemm_tn(K, C, D, 1.0, v.data(), sxy.data(), 0.0, vsy.data());
        CHECK(testing::rel_diff(r.sv(c), sv) < 1e-12);
        CHECK(testing::rel_diff(r.vsv(c), vsv) < 1e-12);
        const cross_moments cr = r.cross(c);
        CHECK(testing::rel_diff(cr.sxy, vsy) < 1e-12);
        CHECK(testing::rel_diff(cr.syy_dense(), acc.syy(c)) < 1e-12);
    }
    CHECK(testing::rel_diff(r.mean(), acc.mean_x()) < 1e-14);
}

TEST_CASE("restricted moments: merge, checkpoints, refusals, strong guarantee", "[align][restricted]") {
    const std::vector<double> x = testing::random_rows(N, D, 13);
    const std::vector<std::int64_t> y = testing::random_labels(N, C, 14);
    const matrix_t v = random_basis(21);
    restricted_moments one = make(v), a = make(v), b = make(v);
    feed(one, x, y, 0, N, 100);
    feed(a, x, y, 0, 150, 50);
    feed(b, x, y, 150, N, 70);
    restricted_moments merged = a;
    merged.merge(b);
    CHECK(merged.n() == N);
    CHECK(testing::rel_diff(merged.sv(centering::centered), one.sv(centering::centered)) < 1e-12);
    CHECK(testing::rel_diff(merged.vsv(centering::uncentered), one.vsv(centering::uncentered)) < 1e-12);
    CHECK(testing::rel_diff(merged.cross(centering::centered).sxy, one.cross(centering::centered).sxy) < 1e-12);
    const std::string bytes = testing::saved(merged);
    CHECK(testing::saved(testing::loaded<restricted_moments>(bytes)) == bytes);
    for (std::size_t cut : {std::size_t(0), std::size_t(64), std::size_t(80), bytes.size() / 3, bytes.size() - 1})
        CHECK_THROWS_AS(testing::loaded<restricted_moments>(bytes.substr(0, cut)), file_error);
    merged.merge(make(v));  // empty: no-op
    CHECK(testing::saved(merged) == bytes);
    matrix_t w = v;
    w(3, 2) = std::nextafter(w(3, 2), 1e9);
    CHECK_THROWS_WITH(merged.merge(make(w)), Catch::Contains("different bases"));
    CHECK_THROWS_WITH(merged.merge(make(v, C + 1)), Catch::Contains("classes"));
    CHECK(testing::saved(merged) == bytes);
    // Bad batches: a NaN, a label out of range, missing labels; nothing changes, and the state
    // continues bit-identically to one that never saw them.
    restricted_moments clean = a;
    std::vector<double> bad(x.begin(), x.begin() + 10 * D);
    bad[6 * D + 1] = std::nan("");
    std::vector<std::int64_t> yb(y.begin(), y.begin() + 10);
    CHECK_THROWS_WITH(a.update(batch_view(bad.data(), 10, D), target_view::class_ids(yb.data(), 10), 1000),
                      Catch::Contains("row 1006"));
    yb[3] = C;
    CHECK_THROWS_WITH(a.update(batch_view(x.data(), 10, D), target_view::class_ids(yb.data(), 10), 2000),
                      Catch::Contains("row 2003"));
    CHECK_THROWS_AS(a.update(batch_view(x.data(), 10, D)), std::invalid_argument);
    CHECK(testing::saved(a) == testing::saved(clean));
    feed(a, x, y, 150, 200, 50);
    feed(clean, x, y, 150, 200, 50);
    CHECK(testing::saved(a) == testing::saved(clean));
    // Finished by moving V and Sxx V out: the same statistics as the copying finish; the spent
    // accumulator has no columns and refuses a batch (it held a shape over no memory before).
    restricted_moments spent = clean;
    const restricted_statistics copied = clean.finish(centering::uncentered);
    const restricted_statistics moved = std::move(spent).finish(centering::uncentered);
    CHECK(moved.sv == copied.sv);
    CHECK(moved.basis == copied.basis);
    CHECK(moved.vsv == copied.vsv);
    CHECK(spent.k() == 0);
    CHECK(spent.dim() == 0);
    CHECK_THROWS_WITH(spent.update(batch_view(x.data(), 10, D), target_view::class_ids(y.data(), 10), 0),
                      Catch::Contains("spent"));
    CHECK_THROWS_WITH(spent.merge(clean), Catch::Contains("spent"));
    CHECK_THROWS_WITH(clean.merge(spent), Catch::Contains("spent"));
    CHECK_THROWS_WITH(spent.finish(centering::centered), Catch::Contains("spent"));
    // Bases that cannot be one.
    restricted_moments_options o;
    CHECK_THROWS_AS(restricted_moments(o), std::invalid_argument);
    o.basis = v;
    o.basis(0, 0) = std::nan("");
    CHECK_THROWS_AS(restricted_moments(o), std::invalid_argument);
}

TEST_CASE("joined: the statistics of [V W, T] from a pass on V and a pass on T alone", "[align][restricted]") {
    const std::vector<double> x = testing::random_rows(N, D, 5, 25.0);
    const std::vector<std::int64_t> y = testing::random_labels(N, C, 6);
    const matrix_t v = random_basis(9), t = xt::view(random_basis(10), xt::all(), xt::range(0, 4));
    restricted_moments rv = make(v);
    feed(rv, x, y, 0, N, 64);
    restricted_moments_options o;
    o.basis = t;
    o.classes = C;
    restricted_moments rt(o);
    feed(rt, x, y, 0, N, 100);
    moment_accumulator acc({D, target_mode::class_ids, C});
    acc.update(batch_view(x.data(), N, D), target_view::class_ids(y.data(), N));
    matrix_t w = xt::zeros<double>({K, std::size_t(3)});
    for (std::size_t i = 0; i < K; ++i)
        for (std::size_t j = 0; j < 3; ++j) w(i, j) = std::sin(1.0 + i * 3.0 + j);
    for (centering c : {centering::centered, centering::uncentered}) {
        CAPTURE(centering_name(c));
        const restricted_statistics j = joined(rv.finish(c).rotated(w), rt.finish(c));
        REQUIRE(j.k() == 7);
        // Against the full moments: [V W, T] and its products with Sxx, Sxy.
        matrix_t b = xt::zeros<double>({D, std::size_t(7)});
        matrix_t vw = xt::zeros<double>({D, std::size_t(3)});
        blas::gemm_nn(D, 3, K, 1.0, v.data(), w.data(), 0.0, vw.data());
        for (std::size_t i = 0; i < D; ++i)
            for (std::size_t k = 0; k < 7; ++k) b(i, k) = k < 3 ? vw(i, k) : t(i, k - 3);
        const matrix_t sxx = acc.sxx(c), sxy = acc.sxy(c);
        matrix_t sb = xt::zeros<double>({D, std::size_t(7)}), bsb = xt::zeros<double>({std::size_t(7), std::size_t(7)}), bsy = xt::zeros<double>({std::size_t(7), C});
        blas::gemm_nn(D, 7, D, 1.0, sxx.data(), b.data(), 0.0, sb.data());
        blas::gemm_tn(7, 7, D, 1.0, b.data(), sb.data(), 0.0, bsb.data());
        blas::gemm_tn(7, C, D, 1.0, b.data(), sxy.data(), 0.0, bsy.data());
        CHECK(testing::rel_diff(j.basis, b) < 1e-14);
        CHECK(testing::rel_diff(j.sv, sb) < 1e-12);
        CHECK(testing::rel_diff(j.vsv, bsb) < 1e-12);
        CHECK(testing::rel_diff(j.cross->sxy, bsy) < 1e-12);
    }
    // Passes of other data, or in another centering, are refused.
    restricted_moments half = make(v);
    feed(half, x, y, 0, N / 2, 64);
    CHECK_THROWS_AS(joined(rv.finish(centering::centered), half.finish(centering::centered)), std::invalid_argument);
    CHECK_THROWS_AS(joined(rv.finish(centering::centered), rt.finish(centering::uncentered)), std::invalid_argument);
}

TEST_CASE("restricted moments: the update's second thread changes no bit (u8, f32, f64; a NaN)", "[align][restricted]") {
    // Batches of 600 x 2000 (over the 2^20 elements where update() checks the batch on two
    // threads, and with two column blocks, 1024 and 976, each converted and multiplied on a
    // thread of its own with OpenBLAS on one thread) against the same stream with the second
    // thread disallowed (the two halves then run one after the other, OpenBLAS on one thread too).
    if (openblas_get_num_threads() < 2 || std::thread::hardware_concurrency() < 2) {
        WARN("one core or one BLAS thread: no second thread to compare against");
        return;
    }
    constexpr std::size_t d = 2000, k = 9, n = 1200, rows = 600;
    const std::vector<double> x = testing::random_rows(n, d, 11, 90.0);
    const std::vector<std::int64_t> y = testing::random_labels(n, C, 12);
    std::vector<float> xf(x.begin(), x.end());
    std::vector<std::uint8_t> xu(n * d);
    for (std::size_t i = 0; i < n * d; ++i) xu[i] = static_cast<std::uint8_t>(std::min(255.0, std::max(0.0, x[i] * 2.0)));
    std::vector<double> v(d * k);
    const std::vector<double> vr = testing::random_rows(d, k, 13, 0.0);
    std::copy(vr.begin(), vr.end(), v.begin());
    matrix_t basis = xt::zeros<double>({d, k});
    std::copy(v.begin(), v.end(), basis.begin());
    auto view = [&](int input, std::size_t r0) {
        batch_view b = input == 0 ? batch_view(xu.data() + r0 * d, rows, d)
                     : input == 1 ? batch_view(xf.data() + r0 * d, rows, d)
                                  : batch_view(x.data() + r0 * d, rows, d);
        if (input == 0) b.scale = 1.0 / 255.0;
        return b;
    };
    using recalign::detail::second_thread;
    for (int input = 0; input < 3; ++input) {
        CAPTURE(input);
        auto stream = [&] {
            restricted_moments r = make(basis);
            for (std::size_t r0 = 0; r0 < n; r0 += rows)
                r.update(view(input, r0), target_view::class_ids(y.data() + r0, rows), r0);
            return checkpoint::to_bytes(r);
        };
        const std::uint64_t before = second_thread::started();
        const int blas_threads = openblas_get_num_threads();
        const std::string two = stream();
        CHECK(second_thread::started() == before + 2);  // one per update
        CHECK(openblas_get_num_threads() == blas_threads);  // restored after each update
        second_thread::allow(false);
        const std::string one = stream();
        second_thread::allow(true);
        CHECK(two == one);
    }
    // The block halves' statistics against the same rows in batches of 100 (below 2^20
    // elements: one thread's blocks, the BLAS's own threads), to rounding.
    restricted_moments split = make(basis), plain = make(basis);
    for (std::size_t r0 = 0; r0 < n; r0 += rows) split.update(view(2, r0), target_view::class_ids(y.data() + r0, rows), r0);
    for (std::size_t r0 = 0; r0 < n; r0 += 100)
        plain.update(batch_view(x.data() + r0 * d, 100, d), target_view::class_ids(y.data() + r0, 100), r0);
    for (const centering c : {centering::centered, centering::uncentered}) {
        CHECK(testing::rel_diff(split.sv(c), plain.sv(c)) < 1e-12);
        CHECK(testing::rel_diff(split.vsv(c), plain.vsv(c)) < 1e-12);
    }
    // A NaN is refused as on one thread, naming its row and column, and nothing changes.
    std::vector<double> bad(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(rows * d));
    bad[417 * d + 1500] = std::numeric_limits<double>::quiet_NaN();
    restricted_moments r = make(basis);
    r.update(view(2, 0), target_view::class_ids(y.data(), rows), 0);
    const std::string state = checkpoint::to_bytes(r);
    std::string message;
    try {
        r.update(batch_view(bad.data(), rows, d), target_view::class_ids(y.data() + rows, rows), rows);
    } catch (const input_error& e) {
        message = e.what();
    }
    CHECK(message.find("row " + std::to_string(rows + 417) + ", column 1500") != std::string::npos);
    CHECK(checkpoint::to_bytes(r) == state);
}
