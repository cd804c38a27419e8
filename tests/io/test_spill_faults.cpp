// io::row_spill under the failures a file system may give (the libc calls the library makes,
// fallocate64 / statvfs64 / pwrite64 / pread64 / open64, interposed by this executable: a test of its own,
// as every call of the process goes through them; open64's O_TMPFILE too): short writes and reads and EINTR are
// completed, a write that makes no progress is an error that says so, and a file system
// without fallocate (EOPNOTSUPP) falls back to statvfs's free bytes with no descriptor leaked
// when that check fails too; one without O_TMPFILE to a named file unlinked at once; a spill
// that finds no room closes the files kept for reuse and tries again.
#include <catch2/catch.hpp>

#include "../common/temp_dir.hpp"
#include "spill_probes.hpp"

#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <recalign/core/errors.hpp>
#include <recalign/io/spill.hpp>

using recalign::file_error;
using recalign::io::row_spill;
using Catch::Contains;

namespace {
struct faults {
    bool no_fallocate = false;  // fallocate64: EOPNOTSUPP
    bool statvfs_fails = false; // statvfs64: EIO
    bool stalled = false;       // pwrite64: 0 bytes written
    bool short_io = false;      // pwrite64 / pread64: at most 1000 bytes, EINTR every other call
    bool no_tmpfile = false;    // open64 with O_TMPFILE: EOPNOTSUPP (a file system without it)
    unsigned full = 0;          // fallocate64: ENOSPC for this many calls (a full disk until files close)
    unsigned long free = 0;     // statvfs64: this many bytes free (0: the file system's answer)
    unsigned calls = 0;
    unsigned tmpfile_refused = 0;
} fault;

template <class F>
F next(const char* name) {
    return reinterpret_cast<F>(::dlsym(RTLD_NEXT, name));
}

using testing::entries;
using testing::open_spills;
}  // namespace

extern "C" {
int open64(const char* path, int flags, ...) {
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = static_cast<mode_t>(va_arg(ap, int));
        va_end(ap);
    }
    if (fault.no_tmpfile && (flags & O_TMPFILE) == O_TMPFILE) {
        ++fault.tmpfile_refused;
        errno = EOPNOTSUPP;
        return -1;
    }
    return next<int (*)(const char*, int, ...)>("open64")(path, flags, mode);
}
int fallocate64(int fd, int mode, off64_t offset, off64_t len) {
    if (fault.no_fallocate) {
        errno = EOPNOTSUPP;
        return -1;
    }
    if (fault.full > 0) {
        --fault.full;
        errno = ENOSPC;
        return -1;
    }
    return next<int (*)(int, int, off64_t, off64_t)>("fallocate64")(fd, mode, offset, len);
}
int statvfs64(const char* path, struct statvfs64* buf) {
    if (fault.statvfs_fails) {
        errno = EIO;
        return -1;
    }
    const int r = next<int (*)(const char*, struct statvfs64*)>("statvfs64")(path, buf);
    if (r == 0 && fault.free) {
        buf->f_bavail = fault.free;
        buf->f_frsize = 1;
    }
    return r;
}
ssize_t pwrite64(int fd, const void* buf, size_t n, off64_t offset) {
    if (fault.stalled) return 0;
    if (fault.short_io && ++fault.calls % 2 == 0) {
        errno = EINTR;
        return -1;
    }
    if (fault.short_io && n > 1000) n = 1000;
    return next<ssize_t (*)(int, const void*, size_t, off64_t)>("pwrite64")(fd, buf, n, offset);
}
ssize_t pread64(int fd, void* buf, size_t n, off64_t offset) {
    if (fault.short_io && ++fault.calls % 2 == 0) {
        errno = EINTR;
        return -1;
    }
    if (fault.short_io && n > 1000) n = 1000;
    return next<ssize_t (*)(int, void*, size_t, off64_t)>("pread64")(fd, buf, n, offset);
}
}

TEST_CASE("row_spill: short writes and reads and EINTR are completed", "[io][spill]") {
    testing::temp_dir dir("recalign-spill-faults");
    constexpr std::size_t rows = 300, cols = 13;
    std::vector<double> x(rows * cols), y(rows * cols);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = 1.0 / static_cast<double>(i + 1);
    row_spill f(dir.path, rows, cols);
    fault = {};
    fault.short_io = true;
    f.write_rows(0, rows, x.data());
    f.read_rows(0, rows, y.data());
    const unsigned calls = fault.calls;
    fault = {};
    CHECK(calls > 2 * rows * cols * 8 / 1000);  // the faults were met
    CHECK(std::memcmp(x.data(), y.data(), x.size() * sizeof(double)) == 0);
}

TEST_CASE("row_spill: a write that makes no progress is an error naming the directory", "[io][spill]") {
    testing::temp_dir dir("recalign-spill-faults");
    row_spill f(dir.path, 4, 4);
    std::vector<double> x(16, 2.0);
    errno = 0;
    fault = {};
    fault.stalled = true;
    try {
        f.write_rows(0, 4, x.data());
        fault = {};
        FAIL("a write of no bytes was taken for progress");
    } catch (const file_error& e) {
        fault = {};
        CHECK_THAT(e.what(), Contains(dir.path) && Contains("no bytes"));
        CHECK_THAT(e.what(), !Contains("Success"));
    }
}

TEST_CASE("row_spill without fallocate: statvfs's free bytes decide, no descriptor leaked", "[io][spill]") {
    testing::temp_dir dir("recalign-spill-faults");
    fault = {};
    fault.no_fallocate = true;
    {
        row_spill f(dir.path, 8, 8);  // room for 512 bytes
        CHECK(open_spills(dir.path) == 1);
    }
    CHECK(open_spills(dir.path) == 0);
    // More than the file system has: refused (ENOSPC), the descriptor closed.
    CHECK_THROWS_WITH(row_spill(dir.path, std::size_t(1) << 40, 1024), Contains("No space left"));
    CHECK(open_spills(dir.path) == 0);
    // The free bytes cannot be read either: refused, the descriptor closed.
    fault.statvfs_fails = true;
    CHECK_THROWS_WITH(row_spill(dir.path, 8, 8), Contains(dir.path));
    const std::size_t left = open_spills(dir.path);
    fault = {};
    CHECK(left == 0);
}

TEST_CASE("row_spill without O_TMPFILE: a named file, unlinked at once", "[io][spill]") {
    testing::temp_dir dir("recalign-spill-faults");
    fault = {};
    fault.no_tmpfile = true;
    {
        row_spill f(dir.path, 5, 3);
        const unsigned refused = fault.tmpfile_refused;
        fault = {};
        CHECK(refused == 1);  // the fault was met: the fallback made it
        CHECK(entries(dir.path) == 0);     // no name left in the directory
        CHECK(open_spills(dir.path) == 1);  // one descriptor, to the deleted file
        const std::vector<double> x{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
        std::vector<double> y(15);
        f.write_rows(0, 5, x.data());
        f.read_rows(0, 5, y.data());
        CHECK(x == y);
    }
    fault = {};
    CHECK(open_spills(dir.path) == 0);
    CHECK(entries(dir.path) == 0);
}

TEST_CASE("row_spill: a spill that finds no room closes the kept files for theirs", "[io][spill]") {
    testing::temp_dir dir("recalign-spill-faults");
    fault = {};
    row_spill keeper(dir.path, 4, 1);
    std::make_unique<row_spill>(dir.path, 1000, 8).reset();  // kept
    CHECK(open_spills(dir.path) == 2);
    {
        fault.full = 1;  // the kept file's room is what a new one of another size needs
        row_spill f(dir.path, 100, 8);
        const unsigned left = fault.full;
        fault = {};
        CHECK(left == 0);
        CHECK(open_spills(dir.path) == 2);  // the kept one closed, the new one made
    }
    std::make_unique<row_spill>(dir.path, 1000, 8).reset();
    CHECK(open_spills(dir.path) == 3);  // keeper, two kept (100 x 8 and 1000 x 8)
    {
        fault.full = 1;  // extending the kept 1000 x 8 fails: closed with the others, a new file made
        row_spill f(dir.path, 1800, 8);
        fault = {};
        CHECK(open_spills(dir.path) == 2);
    }
    {
        fault.full = 2;  // no room even then: refused, nothing left open but the keeper
        CHECK_THROWS_WITH(row_spill(dir.path, 10000, 8), Contains("No space left") && Contains(dir.path));
        const unsigned left = fault.full;
        fault = {};
        CHECK(left == 0);
        CHECK(open_spills(dir.path) == 1);
    }
}

TEST_CASE("spill_shortfall: the room of the files kept for reuse counts as free", "[io][spill]") {
    testing::temp_dir dir("recalign-spill-faults");
    fault = {};
    row_spill keeper(dir.path, 4, 1);
    std::make_unique<row_spill>(dir.path, 1000, 8).reset();  // kept: 64,000 bytes
    fault.free = 1000000;
    const std::string fits = recalign::io::spill_shortfall(dir.path, 1064000);
    const std::string short_by_one = recalign::io::spill_shortfall(dir.path, 1064001);
    fault = {};
    CHECK(fits.empty());
    CHECK_THAT(short_by_one, Contains(dir.path) && Contains("1064000 bytes free, 1064001 needed"));
}
