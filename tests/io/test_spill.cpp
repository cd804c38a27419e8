// io::row_spill (the refinement passes' carried directions on disk): rows written in blocks
// read back bit for bit; the file never has a name in its directory, so nothing is left
// behind when the process ends normally, throws, or is killed (SIGKILL: no destructor); a
// file larger than the free space is refused when it is made, before a byte is written, and
// a missing directory is named; a dropped file serves the next spill of about its size while
// another file lives, and no row is read before it is written.
#include <catch2/catch.hpp>

#include "../common/temp_dir.hpp"
#include "spill_probes.hpp"

#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <recalign/core/errors.hpp>
#include <recalign/io/spill.hpp>

using recalign::file_error;
using recalign::io::row_spill;
using Catch::Contains;

namespace {

struct temp_dir : testing::temp_dir {
    temp_dir() : testing::temp_dir("recalign-spill") {}
};

using testing::entries;
using testing::open_spills;

}  // namespace

TEST_CASE("row_spill: blocks of rows read back bit for bit, the file without a name", "[io][spill]") {
    temp_dir dir;
    constexpr std::size_t rows = 1000, cols = 37;
    std::vector<double> x(rows * cols);
    std::mt19937_64 rng(4);
    for (double& v : x) {
        const std::uint64_t bits = rng();
        std::memcpy(&v, &bits, 8);  // every bit pattern, NaN payloads included
    }
    {
        row_spill f(dir.path, rows, cols);
        CHECK(entries(dir.path) == 0);     // no name from the start
        CHECK(open_spills(dir.path) == 1);  // one descriptor, to a deleted file
        for (std::size_t r0 = 0; r0 < rows; r0 += 300) f.write_rows(r0, std::min<std::size_t>(300, rows - r0), &x[r0 * cols]);
        std::vector<double> y(rows * cols), part(7 * cols);
        f.read_rows(0, rows, y.data());
        CHECK(std::memcmp(x.data(), y.data(), x.size() * sizeof(double)) == 0);
        f.read_rows(993, 7, part.data());
        CHECK(std::memcmp(&x[993 * cols], part.data(), part.size() * sizeof(double)) == 0);
        CHECK_THROWS_AS(f.read_rows(994, 7, part.data()), std::out_of_range);
        CHECK_THROWS_AS(f.write_rows(rows, 1, part.data()), std::out_of_range);
    }
    CHECK(open_spills(dir.path) == 0);  // closed by the destructor: the system frees it
    CHECK(entries(dir.path) == 0);
}

TEST_CASE("row_spill: nothing is left behind by a killed process", "[io][spill]") {
    temp_dir dir;
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::close(fds[0]);
        try {
            row_spill f(dir.path, 4096, 64);  // 2 MiB
            std::vector<double> row(64 * 4096, 1.5);
            f.write_rows(0, 4096, row.data());
            const char ok = 'y';
            if (::write(fds[1], &ok, 1) != 1) ::_exit(3);
            ::pause();
        } catch (...) {
            ::_exit(2);
        }
        ::_exit(0);
    }
    ::close(fds[1]);
    char got = 0;
    REQUIRE(::read(fds[0], &got, 1) == 1);
    ::close(fds[0]);
    CHECK(entries(dir.path) == 0);  // while the child holds it, too
    ::kill(pid, SIGKILL);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    CHECK(WIFSIGNALED(status));
    CHECK(entries(dir.path) == 0);
}

TEST_CASE("row_spill: more than the free space, or no directory, is refused when made", "[io][spill]") {
    temp_dir dir;
    const std::uint64_t free = recalign::io::free_bytes(dir.path);
    REQUIRE(free > 0);
    // A file 1 GiB larger than the space left: refused by fallocate before anything is written.
    const std::size_t rows = static_cast<std::size_t>(free / 8 / 1024 + (std::uint64_t(1) << 17)), cols = 1024;
    try {
        row_spill f(dir.path, rows, cols);
        FAIL("a spill file larger than the free space was made");
    } catch (const file_error& e) {
        CHECK_THAT(e.what(), Contains(dir.path) && Contains("cannot reserve") && Contains("TMPDIR"));
    }
    CHECK(entries(dir.path) == 0);
    CHECK(open_spills(dir.path) == 0);
    CHECK_THROWS_WITH(row_spill(dir.path + "/missing", 4, 4), Contains(dir.path + "/missing"));
    CHECK_THROWS_WITH(recalign::io::free_bytes(dir.path + "/missing"), Contains(dir.path + "/missing"));
}

TEST_CASE("spill_directory: $TMPDIR, else /tmp", "[io][spill]") {
    const char* old = std::getenv("TMPDIR");
    const std::string saved = old ? old : "";
    ::setenv("TMPDIR", "/var/tmp", 1);
    CHECK(recalign::io::spill_directory() == "/var/tmp");
    ::setenv("TMPDIR", "", 1);
    CHECK(recalign::io::spill_directory() == "/tmp");
    ::unsetenv("TMPDIR");
    CHECK(recalign::io::spill_directory() == "/tmp");
    if (old) ::setenv("TMPDIR", saved.c_str(), 1);
}

TEST_CASE("spill_shortfall: a directory no file can be made in, or without room, is named before reading",
          "[io][spill]") {
    temp_dir dir;
    const std::uint64_t free = recalign::io::free_bytes(dir.path);
    CHECK(recalign::io::spill_shortfall(dir.path, 0).empty());
    CHECK(recalign::io::spill_shortfall(dir.path, free / 2).empty());
    CHECK_THAT(recalign::io::spill_shortfall(dir.path, free + (std::uint64_t(1) << 30)),
               Contains(dir.path) && Contains("bytes free"));
    // statvfs answers for a regular file too: the probe (a spill file of no size) finds it out.
    const std::string file = dir.path + "/a-file";
    { std::ofstream(file) << "x"; }
    REQUIRE(recalign::io::free_bytes(file) > 0);
    CHECK_THAT(recalign::io::spill_shortfall(file, 8), Contains(file) && Contains("Not a directory"));
    CHECK_THAT(recalign::io::spill_shortfall(dir.path + "/missing", 8), Contains(dir.path + "/missing"));
    CHECK(entries(dir.path) == 1);  // the probe left nothing behind
    CHECK(open_spills(dir.path) == 0);
}

TEST_CASE("parked_matrix: a matrix waits on disk, its memory released, and comes back bit for bit", "[io][spill]") {
    temp_dir dir;
    recalign::matrix_t m = recalign::matrix_t::from_shape({300, 41});
    std::mt19937_64 rng(5);
    for (double& v : m) {
        const std::uint64_t bits = rng();
        std::memcpy(&v, &bits, 8);
    }
    const recalign::matrix_t before = m;
    {
        recalign::io::parked_matrix p(dir.path, m);
        CHECK(m.size() == 0);  // released
        CHECK(p.rows() == 300);
        CHECK(p.cols() == 41);
        CHECK(entries(dir.path) == 0);
        CHECK(open_spills(dir.path) == 1);
        const recalign::matrix_t back = p.restore();
        REQUIRE(back.shape(0) == 300);
        REQUIRE(back.shape(1) == 41);
        CHECK(std::memcmp(back.data(), before.data(), before.size() * sizeof(double)) == 0);
    }
    CHECK(open_spills(dir.path) == 0);
    {  // rows of 8 MiB: written and read in two blocks of about 32 MiB
        recalign::matrix_t big = recalign::matrix_t::from_shape({5, std::size_t{1} << 20});
        for (std::size_t i = 0; i < big.size(); ++i) big.data()[i] = static_cast<double>(i) * 0.5 - 3.0;
        recalign::io::parked_matrix p(dir.path, big);
        const recalign::matrix_t back = p.restore();
        bool same = back.size() == std::size_t{5} << 20;
        for (std::size_t i = 0; same && i < back.size(); ++i) same = back.data()[i] == static_cast<double>(i) * 0.5 - 3.0;
        CHECK(same);
    }
    recalign::matrix_t empty = recalign::matrix_t::from_shape({5, 0});
    recalign::io::parked_matrix e(dir.path, empty);  // no data pointer is touched
    CHECK(e.restore().shape(0) == 5);
    // A directory that is not there: refused, the matrix left as it was.
    m = before;
    CHECK_THROWS_WITH(recalign::io::parked_matrix(dir.path + "/missing", m), Contains(dir.path + "/missing"));
    CHECK(m.size() == before.size());
}

TEST_CASE("row_spill: a view of a file's leading columns reads their bits, writes nothing, keeps the file", "[io][spill]") {
    testing::temp_dir dir("recalign-spill-view");
    constexpr std::size_t rows = 600, cols = 7, lead = 4;  // more rows than one block of the view's reads
    std::vector<double> x(rows * cols);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::sin(static_cast<double>(i)) / static_cast<double>(i + 1);
    auto wide = std::make_shared<row_spill>(dir.path, rows, cols);
    wide->write_rows(0, rows, x.data());
    row_spill view(std::shared_ptr<const row_spill>(wide), lead);
    CHECK((view.rows() == rows && view.cols() == lead && view.directory() == dir.path));
    wide.reset();  // the view keeps the file
    CHECK(open_spills(dir.path) == 1);
    std::vector<double> y(rows * lead, -1.0), part(3 * lead, -1.0);
    view.read_rows(0, rows, y.data());
    view.read_rows(255, 3, part.data());  // across a block boundary of the wide file's reads
    bool same = true;
    for (std::size_t i = 0; i < rows; ++i)
        for (std::size_t j = 0; j < lead; ++j) same = same && std::memcmp(&y[i * lead + j], &x[i * cols + j], 8) == 0;
    for (std::size_t i = 0; i < 3; ++i)
        for (std::size_t j = 0; j < lead; ++j) same = same && part[i * lead + j] == x[(255 + i) * cols + j];
    CHECK(same);
    CHECK_THROWS_AS(view.write_rows(0, 1, y.data()), std::logic_error);
    CHECK_THROWS_AS(view.read_rows(rows - 1, 2, y.data()), std::out_of_range);
    auto other = std::make_shared<const row_spill>(dir.path, 2, 3);
    CHECK_THROWS_AS(row_spill(other, 4), std::invalid_argument);
    CHECK_THROWS_AS(row_spill(std::shared_ptr<const row_spill>(), 0), std::invalid_argument);
}

TEST_CASE("row_spill: a view maps its file's rows as they are read, blocks of them, and nests", "[io][spill]") {
    testing::temp_dir dir("recalign-spill-map");
    constexpr std::size_t rows = 600, cols = 3;  // more rows than one block of the view's reads
    std::vector<double> x(rows * cols);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::cos(static_cast<double>(i)) / static_cast<double>(i + 2);
    auto file = std::make_shared<row_spill>(dir.path, rows, cols);
    file->write_rows(0, rows, x.data());
    // Each row (a, b, c) as (a + b, b * c, c, -a, 0): wider than the file.
    std::size_t largest = 0;
    auto map = [&largest](std::size_t n, const double* src, double* dst) {
        largest = std::max(largest, n);
        for (std::size_t i = 0; i < n; ++i) {
            const double* s = src + i * cols;
            double* o = dst + i * 5;
            o[0] = s[0] + s[1], o[1] = s[1] * s[2], o[2] = s[2], o[3] = -s[0], o[4] = 0.0;
        }
    };
    auto view = std::make_shared<row_spill>(std::shared_ptr<const row_spill>(file), 5, map);
    file.reset();  // the view keeps the file
    CHECK((view->rows() == rows && view->cols() == 5 && view->directory() == dir.path));
    CHECK(open_spills(dir.path) == 1);
    std::vector<double> y(rows * 5, -1.0);
    view->read_rows(0, rows, y.data());
    CHECK(largest <= 256);  // the source is read a block of rows at a time
    bool same = true;
    for (std::size_t i = 0; i < rows; ++i) {
        const double* s = &x[i * cols];
        const double want[5] = {s[0] + s[1], s[1] * s[2], s[2], -s[0], 0.0};
        same = same && std::memcmp(&y[i * 5], want, sizeof want) == 0;
    }
    CHECK(same);
    // A view of the view's leading columns reads the same rows through it.
    const row_spill lead(std::shared_ptr<const row_spill>(view), 2);
    std::vector<double> part(4 * 2, -1.0);
    lead.read_rows(254, 4, part.data());  // across a block boundary
    for (std::size_t i = 0; i < 4; ++i)
        CHECK((part[i * 2] == y[(254 + i) * 5] && part[i * 2 + 1] == y[(254 + i) * 5 + 1]));
    CHECK_THROWS_AS(row_spill(std::shared_ptr<const row_spill>(view), 3, row_spill::row_map()), std::invalid_argument);
    CHECK_THROWS_AS(row_spill(std::shared_ptr<const row_spill>(), 3, map), std::invalid_argument);
    std::vector<double> one(5);
    CHECK_THROWS_AS(view->write_rows(0, 1, one.data()), std::logic_error);
}

TEST_CASE("row_spill: write_blocks and read_blocks pass every row once, a bounded block at a time", "[io][spill]") {
    temp_dir dir;
    row_spill f(dir.path, 10, 3);  // 24 bytes a row
    std::vector<std::size_t> starts;
    f.write_blocks(50, [&](std::size_t r0, std::size_t n, double* rows) {  // 2 rows a block
        CHECK(n <= 2);
        CHECK(r0 == starts.size() * 2);
        starts.push_back(r0);
        for (std::size_t i = 0; i < n * 3; ++i) rows[i] = static_cast<double>(r0 * 3 + i);
    });
    CHECK(starts.size() == 5);
    std::vector<double> all(30, -1.0);
    f.read_rows(0, 10, all.data());
    for (std::size_t i = 0; i < 30; ++i) CHECK(all[i] == static_cast<double>(i));
    std::size_t seen = 0;
    f.read_blocks(8, [&](std::size_t r0, std::size_t n, double* rows) {  // less than a row: one row a block
        CHECK(n == 1);
        CHECK(r0 == seen);
        for (std::size_t j = 0; j < 3; ++j) CHECK(rows[j] == static_cast<double>(r0 * 3 + j));
        ++seen;
    });
    CHECK(seen == 10);
    row_spill empty(dir.path, 0, 3);
    empty.read_blocks(50, [](std::size_t, std::size_t, double*) { FAIL("a block of an empty file"); });
}

TEST_CASE("row_spill: a view's rows have the same bits however they are read", "[io][spill]") {
    // OpenBLAS's GEMM rounds the rows past a multiple of its kernel's 8 otherwise than the rest, so
    // a rotation's row depends on how many rows it was given at once; here the map adds the count
    // of rows it was given, which shows any block not on the view's grid. A checkpoint reads a
    // view in blocks of 4 MiB, complete_pass 512 rows at a time: a resumed run must read the same
    // bits (the forty-sixth session: the 224 demo's end-of-run checkpoint resumed printed other
    // last digits).
    testing::temp_dir dir("recalign-spill-grid");
    constexpr std::size_t rows = 700, cols = 2, grid = row_spill::view_block;
    auto file = std::make_shared<row_spill>(dir.path, rows, cols);
    std::vector<double> x(rows * cols);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<double>(i);
    file->write_rows(0, rows, x.data());
    std::vector<std::size_t> given;
    const row_spill view(std::shared_ptr<const row_spill>(file), 1, [&](std::size_t n, const double* src, double* dst) {
        given.push_back(n);
        for (std::size_t i = 0; i < n; ++i) dst[i] = src[i * cols] + 1e6 * static_cast<double>(n);
    });
    std::vector<double> whole(rows, -1.0);
    view.read_rows(0, rows, whole.data());
    CHECK(given == std::vector<std::size_t>{grid, grid, rows - 2 * grid});
    for (std::size_t i = 0; i < rows; ++i) {
        const std::size_t n = i < 2 * grid ? grid : rows - 2 * grid;
        REQUIRE(whole[i] == static_cast<double>(i * cols) + 1e6 * static_cast<double>(n));
    }
    // Reads of any split: one row, across the grid, from an odd row to the end.
    for (const auto& [r0, n] : std::vector<std::pair<std::size_t, std::size_t>>{
             {0, 1}, {255, 2}, {100, 431}, {431, 269}, {699, 1}, {3, 600}}) {
        std::vector<double> part(n, -1.0);
        view.read_rows(r0, n, part.data());
        CHECK(std::memcmp(part.data(), whole.data() + r0, n * sizeof(double)) == 0);
    }
    // read_blocks in blocks of whole grid blocks where its buffer holds one (no grid block mapped
    // twice), of a row where it does not; the same bits either way.
    for (const std::size_t bytes : {std::size_t{431 * 8}, std::size_t{8}, std::size_t{1} << 22}) {
        given.clear();
        std::vector<double> back(rows, -1.0);
        std::size_t blocks = 0;
        view.read_blocks(bytes, [&](std::size_t r0, std::size_t n, double* r) {
            ++blocks;
            std::copy(r, r + n, back.begin() + static_cast<std::ptrdiff_t>(r0));
        });
        CHECK(std::memcmp(back.data(), whole.data(), rows * sizeof(double)) == 0);
        if (bytes >= grid * 8) CHECK(given.size() == 3);
        if (bytes == 431 * 8) CHECK(blocks == 3);
    }
}

TEST_CASE("row_spill: a row is read only after it is written, however the writes fall", "[io][spill]") {
    temp_dir dir;
    constexpr std::size_t cols = 3;
    row_spill f(dir.path, 20, cols);
    std::vector<double> x(20 * cols), y(20 * cols);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<double>(i) + 0.5;
    CHECK_THROWS_WITH(f.read_rows(0, 1, y.data()), Contains("rows 0 .. 1 read before they were written"));
    f.write_rows(8, 4, &x[8 * cols]);   // rows 8 .. 12
    f.write_rows(14, 2, &x[14 * cols]);  // 14 .. 16: a gap at 12 .. 14
    f.read_rows(8, 4, y.data());
    f.read_rows(14, 2, y.data());
    f.read_rows(9, 2, y.data());
    CHECK_THROWS_AS(f.read_rows(7, 2, y.data()), std::logic_error);
    CHECK_THROWS_AS(f.read_rows(11, 2, y.data()), std::logic_error);
    CHECK_THROWS_AS(f.read_rows(8, 8, y.data()), std::logic_error);
    f.write_rows(12, 2, &x[12 * cols]);  // joins 8 .. 12 and 14 .. 16
    f.write_rows(2, 6, &x[2 * cols]);    // touches 8 from below
    f.write_rows(0, 3, &x[0]);           // overlaps 2 .. 8
    f.read_rows(0, 16, y.data());
    CHECK(std::memcmp(x.data(), y.data(), 16 * cols * sizeof(double)) == 0);
    CHECK_THROWS_AS(f.read_rows(15, 2, y.data()), std::logic_error);
    f.write_rows(16, 4, &x[16 * cols]);
    f.read_rows(0, 20, y.data());
    CHECK(x == y);
    // A view reads its file's rows: unwritten ones are refused through it too.
    auto g = std::make_shared<row_spill>(dir.path, 10, 2);
    const row_spill view(g, 1);
    std::vector<double> z(10 * 2, 1.0);
    CHECK_THROWS_AS(view.read_rows(0, 1, z.data()), std::logic_error);
    g->write_rows(0, 10, z.data());
    view.read_rows(0, 10, z.data());
}

TEST_CASE("row_spill: a dropped file serves the next spill of about its size while another lives", "[io][spill]") {
    temp_dir dir;
    std::vector<double> x(1000 * 8, 7.0), y(1000 * 8);
    {
        row_spill keeper(dir.path, 4, 1);
        auto a = std::make_unique<row_spill>(dir.path, 1000, 8);
        a->write_rows(0, 1000, x.data());
        a.reset();
        CHECK(open_spills(dir.path) == 2);  // kept, not closed
        {
            row_spill small(dir.path, 100, 8);  // a tenth of the kept file: a new one
            CHECK(open_spills(dir.path) == 3);
        }
        {
            row_spill b(dir.path, 700, 8);  // fits the kept file: no new descriptor
            CHECK(open_spills(dir.path) == 3);  // keeper, b (the 1000 x 8 file), the small one kept
            // The file holds a's bytes, but none of b's rows is written yet: none is read.
            CHECK_THROWS_AS(b.read_rows(0, 1, y.data()), std::logic_error);
            b.write_rows(0, 700, x.data());
            b.read_rows(0, 700, y.data());
            CHECK(std::equal(x.begin(), x.begin() + 700 * 8, y.begin()));
        }
        {
            row_spill c(dir.path, 1500, 8);  // more than the kept 1000 x 8: it is extended
            CHECK(open_spills(dir.path) == 3);
            std::vector<double> w(1500 * 8, -1.0), v(1500 * 8);
            c.write_rows(0, 1500, w.data());
            c.read_rows(0, 1500, v.data());
            CHECK(w == v);
        }
        // At most four files are kept: the oldest closed beyond them.
        {
            std::vector<std::unique_ptr<row_spill>> six;
            for (int i = 0; i < 6; ++i) six.push_back(std::make_unique<row_spill>(dir.path, 4000 + 600 * i, 8));
            CHECK(open_spills(dir.path) == 9);  // keeper, the two kept, six new (none suits them)
            six.clear();
        }
        CHECK(open_spills(dir.path) == 5);
        // Another directory's files are never taken.
        temp_dir other;
        {
            row_spill d(other.path, 1000, 8);
            CHECK(open_spills(other.path) == 1);
            CHECK(open_spills(dir.path) == 5);
        }
        CHECK(open_spills(other.path) == 1);  // kept, in its own directory
    }
    CHECK(open_spills(dir.path) == 0);  // the last file closed every kept one
}
