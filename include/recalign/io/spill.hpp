// A D x w matrix of doubles kept on disk instead of in memory (docs/benchmarks-log.md "mem224"): the
// incremental refinement passes of denoise hold the carried directions [R, T] and [Sxx R, 0]
// (2 D x m doubles, 2.5 GB at 224x224x3) only to join them to what the pass reads once it
// ends (complete_pass), so during the pass they live in an unlinked temporary file, written
// and read back a block of rows at a time (pwrite / pread). The file has no name from the
// moment it exists (O_TMPFILE, or mkstemp and unlink where the file system has no O_TMPFILE):
// the system frees it when the process ends, normally, on an error or killed. Its whole size
// is reserved when it is made (fallocate): a full disk is an error then, never in the
// middle of writing. The page cache may hold some of it; that memory is the system's to
// reclaim, not the process's resident set.
//
// A dropped file is kept open for the next spill of about its size in the same directory
// while another file of the process lives (at most four kept; every kept file is closed
// when the last file dies, and when a new one finds no room): writing over a file's cached
// pages was 5 to 14 times faster than writing new ones on the VM of BENCHMARKS.md, whose
// balloon hands freed pages back to the host (tools/bench/bench_spill.cpp; docs/benchmarks-log.md,
// "The forty-ninth session").
// So a file may hold an earlier file's bytes: a row is read only after it is written
// (read_rows throws std::logic_error otherwise, on a new file too).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "recalign/core/xt.hpp"

namespace recalign::io {

// Where spill files go: $TMPDIR when set and not empty, else /tmp.
std::string spill_directory();
// Bytes an unprivileged user may still write in `dir` (statvfs: f_bavail x f_frsize); throws
// file_error naming `dir` when it cannot be examined.
std::uint64_t free_bytes(const std::string& dir);
// Why `bytes` of spill files could not be made in `dir`; empty when they can. One line naming
// `dir`: no file can be made there (not a directory, no permission, a read-only file system:
// a spill file of no size is made to find out, as statvfs answers for any path), or it has
// fewer than `bytes` free. The refusal before reading of the CLI (denoise --refine:
// tools/recalign/denoise_sketch.cpp) and of Python's VerifiedDenoising (refine=), each saying
// what the bytes are for and how to do without them.
std::string spill_shortfall(const std::string& dir, std::uint64_t bytes);

// Closes the files kept for reuse (above) now: their disk space is given back at once.
void close_kept_spills() noexcept;

class row_spill {
public:
    // An unlinked file in `dir` of rows x cols doubles, row-major, all reserved (fallocate;
    // where the file system cannot, statvfs's free bytes are checked instead), or a kept one
    // (above) with room for them. Throws file_error naming `dir` when it cannot be made or
    // the space is not there.
    row_spill(const std::string& dir, std::size_t rows, std::size_t cols);
    // A view: the rows of `source` as `map` makes them, `cols` doubles each (map(n, src, dst):
    // the n whole rows of `source` from a multiple of view_block, row-major, n = view_block but
    // at the end, into n rows of `cols`), computed whenever they are read, from the same blocks
    // whatever rows are asked for (a row's bits do not depend on the reads); nothing is written
    // (write_rows throws std::logic_error), `source` kept alive.
    // Making one does no I/O, so it cannot fail on the disk. denoising_restart keeps Sxx R as a
    // view of Sxx Q rotated by its C (no 1.5 GB written at the restart and read back by
    // complete_pass at 224x224x3). Throws std::invalid_argument without a source or a map.
    using row_map = std::function<void(std::size_t n, const double* src, double* dst)>;
    static constexpr std::size_t view_block = 256;
    row_spill(std::shared_ptr<const row_spill> source, std::size_t cols, row_map map);
    // The first `cols` columns of `wide` (cols <= wide->cols()): a view as above. Throws
    // std::invalid_argument for more columns than `wide` has (or none). denoising_restart narrows
    // Sxx R with it after Q is consumed.
    row_spill(std::shared_ptr<const row_spill> wide, std::size_t cols);
    ~row_spill();
    row_spill(const row_spill&) = delete;
    row_spill& operator=(const row_spill&) = delete;

    // Rows r0 .. r0 + n (each cols() doubles, contiguous in `src` / `dst`). Throws
    // std::out_of_range beyond rows(), file_error on an I/O error (naming the directory),
    // std::logic_error for reading a row of a file that was not written (a view's rows are
    // its file's).
    void write_rows(std::size_t r0, std::size_t n, const double* src);
    void read_rows(std::size_t r0, std::size_t n, double* dst) const;
    // Every row, a block at a time through one buffer of at most `block_bytes` (at least a row):
    // read_blocks reads each block and hands it to each(r0, n, rows); write_blocks has
    // each(r0, n, rows) fill the block, then writes it. The copies to and from checkpoints
    // (never a whole matrix in memory). Errors as read_rows / write_rows, and each's own.
    using block_fn = std::function<void(std::size_t r0, std::size_t n, double* rows)>;
    void read_blocks(std::size_t block_bytes, const block_fn& each) const;
    void write_blocks(std::size_t block_bytes, const block_fn& each);

    std::size_t rows() const noexcept { return rows_; }
    std::size_t cols() const noexcept { return cols_; }
    const std::string& directory() const noexcept { return dir_; }

private:
    void check(std::size_t r0, std::size_t n) const;
    std::string dir_;
    std::size_t rows_ = 0, cols_ = 0;
    int fd_ = -1;
    std::uint64_t capacity_ = 0;  // the file's reserved bytes (a kept file's may exceed rows x cols)
    mutable std::mutex written_mutex_;
    std::vector<std::pair<std::size_t, std::size_t>> written_;  // rows written: [begin, end), disjoint, sorted
    std::shared_ptr<const row_spill> source_;  // a view's (fd_ is then -1)
    row_map map_;
};

// A whole matrix waiting on disk while a decomposition beside it does not read it (docs/benchmarks-log.md
// "lean5": the exact denoise's Sxx while dsyevd decomposes C, each V* until the clean
// eigenvectors exist): made from the matrix, which is written by blocks of rows into an
// unlinked row_spill in `dir` and released (its memory returned); restore() reads it back, the
// same shape and bits. Throws file_error naming `dir` (the matrix is then left as it was).
class parked_matrix {
public:
    parked_matrix(const std::string& dir, matrix_t& m);
    matrix_t restore() const;
    std::size_t rows() const noexcept { return file_.rows(); }
    std::size_t cols() const noexcept { return file_.cols(); }

private:
    row_spill file_;
};

}  // namespace recalign::io
