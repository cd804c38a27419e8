// batch_view::scale: a batch handed over in its own type (u8 / f32 / f64) with a scale s gives
// every accumulator the same state, bit for bit, as the batch a reader used to scale itself
// (x_double * s, in double, as f64 rows): the conversion helpers apply the scale at that
// same point, once.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include <recalign/align/noise.hpp>
#include <recalign/align/patch_blocks.hpp>
#include <recalign/align/restricted_moments.hpp>
#include <recalign/core/batch.hpp>
#include <recalign/core/errors.hpp>
#include <recalign/sketch/frequent_directions.hpp>
#include <recalign/sketch/nystrom_sketch.hpp>
#include <recalign/stats/class_moments.hpp>
#include <recalign/stats/moments.hpp>

#include "../common/helpers.hpp"

using namespace recalign;

namespace {

constexpr std::size_t N = 96, D = 12, BATCH = 32, CLASSES = 3;

// The rows in each stored type, from one set of small non-negative values (exact in every type).
struct typed_rows {
    std::vector<std::uint8_t> u8;
    std::vector<float> f32;
    std::vector<double> f64;
    std::vector<std::int64_t> labels;
};

typed_rows make_rows() {
    typed_rows t;
    const std::vector<double> x = testing::random_rows(N, D, 7, 100.0);
    for (double v : x) {
        const auto b = static_cast<std::uint8_t>(std::min(255.0, std::max(0.0, std::round(v))));
        t.u8.push_back(b);
        t.f32.push_back(static_cast<float>(b) + 0.25f);  // not integers: f32 rounding matters
        t.f64.push_back(static_cast<double>(b) + 0.125);
    }
    t.labels = testing::random_labels(N, CLASSES, 8);
    return t;
}

template <class T>
batch_view scaled_view(const std::vector<T>& rows, std::size_t r0, double s) {
    batch_view v(rows.data() + r0 * D, BATCH, D);
    v.scale = s;
    return v;
}

// What the reader handed over before: x_double * s as f64 rows.
template <class T>
std::vector<double> prescaled(const std::vector<T>& rows, double s) {
    std::vector<double> out(rows.size());
    for (std::size_t i = 0; i < rows.size(); ++i) out[i] = static_cast<double>(rows[i]) * s;
    return out;
}

// Feeds every batch of `rows` both ways and compares the saved states.
template <class Make, class Update, class T>
void same_state(Make make, Update update, const std::vector<T>& rows, double s) {
    auto by_view = make();
    auto by_reader = make();
    const std::vector<double> pre = prescaled(rows, s);
    for (std::size_t r0 = 0; r0 < N; r0 += BATCH) {
        update(by_view, scaled_view(rows, r0, s), r0);
        update(by_reader, batch_view(pre.data() + r0 * D, BATCH, D), r0);
    }
    CHECK(testing::saved(by_view) == testing::saved(by_reader));
}

template <class Make, class Update>
void every_type_and_scale(Make make, Update update) {
    const typed_rows t = make_rows();
    for (double s : {1.0, 1.0 / 255.0, 0.1, -3.0}) {
        CAPTURE(s);
        same_state(make, update, t.u8, s);
        same_state(make, update, t.f32, s);
        same_state(make, update, t.f64, s);
    }
}

}  // namespace

TEST_CASE("scale in the view = pre-scaled f64 rows, bit for bit: moments (with class ids)", "[batch][scale]") {
    const typed_rows t = make_rows();
    auto make = [] { return moment_accumulator({D, target_mode::class_ids, CLASSES}); };
    auto update = [&](moment_accumulator& m, const batch_view& b, std::size_t r0) {
        m.update(b, target_view::class_ids(t.labels.data() + r0, BATCH), r0);
    };
    for (double s : {1.0, 1.0 / 255.0, 0.1, -3.0}) {
        CAPTURE(s);
        same_state(make, update, t.f32, s);
        same_state(make, update, t.f64, s);
        // uint8 rows take the exact integer path (moments_u8.cpp), the scale applied to each
        // group's exact scatter: not the double path's bits, its numbers to rounding.
        moment_accumulator by_view = make(), by_reader = make();
        const std::vector<double> pre = prescaled(t.u8, s);
        for (std::size_t r0 = 0; r0 < N; r0 += BATCH) {
            update(by_view, scaled_view(t.u8, r0, s), r0);
            update(by_reader, batch_view(pre.data() + r0 * D, BATCH, D), r0);
        }
        CHECK(by_view.n() == by_reader.n());
        CHECK(testing::rel_diff(by_view.mean_x(), by_reader.mean_x()) < 1e-14);
        CHECK(testing::rel_diff(by_view.scatter_upper(), by_reader.scatter_upper()) < 1e-13);
    }
}

TEST_CASE("scale in the view = pre-scaled f64 rows, bit for bit: Frequent Directions", "[batch][scale]") {
    frequent_directions_options o;
    o.dim = D;
    o.ell = 6;
    every_type_and_scale([&] { return frequent_directions(o); },
                         [](frequent_directions& f, const batch_view& b, std::size_t r0) { f.update(b, r0); });
}

TEST_CASE("scale in the view = pre-scaled f64 rows, bit for bit: Nyström", "[batch][scale]") {
    nystrom_options o;
    o.dim = D;
    o.rank = 4;
    o.oversampling = 4;
    o.probes = 3;
    o.seed = 3;
    every_type_and_scale([&] { return nystrom_sketch(o); },
                         [](nystrom_sketch& s, const batch_view& b, std::size_t r0) { s.update(b, r0); });
}

TEST_CASE("scale in the view = pre-scaled f64 rows, bit for bit: Monte-Carlo noise", "[batch][scale]") {
    const noise_spec spec = parse_noise_spec("gaussian:sigma=0.3");
    monte_carlo_options o;
    o.dim = D;
    o.draws = 4;
    o.replicates = 2;
    o.seed = 5;
    o.name = to_string(spec);
    const corrupt_fn fn = make_corrupter(spec);
    every_type_and_scale([&] { return monte_carlo_noise(o, fn); },
                         [](monte_carlo_noise& m, const batch_view& b, std::size_t r0) { m.update(b, r0); });
}

TEST_CASE("scale in the view = pre-scaled f64 rows, bit for bit: class moments", "[batch][scale]") {
    const typed_rows t = make_rows();
    every_type_and_scale([] { return class_moments({D, CLASSES}); },
                         [&](class_moments& m, const batch_view& b, std::size_t r0) {
                             m.update(b, target_view::class_ids(t.labels.data() + r0, BATCH), r0);
                         });
}

TEST_CASE("scale in the view = pre-scaled f64 rows, bit for bit: patch blocks", "[batch][scale]") {
    patch_blocks_options o;
    o.shape = {3, 4, 1};  // D = 12
    o.patch_h = 2;
    o.patch_w = 2;
    auto update = [](patch_blocks& p, const batch_view& b, std::size_t r0) { p.update(b, r0); };
    const typed_rows t = make_rows();
    for (double s : {1.0, 1.0 / 255.0, 0.1, -3.0}) {
        CAPTURE(s);
        same_state([&] { return patch_blocks(o); }, update, t.f32, s);
        same_state([&] { return patch_blocks(o); }, update, t.f64, s);
        // uint8 rows take the exact integer path (patch_blocks_u8.cpp), the scale applied to each
        // group's exact scatter: not the double path's bits, its numbers to rounding.
        patch_blocks by_view(o), by_reader(o);
        const std::vector<double> pre = prescaled(t.u8, s);
        for (std::size_t r0 = 0; r0 < N; r0 += BATCH) {
            by_view.update(scaled_view(t.u8, r0, s), r0);
            by_reader.update(batch_view(pre.data() + r0 * D, BATCH, D), r0);
        }
        CHECK(testing::rel_diff(by_view.mean(), by_reader.mean()) < 1e-14);
        for (std::size_t b = 0; b < by_view.blocks(); ++b)
            CHECK(testing::rel_diff(by_view.block(b, centering::centered), by_reader.block(b, centering::centered)) < 1e-13);
    }
}

TEST_CASE("scale in the view = pre-scaled f64 rows, bit for bit: restricted moments (with class ids)",
          "[batch][scale]") {
    const typed_rows t = make_rows();
    restricted_moments_options o;
    o.basis = xt::zeros<double>({D, std::size_t(3)});
    for (std::size_t i = 0; i < D; ++i) o.basis(i, i % 3) = 1.0 + 0.1 * static_cast<double>(i);
    o.classes = CLASSES;
    every_type_and_scale([&] { return restricted_moments(o); },
                         [&](restricted_moments& m, const batch_view& b, std::size_t r0) {
                             m.update(b, target_view::class_ids(t.labels.data() + r0, BATCH), r0);
                         });
}

TEST_CASE("the conversion helpers apply the scale once, and check the scaled values", "[batch][scale]") {
    const std::vector<std::uint8_t> u8 = {0, 1, 2, 255};
    batch_view b(u8.data(), 2, 2);
    b.scale = 1.0 / 255.0;
    std::vector<double> d(4);
    to_double_checked(b, 2, d.data());
    for (std::size_t i = 0; i < 4; ++i) CHECK(d[i] == static_cast<double>(u8[i]) * (1.0 / 255.0));
    std::vector<float> f(4);
    to_float_checked(b, 2, f.data());
    for (std::size_t i = 0; i < 4; ++i) CHECK(f[i] == static_cast<float>(static_cast<double>(u8[i]) * (1.0 / 255.0)));
    const std::vector<double> shift = {0.5, 0.25};
    std::vector<double> z(4), sums(2, 0.0);
    to_shifted_checked(b, 2, shift.data(), z.data(), 2, sums.data());
    for (std::size_t i = 0; i < 4; ++i) CHECK(z[i] == static_cast<double>(u8[i]) * (1.0 / 255.0) - shift[i % 2]);
    CHECK(sums[0] == z[0] + z[2]);

    // A finite stored value whose scaled value overflows is refused, naming its row and column.
    const std::vector<float> big = {1.0f, std::numeric_limits<float>::max()};
    batch_view o(big.data(), 1, 2);
    o.scale = 1e300;
    CHECK_THROWS_WITH(to_double_checked(o, 2, d.data(), 40), Catch::Contains("row 40, column 1"));
    CHECK_THROWS_WITH(to_shifted_checked(o, 2, shift.data(), z.data(), 2, sums.data(), 40),
                      Catch::Contains("row 40, column 1"));
    batch_view n = b;
    n.scale = std::nan("");
    CHECK_THROWS_AS(to_double_checked(n, 2, d.data()), input_error);
}

TEST_CASE("wide batches, a block at a time: check_shifted_sums and gather_shifted agree with to_shifted_checked",
          "[batch][scale]") {
    // The high-D accumulators (patch blocks, restricted moments) validate a batch a few rows at a
    // time and convert only the columns they need: the same values and sums, the same refusals.
    const typed_rows t = make_rows();
    const std::vector<double> shift = testing::random_rows(1, D, 3);
    std::vector<double> whole(N * D), sums(D, 0.0);
    batch_view b(t.u8.data(), N, D);
    b.scale = 1.0 / 255.0;
    to_shifted_checked(b, D, shift.data(), whole.data(), D, sums.data(), 0);
    std::vector<double> scratch, chunked(D, 0.0);
    check_shifted_sums(b, D, shift.data(), chunked.data(), scratch, 7, 0);
    CHECK(scratch.size() == 7 * D);
    for (std::size_t c = 0; c < D; ++c) CHECK(chunked[c] == Approx(sums[c]).epsilon(1e-14));
    const std::vector<std::size_t> cols = {11, 0, 5};
    std::vector<double> g(N * cols.size()), r(N * 4);
    gather_shifted(b, shift.data(), cols.data(), 0, cols.size(), g.data());
    gather_shifted(b, shift.data(), nullptr, 6, 4, r.data());
    for (std::size_t i = 0; i < N; ++i) {
        for (std::size_t j = 0; j < cols.size(); ++j) CHECK(g[i * cols.size() + j] == whole[i * D + cols[j]]);
        for (std::size_t j = 0; j < 4; ++j) CHECK(r[i * 4 + j] == whole[i * D + 6 + j]);
    }
    // A non-finite value in a later chunk is named by its row in the stream.
    std::vector<double> bad = t.f64;
    bad[50 * D + 4] = std::nan("");
    std::vector<double> s2(D, 0.0);
    CHECK_THROWS_WITH(check_shifted_sums(batch_view(bad.data(), N, D), D, shift.data(), s2.data(), scratch, 7, 1000),
                      Catch::Contains("row 1050, column 4"));
    CHECK_THROWS_WITH(check_shifted_sums(batch_view(bad.data(), N, D - 1), D, shift.data(), s2.data(), scratch, 7, 0),
                      Catch::Contains("columns"));
}

TEST_CASE("the fused shift pass of a large batch is the plain loop, bit for bit",
          "[batch][scale]") {
    const std::size_t rows = 300, cols = 785, stride = 790;  // 235,500 values, a wider output stride
    const auto x = testing::random_rows(rows, cols, 41, 7.0);
    std::vector<double> shift(cols);
    for (std::size_t c = 0; c < cols; ++c) shift[c] = 0.01 * static_cast<double>(c);
    batch_view v(x.data(), rows, cols);
    v.scale = 0.3;
    std::vector<double> out(rows * stride, -1.0), sums(cols, 0.5), ref_out(rows * stride, -1.0), ref_sums(cols, 0.5),
        local(cols, 0.0);
    to_shifted_checked(v, cols, shift.data(), out.data(), stride, sums.data());
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t c = 0; c < cols; ++c) {
            const double t = x[r * cols + c] * 0.3 - shift[c];
            ref_out[r * stride + c] = t;
            local[c] += t;
        }
    for (std::size_t c = 0; c < cols; ++c) ref_sums[c] += local[c];
    CHECK(std::memcmp(out.data(), ref_out.data(), out.size() * sizeof(double)) == 0);
    CHECK(std::memcmp(sums.data(), ref_sums.data(), sums.size() * sizeof(double)) == 0);
}
