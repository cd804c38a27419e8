#include "recalign/io/idx.hpp"

#include <sys/stat.h>
#include <zlib.h>

#include <cstring>
#include <stdexcept>

#include "recalign/core/checked.hpp"
#include "recalign/core/errors.hpp"

namespace recalign::io {

struct idx_reader::gz {
    gzFile f = nullptr;
    ~gz() {
        if (f) gzclose(f);
    }
};

const char* idx_type_name(idx_type t) {
    switch (t) {
        case idx_type::u8: return "u8";
        case idx_type::i8: return "i8";
        case idx_type::i16: return "i16";
        case idx_type::i32: return "i32";
        case idx_type::f32: return "f32";
        case idx_type::f64: return "f64";
    }
    return "unknown";
}

std::size_t idx_type_size(idx_type t) {
    switch (t) {
        case idx_type::u8:
        case idx_type::i8: return 1;
        case idx_type::i16: return 2;
        case idx_type::i32:
        case idx_type::f32: return 4;
        case idx_type::f64: return 8;
    }
    return 0;
}

std::uint64_t idx_header::row_size() const {
    return dims.size() < 2 ? 1 : checked_product(dims.begin() + 1, dims.end(), "IDX row size");
}

batch_view row_block::view() const {
    batch_view b;
    b.data = bytes.data();
    b.type = type;
    b.rows = rows;
    b.cols = cols;
    return b;
}

namespace {
std::uint32_t be32(const unsigned char* p) {
    return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) | p[3];
}
bool valid_type(unsigned char t) { return t == 0x08 || t == 0x09 || t == 0x0B || t == 0x0C || t == 0x0D || t == 0x0E; }
}  // namespace

idx_reader::idx_reader(const std::string& path) : file_(std::make_unique<gz>()), path_(path) {
    unsigned char magic[4];
    {
        FILE* probe = std::fopen(path.c_str(), "rb");
        if (!probe) throw file_error(path, std::string("cannot open: ") + std::strerror(errno));
        const std::size_t got = std::fread(magic, 1, 2, probe);
        std::fclose(probe);
        compressed_ = got == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
    }
    file_->f = gzopen(path.c_str(), "rb");
    if (!file_->f) throw file_error(path, "cannot open");
    gzbuffer(file_->f, 1 << 17);
    read_exact(magic, 4);
    if (magic[0] != 0 || magic[1] != 0) throw file_error(path, 0, "not an IDX file (the first two bytes must be 0)");
    if (!valid_type(magic[2])) throw file_error(path, 2, "unknown IDX element type 0x" + std::to_string(magic[2]));
    const unsigned ndims = magic[3];
    if (ndims < 1 || ndims > 8) throw file_error(path, 3, "IDX file claims " + std::to_string(ndims) + " dimensions");
    header_.type = static_cast<idx_type>(magic[2]);
    for (unsigned i = 0; i < ndims; ++i) {
        unsigned char b[4];
        read_exact(b, 4);
        header_.dims.push_back(be32(b));
    }
    // Every later offset and buffer size is a part of these (checked) totals.
    std::uint64_t need = 0;
    try {
        const std::uint64_t elements = checked_product(header_.dims.begin(), header_.dims.end(), "IDX element count");
        checked_bytes<double>(elements, "IDX values as float64");  // bounds every conversion buffer
        need = checked_add(header_.header_bytes(), checked_mul(elements, idx_type_size(header_.type), "IDX data bytes"),
                           "IDX file size");
    } catch (const size_overflow& e) {
        throw file_error(path, 4, std::string("IDX dimensions overflow: ") + e.what());
    }
    if (header_.row_size() > (std::uint64_t(1) << 31))
        throw file_error(path, 8, "IDX rows of " + std::to_string(header_.row_size()) + " values are too wide");
    if (!compressed_) {
        struct stat st{};
        if (::stat(path.c_str(), &st) == 0 && static_cast<std::uint64_t>(st.st_size) < need) {
            throw file_error(path, static_cast<std::uint64_t>(st.st_size),
                             "IDX header announces " + std::to_string(need) + " bytes but the file has " +
                                 std::to_string(st.st_size));
        }
    }
}

idx_reader::~idx_reader() = default;
idx_reader::idx_reader(idx_reader&&) noexcept = default;
idx_reader& idx_reader::operator=(idx_reader&&) noexcept = default;

dtype idx_reader::delivery_type() const noexcept {
    if (header_.type == idx_type::u8) return dtype::u8;
    if (header_.type == idx_type::f32) return dtype::f32;
    return dtype::f64;
}

void idx_reader::read_exact(void* dst, std::size_t bytes) {
    auto* p = static_cast<unsigned char*>(dst);
    std::size_t done = 0;
    while (done < bytes) {
        const unsigned chunk = static_cast<unsigned>(std::min<std::size_t>(bytes - done, 1u << 30));
        const int got = gzread(file_->f, p + done, chunk);
        if (got < 0) {
            int err = 0;
            const char* msg = gzerror(file_->f, &err);
            throw file_error(path_, offset_ + done, std::string("read failed: ") + (msg ? msg : "unknown error") +
                                                        (compressed_ ? " (offset in the uncompressed stream)" : ""));
        }
        if (got == 0) {
            throw file_error(path_, offset_ + done,
                             std::string("unexpected end of file") +
                                 (compressed_ ? " (offset in the uncompressed stream)" : ""));
        }
        done += static_cast<std::size_t>(got);
    }
    offset_ += bytes;
}

// A compressed file's header can announce any size, so a block's buffer grows only with
// the bytes that really arrive (chunks of at most max(8 MiB, what was read so far)): a
// 40-byte .gz claiming 2^40 values fails at its end of file without a large allocation.
void idx_reader::read_growing(std::vector<unsigned char>& buf, std::size_t bytes) {
    constexpr std::size_t chunk = std::size_t(8) << 20;
    std::size_t done = 0;
    buf.resize(std::min(bytes, chunk));
    while (done < bytes) {
        const std::size_t step = std::min(bytes - done, std::max(chunk, done));
        if (buf.size() < done + step) buf.resize(done + step);
        read_exact(buf.data() + done, step);
        done += step;
    }
    buf.resize(bytes);
}

void idx_reader::skip(std::uint64_t count) {
    if (count > rows() - position_)
        throw std::invalid_argument("cannot skip " + std::to_string(count) + " rows of " + path_ + ": only " +
                                    std::to_string(rows() - position_) + " remain");
    const std::uint64_t bytes = checked_product({count, header_.row_size(), idx_type_size(header_.type)}, "IDX skip bytes");
    if (bytes == 0) return;
    if (gzseek(file_->f, static_cast<z_off_t>(offset_ + bytes), SEEK_SET) < 0)
        throw file_error(path_, offset_, "seek failed (file shorter than its header says?)");
    offset_ += bytes;
    position_ += count;
}

namespace {
template <class T, std::size_t N>
T from_be(const unsigned char* p) {
    unsigned char b[N];
    for (std::size_t i = 0; i < N; ++i) b[i] = p[N - 1 - i];
    T v;
    std::memcpy(&v, b, N);
    return v;
}

double value_at(idx_type t, const unsigned char* p) {
    switch (t) {
        case idx_type::u8: return *p;
        case idx_type::i8: return static_cast<std::int8_t>(*p);
        case idx_type::i16: return from_be<std::int16_t, 2>(p);
        case idx_type::i32: return from_be<std::int32_t, 4>(p);
        case idx_type::f32: return from_be<float, 4>(p);
        case idx_type::f64: return from_be<double, 8>(p);
    }
    return 0;
}
}  // namespace

std::size_t idx_reader::read(std::size_t max_rows, row_block& out) {
    const std::uint64_t left = rows() - position_;
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left, max_rows));
    const std::size_t cols = this->cols(), es = idx_type_size(header_.type);
    out.type = delivery_type();
    out.rows = n;
    out.cols = cols;
    if (n == 0) {
        out.bytes.clear();
        return 0;
    }
    const std::size_t values = checked_mul(n, cols, "IDX block values");  // within the header's checked total
    if (header_.type == idx_type::u8) {
        read_growing(out.bytes, values);
    } else {
        read_growing(raw_, checked_mul(values, es, "IDX block bytes"));
        if (out.type == dtype::f32) {
            out.bytes.resize(values * 4);
            auto* dst = reinterpret_cast<float*>(out.bytes.data());
            for (std::size_t i = 0; i < values; ++i) dst[i] = from_be<float, 4>(&raw_[i * 4]);
        } else {
            out.bytes.resize(values * 8);
            auto* dst = reinterpret_cast<double*>(out.bytes.data());
            for (std::size_t i = 0; i < values; ++i) dst[i] = value_at(header_.type, &raw_[i * es]);
        }
    }
    position_ += n;
    return n;
}

std::size_t idx_reader::read_labels(std::size_t max_rows, std::vector<std::int64_t>& out) {
    if (cols() != 1)
        throw file_error(path_, 4, "labels must be a 1-d IDX file (this one has rows of " + std::to_string(cols()) +
                                       " values)");
    if (header_.type == idx_type::f32 || header_.type == idx_type::f64)
        throw file_error(path_, 2, "labels must have an integer IDX type");
    const std::uint64_t left = rows() - position_;
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left, max_rows));
    const std::size_t es = idx_type_size(header_.type);
    read_growing(raw_, checked_mul(n, es, "IDX label bytes"));
    out.resize(n);
    for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::int64_t>(value_at(header_.type, &raw_[i * es]));
    position_ += n;
    return n;
}

}  // namespace recalign::io
