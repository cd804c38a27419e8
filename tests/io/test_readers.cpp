// Unit tests of the .npy and raw readers and of data_source: values in every byte order and
// memory order, header validation (every truncation of a file is a file_error, never a
// crash or another exception), skip/limit/seek, fingerprints and label scanning.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <thread>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "../common/temp_dir.hpp"

#include <recalign/core/errors.hpp>
#include <recalign/io/npy.hpp>
#include <recalign/io/raw.hpp>
#include <recalign/io/source.hpp>

using namespace recalign;

namespace {

// One directory for the whole run, removed with its files when the run ends.
std::string temp_path(const std::string& name) {
    static const testing::temp_dir dir("recalign-readers");
    return dir.path + "/" + name;
}

void write_bytes(const std::string& path, const std::string& bytes) {
    std::ofstream os(path, std::ios::binary);
    os.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A .npy file written by hand (independently of NumPy): header dict padded to 64 bytes.
std::string npy_bytes(const std::string& descr, bool fortran, const std::string& shape, const std::string& data,
                      int version = 1) {
    std::string dict = "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") +
                       ", 'shape': " + shape + ", }";
    const std::size_t prefix = version == 1 ? 10 : 12;
    while ((prefix + dict.size() + 1) % 64) dict += ' ';
    dict += '\n';
    std::string out = "\x93NUMPY";
    out += static_cast<char>(version);
    out += '\0';
    const std::uint32_t len = static_cast<std::uint32_t>(dict.size());
    out += static_cast<char>(len & 0xff);
    out += static_cast<char>((len >> 8) & 0xff);
    if (version > 1) {
        out += static_cast<char>((len >> 16) & 0xff);
        out += static_cast<char>((len >> 24) & 0xff);
    }
    return out + dict + data;
}

template <class T>
std::string encode(const std::vector<T>& v, bool big_endian) {
    std::string out;
    for (T x : v) {
        char b[sizeof(T)];
        std::memcpy(b, &x, sizeof(T));
        if (big_endian) std::reverse(b, b + sizeof(T));
        out.append(b, sizeof(T));
    }
    return out;
}

std::vector<double> read_all(io::npy_reader& r, std::size_t block) {
    std::vector<double> out;
    io::row_block b;
    while (r.read(block, b) > 0) {
        for (std::size_t i = 0; i < b.rows * b.cols; ++i) {
            if (b.type == dtype::u8) out.push_back(b.bytes[i]);
            else if (b.type == dtype::f32) out.push_back(reinterpret_cast<const float*>(b.bytes.data())[i]);
            else out.push_back(reinterpret_cast<const double*>(b.bytes.data())[i]);
        }
    }
    return out;
}

}  // namespace

TEST_CASE("npy: values in both byte orders, versions 1-3") {
    const std::vector<std::int16_t> v = {1, -2, 300, -32768, 32767, 0};  // 3 x 2
    for (int version : {1, 2, 3})
        for (bool be : {false, true}) {
            const std::string p = temp_path("i2.npy");
            write_bytes(p, npy_bytes(be ? ">i2" : "<i2", false, "(3, 2)", encode(v, be), version));
            io::npy_reader r(p);
            CHECK(r.rows() == 3);
            CHECK(r.cols() == 2);
            CHECK(r.delivery_type() == dtype::f64);
            const std::vector<double> got = read_all(r, 2);
            REQUIRE(got.size() == 6);
            for (std::size_t i = 0; i < 6; ++i) CHECK(got[i] == v[i]);
        }
}

TEST_CASE("npy: float16 and uint64 conversions") {
    // 1.0, -2.5, 65504 (largest half), 2^-24 (smallest subnormal)
    const std::vector<std::uint16_t> h = {0x3C00, 0xC100, 0x7BFF, 0x0001};
    const std::string p = temp_path("f2.npy");
    write_bytes(p, npy_bytes("<f2", false, "(4,)", encode(h, false)));
    io::npy_reader r(p);
    const std::vector<double> got = read_all(r, 10);
    REQUIRE(got.size() == 4);
    CHECK(got[0] == 1.0);
    CHECK(got[1] == -2.5);
    CHECK(got[2] == 65504.0);
    CHECK(got[3] == std::ldexp(1.0, -24));
    const std::vector<std::uint64_t> u = {0, 1ULL << 40, 7};
    write_bytes(p, npy_bytes(">u8", false, "(3,)", encode(u, true)));
    io::npy_reader r2(p);
    const std::vector<double> g2 = read_all(r2, 10);
    CHECK(g2 == std::vector<double>{0.0, std::ldexp(1.0, 40), 7.0});
}

TEST_CASE("npy: Fortran order gives the same rows as C order, in any block size") {
    // logical array (4, 2, 3), value = 100 i + 10 j + k
    std::vector<double> c_order, f_order(24);
    for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 2; ++j)
            for (int k = 0; k < 3; ++k) c_order.push_back(100 * i + 10 * j + k);
    for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 2; ++j)
            for (int k = 0; k < 3; ++k) f_order[static_cast<std::size_t>(i + 4 * (j + 2 * k))] = 100 * i + 10 * j + k;
    const std::string p = temp_path("f.npy");
    write_bytes(p, npy_bytes(">f8", true, "(4, 2, 3)", encode(f_order, true)));
    for (std::size_t block : {1, 3, 4, 100}) {
        io::npy_reader r(p);
        CHECK(r.cols() == 6);
        CHECK(read_all(r, block) == c_order);
    }
    io::npy_reader r(p);
    r.skip(2);
    io::row_block b;
    REQUIRE(r.read(1, b) == 1);
    const auto* d = reinterpret_cast<const double*>(b.bytes.data());
    CHECK(std::vector<double>(d, d + 6) == std::vector<double>(c_order.begin() + 12, c_order.begin() + 18));
}

TEST_CASE("npy: uint8 and native float32 are delivered without widening") {
    const std::string p = temp_path("u1.npy");
    write_bytes(p, npy_bytes("|u1", false, "(2, 2)", std::string("\x01\x02\x03\xff", 4)));
    io::npy_reader r(p);
    CHECK(r.delivery_type() == dtype::u8);
    CHECK(read_all(r, 5) == std::vector<double>{1, 2, 3, 255});
    write_bytes(p, npy_bytes("<f4", false, "(1, 2)", encode(std::vector<float>{0.5f, -1.25f}, false)));
    io::npy_reader r2(p);
    CHECK(r2.delivery_type() == dtype::f32);
    CHECK(read_all(r2, 5) == std::vector<double>{0.5, -1.25});
}

TEST_CASE("npy: every truncation is a file_error naming the file") {
    const std::string full = npy_bytes("<f8", false, "(3, 2)", encode(std::vector<double>{1, 2, 3, 4, 5, 6}, false));
    const std::string p = temp_path("t.npy");
    for (std::size_t len = 0; len < full.size(); ++len) {
        write_bytes(p, full.substr(0, len));
        INFO("length " << len);
        try {
            io::npy_reader r(p);
            FAIL("a truncated file was accepted");
        } catch (const file_error& e) {
            CHECK(e.file() == p);
            CHECK(e.offset() <= full.size());
        }
    }
}

TEST_CASE("npy: malformed headers are refused before allocation") {
    const std::string p = temp_path("bad.npy");
    auto refused = [&](const std::string& bytes, const std::string& needle) {
        write_bytes(p, bytes);
        try {
            io::npy_reader r(p);
            FAIL("accepted: " << needle);
        } catch (const file_error& e) {
            INFO(e.what());
            CHECK(std::string(e.what()).find(needle) != std::string::npos);
        }
    };
    refused(npy_bytes("<f8", false, "(1000000000000000, 1000000000)", std::string(64, '\0')), "overflow");
    refused(npy_bytes("<f8", false, "(100000000, 784)", std::string(64, '\0')), "truncated");
    refused(npy_bytes("<c8", false, "(2,)", std::string(16, '\0')), "unsupported");
    refused(npy_bytes("<f8", false, "()", std::string(8, '\0')), "0-d");
    refused(std::string("\x93NUMPY\x01\x00\x10\x00{'descr': '<f8'}", 26), "fortran_order");
    refused(std::string("\x93NUMPY\x04\x00\x10\x00", 10) + std::string(16, ' '), "version");
    refused(std::string("PK\x03\x04") + std::string(60, '\0'), "magic");
    refused(std::string("\x93NUMPY\x02\x00\xff\xff\xff\x7f", 12) + "{}", "header length");
}

TEST_CASE("raw: shape checked against the file size; rows inferred with N = 0") {
    const std::string p = temp_path("x.raw");
    write_bytes(p, encode(std::vector<float>{1, 2, 3, 4, 5, 6}, false));
    io::raw_reader r(p, 0, 3, dtype::f32);
    CHECK(r.rows() == 2);
    io::row_block b;
    REQUIRE(r.read(10, b) == 2);
    CHECK(reinterpret_cast<const float*>(b.bytes.data())[5] == 6.0f);
    CHECK_THROWS_AS(io::raw_reader(p, 3, 3, dtype::f32), file_error);
    CHECK_THROWS_AS(io::raw_reader(p, 0, 4, dtype::f32), file_error);
    CHECK_THROWS_AS(io::raw_reader(p, 0, 0, dtype::f32), std::invalid_argument);
    CHECK(io::parse_raw_dtype("f8") == dtype::f64);
    CHECK_THROWS_AS(io::parse_raw_dtype("f16"), std::invalid_argument);
}

TEST_CASE("data_source: range, batches, seek, scale, labels and fingerprints") {
    std::vector<double> x(50 * 4);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<double>(i);
    std::vector<std::int32_t> y(50);
    for (std::size_t i = 0; i < y.size(); ++i) y[i] = static_cast<std::int32_t>(i % 6);
    const std::string xp = temp_path("src_x.npy"), yp = temp_path("src_y.npy");
    write_bytes(xp, npy_bytes("<f8", false, "(50, 4)", encode(x, false)));
    write_bytes(yp, npy_bytes(">i4", false, "(50,)", encode(y, true)));
    io::source_options o;
    o.images = {xp};
    o.labels = {yp};
    o.skip = 5;
    o.limit = 20;
    o.batch = 7;
    o.scale = 0.5;
    io::data_source s(o);
    CHECK(s.format() == io::data_format::npy);
    CHECK(s.dim() == 4);
    CHECK(s.total() == 20);
    CHECK(s.scan_classes() == 6);
    io::source_batch b;
    std::vector<std::size_t> sizes;
    std::vector<double> seen;
    auto scaled_rows = [](const io::source_batch& batch) {  // what an accumulator reads
        std::vector<double> x(batch.rows * batch.cols);
        to_double_checked(batch.view(), batch.cols, x.data(), batch.first_row);
        return x;
    };
    while (s.next(b)) {
        sizes.push_back(b.rows);
        CHECK(b.labels.size() == b.rows);
        CHECK(b.labels[0] == static_cast<std::int64_t>(b.first_row % 6));
        CHECK(b.type() == dtype::f64);
        CHECK(reinterpret_cast<const double*>(b.block.bytes.data())[0] == static_cast<double>(b.first_row * 4));  // unscaled
        CHECK(b.view().scale == 0.5);  // the scale travels with the view
        const std::vector<double> x = scaled_rows(b);
        seen.insert(seen.end(), x.begin(), x.end());
    }
    CHECK(sizes == std::vector<std::size_t>{7, 7, 6});
    REQUIRE(seen.size() == 80);
    CHECK(seen[0] == 0.5 * 20);  // row 5, column 0, scaled
    CHECK(s.position() == 20);
    s.seek(14);
    REQUIRE(s.next(b));
    CHECK(b.first_row == 19);
    CHECK(b.rows == 6);
    CHECK(scaled_rows(b)[0] == seen[14 * 4]);

    const io::file_fingerprint f1 = io::fingerprint_file(xp);
    CHECK(f1.difference(io::fingerprint_file(xp)).empty());
    x[199] = -1;  // last value changes: the tail block is hashed
    write_bytes(xp, npy_bytes("<f8", false, "(50, 4)", encode(x, false)));
    CHECK_FALSE(f1.difference(io::fingerprint_file(xp)).empty());

    o.limit = 100;
    CHECK_THROWS_AS(io::data_source(o), std::invalid_argument);
    o.limit = 0;
    o.skip = 51;
    CHECK_THROWS_AS(io::data_source(o), std::invalid_argument);
    CHECK(io::detect_format(xp) == io::data_format::npy);
    CHECK_THROWS_AS(io::detect_format(temp_path("x.raw")), file_error);
}

TEST_CASE("data_source: u8 and f32 rows arrive in their own type, other types as f64, in reused buffers") {
    std::vector<std::uint8_t> u8(40 * 3);
    for (std::size_t i = 0; i < u8.size(); ++i) u8[i] = static_cast<std::uint8_t>(i * 7 % 256);
    std::vector<float> f32(u8.begin(), u8.end());
    std::vector<std::int16_t> i16(u8.begin(), u8.end());
    std::string le_f4, be_f4;
    for (float v : f32) le_f4 += encode(std::vector<float>{v}, false), be_f4 += encode(std::vector<float>{v}, true);
    struct file_case {
        std::string name, bytes;
        io::data_format format;
        dtype raw_type;
        dtype delivered;
    };
    const std::string u8_bytes(u8.begin(), u8.end());
    const std::vector<file_case> cases = {
        {"own_u8.npy", npy_bytes("|u1", false, "(40, 3)", u8_bytes), io::data_format::npy, dtype::u8, dtype::u8},
        {"own_f4.npy", npy_bytes("<f4", false, "(40, 3)", le_f4), io::data_format::npy, dtype::u8, dtype::f32},
        {"own_u8.raw", u8_bytes, io::data_format::raw, dtype::u8, dtype::u8},
        {"own_f4.raw", le_f4, io::data_format::raw, dtype::f32, dtype::f32},
        {"be_f4.npy", npy_bytes(">f4", false, "(40, 3)", be_f4), io::data_format::npy, dtype::u8, dtype::f64},
        {"le_i2.npy", npy_bytes("<i2", false, "(40, 3)", encode(i16, false)), io::data_format::npy, dtype::u8,
         dtype::f64},
    };
    for (const file_case& c : cases) {
        CAPTURE(c.name);
        const std::string p = temp_path(c.name);
        write_bytes(p, c.bytes);
        io::source_options o;
        o.images = {p};
        o.format = c.format;
        o.raw_cols = c.format == io::data_format::raw ? 3 : 0;
        o.raw_type = c.raw_type;
        o.batch = 8;
        o.scale = 1.0 / 255.0;
        io::data_source s(o);
        io::source_batch b;
        REQUIRE(s.next(b));
        const unsigned char* buffer = b.block.bytes.data();
        const std::size_t capacity = b.block.bytes.capacity();
        std::size_t batches = 1;
        std::vector<double> x(8 * 3);
        for (;;) {
            CHECK(b.type() == c.delivered);
            CHECK(b.view().type == c.delivered);
            to_double_checked(b.view(), 3, x.data(), b.first_row);
            for (std::size_t i = 0; i < b.rows * 3; ++i)
                CHECK(x[i] == static_cast<double>(u8[b.first_row * 3 + i]) * (1.0 / 255.0));
            if (!s.next(b)) break;
            ++batches;
            // Same-sized batches land in the same buffer: no allocation per batch.
            CHECK(b.block.bytes.data() == buffer);
            CHECK(b.block.bytes.capacity() == capacity);
        }
        CHECK(batches == 5);
    }
}

TEST_CASE("data_source: several files are one stream, batches and seeks crossing their boundaries") {
    // Three .npy files of 5, 3 and 7 rows (D = 2): row r holds (r, -r) of the whole stream,
    // labels r % 4 in three label files.
    const std::vector<std::size_t> sizes{5, 3, 7};
    io::source_options o;
    std::size_t start = 0;
    for (std::size_t f = 0; f < sizes.size(); ++f) {
        std::vector<double> x;
        std::vector<std::int64_t> y;
        for (std::size_t r = start; r < start + sizes[f]; ++r) {
            x.push_back(static_cast<double>(r));
            x.push_back(-static_cast<double>(r));
            y.push_back(static_cast<std::int64_t>(r % 4));
        }
        const std::string xp = temp_path("multi_x" + std::to_string(f) + ".npy");
        const std::string yp = temp_path("multi_y" + std::to_string(f) + ".npy");
        write_bytes(xp, npy_bytes("<f8", false, "(" + std::to_string(sizes[f]) + ", 2)", encode(x, false)));
        write_bytes(yp, npy_bytes("<i8", false, "(" + std::to_string(sizes[f]) + ",)", encode(y, false)));
        o.images.push_back(xp);
        o.labels.push_back(yp);
        start += sizes[f];
    }
    o.skip = 2;
    o.limit = 11;
    o.batch = 4;
    io::data_source s(o);
    CHECK(s.file_rows() == 15);
    CHECK(s.total() == 11);
    CHECK(s.scan_classes() == 4);
    auto check_stream = [&](std::uint64_t from) {
        io::source_batch b;
        std::uint64_t row = 2 + from;
        while (s.next(b)) {
            CHECK(b.first_row == row);
            for (std::size_t i = 0; i < b.rows; ++i, ++row) {
                const double* v = reinterpret_cast<const double*>(b.block.bytes.data()) + 2 * i;
                CHECK(v[0] == static_cast<double>(row));
                CHECK(v[1] == -static_cast<double>(row));
                CHECK(b.labels[i] == static_cast<std::int64_t>(row % 4));
            }
        }
        CHECK(row == 13);
    };
    check_stream(0);
    for (std::uint64_t at : {0u, 3u, 6u, 10u, 11u}) {
        s.seek(at);
        check_stream(at);
    }
    // The fingerprint covers every file; files() lists them.
    CHECK(s.files().size() == 3);
    CHECK(s.images_fingerprint().size == s.files()[0].size + s.files()[1].size + s.files()[2].size);
    // A file of another width, and a missing labels file, are refused naming the file.
    const std::string wide = temp_path("multi_wide.npy");
    write_bytes(wide, npy_bytes("<f8", false, "(1, 3)", encode(std::vector<double>{1, 2, 3}, false)));
    io::source_options bad = o;
    bad.images[1] = wide;
    REQUIRE_THROWS_AS(io::data_source(bad), file_error);
    try {
        io::data_source{bad};
    } catch (const file_error& e) {
        CHECK(e.file() == wide);
    }
    bad = o;
    bad.labels.pop_back();
    CHECK_THROWS_AS(io::data_source(bad), std::invalid_argument);
}

TEST_CASE("data_source: CIFAR records detected by their size, labels carried, layouts") {
    const std::string p10 = temp_path("data_batch_1.bin"), p100 = temp_path("train.bin");
    std::string r10, r100;
    for (int i = 0; i < 3; ++i) {
        r10 += static_cast<char>(i + 7);
        r100 += static_cast<char>(i);
        r100 += static_cast<char>(90 + i);
        std::string px(3072, '\0');
        for (std::size_t k = 0; k < px.size(); ++k) px[k] = static_cast<char>((k * 7 + static_cast<std::size_t>(i)) & 0xff);
        r10 += px;
        r100 += px;
    }
    write_bytes(p10, r10);
    write_bytes(p100, r100);
    CHECK(io::detect_format(p10) == io::data_format::cifar10);
    CHECK(io::detect_format(p100) == io::data_format::cifar100);
    // 3073 x 3074 bytes are whole records of both kinds: refused, asking which (not "neither").
    const std::string both = temp_path("both.bin");
    write_bytes(both, std::string(3073 * 3074, '\0'));
    CHECK_THROWS_WITH(io::detect_format(both), Catch::Contains("whole records of both") && Catch::Contains("--format cifar10 or cifar100"));
    io::source_options o;
    o.images = {p10, p10};
    o.batch = 4;
    o.geometry.layout = image_layout::chw;
    io::data_source s(o);
    CHECK(s.dim() == 3072);
    CHECK(s.scan_classes() == 10);
    io::source_batch b;
    REQUIRE(s.next(b));
    REQUIRE(b.rows == 4);
    for (std::size_t i = 0; i < 4; ++i) {
        CHECK(b.labels[i] == static_cast<std::int64_t>(i % 3 + 7));
        // chw: the stored planes as they are.
        CHECK(std::memcmp(b.block.bytes.data() + i * 3072, r10.data() + (i % 3) * 3073 + 1, 3072) == 0);
    }
    o.images = {p100};
    o.geometry.layout = image_layout::hwc;
    o.label_kind = io::cifar_label::coarse;
    io::data_source c(o);
    CHECK(c.scan_classes() == 20);
    REQUIRE(c.next(b));
    CHECK(b.labels == std::vector<std::int64_t>{0, 1, 2});
    // hwc: pixel (0, 1) of record 2 is (R, G, B) at plane offsets 1, 1025, 2049.
    const char* rec = r100.data() + 2 * 3074 + 2;
    CHECK(b.block.bytes[2 * 3072 + 3] == static_cast<unsigned char>(rec[1]));
    CHECK(b.block.bytes[2 * 3072 + 4] == static_cast<unsigned char>(rec[1025]));
    CHECK(b.block.bytes[2 * 3072 + 5] == static_cast<unsigned char>(rec[2049]));
    // A file cut short is refused naming it.
    write_bytes(p10, r10.substr(0, 3073 + 100));
    o.images = {p10};
    o.format = io::data_format::cifar10;
    CHECK_THROWS_AS(io::data_source(o), file_error);
}

namespace {
// Writes `bytes` into the FIFO `path` in pieces of 4,096 bytes; at the first half it waits for
// `go` (when given) to be set; a reader that went away (EPIPE) ends the writing.
std::thread fifo_writer(const std::string& path, std::string bytes, std::atomic<bool>* go = nullptr,
                        std::atomic<std::size_t>* written = nullptr) {
    return std::thread([path, bytes = std::move(bytes), go, written] {
        const int fd = ::open(path.c_str(), O_WRONLY);
        if (fd < 0) return;
        for (std::size_t done = 0; done < bytes.size();) {
            while (go && done >= bytes.size() / 2 && !go->load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
            const std::size_t piece = std::min<std::size_t>({4096, bytes.size() - done,
                                                             done < bytes.size() / 2 ? bytes.size() / 2 - done : 4096});
            const ssize_t w = ::write(fd, bytes.data() + done, piece);
            if (w <= 0) break;
            done += static_cast<std::size_t>(w);
            if (written) written->store(done);
        }
        ::close(fd);
    });
}

std::vector<io::source_batch> all_batches(const io::source_options& o) {
    io::data_source s(o);
    std::vector<io::source_batch> out;
    io::source_batch b;
    while (s.next(b)) out.push_back(b);
    return out;
}
}  // namespace

TEST_CASE("data_source: a pipe is read one batch ahead, with the same batches, errors and positions as a file") {
    std::signal(SIGPIPE, SIG_IGN);
    const std::size_t n = 203, d = 37;
    std::string rows(n * d, '\0');
    for (std::size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<char>((i * 7919) % 251);
    std::vector<std::int32_t> y(n);
    for (std::size_t i = 0; i < n; ++i) y[i] = static_cast<std::int32_t>((i * 3) % 5);
    const std::string xp = temp_path("ahead_x.u8"), yp = temp_path("ahead_y.npy"), fifo = temp_path("ahead.fifo");
    write_bytes(xp, rows);
    write_bytes(yp, npy_bytes("<i4", false, "(203,)", encode(y, false)));
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    io::source_options o;
    o.raw_rows = n;
    o.raw_cols = d;
    o.labels = {yp};
    o.batch = 20;
    o.skip = 3;
    o.images = {xp};
    const std::vector<io::source_batch> file = all_batches(o);
    REQUIRE(file.size() == 10);  // 200 rows after --skip 3: ten batches of 20

    SECTION("the same batches, labels and row numbers as from the file") {
        o.images = {fifo};
        std::atomic<bool> go{false};
        std::thread w = fifo_writer(fifo, rows, &go);  // a pause mid-stream: a read ahead waits for it
        std::thread release([&go] {
            std::this_thread::sleep_for(std::chrono::milliseconds(30));
            go = true;
        });
        const std::vector<io::source_batch> piped = all_batches(o);
        w.join();
        release.join();
        REQUIRE(piped.size() == file.size());
        for (std::size_t i = 0; i < file.size(); ++i) {
            CHECK(piped[i].rows == file[i].rows);
            CHECK(piped[i].first_row == file[i].first_row);
            CHECK(piped[i].labels == file[i].labels);
            CHECK(piped[i].block.bytes == file[i].block.bytes);
        }
    }
    SECTION("a pipe that ends early: every whole batch first, then the error at the batch it cuts") {
        o.images = {fifo};
        std::thread w = fifo_writer(fifo, rows.substr(0, (3 + 95) * d + 5));  // ends inside row 98
        io::data_source s(o);
        io::source_batch b;
        std::size_t delivered = 0;
        for (int i = 0; i < 4; ++i) {
            REQUIRE(s.next(b));
            CHECK(b.block.bytes == file[static_cast<std::size_t>(i)].block.bytes);
            delivered += b.rows;
        }
        CHECK_THROWS_AS(s.next(b), file_error);  // rows 83-102 of the file: cut inside row 98
        CHECK(s.position() == delivered);          // nothing of the failed batch counts
        w.join();
    }
    SECTION("a source destroyed while its read ahead waits on the writer returns without it") {
        o.images = {fifo};
        std::atomic<bool> go{false};
        std::thread w = fifo_writer(fifo, rows, &go);  // stops at half until released
        {
            io::data_source s(o);
            io::source_batch b;
            for (int i = 0; i < 4; ++i) REQUIRE(s.next(b));  // the 5th batch waits behind the halt
        }  // were the read joined here, this would never return: the writer is released below
        go = true;
        w.join();  // the detached read takes its rows and closes the pipe; the writer stops
    }
    SECTION("the writer runs while the caller computes: the next batch is taken from the pipe meanwhile") {
        // Batches of 80 KiB, more than a pipe holds (64 KiB): without the read ahead the writer
        // could be at most a batch and a pipe's capacity ahead of what next() delivered.
        const std::size_t wide = 4096, count = 60, batch = 20;
        std::string big(wide * count, '\0');
        for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i % 253);
        io::source_options p;
        p.images = {fifo};
        p.raw_rows = count;
        p.raw_cols = wide;
        p.batch = batch;
        std::atomic<std::size_t> written{0};
        std::thread w = fifo_writer(fifo, big, nullptr, &written);
        io::data_source s(p);
        io::source_batch b;
        REQUIRE(s.next(b));
        // "Computing" on the first batch without another next(): the writer gets two batches in
        // (waited for up to 20 s; without the read ahead it stops at a batch and a pipe's worth).
        for (int i = 0; i < 2000 && written.load() < 2 * batch * wide; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        CHECK(written.load() >= 2 * batch * wide);
        std::size_t rows = b.rows;
        while (s.next(b)) {
            CHECK(std::memcmp(b.block.bytes.data(), big.data() + b.first_row * wide, b.rows * wide) == 0);
            rows += b.rows;
        }
        CHECK(rows == count);
        w.join();
    }
    ::unlink(fifo.c_str());
}
