// Streaming reader of NumPy .npy files (format versions 1.0, 2.0 and 3.0; either byte order;
// C or Fortran order; bool, signed/unsigned integer and float16/32/64 element types).
//
// The header is parsed and checked against the file size before anything is allocated, so
// a truncated file or one announcing absurd dimensions is a file_error naming the byte
// offset, never an allocation. Rows (index 0 of the shape) are read in blocks with pread:
// memory is bounded by the block, whatever the file size. In a Fortran-order file a row is
// strided (one element per column, N elements apart); each block is gathered column by
// column and transposed, so a block costs one read per column instead of one per element.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "recalign/io/idx.hpp"  // row_block

namespace recalign::io {

struct npy_header {
    int major = 1, minor = 0;
    char kind = 'f';               // 'b' bool, 'i' signed, 'u' unsigned, 'f' float
    std::size_t item_size = 8;     // bytes per element
    bool big_endian = false;       // byte order of the stored elements
    bool fortran_order = false;
    std::vector<std::uint64_t> shape;  // shape[0] = rows; a 0-d array is refused
    std::uint64_t data_offset = 0;     // first byte of the data
    std::string descr;                 // as written, e.g. "<f4"

    std::uint64_t rows() const { return shape.empty() ? 0 : shape[0]; }
    std::uint64_t row_size() const;    // product of shape[1..] (1 for a 1-d array)
};

// Parses and validates the header of an open file of `file_size` bytes (reads at most the
// header's own bytes). Exposed for tests and `recalign info`-like tools.
npy_header read_npy_header(int fd, std::uint64_t file_size, const std::string& path);

class npy_reader {
public:
    explicit npy_reader(const std::string& path);
    ~npy_reader();
    npy_reader(npy_reader&&) noexcept;
    npy_reader& operator=(npy_reader&&) noexcept;

    const npy_header& header() const noexcept { return header_; }
    const std::string& path() const noexcept { return path_; }
    std::uint64_t rows() const noexcept { return header_.rows(); }
    std::size_t cols() const noexcept { return static_cast<std::size_t>(header_.row_size()); }
    std::uint64_t position() const noexcept { return position_; }  // rows consumed so far
    // uint8 stays uint8, little-endian float32 stays float32, everything else becomes float64.
    dtype delivery_type() const noexcept;

    void skip(std::uint64_t count);
    // Reads up to max_rows rows into `out` (reusing its storage); returns the rows read, 0 at the end.
    std::size_t read(std::size_t max_rows, row_block& out);
    // Reads up to max_rows items as integers (labels): integer or bool element type, 1-d or rows of width 1.
    std::size_t read_labels(std::size_t max_rows, std::vector<std::int64_t>& out);

private:
    void read_rows_raw(std::size_t n, std::vector<unsigned char>& dst);  // C-order bytes of n rows
    int fd_ = -1;
    std::string path_;
    npy_header header_;
    std::uint64_t position_ = 0;
    std::vector<unsigned char> raw_, gather_;
    std::vector<double> label_values_;  // read_labels' conversion buffer, reused across calls
};

}  // namespace recalign::io
