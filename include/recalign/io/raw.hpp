// Streaming reader of headerless binary files: N rows of D little-endian elements
// (uint8, float32 or float64), row-major. The shape and type come from the caller and are
// checked against the file size before anything is allocated.
#pragma once

#include <cstdint>
#include <string>

#include "recalign/io/idx.hpp"  // row_block

namespace recalign::io {

// Parses "u8", "f4" or "f8" (also "uint8", "float32", "float64"); throws std::invalid_argument otherwise.
dtype parse_raw_dtype(const std::string& s);

class raw_reader {
public:
    raw_reader(const std::string& path, std::uint64_t rows, std::uint64_t cols, dtype type);
    ~raw_reader();
    raw_reader(raw_reader&&) noexcept;
    raw_reader& operator=(raw_reader&&) noexcept;

    const std::string& path() const noexcept { return path_; }
    std::uint64_t rows() const noexcept { return rows_; }
    std::size_t cols() const noexcept { return static_cast<std::size_t>(cols_); }
    std::uint64_t position() const noexcept { return position_; }
    dtype delivery_type() const noexcept { return type_; }

    // Standard input ("-"), a pipe or a FIFO: read once, front to back (skipped rows are read
    // and dropped at the first read).
    bool pipe() const noexcept { return pipe_; }

    void skip(std::uint64_t count);
    std::size_t read(std::size_t max_rows, row_block& out);

private:
    int fd_ = -1;
    std::string path_;
    std::uint64_t rows_ = 0, cols_ = 0;
    dtype type_ = dtype::u8;
    std::uint64_t position_ = 0;
    bool pipe_ = false;
    std::uint64_t consumed_ = 0;  // rows taken from the pipe (skipped ones are read at the first read)
};

}  // namespace recalign::io
