#include "recalign/io/source.hpp"

#include <sys/stat.h>

#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "posix_file.hpp"
#include "recalign/core/errors.hpp"
#include "recalign/core/hash.hpp"
#include "recalign/io/idx.hpp"
#include "recalign/io/npy.hpp"
#include "recalign/io/raw.hpp"

namespace recalign::io {

const char* format_name(data_format f) {
    switch (f) {
        case data_format::auto_detect: return "auto";
        case data_format::idx: return "idx";
        case data_format::npy: return "npy";
        case data_format::raw: return "raw";
    }
    return "unknown";
}

data_format parse_format(const std::string& s) {
    if (s == "auto") return data_format::auto_detect;
    if (s == "idx") return data_format::idx;
    if (s == "npy") return data_format::npy;
    if (s == "raw") return data_format::raw;
    throw std::invalid_argument("unknown format '" + s + "' (expected auto, idx, npy or raw)");
}

data_format detect_format(const std::string& path) {
    std::uint64_t size = 0;
    int fd = detail::open_read(path, size);
    unsigned char b[6] = {};
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(size, 6));
    try {
        detail::pread_exact(fd, b, n, 0, path);
    } catch (...) {
        detail::close_fd(fd);
        throw;
    }
    detail::close_fd(fd);
    if (n >= 2 && b[0] == 0x1f && b[1] == 0x8b) return data_format::idx;  // gzip: IDX .gz
    if (n >= 6 && std::memcmp(b, "\x93NUMPY", 6) == 0) return data_format::npy;
    if (n >= 4 && b[0] == 0 && b[1] == 0 &&
        (b[2] == 0x08 || b[2] == 0x09 || b[2] == 0x0B || b[2] == 0x0C || b[2] == 0x0D || b[2] == 0x0E))
        return data_format::idx;
    throw file_error(path, 0, "cannot tell the format: neither IDX, gzip nor .npy magic "
                              "(for headerless data pass --format raw --raw-shape N,D --raw-dtype T)");
}

std::string file_fingerprint::difference(const file_fingerprint& o) const {
    if (path != o.path) return "it was made from " + (path.empty() ? std::string("no file") : path) + ", not " +
                               (o.path.empty() ? std::string("no file") : o.path);
    if (size != o.size)
        return path + " had " + std::to_string(size) + " bytes and now has " + std::to_string(o.size);
    if (content_hash != o.content_hash) return "the content of " + path + " has changed";
    if (mtime_ns != o.mtime_ns) return path + " has been modified since (its modification time differs)";
    return {};
}

file_fingerprint fingerprint_file(const std::string& path) {
    file_fingerprint f;
    char resolved[PATH_MAX];
    f.path = ::realpath(path.c_str(), resolved) ? std::string(resolved) : path;
    bool pipe = false;
    int fd = detail::open_read_stream(path, f.size, pipe);
    if (pipe) {
        // Nothing to compare without consuming it: a pipe is identified by its name only (and a
        // run reading one refuses --resume before this is ever compared).
        detail::close_fd(fd);
        f.content_hash = fnv1a().add(std::string_view("pipe")).value();
        return f;
    }
    struct stat st {};
    ::fstat(fd, &st);
    f.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
    constexpr std::uint64_t block = 64 * 1024;
    std::vector<unsigned char> buf(static_cast<std::size_t>(std::min(block, f.size)));
    fnv1a h;
    h.add(f.size);
    try {
        detail::pread_exact(fd, buf.data(), buf.size(), 0, path);
        h.add_bytes(buf.data(), buf.size());
        if (f.size > block) {
            detail::pread_exact(fd, buf.data(), buf.size(), f.size - block, path);
            h.add_bytes(buf.data(), buf.size());
        }
    } catch (...) {
        detail::close_fd(fd);
        throw;
    }
    detail::close_fd(fd);
    f.content_hash = h.value();
    return f;
}

// One interface over the three readers.
struct data_source::reader {
    virtual ~reader() = default;
    virtual std::uint64_t rows() const = 0;
    virtual std::size_t cols() const = 0;
    virtual std::string type_name() const = 0;
    virtual void skip(std::uint64_t n) = 0;
    virtual std::size_t read(std::size_t n, row_block& out) = 0;
    virtual std::size_t read_labels(std::size_t n, std::vector<std::int64_t>& out) = 0;
};

namespace {

// Deflate cannot compress better than about 1032:1 (RFC 1951: a 258-byte match costs at
// least 2 bits), so a .gz IDX whose header announces more data than that is truncated or
// corrupt: refused here, before a block is ever allocated for it (the plain-file case is
// checked against the file size by idx_reader itself).
constexpr std::uint64_t max_deflate_ratio = 1032;

struct idx_impl final : data_source::reader {
    idx_reader r;
    explicit idx_impl(const std::string& p) : r(p) {
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
    std::uint64_t rows() const override { return r.rows(); }
    std::size_t cols() const override { return r.cols(); }
    std::string type_name() const override { return idx_type_name(r.header().type); }
    void skip(std::uint64_t n) override { r.skip(n); }
    std::size_t read(std::size_t n, row_block& out) override { return r.read(n, out); }
    std::size_t read_labels(std::size_t n, std::vector<std::int64_t>& out) override { return r.read_labels(n, out); }
};

struct npy_impl final : data_source::reader {
    npy_reader r;
    explicit npy_impl(const std::string& p) : r(p) {}
    std::uint64_t rows() const override { return r.rows(); }
    std::size_t cols() const override { return r.cols(); }
    std::string type_name() const override { return r.header().descr; }
    void skip(std::uint64_t n) override { r.skip(n); }
    std::size_t read(std::size_t n, row_block& out) override { return r.read(n, out); }
    std::size_t read_labels(std::size_t n, std::vector<std::int64_t>& out) override { return r.read_labels(n, out); }
};

struct raw_impl final : data_source::reader {
    raw_reader r;
    raw_impl(const std::string& p, std::uint64_t n, std::uint64_t d, dtype t) : r(p, n, d, t) {}
    std::uint64_t rows() const override { return r.rows(); }
    std::size_t cols() const override { return r.cols(); }
    std::string type_name() const override { return dtype_name(r.delivery_type()); }
    void skip(std::uint64_t n) override { r.skip(n); }
    std::size_t read(std::size_t n, row_block& out) override { return r.read(n, out); }
    std::size_t read_labels(std::size_t, std::vector<std::int64_t>&) override {
        throw std::invalid_argument("labels cannot be read from a raw file (use IDX or .npy)");
    }
};

std::unique_ptr<data_source::reader> open_reader(const std::string& path, data_format f, const source_options& o) {
    switch (f) {
        case data_format::idx: return std::make_unique<idx_impl>(path);
        case data_format::npy: return std::make_unique<npy_impl>(path);
        case data_format::raw:
            if (o.raw_cols == 0) throw std::invalid_argument("a raw file needs --raw-shape N,D (D was not given)");
            return std::make_unique<raw_impl>(path, o.raw_rows, o.raw_cols, o.raw_type);
        case data_format::auto_detect: break;
    }
    throw std::logic_error("open_reader: unresolved format");
}

}  // namespace

data_source::data_source(const source_options& options) : options_(options) {
    if (options_.images.empty()) throw std::invalid_argument("no images file given");
    if (options_.batch == 0) throw std::invalid_argument("--batch must be at least 1");
    if (!(options_.scale == options_.scale) || options_.scale == 0 || std::abs(options_.scale) > 1e300)
        throw std::invalid_argument("--scale must be a finite non-zero number");
    format_ = options_.format;
    if (format_ == data_format::auto_detect)
        format_ = options_.raw_cols ? data_format::raw : detect_format(options_.images);
    if (has_labels()) {
        labels_format_ = detect_format(options_.labels);
    }
    open_at(0);
    cols_ = images_->cols();
    file_rows_ = images_->rows();
    if (cols_ == 0) throw file_error(options_.images, 0, "rows of zero values: nothing to analyse");
    if (options_.skip > file_rows_)
        throw std::invalid_argument("--skip " + std::to_string(options_.skip) + " is beyond the " +
                                    std::to_string(file_rows_) + " rows of " + options_.images);
    total_ = file_rows_ - options_.skip;
    if (options_.limit) {
        if (options_.limit > total_)
            throw std::invalid_argument("--limit " + std::to_string(options_.limit) + " asks for more rows than the " +
                                        std::to_string(total_) + " of " + options_.images + " after --skip " +
                                        std::to_string(options_.skip));
        total_ = options_.limit;
    }
    if (labels_ && labels_->rows() != file_rows_)
        throw file_error(options_.labels, 0, "has " + std::to_string(labels_->rows()) + " labels but " + options_.images +
                                                 " has " + std::to_string(file_rows_) + " rows");
    if (labels_ && labels_->cols() != 1)
        throw file_error(options_.labels, 0, "labels must be one integer per row (this file has rows of " +
                                                 std::to_string(labels_->cols()) + " values)");
}

data_source::~data_source() = default;
data_source::data_source(data_source&&) noexcept = default;
data_source& data_source::operator=(data_source&&) noexcept = default;

std::string data_source::type_name() const { return images_->type_name(); }

void data_source::open_at(std::uint64_t position) {
    images_ = open_reader(options_.images, format_, options_);
    if (has_labels()) {
        if (labels_format_ == data_format::raw) throw std::invalid_argument("labels must be IDX or .npy");
        labels_ = open_reader(options_.labels, labels_format_, options_);
    }
    const std::uint64_t first = options_.skip + position;
    if (first > images_->rows())
        throw std::invalid_argument((position == 0 ? "--skip " + std::to_string(options_.skip) + " is beyond the "
                                                   : "row " + std::to_string(first) + " is beyond the ") +
                                    std::to_string(images_->rows()) + " rows of " + options_.images);
    images_->skip(first);
    if (labels_) {
        if (first > labels_->rows()) throw std::invalid_argument("position beyond the end of " + options_.labels);
        labels_->skip(first);
    }
    position_ = position;
}

void data_source::seek(std::uint64_t position) {
    if (position > total_)
        throw std::invalid_argument("cannot continue at row " + std::to_string(position) + " of a range of " +
                                    std::to_string(total_) + " rows");
    open_at(position);
}

bool data_source::next(source_batch& out, std::size_t max_rows) {
    const std::size_t want = static_cast<std::size_t>(
        std::min<std::uint64_t>(total_ - position_, max_rows ? max_rows : options_.batch));
    out.rows = 0;
    out.cols = cols_;
    out.first_row = options_.skip + position_;
    out.scale = options_.scale;
    if (want == 0) return false;
    // The readers resize out.block.bytes: no allocation once it has held a full batch.
    const std::size_t got = images_->read(want, out.block);
    if (got != want) throw file_error(options_.images, 0, "fewer rows than the header announces");
    out.rows = got;
    if (labels_) {
        if (labels_->read_labels(got, out.labels) != got)
            throw file_error(options_.labels, 0, "fewer labels than the header announces");
    } else {
        out.labels.clear();
    }
    position_ += got;
    return true;
}

std::size_t data_source::scan_classes() const {
    if (!has_labels()) throw std::logic_error("scan_classes: no labels");
    auto r = open_reader(options_.labels, labels_format_, options_);
    std::int64_t top = -1;
    std::vector<std::int64_t> y;
    std::uint64_t row = 0, left = r->rows();
    while (left > 0) {
        const std::size_t got = r->read_labels(static_cast<std::size_t>(std::min<std::uint64_t>(left, 1 << 16)), y);
        if (got == 0) break;
        for (std::size_t i = 0; i < got; ++i) {
            if (y[i] < 0)
                throw input_error(options_.labels + ": row " + std::to_string(row + i) + ": negative label " +
                                  std::to_string(y[i]));
            if (y[i] > top) top = y[i];
        }
        row += got;
        left -= got;
    }
    if (top >= (std::int64_t(1) << 20))
        throw input_error(options_.labels + ": largest label " + std::to_string(top) +
                          " implies more than 2^20 classes; pass --classes if this is intended");
    return static_cast<std::size_t>(top + 1);
}

}  // namespace recalign::io
