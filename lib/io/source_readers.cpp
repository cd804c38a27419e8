// The array readers behind io::data_source: IDX (plain or .gz), NPY, raw and CIFAR records
// (split from source.cpp, which streams their rows).
#include "source_readers.hpp"

#include <algorithm>
#include <stdexcept>
#include <utility>

#include "posix_file.hpp"
#include "recalign/core/checked.hpp"
#include "recalign/core/errors.hpp"
#include "recalign/io/cifar.hpp"
#include "recalign/io/idx.hpp"
#include "recalign/io/npy.hpp"
#include "recalign/io/raw.hpp"

namespace recalign::io {

namespace {

// Deflate cannot compress better than about 1032:1 (RFC 1951: a 258-byte match costs at
// least 2 bits), so a .gz IDX whose header announces more data than that is truncated or
// corrupt: refused here, before a block is ever allocated for it (the plain-file case is
// checked against the file size by idx_reader itself).
constexpr std::uint64_t max_deflate_ratio = 1032;

// A reader of one array file: its rows, width, delivered type, skipping and reading forwarded to R.
template <class R>
struct array_impl : data_source::reader {
    R r;
    template <class... A>
    explicit array_impl(A&&... args) : r(std::forward<A>(args)...) {}
    std::uint64_t rows() const override { return r.rows(); }
    std::size_t cols() const override { return r.cols(); }
    dtype delivery() const override { return r.delivery_type(); }
    void skip(std::uint64_t n) override { r.skip(n); }
    std::size_t read(std::size_t n, row_block& out) override { return r.read(n, out); }
};

struct idx_impl final : array_impl<idx_reader> {
    explicit idx_impl(const std::string& p) : array_impl(p) {
        if (!r.compressed()) return;
        std::uint64_t size = 0;
        int fd = detail::open_read(p, size);
        detail::close_fd(fd);
        const idx_header& h = r.header();
        const long double need = static_cast<long double>(h.header_bytes()) +
                                 static_cast<long double>(h.rows()) * static_cast<long double>(h.row_size()) *
                                     static_cast<long double>(idx_type_size(h.type));
        if (need > static_cast<long double>(size) * max_deflate_ratio + 1024)
            throw file_error(p, 4, "IDX header announces " + std::to_string(static_cast<unsigned long long>(need)) +
                                       " uncompressed bytes, more than a gzip file of " + std::to_string(size) +
                                       " bytes can hold (truncated or corrupt)");
    }
    std::string type_name() const override { return idx_type_name(r.header().type); }
    std::size_t read_labels(std::size_t n, std::vector<std::int64_t>& out) override { return r.read_labels(n, out); }
};

struct npy_impl final : array_impl<npy_reader> {
    using array_impl::array_impl;
    std::string type_name() const override { return r.header().descr; }
    std::size_t read_labels(std::size_t n, std::vector<std::int64_t>& out) override { return r.read_labels(n, out); }
};

struct raw_impl final : array_impl<raw_reader> {
    using array_impl::array_impl;
    std::string type_name() const override { return dtype_name(r.delivery_type()); }
    bool pipe() const override { return r.pipe(); }
    std::size_t read_labels(std::size_t, std::vector<std::int64_t>&) override {
        throw std::invalid_argument("labels cannot be read from a raw file (use IDX or .npy)");
    }
};

// CIFAR records -> rows in the geometry asked (io/cifar.hpp), labels carried along.
struct cifar_impl final : data_source::reader {
    std::string path;
    cifar_kind kind;
    cifar_label label;
    image_geometry g;
    std::size_t out_h = 0, out_w = 0, cols_ = 0;
    int fd = -1;
    std::uint64_t size = 0, rows_ = 0, position = 0;
    std::vector<std::uint8_t> records;
    image decoded, scratch;
    std::vector<std::int64_t> labels;

    cifar_impl(const std::string& p, cifar_kind k, cifar_label l, const image_geometry& geometry)
        : path(p), kind(k), label(l), g(geometry) {
        fd = detail::open_read(p, size);
        const std::size_t rec = cifar_record_size(k);
        if (size == 0 || size % rec != 0) {
            detail::close_fd(fd);
            throw file_error(p, size - size % rec,
                             std::to_string(size) + " bytes are not a whole number of " +
                                 (k == cifar_kind::cifar10 ? "CIFAR-10 (3073-byte)" : "CIFAR-100 (3074-byte)") +
                                 " records (record " + std::to_string(size / rec) + " is cut short; wrong --format?)");
        }
        rows_ = size / rec;
        const auto hw = output_size(cifar_side, cifar_side, g);
        out_h = hw.first;
        out_w = hw.second;
        cols_ = checked_product({out_h, out_w, static_cast<std::size_t>(g.channels)}, "CIFAR row size");
    }
    ~cifar_impl() override { detail::close_fd(fd); }
    std::uint64_t rows() const override { return rows_; }
    std::size_t cols() const override { return cols_; }
    std::string type_name() const override { return "u8"; }
    dtype delivery() const override { return dtype::u8; }
    void skip(std::uint64_t n) override { position += n; }
    std::size_t read(std::size_t n, row_block& out) override {
        n = static_cast<std::size_t>(std::min<std::uint64_t>(rows_ - position, n));
        const std::size_t rec = cifar_record_size(kind);
        records.resize(checked_product({n, rec}, "CIFAR block bytes"));
        const std::uint64_t offset = position * rec;
        detail::pread_exact(fd, records.data(), records.size(), offset, path);
        out.type = dtype::u8;
        out.rows = n;
        out.cols = cols_;
        out.bytes.resize(checked_product({n, cols_}, "CIFAR block bytes"));
        labels.resize(n);
        for (std::size_t i = 0; i < n; ++i) {
            labels[i] = decode_cifar_record(records.data() + i * rec, kind, label, g.channels, decoded, path, offset + i * rec);
            transform_image(decoded, g, scratch, out.bytes.data() + i * cols_, cols_);
        }
        position += n;
        return n;
    }
    std::size_t read_labels(std::size_t, std::vector<std::int64_t>&) override {
        throw std::logic_error("CIFAR labels travel with the records");
    }
    const std::vector<std::int64_t>* carried_labels() const override { return &labels; }
};

}  // namespace

std::unique_ptr<data_source::reader> open_reader(const std::string& path, data_format f, const source_options& o) {
    switch (f) {
        case data_format::idx: return std::make_unique<idx_impl>(path);
        case data_format::npy: return std::make_unique<npy_impl>(path);
        case data_format::raw:
            if (o.raw_cols == 0) throw std::invalid_argument("a raw file needs --raw-shape N,D (D was not given)");
            return std::make_unique<raw_impl>(path, o.raw_rows, o.raw_cols, o.raw_type);
        case data_format::cifar10:
        case data_format::cifar100:
            return std::make_unique<cifar_impl>(path, f == data_format::cifar10 ? cifar_kind::cifar10 : cifar_kind::cifar100,
                                                o.label_kind, o.geometry);
        case data_format::auto_detect:
        case data_format::folder:
        case data_format::list: break;
    }
    throw std::logic_error("open_reader: unresolved format");
}

}  // namespace recalign::io
