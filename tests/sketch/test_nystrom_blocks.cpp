// Nyström's blocked update: the test matrix regenerated block by block (±1 signs, sparse signs,
// or the Gaussian of states saved before signs existed), the batch converted one column block at a
// time and shifted by the running mean. Checked against Y = M T written out from its
// definition in long double (two-pass mean, then (X − 1μᵀ)ᵀ((X − 1μᵀ) T)), for u8 / f32 / f64
// input far from the origin, over several batchings and widths that do not fill a block.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <recalign/core/rng.hpp>
#include <recalign/sketch/nystrom_sketch.hpp>

#include "sketch_helpers.hpp"

using namespace recalign;
using namespace sketch_testing;

namespace {

nystrom_options opts(std::size_t d, std::size_t k, std::size_t p, std::uint64_t seed, nystrom_test test,
                     std::size_t probes = 4) {
    nystrom_options o = nystrom_opts(d, k, p, seed, probes);
    o.test = test;
    return o;
}

// M T from the definition, in long double: the centered scatter times the sketch's test matrix.
matrix_t reference_range(const std::vector<double>& x, std::size_t n, std::size_t d, const matrix_t& t) {
    const std::size_t w = t.shape(1);
    std::vector<long double> mean(d, 0.0L), z(n * w, 0.0L), y(d * w, 0.0L);
    for (std::size_t r = 0; r < n; ++r)
        for (std::size_t c = 0; c < d; ++c) mean[c] += x[r * d + c];
    for (long double& m : mean) m /= static_cast<long double>(n);
    for (std::size_t r = 0; r < n; ++r)
        for (std::size_t c = 0; c < d; ++c) {
            const long double v = x[r * d + c] - mean[c];
            for (std::size_t j = 0; j < w; ++j) z[r * w + j] += v * t(c, j);
        }
    for (std::size_t r = 0; r < n; ++r)
        for (std::size_t c = 0; c < d; ++c) {
            const long double v = x[r * d + c] - mean[c];
            for (std::size_t j = 0; j < w; ++j) y[c * w + j] += v * z[r * w + j];
        }
    matrix_t out = xt::zeros<double>({d, w});
    for (std::size_t i = 0; i < d * w; ++i) out.data()[i] = static_cast<double>(y[i]);
    return out;
}

}  // namespace

TEST_CASE("Nyström test matrix: any block is the same rows of one matrix; signs are ±1", "[sketch][nystrom]") {
    const std::size_t d = 700;
    for (nystrom_test kind : {nystrom_test::signs, nystrom_test::gaussian}) {
        nystrom_sketch sk(opts(d, 70, 10, 9, kind));  // width 80 + 4 probes: more than one 64-bit word
        const std::vector<double> x = synthetic(decay::power_law, 200, d, 4);
        for (int pass = 0; pass < 2; ++pass) {
            const matrix_t t = sk.test_matrix();
            const std::size_t w = t.shape(1);
            std::vector<double> block(300 * w);
            sk.test_block(37, 300, block.data());
            CHECK(std::memcmp(block.data(), t.data() + 37 * w, block.size() * sizeof(double)) == 0);
            std::vector<float> single(300 * w);
            sk.test_block(37, 300, single.data());
            for (std::size_t i = 0; i < block.size(); ++i) REQUIRE(single[i] == static_cast<float>(block[i]));
            // The probes (and Ω in pass 0): ±1 for signs, standard normal for gaussian.
            const std::size_t first = pass == 0 ? 0 : sk.width();
            double m = 0.0, v = 0.0, count = 0.0;
            bool all_signs = true;
            for (std::size_t i = 0; i < d; ++i)
                for (std::size_t j = first; j < w; ++j) {
                    const double e = t(i, j);
                    all_signs = all_signs && (e == 1.0 || e == -1.0);
                    m += e;
                    v += e * e;
                    count += 1.0;
                }
            CHECK(all_signs == (kind == nystrom_test::signs));
            // Mean 0, second moment 1, within 5 standard errors (var of e² is 2 for normals).
            CHECK(std::abs(m / count) < 5.0 / std::sqrt(count));
            CHECK(std::abs(v / count - 1.0) < 5.0 * std::sqrt(2.0 / count));
            feed(sk, x, d, 0, 200, 50);
            sk.next_pass();
        }
    }
    // The two kinds are different matrices, and different configurations.
    nystrom_sketch a(opts(d, 5, 5, 1, nystrom_test::signs)), b(opts(d, 5, 5, 1, nystrom_test::gaussian));
    CHECK(a.config_hash() != b.config_hash());
    const std::vector<double> x = synthetic(decay::power_law, 10, d, 5);
    feed(b, x, d, 0, 10, 10);
    CHECK_THROWS_WITH(a.merge(b), Catch::Contains("test matrix") && Catch::Contains("signs") && Catch::Contains("gaussian"));
}

TEST_CASE("Nyström: Y = M T to rounding for u8 / f32 / f64 input far from the origin, any batching", "[sketch][nystrom]") {
    const std::size_t d = 2200, n = 300;  // 2200 = 1024 + 1024 + 152 columns: full and partial blocks
    std::vector<double> x(n * d);
    std::vector<std::uint8_t> xu(n * d);
    std::vector<float> xf(n * d);
    for (std::size_t r = 0; r < n; ++r) {
        const rng::stream st(3, 1, r);
        for (std::size_t c = 0; c < d; ++c) {
            // Pixels: large offset, small spread, a few directions of larger variance.
            const double v = 200.0 + 10.0 * st.uniform(c) + (c % 7 == 0 ? 40.0 * st.uniform(d + c) : 0.0);
            xu[r * d + c] = static_cast<std::uint8_t>(v);
            x[r * d + c] = static_cast<double>(xu[r * d + c]) / 255.0 + 1000.0;  // f64: far from the origin
            xf[r * d + c] = static_cast<float>(xu[r * d + c]);
        }
    }
    for (nystrom_test kind : {nystrom_test::signs, nystrom_test::gaussian, nystrom_test::sparse_signs}) {
        const nystrom_options o = opts(d, 12, 6, 21, kind);
        for (std::size_t batch : {std::size_t(1), std::size_t(64), n}) {
            INFO("test " << static_cast<int>(kind) << " (0 gaussian, 1 signs, 3 sparse signs), batch " << batch);
            nystrom_sketch s64(o), su8(o), sf32(o);
            nystrom_options o32 = o;
            o32.float32_kernels = true;
            nystrom_sketch su8_single(o32), sf32_single(o32);
            for (std::size_t r = 0; r < n; r += batch) {
                const std::size_t rows = std::min(batch, n - r);
                s64.update(batch_view(x.data() + r * d, rows, d), r);
                batch_view u(xu.data() + r * d, rows, d);
                u.scale = 1.0 / 255.0;
                su8.update(u, r);
                su8_single.update(u, r);
                sf32.update(batch_view(xf.data() + r * d, rows, d), r);
                sf32_single.update(batch_view(xf.data() + r * d, rows, d), r);
            }
            const matrix_t t = s64.test_matrix();
            std::vector<double> pixels(n * d), raw(n * d);
            for (std::size_t i = 0; i < n * d; ++i) {
                pixels[i] = static_cast<double>(xu[i]) / 255.0;
                raw[i] = static_cast<double>(xf[i]);
            }
            const matrix_t ref = reference_range(x, n, d, t), ref_pixels = reference_range(pixels, n, d, t),
                           ref_raw = reference_range(raw, n, d, t);
            // Double path: rounding of sums over n rows (the data's offset 1000 costs ~1e-13 of its own).
            CHECK(rel_diff(s64.centered_range(), ref) < 1e-10);
            CHECK(rel_diff(su8.centered_range(), ref_pixels) < 1e-12);
            CHECK(rel_diff(sf32.centered_range(), ref_raw) < 1e-12);
            // Float32 kernels: single-precision products of the centered block (unit roundoff
            // 6e-8, sums over D and n): stated bound 1e-5 of max |Y|.
            CHECK(rel_diff(su8_single.centered_range(), ref_pixels) < 1e-5);
            CHECK(rel_diff(sf32_single.centered_range(), ref_raw) < 1e-5);
            double tr = 0.0, mu = 0.0;
            for (std::size_t c = 0; c < d; ++c) {
                mu = 0.0;
                for (std::size_t r = 0; r < n; ++r) mu += pixels[r * d + c];
                mu /= static_cast<double>(n);
                for (std::size_t r = 0; r < n; ++r) tr += (pixels[r * d + c] - mu) * (pixels[r * d + c] - mu);
            }
            CHECK(su8.trace() == Approx(tr).epsilon(1e-11));
            CHECK(su8_single.trace() == Approx(tr).epsilon(1e-11));
        }
    }
}

TEST_CASE("Nyström: a Gaussian state (the format before signs) round-trips and resumes bit for bit", "[sketch][nystrom]") {
    const std::size_t d = 300, n = 400;
    const std::vector<double> x = synthetic(decay::power_law, n, d, 8);
    const nystrom_options o = opts(d, 6, 4, 5, nystrom_test::gaussian);
    nystrom_sketch straight(o), first(o);
    feed(straight, x, d, 0, n, 100);
    feed(first, x, d, 0, 200, 100);
    nystrom_sketch resumed = loaded<nystrom_sketch>(saved(first));
    CHECK(resumed.options().test == nystrom_test::gaussian);
    feed(resumed, x, d, 200, n, 100);
    CHECK(saved(resumed) == saved(straight));
    // Its flag byte is the one builds before signs wrote (float32 kernels off: 0), so their
    // Gaussian checkpoints load as Gaussian; a signs state differs from it in that byte only.
    nystrom_options os = o;
    os.test = nystrom_test::signs;
    const std::string g = saved(nystrom_sketch(o)), s = saved(nystrom_sketch(os));
    REQUIRE(g.size() == s.size());
    std::size_t differing = 0;
    for (std::size_t i = 0; i < g.size(); ++i) differing += g[i] != s[i] ? 1 : 0;
    CHECK(differing >= 1);  // the flag, and the header's configuration hash / checksum
    CHECK(loaded<nystrom_sketch>(s).options().test == nystrom_test::signs);
}
