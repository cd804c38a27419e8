// Theorem 3 / Eq. 9 and Corollary 3.1 (MATH.md §4) on Fashion-MNIST subsets (14 x 14).
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include <recalign/align/denoising.hpp>

#include "../common/helpers.hpp"
#include "../data_sets.hpp"
#include "../common/fashion.hpp"

using namespace recalign;

namespace {
moment_accumulator accumulate(const std::vector<double>& x, const std::vector<std::int64_t>& y, std::size_t n,
                              std::size_t d) {
    moment_accumulator acc({d, target_mode::class_ids, 10});
    for (std::size_t r0 = 0; r0 < n; r0 += 250) {
        const std::size_t b = std::min<std::size_t>(250, n - r0);
        acc.update(batch_view(x.data() + r0 * d, b, d), target_view::class_ids(y.data() + r0, b));
    }
    return acc;
}
const image_shape fashion14{14, 14, 1, image_layout::hwc};
template <class A, class B>
double max_abs_diff(const A& a, const B& b) {
    REQUIRE(a.shape() == b.shape());
    double m = 0.0;
    for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a.data()[i] - b.data()[i]));
    return m;
}
}  // namespace

TEST_CASE("Gaussian noise: denoising subspace = PCA subspace for every K and sigma", "[align][denoising]") {
    RECALIGN_SKIP_WITHOUT_FASHION_MNIST();
    const testing::fashion_subset f = testing::load_fashion(1500, true);
    const moment_accumulator acc = accumulate(f.x, f.y, f.n, f.dim);
    for (centering c : {centering::uncentered, centering::centered}) {
        for (double sigma : {0.01, 0.1, 1.0, 10.0}) {
            CAPTURE(centering_name(c), sigma);
            noise_spec s;
            s.family = noise_family::gaussian;
            s.sigma = sigma;
            const noise_moments nm = closed_form_noise(s, acc.sxx(c), acc.n());
            const statistics clean = finish(acc, c);
            const noise_impact_result imp = noise_impact(clean, nm);
            CHECK(imp.max_k >= 190);
            double worst = 0.0;
            for (std::size_t k = 0; k < imp.max_k; ++k) worst = std::max(worst, std::abs(imp.distance(k)));
            CAPTURE(worst);
            CHECK(worst < 1e-8);
            const denoising_result d = denoising_alignment(clean, nm);
            double rel = 0.0;
            for (std::size_t k = 0; k < d.max_k; ++k) rel = std::max(rel, std::abs(d.relative_difference(k)));
            CAPTURE(rel);
            // V* through one Cholesky of G and the eigenvectors of C = R⁻ᵀ Bs Bsᵀ R⁻¹ (as SciPy's
            // eigh(A, G)): C squares Bs's condition, so its small eigenvectors carry about ε‖C‖/gap
            // (5e-8 at σ = 1 here; the SVD of the whitened Bs gave 1e-8).
            CHECK(rel < 1e-7);
        }
    }
}

TEST_CASE("masking moves the subspace (label-free diagnostic > 0), dropout -> 0 does not", "[align][denoising]") {
    RECALIGN_SKIP_WITHOUT_FASHION_MNIST();
    const testing::fashion_subset f = testing::load_fashion(1500, true);
    const moment_accumulator acc = accumulate(f.x, f.y, f.n, f.dim);
    const matrix_t sxx = acc.sxx(centering::uncentered);
    const statistics clean = finish(acc, centering::uncentered);
    for (const char* text : {"mask:patch=2x2,ratio=0.5,scheme=fixed", "mask:patch=4x4,ratio=0.75,scheme=bernoulli",
                             "dropout:ratio=0.5"}) {
        CAPTURE(text);
        const noise_moments nm = closed_form_noise(parse_noise_spec(text), sxx, acc.n(), fashion14);
        const noise_impact_result imp = noise_impact(clean, nm);
        CHECK(xt::amax(imp.normalised)() > 1e-3);
        for (std::size_t k = 0; k < imp.max_k; ++k) {
            CHECK(imp.distance(k) >= -1e-12);
            CHECK(imp.normalised(k) <= 1.0 + 1e-12);
        }
    }
    const noise_moments tiny = closed_form_noise(parse_noise_spec("dropout:ratio=1e-9"), sxx, acc.n());
    const denoising_result d = denoising_alignment(clean, tiny);
    for (std::size_t k = 0; k < 60; ++k) CHECK(std::abs(d.relative_difference(k)) < 1e-5);
}

TEST_CASE("denoising curve = least-squares fit of Y on V*_K x, directly on the rows", "[align][denoising]") {
    RECALIGN_SKIP_WITHOUT_FASHION_MNIST();
    const testing::fashion_subset f = testing::load_fashion(800, true);
    const moment_accumulator acc = accumulate(f.x, f.y, f.n, f.dim);
    const noise_moments nm = closed_form_noise(parse_noise_spec("mask:patch=2x2,ratio=0.6,scheme=bernoulli"),
                                               acc.sxx(centering::uncentered), acc.n(), fashion14);
    denoising_options o;
    o.measure = alignment_measure::fit;
    const denoising_result d = denoising_alignment(finish(acc, centering::uncentered), nm, o);
    REQUIRE(d.max_k >= 20);
    for (std::size_t k : {1, 3, 8, 20}) {
        CAPTURE(k);
        // z = V*_Kᵀ x; solve the normal equations (Z Zᵀ) B = Z Yᵀ in long double; fit = ‖Y‖² − residual.
        std::vector<long double> zz(k * k, 0.0L), zy(k * 10, 0.0L);
        std::vector<long double> z(k);
        for (std::size_t r = 0; r < f.n; ++r) {
            for (std::size_t j = 0; j < k; ++j) {
                z[j] = 0.0L;
                for (std::size_t i = 0; i < f.dim; ++i) z[j] += d.subspace.basis(i, j) * f.row(r)[i];
            }
            for (std::size_t a = 0; a < k; ++a) {
                for (std::size_t b = 0; b < k; ++b) zz[a * k + b] += z[a] * z[b];
                zy[a * 10 + static_cast<std::size_t>(f.y[r])] += z[a];
            }
        }
        // Gauss-Jordan: B = (ZZᵀ)⁻¹ ZYᵀ.
        std::vector<long double> bmat = zy;
        for (std::size_t p = 0; p < k; ++p) {
            const long double piv = zz[p * k + p];
            for (std::size_t j = 0; j < k; ++j) zz[p * k + j] /= piv;
            for (std::size_t j = 0; j < 10; ++j) bmat[p * 10 + j] /= piv;
            for (std::size_t r = 0; r < k; ++r)
                if (r != p) {
                    const long double m = zz[r * k + p];
                    for (std::size_t j = 0; j < k; ++j) zz[r * k + j] -= m * zz[p * k + j];
                    for (std::size_t j = 0; j < 10; ++j) bmat[r * 10 + j] -= m * bmat[p * 10 + j];
                }
        }
        long double fit = 0.0L;  // ‖Ŷ‖² = tr(Bᵀ Z Yᵀ)
        for (std::size_t a = 0; a < k; ++a)
            for (std::size_t j = 0; j < 10; ++j) fit += bmat[a * 10 + j] * zy[a * 10 + j];
        const double want = static_cast<double>(fit / static_cast<long double>(f.n));  // tr(Syy) = n for one-hot
        CHECK(d.curve(k - 1) == Approx(want).epsilon(1e-8));
    }
    // A complete basis fits what U does: the curves meet at full rank.
    CHECK(d.curve(d.max_k - 1) == Approx(d.clean_curve(d.max_k - 1)).epsilon(1e-8));
}

TEST_CASE("HWC and CHW layouts give the same denoising alignment after the permutation", "[align][denoising]") {
    // Three channels built from Fashion-MNIST (the image, its square, its horizontal mirror).
    RECALIGN_SKIP_WITHOUT_FASHION_MNIST();
    const testing::fashion_subset f = testing::load_fashion(600, true);
    const std::size_t h = 14, w = 14, c = 3, d = h * w * c;
    std::vector<double> hwc(f.n * d), chw(f.n * d);
    for (std::size_t r = 0; r < f.n; ++r)
        for (std::size_t y = 0; y < h; ++y)
            for (std::size_t x = 0; x < w; ++x) {
                const double v[3] = {f.row(r)[y * w + x], f.row(r)[y * w + x] * f.row(r)[y * w + x],
                                     f.row(r)[y * w + (w - 1 - x)]};
                for (std::size_t ch = 0; ch < c; ++ch) {
                    hwc[r * d + (y * w + x) * c + ch] = v[ch];
                    chw[r * d + (ch * h + y) * w + x] = v[ch];
                }
            }
    const moment_accumulator a = accumulate(hwc, f.y, f.n, d), b = accumulate(chw, f.y, f.n, d);
    const noise_spec s = parse_noise_spec("mask:patch=4x4,ratio=0.5,scheme=fixed");
    const statistics sa = finish(a, centering::uncentered), sb = finish(b, centering::uncentered);
    const denoising_result ra = denoising_alignment(
        sa, closed_form_noise(s, a.sxx(centering::uncentered), a.n(), {h, w, c, image_layout::hwc}));
    const denoising_result rb = denoising_alignment(
        sb, closed_form_noise(s, b.sxx(centering::uncentered), b.n(), {h, w, c, image_layout::chw}));
    REQUIRE(ra.max_k == rb.max_k);
    double worst = 0.0;
    for (std::size_t k = 0; k < std::min<std::size_t>(ra.max_k, 400); ++k)
        worst = std::max(worst, std::abs(ra.curve(k) - rb.curve(k)));
    CAPTURE(worst);
    CHECK(worst < 1e-8);
    // The layout matters: reading the CHW data as HWC is a different mask (a check that the
    // test can fail).
    const denoising_result wrong = denoising_alignment(
        sb, closed_form_noise(s, b.sxx(centering::uncentered), b.n(), {h, w, c, image_layout::hwc}));
    double diff = 0.0;
    for (std::size_t k = 0; k < 100; ++k) diff = std::max(diff, std::abs(wrong.curve(k) - rb.curve(k)));
    CHECK(diff > 1e-4);
}

TEST_CASE("denoising_alignment: mismatched inputs throw", "[align][denoising]") {
    RECALIGN_SKIP_WITHOUT_FASHION_MNIST();
    const testing::fashion_subset f = testing::load_fashion(100, true);
    const moment_accumulator acc = accumulate(f.x, f.y, f.n, f.dim);
    noise_moments nm = closed_form_noise(parse_noise_spec("dropout:ratio=0.2"), acc.sxx(centering::uncentered), acc.n());
    nm.n += 1;
    const statistics clean = finish(acc, centering::uncentered);
    CHECK_THROWS_AS(denoising_alignment(clean, nm), std::invalid_argument);
    noise_moments small{acc.n(), xt::zeros<double>({3, 3}), xt::zeros<double>({3, 3})};
    CHECK_THROWS_AS(denoising_alignment(clean, small), std::invalid_argument);
    CHECK_THROWS_AS(noise_impact(clean, small), std::invalid_argument);
}

TEST_CASE("one finish serves every noise; statistics that lack what an analysis needs are refused",
          "[align][denoising]") {
    RECALIGN_SKIP_WITHOUT_FASHION_MNIST();
    const testing::fashion_subset f = testing::load_fashion(300, true);
    const moment_accumulator acc = accumulate(f.x, f.y, f.n, f.dim);
    const noise_moments nm = closed_form_noise(parse_noise_spec("mask:patch=2x2,ratio=0.4,scheme=fixed"),
                                               acc.sxx(centering::uncentered), acc.n(), fashion14);
    const statistics shared = finish(acc, centering::uncentered);
    const denoising_result a = denoising_alignment(finish(acc, centering::uncentered), nm),
                           b = denoising_alignment(shared, nm);
    CHECK(testing::bit_equal(a.curve, b.curve));
    CHECK(testing::bit_equal(a.clean_curve, b.clean_curve));
    CHECK(testing::bit_equal(noise_impact(finish(acc, centering::uncentered), nm).distance,
                             noise_impact(shared, nm).distance));
    // What a sketch hands over: a top-10 spectrum, no D x D second moment.
    spectrum top = shared.spec;
    top.eigenvalues = xt::view(shared.spec.eigenvalues, xt::range(0, 10));
    top.basis = xt::view(shared.spec.basis, xt::all(), xt::range(0, 10));
    const statistics truncated = make_statistics(top, shared.mean, shared.cross);
    CHECK_THROWS_WITH(denoising_alignment(truncated, nm), Catch::Contains("complete spectrum"));
    CHECK_THROWS_WITH(noise_impact(truncated, nm), Catch::Contains("complete spectrum"));
    // Complete spectrum but no second moment (e.g. assembled by hand): denoising needs Sxx.
    const statistics no_sxx = make_statistics(shared.spec, shared.mean, shared.cross);
    CHECK_THROWS_WITH(denoising_alignment(no_sxx, nm), Catch::Contains("second moment"));
    // No labels: the label-free diagnostic still works, the alignment does not.
    const statistics unlabelled = make_statistics(shared.spec, shared.mean, std::nullopt, shared.second_moment);
    CHECK_THROWS_WITH(denoising_alignment(unlabelled, nm), Catch::Contains("label statistics"));
    CHECK(testing::bit_equal(noise_impact(unlabelled, nm).distance, noise_impact(shared, nm).distance));
    // Parts of different centerings or sample counts do not make one state.
    const statistics centered = finish(acc, centering::centered);
    CHECK_THROWS_WITH(make_statistics(shared.spec, shared.mean, centered.cross), Catch::Contains("centered"));
}

TEST_CASE("denoising alignment from Monte-Carlo expectations approaches the closed form", "[align][denoising]") {
    RECALIGN_SKIP_WITHOUT_FASHION_MNIST();
    const testing::fashion_subset f = testing::load_fashion(600, true);
    const moment_accumulator acc = accumulate(f.x, f.y, f.n, f.dim);
    const noise_spec s = parse_noise_spec("mask:patch=2x2,ratio=0.5,scheme=fixed");
    const statistics clean = finish(acc, centering::uncentered);
    const denoising_result exact =
        denoising_alignment(clean, closed_form_noise(s, acc.sxx(centering::uncentered), acc.n(), fashion14));
    double err_few = 0.0, err_many = 0.0;
    for (std::size_t draws : {2, 64}) {
        monte_carlo_options o;
        o.dim = f.dim;
        o.draws = draws;
        o.name = to_string(s);
        monte_carlo_noise mc(o, make_corrupter(s, fashion14));
        for (std::size_t r0 = 0; r0 < f.n; r0 += 200) mc.update(batch_view(f.row(r0), 200, f.dim), r0);
        const denoising_result d = denoising_alignment(clean, mc.estimate().moments);
        double err = 0.0;
        for (std::size_t k = 0; k < 50; ++k) err = std::max(err, std::abs(d.curve(k) - exact.curve(k)));
        (draws == 2 ? err_few : err_many) = err;
    }
    CAPTURE(err_few, err_many);
    CHECK(err_many < 0.01);
    CHECK(err_many < err_few);
}

TEST_CASE("dsyevd and dsyevr whitening G give the same V*: curve and noise impact", "[align][denoising]") {
    RECALIGN_SKIP_WITHOUT_FASHION_MNIST();
    const testing::fashion_subset f = testing::load_fashion(150, true);  // n < D = 196: G has a null space
    const moment_accumulator acc = accumulate(f.x, f.y, f.n, f.dim);
    const matrix_t sxx = acc.sxx(centering::uncentered);
    exact_finish_options lean;
    lean.solver.workspace_bytes = 0;
    const statistics fast = finish(acc, centering::uncentered), slow = finish(acc, centering::uncentered, lean);
    const noise_moments nm = closed_form_noise(parse_noise_spec("mask:patch=2x2,ratio=0.5"), sxx, acc.n(), fashion14);
    denoising_subspace_result a = denoising_subspace(nm, 1e-12, eigen_options{}),
                              b = denoising_subspace(nm, 1e-12, eigen_options{0});
    REQUIRE(a.rank_g == b.rank_g);
    REQUIRE(a.informative == b.informative);
    CHECK(testing::rel_diff(a.eigenvalues, b.eigenvalues) < 1e-10);
    const noise_impact_result ia = noise_impact(fast, a), ib = noise_impact(slow, b);
    const denoising_result da = denoising_alignment(fast, std::move(a)), db = denoising_alignment(slow, std::move(b));
    REQUIRE(da.max_k == db.max_k);
    REQUIRE(ia.max_k == ib.max_k);
    for (std::size_t k = 0; k < da.max_k; ++k) CHECK(std::abs(da.curve(k) - db.curve(k)) < 1e-9);
    for (std::size_t k = 0; k < ia.max_k; ++k) CHECK(std::abs(ia.distance(k) - ib.distance(k)) < 1e-8 * (k + 1));
}

TEST_CASE("Gaussian noise in closed form (V* = U (Λ + nσ²)^{-1/2}) = the generalized eigenproblem of its Bs, G",
          "[align][denoising]") {
    RECALIGN_SKIP_WITHOUT_FASHION_MNIST();
    for (std::size_t n : {1500, 150}) {  // G = Sxx + nσ²I: Cholesky route; n < D: small σ whitens
        const testing::fashion_subset f = testing::load_fashion(n, true);
        const moment_accumulator acc = accumulate(f.x, f.y, f.n, f.dim);
        const statistics clean = finish(acc, centering::uncentered);
        for (double sigma : {1e-4, 0.1, 10.0}) {
            CAPTURE(n, sigma);
            noise_spec s;
            s.family = noise_family::gaussian;
            s.sigma = sigma;
            const noise_moments nm = closed_form_noise(s, *clean.second_moment, clean.n);
            denoising_subspace_result a = gaussian_denoising_subspace(clean, static_cast<double>(n) * sigma * sigma),
                                      b = denoising_subspace(nm, 1e-12, eigen_options{0});
            // rank(Bs) <= n: with n < D and no room for dsyevd only the top n pairs are solved for
            // (dsyevr's index range).
            CHECK(b.basis.shape(1) == std::min<std::size_t>(n, f.dim));
            REQUIRE(a.rank_g == b.rank_g);
            REQUIRE(a.informative == b.informative);
            const std::size_t k = a.informative;
            vector_t ea = xt::view(a.eigenvalues, xt::range(0, k)), eb = xt::view(b.eigenvalues, xt::range(0, k));
            CHECK(testing::rel_diff(ea, eb) < 1e-8);
            const noise_impact_result ia = noise_impact(clean, a);
            const denoising_result da = denoising_alignment(clean, std::move(a)), db = denoising_alignment(clean, std::move(b));
            REQUIRE(da.max_k == db.max_k);
            // The closed form is the clean curve to rounding (Corollary 3.1); the general route is
            // within its own accuracy (the first test case: 1e-7).
            for (std::size_t j = 0; j < da.max_k; ++j) {
                CHECK(std::abs(da.relative_difference(j)) < 1e-10);
                CHECK(std::abs(da.curve(j) - db.curve(j)) < 1e-7);
            }
            for (std::size_t j = 0; j < ia.max_k; ++j) CHECK(std::abs(ia.distance(j)) < 1e-12);  // Corollary 3.1
        }
    }
}

TEST_CASE("masking_denoising_subspace: closed_form_noise's V* from Sxx's own triangles, Sxx restored bit for bit",
          "[align][denoising]") {
    RECALIGN_SKIP_WITHOUT_FASHION_MNIST();
    for (std::size_t n : {1500, 150}) {  // n < D = 196: rank(Bs) < D (C's top n pairs without dsyevd)
        const testing::fashion_subset f = testing::load_fashion(n, true);
        const moment_accumulator acc = accumulate(f.x, f.y, f.n, f.dim);
        const matrix_t sxx = acc.sxx(centering::uncentered);
        for (const char* text : {"mask:patch=2x2,ratio=0.5", "mask:patch=3x2,ratio=0.5,scheme=fixed", "dropout:ratio=0.3"})
            for (const std::uint64_t budget : {std::numeric_limits<std::uint64_t>::max(), std::uint64_t{0}}) {
                CAPTURE(n, text, budget);
                const noise_spec s = parse_noise_spec(text);
                const denoising_subspace_result a =
                    denoising_subspace(closed_form_noise(s, sxx, acc.n(), fashion14), 1e-12, eigen_options{budget});
                matrix_t scratch = sxx;
                const denoising_subspace_result b =
                    masking_denoising_subspace(scratch, s, acc.n(), fashion14, 1e-12, eigen_options{budget});
                CHECK(max_abs_diff(scratch, sxx) == 0.0);
                REQUIRE(a.rank_g == b.rank_g);
                REQUIRE(a.informative == b.informative);
                REQUIRE(a.basis.shape(1) == b.basis.shape(1));
                CHECK(max_abs_diff(a.eigenvalues, b.eigenvalues) == 0.0);  // the same products on the same numbers
                CHECK(max_abs_diff(a.basis, b.basis) == 0.0);
            }
    }
    matrix_t not_square = xt::zeros<double>({3, 4});
    CHECK_THROWS_AS(masking_denoising_subspace(not_square, parse_noise_spec("dropout:ratio=0.3"), 10),
                    std::invalid_argument);
    matrix_t sxx = xt::eye<double>(4);
    CHECK_THROWS_AS(masking_denoising_subspace(sxx, parse_noise_spec("gaussian:sigma=1"), 10), std::invalid_argument);
}

TEST_CASE("denoising alignment through U Λ Uᵀ (statistics without Sxx) = through Sxx", "[align][denoising]") {
    RECALIGN_SKIP_WITHOUT_FASHION_MNIST();
    const testing::fashion_subset f = testing::load_fashion(400, true);
    const moment_accumulator acc = accumulate(f.x, f.y, f.n, f.dim);
    exact_finish_options no_sxx;
    no_sxx.second_moment = false;
    const statistics with = finish(acc, centering::uncentered), without = finish(acc, centering::uncentered, no_sxx);
    REQUIRE_FALSE(without.second_moment.has_value());
    const noise_moments nm =
        closed_form_noise(parse_noise_spec("mask:patch=2x2,ratio=0.5"), *with.second_moment, acc.n(), fashion14);
    const denoising_result a = denoising_alignment(with, denoising_subspace(nm)),
                           b = denoising_alignment(without, denoising_subspace(nm));
    REQUIRE(a.max_k == b.max_k);
    REQUIRE(a.max_k > 100);
    CHECK(a.skipped == b.skipped);
    for (std::size_t k = 0; k < a.max_k; ++k) {
        const double tol = 1e-10 * std::abs(a.curve(k)) + 1e-15;  // ~1e-11 measured (rounding of either Gram)
        CHECK(std::abs(a.curve(k) - b.curve(k)) <= tol);
    }
}
