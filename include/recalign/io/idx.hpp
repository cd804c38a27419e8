// Streaming reader of IDX files (the MNIST / Fashion-MNIST format), plain or gzip-compressed
// (detected by content, not name). The header is validated before anything is allocated;
// rows are read in blocks, so memory is bounded by the block size whatever the file size.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "recalign/core/batch.hpp"

namespace recalign::io {

enum class idx_type : std::uint8_t { u8 = 0x08, i8 = 0x09, i16 = 0x0B, i32 = 0x0C, f32 = 0x0D, f64 = 0x0E };
const char* idx_type_name(idx_type t);
std::size_t idx_type_size(idx_type t);

struct idx_header {
    idx_type type = idx_type::u8;
    std::vector<std::uint64_t> dims;  // dims[0] = number of items (rows)
    std::uint64_t rows() const { return dims.empty() ? 0 : dims[0]; }
    std::uint64_t row_size() const;   // product of dims[1..] (1 for a 1-d file of labels)
    std::size_t header_bytes() const { return 4 + 4 * dims.size(); }
};

// A block of rows in the reader's delivery type: uint8 files stay uint8, float32 stays
// float32, every other type is widened to float64.
struct row_block {
    dtype type = dtype::u8;
    std::vector<unsigned char> bytes;
    std::size_t rows = 0;
    std::size_t cols = 0;
    batch_view view() const;
};

class idx_reader {
public:
    explicit idx_reader(const std::string& path);
    ~idx_reader();
    idx_reader(idx_reader&&) noexcept;
    idx_reader& operator=(idx_reader&&) noexcept;

    const idx_header& header() const noexcept { return header_; }
    const std::string& path() const noexcept { return path_; }
    bool compressed() const noexcept { return compressed_; }
    std::uint64_t rows() const noexcept { return header_.rows(); }
    std::size_t cols() const noexcept { return static_cast<std::size_t>(header_.row_size()); }
    std::uint64_t position() const noexcept { return position_; }  // rows consumed so far
    dtype delivery_type() const noexcept;

    // Skips `count` rows (errors if the file has fewer left).
    void skip(std::uint64_t count);
    // Reads up to max_rows rows into `out` (reusing its storage); returns the rows read,
    // 0 at the end. A file that ends early is a file_error naming the byte offset.
    std::size_t read(std::size_t max_rows, row_block& out);
    // Reads up to max_rows scalar items as integers (labels); 1-d files or rows of width 1.
    std::size_t read_labels(std::size_t max_rows, std::vector<std::int64_t>& out);

private:
    void read_exact(void* dst, std::size_t bytes);
    void read_growing(std::vector<unsigned char>& buf, std::size_t bytes);
    struct gz;
    std::unique_ptr<gz> file_;
    std::string path_;
    idx_header header_;
    bool compressed_ = false;
    std::uint64_t position_ = 0;
    std::uint64_t offset_ = 0;  // byte offset in the (uncompressed) stream
    std::vector<unsigned char> raw_;
};

}  // namespace recalign::io
