#include "recalign/io/spill.hpp"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <vector>

#include "posix_file.hpp"
#include "recalign/core/checked.hpp"
#include "recalign/core/errors.hpp"

namespace recalign::io {

std::string spill_directory() {
    const char* t = std::getenv("TMPDIR");
    return t && *t ? std::string(t) : std::string("/tmp");
}

std::uint64_t free_bytes(const std::string& dir) {
    struct statvfs s {};
    if (::statvfs(dir.c_str(), &s) != 0)
        throw file_error(dir, std::string("cannot examine the directory for spill files: ") + std::strerror(errno));
    return checked_mul(static_cast<std::uint64_t>(s.f_bavail), static_cast<std::uint64_t>(s.f_frsize), "free bytes");
}

namespace {
// The files of dropped spills kept open for the next ones (spill.hpp). Never destroyed: a spill
// may die during static destruction.
struct kept_file {
    std::string dir;
    int fd = -1;
    std::uint64_t bytes = 0;
};
struct spill_pool {
    std::mutex mutex;
    std::vector<kept_file> kept;  // oldest first
    std::size_t live = 0;         // files of row_spills alive
};
constexpr std::size_t kept_files = 4;
spill_pool& pool() {
    static spill_pool* p = new spill_pool;
    return *p;
}
void close_kept(std::vector<kept_file>& kept) noexcept {
    for (kept_file& k : kept) detail::close_fd(k.fd);
    kept.clear();
}
// A kept file in `dir` for `bytes`: the smallest holding them in at most twice their size, else
// the largest of at least half of them (to be extended); -1 when none suits.
int take_kept(const std::string& dir, std::uint64_t bytes, std::uint64_t& capacity) {
    spill_pool& p = pool();
    std::lock_guard<std::mutex> lock(p.mutex);
    std::size_t best = p.kept.size();
    for (std::size_t i = 0; i < p.kept.size(); ++i) {
        const std::uint64_t c = p.kept[i].bytes;
        if (p.kept[i].dir != dir || c / 2 > bytes || c < bytes - bytes / 2) continue;
        if (best == p.kept.size()) {
            best = i;
            continue;
        }
        const std::uint64_t b = p.kept[best].bytes;
        if (c >= bytes ? (b < bytes || c < b) : (b < bytes && c > b)) best = i;
    }
    if (best == p.kept.size()) return -1;
    const kept_file k = p.kept[best];
    p.kept.erase(p.kept.begin() + static_cast<std::ptrdiff_t>(best));
    capacity = k.bytes;
    return k.fd;
}
// Closes every kept file (their room is needed); whether there was one.
bool drop_kept() noexcept {
    spill_pool& p = pool();
    std::lock_guard<std::mutex> lock(p.mutex);
    const bool any = !p.kept.empty();
    close_kept(p.kept);
    return any;
}
// The bytes of the files kept in `dir`.
std::uint64_t kept_bytes(const std::string& dir) {
    spill_pool& p = pool();
    std::lock_guard<std::mutex> lock(p.mutex);
    std::uint64_t n = 0;
    for (const kept_file& k : p.kept)
        if (k.dir == dir) n += k.bytes;
    return n;
}
// Reserves bytes [0, bytes) of `fd` (errno, 0 when reserved): fallocate, or where the file
// system cannot (EOPNOTSUPP), the free bytes beyond what it already holds.
int reserve(const std::string& dir, int fd, std::uint64_t bytes, std::uint64_t held) {
    // fallocate, not posix_fallocate: where the file system cannot reserve space, glibc's
    // emulation would write the whole file; then statvfs's free bytes are the check.
    int e = ::fallocate(fd, 0, 0, static_cast<off_t>(bytes)) == 0 ? 0 : errno;
    if (e == EOPNOTSUPP) e = free_bytes(dir) >= bytes - held ? 0 : ENOSPC;
    return e;
}
// Whether a kept file holding `held` bytes was extended to `bytes` (any error: it was not; a new
// file then meets the error again and reports it).
bool extended(const std::string& dir, int fd, std::uint64_t bytes, std::uint64_t held) {
    try {
        return reserve(dir, fd, bytes, held) == 0;
    } catch (const file_error&) {
        return false;
    }
}
int new_file(const std::string& dir) {
    int fd = -1;
#ifdef O_TMPFILE
    fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
#endif
    if (fd < 0) {  // no O_TMPFILE here: a named file, unlinked at once
        std::string path = dir + "/recalign-spill.XXXXXX";
        std::vector<char> name(path.begin(), path.end());
        name.push_back('\0');
        fd = ::mkostemp(name.data(), O_CLOEXEC);
        if (fd >= 0) ::unlink(name.data());
    }
    if (fd < 0) throw file_error(dir, std::string("cannot make a spill file: ") + std::strerror(errno));
    return fd;
}
}  // namespace

void close_kept_spills() noexcept { drop_kept(); }

std::string spill_shortfall(const std::string& dir, std::uint64_t bytes) {
    try {
        const row_spill probe(dir, 0, 0);
        // A kept file's room is given back when a spill needs it.
        const std::uint64_t free = free_bytes(dir) + kept_bytes(dir);
        if (free >= bytes) return {};
        return dir + " has " + std::to_string(free) + " bytes free, " + std::to_string(bytes) + " needed";
    } catch (const file_error& e) {
        return e.what();
    }
}

row_spill::row_spill(const std::string& dir, std::size_t rows, std::size_t cols) : dir_(dir), rows_(rows), cols_(cols) {
    const std::uint64_t bytes = checked_mul(checked_mul(rows, cols, "spill file"), sizeof(double), "spill file");
    if (bytes > 0) {
        std::uint64_t held = 0;
        fd_ = take_kept(dir, bytes, held);
        capacity_ = std::max(held, bytes);
        if (fd_ >= 0 && held < bytes && !extended(dir, fd_, bytes, held)) {
            detail::close_fd(fd_);  // no room to extend it: a new file, the kept ones' room given back first
            drop_kept();
        }
    }
    if (fd_ < 0) {
        fd_ = new_file(dir);
        capacity_ = bytes;
        try {  // the destructor does not run for a constructor that throws: the descriptor is closed here
            int e = bytes == 0 ? 0 : reserve(dir, fd_, bytes, 0);
            if (e == ENOSPC && drop_kept()) e = reserve(dir, fd_, bytes, 0);  // the kept files' room may do
            if (e != 0)
                throw file_error(dir, "cannot reserve " + std::to_string(bytes) + " bytes for a spill file: " +
                                          std::strerror(e) + " (set TMPDIR to a directory with room)");
        } catch (...) {
            detail::close_fd(fd_);
            throw;
        }
    }
    spill_pool& p = pool();
    std::lock_guard<std::mutex> lock(p.mutex);
    ++p.live;
}

row_spill::row_spill(std::shared_ptr<const row_spill> source, std::size_t cols, row_map map)
    : dir_(source ? source->directory() : std::string()), rows_(source ? source->rows() : 0), cols_(cols),
      source_(std::move(source)), map_(std::move(map)) {
    if (!source_ || !map_) throw std::invalid_argument("row_spill: a view needs a file and a map of its rows");
}

namespace {
// The first `cols` columns of `wide`'s rows.
row_spill::row_map leading(const std::shared_ptr<const row_spill>& wide, std::size_t cols) {
    if (!wide || cols > wide->cols()) throw std::invalid_argument("row_spill: a view of more columns than its file has");
    return [w = wide->cols(), cols](std::size_t n, const double* src, double* dst) {
        for (std::size_t i = 0; i < n; ++i) std::copy(src + i * w, src + i * w + cols, dst + i * cols);
    };
}
}  // namespace

row_spill::row_spill(std::shared_ptr<const row_spill> wide, std::size_t cols) : row_spill(wide, cols, leading(wide, cols)) {}

row_spill::~row_spill() {
    if (fd_ < 0) return;  // a view
    spill_pool& p = pool();
    std::lock_guard<std::mutex> lock(p.mutex);
    if (--p.live == 0 || capacity_ == 0) {  // the last file: nothing is kept
        detail::close_fd(fd_);
        if (p.live == 0) close_kept(p.kept);
        return;
    }
    p.kept.push_back(kept_file{dir_, fd_, capacity_});
    fd_ = -1;
    if (p.kept.size() > kept_files) {
        detail::close_fd(p.kept.front().fd);
        p.kept.erase(p.kept.begin());
    }
}

void row_spill::check(std::size_t r0, std::size_t n) const {
    if (r0 > rows_ || n > rows_ - r0) throw std::out_of_range("row_spill: rows beyond the file");
}

void row_spill::write_rows(std::size_t r0, std::size_t n, const double* src) {
    if (source_) throw std::logic_error("row_spill: a view of a file is read only");
    check(r0, n);
    if (n == 0 || cols_ == 0) return;
    detail::pwrite_exact(fd_, src, checked_mul(checked_mul(n, cols_, "spill rows"), sizeof(double), "spill rows"),
                         checked_mul(checked_mul(r0, cols_, "spill offset"), sizeof(double), "spill offset"),
                         dir_ + " (spill file)");
    // [r0, r0 + n) joined to the rows written (merged with those it meets or touches)
    std::lock_guard<std::mutex> lock(written_mutex_);
    std::size_t lo = r0, hi = r0 + n;
    auto it = std::upper_bound(written_.begin(), written_.end(), std::make_pair(lo, hi));
    if (it != written_.begin() && std::prev(it)->second >= lo) {
        --it;
        lo = it->first;
        hi = std::max(hi, it->second);
        it = written_.erase(it);
    }
    while (it != written_.end() && it->first <= hi) {
        hi = std::max(hi, it->second);
        it = written_.erase(it);
    }
    written_.insert(it, {lo, hi});
}

void row_spill::read_rows(std::size_t r0, std::size_t n, double* dst) const {
    check(r0, n);
    if (n == 0 || cols_ == 0) return;
    if (source_) {
        // Whole rows of the source, mapped a block at a time, the blocks on one grid of view_block
        // rows from row 0 whatever rows are asked for (a block only partly asked for is mapped
        // whole and the rows asked for copied out): a map's rounding may depend on the rows it is
        // given at once (OpenBLAS's GEMM rounds the rows past a multiple of its kernel's 8
        // differently), and a row must have the same bits however its readers split their reads (a
        // checkpoint reads 4 MiB blocks, complete_pass 512 rows: a resumed run rounds as one that
        // did not stop).
        const std::size_t w = source_->cols();
        std::vector<double> rows(std::min(rows_, view_block) * w), part;
        for (std::size_t g0 = r0 / view_block * view_block; g0 < r0 + n; g0 += view_block) {
            const std::size_t b = std::min(view_block, rows_ - g0);
            const std::size_t lo = std::max(g0, r0), hi = std::min(g0 + b, r0 + n);
            source_->read_rows(g0, b, rows.data());
            if (lo == g0 && hi == g0 + b) {
                map_(b, rows.data(), dst + (g0 - r0) * cols_);
                continue;
            }
            part.resize(b * cols_);
            map_(b, rows.data(), part.data());
            std::copy(part.data() + (lo - g0) * cols_, part.data() + (hi - g0) * cols_, dst + (lo - r0) * cols_);
        }
        return;
    }
    {
        std::lock_guard<std::mutex> lock(written_mutex_);
        auto it = std::upper_bound(written_.begin(), written_.end(),
                                   std::make_pair(r0, std::numeric_limits<std::size_t>::max()));
        if (it == written_.begin() || std::prev(it)->second < r0 + n)
            throw std::logic_error("row_spill: rows " + std::to_string(r0) + " .. " + std::to_string(r0 + n) +
                                   " read before they were written");
    }
    detail::pread_exact(fd_, dst, checked_mul(checked_mul(n, cols_, "spill rows"), sizeof(double), "spill rows"),
                        checked_mul(checked_mul(r0, cols_, "spill offset"), sizeof(double), "spill offset"),
                        dir_ + " (spill file)");
}

namespace {
// Runs each block of `rows` rows of `cols` doubles through one buffer of at most `bytes`, in
// multiples of `grain` rows where it holds one (a view's grid: no block of it mapped twice).
void by_blocks(std::size_t rows, std::size_t cols, std::size_t bytes, std::size_t grain,
               const row_spill::block_fn& step) {
    if (!rows || !cols) return;
    std::size_t block = std::max<std::size_t>(1, bytes / (cols * sizeof(double)));
    if (block >= grain) block -= block % grain;
    std::vector<double> buffer(std::min(block, rows) * cols);
    for (std::size_t r0 = 0; r0 < rows; r0 += block) step(r0, std::min(block, rows - r0), buffer.data());
}
}  // namespace

void row_spill::read_blocks(std::size_t block_bytes, const block_fn& each) const {
    by_blocks(rows_, cols_, block_bytes, source_ ? view_block : 1, [&](std::size_t r0, std::size_t n, double* rows) {
        read_rows(r0, n, rows);
        each(r0, n, rows);
    });
}

void row_spill::write_blocks(std::size_t block_bytes, const block_fn& each) {
    by_blocks(rows_, cols_, block_bytes, 1, [&](std::size_t r0, std::size_t n, double* rows) {
        each(r0, n, rows);
        write_rows(r0, n, rows);
    });
}

namespace {
// Rows per block: about 32 MiB (one pwrite / pread each; the blocks are the matrix's own rows).
std::size_t block_rows(std::size_t cols) { return std::max<std::size_t>(1, (std::size_t{32} << 20) / (8 * std::max<std::size_t>(cols, 1))); }
}  // namespace

parked_matrix::parked_matrix(const std::string& dir, matrix_t& m) : file_(dir, m.shape(0), m.shape(1)) {
    const std::size_t rows = m.shape(0), cols = m.shape(1), step = block_rows(cols);
    if (rows > 0 && cols > 0)
        for (std::size_t r0 = 0; r0 < rows; r0 += step)
            file_.write_rows(r0, std::min(step, rows - r0), m.data() + r0 * cols);
    m = matrix_t();
}

matrix_t parked_matrix::restore() const {
    const std::size_t rows = file_.rows(), cols = file_.cols(), step = block_rows(cols);
    matrix_t m = matrix_t::from_shape({rows, cols});
    if (rows > 0 && cols > 0)
        for (std::size_t r0 = 0; r0 < rows; r0 += step)
            file_.read_rows(r0, std::min(step, rows - r0), m.data() + r0 * cols);
    return m;
}

}  // namespace recalign::io
