#include "posix_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>

#include "recalign/core/errors.hpp"

namespace recalign::io::detail {

int open_read(const std::string& path, std::uint64_t& size_out) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw file_error(path, std::string("cannot open: ") + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        const int e = errno;
        ::close(fd);
        throw file_error(path, std::string("cannot stat: ") + std::strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        throw file_error(path, "not a regular file");
    }
    size_out = static_cast<std::uint64_t>(st.st_size);
#ifdef POSIX_FADV_SEQUENTIAL
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
    return fd;
}

int open_read_stream(const std::string& path, std::uint64_t& size_out, bool& pipe) {
    pipe = false;
    if (path != "-") {
        struct stat st {};
        if (::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode)) return open_read(path, size_out);
    }
    const int fd = path == "-" ? ::fcntl(0, F_DUPFD_CLOEXEC, 0) : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw file_error(path, std::string("cannot open: ") + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !(S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode) || S_ISSOCK(st.st_mode))) {
        ::close(fd);
        throw file_error(path, "neither a regular file nor a pipe");
    }
    size_out = 0;
    pipe = true;
    return fd;
}

void read_exact(int fd, void* dst, std::size_t bytes, std::uint64_t offset, const std::string& path) {
    auto* p = static_cast<unsigned char*>(dst);
    std::size_t done = 0;
    while (done < bytes) {
        const ssize_t got = ::read(fd, p + done, bytes - done);
        if (got < 0) {
            if (errno == EINTR) continue;
            throw file_error(path, offset + done, std::string("read failed: ") + std::strerror(errno));
        }
        if (got == 0)
            throw file_error(path, offset + done,
                             "the pipe ended before the rows of --raw-shape (a pipe is read once: one pass, no --resume)");
        done += static_cast<std::size_t>(got);
    }
}

void pread_exact(int fd, void* dst, std::size_t bytes, std::uint64_t offset, const std::string& path) {
    auto* p = static_cast<unsigned char*>(dst);
    std::size_t done = 0;
    while (done < bytes) {
        const ssize_t got = ::pread(fd, p + done, bytes - done, static_cast<off_t>(offset + done));
        if (got < 0) {
            if (errno == EINTR) continue;
            throw file_error(path, offset + done, std::string("read failed: ") + std::strerror(errno));
        }
        if (got == 0) throw file_error(path, offset + done, "unexpected end of file");
        done += static_cast<std::size_t>(got);
    }
}

void pwrite_exact(int fd, const void* src, std::size_t bytes, std::uint64_t offset, const std::string& path) {
    const auto* p = static_cast<const unsigned char*>(src);
    std::size_t done = 0;
    while (done < bytes) {
        const ssize_t put = ::pwrite(fd, p + done, bytes - done, static_cast<off_t>(offset + done));
        if (put < 0) {
            if (errno == EINTR) continue;
            throw file_error(path, offset + done, std::string("write failed: ") + std::strerror(errno));
        }
        if (put == 0) throw file_error(path, offset + done, "write failed: no bytes written");
        done += static_cast<std::size_t>(put);
    }
}

void close_fd(int& fd) noexcept {
    if (fd >= 0) ::close(fd);
    fd = -1;
}

namespace {
template <class T>
T load(const unsigned char* p, bool swap) {
    unsigned char b[sizeof(T)];
    if (swap) {
        for (std::size_t i = 0; i < sizeof(T); ++i) b[i] = p[sizeof(T) - 1 - i];
    } else {
        std::memcpy(b, p, sizeof(T));
    }
    T v;
    std::memcpy(&v, b, sizeof(T));
    return v;
}

double half_to_double(std::uint16_t h) {
    const int sign = (h >> 15) & 1, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    double v;
    if (exp == 0) v = std::ldexp(static_cast<double>(mant), -24);
    else if (exp == 31) v = mant ? std::nan("") : HUGE_VAL;
    else v = std::ldexp(static_cast<double>(mant | 0x400), exp - 25);
    return sign ? -v : v;
}
}  // namespace

void convert_to_double(const unsigned char* src, std::size_t count, char kind, std::size_t item_size,
                       bool big_endian, double* dst) {
    const bool swap = big_endian != host_big_endian();
#define RECALIGN_CONVERT(T)                                                                   \
    for (std::size_t i = 0; i < count; ++i) dst[i] = static_cast<double>(load<T>(src + i * sizeof(T), swap)); \
    return;
    switch (kind) {
        case 'b':
            for (std::size_t i = 0; i < count; ++i) dst[i] = src[i] ? 1.0 : 0.0;
            return;
        case 'i':
            switch (item_size) {
                case 1: RECALIGN_CONVERT(std::int8_t)
                case 2: RECALIGN_CONVERT(std::int16_t)
                case 4: RECALIGN_CONVERT(std::int32_t)
                case 8: RECALIGN_CONVERT(std::int64_t)
            }
            break;
        case 'u':
            switch (item_size) {
                case 1: RECALIGN_CONVERT(std::uint8_t)
                case 2: RECALIGN_CONVERT(std::uint16_t)
                case 4: RECALIGN_CONVERT(std::uint32_t)
                case 8: RECALIGN_CONVERT(std::uint64_t)
            }
            break;
        case 'f':
            switch (item_size) {
                case 2:
                    for (std::size_t i = 0; i < count; ++i) dst[i] = half_to_double(load<std::uint16_t>(src + 2 * i, swap));
                    return;
                case 4: RECALIGN_CONVERT(float)
                case 8: RECALIGN_CONVERT(double)
            }
            break;
    }
#undef RECALIGN_CONVERT
    throw std::logic_error("convert_to_double: unsupported element type");
}

}  // namespace recalign::io::detail
