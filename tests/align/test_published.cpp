// The authors' published pipeline in the library (MATH.md §8): the `published` measure,
// statistics with centered inputs and raw targets, the global standardisation, and the
// tracker's raw_targets option through a checkpoint. The end-to-end comparison with a NumPy
// transcription of their code is tests/cli/test_published.py.
#include <catch2/catch.hpp>

#include <cmath>

#include <recalign/align/alignment.hpp>
#include <recalign/align/tracker.hpp>
#include <recalign/core/serial.hpp>
#include <recalign/spectral/statistics.hpp>

#include "../common/fashion.hpp"
#include "../data_sets.hpp"

using namespace recalign;

namespace {
alignment_result curve(const statistics& s, alignment_measure m) {
    alignment_options o;
    o.measure = m;
    return alignment_curve(s, o);
}
}  // namespace

TEST_CASE("published = 100 sqrt(rank), on centered inputs with raw targets", "[align][published]") {
    RECALIGN_SKIP_WITHOUT_FASHION_MNIST();
    const testing::fashion_subset f = testing::load_fashion(800, true);
    moment_accumulator acc({f.dim, target_mode::class_ids, 10});
    acc.update(batch_view(f.x.data(), f.n, f.dim), target_view::class_ids(f.y.data(), f.n));
    const statistics s = finish(acc, centering::centered, centering::uncentered);
    REQUIRE(s.center == centering::centered);
    REQUIRE(s.cross->center == centering::uncentered);
    // Syy raw: diag(n_c), computed here from the labels.
    std::vector<double> counts(10, 0.0);
    for (std::int64_t y : f.y) counts[static_cast<std::size_t>(y)] += 1;
    const matrix_t syy = s.cross->syy_dense();
    for (std::size_t i = 0; i < 10; ++i)
        for (std::size_t j = 0; j < 10; ++j) CHECK(syy(i, j) == Approx(i == j ? counts[i] : 0.0).margin(1e-9));
    // Sxy of centered inputs against raw targets = the fully centered one.
    const statistics both = finish(acc, centering::centered);
    CHECK(xt::allclose(s.cross->sxy, both.cross->sxy, 0.0, 1e-12));
    const alignment_result pub = curve(s, alignment_measure::published), rank = curve(s, alignment_measure::rank);
    REQUIRE(pub.curve.size() == f.dim);
    for (std::size_t k = 0; k < f.dim; ++k) CHECK(pub.curve(k) == Approx(100.0 * std::sqrt(rank.curve(k))).epsilon(1e-14));
    CHECK(pub.curve(f.dim - 1) == Approx(100.0).epsilon(1e-13));
    CHECK(parse_measure("published") == alignment_measure::published);
    CHECK(std::string(measure_name(alignment_measure::published)) == "published");
    CHECK_THROWS_AS(finish(acc, centering::uncentered, centering::centered), std::invalid_argument);

    SECTION("global standardisation: sigma of all centered values, curves unchanged") {
        double sum = 0.0;
        std::vector<double> mean(f.dim, 0.0);
        for (std::size_t r = 0; r < f.n; ++r)
            for (std::size_t j = 0; j < f.dim; ++j) mean[j] += f.row(r)[j] / static_cast<double>(f.n);
        for (std::size_t r = 0; r < f.n; ++r)
            for (std::size_t j = 0; j < f.dim; ++j) sum += (f.row(r)[j] - mean[j]) * (f.row(r)[j] - mean[j]);
        const double sigma = std::sqrt(sum / static_cast<double>(f.n * f.dim));
        CHECK(global_std(s) == Approx(sigma).epsilon(1e-12));
        CHECK(global_std(finish(acc, centering::uncentered)) == Approx(sigma).epsilon(1e-9));
        const statistics z = standardize_global(s);
        CHECK(global_std(z) == Approx(1.0).epsilon(1e-12));
        CHECK(z.spec.eigenvalues(0) == Approx(s.spec.eigenvalues(0) / (sigma * sigma)).epsilon(1e-12));
        const alignment_result after = curve(z, alignment_measure::published);
        CHECK(xt::allclose(after.curve, pub.curve, 1e-10, 1e-10));
    }
}

TEST_CASE("tracker with raw targets: its report and its checkpoint", "[align][published][tracker]") {
    RECALIGN_SKIP_WITHOUT_FASHION_MNIST();
    const testing::fashion_subset f = testing::load_fashion(600, true);
    tracker_options o;
    o.dim = f.dim;
    o.classes = 10;
    o.shape = {f.side, f.side, 1, image_layout::hwc};
    o.noises = {parse_noise_spec("mask:patch=2x2,ratio=0.5")};
    o.measure = alignment_measure::published;
    o.center = centering::centered;
    o.raw_targets = true;
    alignment_tracker t(o);
    t.update(batch_view(f.x.data(), f.n, f.dim), target_view::class_ids(f.y.data(), f.n));
    moment_accumulator acc({f.dim, target_mode::class_ids, 10});
    acc.update(batch_view(f.x.data(), f.n, f.dim), target_view::class_ids(f.y.data(), f.n));
    const alignment_result direct = curve(finish(acc, centering::centered, centering::uncentered), alignment_measure::published);
    alignment_tracker loaded = checkpoint::from_bytes<alignment_tracker>(checkpoint::to_bytes(t));
    CHECK(loaded.options().raw_targets);
    CHECK(loaded.config_hash() == t.config_hash());
    o.raw_targets = false;
    CHECK(alignment_tracker(o).config_hash() != t.config_hash());
    const tracker_report r = loaded.report();
    CHECK(xt::allclose(r.clean.curve, direct.curve, 0.0, 1e-10));
    o.center = centering::uncentered;
    o.raw_targets = true;
    CHECK_THROWS_AS(alignment_tracker(o), std::invalid_argument);
}
