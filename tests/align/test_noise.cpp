// Noise models (MATH.md §4): spec parsing, closed forms against exact enumeration of every
// mask, Monte Carlo against closed forms (within 4 standard errors), accumulator verbs.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <vector>

#include <recalign/align/noise.hpp>

#include "../common/helpers.hpp"
#include "../data_sets.hpp"
#include "../common/fashion.hpp"

using namespace recalign;

TEST_CASE("noise spec: parse, canonical text, clear errors", "[align][noise]") {
    noise_spec g = parse_noise_spec("gaussian:sigma=0.1");
    CHECK(g.family == noise_family::gaussian);
    CHECK(g.sigma == 0.1);
    noise_spec m = parse_noise_spec("mask:patch=2x2,ratio=0.5,scheme=fixed");
    CHECK(m.family == noise_family::mask);
    CHECK(m.patch_h == 2);
    CHECK(m.patch_w == 2);
    CHECK(m.ratio == 0.5);
    CHECK(m.scheme == mask_scheme::fixed_count);
    noise_spec d = parse_noise_spec("dropout:ratio=0.3");
    CHECK(d.family == noise_family::dropout);
    CHECK(d.ratio == 0.3);
    noise_spec full = parse_noise_spec("mask:patch=4x2,ratio=0.75,shape=14x14x3,layout=chw,draws=8,seed=5");
    CHECK(full.shape.channels == 3);
    CHECK(full.shape.layout == image_layout::chw);
    CHECK(full.draws == 8);
    CHECK(full.seed == 5);
    for (const noise_spec& s : {g, m, d, full}) {
        const noise_spec again = parse_noise_spec(to_string(s));
        CHECK(to_string(again) == to_string(s));
        CHECK(again.ratio == s.ratio);
        CHECK(again.sigma == s.sigma);
    }
    auto message = [](const std::string& text) {
        try {
            parse_noise_spec(text);
        } catch (const std::invalid_argument& e) {
            return std::string(e.what());
        }
        return std::string("no exception");
    };
    CHECK_THAT(message("blur:sigma=1"), Catch::Contains("'blur'"));
    CHECK_THAT(message("gaussian:sigma=abc"), Catch::Contains("sigma=abc"));
    CHECK_THAT(message("gaussian"), Catch::Contains("needs sigma"));
    CHECK_THAT(message("gaussian:sigma=-1"), Catch::Contains("sigma"));
    CHECK_THAT(message("mask:patch=2y2,ratio=0.5"), Catch::Contains("patch=2y2"));
    // A shape written with commas is cut at the first by the spec's own separator: say how.
    CHECK_THAT(message("mask:patch=4x4,ratio=0.5,shape=20,20,1"),
               Catch::Contains("'shape=20' has 1 part: write it HxW or HxWxC") && Catch::Contains("joined by 'x'"));
    CHECK_THAT(message("mask:patch=2x2x2,ratio=0.5"), Catch::Contains("has 3 parts: write it PHxPW"));
    CHECK_THAT(message("mask:patch=2x2,ratio=1.5"), Catch::Contains("ratio"));
    CHECK_THAT(message("mask:patch=2x2,ratio=0.5,scheme=random"), Catch::Contains("scheme=random"));
    CHECK_THAT(message("mask:ratio=0.5"), Catch::Contains("patch"));
    CHECK_THAT(message("dropout:ratio=0.3,patch=2x2"), Catch::Contains("'patch'"));
    CHECK_THAT(message("dropout:ratio=0.3,ratio=0.2"), Catch::Contains("twice"));
    CHECK_THAT(message("dropout:ratio=0.3,colour=red"), Catch::Contains("'colour'"));
    CHECK_THAT(message("dropout:ratio"), Catch::Contains("key=value"));
    CHECK_THAT(message("mask:patch=0x2,ratio=0.5"), Catch::Contains("zero"));
    CHECK_THAT(message("mask:patch=8x8,ratio=0.5,shape=4x4"), Catch::Contains("larger"));
}

TEST_CASE("patch map: partial edge patches, layouts", "[align][noise]") {
    image_shape hwc{5, 7, 2, image_layout::hwc}, chw{5, 7, 2, image_layout::chw};
    const patch_map a = make_patch_map(hwc, 2, 3), b = make_patch_map(chw, 2, 3);
    CHECK(a.patches == 3 * 3);  // ⌈5/2⌉ x ⌈7/3⌉
    for (std::size_t y = 0; y < 5; ++y)
        for (std::size_t x = 0; x < 7; ++x)
            for (std::size_t c = 0; c < 2; ++c) {
                const std::uint32_t want = static_cast<std::uint32_t>((y / 2) * 3 + x / 3);
                CHECK(a.patch_of[(y * 7 + x) * 2 + c] == want);
                CHECK(b.patch_of[(c * 5 + y) * 7 + x] == want);
            }
    CHECK_THROWS_AS(make_patch_map(hwc, 6, 1), std::invalid_argument);
}

namespace {
// Exact E[x'] xᵀ and E[x'x'ᵀ] summed over rows, by enumerating every mask of P patches with
// its probability (Bernoulli: all 2^P; fixed count: every m-subset, uniformly).
std::pair<matrix_t, matrix_t> enumerate(const std::vector<double>& x, std::size_t n, const patch_map& pm,
                                        const noise_spec& s) {
    const std::size_t d = pm.patch_of.size(), P = pm.patches;
    matrix_t bs = xt::zeros<double>({d, d}), g = xt::zeros<double>({d, d});
    const std::size_t m = static_cast<std::size_t>(std::floor(static_cast<double>(P) * (1.0 - s.ratio)));
    std::size_t subsets = 0;
    for (std::uint32_t bits = 0; bits < (1u << P); ++bits)
        if (static_cast<std::size_t>(__builtin_popcount(bits)) == m) ++subsets;
    for (std::uint32_t bits = 0; bits < (1u << P); ++bits) {
        const std::size_t kept = static_cast<std::size_t>(__builtin_popcount(bits));
        double prob;
        if (s.scheme == mask_scheme::bernoulli)
            prob = std::pow(1 - s.ratio, static_cast<double>(kept)) * std::pow(s.ratio, static_cast<double>(P - kept));
        else
            prob = kept == m ? 1.0 / static_cast<double>(subsets) : 0.0;
        if (prob == 0) continue;
        for (std::size_t r = 0; r < n; ++r) {
            const double* row = x.data() + r * d;
            std::vector<double> xm(d);
            for (std::size_t i = 0; i < d; ++i) xm[i] = (bits >> pm.patch_of[i]) & 1u ? row[i] : 0.0;
            for (std::size_t i = 0; i < d; ++i)
                for (std::size_t j = 0; j < d; ++j) {
                    bs(i, j) += prob * xm[i] * row[j];
                    g(i, j) += prob * xm[i] * xm[j];
                }
        }
    }
    return {bs, g};
}

matrix_t scatter(const std::vector<double>& x, std::size_t n, std::size_t d) {
    matrix_t s = xt::zeros<double>({d, d});
    for (std::size_t r = 0; r < n; ++r)
        for (std::size_t i = 0; i < d; ++i)
            for (std::size_t j = 0; j < d; ++j) s(i, j) += x[r * d + i] * x[r * d + j];
    return s;
}
}  // namespace

TEST_CASE("closed forms equal the exact expectation over every mask", "[align][noise]") {
    const image_shape shape{3, 5, 2, image_layout::chw};  // D = 30; patch 2x2 -> 2 x 3 = 6 partial-edge patches
    const std::size_t d = shape.dim(), n = 7;
    const std::vector<double> x = testing::random_rows(n, d, 21, 0.5);
    const matrix_t sxx = scatter(x, n, d);
    for (const char* text : {"mask:patch=2x2,ratio=0.3,scheme=bernoulli", "mask:patch=2x2,ratio=0.5,scheme=fixed",
                             "mask:patch=2x2,ratio=0.2,scheme=fixed", "mask:patch=1x1,ratio=0.6,scheme=bernoulli",
                             "mask:patch=3x3,ratio=0.7,scheme=bernoulli"}) {
        CAPTURE(text);
        const noise_spec s = parse_noise_spec(text);
        const patch_map pm = make_patch_map(shape, s.patch_h, s.patch_w);
        if (pm.patches > 16) continue;
        const auto want = enumerate(x, n, pm, s);
        const noise_moments got = closed_form_noise(s, sxx, n, shape);
        CHECK(testing::rel_diff(got.bs, want.first) < 1e-12);
        CHECK(testing::rel_diff(got.g, want.second) < 1e-12);
    }
    // Dropout = 1x1 patches on a single-channel image; Gaussian adds nσ² to the diagonal only.
    const image_shape mono{6, 5, 1, image_layout::hwc};
    const noise_moments drop = closed_form_noise(parse_noise_spec("dropout:ratio=0.4"), sxx, n);
    const noise_moments mask11 = closed_form_noise(parse_noise_spec("mask:patch=1x1,ratio=0.4"), sxx, n, mono);
    CHECK(testing::bit_equal(drop.g, mask11.g));
    CHECK(testing::bit_equal(drop.bs, mask11.bs));
    const noise_moments gauss = closed_form_noise(parse_noise_spec("gaussian:sigma=0.5"), sxx, n);
    matrix_t diff = gauss.g - sxx;
    for (std::size_t i = 0; i < d; ++i)
        for (std::size_t j = 0; j < d; ++j) CHECK(diff(i, j) == Approx(i == j ? n * 0.25 : 0.0).margin(1e-12));
    CHECK(testing::bit_equal(gauss.bs, sxx));
    // Shape errors are named.
    CHECK_THROWS_AS(closed_form_noise(parse_noise_spec("mask:patch=2x2,ratio=0.5"), sxx, n), std::invalid_argument);
    CHECK_THROWS_AS(closed_form_noise(parse_noise_spec("mask:patch=2x2,ratio=0.5"), sxx, n, image_shape{5, 5, 1}),
                    std::invalid_argument);
    CHECK_THROWS_AS(closed_form_noise(parse_noise_spec("mask:patch=2x2,ratio=0.99,scheme=fixed"), sxx, n, shape),
                    std::invalid_argument);
}

namespace {
monte_carlo_noise run_mc(const testing::fashion_subset& f, const noise_spec& s, const image_shape& shape,
                         std::size_t draws, std::size_t reps, std::size_t batch = 128) {
    monte_carlo_options o;
    o.dim = f.dim;
    o.draws = draws;
    o.replicates = reps;
    o.seed = 42;
    o.name = to_string(s);
    monte_carlo_noise mc(o, make_corrupter(s, shape));
    for (std::size_t r0 = 0; r0 < f.n; r0 += batch) {
        const std::size_t b = std::min(batch, f.n - r0);
        mc.update(batch_view(f.row(r0), b, f.dim), r0);
    }
    return mc;
}

matrix_t clean_sxx(const testing::fashion_subset& f) {
    moment_accumulator acc({f.dim});
    acc.update(batch_view(f.x.data(), f.n, f.dim));
    return acc.sxx(centering::uncentered);
}
}  // namespace

TEST_CASE("Monte Carlo agrees with the closed forms within 4 standard errors", "[align][noise]") {
    RECALIGN_SKIP_WITHOUT_FASHION_MNIST();
    const testing::fashion_subset f = testing::load_fashion(600, true);
    const image_shape shape{14, 14, 1, image_layout::hwc};
    const matrix_t sxx = clean_sxx(f);
    for (const char* text : {"mask:patch=2x2,ratio=0.5,scheme=bernoulli", "mask:patch=2x2,ratio=0.5,scheme=fixed",
                             "mask:patch=4x4,ratio=0.75,scheme=fixed", "dropout:ratio=0.3", "gaussian:sigma=0.2"}) {
        CAPTURE(text);
        const noise_spec s = parse_noise_spec(text);
        const monte_carlo_estimate e = run_mc(f, s, shape, 32, 8).estimate();
        const noise_moments cf = closed_form_noise(s, sxx, f.n, shape);
        const double err_bs = std::sqrt(xt::sum(xt::square(e.moments.bs - cf.bs))());
        const double err_g = std::sqrt(xt::sum(xt::square(e.moments.g - cf.g))());
        CAPTURE(err_bs, e.bs_stderr_fro, err_g, e.g_stderr_fro);
        CHECK(e.moments.n == f.n);
        // The Gaussian Bs is exact in expectation and its MC error is noise on x only.
        CHECK(err_bs <= 4 * e.bs_stderr_fro);
        CHECK(err_g <= 4 * e.g_stderr_fro);
        // And the standard error is not vacuous: small against the matrices themselves.
        const double norm_g = std::sqrt(xt::sum(xt::square(cf.g))());
        CHECK(e.g_stderr_fro < 0.05 * norm_g);
        CHECK(err_g > 0.1 * e.g_stderr_fro);  // a real estimate, not the closed form itself
    }
}

TEST_CASE("Monte Carlo: error falls like 1/sqrt(S)", "[align][noise]") {
    RECALIGN_SKIP_WITHOUT_FASHION_MNIST();
    const testing::fashion_subset f = testing::load_fashion(300, true);
    const image_shape shape{14, 14, 1, image_layout::hwc};
    const noise_spec s = parse_noise_spec("mask:patch=2x2,ratio=0.5,scheme=fixed");
    const matrix_t sxx = clean_sxx(f);
    const noise_moments cf = closed_form_noise(s, sxx, f.n, shape);
    const monte_carlo_estimate few = run_mc(f, s, shape, 4, 2).estimate();
    const monte_carlo_estimate many = run_mc(f, s, shape, 64, 4).estimate();
    const double e_few = std::sqrt(xt::sum(xt::square(few.moments.g - cf.g))());
    const double e_many = std::sqrt(xt::sum(xt::square(many.moments.g - cf.g))());
    CAPTURE(e_few, e_many, few.g_stderr_fro, many.g_stderr_fro);
    CHECK(e_many < e_few / 2.0);  // expected ratio 4
    CHECK(many.g_stderr_fro < few.g_stderr_fro / 2.0);
}

TEST_CASE("Monte Carlo accumulator: merge of shards, save/load, resume, strong guarantee", "[align][noise]") {
    RECALIGN_SKIP_WITHOUT_FASHION_MNIST();
    const testing::fashion_subset f = testing::load_fashion(200, true);
    const image_shape shape{14, 14, 1, image_layout::hwc};
    const noise_spec s = parse_noise_spec("mask:patch=2x2,ratio=0.5,scheme=bernoulli");
    monte_carlo_options o;
    o.dim = f.dim;
    o.draws = 4;
    o.seed = 3;
    o.name = to_string(s);
    const corrupt_fn fn = make_corrupter(s, shape);

    monte_carlo_noise one(o, fn), a(o, fn), b(o, fn), resumed(o, fn);
    for (std::size_t r0 = 0; r0 < 200; r0 += 50) one.update(batch_view(f.row(r0), 50, f.dim), r0);
    for (std::size_t r0 = 0; r0 < 100; r0 += 50) a.update(batch_view(f.row(r0), 50, f.dim), r0);
    for (std::size_t r0 = 100; r0 < 200; r0 += 50) b.update(batch_view(f.row(r0), 50, f.dim), r0);
    a.merge(b);
    const monte_carlo_estimate e1 = one.estimate(), e2 = a.estimate();
    CHECK(a.n() == 200);
    CHECK(testing::rel_diff(e2.moments.g, e1.moments.g) < 1e-13);  // same draws, another summation order
    CHECK(testing::rel_diff(e2.moments.bs, e1.moments.bs) < 1e-13);

    // Checkpoint after two batches, resume, finish: bit-identical to the uninterrupted run.
    for (std::size_t r0 = 0; r0 < 100; r0 += 50) resumed.update(batch_view(f.row(r0), 50, f.dim), r0);
    const std::string bytes = testing::saved(resumed);
    std::istringstream is(bytes, std::ios::binary);
    monte_carlo_noise back = monte_carlo_noise::load(is, fn);
    CHECK(testing::saved(back) == bytes);
    for (std::size_t r0 = 100; r0 < 200; r0 += 50) back.update(batch_view(f.row(r0), 50, f.dim), r0);
    CHECK(testing::saved(back) == testing::saved(one));

    // Loaded without a function: merges, estimates, refuses update.
    std::istringstream is2(bytes, std::ios::binary);
    monte_carlo_noise bare = monte_carlo_noise::load(is2);
    CHECK_THROWS_AS(bare.update(batch_view(f.row(0), 1, f.dim)), std::logic_error);
    // Truncated checkpoints throw.
    for (std::size_t cut : {std::size_t(10), std::size_t(70), bytes.size() / 2, bytes.size() - 1}) {
        std::istringstream t(bytes.substr(0, cut), std::ios::binary);
        CHECK_THROWS(monte_carlo_noise::load(t, fn));
    }

    // Strong guarantee: NaN in the batch, a throwing corruption, a corruption emitting Inf.
    const std::string before = testing::saved(one);
    std::vector<double> bad(f.row(0), f.row(0) + 3 * f.dim);
    bad[f.dim + 5] = std::nan("");
    CHECK_THROWS_AS(one.update(batch_view(bad.data(), 3, f.dim)), std::invalid_argument);
    CHECK(testing::saved(one) == before);
    int calls = 0;
    monte_carlo_noise flaky(o, [&](const matrix_t& c, matrix_t& out, const noise_key& k) {
        if (++calls == 6) throw std::runtime_error("boom");  // second batch, draw 1
        fn(c, out, k);
    });
    flaky.update(batch_view(f.row(0), 10, f.dim), 0);
    const std::string flaky_before = testing::saved(flaky);
    CHECK_THROWS_AS(flaky.update(batch_view(f.row(10), 10, f.dim), 10), std::runtime_error);
    CHECK(testing::saved(flaky) == flaky_before);
    monte_carlo_noise inf(o, [](const matrix_t& c, matrix_t& out, const noise_key&) {
        out = c;
        out(0, 0) = INFINITY;
    });
    CHECK_THROWS_AS(inf.update(batch_view(f.row(0), 2, f.dim)), std::invalid_argument);
    CHECK(inf.empty());

    // Incompatible merges name both sides and change nothing.
    monte_carlo_options o2 = o;
    o2.seed = 4;
    monte_carlo_noise other(o2, fn);
    other.update(batch_view(f.row(0), 5, f.dim), 0);
    CHECK_THROWS_WITH(one.merge(other), Catch::Contains("seed 3") && Catch::Contains("seed 4"));
    CHECK(testing::saved(one) == before);
    monte_carlo_noise empty(o, fn);
    one.merge(empty);
    CHECK(testing::saved(one) == before);
}

TEST_CASE("HWC and CHW give the same expectations after the permutation", "[align][noise]") {
    const std::size_t h = 6, w = 5, c = 3, d = h * w * c, n = 40;
    const std::vector<double> hwc = testing::random_rows(n, d, 77, 1.0);
    std::vector<std::size_t> to_chw(d);  // flat HWC index -> flat CHW index
    for (std::size_t y = 0; y < h; ++y)
        for (std::size_t x = 0; x < w; ++x)
            for (std::size_t ch = 0; ch < c; ++ch) to_chw[(y * w + x) * c + ch] = (ch * h + y) * w + x;
    std::vector<double> chw(n * d);
    for (std::size_t r = 0; r < n; ++r)
        for (std::size_t i = 0; i < d; ++i) chw[r * d + to_chw[i]] = hwc[r * d + i];
    const image_shape s1{h, w, c, image_layout::hwc}, s2{h, w, c, image_layout::chw};
    const matrix_t a = scatter(hwc, n, d), b = scatter(chw, n, d);
    for (const char* text : {"mask:patch=2x2,ratio=0.5,scheme=fixed", "mask:patch=4x3,ratio=0.3,scheme=bernoulli"}) {
        const noise_spec s = parse_noise_spec(text);
        const noise_moments m1 = closed_form_noise(s, a, n, s1), m2 = closed_form_noise(s, b, n, s2);
        // Monte Carlo draws the mask per patch, so the same seed gives the permuted corruption.
        monte_carlo_options o;
        o.dim = d;
        o.draws = 2;
        o.name = text;
        monte_carlo_noise mc1(o, make_corrupter(s, s1)), mc2(o, make_corrupter(s, s2));
        mc1.update(batch_view(hwc.data(), n, d));
        mc2.update(batch_view(chw.data(), n, d));
        const monte_carlo_estimate e1 = mc1.estimate(), e2 = mc2.estimate();
        double worst = 0.0, worst_mc = 0.0;
        for (std::size_t i = 0; i < d; ++i)
            for (std::size_t j = 0; j < d; ++j) {
                worst = std::max({worst, std::abs(m1.g(i, j) - m2.g(to_chw[i], to_chw[j])),
                                  std::abs(m1.bs(i, j) - m2.bs(to_chw[i], to_chw[j]))});
                worst_mc = std::max(worst_mc, std::abs(e1.moments.g(i, j) - e2.moments.g(to_chw[i], to_chw[j])));
            }
        CHECK(worst < 1e-12 * xt::amax(xt::abs(a))());
        CHECK(worst_mc < 1e-12 * xt::amax(xt::abs(a))());
    }
}
