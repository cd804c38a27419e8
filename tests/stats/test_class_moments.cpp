// class_moments against an independent route and its own verbs: cross(c) equals the exact
// moment accumulator's with class-id targets in both centerings (MATH.md §1 for one-hot y),
// for every input dtype and label type; merge(A, B) equals one pass over A ∪ B; save/load
// round-trips bit for bit; every truncated or inconsistent checkpoint is a file_error; a bad
// batch or an incompatible merge changes nothing and the run continues to the same bits.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <recalign/core/checked.hpp>
#include <recalign/core/errors.hpp>
#include <recalign/core/hash.hpp>
#include <recalign/core/serial.hpp>
#include <recalign/stats/class_moments.hpp>
#include <recalign/stats/moments.hpp>

#include "../common/helpers.hpp"
#include "../common/refusals.hpp"

using namespace recalign;
using Catch::Contains;
using testing::message_of;

namespace {

constexpr std::size_t D = 11, C = 4;
constexpr double nan_v = std::numeric_limits<double>::quiet_NaN();
constexpr double inf_v = std::numeric_limits<double>::infinity();

// Rows [lo, hi) of x (width d) with their labels, in batches of `batch`, into both states.
template <class T, class L>
void feed(class_moments& cm, moment_accumulator* ma, const std::vector<T>& x, const std::vector<L>& y, std::size_t d,
          std::size_t lo, std::size_t hi, std::size_t batch) {
    for (std::size_t r = lo; r < hi; r += batch) {
        const std::size_t b = std::min(batch, hi - r);
        const batch_view v(x.data() + r * d, b, d);
        const target_view t = target_view::class_ids(y.data() + r, b);
        cm.update(v, t, r);
        if (ma) ma->update(v, t, r);
    }
}

void same_cross(const class_moments& cm, const moment_accumulator& ma, double tol) {
    for (const centering c : {centering::uncentered, centering::centered}) {
        INFO(centering_name(c));
        const cross_moments a = cm.cross(c), b = ma.cross(c);
        CHECK(a.center == c);
        CHECK(a.n == b.n);
        REQUIRE(a.sxy.shape() == b.sxy.shape());
        REQUIRE(a.syy_dense().shape() == b.syy_dense().shape());
        CHECK(testing::rel_diff(a.sxy, b.sxy) < tol);
        CHECK(testing::rel_diff(a.syy_dense(), b.syy_dense()) < tol);
    }
    CHECK(testing::rel_diff(cm.mean(), ma.mean_x()) < tol);
}

std::string bytes_of(const class_moments& s) { return checkpoint::to_bytes(s); }

// Random rows with a per-class offset (so that class means differ and centering matters).
std::vector<double> class_rows(std::size_t n, std::size_t d, const std::vector<std::int64_t>& y, std::uint64_t seed) {
    std::vector<double> x = testing::random_rows(n, d, seed);
    for (std::size_t r = 0; r < n; ++r)
        for (std::size_t j = 0; j < d; ++j) x[r * d + j] += 2.0 * static_cast<double>(y[r]) * static_cast<double>(j % 3);
    return x;
}

class_moments half_state(const std::vector<double>& x, const std::vector<std::int64_t>& y, std::size_t n) {
    class_moments s({D, C});
    feed<double, std::int64_t>(s, nullptr, x, y, D, 0, n / 2, 16);
    return s;
}

// The refusal property (../unit/refusals.hpp) for class_moments states.
template <class E>
void refused_then_continues(const std::function<class_moments()>& make, const std::function<void(class_moments&)>& bad,
                            const std::function<void(class_moments&)>& good, const std::vector<std::string>& parts) {
    testing::refused_then_continues<E, class_moments>(make, bad, good, parts);
}

// The payload with its CRC and the header's recomputed, as a writer of that payload would seal it.
std::string resealed(std::string bytes) {
    const std::uint32_t pcrc = crc32(bytes.data() + checkpoint::header_bytes, bytes.size() - checkpoint::header_bytes);
    std::memcpy(&bytes[56], &pcrc, 4);
    const std::uint32_t hcrc = crc32(bytes.data(), 60);
    std::memcpy(&bytes[60], &hcrc, 4);
    return bytes;
}

}  // namespace

TEST_CASE("class_moments: cross(c) equals moment_accumulator's with class ids, both centerings", "[class_moments]") {
    const std::size_t n = 701;
    const auto y = testing::random_labels(n, C, 21);
    const auto x = class_rows(n, D, y, 22);
    for (const std::size_t batch : {1, 7, 64, 701}) {
        INFO("batch " << batch);
        class_moments cm({D, C});
        moment_accumulator ma({D, target_mode::class_ids, C});
        feed(cm, &ma, x, y, D, 0, n, batch);
        CHECK(cm.n() == n);
        CHECK(!cm.empty());
        same_cross(cm, ma, 1e-12);
    }
    SECTION("counts and means equal a direct two-pass computation") {
        class_moments cm({D, C});
        feed<double, std::int64_t>(cm, nullptr, x, y, D, 0, n, 50);
        std::vector<std::uint64_t> counts(C, 0);
        std::vector<long double> sums(C * D, 0.0L);
        for (std::size_t r = 0; r < n; ++r) {
            ++counts[static_cast<std::size_t>(y[r])];
            for (std::size_t j = 0; j < D; ++j) sums[static_cast<std::size_t>(y[r]) * D + j] += x[r * D + j];
        }
        CHECK(cm.counts() == counts);
        const matrix_t means = cm.means();
        REQUIRE(means.shape(0) == C);
        REQUIRE(means.shape(1) == D);
        std::vector<long double> direct(C * D);
        for (std::size_t c = 0; c < C; ++c)
            for (std::size_t j = 0; j < D; ++j) direct[c * D + j] = sums[c * D + j] / static_cast<long double>(counts[c]);
        CHECK(testing::rel_diff(means, direct) < 1e-14);
    }
}

TEST_CASE("class_moments: an unseen class has a zero row and a zero column, as the one-hot sums do", "[class_moments]") {
    const std::size_t n = 120;
    auto y = testing::random_labels(n, C - 1, 31);  // class C - 1 never occurs
    const auto x = class_rows(n, D, y, 32);
    class_moments cm({D, C});
    moment_accumulator ma({D, target_mode::class_ids, C});
    feed(cm, &ma, x, y, D, 0, n, 25);
    CHECK(cm.counts()[C - 1] == 0);
    const matrix_t means = cm.means();
    for (std::size_t j = 0; j < D; ++j) CHECK(means(C - 1, j) == 0.0);
    same_cross(cm, ma, 1e-12);
    for (const centering c : {centering::uncentered, centering::centered}) {
        const cross_moments a = cm.cross(c);
        for (std::size_t j = 0; j < D; ++j) CHECK(a.sxy(j, C - 1) == 0.0);
    }
}

TEST_CASE("class_moments: an empty state's statistics are zeros, as moment_accumulator's", "[class_moments]") {
    class_moments cm({D, C});
    moment_accumulator ma({D, target_mode::class_ids, C});
    CHECK(cm.empty());
    CHECK(cm.n() == 0);
    same_cross(cm, ma, 1e-15);
    const std::int64_t none[1] = {0};
    cm.update(batch_view(static_cast<const double*>(nullptr), 0, D), target_view::class_ids(none, 0));
    CHECK(cm.empty());
}

TEST_CASE("class_moments: uint8, float32 and float64 input, and every label type, give the same bits", "[class_moments][dtype]") {
    const std::size_t n = 300, d = 37, classes = 5;
    const auto y64 = testing::random_labels(n, classes, 41);
    std::vector<std::uint8_t> xu(n * d);
    for (std::size_t i = 0; i < xu.size(); ++i) xu[i] = static_cast<std::uint8_t>((i * 7919 + 13 * y64[i / d]) % 256);
    const std::vector<float> xf(xu.begin(), xu.end());
    const std::vector<double> xd(xu.begin(), xu.end());
    const std::vector<std::int32_t> y32(y64.begin(), y64.end());
    const std::vector<std::uint8_t> y8(y64.begin(), y64.end());

    class_moments from_u8({d, classes}), from_f32({d, classes}), from_f64({d, classes}), from_i32({d, classes}),
        from_l8({d, classes});
    moment_accumulator ma({d, target_mode::class_ids, classes});
    feed(from_u8, &ma, xu, y64, d, 0, n, 32);
    feed<float, std::int64_t>(from_f32, nullptr, xf, y64, d, 0, n, 32);
    feed<double, std::int64_t>(from_f64, nullptr, xd, y64, d, 0, n, 32);
    feed<double, std::int32_t>(from_i32, nullptr, xd, y32, d, 0, n, 32);
    feed<double, std::uint8_t>(from_l8, nullptr, xd, y8, d, 0, n, 32);
    CHECK(bytes_of(from_u8) == bytes_of(from_f64));
    CHECK(bytes_of(from_f32) == bytes_of(from_f64));
    CHECK(bytes_of(from_i32) == bytes_of(from_f64));
    CHECK(bytes_of(from_l8) == bytes_of(from_f64));
    same_cross(from_u8, ma, 1e-12);
}

TEST_CASE("class_moments: scaled uint8 rows give the bits of their float64 values; a scale near the double range is "
          "still refused", "[class_moments][dtype]") {
    // uint8 rows skip the finiteness and overflow checks where they cannot fail (every value and
    // class sum bounded by rows x 255 |scale|) and convert each row once: the same bits as the
    // same values given in float64 (x · scale, as the reader's conversion makes them).
    const std::size_t n = 260, d = 29, classes = 4;
    const auto y = testing::random_labels(n, classes, 45);
    std::vector<std::uint8_t> xu(n * d);
    for (std::size_t i = 0; i < xu.size(); ++i) xu[i] = static_cast<std::uint8_t>((i * 7919 + 31 * y[i / d]) % 256);
    for (const double scale : {1.0 / 255.0, -3.5, 1e300}) {
        INFO("scale " << scale);
        std::vector<double> xd(xu.size());
        for (std::size_t i = 0; i < xu.size(); ++i) xd[i] = static_cast<double>(xu[i]) * scale;
        class_moments from_u8({d, classes}), from_f64({d, classes});
        for (std::size_t r0 = 0; r0 < n; r0 += 64) {
            const std::size_t b = std::min<std::size_t>(64, n - r0);
            batch_view u(xu.data() + r0 * d, b, d);
            u.scale = scale;
            from_u8.update(u, target_view::class_ids(y.data() + r0, b), r0);
            from_f64.update(batch_view(xd.data() + r0 * d, b, d), target_view::class_ids(y.data() + r0, b), r0);
        }
        CHECK(bytes_of(from_u8) == bytes_of(from_f64));
    }
    // Where the bound is not finite the checks run: a value beyond the double range, and a sum that
    // overflows, are refused (naming where) and change nothing.
    class_moments cm({d, classes});
    batch_view first(xu.data(), 64, d);
    cm.update(first, target_view::class_ids(y.data(), 64), 0);
    const std::string state = bytes_of(cm);
    std::vector<std::uint8_t> big(2 * d, 0);
    big[d + 5] = 255;
    const std::int64_t same[2] = {1, 1};
    batch_view huge(big.data(), 2, d);
    huge.scale = 1e307;  // 255e307 is not a double
    CHECK_THAT(message_of<input_error>([&] { cm.update(huge, target_view::class_ids(same, 2), 64); }),
               Contains("row 65") && Contains("column 5") && Contains("not finite"));
    CHECK(bytes_of(cm) == state);
    big[5] = 255;
    huge.scale = 6e305;  // 1.53e308 is; two of them in one class are not
    CHECK_THAT(message_of<input_error>([&] { cm.update(huge, target_view::class_ids(same, 2), 64); }),
               Contains("class 1") && Contains("column 5") && Contains("overflows"));
    CHECK(bytes_of(cm) == state);
}

TEST_CASE("class_moments: rows wider than the conversion block are converted a row at a time", "[class_moments][dtype]") {
    // D = 40,000 > the 32,768-value block: each block is one row, and a NaN in the last row
    // of a batch is still refused with nothing changed.
    const std::size_t d = 40000, n = 6, classes = 3;
    const std::vector<std::int64_t> y = {0, 2, 2, 1, 0, 2};
    std::vector<float> x(n * d);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i % 97) * 0.25 + 10.0 * y[i / d]);
    class_moments cm({d, classes});
    feed<float, std::int64_t>(cm, nullptr, x, y, d, 0, 4, 4);  // one batch of 4 rows: 4 blocks
    // (A (D + C)² moment accumulator would not fit here: compare with the rows themselves.)
    std::vector<long double> direct(classes * d, 0.0L);
    std::vector<std::uint64_t> counts(classes, 0);
    for (std::size_t r = 0; r < 4; ++r) ++counts[static_cast<std::size_t>(y[r])];
    for (std::size_t r = 0; r < 4; ++r)
        for (std::size_t j = 0; j < d; ++j)
            direct[static_cast<std::size_t>(y[r]) * d + j] += x[r * d + j] / static_cast<long double>(counts[y[r]]);
    CHECK(cm.counts() == counts);
    CHECK(testing::rel_diff(cm.means(), direct) < 1e-15);
    const std::string before = bytes_of(cm);
    std::vector<float> bad(x.begin() + 4 * d, x.end());
    bad[d + 39999] = std::numeric_limits<float>::infinity();
    const std::string msg = message_of<input_error>(
        [&] { cm.update(batch_view(bad.data(), 2, d), target_view::class_ids(y.data() + 4, 2), 4); });
    CHECK_THAT(msg, Contains("row 5") && Contains("column 39999"));
    CHECK(bytes_of(cm) == before);
}

TEST_CASE("class_moments: merge(A, B) equals one pass over A and B", "[class_moments][merge]") {
    const std::size_t n = 500;
    const auto y = testing::random_labels(n, C, 51);
    const auto x = class_rows(n, D, y, 52);
    class_moments whole({D, C});
    moment_accumulator reference({D, target_mode::class_ids, C});
    feed(whole, &reference, x, y, D, 0, n, 40);
    for (const std::size_t split : {std::size_t(1), std::size_t(123), std::size_t(250), n - 1}) {
        INFO("split at " << split);
        class_moments a({D, C}), b({D, C});
        feed<double, std::int64_t>(a, nullptr, x, y, D, 0, split, 17);
        feed<double, std::int64_t>(b, nullptr, x, y, D, split, n, 33);
        a.merge(b);
        CHECK(a.n() == n);
        CHECK(a.counts() == whole.counts());
        CHECK(testing::rel_diff(a.means(), whole.means()) < 1e-13);
        same_cross(a, reference, 1e-12);
    }
    SECTION("an empty other is a no-op; merging into an empty state copies the bits") {
        class_moments a = half_state(x, y, n);
        const std::string before = bytes_of(a);
        a.merge(class_moments({D, C}));
        CHECK(bytes_of(a) == before);
        class_moments e({D, C});
        e.merge(a);
        CHECK(bytes_of(e) == before);
    }
    SECTION("merging a state with itself doubles the counts and keeps the means") {
        class_moments a = half_state(x, y, n);
        const matrix_t means = a.means();
        const auto counts = a.counts();
        a.merge(a);
        CHECK(a.n() == 2 * (n / 2));
        for (std::size_t c = 0; c < C; ++c) CHECK(a.counts()[c] == 2 * counts[c]);
        CHECK(testing::bit_equal(a.means(), means));
    }
}

TEST_CASE("class_moments: incompatible merges throw naming both values and change nothing", "[class_moments][merge]") {
    const std::size_t n = 96;
    const auto y = testing::random_labels(n, C, 61);
    const auto x = class_rows(n, D, y, 62);
    auto make = [&] { return half_state(x, y, n); };
    auto good = [&](class_moments& s) {
        class_moments other({D, C});
        feed<double, std::int64_t>(other, nullptr, x, y, D, n / 2, n, 16);
        s.merge(other);
    };
    class_moments wide({D + 1, C});
    refused_then_continues<std::invalid_argument>(make, [&](class_moments& s) { s.merge(wide); }, good,
                                                  {"dimension 11 and 12"});
    class_moments more({D, C + 1});
    std::vector<std::int64_t> ones(3, 4);
    const std::vector<double> rows(3 * D, 1.0);
    more.update(batch_view(rows.data(), 3, D), target_view::class_ids(ones.data(), 3));
    refused_then_continues<std::invalid_argument>(make, [&](class_moments& s) { s.merge(more); }, good,
                                                  {"4 and 5 classes"});
    // Refused for an empty other too: a configuration mismatch is a caller's bug either way.
    class_moments empty_more({D, C + 1});
    refused_then_continues<std::invalid_argument>(make, [&](class_moments& s) { s.merge(empty_more); }, good,
                                                  {"4 and 5 classes"});
}

TEST_CASE("class_moments: every bad batch is refused, changes nothing and the run continues to the same bits",
          "[class_moments][bad_input]") {
    const std::size_t n = 96, at = 48, B = 16;
    const auto y = testing::random_labels(n, C, 71);
    const auto x = class_rows(n, D, y, 72);
    auto make = [&] { return half_state(x, y, n); };
    auto good = [&](class_moments& s) { feed<double, std::int64_t>(s, nullptr, x, y, D, at, n, B); };
    const target_view ys = target_view::class_ids(y.data() + at, B);
    auto poisoned = [&](std::size_t row, std::size_t col, double v) {
        std::vector<double> p(x.begin() + static_cast<std::ptrdiff_t>(at * D),
                              x.begin() + static_cast<std::ptrdiff_t>((at + B) * D));
        p[row * D + col] = v;
        return p;
    };

    SECTION("NaN, Inf and -Inf name the row (counted from first_row) and the column") {
        for (const double v : {nan_v, inf_v, -inf_v}) {
            INFO("value " << v);
            const auto p = poisoned(9, 4, v);
            refused_then_continues<input_error>(
                make, [&](class_moments& s) { s.update(batch_view(p.data(), B, D), ys, at); }, good,
                {"row " + std::to_string(at + 9), "column 4", "not finite"});
        }
        const auto first = poisoned(0, 0, nan_v);
        refused_then_continues<input_error>(
            make, [&](class_moments& s) { s.update(batch_view(first.data(), B, D), ys, at); }, good,
            {"row " + std::to_string(at), "column 0"});
    }
    SECTION("wrong width names the batch's row") {
        const std::vector<double> w(B * (D + 1), 1.0);
        refused_then_continues<input_error>(
            make, [&](class_moments& s) { s.update(batch_view(w.data(), B, D + 1), ys, at); }, good,
            {"row " + std::to_string(at), "12 columns", "expected 11"});
    }
    SECTION("a label out of range, above or negative, names the row") {
        for (const std::int64_t bad : {std::int64_t(C), std::int64_t(-1), std::int64_t(1) << 40}) {
            INFO("label " << bad);
            std::vector<std::int64_t> l(y.begin() + at, y.begin() + at + B);
            l[13] = bad;
            refused_then_continues<input_error>(
                make,
                [&](class_moments& s) {
                    s.update(batch_view(x.data() + at * D, B, D), target_view::class_ids(l.data(), B), at);
                },
                good, {"row " + std::to_string(at + 13), "label " + std::to_string(bad), "[0, 4)"});
        }
    }
    SECTION("labels of another count, dense targets, none") {
        refused_then_continues<input_error>(
            make,
            [&](class_moments& s) {
                s.update(batch_view(x.data() + at * D, B, D), target_view::class_ids(y.data() + at, B - 1), at);
            },
            good, {"targets have 15 rows", "row 48 has 16"});
        const std::vector<double> dense(B * C, 0.0);
        refused_then_continues<input_error>(
            make,
            [&](class_moments& s) {
                s.update(batch_view(x.data() + at * D, B, D), target_view::dense_rows(batch_view(dense.data(), B, C)), at);
            },
            good, {"class ids", "dense"});
        refused_then_continues<input_error>(
            make, [&](class_moments& s) { s.update(batch_view(x.data() + at * D, B, D), target_view::none(), at); },
            good, {"needs targets"});
    }
    SECTION("an element type the library does not know") {
        batch_view v(x.data() + at * D, B, D);
        v.type = static_cast<dtype>(77);
        refused_then_continues<input_error>(make, [&](class_moments& s) { s.update(v, ys, at); }, good,
                                            {"element type"});
    }
    SECTION("finite values whose class sum overflows") {
        std::vector<double> huge(2 * D, 1.0);
        huge[3] = huge[D + 3] = 1.5e308;
        const std::int64_t same[2] = {2, 2};
        refused_then_continues<input_error>(
            make, [&](class_moments& s) { s.update(batch_view(huge.data(), 2, D), target_view::class_ids(same, 2), at); },
            good, {"class 2", "column 3", "overflows"});
    }
}


TEST_CASE("class_moments: 1,000 classes at a high D: the batch needs no C x D scratch, and every class is checked "
          "before any mean moves", "[class_moments][memory]") {
    // D = 20,000 and C = 1,000: the means are 160 MB. A batch of 600 rows holds about 450 classes,
    // more than the 209 whose sums are formed at once (32 MiB), so the sums are formed in groups
    // and formed again to move the means. The old update zeroed a C x D scratch (160 MB more
    // resident) for every batch.
    const std::size_t d = 20000, classes = 1000, n = 1200, batch = 600;
    const std::vector<std::int64_t> y = testing::random_labels(n, classes, 91);
    std::vector<std::uint8_t> x(n * d);
    std::uint64_t h = 92;
    for (std::size_t i = 0; i < x.size(); ++i) {
        h = h * 6364136223846793005ULL + 1442695040888963407ULL;
        x[i] = static_cast<std::uint8_t>((h >> 33) % 200 + static_cast<std::uint64_t>(y[i / d]) % 56);
    }
    class_moments cm({d, classes});
    testing::reset_peak_rss();
    const long before = testing::peak_rss_kb();
    REQUIRE(before > 0);
    feed<std::uint8_t, std::int64_t>(cm, nullptr, x, y, d, 0, n, batch);
    INFO("peak RSS grew by " << testing::peak_rss_kb() - before << " kB");
    CHECK(testing::peak_rss_kb() - before < 64 * 1024);

    // The means against the rows themselves (long double).
    std::vector<long double> direct(classes * d, 0.0L);
    std::vector<std::uint64_t> counts(classes, 0);
    for (std::size_t r = 0; r < n; ++r) ++counts[static_cast<std::size_t>(y[r])];
    for (std::size_t r = 0; r < n; ++r) {
        const std::size_t c = static_cast<std::size_t>(y[r]);
        for (std::size_t j = 0; j < d; ++j) direct[c * d + j] += x[r * d + j] / static_cast<long double>(counts[c]);
    }
    CHECK(cm.counts() == counts);
    CHECK(testing::rel_diff(cm.means(), direct) < 1e-14);

    // A float64 batch whose last class overflows: refused, and not one mean of the classes of
    // the earlier groups (already formed and checked) has moved.
    std::vector<double> bad(batch * d);
    for (std::size_t i = 0; i < bad.size(); ++i) bad[i] = static_cast<double>(x[i]);
    // The largest class with two rows in the batch (two values of 1.5e308 overflow their sum),
    // beyond the first group of 209 classes present.
    std::vector<std::size_t> in_batch(classes, 0);
    for (std::size_t r = 0; r < batch; ++r) ++in_batch[static_cast<std::size_t>(y[r])];
    std::size_t target = classes, before_target = 0;
    for (std::size_t c = classes; c-- > 0;)
        if (in_batch[c] >= 2) {
            target = c;
            break;
        }
    REQUIRE(target < classes);
    for (std::size_t c = 0; c < target; ++c) before_target += in_batch[c] > 0;
    REQUIRE(before_target >= 4194304 / d);
    for (std::size_t r = 0; r < batch; ++r)
        if (static_cast<std::size_t>(y[r]) == target) bad[r * d + 7] = 1.5e308;
    const std::string state = bytes_of(cm);
    const std::string msg = message_of<input_error>(
        [&] { cm.update(batch_view(bad.data(), batch, d), target_view::class_ids(y.data(), batch), n); });
    CHECK_THAT(msg, Contains("class " + std::to_string(target)) && Contains("column 7") && Contains("overflows"));
    CHECK(bytes_of(cm) == state);
}

// [untouched]: its own meson test, without MALLOC_PERTURB_ (which writes every block malloc hands
// out, so Sxy's pages would all be resident before one value is formed).
TEST_CASE("class_moments: cross && gives cross's bits without holding the means and Sxy at once",
          "[class_moments][memory][untouched]") {
    // D = 20,000 and C = 1,000: the means and Sxy are 160 MB each (156,250 kB). 400 rows leave
    // some classes unseen (zero columns). cross() const& holds both; the consuming cross gives
    // the means' pages back as Sxy's are written.
    const std::size_t d = 20000, classes = 1000, n = 400;
    const std::vector<std::int64_t> y = testing::random_labels(n, classes, 93);
    std::vector<std::uint8_t> x(n * d);
    std::uint64_t h = 94;
    for (std::size_t i = 0; i < x.size(); ++i) {
        h = h * 6364136223846793005ULL + 1442695040888963407ULL;
        x[i] = static_cast<std::uint8_t>((h >> 33) % 256);
    }
    class_moments cm({d, classes});
    feed<std::uint8_t, std::int64_t>(cm, nullptr, x, y, d, 0, n, 200);
    REQUIRE(std::count(cm.counts().begin(), cm.counts().end(), 0U) > 0);
    const long sxy_kb = static_cast<long>(d * classes * sizeof(double) / 1024);
    for (const centering c : {centering::centered, centering::uncentered}) {
        testing::reset_peak_rss();
        long before = testing::peak_rss_kb();
        const cross_moments ref = cm.cross(c);
        const long held = testing::peak_rss_kb() - before;
        INFO("cross() const&: peak RSS grew by " << held << " kB");
        CHECK(held > sxy_kb * 9 / 10);  // what the consuming cross is measured against

        class_moments copy = cm;
        testing::reset_peak_rss();
        before = testing::peak_rss_kb();
        const cross_moments out = std::move(copy).cross(c);
        const long grew = testing::peak_rss_kb() - before;
        INFO("cross() &&: peak RSS grew by " << grew << " kB");
        CHECK(grew < sxy_kb / 3);  // 21,888 kB measured; 39,300 kB under ASan (its shadow of Sxy)
        CHECK(out.center == ref.center);
        CHECK(out.n == ref.n);
        REQUIRE(out.sxy.shape() == ref.sxy.shape());
        CHECK(std::memcmp(out.sxy.data(), ref.sxy.data(), out.sxy.size() * sizeof(double)) == 0);
        CHECK(out.class_counts == ref.class_counts);
        CHECK(copy.n() == 0);
        CHECK(copy.classes() == 0);
    }
}

TEST_CASE("class_moments: save/load round-trips bit for bit and continues like a run that never stopped",
          "[class_moments][checkpoint]") {
    const std::size_t n = 200;
    const auto y = testing::random_labels(n, C, 81);
    const auto x = class_rows(n, D, y, 82);
    const class_moments a = half_state(x, y, n);
    const std::string bytes = testing::saved(a);
    CHECK(bytes == bytes_of(a));
    const class_moments back = testing::loaded<class_moments>(bytes);
    CHECK(bytes_of(back) == bytes);
    CHECK(back.n() == a.n());
    CHECK(back.counts() == a.counts());
    CHECK(testing::bit_equal(back.means(), a.means()));
    CHECK(checkpoint::from_bytes<class_moments>(bytes).n() == a.n());
    class_moments p = a, q = back;
    feed<double, std::int64_t>(p, nullptr, x, y, D, n / 2, n, 9);
    feed<double, std::int64_t>(q, nullptr, x, y, D, n / 2, n, 9);
    CHECK(bytes_of(p) == bytes_of(q));
    // The empty state too.
    const class_moments e({3, 2});
    CHECK(bytes_of(testing::loaded<class_moments>(testing::saved(e))) == bytes_of(e));
    // The header says what it holds.
    std::istringstream is(bytes, std::ios::binary);
    const checkpoint::header h = checkpoint::read_header(is, "<stream>");
    CHECK(h.kind == checkpoint::state_kind::class_moments);
    CHECK(std::string(checkpoint::kind_name(h.kind)) == "class_moments");
    CHECK(h.dim == D);
    CHECK(h.aux == C);
}

TEST_CASE("class_moments: every truncation and every inconsistent payload is a file_error", "[class_moments][checkpoint]") {
    const std::size_t n = 40;
    auto y = testing::random_labels(n, C, 91);
    for (auto& v : y) v = v == 1 ? 0 : v;  // class 1 unseen
    const auto x = class_rows(n, D, y, 92);
    class_moments s({D, C});
    feed<double, std::int64_t>(s, nullptr, x, y, D, 0, n, 8);
    const std::string bytes = testing::saved(s);
    for (std::size_t len = 0; len < bytes.size(); ++len) {
        INFO("truncated to " << len << " of " << bytes.size() << " bytes");
        CHECK_THROWS_AS(testing::loaded<class_moments>(bytes.substr(0, len)), file_error);
        CHECK_THROWS_AS(checkpoint::from_bytes<class_moments>(std::string_view(bytes).substr(0, len)), file_error);
    }
    // Payload layout (after the 64-byte header): the archive's byte-order tag, D, C, the C
    // counts, the means' two extents, then the C x D means.
    const std::size_t at_dim = 65, at_classes = 73, at_counts = 81, at_means = at_counts + 8 * C + 16;
    auto with_u64 = [&](std::size_t at, std::uint64_t v) {
        std::string b = bytes;
        std::memcpy(&b[at], &v, 8);
        return resealed(b);
    };
    auto with_f64 = [&](std::size_t at, double v) {
        std::string b = bytes;
        std::memcpy(&b[at], &v, 8);
        return resealed(b);
    };
    struct bad_case {
        const char* name;
        std::string bytes;
        const char* part;
    };
    const std::vector<bad_case> cases = {
        {"classes beyond the payload", with_u64(at_classes, std::uint64_t(1) << 30), "cannot fit"},
        {"zero classes", with_u64(at_classes, 0), "classes 0"},
        {"zero dimension", with_u64(at_dim, 0), "dimension 0"},
        {"an unseen class with a non-zero mean", with_f64(at_means + 8 * D + 8, 0.5), "class 1 has no rows"},
        {"a NaN mean", with_f64(at_means + 16, nan_v), "non-finite"},
        {"counts whose total overflows", with_u64(at_counts + 8, ~std::uint64_t(0)), "overflows"},
        {"means of another shape", with_u64(at_counts + 8 * C, C - 1), "wrong shape"},
        {"a configuration hash of another build", [&] {
             std::string b = bytes;
             b[40] ^= 0x5a;
             return resealed(b);
         }(), "hash"},
    };
    for (const bad_case& c : cases) {
        INFO(c.name);
        const std::string msg = message_of<file_error>([&] { testing::loaded<class_moments>(c.bytes); });
        CHECK_THAT(msg, Contains(c.part));
    }
    // Another kind's checkpoint is refused at the kind field, naming both.
    moment_accumulator m({D, target_mode::class_ids, C});
    const std::string msg = message_of<file_error>([&] { testing::loaded<class_moments>(testing::saved(m)); });
    CHECK_THAT(msg, Contains("byte offset 16") && Contains("moment_accumulator") && Contains("class_moments"));
}

TEST_CASE("class_moments: bad construction arguments throw std::invalid_argument", "[class_moments][errors]") {
    CHECK_THROWS_AS(class_moments({0, 3}), std::invalid_argument);
    CHECK_THROWS_AS(class_moments({3, 0}), std::invalid_argument);
    CHECK_THROWS_AS(class_moments({std::size_t(1) << 31, std::size_t(1) << 31}), size_overflow);
    CHECK_THROWS_AS(class_moments({(std::size_t(1) << 31) + 1, 1}), size_overflow);
    const class_moments ok({2, 1});
    CHECK(ok.dim() == 2);
    CHECK(ok.classes() == 1);
    CHECK(ok.aux_dim() == 1);
    CHECK(ok.options().classes == 1);
    CHECK(ok.config_hash() != class_moments({2, 2}).config_hash());
}

TEST_CASE("class_moments: Syy kept as the class counts, read through cross_moments", "[stats][class_moments]") {
    // 5 classes, one never seen, one dominant (the centered ‖Syy‖_F² cancels most there).
    const std::size_t d = 4, c = 5, n = 1000;
    const std::vector<double> x = testing::random_rows(n, d, 77);
    std::vector<std::int64_t> y(n);
    for (std::size_t r = 0; r < n; ++r) y[r] = r % 50 == 0 ? 1 : (r % 97 == 0 ? 3 : 0);
    class_moments cm({d, c});
    cm.update(batch_view(x.data(), n, d), target_view::class_ids(y.data(), n));
    for (centering cen : {centering::uncentered, centering::centered}) {
        CAPTURE(centering_name(cen));
        const cross_moments cr = cm.cross(cen);
        REQUIRE(cr.one_hot());
        CHECK(cr.syy.size() == 0);
        // The dense Syy, written out from its definition.
        matrix_t dense = xt::zeros<double>({c, c});
        for (std::size_t i = 0; i < c; ++i) {
            dense(i, i) = cr.class_counts(i);
            if (cen == centering::centered)
                for (std::size_t j = 0; j < c; ++j) dense(i, j) -= cr.class_counts(i) * cr.class_counts(j) / double(n);
        }
        CHECK(testing::rel_diff(cr.syy_dense(), dense) < 1e-15);
        double tr = 0.0, f2 = 0.0;
        for (std::size_t i = 0; i < c; ++i) tr += dense(i, i);
        for (double v : dense) f2 += v * v;
        CHECK(cr.syy_trace() == Approx(tr).epsilon(1e-14));
        CHECK(cr.syy_frobenius2() == Approx(f2).epsilon(1e-12));
        const matrix_t a = {{1.0, -2.0, 0.5, 3.0, 7.0}, {0.0, 1.0, 1.0, -1.0, 2.0}};
        matrix_t want = xt::zeros<double>({std::size_t(2), c});
        for (std::size_t i = 0; i < 2; ++i)
            for (std::size_t j = 0; j < c; ++j)
                for (std::size_t k = 0; k < c; ++k) want(i, j) += a(i, k) * dense(k, j);
        CHECK(testing::rel_diff(cr.times_syy(a), want) < 1e-14);
    }
}
