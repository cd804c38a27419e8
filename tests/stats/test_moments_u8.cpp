// The exact uint8 path of moment_accumulator (lib/stats/moments_u8.cpp), taken at either precision,
// against an integer oracle: the centered scatter's definition, (n Σ a_i a_j − Σ a_i Σ a_j) / n, evaluated in
// 128-bit integers on the raw pixels and one-hot labels, scaled afterwards.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <sstream>
#include <vector>

#include <recalign/stats/moments.hpp>

#include "../common/helpers.hpp"

using namespace recalign;

namespace {

struct pixels {
    std::size_t n = 0, d = 0, classes = 0;
    std::vector<std::uint8_t> x;
    std::vector<std::int64_t> y;
};

// Uniform pixels, plus the hardest columns for a shifted float kernel: constant 0, constant
// 255 and {0, 255} only (|x − 128| at its extremes, every product at its largest).
pixels make_pixels(std::size_t n, std::size_t d, std::size_t classes, std::uint64_t seed) {
    pixels p{n, d, classes, std::vector<std::uint8_t>(n * d), std::vector<std::int64_t>(n)};
    std::mt19937_64 rng(seed);
    for (std::size_t r = 0; r < n; ++r) {
        for (std::size_t j = 0; j < d; ++j) {
            const auto u = static_cast<std::uint8_t>(rng() & 0xff);
            p.x[r * d + j] = j == 0 ? 0 : j == 1 ? 255 : j == 2 ? static_cast<std::uint8_t>(u < 128 ? 0 : 255) : u;
        }
        p.y[r] = static_cast<std::int64_t>(rng() % classes);
    }
    return p;
}

// Exact centered joint scatter of a = [x | one-hot(y)], as long double after one division.
std::vector<long double> oracle(const pixels& p, double scale) {
    const std::size_t q = p.d + p.classes;
    std::vector<__int128> s(q, 0), ss(q * q, 0);
    std::vector<std::int64_t> a(q);
    for (std::size_t r = 0; r < p.n; ++r) {
        for (std::size_t j = 0; j < p.d; ++j) a[j] = p.x[r * p.d + j];
        for (std::size_t k = 0; k < p.classes; ++k) a[p.d + k] = p.y[r] == static_cast<std::int64_t>(k) ? 1 : 0;
        for (std::size_t i = 0; i < q; ++i) {
            s[i] += a[i];
            for (std::size_t j = i; j < q; ++j) ss[i * q + j] += static_cast<__int128>(a[i]) * a[j];
        }
    }
    std::vector<long double> m(q * q, 0.0L);
    const auto n = static_cast<__int128>(p.n);
    for (std::size_t i = 0; i < q; ++i)
        for (std::size_t j = i; j < q; ++j) {
            const __int128 num = n * ss[i * q + j] - s[i] * s[j];
            const long double si = i < p.d ? scale : 1.0L, sj = j < p.d ? scale : 1.0L;
            m[i * q + j] = static_cast<long double>(num) / static_cast<long double>(p.n) * si * sj;
        }
    return m;
}

moment_accumulator feed(const pixels& p, std::size_t batch, double scale, bool kernels) {
    moment_options o{p.d, target_mode::class_ids, p.classes};
    o.float32_kernels = kernels;
    moment_accumulator m(o);
    for (std::size_t r = 0; r < p.n; r += batch) {
        const std::size_t b = std::min(batch, p.n - r);
        batch_view v(p.x.data() + r * p.d, b, p.d);
        v.scale = scale;
        m.update(v, target_view::class_ids(p.y.data() + r, b), r);
    }
    return m;
}

// The same pixels as float64 values x * scale: the double path (every type but uint8 takes it).
moment_accumulator feed_f64(const pixels& p, std::size_t batch, double scale) {
    moment_accumulator m({p.d, target_mode::class_ids, p.classes});
    std::vector<double> x(p.x.size());
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<double>(p.x[i]) * scale;
    for (std::size_t r = 0; r < p.n; r += batch) {
        const std::size_t b = std::min(batch, p.n - r);
        m.update(batch_view(x.data() + r * p.d, b, p.d), target_view::class_ids(p.y.data() + r, b), r);
    }
    return m;
}

// Largest error of the state against the oracle, relative to sqrt(M_ii M_jj) (the entry's natural
// size); entries of a constant column (size zero) must be exactly zero.
double worst_error(const moment_accumulator& m, const std::vector<long double>& ref) {
    const matrix_t& s = m.scatter_upper();
    const std::size_t q = s.shape(0);
    double worst = 0.0;
    for (std::size_t i = 0; i < q; ++i)
        for (std::size_t j = i; j < q; ++j) {
            const long double r = ref[i * q + j], size = std::sqrt(ref[i * q + i] * ref[j * q + j]);
            if (size == 0.0L) {
                if (s(i, j) != 0.0) return std::numeric_limits<double>::infinity();
                continue;
            }
            worst = std::max(worst, static_cast<double>(std::abs(static_cast<long double>(s(i, j)) - r) / size));
        }
    return worst;
}

}  // namespace

TEST_CASE("uint8 exact path: one group is the exact scatter, rounded", "[moments][u8]") {
    // A single batch of <= 1024 rows into an empty state, scale 1: every entry is the integer
    // numerator times 1/n, two roundings; checked entry by entry against its own size.
    const pixels p = make_pixels(1000, 7, 3, 5);
    const std::vector<long double> ref = oracle(p, 1.0);
    const moment_accumulator m = feed(p, 1000, 1.0, true);
    const matrix_t& s = m.scatter_upper();
    const std::size_t q = s.shape(0);
    for (std::size_t i = 0; i < q; ++i)
        for (std::size_t j = i; j < q; ++j) {
            const long double r = ref[i * q + j];
            INFO("entry " << i << ", " << j);
            CHECK(std::abs(static_cast<long double>(s(i, j)) - r) <= 2.5L * std::numeric_limits<double>::epsilon() * std::abs(r));
        }
    CHECK(testing::bit_equal(s, feed(p, 1000, 1.0, false).scatter_upper()));  // the precision does not select it
    CHECK_FALSE(testing::bit_equal(s, feed_f64(p, 1000, 1.0).scatter_upper()));  // not the double path
    CHECK(s(0, 0) == 0.0);  // constant columns: exactly no variance, no covariance
    CHECK(s(1, 1) == 0.0);
    CHECK(s(0, 5) == 0.0);
}

TEST_CASE("uint8 exact path: any batch size, several groups, scale 1/255", "[moments][u8]") {
    const pixels p = make_pixels(3000, 12, 5, 9);
    const double scale = 1.0 / 255.0;
    const std::vector<long double> ref = oracle(p, scale);
    for (std::size_t batch : {1, 7, 300, 1024, 1025, 3000}) {
        INFO("batch " << batch);
        const moment_accumulator fast = feed(p, batch, scale, true);
        const moment_accumulator slow = feed_f64(p, batch, scale);
        CHECK(fast.n() == p.n);
        CHECK(testing::bit_equal(fast.scatter_upper(), feed(p, batch, scale, false).scatter_upper()));
        const double e = worst_error(fast, ref);
        CHECK(e < 1e-14);  // measured 2e-16 (one batch) to 3e-15 (batch 1, 3,000 folds)
        CHECK_FALSE(testing::bit_equal(fast.scatter_upper(), slow.scatter_upper()));  // not the double path
        CHECK(worst_error(slow, ref) < 1e-12);  // the double path, for scale
        CHECK(testing::rel_diff(fast.mean_x(), slow.mean_x()) < 1e-15);
        CHECK(testing::rel_diff(fast.mean_y(), slow.mean_y()) < 1e-15);
    }
}

TEST_CASE("uint8 exact path: merged shards and checkpoints", "[moments][u8]") {
    const pixels p = make_pixels(2000, 6, 4, 13);
    const std::vector<long double> ref = oracle(p, 0.5);
    pixels a = p, b = p;
    a.n = 1200;
    b.n = 800;
    b.x.erase(b.x.begin(), b.x.begin() + 1200 * 6);
    b.y.erase(b.y.begin(), b.y.begin() + 1200);
    moment_accumulator ma = feed(a, 500, 0.5, true);
    const moment_accumulator mb = feed(b, 256, 0.5, true);
    ma.merge(mb);
    CHECK(worst_error(ma, ref) < 1e-14);
    std::stringstream ss;
    ma.save(ss);
    const moment_accumulator back = moment_accumulator::load(ss);
    CHECK(back.options().float32_kernels);
    CHECK(testing::bit_equal(back.scatter_upper(), ma.scatter_upper()));
}

TEST_CASE("uint8 exact path: dense targets take the double path", "[moments][u8]") {
    const std::size_t n = 300, d = 5;
    const pixels p = make_pixels(n, d, 2, 17);
    std::vector<double> t(n * 2);
    for (std::size_t i = 0; i < t.size(); ++i) t[i] = 0.25 * static_cast<double>(i % 7);
    moment_options o{d, target_mode::dense, 2};
    moment_accumulator plain(o);
    o.float32_kernels = true;
    moment_accumulator kern(o);
    for (auto* m : {&plain, &kern}) m->update(batch_view(p.x.data(), n, d), target_view::dense_rows(batch_view(t.data(), n, 2)));
    CHECK(testing::bit_equal(plain.scatter_upper(), kern.scatter_upper()));
}

TEST_CASE("uint8 exact path: a rejected batch leaves the state as it was", "[moments][u8][errors]") {
    const pixels p = make_pixels(100, 4, 3, 21);
    moment_accumulator m = feed(p, 40, 1.0 / 255.0, true);
    const moment_accumulator before = m;
    std::vector<std::int64_t> labels(p.y.begin(), p.y.begin() + 10);
    SECTION("wrong width") {
        CHECK_THROWS_WITH(m.update(batch_view(p.x.data(), 10, 3), target_view::class_ids(labels.data(), 10)),
                          Catch::Contains("columns"));
    }
    SECTION("empty batch of the wrong width") {
        CHECK_THROWS_WITH(m.update(batch_view(p.x.data(), 0, 3), target_view::class_ids(labels.data(), 0)),
                          Catch::Contains("columns"));
    }
    SECTION("label out of range, naming the row") {
        labels[6] = 3;
        CHECK_THROWS_WITH(m.update(batch_view(p.x.data(), 10, 4), target_view::class_ids(labels.data(), 10), 50),
                          Catch::Contains("row 56"));
    }
    CHECK(m.n() == before.n());
    CHECK(testing::bit_equal(m.scatter_upper(), before.scatter_upper()));
    CHECK(testing::bit_equal(m.mean_x(), before.mean_x()));
}

TEST_CASE("uint8 exact path: a large state, its fold split between two threads", "[moments][u8]") {
    const pixels p = make_pixels(80, 2100, 2, 25);  // P = 2,102 >= 2,048: the threaded fold
    const std::vector<long double> ref = oracle(p, 1.0 / 255.0);
    CHECK(worst_error(feed(p, 50, 1.0 / 255.0, true), ref) < 1e-14);
}
