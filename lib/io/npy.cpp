#include "recalign/io/npy.hpp"

#include <cctype>
#include <cstring>
#include <stdexcept>

#include "posix_file.hpp"
#include "recalign/core/checked.hpp"
#include "recalign/core/errors.hpp"

namespace recalign::io {

std::uint64_t npy_header::row_size() const {
    return shape.size() < 2 ? 1 : checked_product(shape.begin() + 1, shape.end(), ".npy row size");
}

namespace {

// The largest header we accept. NumPy itself refuses headers over 10,000 bytes by default
// (max_header_size); a megabyte leaves room for odd writers and still bounds the allocation.
constexpr std::uint32_t max_header_len = 1u << 20;

// A recursive-descent parser for the one Python literal a .npy header holds:
// {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
class dict_parser {
public:
    dict_parser(const std::string& text, std::uint64_t base, const std::string& path)
        : s_(text), base_(base), path_(path) {}

    void parse(npy_header& h) {
        bool have_descr = false, have_order = false, have_shape = false;
        ws();
        expect('{');
        for (;;) {
            ws();
            if (peek() == '}') break;
            const std::size_t key_at = i_;
            const std::string key = string_literal();
            ws();
            expect(':');
            ws();
            if (key == "descr") {
                if (peek() == '[') fail(i_, "structured (record) dtypes are not supported");
                h.descr = string_literal();
                have_descr = true;
            } else if (key == "fortran_order") {
                h.fortran_order = boolean();
                have_order = true;
            } else if (key == "shape") {
                h.shape = tuple();
                have_shape = true;
            } else {
                fail(key_at, "unexpected key '" + key + "' in the .npy header");
            }
            ws();
            if (peek() == ',') ++i_;
        }
        if (!have_descr || !have_order || !have_shape)
            fail(0, "the .npy header must give 'descr', 'fortran_order' and 'shape'");
    }

private:
    [[noreturn]] void fail(std::size_t at, const std::string& what) const { throw file_error(path_, base_ + at, what); }
    char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
    void ws() {
        while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
    }
    void expect(char c) {
        if (peek() != c) fail(i_, std::string("malformed .npy header: expected '") + c + "'");
        ++i_;
    }
    std::string string_literal() {
        const char q = peek();
        if (q != '\'' && q != '"') fail(i_, "malformed .npy header: expected a string");
        const std::size_t start = ++i_;
        while (i_ < s_.size() && s_[i_] != q) ++i_;
        if (i_ >= s_.size()) fail(start, "malformed .npy header: unterminated string");
        return s_.substr(start, i_++ - start);
    }
    bool boolean() {
        if (s_.compare(i_, 4, "True") == 0) {
            i_ += 4;
            return true;
        }
        if (s_.compare(i_, 5, "False") == 0) {
            i_ += 5;
            return false;
        }
        fail(i_, "malformed .npy header: fortran_order must be True or False");
    }
    std::vector<std::uint64_t> tuple() {
        std::vector<std::uint64_t> out;
        expect('(');
        for (;;) {
            ws();
            if (peek() == ')') {
                ++i_;
                break;
            }
            if (!std::isdigit(static_cast<unsigned char>(peek())))
                fail(i_, "malformed .npy header: shape entries must be non-negative integers");
            const std::size_t start = i_;
            std::uint64_t v = 0;
            while (std::isdigit(static_cast<unsigned char>(peek()))) {
                const unsigned d = static_cast<unsigned>(s_[i_++] - '0');
                if (v > ((std::uint64_t(1) << 62) - d) / 10) fail(start, "absurd dimension in the .npy shape");
                v = v * 10 + d;
            }
            if (peek() == 'L') ++i_;  // Python 2 long
            if (out.size() >= 32) fail(start, "more than 32 dimensions in the .npy shape");
            out.push_back(v);
            ws();
            if (peek() == ',') ++i_;
            else if (peek() != ')') fail(i_, "malformed .npy header: expected ',' or ')' in the shape");
        }
        return out;
    }

    const std::string& s_;
    std::uint64_t base_;
    const std::string& path_;
    std::size_t i_ = 0;
};

void parse_descr(npy_header& h, std::uint64_t at, const std::string& path) {
    const std::string& d = h.descr;
    auto bad = [&](const std::string& why) -> void {
        throw file_error(path, at, "unsupported .npy dtype '" + d + "': " + why);
    };
    if (d.size() < 3) bad("expected a byte order, a kind and a size such as '<f4'");
    const char order = d[0], kind = d[1];
    if (order != '<' && order != '>' && order != '|' && order != '=') bad("unknown byte order");
    std::size_t size = 0;
    for (std::size_t i = 2; i < d.size(); ++i) {
        if (!std::isdigit(static_cast<unsigned char>(d[i])) || size > 100) bad("bad element size");
        size = size * 10 + static_cast<std::size_t>(d[i] - '0');
    }
    bool ok = false;
    switch (kind) {
        case 'b': ok = size == 1; break;
        case 'i':
        case 'u': ok = size == 1 || size == 2 || size == 4 || size == 8; break;
        case 'f': ok = size == 2 || size == 4 || size == 8; break;
        default: bad("only bool, integer and float16/32/64 element types are read");
    }
    if (!ok) bad("element size not supported for this kind");
    h.kind = kind;
    h.item_size = size;
    h.big_endian = order == '>' || (order == '=' && detail::host_big_endian());
}

}  // namespace

npy_header read_npy_header(int fd, std::uint64_t file_size, const std::string& path) {
    unsigned char pre[12] = {};
    if (file_size < 10) {
        detail::pread_exact(fd, pre, static_cast<std::size_t>(file_size), 0, path);
        throw file_error(path, file_size, "truncated .npy file: the header needs at least 10 bytes");
    }
    detail::pread_exact(fd, pre, 10, 0, path);
    if (std::memcmp(pre, "\x93NUMPY", 6) != 0) throw file_error(path, 0, "not a .npy file (bad magic)");
    npy_header h;
    h.major = pre[6];
    h.minor = pre[7];
    if (h.major < 1 || h.major > 3)
        throw file_error(path, 6, ".npy format version " + std::to_string(h.major) + "." + std::to_string(h.minor) +
                                      " is not supported (1.0, 2.0 and 3.0 are)");
    std::uint64_t prefix = 10, len = 0;
    if (h.major == 1) {
        len = pre[8] | (std::uint32_t(pre[9]) << 8);
    } else {
        if (file_size < 12) throw file_error(path, file_size, "truncated .npy file: the header needs 12 bytes");
        detail::pread_exact(fd, pre + 10, 2, 10, path);
        len = pre[8] | (std::uint32_t(pre[9]) << 8) | (std::uint32_t(pre[10]) << 16) | (std::uint32_t(pre[11]) << 24);
        prefix = 12;
    }
    if (len > max_header_len)
        throw file_error(path, 8, "absurd .npy header length " + std::to_string(len) + " bytes");
    if (prefix + len > file_size)
        throw file_error(path, file_size, "truncated .npy file: the header announces " + std::to_string(len) +
                                              " bytes but the file ends at byte " + std::to_string(file_size));
    std::string text(static_cast<std::size_t>(len), '\0');
    detail::pread_exact(fd, text.data(), text.size(), prefix, path);
    dict_parser(text, prefix, path).parse(h);
    parse_descr(h, prefix, path);
    h.data_offset = prefix + len;

    if (h.shape.empty()) throw file_error(path, prefix, "a 0-d .npy array holds no rows");
    // Every later offset and buffer size is a part of these (checked) totals.
    std::uint64_t elements = 0, data_bytes = 0, need = 0;
    try {
        elements = checked_product(h.shape.begin(), h.shape.end(), "the .npy shape's element count");
        checked_bytes<double>(elements, "the .npy shape as float64 values");  // bounds every conversion buffer
        data_bytes = checked_mul(elements, h.item_size, "the .npy data bytes");
        need = checked_add(h.data_offset, data_bytes, "the .npy file size");
    } catch (const size_overflow& e) {
        throw file_error(path, prefix, std::string("absurd .npy shape: ") + e.what());
    }
    if (h.row_size() > (std::uint64_t(1) << 31))
        throw file_error(path, prefix, ".npy rows of " + std::to_string(h.row_size()) + " values are too wide");
    if (need > file_size)
        throw file_error(path, file_size, "truncated .npy file: the header announces " +
                                              std::to_string(data_bytes) + " data bytes ending at byte " +
                                              std::to_string(need) + " but the file has " + std::to_string(file_size));
    return h;
}

npy_reader::npy_reader(const std::string& path) : path_(path) {
    std::uint64_t size = 0;
    fd_ = detail::open_read(path, size);
    try {
        header_ = read_npy_header(fd_, size, path);
    } catch (...) {
        detail::close_fd(fd_);
        throw;
    }
}

npy_reader::~npy_reader() { detail::close_fd(fd_); }
npy_reader::npy_reader(npy_reader&& o) noexcept
    : fd_(o.fd_), path_(std::move(o.path_)), header_(std::move(o.header_)), position_(o.position_) {
    o.fd_ = -1;
}
npy_reader& npy_reader::operator=(npy_reader&& o) noexcept {
    if (this != &o) {
        detail::close_fd(fd_);
        fd_ = o.fd_;
        o.fd_ = -1;
        path_ = std::move(o.path_);
        header_ = std::move(o.header_);
        position_ = o.position_;
    }
    return *this;
}

dtype npy_reader::delivery_type() const noexcept {
    if (header_.kind == 'u' && header_.item_size == 1) return dtype::u8;
    if (header_.kind == 'f' && header_.item_size == 4 && header_.big_endian == detail::host_big_endian()) return dtype::f32;
    return dtype::f64;
}

void npy_reader::skip(std::uint64_t count) {
    if (count > rows() - position_)
        throw std::invalid_argument("cannot skip " + std::to_string(count) + " rows of " + path_ + ": only " +
                                    std::to_string(rows() - position_) + " remain");
    position_ += count;
}

void npy_reader::read_rows_raw(std::size_t n, std::vector<unsigned char>& dst) {
    const std::size_t cols = this->cols(), es = header_.item_size;
    dst.resize(checked_product({n, cols, es}, ".npy block bytes"));  // within the header's checked total
    if (dst.empty()) return;
    if (!header_.fortran_order || header_.shape.size() == 1) {
        detail::pread_exact(fd_, dst.data(), dst.size(), header_.data_offset + position_ * cols * es, path_);
        return;
    }
    // Fortran order: element (row i, column-major flat index f of the remaining axes) lives
    // at i + N·f. Gather each such "column" for the block's rows with one read, then place
    // it at its C-order (row-major) flat index.
    const std::uint64_t N = rows();
    gather_.resize(n * es);
    const std::size_t axes = header_.shape.size() - 1;
    std::vector<std::uint64_t> index(axes, 0);  // multi-index over shape[1..], first axis fastest
    for (std::size_t f = 0; f < cols; ++f) {
        detail::pread_exact(fd_, gather_.data(), gather_.size(), header_.data_offset + (f * N + position_) * es, path_);
        // C-order flat index of this multi-index: last axis fastest.
        std::uint64_t c = 0;
        for (std::size_t a = 0; a < axes; ++a) c = c * header_.shape[a + 1] + index[a];
        for (std::size_t i = 0; i < n; ++i) std::memcpy(&dst[(i * cols + c) * es], &gather_[i * es], es);
        for (std::size_t a = 0; a < axes; ++a) {
            if (++index[a] < header_.shape[a + 1]) break;
            index[a] = 0;
        }
    }
}

std::size_t npy_reader::read(std::size_t max_rows, row_block& out) {
    const std::uint64_t left = rows() - position_;
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left, max_rows));
    const std::size_t cols = this->cols();
    out.type = delivery_type();
    out.rows = n;
    out.cols = cols;
    if (n == 0) {
        out.bytes.clear();
        return 0;
    }
    const std::size_t values = checked_mul(n, cols, ".npy block values");
    if (out.type == dtype::u8 || out.type == dtype::f32) {
        read_rows_raw(n, out.bytes);
    } else {
        read_rows_raw(n, raw_);
        out.bytes.resize(checked_bytes<double>(values, ".npy block as float64"));
        detail::convert_to_double(raw_.data(), values, header_.kind, header_.item_size, header_.big_endian,
                                  reinterpret_cast<double*>(out.bytes.data()));
    }
    position_ += n;
    return n;
}

std::size_t npy_reader::read_labels(std::size_t max_rows, std::vector<std::int64_t>& out) {
    if (cols() != 1)
        throw file_error(path_, header_.data_offset,
                         "labels must be a 1-d .npy array (this one has rows of " + std::to_string(cols()) + " values)");
    if (header_.kind == 'f')
        throw file_error(path_, header_.data_offset, "labels must have an integer .npy dtype, not '" + header_.descr + "'");
    const std::uint64_t left = rows() - position_;
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left, max_rows));
    read_rows_raw(n, raw_);
    label_values_.resize(n);
    detail::convert_to_double(raw_.data(), n, header_.kind, header_.item_size, header_.big_endian, label_values_.data());
    out.resize(n);
    for (std::size_t i = 0; i < n; ++i)
        out[i] = label_values_[i] >= 9.2e18 ? -1 : static_cast<std::int64_t>(label_values_[i]);
    position_ += n;
    return n;
}

}  // namespace recalign::io
