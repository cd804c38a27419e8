#include <catch2/catch.hpp>

#include <zlib.h>

#include <cstdio>
#include <cstring>
#include <fstream>

#include <recalign/core/errors.hpp>
#include <recalign/io/idx.hpp>

#include "../common/helpers.hpp"

using namespace recalign;

namespace {
std::string header(unsigned char type, std::vector<std::uint32_t> dims) {
    std::string h = {0, 0, static_cast<char>(type), static_cast<char>(dims.size())};
    for (auto d : dims)
        for (int s = 24; s >= 0; s -= 8) h.push_back(static_cast<char>((d >> s) & 0xff));
    return h;
}
std::string be(const void* p, std::size_t n) {
    std::string s(static_cast<const char*>(p), n);
    return std::string(s.rbegin(), s.rend());
}
std::string write_plain(const std::string& name, const std::string& bytes) {
    const std::string path = "/tmp/recalign-idx-" + std::to_string(::getpid()) + "-" + name;
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
}
std::string write_gz(const std::string& name, const std::string& bytes) {
    const std::string path = "/tmp/recalign-idx-" + std::to_string(::getpid()) + "-" + name;
    gzFile f = gzopen(path.c_str(), "wb");
    gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
    gzclose(f);
    return path;
}
}  // namespace

TEST_CASE("IDX files of every element type read back, plain and gzip", "[idx]") {
    // 3 rows of 2x2 values: v = row * 10 + col - 5
    for (unsigned char type : {0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E}) {
        std::string body;
        for (int r = 0; r < 3; ++r)
            for (int c = 0; c < 4; ++c) {
                const double v = type == 0x08 ? r * 10 + c : r * 10 + c - 5;
                switch (type) {
                    case 0x08: body.push_back(static_cast<char>(static_cast<unsigned char>(v))); break;
                    case 0x09: body.push_back(static_cast<char>(static_cast<signed char>(v))); break;
                    case 0x0B: { std::int16_t t = static_cast<std::int16_t>(v); body += be(&t, 2); break; }
                    case 0x0C: { std::int32_t t = static_cast<std::int32_t>(v); body += be(&t, 4); break; }
                    case 0x0D: { float t = static_cast<float>(v); body += be(&t, 4); break; }
                    case 0x0E: { body += be(&v, 8); break; }
                }
            }
        const std::string bytes = header(type, {3, 2, 2}) + body;
        for (bool gz : {false, true}) {
            INFO("type 0x" << std::hex << int(type) << (gz ? " gz" : " plain"));
            const std::string path = gz ? write_gz("t.gz", bytes) : write_plain("t", bytes);
            io::idx_reader r(path);
            CHECK(r.compressed() == gz);
            CHECK(r.rows() == 3);
            CHECK(r.cols() == 4);
            io::row_block b;
            CHECK(r.read(2, b) == 2);
            CHECK(r.read(2, b) == 1);
            CHECK(r.read(2, b) == 0);
            io::idx_reader again(path);
            again.skip(1);
            again.read(5, b);
            REQUIRE(b.rows == 2);
            for (int i = 0; i < 8; ++i) {
                const int row = 1 + i / 4, col = i % 4;
                const double want = type == 0x08 ? row * 10 + col : row * 10 + col - 5;
                double got = 0;
                if (b.type == dtype::u8) got = b.bytes[i];
                else if (b.type == dtype::f32) got = reinterpret_cast<const float*>(b.bytes.data())[i];
                else got = reinterpret_cast<const double*>(b.bytes.data())[i];
                CHECK(got == want);
            }
            std::remove(path.c_str());
        }
    }
}

TEST_CASE("labels read as integers", "[idx]") {
    const std::string path = write_gz("l.gz", header(0x08, {5}) + std::string("\x00\x01\x09\x03\x02", 5));
    io::idx_reader r(path);
    std::vector<std::int64_t> y;
    CHECK(r.read_labels(10, y) == 5);
    CHECK(y == std::vector<std::int64_t>{0, 1, 9, 3, 2});
    std::remove(path.c_str());
}

TEST_CASE("bad IDX files are file_errors naming the byte offset", "[idx][errors]") {
    const std::string good = header(0x08, {4, 3}) + std::string(12, '\x07');
    SECTION("truncated plain file: refused at open, from its size") {
        const std::string path = write_plain("trunc", good.substr(0, good.size() - 2));
        CHECK_THROWS_WITH(io::idx_reader(path), Catch::Contains("byte offset 22") && Catch::Contains("announces"));
        std::remove(path.c_str());
    }
    SECTION("truncated gzip file: refused when the data runs out") {
        const std::string path = write_gz("trunc.gz", good.substr(0, good.size() - 2));
        io::idx_reader r(path);
        io::row_block b;
        CHECK_THROWS_WITH(r.read(10, b), Catch::Contains("byte offset 22") && Catch::Contains("end of file"));
        std::remove(path.c_str());
    }
    SECTION("wrong magic, unknown type, too many dimensions") {
        for (const std::string& bad : {std::string("\x01\x00\x08\x01", 4) + "abcd", header(0x07, {1}) + "x",
                                        std::string("\x00\x00\x08\x09", 4)}) {
            const std::string path = write_plain("bad", bad);
            CHECK_THROWS_AS(io::idx_reader(path), file_error);
            std::remove(path.c_str());
        }
    }
    SECTION("absurd dimensions are refused before allocation") {
        const std::string path = write_plain("huge", header(0x0E, {0xFFFFFFFF, 0xFFFF, 0xFFFF}));
        CHECK_THROWS_AS(io::idx_reader(path), file_error);
        std::remove(path.c_str());
    }
    SECTION("missing file") { CHECK_THROWS_WITH(io::idx_reader("/nonexistent/x.idx"), Catch::Contains("/nonexistent/x.idx")); }
}

TEST_CASE("a tiny .gz announcing a huge IDX array fails at its end without a large allocation", "[idx][limits]") {
    // 2^20 rows of 2^12 x 2^8 float64 values (8 TiB) in a few dozen compressed bytes.
    const std::string path = write_gz("claims.gz", header(0x0E, {1u << 20, 1u << 12, 1u << 8}) + std::string(64, '\0'));
    testing::reset_peak_rss();
    const long before = testing::peak_rss_kb();
    io::idx_reader r(path);
    io::row_block b;
    CHECK_THROWS_WITH(r.read(1000, b), Catch::Contains("end of file"));
    CHECK(testing::peak_rss_kb() - before < 50 * 1024);  // KiB
    std::remove(path.c_str());
}
