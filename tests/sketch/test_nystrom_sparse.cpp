// Nyström with the sparse sign test matrix (nystrom_test::sparse_signs): the matrix's structure
// (ζ signed entries a row in distinct columns, the same rows whatever block they are made in),
// its checkpoint, merge and refusals, and its accuracy against the dense signs on the same
// spectra. Y = M T for it is checked with the other test matrices in test_nystrom_blocks.cpp,
// and its second thread in test_nystrom.cpp.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <recalign/sketch/nystrom_sketch.hpp>

#include "sketch_helpers.hpp"

using namespace recalign;
using namespace sketch_testing;

namespace {
nystrom_options sparse_opts(std::size_t d, std::size_t k, std::size_t p, std::uint64_t seed,
                            nystrom_test test = nystrom_test::sparse_signs) {
    nystrom_options o = nystrom_opts(d, k, p, seed, 4);
    o.test = test;
    return o;
}
}  // namespace

TEST_CASE("Nyström sparse signs: ζ = min(8, s) entries ±1 a row in distinct columns, every column used",
          "[sketch][nystrom]") {
    for (const std::size_t k : {std::size_t(3), std::size_t(70)}) {  // s = 5 (ζ = s) and s = 80 (ζ = 8)
        const std::size_t d = 700, s = k + 10 - (k == 3 ? 8 : 0), z = sparse_sign_nonzeros(s);
        nystrom_sketch sk(sparse_opts(d, k, s - k, 9));
        const matrix_t t = sk.test_matrix();
        const std::size_t w = t.shape(1);
        REQUIRE(w == s + 4);
        std::vector<double> block(300 * w);
        sk.test_block(37, 300, block.data());
        CHECK(std::memcmp(block.data(), t.data() + 37 * w, block.size() * sizeof(double)) == 0);
        std::vector<float> single(300 * w);
        sk.test_block(37, 300, single.data());
        for (std::size_t i = 0; i < block.size(); ++i) REQUIRE(single[i] == static_cast<float>(block[i]));
        std::vector<std::size_t> per_column(s, 0);
        double sum = 0.0;
        for (std::size_t i = 0; i < d; ++i) {
            std::size_t nonzero = 0;
            for (std::size_t j = 0; j < s; ++j) {
                const double e = t(i, j);
                REQUIRE((e == 0.0 || e == 1.0 || e == -1.0));
                if (e != 0.0) ++nonzero, ++per_column[j], sum += e;
            }
            REQUIRE(nonzero == z);
            for (std::size_t j = s; j < w; ++j) REQUIRE((t(i, j) == 1.0 || t(i, j) == -1.0));  // dense sign probes
        }
        // Signs balanced (5 standard errors) and the columns evenly used: each column's count is
        // Binomial(d, ζ / s); none below half its mean (d ζ / s >= 56 here).
        CHECK(std::abs(sum) < 5.0 * std::sqrt(static_cast<double>(d * z)));
        for (std::size_t j = 0; j < s; ++j) CHECK(per_column[j] * 2 * s >= d * z);
        // A different seed gives a different matrix.
        const bool same = nystrom_sketch(sparse_opts(d, k, s - k, 10)).test_matrix() == t;
        CHECK_FALSE(same);
    }
}

TEST_CASE("Nyström sparse signs: refused below D ζ >= 32 s; a configuration of its own", "[sketch][nystrom]") {
    CHECK_THROWS_WITH(nystrom_sketch(sparse_opts(200, 100, 10, 1)),
                      Catch::Contains("sparse sign test matrix needs D x 8 >= 32 x (rank + oversampling) = 3520") &&
                          Catch::Contains("D = 200"));
    CHECK_NOTHROW(nystrom_sketch(sparse_opts(440, 100, 10, 1)));  // 440 x 8 = 32 x 110
    CHECK_THROWS_AS(nystrom_sketch(sparse_opts(439, 100, 10, 1)), std::invalid_argument);
    const std::size_t d = 400;
    nystrom_sketch a(sparse_opts(d, 5, 5, 1)), b(sparse_opts(d, 5, 5, 1, nystrom_test::signs));
    CHECK(a.config_hash() != b.config_hash());
    const std::vector<double> x = synthetic(decay::power_law, 10, d, 5);
    feed(b, x, d, 0, 10, 10);
    CHECK_THROWS_WITH(a.merge(b), Catch::Contains("test matrix") && Catch::Contains("sparse signs") &&
                                      Catch::Contains("and signs"));
}

TEST_CASE("Nyström sparse signs: checkpoints resume bit for bit, merges sum, the flag byte is its own",
          "[sketch][nystrom]") {
    const std::size_t d = 600, n = 400;
    const std::vector<double> x = synthetic(decay::power_law, n, d, 8);
    const nystrom_options o = sparse_opts(d, 6, 4, 5);
    nystrom_sketch straight(o), first(o), second(o);
    feed(straight, x, d, 0, n, 100);
    feed(first, x, d, 0, 200, 100);
    nystrom_sketch resumed = loaded<nystrom_sketch>(saved(first));
    CHECK(resumed.options().test == nystrom_test::sparse_signs);
    feed(resumed, x, d, 200, n, 100);
    CHECK(saved(resumed) == saved(straight));
    feed(second, x, d, 200, n, 100);
    nystrom_sketch merged = first;
    merged.merge(second);
    CHECK(rel_diff(merged.centered_range(), straight.centered_range()) < 1e-12);
    // Pass 1 tests with the dense Q, whatever pass 0's test matrix was; resumes there too.
    straight.next_pass();
    nystrom_sketch again = loaded<nystrom_sketch>(saved(straight));
    feed(straight, x, d, 0, n, 100);
    feed(again, x, d, 0, n, 100);
    CHECK(saved(again) == saved(straight));
    // The flag byte: a signs state differs in it (and in the header's hash and checksum) only;
    // one announcing both signs and sparse signs is refused as damaged.
    nystrom_options os = o;
    os.test = nystrom_test::signs;
    const std::string sp = saved(nystrom_sketch(o)), si = saved(nystrom_sketch(os));
    REQUIRE(sp.size() == si.size());
    CHECK(loaded<nystrom_sketch>(si).options().test == nystrom_test::signs);
    CHECK(first_accepted_damage<nystrom_sketch>(sp, 0x02).empty());
}

TEST_CASE("Nyström sparse signs: as accurate as dense signs on decaying spectra, one pass and two",
          "[sketch][nystrom]") {
    const std::size_t d = 1500, n = 3000, k = 10;
    for (decay kind : {decay::power_law, decay::exponential}) {
        const std::vector<double> x = synthetic(kind, n, d, 11);
        const exact_reference ref = exact(x, n, d, centering::centered);
        for (int passes = 1; passes <= 2; ++passes) {
            double err[2];
            for (int sparse = 0; sparse < 2; ++sparse) {
                double sum = 0.0;
                for (std::uint64_t seed = 1; seed <= 4; ++seed) {
                    nystrom_sketch sk(sparse_opts(d, k, 10, seed, sparse ? nystrom_test::sparse_signs : nystrom_test::signs));
                    for (int p = 0; p < passes; ++p) {
                        if (p > 0) sk.next_pass();
                        feed(sk, x, d, 0, n, 500);
                    }
                    const spectrum sp = nystrom_spectrum(sk);
                    sum += captured_error(ref, sp.basis, k);
                }
                err[sparse] = sum / 4.0;
            }
            INFO("decay " << static_cast<int>(kind) << ", passes " << passes << ": captured-variance error, signs "
                          << err[0] << ", sparse signs " << err[1]);
            CHECK(err[1] >= 0.0);
            CHECK(err[1] <= 1.5 * err[0] + 1e-6);
        }
    }
}
