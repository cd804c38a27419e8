// Top / bottom subspace projections (MATH.md §5).
#include <catch2/catch.hpp>

#include <cmath>

#include <recalign/core/blas.hpp>
#include <recalign/sketch/frequent_directions.hpp>
#include <recalign/spectral/subspace.hpp>

#include "../common/helpers.hpp"
#include "../data_sets.hpp"
#include "../common/fashion.hpp"

using namespace recalign;

TEST_CASE("subspace projector: k for a fraction, top + bottom = identity, orthogonality", "[align][subspace]") {
    RECALIGN_SKIP_WITHOUT_FASHION_MNIST();
    const testing::fashion_subset f = testing::load_fashion(800, true);
    moment_accumulator acc({f.dim});
    acc.update(batch_view(f.x.data(), f.n, f.dim));
    const spectrum s = exact_spectrum(acc, centering::centered);
    const std::size_t rows = 50;
    const batch_view batch(f.row(0), rows, f.dim);
    for (double frac : {0.0, 0.5, 0.75, 0.9, 0.99}) {
        CAPTURE(frac);
        const subspace_projector top = subspace_projector::from_spectrum(s, acc.mean_x(), {frac, subspace_part::top});
        const subspace_projector bottom =
            subspace_projector::from_spectrum(s, acc.mean_x(), {frac, subspace_part::bottom});
        // k: smallest with cumulative >= f (direct cumulative sum).
        double acc_var = 0.0;
        std::size_t want = 0;
        while (acc_var < frac * s.total) acc_var += s.eigenvalues(want++);
        CHECK(top.k == want);
        CHECK(top.explained >= frac);
        const matrix_t pt = top.project(batch), pb = bottom.project(batch);
        for (std::size_t r = 0; r < rows; ++r)
            for (std::size_t c = 0; c < f.dim; ++c)
                CHECK(pt(r, c) + pb(r, c) == Approx(f.row(r)[c] + acc.mean_x()(c)).margin(1e-12));
        // Bottom minus the mean is orthogonal to U_k; top is idempotent.
        matrix_t centered = pb;
        for (std::size_t r = 0; r < rows; ++r)
            for (std::size_t c = 0; c < f.dim; ++c) centered(r, c) -= acc.mean_x()(c);
        if (top.k > 0) {
            matrix_t coef = xt::zeros<double>({rows, top.k});
            blas::gemm_nn(rows, top.k, f.dim, 1.0, centered.data(), top.basis.data(), 0.0, coef.data());
            CHECK(xt::amax(xt::abs(coef))() < 1e-12);
        }
        const matrix_t again = top.project(batch_view(pt));
        CHECK(testing::rel_diff(again, pt) < 1e-12);
    }
    // f = 0: top keeps the mean only; the uint8 path equals the double path.
    const subspace_projector none = subspace_projector::from_spectrum(s, acc.mean_x(), {0.0, subspace_part::top});
    CHECK(none.k == 0);
    std::vector<std::uint8_t> u8(f.dim);
    std::vector<double> as_double(f.dim);
    for (std::size_t i = 0; i < f.dim; ++i) as_double[i] = u8[i] = static_cast<std::uint8_t>(i % 256);
    const subspace_projector p = subspace_projector::from_spectrum(s, acc.mean_x(), {0.6, subspace_part::bottom});
    CHECK(testing::bit_equal(p.project(batch_view(u8.data(), 1, f.dim)), p.project(batch_view(as_double.data(), 1, f.dim))));
    // Argument errors.
    CHECK_THROWS_AS(subspace_projector::from_spectrum(s, vector_t(), {0.5, subspace_part::top}), std::invalid_argument);
    CHECK_THROWS_AS(subspace_projector::from_spectrum(s, acc.mean_x(), {1.5, subspace_part::top}), std::invalid_argument);
    const spectrum raw = exact_spectrum(acc, centering::uncentered);
    CHECK_THROWS_AS(subspace_projector::from_spectrum(raw, acc.mean_x(), {0.5, subspace_part::top}), std::invalid_argument);
    CHECK(subspace_projector::from_spectrum(raw, vector_t(), {0.5, subspace_part::top}).k >= 1);
    CHECK(parse_subspace_part("bottom") == subspace_part::bottom);
    CHECK_THROWS_WITH(parse_subspace_part("middle"), Catch::Contains("middle"));
}

TEST_CASE("subspace projector from a sketch: works up to what the sketch explains", "[align][subspace]") {
    RECALIGN_SKIP_WITHOUT_FASHION_MNIST();
    const testing::fashion_subset f = testing::load_fashion(800, true);
    frequent_directions fd({f.dim, 40, centering::centered});
    fd.update(batch_view(f.x.data(), f.n, f.dim));
    const spectrum sk = frequent_directions_spectrum(fd);
    const subspace_projector p = subspace_projector::from_spectrum(sk, fd.mean(), {0.5, subspace_part::bottom});
    CHECK(p.k >= 1);
    CHECK(p.k <= sk.rank());
    CHECK_THROWS_WITH(subspace_projector::from_spectrum(sk, fd.mean(), {0.9999, subspace_part::top}),
                      Catch::Contains("larger sketch"));
}
