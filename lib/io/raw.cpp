#include "recalign/io/raw.hpp"

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "posix_file.hpp"
#include "recalign/core/checked.hpp"
#include "recalign/core/errors.hpp"

namespace recalign::io {

dtype parse_raw_dtype(const std::string& s) {
    if (s == "u8" || s == "uint8") return dtype::u8;
    if (s == "f4" || s == "float32") return dtype::f32;
    if (s == "f8" || s == "float64") return dtype::f64;
    throw std::invalid_argument("unknown raw dtype '" + s + "' (expected u8, f4 or f8)");
}

raw_reader::raw_reader(const std::string& path, std::uint64_t rows, std::uint64_t cols, dtype type)
    : path_(path), rows_(rows), cols_(cols), type_(type) {
    if (cols == 0 || cols > (std::uint64_t(1) << 31))
        throw std::invalid_argument(path + ": raw row width " + std::to_string(cols) + " is out of range (1 .. 2^31)");
    std::uint64_t size = 0;
    fd_ = detail::open_read_stream(path, size, pipe_);
    const std::uint64_t row_bytes = cols * dtype_size(type);  // <= 2^31 x 8
    if (pipe_ && rows_ == 0) {
        detail::close_fd(fd_);
        throw std::invalid_argument(path + ": a pipe's length is unknown before it is read: give its rows as N in --raw-shape N," +
                                    std::to_string(cols));
    }
    if (pipe_) size = checked_mul(rows_, row_bytes, "raw N x D bytes");  // what the pipe must deliver
    if (rows_ == 0) rows_ = size / row_bytes;  // N = 0: as many rows as the file holds
    std::uint64_t need = 0;
    std::string overflow;
    try {
        checked_bytes<double>(checked_mul(rows_, cols, "raw N x D"), "raw values as float64");
        need = checked_mul(rows_, row_bytes, "raw N x D bytes");
    } catch (const size_overflow& e) {
        overflow = e.what();
    }
    if (!overflow.empty() || need != size) {
        detail::close_fd(fd_);
        throw file_error(path, std::min(size, need),
                         "raw file has " + std::to_string(size) + " bytes but the shape " + std::to_string(rows) + "," +
                             std::to_string(cols) + " of " + dtype_name(type) + " needs " +
                             (overflow.empty() ? std::to_string(need) + " bytes" : "more than can be addressed (" + overflow + ")") +
                             (size % row_bytes ? " (not a whole number of rows)" : ""));
    }
}

raw_reader::~raw_reader() { detail::close_fd(fd_); }
raw_reader::raw_reader(raw_reader&& o) noexcept
    : fd_(o.fd_), path_(std::move(o.path_)), rows_(o.rows_), cols_(o.cols_), type_(o.type_), position_(o.position_),
      pipe_(o.pipe_), consumed_(o.consumed_) {
    o.fd_ = -1;
}
raw_reader& raw_reader::operator=(raw_reader&& o) noexcept {
    if (this != &o) {
        detail::close_fd(fd_);
        fd_ = o.fd_;
        o.fd_ = -1;
        path_ = std::move(o.path_);
        rows_ = o.rows_;
        cols_ = o.cols_;
        type_ = o.type_;
        position_ = o.position_;
        pipe_ = o.pipe_;
        consumed_ = o.consumed_;
    }
    return *this;
}

void raw_reader::skip(std::uint64_t count) {
    if (count > rows_ - position_)
        throw std::invalid_argument("cannot skip " + std::to_string(count) + " rows of " + path_ + ": only " +
                                    std::to_string(rows_ - position_) + " remain");
    position_ += count;
}

std::size_t raw_reader::read(std::size_t max_rows, row_block& out) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(rows_ - position_, max_rows));
    const std::size_t es = dtype_size(type_);
    out.type = type_;
    out.rows = n;
    out.cols = cols();
    out.bytes.resize(checked_product({n, cols_, es}, "raw block bytes"));  // within the checked N x D
    if (n == 0) return 0;
    const std::uint64_t offset = checked_product({position_, cols_, es}, "raw offset");
    if (pipe_) {
        // Skipped rows are read and dropped here, at the first read, so that opening the
        // source (e.g. for its header alone) consumes nothing.
        while (consumed_ < position_) {
            const std::uint64_t rows = std::min<std::uint64_t>(position_ - consumed_, 1024);
            std::vector<unsigned char> drop(static_cast<std::size_t>(rows * cols_ * es));
            detail::read_exact(fd_, drop.data(), drop.size(), consumed_ * cols_ * es, path_);
            consumed_ += rows;
        }
        detail::read_exact(fd_, out.bytes.data(), out.bytes.size(), offset, path_);
        consumed_ += n;
    }
    else detail::pread_exact(fd_, out.bytes.data(), out.bytes.size(), offset, path_);
    if (detail::host_big_endian() && es > 1) {
        for (std::size_t i = 0; i < out.bytes.size(); i += es)
            for (std::size_t a = 0, b = es - 1; a < b; ++a, --b) std::swap(out.bytes[i + a], out.bytes[i + b]);
    }
    position_ += n;
    return n;
}

}  // namespace recalign::io
