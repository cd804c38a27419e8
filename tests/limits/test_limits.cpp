// Limits (issue 8): size arithmetic near the 64-bit limits is refused cleanly, through the
// one checked helper (recalign/core/checked.hpp), instead of wrapping; files whose headers
// claim 2^40 elements or more are refused by the C++ readers before anything is allocated.
// These tests also run in the sanitized suite (tests/SANITIZERS.md), where UBSan would stop
// on a signed overflow and ASan on the out-of-bounds access a wrapped size leads to.
#include <catch2/catch.hpp>
#include <cereal/archives/portable_binary.hpp>

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <recalign/align/noise.hpp>
#include <recalign/align/tracker.hpp>
#include <recalign/core/batch.hpp>
#include <recalign/core/checked.hpp>
#include <recalign/core/hash.hpp>
#include <recalign/core/serial.hpp>
#include <recalign/io/files.hpp>
#include <recalign/io/idx.hpp>
#include <recalign/io/npy.hpp>
#include <recalign/io/raw.hpp>
#include <recalign/io/source.hpp>
#include <recalign/sketch/frequent_directions.hpp>
#include <recalign/sketch/nystrom_sketch.hpp>
#include <recalign/stats/moments.hpp>

#include "../common/helpers.hpp"

using namespace recalign;

namespace {

constexpr std::uint64_t max64 = std::numeric_limits<std::uint64_t>::max();
constexpr std::uint64_t two32 = std::uint64_t(1) << 32;
constexpr std::uint64_t two40 = std::uint64_t(1) << 40;
constexpr std::size_t int_max = static_cast<std::size_t>(std::numeric_limits<int>::max());


// A scratch directory per run under $TMPDIR (meson points it into the build folder); the
// files are a few hundred bytes each.
std::string scratch(const std::string& name) {
    static std::string dir;
    if (dir.empty()) {
        const char* base = std::getenv("TMPDIR");
        std::string tmpl = std::string(base && *base ? base : "/tmp") + "/recalign-limits-XXXXXX";
        std::vector<char> buf(tmpl.begin(), tmpl.end());
        buf.push_back('\0');
        REQUIRE(::mkdtemp(buf.data()) != nullptr);
        dir = buf.data();
    }
    return dir + "/" + name;
}

void write_file(const std::string& path, const std::string& bytes) {
    std::ofstream os(path, std::ios::binary | std::ios::trunc);
    os.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    REQUIRE(os.good());
}

// A version 1.0 .npy header for `shape_text` (a Python tuple) and nothing else.
std::string npy_header_only(const std::string& descr, const std::string& shape_text) {
    std::string dict = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape_text + ", }";
    while ((10 + dict.size() + 1) % 64 != 0) dict += ' ';
    dict += '\n';
    std::string out = "\x93NUMPY";
    out += '\x01';
    out += '\x00';
    out += static_cast<char>(dict.size() & 0xff);
    out += static_cast<char>(dict.size() >> 8);
    return out + dict;
}

std::string idx_header_only(unsigned char type, const std::vector<std::uint32_t>& dims) {
    std::string out{'\0', '\0', static_cast<char>(type), static_cast<char>(dims.size())};
    for (std::uint32_t d : dims)
        for (int s = 24; s >= 0; s -= 8) out += static_cast<char>((d >> s) & 0xff);
    return out;
}

template <class F>
void refused_naming(const std::string& path, F&& open, const std::string& fragment) {
    try {
        open();
        FAIL("accepted " << path);
    } catch (const file_error& e) {
        INFO(e.what());
        CHECK(e.file() == path);
        CHECK_THAT(e.what(), Catch::Contains(path) && Catch::Contains(fragment));
    }
}

}  // namespace

TEST_CASE("checked_mul / checked_product / checked_bytes refuse what does not fit", "[limits][checked]") {
    CHECK(checked_mul(two32 - 1, two32 + 1, "x") == max64);  // (2^32 - 1)(2^32 + 1) = 2^64 - 1: fits
    CHECK_THROWS_AS(checked_mul(two32 + 1, two32 - 1 + 2, "x"), size_overflow);
    CHECK_THROWS_AS(checked_mul(two32, two32, "x"), size_overflow);  // 2^64 wraps to 0
    CHECK_THROWS_AS(checked_mul(max64 / 2 + 1, 2, "x"), size_overflow);  // SIZE_MAX/2 + 1 doubled
    CHECK(checked_mul(max64 / 2, 2, "x") == max64 - 1);
    CHECK(checked_mul(0, max64, "x") == 0);
    CHECK_THROWS_AS(checked_add(max64, 1, "x"), size_overflow);
    CHECK(checked_add(max64 - 1, 1, "x") == max64);
    // Products just above 2^63 fit in 64 bits but are refused as byte counts (> PTRDIFF_MAX).
    const std::uint64_t above63 = checked_product({two32 + 1, std::uint64_t(1) << 31}, "x");
    CHECK(above63 == (std::uint64_t(1) << 63) + (std::uint64_t(1) << 31));
    CHECK_THROWS_AS(checked_bytes<char>(above63, "x"), size_overflow);
    CHECK_THROWS_AS(checked_product({std::uint64_t(1) << 31, two32, 3}, "x"), size_overflow);  // 3 x 2^63
    CHECK_THROWS_AS(checked_bytes<char>((std::uint64_t(1) << 63) + 1, "x"), size_overflow);
    CHECK(checked_bytes<char>((std::uint64_t(1) << 63) - 1, "x") == (std::uint64_t(1) << 63) - 1);
    CHECK_THROWS_AS(checked_bytes<double>(std::uint64_t(1) << 60, "x"), size_overflow);  // 2^63 bytes
    CHECK(checked_bytes<double>((std::uint64_t(1) << 60) - 1, "x") == (std::uint64_t(1) << 63) - 8);
    // A zero extent does not hide an overflowing prefix (xtensor derives strides from it).
    CHECK_THROWS_AS(checked_product({two32 + 1, two32 + 1, 0}, "x"), size_overflow);
    CHECK(checked_product({two32, 0, two32 - 1}, "x") == 0);
    // The message names what was sized and is an invalid_argument (bad input, not a crash).
    CHECK_THROWS_AS(checked_mul(two32, two32, "x"), std::invalid_argument);
    CHECK_THROWS_WITH(checked_mul(two32, two32, "the widget"),
                      Catch::Contains("the widget") && Catch::Contains("4294967296 x 4294967296") &&
                          Catch::Contains("overflows"));
}

TEST_CASE("batch views whose rows x columns overflow are refused before any element is read", "[limits][batch]") {
    const double cell[4] = {1, 2, 3, 4};
    double out[4] = {};
    // SIZE_MAX/2 + 1 rows of 2 columns: the product wraps to 0 (nothing checked, nothing read).
    CHECK_THROWS_AS(to_double_checked(batch_view(cell, max64 / 2 + 1, 2), 2, out), size_overflow);
    // 2^32 + 1 rows of 2^32 - 1 columns: 2^64 - 1 values, more than any buffer can hold.
    CHECK_THROWS_AS(to_double_checked(batch_view(cell, two32 + 1, two32 - 1), two32 - 1, out), size_overflow);
    double sums[2] = {};
    const double shift[2] = {};
    CHECK_THROWS_AS(to_shifted_checked(batch_view(cell, max64 / 2 + 1, 2), 2, shift, out, 2, sums), size_overflow);
    const std::int64_t ids[2] = {0, 1};
    // 2^32 + 1 labels one-hot over 2^32 classes: the memset size would wrap.
    CHECK_THROWS_AS(targets_to_double_checked(target_view::class_ids(ids, two32 + 1), two32 + 1, two32, out),
                    size_overflow);
    CHECK(sums[0] == 0.0);
    CHECK(out[0] == 0.0);
}

TEST_CASE("accumulators refuse states whose sizes overflow, before allocating", "[limits][state]") {
    testing::reset_peak_rss();
    const long before = testing::peak_rss_kb();
    // D x D of the exact moments: (2^31 - 1)^2 doubles is 2^65 bytes.
    CHECK_THROWS_AS(moment_accumulator(moment_options{int_max, target_mode::none, 0}), size_overflow);
    CHECK_THROWS_WITH(moment_accumulator(moment_options{int_max, target_mode::none, 0}),
                      Catch::Contains("moment_accumulator") && Catch::Contains("overflows"));
    // Frequent Directions: a 2ell x D buffer of (2^31 - 2) x (2^31 - 1) doubles.
    CHECK_THROWS_AS(frequent_directions(frequent_directions_options{int_max, (std::size_t(1) << 30) - 1}), size_overflow);
    // Nyström: D x (k + p + probes) with k + p near D.
    nystrom_options no;
    no.dim = int_max;
    no.rank = std::size_t(1) << 30;
    no.oversampling = (std::size_t(1) << 30) - 1;
    no.probes = 10;
    CHECK_THROWS_AS(nystrom_sketch(no), size_overflow);
    // Monte-Carlo noise sums: D x D again.
    monte_carlo_options mo;
    mo.dim = int_max;
    mo.draws = 2;
    mo.replicates = 2;
    CHECK_THROWS_AS(monte_carlo_noise(mo, make_corrupter(parse_noise_spec("gaussian:sigma=1"))), size_overflow);
    // Everything above was refused before its allocation (the smallest of them is 16 GiB).
    CHECK(testing::peak_rss_kb() - before < 50 * 1024);
}

TEST_CASE("image shapes whose H x W x C wraps are refused, not matched to D", "[limits][noise]") {
    // 2147418113 x 1718039348 x 5 = 2^64 + 4: wraps to 4 = D in 64-bit arithmetic.
    const image_shape wraps{2147418113u, 1718039348u, 5u, image_layout::hwc};
    CHECK_THROWS_AS(wraps.dim(), size_overflow);
    CHECK_THROWS_AS((image_shape{two32 + 1, two32 + 1, 1, image_layout::hwc}.dim()), size_overflow);
    CHECK((image_shape{two32 - 1, two32 + 1, 1, image_layout::hwc}.dim()) == max64);  // fits exactly
    tracker_options o;
    o.dim = 4;
    o.classes = 2;
    o.shape = wraps;
    CHECK_THROWS_AS(alignment_tracker(o), size_overflow);
    // A mask noise would build a patch map of H x W x C entries from the wrapped size.
    CHECK_THROWS_AS(make_patch_map(wraps, 2, 2), size_overflow);
    noise_spec mask = parse_noise_spec("mask:patch=2x2,ratio=0.5");
    mask.shape = wraps;
    const matrix_t sxx = xt::eye<double>(4);
    CHECK_THROWS_AS(closed_form_noise(mask, sxx, 10), std::invalid_argument);
    CHECK_THROWS_AS(make_corrupter(mask), std::invalid_argument);
    // Through a noise spec's text: three 9-digit extents multiply past 2^64.
    const noise_spec big = parse_noise_spec("mask:patch=1x1,ratio=0.5,shape=999999999x999999999x999999999");
    tracker_options t;
    t.dim = 4;
    t.classes = 2;
    t.noises = {big};
    CHECK_THROWS_AS(alignment_tracker(t), std::invalid_argument);
}

TEST_CASE("a tracker checkpoint whose image shape wraps to D is refused as corrupt", "[limits][checkpoint]") {
    tracker_options o;
    o.dim = 4;
    o.classes = 2;
    o.shape = {2, 2, 1, image_layout::hwc};
    alignment_tracker t(o);
    const double x[8] = {1, 2, 3, 4, 5, 6, 7, 9};
    const std::int64_t y[2] = {0, 1};
    t.update(batch_view(x, 2, 4), target_view::class_ids(y, 2));
    std::ostringstream saved(std::ios::binary);
    checkpoint::save_state(saved, t);
    std::string bytes = saved.str();
    // Payload: the portable-binary byte-order tag, then dim, classes, H, W, C as uint64.
    const std::size_t at = checkpoint::header_bytes + 1 + 16;
    const std::uint64_t hwc[3] = {2147418113u, 1718039348u, 5u};  // product 2^64 + 4
    for (int i = 0; i < 3; ++i) {
        std::uint64_t old = 0;
        std::memcpy(&old, &bytes[at + 8 * i], 8);
        REQUIRE(old == (i < 2 ? 2u : 1u));  // the layout this test assumes
        std::memcpy(&bytes[at + 8 * i], &hwc[i], 8);
    }
    // Valid checksums (payload CRC at byte 56, header CRC at 60): only the content is wrong.
    const std::uint32_t payload_crc = crc32(bytes.data() + checkpoint::header_bytes, bytes.size() - checkpoint::header_bytes);
    std::memcpy(&bytes[56], &payload_crc, 4);
    const std::uint32_t header_crc = crc32(bytes.data(), 60);
    std::memcpy(&bytes[60], &header_crc, 4);
    const std::string path = scratch("wrapping_shape.ckpt");
    write_file(path, bytes);
    refused_naming(path, [&] { checkpoint::load_file<alignment_tracker>(path); }, "overflows");
}

TEST_CASE("file headers claiming 2^40 elements or more are refused before allocation", "[limits][readers]") {
    testing::reset_peak_rss();
    const long before = testing::peak_rss_kb();

    SECTION(".npy") {
        const std::string square = scratch("square.npy");
        write_file(square, npy_header_only("<f8", "(1048576, 1048576)"));  // 2^40 float64, 128 bytes on disk
        refused_naming(square, [&] { io::npy_reader r(square); }, "truncated");
        const std::string flat = scratch("flat.npy");
        write_file(flat, npy_header_only("<f8", "(1099511627776,)"));  // (2^40,)
        refused_naming(flat, [&] { io::npy_reader r(flat); }, "truncated");
        const std::string wraps = scratch("wraps.npy");
        write_file(wraps, npy_header_only("<f8", "(4294967297, 4294967297)"));  // (2^32 + 1)^2 > 2^64
        refused_naming(wraps, [&] { io::npy_reader r(wraps); }, "overflows");
        const std::string near = scratch("near.npy");
        write_file(near, npy_header_only("<u1", "(4611686018427387903, 4)"));  // 2^64 - 4 values
        refused_naming(near, [&] { io::npy_reader r(near); }, "overflows");
        const std::string wide = scratch("wide.npy");
        write_file(wide, npy_header_only("<f8", "(1, 2147483649)"));  // a row of 2^31 + 1 values
        refused_naming(wide, [&] { io::npy_reader r(wide); }, "too wide");
        // Through a data source too (what the CLI opens).
        io::source_options so;
        so.images = {square};
        refused_naming(square, [&] { io::data_source s(so); }, "truncated");
    }
    SECTION("IDX") {
        const std::string square = scratch("square.idx");
        write_file(square, idx_header_only(0x0D, {1u << 20, 1u << 20}));  // 2^40 float32
        refused_naming(square, [&] { io::idx_reader r(square); }, "announces");
        const std::string wraps = scratch("wraps.idx");
        write_file(wraps, idx_header_only(0x08, {0xffffffffu, 0xffffffffu, 0xffffffffu}));  // 2^96
        refused_naming(wraps, [&] { io::idx_reader r(wraps); }, "overflows");
        const std::string wide = scratch("wide.idx");
        write_file(wide, idx_header_only(0x08, {1, 1u << 16, (1u << 15) + 1}));  // rows of 2^31 + 2^16 values
        refused_naming(wide, [&] { io::idx_reader r(wide); }, "too wide");
        // A gzip stream of a few dozen bytes announcing 2^40 values: refused by the data
        // source before any block is read (deflate cannot expand that much).
        const std::string gz = scratch("square.idx.gz");
        {
            const std::string plain = idx_header_only(0x08, {1u << 20, 1u << 20}) + std::string(64, '\0');
            gzFile f = gzopen(gz.c_str(), "wb");
            REQUIRE(f != nullptr);
            REQUIRE(gzwrite(f, plain.data(), static_cast<unsigned>(plain.size())) == static_cast<int>(plain.size()));
            REQUIRE(gzclose(f) == Z_OK);
        }
        io::source_options so;
        so.images = {gz};
        refused_naming(gz, [&] { io::data_source s(so); }, "gzip");
    }
    SECTION("raw") {
        const std::string small = scratch("small.raw");
        write_file(small, std::string(4096, '\0'));
        refused_naming(small, [&] { io::raw_reader r(small, 1u << 20, 1u << 20, dtype::f64); }, "needs 8796093022208 bytes");
        // N x D x 8 past 2^64: said, not wrapped to a size that might match.
        refused_naming(small, [&] { io::raw_reader r(small, std::uint64_t(1) << 40, std::uint64_t(1) << 30, dtype::f64); },
                       "overflows");
        refused_naming(small, [&] { io::raw_reader r(small, max64 / 2 + 1, 2, dtype::u8); }, "overflows");
        CHECK_THROWS_WITH(io::raw_reader(small, 1, (std::uint64_t(1) << 31) + 1, dtype::u8),
                          Catch::Contains(small) && Catch::Contains("out of range"));
    }
    SECTION("checkpoint") {
        // A header claiming the largest payload it may (1 TiB) on a 64-byte file: refused at
        // its end, having buffered only what arrived.
        checkpoint::header h;
        h.kind = checkpoint::state_kind::moments;
        h.dim = 1u << 20;
        std::ostringstream os(std::ios::binary);
        checkpoint::write_framed(os, h, "");
        std::string bytes = os.str();
        const std::uint64_t claim = two40;
        std::memcpy(&bytes[48], &claim, 8);
        const std::uint32_t crc = crc32(bytes.data(), 60);
        std::memcpy(&bytes[60], &crc, 4);
        const std::string path = scratch("claims.ckpt");
        write_file(path, bytes);
        refused_naming(path, [&] { checkpoint::load_file<moment_accumulator>(path); }, "truncated");
        // A self-consistent payload (valid checksums) announcing D = C = 2^31: (D + C)^2 = 2^64.
        std::ostringstream payload(std::ios::binary);
        {
            cereal::PortableBinaryOutputArchive ar(payload);
            ar(std::uint64_t(1) << 31, std::uint8_t(1), std::uint64_t(1) << 31, std::uint8_t(0), std::uint64_t(5));
        }
        checkpoint::header hm;
        hm.kind = checkpoint::state_kind::moments;
        hm.dim = std::uint64_t(1) << 31;
        hm.aux = std::uint64_t(1) << 31;
        std::ostringstream framed(std::ios::binary);
        checkpoint::write_framed(framed, hm, payload.str());
        const std::string state = scratch("state.ckpt");
        write_file(state, framed.str());
        refused_naming(state, [&] { checkpoint::load_file<moment_accumulator>(state); }, "overflows");
    }
    CHECK(testing::peak_rss_kb() - before < 50 * 1024);
}
