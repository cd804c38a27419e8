// Exact per-patch blocks of Sxx (MATH.md §7): equal to the blocks of the full second moment,
// for both layouts and partial edge patches; merge, checkpoints and bad batches like every
// accumulator.
#include <catch2/catch.hpp>

#include <cblas.h>

#include <recalign/align/patch_blocks.hpp>
#include <recalign/core/errors.hpp>

#include "../common/helpers.hpp"
#include "second_thread.hpp"  // internal (lib/sketch): allow(), started()

using namespace recalign;

namespace {
struct geometry {
    image_shape shape;
    std::size_t ph, pw;
};
// 10 x 14 images (so 4 x 4 patches leave partial edge patches in both directions).
const geometry cases[] = {
    {{10, 14, 3, image_layout::hwc}, 4, 4},
    {{10, 14, 3, image_layout::chw}, 4, 4},
    {{10, 14, 1, image_layout::hwc}, 1, 1},   // dropout: 1x1 patches
    {{10, 14, 2, image_layout::chw}, 3, 5},
    {{10, 14, 3, image_layout::hwc}, 10, 14},  // one patch: the whole Sxx
};

patch_blocks make(const geometry& g) {
    patch_blocks_options o;
    o.shape = g.shape;
    o.patch_h = g.ph;
    o.patch_w = g.pw;
    return patch_blocks(o);
}
}  // namespace

TEST_CASE("patch blocks equal the blocks of the exact second moment", "[align][patch_blocks]") {
    for (const geometry& g : cases) {
        const std::size_t d = g.shape.dim(), n = 257;
        CAPTURE(d, g.ph, g.pw, image_layout_name(g.shape.layout));
        const std::vector<double> x = testing::random_rows(n, d, 5, 40.0);  // a large mean: centering matters
        patch_blocks pb = make(g);
        moment_accumulator acc({d});
        for (std::size_t r0 = 0; r0 < n; r0 += 50) {
            const std::size_t b = std::min<std::size_t>(50, n - r0);
            pb.update(batch_view(x.data() + r0 * d, b, d), r0);
            acc.update(batch_view(x.data() + r0 * d, b, d));
        }
        CHECK(pb.n() == n);
        CHECK(testing::rel_diff(pb.mean(), acc.mean_x()) < 1e-14);
        const patch_map map = make_patch_map(g.shape, g.ph, g.pw);
        CHECK(pb.blocks() == map.patches);
        std::size_t covered = 0, values = 0;
        for (centering c : {centering::centered, centering::uncentered}) {
            const matrix_t sxx = acc.sxx(c);
            for (std::size_t b = 0; b < pb.blocks(); ++b) {
                const std::vector<std::size_t>& idx = pb.indices(b);
                if (c == centering::centered) {
                    covered += idx.size();
                    values += idx.size() * (idx.size() + 1) / 2;  // packed upper triangles
                }
                for (std::size_t i : idx) CHECK(map.patch_of[i] == b);
                const matrix_t blk = pb.block(b, c);
                matrix_t want = xt::zeros<double>({idx.size(), idx.size()});
                for (std::size_t i = 0; i < idx.size(); ++i)
                    for (std::size_t j = 0; j < idx.size(); ++j) want(i, j) = sxx(idx[i], idx[j]);
                CHECK(testing::rel_diff(blk, want) < 1e-12);
            }
        }
        CHECK(covered == d);
        CHECK(values == pb.values());
        // block_upper: the same upper triangle, bit for bit, the strict lower one left alone.
        for (centering c : {centering::centered, centering::uncentered})
            for (std::size_t b = 0; b < pb.blocks(); ++b) {
                const std::size_t s = pb.indices(b).size();
                const matrix_t whole = pb.block(b, c);
                std::vector<double> up(s * s, -7.0);
                pb.block_upper(b, c, up.data());
                bool same = true;
                for (std::size_t i = 0; i < s; ++i)
                    for (std::size_t j = 0; j < s; ++j) same = same && up[i * s + j] == (j >= i ? whole(i, j) : -7.0);
                CHECK(same);
            }
    }
}

TEST_CASE("restrict_to is V' Bd V, symmetric, for bases wider than its panels of columns", "[align][patch_blocks]") {
    // restrict_to forms only the upper triangle of each block's product, 128 columns at a time
    // (docs/benchmarks-log.md "time9"): every column count around the panels, against the dense product.
    const geometry g = cases[0];
    const std::size_t d = g.shape.dim(), n = 97;
    const std::vector<double> x = testing::random_rows(n, d, 11, 40.0);
    patch_blocks pb = make(g);
    pb.update(batch_view(x.data(), n, d), 0);
    for (centering c : {centering::centered, centering::uncentered}) {
        matrix_t bd = xt::zeros<double>({d, d});
        for (std::size_t b = 0; b < pb.blocks(); ++b) {
            const std::vector<std::size_t>& idx = pb.indices(b);
            const matrix_t blk = pb.block(b, c);
            for (std::size_t i = 0; i < idx.size(); ++i)
                for (std::size_t j = 0; j < idx.size(); ++j) bd(idx[i], idx[j]) = blk(i, j);
        }
        for (std::size_t k : {std::size_t(0), std::size_t(1), std::size_t(127), std::size_t(128), std::size_t(129),
                              std::size_t(300)}) {
            CAPTURE(k, centering_name(c));
            const std::vector<double> v = testing::random_rows(d, k, 3 + k, 0.0);
            matrix_t vm = xt::zeros<double>({d, k});
            std::copy(v.begin(), v.end(), vm.begin());
            const matrix_t got = pb.restrict_to(vm, c);
            REQUIRE(got.shape(0) == k);
            REQUIRE(got.shape(1) == k);
            std::vector<long double> bv(d * k, 0.0L);  // Bd V, then V' (Bd V), in long double
            for (std::size_t p = 0; p < d; ++p)
                for (std::size_t q = 0; q < d; ++q)
                    if (bd(p, q) != 0.0)
                        for (std::size_t j = 0; j < k; ++j) bv[p * k + j] += (long double)bd(p, q) * vm(q, j);
            matrix_t want = xt::zeros<double>({k, k});
            for (std::size_t i = 0; i < k; ++i)
                for (std::size_t j = 0; j < k; ++j) {
                    long double sum = 0;
                    for (std::size_t p = 0; p < d; ++p) sum += (long double)vm(p, i) * bv[p * k + j];
                    want(i, j) = static_cast<double>(sum);
                }
            if (k) CHECK(testing::rel_diff(got, want) < 1e-12);
            bool symmetric = true;
            for (std::size_t i = 0; i < k; ++i)
                for (std::size_t j = 0; j < k; ++j) symmetric = symmetric && got(i, j) == got(j, i);
            CHECK(symmetric);
        }
    }
}

TEST_CASE("patch blocks: merge, empty, checkpoints, refusals", "[align][patch_blocks]") {
    const geometry g = cases[0];
    const std::size_t d = g.shape.dim(), n = 300;
    const std::vector<double> x = testing::random_rows(n, d, 9);
    patch_blocks one = make(g), a = make(g), b = make(g);
    one.update(batch_view(x.data(), n, d));
    a.update(batch_view(x.data(), 120, d));
    b.update(batch_view(x.data() + 120 * d, n - 120, d), 120);
    patch_blocks merged = a;
    merged.merge(b);
    CHECK(merged.n() == n);
    for (std::size_t k = 0; k < merged.blocks(); ++k)
        CHECK(testing::rel_diff(merged.block(k, centering::centered), one.block(k, centering::centered)) < 1e-12);
    // Merging an empty state changes nothing; merging into an empty one copies.
    const std::string before = testing::saved(merged);
    merged.merge(make(g));
    CHECK(testing::saved(merged) == before);
    patch_blocks empty = make(g);
    empty.merge(a);
    CHECK(testing::saved(empty) == testing::saved(a));
    // Checkpoints round-trip bit for bit, and every truncation is refused.
    const patch_blocks back = testing::loaded<patch_blocks>(before);
    CHECK(testing::saved(back) == before);
    for (std::size_t cut : {std::size_t(0), std::size_t(10), std::size_t(63), std::size_t(64), std::size_t(100),
                            before.size() / 2, before.size() - 1})
        CHECK_THROWS_AS(testing::loaded<patch_blocks>(before.substr(0, cut)), file_error);
    // Another geometry or patch size: refused naming both, before any change.
    geometry other = g;
    other.pw = 2;
    CHECK_THROWS_WITH(merged.merge(make(other)), Catch::Contains("patch 4x4") && Catch::Contains("patch 4x2"));
    CHECK(testing::saved(merged) == before);
    // A bad batch (a NaN at row 7, a wrong width): refused naming the row; the state is as before
    // and continues exactly like one that never saw it.
    std::vector<double> bad(x.begin(), x.begin() + 20 * d);
    bad[7 * d + 3] = std::nan("");
    patch_blocks clean = a;
    CHECK_THROWS_WITH(a.update(batch_view(bad.data(), 20, d), 500), Catch::Contains("row 507"));
    CHECK_THROWS_AS(a.update(batch_view(x.data(), 10, d - 1)), std::invalid_argument);
    CHECK(testing::saved(a) == testing::saved(clean));
    a.update(batch_view(x.data() + 120 * d, 30, d));
    clean.update(batch_view(x.data() + 120 * d, 30, d));
    CHECK(testing::saved(a) == testing::saved(clean));
    // Geometry that cannot hold a patch.
    patch_blocks_options o;
    o.shape = {4, 4, 1, image_layout::hwc};
    o.patch_h = 5;
    o.patch_w = 1;
    CHECK_THROWS_AS(patch_blocks(o), std::invalid_argument);
    o.shape = {};
    CHECK_THROWS_AS(patch_blocks(o), std::invalid_argument);
}

// --- uint8 batches: the exact integer path (lib/align/patch_blocks_u8.cpp) --------------------
namespace {
// Uniform pixels, with the hardest columns for a shifted float kernel: constant 0, constant 255
// and {0, 255} only (|x − 128| at its extremes, every product at its largest).
std::vector<std::uint8_t> pixels(std::size_t n, std::size_t d, std::uint64_t seed) {
    std::vector<std::uint8_t> x(n * d);
    std::mt19937_64 rng(seed);
    for (std::size_t r = 0; r < n; ++r)
        for (std::size_t j = 0; j < d; ++j) {
            const auto u = static_cast<std::uint8_t>(rng() & 0xff);
            x[r * d + j] = j == 0 ? 0 : j == 1 ? 255 : j == 2 ? static_cast<std::uint8_t>(u < 128 ? 0 : 255) : u;
        }
    return x;
}

__extension__ typedef __int128 int128;  // exact sums of products of pixels (GCC, Clang)

// Block b's exact centered scatter (integers, one division) as long double, times scale².
std::vector<long double> block_oracle(const std::vector<std::uint8_t>& x, std::size_t n, std::size_t d,
                                      const std::vector<std::size_t>& idx, double scale) {
    const std::size_t s = idx.size();
    std::vector<int128> sum(s, 0), ss(s * s, 0);
    for (std::size_t r = 0; r < n; ++r)
        for (std::size_t i = 0; i < s; ++i) {
            const std::int64_t a = x[r * d + idx[i]];
            sum[i] += a;
            for (std::size_t j = 0; j < s; ++j) ss[i * s + j] += static_cast<int128>(a) * x[r * d + idx[j]];
        }
    std::vector<long double> m(s * s);
    for (std::size_t i = 0; i < s; ++i)
        for (std::size_t j = 0; j < s; ++j)
            m[i * s + j] = static_cast<long double>(static_cast<int128>(n) * ss[i * s + j] - sum[i] * sum[j]) /
                           static_cast<long double>(n) * scale * scale;
    return m;
}

patch_blocks feed_u8(const geometry& g, const std::vector<std::uint8_t>& x, std::size_t n, std::size_t batch,
                     double scale) {
    const std::size_t d = g.shape.dim();
    patch_blocks pb = make(g);
    for (std::size_t r = 0; r < n; r += batch) {
        batch_view v(x.data() + r * d, std::min(batch, n - r), d);
        v.scale = scale;
        pb.update(v, r);
    }
    return pb;
}

// The same pixels as float64 batches: the double path.
patch_blocks feed_f64(const geometry& g, const std::vector<std::uint8_t>& x, std::size_t n, std::size_t batch,
                      double scale) {
    const std::size_t d = g.shape.dim();
    std::vector<double> xd(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) xd[i] = x[i] * scale;
    patch_blocks pb = make(g);
    for (std::size_t r = 0; r < n; r += batch) pb.update(batch_view(xd.data() + r * d, std::min(batch, n - r), d), r);
    return pb;
}

// The largest error of the blocks against the oracle, relative to sqrt(M_ii M_jj); entries of a
// constant column must be exactly zero.
double worst_block_error(const patch_blocks& pb, const std::vector<std::uint8_t>& x, std::size_t n, double scale) {
    double worst = 0.0;
    for (std::size_t b = 0; b < pb.blocks(); ++b) {
        const std::vector<std::size_t>& idx = pb.indices(b);
        const std::size_t s = idx.size();
        const std::vector<long double> ref = block_oracle(x, n, pb.dim(), idx, scale);
        const matrix_t blk = pb.block(b, centering::centered);
        for (std::size_t i = 0; i < s; ++i)
            for (std::size_t j = 0; j < s; ++j) {
                const long double size = std::sqrt(ref[i * s + i] * ref[j * s + j]);
                if (size == 0.0L) {
                    if (blk(i, j) != 0.0) return std::numeric_limits<double>::infinity();
                    continue;
                }
                worst = std::max(worst, static_cast<double>(std::abs(static_cast<long double>(blk(i, j)) - ref[i * s + j]) / size));
            }
    }
    return worst;
}
}  // namespace

TEST_CASE("patch blocks of uint8 batches: the exact scatter, any batch size, both layouts", "[align][patch_blocks][u8]") {
    const std::size_t n = 2100;
    const double scale = 1.0 / 255.0;
    for (const geometry& g : {cases[0], cases[1], cases[2]}) {
        const std::size_t d = g.shape.dim();
        CAPTURE(d, g.ph, g.pw, image_layout_name(g.shape.layout));
        const std::vector<std::uint8_t> x = pixels(n, d, 11);
        for (std::size_t batch : {1, 7, 300, 1024, 1025, 2100}) {
            CAPTURE(batch);
            if (batch == 1 && g.ph != 4) continue;  // 2,100 single-row batches: one geometry is enough
            const patch_blocks fast = feed_u8(g, x, n, batch, scale), slow = feed_f64(g, x, n, batch, scale);
            CHECK(fast.n() == n);
            CHECK(worst_block_error(fast, x, n, scale) < 1e-14);  // the double path's below, for scale
            CHECK(worst_block_error(slow, x, n, scale) < 1e-11);
            CHECK(testing::rel_diff(fast.mean(), slow.mean()) < 1e-14);  // measured up to 1.9e-15
            CHECK_FALSE(testing::saved(fast) == testing::saved(slow));  // it took the integer path
            CHECK(testing::rel_diff(fast.block(1, centering::uncentered), slow.block(1, centering::uncentered)) < 1e-12);
        }
    }
}

TEST_CASE("patch blocks of uint8 batches: merges with the double path, refusals change nothing", "[align][patch_blocks][u8]") {
    const geometry g = cases[0];
    const std::size_t d = g.shape.dim(), n = 1500;
    const std::vector<std::uint8_t> x = pixels(n, d, 3);
    // Shards fed as uint8 and as float64, merged: the blocks of all rows.
    patch_blocks a = feed_u8(g, x, 900, 256, 1.0);
    const std::vector<std::uint8_t> rest(x.begin() + 900 * d, x.end());
    patch_blocks b = feed_f64(g, rest, n - 900, 256, 1.0);
    a.merge(b);
    CHECK(a.n() == n);
    CHECK(worst_block_error(a, x, n, 1.0) < 1e-13);
    // A wrong width is refused before any change; the state then continues exactly like one
    // that never saw it.
    patch_blocks one = feed_u8(g, x, 600, 600, 1.0), clean = one;
    CHECK_THROWS_AS(one.update(batch_view(x.data(), 10, d - 1), 600), std::invalid_argument);
    CHECK(testing::saved(one) == testing::saved(clean));
    one.update(batch_view(x.data() + 600 * d, 300, d), 600);
    clean.update(batch_view(x.data() + 600 * d, 300, d), 600);
    CHECK(testing::saved(one) == testing::saved(clean));
    // An empty batch changes nothing.
    one.update(batch_view(x.data(), 0, d), 900);
    CHECK(testing::saved(one) == testing::saved(clean));
    // A scale that is not finite takes the checked double path, which refuses it.
    batch_view inf(x.data(), 5, d);
    inf.scale = std::numeric_limits<double>::infinity();
    CHECK_THROWS_WITH(one.update(inf, 900), Catch::Contains("not finite"));
    CHECK(testing::saved(one) == testing::saved(clean));
}

TEST_CASE("patch blocks: batches of 2^20 values or more split the blocks between two threads", "[align][patch_blocks][u8]") {
    // 32 x 32 x 3 with 4 x 4 patches: 64 blocks; 350 rows a batch hold 1,075,200 values (split).
    const geometry g{{32, 32, 3, image_layout::hwc}, 4, 4};
    const std::size_t d = g.shape.dim(), n = 700, rows = 350;
    const double scale = 1.0 / 255.0;
    const std::vector<std::uint8_t> x = pixels(n, d, 7);
    using recalign::detail::second_thread;
    // The halves on two threads give the bits of the same halves one after the other (OpenBLAS
    // on one thread either way), in both paths; OpenBLAS's thread count is restored after each.
    for (int input = 0; input < 2; ++input) {  // uint8 (the exact integer path), float64
        CAPTURE(input);
        auto stream = [&] { return testing::saved(input == 0 ? feed_u8(g, x, n, rows, scale) : feed_f64(g, x, n, rows, scale)); };
        const std::uint64_t before = second_thread::started();
        const int blas_threads = openblas_get_num_threads();
        const std::string two = stream();
        CHECK(second_thread::started() == before + 2);  // one per update
        CHECK(openblas_get_num_threads() == blas_threads);
        second_thread::allow(false);
        const std::string one = stream();
        second_thread::allow(true);
        CHECK(two == one);
    }
    // Every block of both halves against the exact oracle, and against batches of 50 (below
    // 2^20 values: not split).
    const patch_blocks fast = feed_u8(g, x, n, rows, scale), slow = feed_f64(g, x, n, rows, scale);
    const patch_blocks plain = feed_f64(g, x, n, 50, scale);
    CHECK(worst_block_error(fast, x, n, scale) < 1e-14);
    CHECK(worst_block_error(slow, x, n, scale) < 1e-11);
    CHECK(testing::rel_diff(slow.mean(), plain.mean()) < 1e-14);
    for (std::size_t b = 0; b < slow.blocks(); ++b)
        CHECK(testing::rel_diff(slow.block(b, centering::centered), plain.block(b, centering::centered)) < 1e-12);
    // A NaN in a split float64 batch is refused naming its row and column; nothing changes.
    std::vector<double> bad(rows * d);
    for (std::size_t i = 0; i < bad.size(); ++i) bad[i] = x[i] * scale;
    bad[217 * d + 1500] = std::numeric_limits<double>::quiet_NaN();
    patch_blocks one = feed_f64(g, x, rows, rows, scale);
    const std::string state = testing::saved(one);
    std::string message;
    try {
        one.update(batch_view(bad.data(), rows, d), rows);
    } catch (const input_error& e) {
        message = e.what();
    }
    CHECK(message.find("row " + std::to_string(rows + 217) + ", column 1500") != std::string::npos);
    CHECK(testing::saved(one) == state);
}
