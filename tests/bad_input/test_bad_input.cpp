// The bad-input policy (README "Bad-input policy"), C++ surface: every row of the table for
// every accumulator. A rejected batch or merge throws std::invalid_argument (input_error for
// batches) naming the row / column / both values, and the state is bit-identical to before
// (saved bytes compared) and continues to the same bits as a run that never saw the bad
// input; a bad checkpoint throws recalign::file_error naming the source and byte offset.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include <unistd.h>

#include <recalign/align/noise.hpp>
#include <recalign/align/tracker.hpp>
#include <recalign/core/errors.hpp>
#include <recalign/core/hash.hpp>
#include <recalign/core/serial.hpp>
#include <recalign/io/files.hpp>
#include <recalign/io/npy.hpp>
#include <recalign/sketch/frequent_directions.hpp>
#include <recalign/sketch/nystrom_sketch.hpp>
#include <recalign/stats/class_moments.hpp>
#include <recalign/stats/moments.hpp>

#include "../common/helpers.hpp"
#include "../common/refusals.hpp"

using namespace recalign;
using Catch::Contains;
using Catch::StartsWith;
using testing::message_of;
using testing::names_all;
using testing::refused_then_continues;

namespace {

constexpr std::size_t D = 12, C = 3, N = 96, B = 16;
constexpr double nan_v = std::numeric_limits<double>::quiet_NaN();
constexpr double inf_v = std::numeric_limits<double>::infinity();

const std::vector<double>& data_x() {
    static const std::vector<double> x = testing::random_rows(N, D, 811);
    return x;
}
const std::vector<std::int64_t>& data_y() {
    static const std::vector<std::int64_t> y = testing::random_labels(N, C, 812);
    return y;
}
batch_view rows_of(const std::vector<double>& x, std::size_t first, std::size_t count, std::size_t d = D) {
    return batch_view(x.data() + first * d, count, d);
}
target_view labels_of(const std::vector<std::int64_t>& y, std::size_t first, std::size_t count) {
    return target_view::class_ids(y.data() + first, count);
}

// Batches of rows [lo, hi) in the file's order (with their labels for the states that take them).
template <class T>
void feed(T& s, std::size_t lo, std::size_t hi) {
    for (std::size_t r = lo; r < hi; r += B) {
        const std::size_t b = std::min(B, hi - r);
        if constexpr (std::is_same_v<T, moment_accumulator> || std::is_same_v<T, alignment_tracker> ||
                      std::is_same_v<T, class_moments>)
            s.update(rows_of(data_x(), r, b), labels_of(data_y(), r, b), r);
        else
            s.update(rows_of(data_x(), r, b), r);
    }
}

// A copy of batch rows [first, first + count) with one value replaced.
std::vector<double> poisoned(std::size_t first, std::size_t count, std::size_t row, std::size_t col, double v) {
    std::vector<double> x(data_x().begin() + static_cast<std::ptrdiff_t>(first * D),
                          data_x().begin() + static_cast<std::ptrdiff_t>((first + count) * D));
    x[row * D + col] = v;
    return x;
}

// Rewrites a header field and recomputes the header CRC-32 (bytes 0..59, stored at 60),
// as a newer build, another kind or another configuration would have written it
// (64-byte layout: lib/core/serial.cpp).
template <class V>
std::string with_header_field(std::string bytes, std::size_t offset, V value) {
    std::memcpy(&bytes[offset], &value, sizeof value);
    const std::uint32_t crc = recalign::crc32(bytes.data(), 60);
    std::memcpy(&bytes[60], &crc, 4);
    return bytes;
}

noise_spec dropout_mc() { return parse_noise_spec("dropout:ratio=0.25,draws=4,seed=9"); }

tracker_options tracker_opts() {
    tracker_options o;
    o.dim = D;
    o.classes = C;
    o.shape = {3, 4, 1, image_layout::hwc};
    o.noises = {parse_noise_spec("gaussian:sigma=0.5"), dropout_mc()};
    return o;
}

monte_carlo_options mc_opts() {
    monte_carlo_options o;
    o.dim = D;
    o.draws = 4;
    o.replicates = 2;
    o.seed = 9;
    o.name = to_string(dropout_mc());
    return o;
}

moment_accumulator moments_half() {
    moment_accumulator m({D, target_mode::class_ids, C});
    feed(m, 0, N / 2);
    return m;
}
class_moments class_moments_half() {
    class_moments m({D, C});
    feed(m, 0, N / 2);
    return m;
}
frequent_directions fd_half() {
    frequent_directions f({D, 4, centering::centered});
    feed(f, 0, N / 2);
    return f;
}
nystrom_options ny_opts(std::uint64_t seed = 5) {
    nystrom_options o;
    o.dim = D;
    o.rank = 3;
    o.oversampling = 2;
    o.probes = 2;
    o.seed = seed;
    return o;
}
nystrom_sketch ny_half() {
    nystrom_sketch s(ny_opts());
    feed(s, 0, N / 2);
    return s;
}
alignment_tracker tracker_half() {
    alignment_tracker t(tracker_opts());
    feed(t, 0, N / 2);
    return t;
}
monte_carlo_noise mc_half() {
    monte_carlo_noise m(mc_opts(), make_corrupter(dropout_mc()));
    feed(m, 0, N / 2);
    return m;
}

// The rows of the table that apply to every batch-taking accumulator, through `update`
// (which gets the batch, its labels or none, and first_row).
template <class T>
void batch_rows_of_the_table(const std::function<T()>& make,
                             const std::function<void(T&, const batch_view&, const target_view&, std::uint64_t)>& update,
                             bool labels) {
    const std::size_t at = N / 2;  // the bad batch comes where the next good one would
    auto good = [&](T& s) {
        for (std::size_t r = at; r < N; r += B)
            update(s, rows_of(data_x(), r, B), labels ? labels_of(data_y(), r, B) : target_view::none(), r);
    };
    const target_view ys = labels ? labels_of(data_y(), at, B) : target_view::none();

    SECTION("wrong width") {
        std::vector<double> wide(B * (D + 1), 1.0);
        refused_then_continues<input_error, T>(
            make, [&](T& s) { update(s, batch_view(wide.data(), B, D + 1), ys, at); }, good,
            {"13 columns", "expected 12", "row " + std::to_string(at)});
    }
    SECTION("NaN, Inf and -Inf name the row (counted from first_row) and the column") {
        for (const double bad : {nan_v, inf_v, -inf_v}) {
            INFO("value " << bad);
            const auto x = poisoned(at, B, 5, 7, bad);
            refused_then_continues<input_error, T>(
                make, [&](T& s) { update(s, rows_of(x, 0, B), ys, at); }, good,
                {"row " + std::to_string(at + 5), "column 7", "not finite"});
        }
    }
    SECTION("NaN in the very first row of the batch") {
        const auto x = poisoned(at, B, 0, 0, nan_v);
        refused_then_continues<input_error, T>(
            make, [&](T& s) { update(s, rows_of(x, 0, B), ys, at); }, good, {"row " + std::to_string(at), "column 0"});
    }
    SECTION("an element type the library does not know (wrong dtype)") {
        batch_view v = rows_of(data_x(), at, B);
        v.type = static_cast<dtype>(77);
        refused_then_continues<input_error, T>(make, [&](T& s) { update(s, v, ys, at); }, good, {"element type"});
    }
}

}  // namespace

// ---- bad batches ------------------------------------------------------------------------

TEST_CASE("moment_accumulator: every bad batch is refused and changes nothing", "[bad_input][moments]") {
    batch_rows_of_the_table<moment_accumulator>(
        moments_half, [](moment_accumulator& m, const batch_view& x, const target_view& y, std::uint64_t r) { m.update(x, y, r); },
        true);
}

TEST_CASE("moment_accumulator: bad labels and targets are refused and change nothing", "[bad_input][moments]") {
    const std::size_t at = N / 2;
    auto good = [](moment_accumulator& m) { feed(m, N / 2, N); };
    const batch_view x = rows_of(data_x(), at, B);
    std::vector<std::int64_t> y64(data_y().begin() + at, data_y().begin() + at + B);
    SECTION("label == classes (int64)") {
        y64[9] = C;
        refused_then_continues<input_error, moment_accumulator>(
            moments_half, [&](moment_accumulator& m) { m.update(x, target_view::class_ids(y64.data(), B), at); }, good,
            {"row " + std::to_string(at + 9), "label 3", "[0, 3)"});
    }
    SECTION("negative label (int32)") {
        std::vector<std::int32_t> y32(y64.begin(), y64.end());
        y32[4] = -1;
        refused_then_continues<input_error, moment_accumulator>(
            moments_half, [&](moment_accumulator& m) { m.update(x, target_view::class_ids(y32.data(), B), at); }, good,
            {"row " + std::to_string(at + 4), "label -1"});
    }
    SECTION("uint8 label 255") {
        std::vector<std::uint8_t> y8(y64.begin(), y64.end());
        y8[15] = 255;
        refused_then_continues<input_error, moment_accumulator>(
            moments_half, [&](moment_accumulator& m) { m.update(x, target_view::class_ids(y8.data(), B), at); }, good,
            {"row " + std::to_string(at + 15), "label 255"});
    }
    SECTION("a label type the library does not know") {
        target_view t = target_view::class_ids(y64.data(), B);
        t.labels = static_cast<label_type>(99);
        refused_then_continues<input_error, moment_accumulator>(
            moments_half, [&](moment_accumulator& m) { m.update(x, t, at); }, good, {"integer type"});
    }
    SECTION("target row count differs from the batch's") {
        refused_then_continues<input_error, moment_accumulator>(
            moments_half, [&](moment_accumulator& m) { m.update(x, target_view::class_ids(y64.data(), B - 1), at); }, good,
            {"15 rows", "16", "row " + std::to_string(at)});
    }
    SECTION("missing targets, or dense rows where class ids are configured") {
        std::vector<double> dense(B * C, 0.0);
        refused_then_continues<input_error, moment_accumulator>(
            moments_half, [&](moment_accumulator& m) { m.update(x, at); }, good, {"targets"});
        refused_then_continues<input_error, moment_accumulator>(
            moments_half,
            [&](moment_accumulator& m) { m.update(x, target_view::dense_rows(batch_view(dense.data(), B, C)), at); }, good,
            {"class ids"});
    }
}

TEST_CASE("moment_accumulator with dense targets: NaN and wrong width in the targets", "[bad_input][moments]") {
    std::vector<double> t(N * 2);
    for (std::size_t i = 0; i < t.size(); ++i) t[i] = 0.25 * static_cast<double>(i % 7);
    auto make = [&] {
        moment_accumulator m({D, target_mode::dense, 2});
        for (std::size_t r = 0; r < N / 2; r += B)
            m.update(rows_of(data_x(), r, B), target_view::dense_rows(batch_view(t.data() + r * 2, B, 2)), r);
        return m;
    };
    auto good = [&](moment_accumulator& m) {
        for (std::size_t r = N / 2; r < N; r += B)
            m.update(rows_of(data_x(), r, B), target_view::dense_rows(batch_view(t.data() + r * 2, B, 2)), r);
    };
    std::vector<double> bad(t.begin() + N, t.begin() + N + 2 * B);
    bad[2 * 6 + 1] = inf_v;
    refused_then_continues<input_error, moment_accumulator>(
        make,
        [&](moment_accumulator& m) {
            m.update(rows_of(data_x(), N / 2, B), target_view::dense_rows(batch_view(bad.data(), B, 2)), N / 2);
        },
        good, {"row " + std::to_string(N / 2 + 6), "column 1"});
    std::vector<double> wide(B * 3, 0.0);
    refused_then_continues<input_error, moment_accumulator>(
        make,
        [&](moment_accumulator& m) {
            m.update(rows_of(data_x(), N / 2, B), target_view::dense_rows(batch_view(wide.data(), B, 3)), N / 2);
        },
        good, {"3 columns", "expected 2"});
}

TEST_CASE("moment_accumulator: a bad first batch leaves an empty state empty", "[bad_input][moments]") {
    auto make = [] { return moment_accumulator({D, target_mode::class_ids, C}); };
    auto good = [](moment_accumulator& m) { feed(m, 0, N); };
    const auto x = poisoned(0, B, 0, 3, nan_v);
    refused_then_continues<input_error, moment_accumulator>(
        make, [&](moment_accumulator& m) { m.update(rows_of(x, 0, B), labels_of(data_y(), 0, B), 0); }, good,
        {"row 0", "column 3"});
}

TEST_CASE("moment_accumulator with float32 kernels: NaN in float32 input", "[bad_input][moments]") {
    std::vector<float> xf(data_x().begin(), data_x().end());
    auto make = [&] {
        moment_accumulator m({D, target_mode::class_ids, C, true});
        for (std::size_t r = 0; r < N / 2; r += B) m.update(batch_view(xf.data() + r * D, B, D), labels_of(data_y(), r, B), r);
        return m;
    };
    auto good = [&](moment_accumulator& m) {
        for (std::size_t r = N / 2; r < N; r += B) m.update(batch_view(xf.data() + r * D, B, D), labels_of(data_y(), r, B), r);
    };
    std::vector<float> bad(xf.begin() + (N / 2) * D, xf.begin() + (N / 2 + B) * D);
    bad[11 * D + 2] = std::numeric_limits<float>::quiet_NaN();
    refused_then_continues<input_error, moment_accumulator>(
        make, [&](moment_accumulator& m) { m.update(batch_view(bad.data(), B, D), labels_of(data_y(), N / 2, B), N / 2); },
        good, {"row " + std::to_string(N / 2 + 11), "column 2"});
}

TEST_CASE("frequent_directions: every bad batch is refused and changes nothing", "[bad_input][sketch]") {
    batch_rows_of_the_table<frequent_directions>(
        fd_half, [](frequent_directions& f, const batch_view& x, const target_view&, std::uint64_t r) { f.update(x, r); },
        false);
}

TEST_CASE("nystrom_sketch: every bad batch is refused and changes nothing", "[bad_input][sketch]") {
    batch_rows_of_the_table<nystrom_sketch>(
        ny_half, [](nystrom_sketch& s, const batch_view& x, const target_view&, std::uint64_t r) { s.update(x, r); }, false);
}

TEST_CASE("alignment_tracker: every bad batch is refused and changes nothing", "[bad_input][tracker]") {
    batch_rows_of_the_table<alignment_tracker>(
        tracker_half,
        [](alignment_tracker& t, const batch_view& x, const target_view& y, std::uint64_t r) { t.update(x, y, r); }, true);
}

TEST_CASE("alignment_tracker: bad labels are refused and change nothing", "[bad_input][tracker]") {
    const std::size_t at = N / 2;
    auto good = [](alignment_tracker& t) { feed(t, N / 2, N); };
    const batch_view x = rows_of(data_x(), at, B);
    std::vector<std::int64_t> y(data_y().begin() + at, data_y().begin() + at + B);
    SECTION("label out of range, above and below") {
        const std::int64_t bad = GENERATE(std::int64_t(C), std::int64_t(-1), std::int64_t(1) << 40);
        y[2] = bad;
        refused_then_continues<input_error, alignment_tracker>(
            tracker_half, [&](alignment_tracker& t) { t.update(x, target_view::class_ids(y.data(), B), at); }, good,
            {"row " + std::to_string(at + 2), "label " + std::to_string(bad)});
    }
    SECTION("label count differs from the image count") {
        refused_then_continues<input_error, alignment_tracker>(
            tracker_half, [&](alignment_tracker& t) { t.update(x, target_view::class_ids(y.data(), B + 1), at); }, good,
            {"16 images", "17 labels", "row " + std::to_string(at)});
    }
    SECTION("dense rows instead of class ids") {
        std::vector<double> dense(B * C, 0.0);
        refused_then_continues<input_error, alignment_tracker>(
            tracker_half,
            [&](alignment_tracker& t) { t.update(x, target_view::dense_rows(batch_view(dense.data(), B, C)), at); }, good,
            {"class ids"});
    }
}

TEST_CASE("monte_carlo_noise: every bad batch is refused and changes nothing", "[bad_input][noise]") {
    batch_rows_of_the_table<monte_carlo_noise>(
        mc_half, [](monte_carlo_noise& m, const batch_view& x, const target_view&, std::uint64_t r) { m.update(x, r); },
        false);
}

TEST_CASE("monte_carlo_noise: a corruption producing NaN is refused, naming row and column", "[bad_input][noise]") {
    // The same model (name) with a corruption that breaks on one global row: the state is as before.
    auto broken = [](const matrix_t& clean, matrix_t& out, const noise_key& key) {
        make_corrupter(dropout_mc())(clean, out, key);
        for (std::size_t r = 0; r < clean.shape(0); ++r)
            if (key.first_row + r == N / 2 + 3) out(r, 5) = nan_v;
    };
    auto good = [](monte_carlo_noise& m) {
        m.set_corrupter(make_corrupter(dropout_mc()));
        feed(m, N / 2, N);
    };
    refused_then_continues<input_error, monte_carlo_noise>(
        mc_half,
        [&](monte_carlo_noise& m) {
            m.set_corrupter(broken);
            m.update(rows_of(data_x(), N / 2, B), N / 2);
        },
        good, {"row " + std::to_string(N / 2 + 3), "column 5", "not finite"});
}

TEST_CASE("closed-form noise and noise specs: bad arguments are std::invalid_argument naming the part", "[bad_input][noise]") {
    const moment_accumulator m = moments_half();
    const matrix_t sxx = m.sxx(centering::uncentered);
    const matrix_t not_square = xt::zeros<double>({D, D - 1});
    names_all(message_of<std::invalid_argument>(
                  [&] { closed_form_noise(parse_noise_spec("gaussian:sigma=0.1"), not_square, m.n()); }),
              {"square"});
    names_all(message_of<std::invalid_argument>([&] {
                  closed_form_noise(parse_noise_spec("mask:patch=2x2,ratio=0.5"), sxx, m.n(), {5, 5, 1, image_layout::hwc});
              }),
              {"25", "12"});
    names_all(message_of<std::invalid_argument>([] { parse_noise_spec("gaussian:sigma=nan"); }), {"sigma"});
    names_all(message_of<std::invalid_argument>([] { parse_noise_spec("dropout:ratio=1.5"); }), {"ratio"});
    names_all(message_of<std::invalid_argument>([] { parse_noise_spec("blur:radius=2"); }), {"blur"});
}

// ---- wrong dtype in a file ----------------------------------------------------------------

TEST_CASE("a .npy file of a dtype that cannot convert is a file_error naming the file and offset", "[bad_input][readers]") {
    char tmpl[] = "/tmp/recalign-bad-input-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    const std::string dir = tmpl;
    for (const std::string descr : {"<c16", "|O", "<U4", "<M8[s]"}) {
        const std::string path = dir + "/bad.npy";
        std::string header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (2, 2), }";
        header.append(64 - (10 + header.size() + 1) % 64, ' ');
        header += '\n';
        std::string bytes = std::string("\x93NUMPY\x01\x00", 8);
        const std::uint16_t len = static_cast<std::uint16_t>(header.size());
        bytes.append(reinterpret_cast<const char*>(&len), 2);
        bytes += header;
        bytes.append(64, '\0');
        std::ofstream(path, std::ios::binary) << bytes;
        INFO("descr " << descr);
        try {
            io::npy_reader r(path);
            FAIL_CHECK("opened a .npy of dtype " << descr);
        } catch (const file_error& e) {
            CHECK(e.file() == path);
            CHECK(e.offset() > 0);
            CHECK(e.offset() < 10 + header.size());
            CHECK_THAT(std::string(e.what()), Contains(path) && Contains("byte offset") && Contains("dtype"));
        }
        ::unlink(path.c_str());
    }
    ::rmdir(dir.c_str());
}

// ---- checkpoints ------------------------------------------------------------------------

namespace {

struct framing_case {
    std::string name;
    std::string bytes;
    std::uint64_t offset;
    std::vector<std::string> parts;
};

// Every way a checkpoint's framing can be wrong, from the good bytes of a state of kind `kind`.
std::vector<framing_case> bad_framings(const std::string& good, checkpoint::state_kind kind) {
    const auto other_kind = kind == checkpoint::state_kind::moments ? checkpoint::state_kind::frequent_directions
                                                                     : checkpoint::state_kind::moments;
    std::uint64_t hash = 0, dim = 0;
    std::memcpy(&hash, &good[40], 8);
    std::memcpy(&dim, &good[24], 8);
    std::string flipped_payload = good;
    flipped_payload[good.size() / 2 + 32] ^= 0x10;
    std::string flipped_header = good;
    flipped_header[25] ^= 0x01;
    return {
        {"empty", "", 0, {"truncated", "64 bytes"}},
        {"truncated header", good.substr(0, 40), 40, {"truncated"}},
        {"truncated payload", good.substr(0, good.size() - 9), good.size() - 9, {"truncated"}},
        {"not a checkpoint", std::string(100, 'x'), 0, {"magic"}},
        {"corrupt header byte", flipped_header, 60, {"header checksum"}},
        {"corrupt payload byte", flipped_payload, 64, {"checksum"}},
        {"newer format version", with_header_field<std::uint32_t>(good, 8, checkpoint::format_version + 1), 8,
         {"version " + std::to_string(checkpoint::format_version + 1), "reads version"}},
        {"older format version", with_header_field<std::uint32_t>(good, 8, 0), 8, {"version 0"}},
        {"other byte order", with_header_field<std::uint32_t>(good, 12, 0x04030201u), 12, {"byte order"}},
        {"another kind", with_header_field<std::uint32_t>(good, 16, static_cast<std::uint32_t>(other_kind)), 16,
         {checkpoint::kind_name(other_kind), checkpoint::kind_name(kind)}},
        {"another build's configuration hash", with_header_field<std::uint64_t>(good, 40, hash ^ 0x9e3779b97f4a7c15ULL), 64,
         {"hash"}},
        {"header dimension disagreeing with the payload", with_header_field<std::uint64_t>(good, 24, dim + 1), 64,
         {"dimensions"}},
        {"absurd payload size", with_header_field<std::uint64_t>(good, 48, std::uint64_t(1) << 62), 48, {"absurd"}},
    };
}

template <class T, class Load>
void every_bad_framing_is_a_file_error(const T& state, Load load) {
    const std::string good = testing::saved(state);
    for (const framing_case& c : bad_framings(good, T::kind)) {
        INFO("case: " << c.name);
        // The object a failed load was meant to replace stays as it was.
        T target = state;
        try {
            target = load(c.bytes);
            FAIL_CHECK("loaded");
        } catch (const file_error& e) {
            CHECK(e.file() == "<stream>");
            CHECK(e.offset() == c.offset);
            names_all(e.what(), c.parts);
            CHECK_THAT(std::string(e.what()), Contains("<stream>: byte offset " + std::to_string(c.offset)));
        }
        CHECK(testing::saved(target) == good);
    }
}

}  // namespace

TEST_CASE("checkpoint load: every bad framing of every kind is a file_error at the right offset", "[bad_input][checkpoint]") {
    auto via_stream = [](auto tag) {
        using T = decltype(tag);
        return [](const std::string& b) {
            std::istringstream is(b, std::ios::binary);
            return T::load(is);
        };
    };
    SECTION("moment_accumulator") { every_bad_framing_is_a_file_error(moments_half(), via_stream(moment_accumulator({1}))); }
    SECTION("class_moments") { every_bad_framing_is_a_file_error(class_moments_half(), via_stream(class_moments({1, 1}))); }
    SECTION("frequent_directions") {
        every_bad_framing_is_a_file_error(fd_half(), via_stream(frequent_directions({1, 1, centering::centered})));
    }
    SECTION("nystrom_sketch") { every_bad_framing_is_a_file_error(ny_half(), via_stream(nystrom_sketch(ny_opts()))); }
    SECTION("alignment_tracker") {
        every_bad_framing_is_a_file_error(tracker_half(), via_stream(alignment_tracker(tracker_opts())));
    }
    SECTION("monte_carlo_noise") {
        every_bad_framing_is_a_file_error(mc_half(), [](const std::string& b) {
            std::istringstream is(b, std::ios::binary);
            return monte_carlo_noise::load(is, make_corrupter(dropout_mc()));
        });
    }
}

TEST_CASE("checkpoint load_file: errors name the file; the file and the state are untouched", "[bad_input][checkpoint]") {
    char tmpl[] = "/tmp/recalign-bad-input-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    const std::string path = std::string(tmpl) + "/run.ckpt";
    const moment_accumulator m = moments_half();
    const std::string newer =
        with_header_field<std::uint32_t>(testing::saved(m), 8, checkpoint::format_version + 1);
    std::ofstream(path, std::ios::binary) << newer;
    moment_accumulator target = m;
    try {
        target = checkpoint::load_file<moment_accumulator>(path);
        FAIL_CHECK("loaded");
    } catch (const file_error& e) {
        CHECK(e.file() == path);
        CHECK(e.offset() == 8);
        CHECK_THAT(std::string(e.what()), StartsWith(path + ": byte offset 8: "));
    }
    CHECK(testing::saved(target) == testing::saved(m));
    std::ifstream is(path, std::ios::binary);
    CHECK(std::string(std::istreambuf_iterator<char>(is), {}) == newer);
    // A file that cannot be opened has no byte to name: "FILE: cannot open ...", offset() empty.
    try {
        checkpoint::load_file<moment_accumulator>(path + ".missing");
        FAIL("a missing checkpoint loaded");
    } catch (const file_error& e) {
        CHECK(e.file() == path + ".missing");
        CHECK_FALSE(e.offset().has_value());
        CHECK_THAT(std::string(e.what()), StartsWith(path + ".missing: cannot open"));
    }
    // A directory opens as a stream whose reads fail: said as what it is, not as a truncated file.
    try {
        checkpoint::load_file<moment_accumulator>(tmpl);
        FAIL("a directory loaded");
    } catch (const file_error& e) {
        CHECK_FALSE(e.offset().has_value());
        CHECK(std::string(e.what()) == std::string(tmpl) + ": is a directory, not a checkpoint file");
    }
    ::unlink(path.c_str());
    ::rmdir(tmpl);
}

// ---- merging incompatible states ----------------------------------------------------------

namespace {
template <class T>
void merge_refused(const std::function<T()>& make, const T& incompatible, const std::vector<std::string>& parts) {
    refused_then_continues<std::invalid_argument, T>(
        make, [&](T& s) { s.merge(incompatible); },
        [&](T& s) {
            // A compatible merge afterwards: the other half of the data.
            T other = make();
            s.merge(other);
        },
        parts);
}
}  // namespace

TEST_CASE("merging incompatible states throws naming both values and changes nothing", "[bad_input][merge]") {
    SECTION("moment_accumulator: dimension, target mode, classes") {
        moment_accumulator wide({D + 1, target_mode::class_ids, C});
        merge_refused<moment_accumulator>(moments_half, wide, {"dimension 12 and 13"});
        moment_accumulator none({D});
        merge_refused<moment_accumulator>(moments_half, none, {"class ids", "none"});
        moment_accumulator dense({D, target_mode::dense, C});
        merge_refused<moment_accumulator>(moments_half, dense, {"class ids", "dense"});
        moment_accumulator four({D, target_mode::class_ids, C + 1});
        feed(four, 0, 16);
        merge_refused<moment_accumulator>(moments_half, four, {"x 3", "x 4"});
    }
    SECTION("frequent_directions: dimension, ell, centering") {
        merge_refused<frequent_directions>(fd_half, frequent_directions({D + 1, 4, centering::centered}), {"12 and 13"});
        merge_refused<frequent_directions>(fd_half, frequent_directions({D, 5, centering::centered}), {"ell 4 and 5"});
        merge_refused<frequent_directions>(fd_half, frequent_directions({D, 4, centering::uncentered}),
                                           {"centered", "uncentered"});
    }
    SECTION("nystrom_sketch: dimension, rank, seed, centering, pass") {
        nystrom_options o = ny_opts();
        o.dim = D + 1;
        merge_refused<nystrom_sketch>(ny_half, nystrom_sketch(o), {"dimension 12 and 13"});
        o = ny_opts();
        o.rank = 4;
        merge_refused<nystrom_sketch>(ny_half, nystrom_sketch(o), {"3 + 2", "4 + 2"});
        merge_refused<nystrom_sketch>(ny_half, nystrom_sketch(ny_opts(6)), {"seed 5 and 6"});
        o = ny_opts();
        o.center = centering::uncentered;
        merge_refused<nystrom_sketch>(ny_half, nystrom_sketch(o), {"centered and uncentered"});
        nystrom_sketch later = ny_half();
        later.next_pass();
        merge_refused<nystrom_sketch>(ny_half, later, {"pass 0 and 1"});
    }
    SECTION("alignment_tracker: classes, noises") {
        tracker_options o = tracker_opts();
        o.classes = C + 1;
        merge_refused<alignment_tracker>(tracker_half, alignment_tracker(o), {"classes 3", "classes 4"});
        o = tracker_opts();
        o.noises.pop_back();
        merge_refused<alignment_tracker>(tracker_half, alignment_tracker(o), {"draws=4", "gaussian"});
    }
    SECTION("monte_carlo_noise: seed, draws, name") {
        monte_carlo_options o = mc_opts();
        o.seed = 10;
        merge_refused<monte_carlo_noise>(mc_half, monte_carlo_noise(o, {}), {"seed 9", "seed 10"});
        o = mc_opts();
        o.draws = 8;
        merge_refused<monte_carlo_noise>(mc_half, monte_carlo_noise(o, {}), {"draws 4", "draws 8"});
        o = mc_opts();
        o.name = "another model";
        merge_refused<monte_carlo_noise>(mc_half, monte_carlo_noise(o, {}), {"another model"});
    }
}
