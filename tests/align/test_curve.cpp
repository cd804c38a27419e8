// alignment_curve from a sketch's spectrum: only up to the sketch's rank (max_k), and the
// same numbers as the exact route where the sketch is exact.
#include <catch2/catch.hpp>

#include <cmath>

#include <recalign/align/alignment.hpp>
#include <recalign/spectral/statistics.hpp>
#include <recalign/sketch/frequent_directions.hpp>

#include "../common/helpers.hpp"
#include "../data_sets.hpp"
#include "../common/fashion.hpp"

using namespace recalign;

TEST_CASE("alignment curve from a truncated or sketched spectrum", "[align][curve]") {
    RECALIGN_SKIP_WITHOUT_FASHION_MNIST();
    const testing::fashion_subset f = testing::load_fashion(1000, true);
    moment_accumulator acc({f.dim, target_mode::class_ids, 10});
    acc.update(batch_view(f.x.data(), f.n, f.dim), target_view::class_ids(f.y.data(), f.n));
    for (centering c : {centering::uncentered, centering::centered}) {
        CAPTURE(centering_name(c));
        const statistics exact = finish(acc, c);
        const cross_moments cross = acc.cross(c);
        // Statistics whose spectrum holds only its top 20 directions (what a sketch hands over).
        spectrum top_spec = exact.spec;
        top_spec.eigenvalues = xt::view(exact.spec.eigenvalues, xt::range(0, 20));
        top_spec.basis = xt::view(exact.spec.basis, xt::all(), xt::range(0, 20));
        const statistics top = make_statistics(top_spec, acc.mean_x(), cross);
        CHECK(!top.provides(statistic::full_spectrum));
        CHECK(!top.provides(statistic::second_moment));
        CHECK(exact.provides(statistic::full_spectrum));
        for (alignment_measure m : {alignment_measure::paper, alignment_measure::fit}) {
            alignment_options o;
            o.measure = m;
            const alignment_result full = alignment_curve(exact, o), part = alignment_curve(top, o);
            CHECK(full.max_k == f.dim);
            CHECK(part.max_k == 20);
            CHECK(!part.complete);
            CHECK(full.complete);
            CHECK(part.center == c);
            REQUIRE(part.curve.size() == 20);
            for (std::size_t k = 0; k < 20; ++k) CHECK(part.curve(k) == Approx(full.curve(k)).epsilon(1e-12));
            // Monotone, and within [0, 1] (paper: ends below 1 when N > D).
            for (std::size_t k = 1; k < full.curve.size(); ++k) CHECK(full.curve(k) >= full.curve(k - 1) - 1e-15);
            CHECK(full.curve(f.dim - 1) <= 1.0 + 1e-12);
        }
        // Frequent Directions with ℓ = D never shrinks away information: the exact curve.
        frequent_directions fd({f.dim, f.dim, c});
        for (std::size_t r0 = 0; r0 < f.n; r0 += 100) fd.update(batch_view(f.row(r0), 100, f.dim));
        const spectrum sk = frequent_directions_spectrum(fd);
        const alignment_options o;
        const alignment_result from_fd = alignment_curve(make_statistics(sk, fd.mean(), cross), o),
                               exact_curve = alignment_curve(exact, o);
        CHECK(from_fd.method == route::frequent_directions);
        CHECK(from_fd.max_k == sk.rank());
        for (std::size_t k = 0; k < std::min<std::size_t>(from_fd.max_k, 150); ++k)
            CHECK(from_fd.curve(k) == Approx(exact_curve.curve(k)).epsilon(1e-6));
        // A small sketch: its curve stops at its rank and tracks the exact one at small k.
        frequent_directions small({f.dim, 30, c});
        for (std::size_t r0 = 0; r0 < f.n; r0 += 100) small.update(batch_view(f.row(r0), 100, f.dim));
        const alignment_result from_small = alignment_curve(make_statistics(frequent_directions_spectrum(small), small.mean(), cross), o);
        CHECK(from_small.max_k <= 30);
        CHECK(from_small.curve(4) == Approx(exact_curve.curve(4)).epsilon(0.1));  // measured: 6% off (centered, l = 30)
    }
}
