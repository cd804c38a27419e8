// Finished statistics (spectral/statistics.hpp): what each route provides, refusals before
// any data is read, and that finish() is exactly the pieces the analyses used to compute
// one by one.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include <recalign/align/alignment.hpp>
#include <recalign/align/tradeoff.hpp>
#include <recalign/sketch/frequent_directions.hpp>
#include <recalign/sketch/nystrom_sketch.hpp>
#include <recalign/spectral/eigen.hpp>
#include <recalign/spectral/statistics.hpp>
#include <recalign/stats/class_moments.hpp>

#include "../common/helpers.hpp"

using namespace recalign;

namespace {
moment_accumulator labelled(std::size_t n, std::size_t d, std::size_t c) {
    const std::vector<double> x = testing::random_rows(n, d, 17);
    const std::vector<std::int64_t> y = testing::random_labels(n, c, 18);
    moment_accumulator acc({d, target_mode::class_ids, c});
    for (std::size_t r0 = 0; r0 < n; r0 += 64) {
        const std::size_t b = std::min<std::size_t>(64, n - r0);
        acc.update(batch_view(x.data() + r0 * d, b, d), target_view::class_ids(y.data() + r0, b));
    }
    return acc;
}
}  // namespace

TEST_CASE("route names: one spelling, parsed back", "[spectral][statistics]") {
    for (route r : {route::exact, route::frequent_directions, route::nystrom}) CHECK(parse_route(route_name(r)) == r);
    CHECK(std::string(route_name(route::frequent_directions)) == "fd");
    CHECK_THROWS_WITH(parse_route("frequent_directions"), Catch::Contains("frequent_directions") &&
                                                              Catch::Contains("exact, fd or nystrom"));
    CHECK(solver_status_of(0) == solver_status::converged);
    CHECK(solver_status_of(3) == solver_status::not_converged);
    CHECK(worst(solver_status::converged, solver_status::breakdown) == solver_status::breakdown);
    CHECK(worst(solver_status::not_converged, solver_status::breakdown) == solver_status::not_converged);
}

TEST_CASE("check_route: what each route can serve, known before any data", "[spectral][statistics]") {
    for (analysis a : {analysis::spectrum, analysis::alignment, analysis::projection, analysis::tradeoff,
                       analysis::denoising, analysis::noise_impact})
        CHECK_NOTHROW(check_route(route::exact, a, true));
    for (route r : {route::frequent_directions, route::nystrom}) {
        CAPTURE(route_name(r));
        CHECK_NOTHROW(check_route(r, analysis::alignment, true));
        CHECK_NOTHROW(check_route(r, analysis::spectrum, false));
        CHECK_NOTHROW(check_route(r, analysis::projection, false));
        CHECK_THROWS_WITH(check_route(r, analysis::tradeoff, true),
                          Catch::Contains("tradeoff") && Catch::Contains("complete spectrum") &&
                              Catch::Contains(route_name(r)) && Catch::Contains("--method exact"));
        CHECK_THROWS_WITH(check_route(r, analysis::denoising, true), Catch::Contains("denoising"));
        CHECK_THROWS_WITH(check_route(r, analysis::noise_impact, false), Catch::Contains("noise impact"));
    }
    // Labels: the alignment, the trade-off and denoising need them; the label-free ones do not.
    CHECK_THROWS_WITH(check_route(route::exact, analysis::alignment, false),
                      Catch::Contains("label statistics") && Catch::Contains("--labels"));
    CHECK_THROWS_AS(check_route(route::exact, analysis::tradeoff, false), std::invalid_argument);
    CHECK_NOTHROW(check_route(route::exact, analysis::noise_impact, false));
    CHECK(route_provides(route::nystrom, statistic::targets, true));
    CHECK(!route_provides(route::nystrom, statistic::second_moment, true));
}

TEST_CASE("finish(moments): Sxx, its complete spectrum, the mean and the cross statistics of one state",
          "[spectral][statistics]") {
    const moment_accumulator acc = labelled(300, 12, 3);
    for (centering c : {centering::uncentered, centering::centered}) {
        CAPTURE(centering_name(c));
        const statistics s = finish(acc, c);
        CHECK(s.method == route::exact);
        CHECK(s.center == c);
        CHECK(s.n == 300);
        CHECK(s.dim == 12);
        CHECK(s.classes() == 3);
        CHECK(s.provides(statistic::full_spectrum));
        CHECK(s.provides(statistic::second_moment));
        CHECK(s.provides(statistic::targets));
        CHECK(testing::bit_equal(*s.second_moment, acc.sxx(c)));
        CHECK(testing::bit_equal(s.mean, acc.mean_x()));
        CHECK(testing::bit_equal(s.cross->sxy, acc.sxy(c)));
        CHECK(testing::bit_equal(s.cross->syy_dense(), acc.syy(c)));
        // The spectrum is exact_spectrum's, bit for bit, and decomposes the Sxx it carries.
        const spectrum e = exact_spectrum(acc, c);
        CHECK(testing::bit_equal(s.spec.eigenvalues, e.eigenvalues));
        CHECK(testing::bit_equal(s.spec.basis, e.basis));
        CHECK(s.spec.status == solver_status::converged);
        matrix_t back = xt::zeros<double>({12, 12});
        for (std::size_t i = 0; i < 12; ++i)
            for (std::size_t j = 0; j < 12; ++j)
                for (std::size_t k = 0; k < 12; ++k)
                    back(i, j) += s.spec.basis(i, k) * s.spec.eigenvalues(k) * s.spec.basis(j, k);
        CHECK(testing::rel_diff(back, *s.second_moment) < 1e-12);
    }
    // Without targets: everything but the cross statistics; the analyses that need labels refuse.
    moment_accumulator unlabelled({12});
    const std::vector<double> x = testing::random_rows(50, 12, 3);
    unlabelled.update(batch_view(x.data(), 50, 12));
    const statistics s = finish(unlabelled, centering::centered);
    CHECK(!s.provides(statistic::targets));
    CHECK(s.classes() == 0);
    CHECK_THROWS_WITH(alignment_curve(s, alignment_options{}),
                      Catch::Contains("alignment_curve") && Catch::Contains("label statistics"));
}

TEST_CASE("make_statistics refuses parts of different states", "[spectral][statistics]") {
    const moment_accumulator acc = labelled(200, 8, 2);
    const statistics s = finish(acc, centering::uncentered);
    const statistics centered = finish(acc, centering::centered);
    CHECK_NOTHROW(make_statistics(s.spec, s.mean, s.cross, s.second_moment));
    CHECK_THROWS_WITH(make_statistics(s.spec, s.mean, centered.cross), Catch::Contains("centered"));
    CHECK_THROWS_WITH(make_statistics(s.spec, vector_t(xt::zeros<double>({7})), s.cross), Catch::Contains("mean"));
    cross_moments more = *s.cross;
    more.n += 1;
    CHECK_THROWS_WITH(make_statistics(s.spec, s.mean, more), Catch::Contains("samples"));
    CHECK_THROWS_WITH(make_statistics(s.spec, s.mean, s.cross, matrix_t(xt::zeros<double>({8, 7}))),
                      Catch::Contains("second moment"));
    // A top-3 spectrum (what a sketch hands over): alignment up to 3, the trade-off refuses.
    spectrum top = s.spec;
    top.eigenvalues = xt::view(s.spec.eigenvalues, xt::range(0, 3));
    top.basis = xt::view(s.spec.basis, xt::all(), xt::range(0, 3));
    top.method = route::nystrom;
    const statistics sketch = make_statistics(top, s.mean, s.cross);
    CHECK(sketch.method == route::nystrom);
    CHECK(alignment_curve(sketch, alignment_options{}).max_k == 3);
    tradeoff_options o;
    o.lambdas = {1.0};
    o.k = 2;
    CHECK_THROWS_WITH(tradeoff(sketch, o), Catch::Contains("tradeoff") && Catch::Contains("nystrom route, 3 of 8"));
    CHECK_NOTHROW(tradeoff(s, o));
}

TEST_CASE("finish(sketch, labels): the sketch's top eigenpairs with exact label statistics", "[spectral][statistics]") {
    const std::size_t n = 400, d = 20, c = 3;
    const std::vector<double> x = testing::random_rows(n, d, 31);
    const std::vector<std::int64_t> y = testing::random_labels(n, c, 32);
    moment_accumulator acc({d, target_mode::class_ids, c});
    class_moments labels({d, c});
    frequent_directions_options fo;
    fo.dim = d;
    fo.ell = 10;
    fo.center = centering::centered;
    frequent_directions fd(fo);
    nystrom_options no;
    no.dim = d;
    no.rank = 5;
    no.oversampling = 5;
    no.center = centering::uncentered;
    nystrom_sketch ny(no);
    for (std::size_t r0 = 0; r0 < n; r0 += 100) {
        const batch_view b(x.data() + r0 * d, 100, d);
        const target_view t = target_view::class_ids(y.data() + r0, 100);
        acc.update(b, t);
        labels.update(b, t, r0);
        fd.update(b, r0);
        ny.update(b, r0);
    }
    const statistics sf = finish(fd, &labels, {4});
    CHECK(sf.method == route::frequent_directions);
    CHECK(sf.center == centering::centered);
    CHECK(sf.spec.rank() == 4);
    CHECK(!sf.provides(statistic::full_spectrum));
    CHECK(!sf.provides(statistic::second_moment));
    CHECK(testing::rel_diff(sf.cross->sxy, acc.sxy(centering::centered)) < 1e-12);
    CHECK(testing::rel_diff(sf.cross->syy_dense(), acc.syy(centering::centered)) < 1e-12);
    CHECK(sf.cross->one_hot());
    CHECK(testing::rel_diff(sf.mean, acc.mean_x()) < 1e-14);
    const statistics sn = finish(ny, &labels);
    CHECK(sn.method == route::nystrom);
    CHECK(sn.center == centering::uncentered);
    CHECK(sn.spec.rank() == 5);
    CHECK(testing::rel_diff(sn.cross->sxy, acc.sxy(centering::uncentered)) < 1e-12);
    CHECK(alignment_curve(sn, alignment_options{}).max_k == 5);
    // Without labels: a spectrum for spectrum/projection; the alignment refuses.
    const statistics bare = finish(fd, nullptr);
    CHECK(!bare.provides(statistic::targets));
    // Labels of other rows (a different count) or another width are not this sketch's.
    class_moments fewer({d, c});
    fewer.update(batch_view(x.data(), 50, d), target_view::class_ids(y.data(), 50));
    CHECK_THROWS_WITH(finish(fd, &fewer), Catch::Contains("50 samples"));
    class_moments narrow({d - 1, c});
    CHECK_THROWS_WITH(finish(ny, &narrow), Catch::Contains("D = 19"));
    // The labels consumed (class_moments::cross &&): the same bits; refused labels are left as
    // they were, before anything is consumed.
    for (const auto* sk : {&sf, &sn}) {
        class_moments copy = labels;
        const statistics moved = sk == &sf ? finish(fd, std::move(copy), {4}) : finish(ny, std::move(copy));
        CHECK(copy.n() == 0);
        REQUIRE(moved.cross);
        CHECK(moved.cross->sxy == sk->cross->sxy);
        CHECK(moved.cross->class_counts == sk->cross->class_counts);
        CHECK(moved.spec.eigenvalues == sk->spec.eigenvalues);
        CHECK(moved.spec.basis == sk->spec.basis);
    }
    CHECK_THROWS_WITH(finish(fd, std::move(fewer)), Catch::Contains("50 samples"));
    CHECK(fewer.n() == 50);
    CHECK_THROWS_WITH(finish(ny, std::move(narrow)), Catch::Contains("D = 19"));
    CHECK(narrow.dim() == d - 1);
}

TEST_CASE("finish(moments, centering, top): the top eigenpairs only, through the subset solver", "[spectral][statistics]") {
    const moment_accumulator acc = labelled(500, 40, 4);
    for (centering c : {centering::uncentered, centering::centered}) {
        CAPTURE(centering_name(c));
        const statistics all = finish(acc, c), top = finish(acc, c, 7);
        REQUIRE(top.spec.rank() == 7);
        CHECK(!top.provides(statistic::full_spectrum));
        CHECK(top.provides(statistic::second_moment));
        CHECK(top.spec.status == solver_status::converged);
        for (std::size_t j = 0; j < 7; ++j) {
            CHECK(top.spec.eigenvalues(j) == Approx(all.spec.eigenvalues(j)).epsilon(1e-12));
            double dot = 0.0;  // the same direction (signs are fixed alike by fix_signs)
            for (std::size_t i = 0; i < 40; ++i) dot += top.spec.basis(i, j) * all.spec.basis(i, j);
            CHECK(dot == Approx(1.0).epsilon(1e-10));
        }
        // The alignment up to 7 is the prefix of the complete one; the trade-off refuses.
        const alignment_result a = alignment_curve(top, alignment_options{}), b = alignment_curve(all, alignment_options{});
        REQUIRE(a.max_k == 7);
        for (std::size_t j = 0; j < 7; ++j) CHECK(a.curve(j) == Approx(b.curve(j)).epsilon(1e-10));
        tradeoff_options o;
        o.lambdas = {1.0};
        o.k = 2;
        CHECK_THROWS_WITH(tradeoff(top, o), Catch::Contains("7 of 40"));
    }
    CHECK(testing::bit_equal(finish(acc, centering::centered, 40).spec.eigenvalues,
                             finish(acc, centering::centered).spec.eigenvalues));  // top = D is the full solver
    CHECK_THROWS_AS(finish(acc, centering::centered, 41), std::invalid_argument);
}

TEST_CASE("finish clips the negative eigenvalues of a rank-deficient second moment and counts them",
          "[spectral][statistics]") {
    // 6 rows in 12 dimensions: the centered Sxx has rank 5; LAPACK returns its 7 zero
    // eigenvalues as rounding of either sign (all 35 of five seeds >= 0: probability 2^-35).
    std::size_t clipped = 0;
    for (std::uint64_t seed = 0; seed < 5; ++seed) {
        const std::vector<double> x = testing::random_rows(6, 12, 40 + seed);
        moment_accumulator acc({12, target_mode::none, 0});
        acc.update(batch_view(x.data(), 6, 12));
        const eigen_result raw = sym_eigen(acc.sxx(centering::centered));  // LAPACK, unclipped
        for (std::size_t top : {std::size_t(0), std::size_t(9)}) {
            const spectrum s = finish(acc, centering::centered, top).spec;
            std::size_t negative = 0;
            double most = 0.0;
            for (std::size_t j = 0; j < s.rank(); ++j) {
                CHECK(s.eigenvalues(j) >= 0.0);
                CHECK(std::abs(s.eigenvalues(j) - std::max(raw.values(j), 0.0)) <= 1e-12 * raw.values(0));
                if (top == 0 && raw.values(j) < 0.0) ++negative, most = std::min(most, raw.values(j));
            }
            if (top == 0) {
                CHECK(s.clipped == negative);  // the same solver on the same matrix
                CHECK(s.most_negative == most);
            }
            CHECK(s.most_negative <= 0.0);
            CHECK(-s.most_negative <= 1e-12 * s.eigenvalues(0));
            if (top == 0) CHECK(s.explained(11) == Approx(1.0).epsilon(1e-12));  // recomputed after clipping
            clipped += s.clipped;
        }
        // diag(Sxx) without the matrix: the sums over the rows, directly.
        for (centering c : {centering::centered, centering::uncentered}) {
            const vector_t d = acc.diag_xx(c);
            for (std::size_t i = 0; i < 12; ++i) {
                double mean = 0.0, sum = 0.0;
                for (std::size_t r = 0; r < 6; ++r) mean += x[r * 12 + i] / 6.0;
                for (std::size_t r = 0; r < 6; ++r) {
                    const double v = x[r * 12 + i] - (c == centering::centered ? mean : 0.0);
                    sum += v * v;
                }
                CHECK(d(i) == Approx(sum).epsilon(1e-12));
            }
        }
    }
    CHECK(clipped > 0);
}

TEST_CASE("finish(moment_accumulator&&): the accumulator's own storage, finish's results bit for bit",
          "[spectral][statistics]") {
    // Labelled: the joint scatter is (D + C)², Sxx is copied out; unlabelled: formed in place.
    moment_accumulator unlabelled({12});
    const std::vector<double> x = testing::random_rows(50, 12, 3);  // n > D
    unlabelled.update(batch_view(x.data(), 50, 12));
    for (const moment_accumulator& base : {unlabelled, labelled(300, 12, 3)}) {
        for (centering c : {centering::uncentered, centering::centered})
            for (std::uint64_t work : {std::uint64_t(0), std::numeric_limits<std::uint64_t>::max()})
                for (bool keep : {false, true}) {
                    CAPTURE(centering_name(c), work, keep, base.has_targets());
                    exact_finish_options o;
                    o.second_moment = keep;
                    o.solver.workspace_bytes = work;  // 0: dsyevr, else dsyevd
                    const statistics want = finish(base, c, o);
                    moment_accumulator own = base;
                    CHECK(testing::bit_equal(moment_accumulator(base).release_sxx(c), base.sxx(c)));
                    const statistics got = finish(std::move(own), c, o);
                    CHECK(testing::bit_equal(got.spec.eigenvalues, want.spec.eigenvalues));
                    CHECK(testing::bit_equal(got.spec.basis, want.spec.basis));
                    CHECK(got.spec.total == want.spec.total);
                    CHECK(testing::bit_equal(got.mean, want.mean));
                    CHECK(got.provides(statistic::second_moment) == keep);
                    if (keep) CHECK(testing::bit_equal(*got.second_moment, *want.second_moment));
                    CHECK(got.provides(statistic::targets) == base.has_targets());
                    if (base.has_targets()) CHECK(testing::bit_equal(got.cross->sxy, want.cross->sxy));
                }
    }
}

TEST_CASE("exact_eigenvalues: the eigenvalues alone, of a second moment with a known spectrum", "[spectral][statistics]") {
    // Rows σ_j q_jᵀ with Q the orthonormal DCT-II basis (a closed form): the uncentered
    // Sxx = Q diag(σ²) Qᵀ has the eigenvalues σ_j², and D − n of them are 0 (n < D, the
    // zero cluster of an uncentered second moment).
    const std::size_t d = 40, n = 30;
    const double pi = std::acos(-1.0);
    std::vector<double> x(n * d);
    std::vector<double> want(d, 0.0);
    for (std::size_t j = 0; j < n; ++j) {
        const double sigma = 1.0 + 0.37 * static_cast<double>(j);
        want[j] = sigma * sigma;
        for (std::size_t i = 0; i < d; ++i)
            x[j * d + i] = sigma * std::sqrt((j == 0 ? 1.0 : 2.0) / d) * std::cos(pi * (i + 0.5) * j / d);
    }
    std::sort(want.rbegin(), want.rend());
    moment_accumulator m({d});
    m.update(batch_view(x.data(), n, d));
    const spectrum full = exact_spectrum(m, centering::uncentered);
    const double trace = m.trace_xx(centering::uncentered);
    const spectrum s = exact_eigenvalues(moment_accumulator(m), centering::uncentered);
    REQUIRE(s.eigenvalues.size() == d);
    CHECK(s.basis.size() == 0);
    CHECK(s.status == solver_status::converged);
    CHECK(s.total == trace);
    CHECK(s.n == n);
    CHECK(s.dim == d);
    for (std::size_t i = 0; i < d; ++i) {
        CAPTURE(i);
        CHECK(std::abs(s.eigenvalues(i) - want[i]) <= 1e-12 * want[0]);
        CHECK(std::abs(s.eigenvalues(i) - full.eigenvalues(i)) <= 1e-12 * want[0]);
        CHECK(s.explained(i) == Approx(full.explained(i)).margin(1e-12));
    }
}
