// A data source: the images of one file (IDX plain/.gz, .npy, or raw binary) with optional
// labels (IDX or .npy), delivered in minibatches in their own type, over a row range
// [skip, skip + limit). It remembers how many rows of the range it has delivered
// (position), can seek back to any position (so a resumed run sees the same batch
// boundaries as an uninterrupted one) and fingerprints its files (so a resumed run can
// refuse a different input). Memory is bounded by the batch: nothing here loads a file.
// Only bytes move here; no linear algebra (DESIGN.md).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "recalign/core/batch.hpp"
#include "recalign/io/idx.hpp"

namespace recalign::io {

enum class data_format : std::uint8_t { auto_detect = 0, idx = 1, npy = 2, raw = 3 };
const char* format_name(data_format f);
// Parses "auto", "idx", "npy" or "raw"; throws std::invalid_argument otherwise.
data_format parse_format(const std::string& s);
// Looks at the first bytes of a file: gzip or IDX magic -> idx, "\x93NUMPY" -> npy.
// Throws file_error when it is neither (raw files must be named explicitly or by a shape).
data_format detect_format(const std::string& path);

struct source_options {
    std::string images;
    std::string labels;  // empty: no labels
    data_format format = data_format::auto_detect;  // of the images; labels are always detected
    std::uint64_t raw_rows = 0;  // raw files: N (0 = as many whole rows as the file holds) ...
    std::uint64_t raw_cols = 0;  // ... and D (required for raw)
    dtype raw_type = dtype::u8;
    double scale = 1.0;          // every value is multiplied by this (by the accumulators: batch_view::scale)
    std::size_t batch = 1000;    // rows per minibatch
    std::uint64_t skip = 0;      // first row of the range
    std::uint64_t limit = 0;     // rows in the range (0 = to the end of the file)
};

// What identifies a file's content cheaply: absolute path, size, modification time and a
// hash of its first and last 64 KiB (which hold an IDX/.npy header and the final rows).
struct file_fingerprint {
    std::string path;
    std::uint64_t size = 0;
    std::int64_t mtime_ns = 0;
    std::uint64_t content_hash = 0;
    bool empty() const noexcept { return path.empty(); }
    // Empty string when equal, else a sentence saying what differs.
    std::string difference(const file_fingerprint& other) const;
    bool operator==(const file_fingerprint& o) const {
        return path == o.path && size == o.size && mtime_ns == o.mtime_ns && content_hash == o.content_hash;
    }
};
file_fingerprint fingerprint_file(const std::string& path);

// One minibatch. The rows stay in the type the reader delivers: u8, f32 or f64 as stored
// (native-endian .npy and raw; IDX u8 and f32); every other stored type (i8/i16/i32/i64,
// u16/u32/u64, float16, bool, big-endian .npy) is converted once, by the reader, to f64:
// exact for every integer below 2^53, where f32 would round above 2^24, and the same numbers
// as before this batch kept its own type. The scale is not applied here: view() carries it
// (batch_view::scale) to the accumulators. Keep one source_batch for a whole pass: next()
// reuses its buffers, so a pass allocates nothing per batch once the first one is read.
struct source_batch {
    row_block block;                     // rows x cols, row-major, in block.type
    std::vector<std::int64_t> labels;    // rows entries, or empty without labels
    std::size_t rows = 0;
    std::size_t cols = 0;
    std::uint64_t first_row = 0;         // index of the first row in the images file
    double scale = 1.0;                  // source_options::scale
    dtype type() const noexcept { return block.type; }
    batch_view view() const {
        batch_view v = block.view();
        v.scale = scale;
        return v;
    }
    target_view targets() const { return target_view::class_ids(labels.data(), labels.size()); }
};

class data_source {
public:
    explicit data_source(const source_options& options);
    ~data_source();
    data_source(data_source&&) noexcept;
    data_source& operator=(data_source&&) noexcept;

    const source_options& options() const noexcept { return options_; }
    data_format format() const noexcept { return format_; }   // resolved
    data_format labels_format() const noexcept { return labels_format_; }
    std::string type_name() const;                             // element type as stored, e.g. "u8", "<f4"
    std::size_t dim() const noexcept { return cols_; }
    bool has_labels() const noexcept { return !options_.labels.empty(); }
    std::uint64_t file_rows() const noexcept { return file_rows_; }
    std::uint64_t total() const noexcept { return total_; }        // rows in the range
    std::uint64_t position() const noexcept { return position_; }  // rows of the range delivered

    // Next minibatch of up to options().batch rows (or max_rows when non-zero); false at the end.
    bool next(source_batch& out, std::size_t max_rows = 0);
    // Continues from `position` rows into the range (0 = the start, as for another pass).
    void seek(std::uint64_t position);

    // One pass over the whole labels file (not only the range, so that runs over parts of
    // one file agree and can be merged): the largest label + 1. Throws input_error naming
    // the row for a negative label. Needs labels.
    std::size_t scan_classes() const;

    file_fingerprint images_fingerprint() const { return fingerprint_file(options_.images); }
    file_fingerprint labels_fingerprint() const {
        return has_labels() ? fingerprint_file(options_.labels) : file_fingerprint{};
    }

    struct reader;  // implementation detail (one per format)

private:
    void open_at(std::uint64_t position);

    source_options options_;
    data_format format_ = data_format::auto_detect;
    data_format labels_format_ = data_format::auto_detect;
    std::size_t cols_ = 0;
    std::uint64_t file_rows_ = 0;
    std::uint64_t total_ = 0;
    std::uint64_t position_ = 0;
    std::unique_ptr<reader> images_;
    std::unique_ptr<reader> labels_;
};

}  // namespace recalign::io
