// A data source: the images of one or several files read as one stream (IDX plain/.gz, .npy,
// raw binary, CIFAR-10/100 binary batches) with optional labels (IDX or .npy; CIFAR records
// carry theirs), or image files decoded into u8 rows (a torchvision ImageFolder tree or a list
// file; JPEG/PNG, io/image.hpp geometry, decoded by a thread pool one batch ahead), delivered
// in minibatches in their own type, over a row range
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
#include "recalign/io/cifar.hpp"
#include "recalign/io/idx.hpp"
#include "recalign/io/image.hpp"

namespace recalign::io {

struct image_list;
namespace detail {
class image_stream;
class batch_read_ahead;
}

enum class data_format : std::uint8_t {
    auto_detect = 0, idx = 1, npy = 2, raw = 3, folder = 4, list = 5, cifar10 = 6, cifar100 = 7
};
const char* format_name(data_format f);
// Parses "auto", "idx", "npy", "raw", "folder", "list", "cifar10" or "cifar100"; throws
// std::invalid_argument otherwise.
data_format parse_format(const std::string& s);
// A directory -> folder; else the first bytes of the file: gzip or IDX magic -> idx,
// "\x93NUMPY" -> npy; else a whole number of CIFAR records of one kind -> cifar10/cifar100.
// Throws file_error when it is none of these (raw files must be named explicitly or by a
// shape, list files by --root or --format list).
data_format detect_format(const std::string& path);
bool is_image_format(data_format f) noexcept;  // folder or list: decoded image files
bool is_cifar_format(data_format f) noexcept;

// One file of an input, as the resume fingerprint lists it.
struct file_entry {
    std::string path;
    std::uint64_t size = 0;
    std::int64_t mtime_ns = 0;
    bool operator==(const file_entry& o) const { return path == o.path && size == o.size && mtime_ns == o.mtime_ns; }
};

// A sample --skip-unreadable left out: its index in the stream, its file and why.
struct skipped_file {
    std::uint64_t index = 0;
    std::string path, reason;
};

struct source_options {
    std::vector<std::string> images;  // read one after the other as one stream
    std::vector<std::string> labels;  // empty: no labels; else one per images file (IDX/.npy)
    data_format format = data_format::auto_detect;  // of the images; labels are always detected
    std::string root;            // list files: the directory their paths are relative to
    std::string classes_from;    // list files: class names and ids from this folder or file (read_class_names)
    image_geometry geometry;     // folder, list and CIFAR: channels, resize, crop, layout
    cifar_label label_kind = cifar_label::fine;  // CIFAR-100
    std::size_t threads = 0;     // decoding threads for folder/list (0 = the number of cores)
    bool skip_unreadable = false;  // folder/list: leave out (and list) files that do not decode
    std::uint64_t raw_rows = 0;  // raw files: N (0 = as many whole rows as the file holds) ...
    std::uint64_t raw_cols = 0;  // ... and D (required for raw)
    dtype raw_type = dtype::u8;
    double scale = 1.0;          // every value is multiplied by this (by the accumulators: batch_view::scale)
    std::size_t batch = 1000;    // rows per minibatch
    std::uint64_t skip = 0;      // first row of the range
    std::uint64_t limit = 0;     // rows in the range (0 = to the end of the file)
    // The images argument(s) as a user reads them in messages: "a", or "a + b + c".
    std::string describe() const;
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
    std::vector<skipped_file> skipped;   // --skip-unreadable: samples of this batch left out
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
    // Bytes of the batches held at once as delivered (--batch rows, or the range's if fewer, of D
    // values each in the type delivered; two with a pipe's read ahead or an image decoder, which
    // decodes the next batch meanwhile; plus, for images, each decoding thread's file, decoded
    // image and resize scratch at the first image's size): what a sketch route, which converts a
    // batch a block at a time, adds to its state (tools/recalign/validate.cpp).
    std::uint64_t batch_bytes() const;
    std::size_t dim() const noexcept { return cols_; }
    bool has_labels() const noexcept { return !options_.labels.empty() || is_image_format(format_) || is_cifar_format(format_); }
    // Class names by class id (folders, lists naming classes, CIFAR with its meta files).
    const std::vector<std::string>& class_names() const noexcept { return class_names_; }
    // The image files of a folder or list source, in reading order (nullptr otherwise).
    const image_list* image_files() const noexcept { return list_.get(); }
    std::uint64_t file_rows() const noexcept { return file_rows_; }
    std::uint64_t total() const noexcept { return total_; }        // rows in the range
    std::uint64_t position() const noexcept { return position_; }  // rows of the range delivered

    // Next minibatch of up to options().batch samples (or max_rows when non-zero); false at the
    // end. Positions count samples: with skip_unreadable, the rows delivered can be fewer
    // (even 0), out.skipped naming the others. An unreadable image without skip_unreadable
    // throws input_error naming the file and the sample index (the source stays usable).
    bool next(source_batch& out, std::size_t max_rows = 0);
    // Continues from `position` rows into the range (0 = the start, as for another pass).
    void seek(std::uint64_t position);

    // One pass over the whole labels file (not only the range, so that runs over parts of
    // one file agree and can be merged): the largest label + 1. Throws input_error naming
    // the row for a negative label. Needs labels.
    std::size_t scan_classes() const;

    // One file: its fingerprint as before. Several files, or image files: path = describe(),
    // size = their total, mtime = the newest, hash over every file's name, size, mtime (and
    // the content hash of array files) and the class names; files() lists them.
    file_fingerprint images_fingerprint() const;
    file_fingerprint labels_fingerprint() const;
    // The files behind images_fingerprint() when it covers several (empty for one file).
    std::vector<file_entry> files() const;

    struct reader;  // implementation detail (one per format)
    struct chain;   // several files of one array format as one stream

private:
    void open_at(std::uint64_t position, bool reopen);
    void open_images();
    static void read_arrays(chain& images, chain* labels, bool carried, std::size_t want, source_batch& out);

    source_options options_;
    data_format format_ = data_format::auto_detect;
    data_format labels_format_ = data_format::auto_detect;
    std::size_t cols_ = 0;
    std::uint64_t file_rows_ = 0;
    std::uint64_t total_ = 0;
    std::uint64_t position_ = 0;
    std::shared_ptr<chain> images_;                          // shared with a read ahead
    std::shared_ptr<chain> labels_;
    std::vector<std::string> class_names_;
    std::shared_ptr<const image_list> list_;               // folder, list
    std::unique_ptr<detail::image_stream> decoder_;          // folder, list
    std::uint64_t decoding_bytes_ = 0;                       // the decoders' scratch (batch_bytes)
    std::unique_ptr<detail::batch_read_ahead> ahead_;        // array formats from a pipe
};

}  // namespace recalign::io
