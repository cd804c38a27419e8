#include "recalign/io/files.hpp"

#include "recalign/core/hash.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <istream>
#include <streambuf>
#include <cerrno>
#include <stdexcept>
#include <system_error>
#include <vector>

namespace recalign::checkpoint {

namespace {
[[noreturn]] void sys_fail(const std::string& what, const std::string& path) {
    throw std::system_error(errno, std::generic_category(), what + " " + path);
}
std::string dir_of(const std::string& path) {
    const auto slash = path.find_last_of('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}
}  // namespace

bool is_pipe_or_device(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode) || S_ISSOCK(st.st_mode));
}

std::string write_target(const std::string& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return path;
    char* real = ::realpath(path.c_str(), nullptr);
    if (real == nullptr) return path;
    std::string out(real);
    std::free(real);
    return out;
}

std::size_t remove_stale_temporaries(const std::string& link) {
    const std::string path = write_target(link);  // the temporaries lie beside the target
    const std::string dir = dir_of(path);
    const auto slash = path.find_last_of('/');
    const std::string prefix = (slash == std::string::npos ? path : path.substr(slash + 1)) + ".tmp.";
    DIR* d = ::opendir(dir.c_str());
    if (!d) return 0;  // nothing to clean where nothing can be listed; writing will say why
    std::vector<std::string> stale;
    while (const dirent* e = ::readdir(d)) {
        const std::string name = e->d_name;
        // mkstemp's six characters: letters and digits
        if (name.size() != prefix.size() + 6 || name.compare(0, prefix.size(), prefix) != 0) continue;
        bool ok = true;
        for (std::size_t i = prefix.size(); i < name.size(); ++i)
            ok = ok && std::isalnum(static_cast<unsigned char>(name[i]));
        if (ok) stale.push_back(dir + "/" + name);
    }
    ::closedir(d);
    std::size_t removed = 0;
    for (const std::string& f : stale)
        if (::unlink(f.c_str()) == 0) ++removed;
    return removed;
}

atomic_writer::atomic_writer(const std::string& path) : path_(path), target_(write_target(path)) {
    if (is_pipe_or_device(path)) {
        // A pipe or device (/dev/null, /dev/stdout, a FIFO): written in place. Renaming a
        // temporary onto it would replace the device node itself with a regular file.
        fd_ = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
        if (fd_ < 0) sys_fail("cannot open", path);
        return;
    }
    std::string tmp = target_ + ".tmp.XXXXXX";
    std::vector<char> name(tmp.begin(), tmp.end());
    name.push_back('\0');
    fd_ = ::mkstemp(name.data());
    if (fd_ < 0) sys_fail("cannot create a temporary file beside", path);
    tmp_.assign(name.data());
}

atomic_writer::~atomic_writer() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_ && !tmp_.empty()) ::unlink(tmp_.c_str());
}

void atomic_writer::fail(const char* what) {
    const int saved = errno;
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    if (!tmp_.empty()) ::unlink(tmp_.c_str());
    committed_ = true;  // nothing left to remove
    errno = saved;
    sys_fail(what, tmp_.empty() ? path_ : tmp_);
}

void atomic_writer::write(const void* data, std::size_t bytes) {
    if (fd_ < 0) throw std::logic_error("atomic_writer: write after commit or failure for " + path_);
    const char* p = static_cast<const char*>(data);
    std::size_t done = 0;
    while (done < bytes) {
        const ssize_t w = ::write(fd_, p + done, bytes - done);
        if (w < 0) {
            if (errno == EINTR) continue;
            fail("cannot write");
        }
        done += static_cast<std::size_t>(w);
    }
}

void atomic_writer::write_at(std::uint64_t offset, const void* data, std::size_t bytes) {
    if (fd_ < 0) throw std::logic_error("atomic_writer: write after commit or failure for " + path_);
    if (tmp_.empty()) {  // a pipe or device: what was written has gone
        errno = ESPIPE;
        fail("cannot write over earlier bytes (this file needs a regular file) of");
    }
    const char* p = static_cast<const char*>(data);
    std::size_t done = 0;
    while (done < bytes) {
        const ssize_t w = ::pwrite(fd_, p + done, bytes - done, static_cast<off_t>(offset + done));
        if (w < 0) {
            if (errno == EINTR) continue;
            fail("cannot write");
        }
        done += static_cast<std::size_t>(w);
    }
}

void atomic_writer::commit() {
    if (fd_ < 0) throw std::logic_error("atomic_writer: commit twice or after failure for " + path_);
    if (tmp_.empty()) {  // a pipe or device: nothing to sync or rename
        const int fd = fd_;
        fd_ = -1;
        committed_ = true;
        if (::close(fd) != 0) sys_fail("close failed for", path_);
        return;
    }
    // A failed fsync is final for this file: the kernel may have dropped the dirty pages,
    // so retrying would report success for data that is not on disk.
    if (::fsync(fd_) != 0) fail("fsync failed for");
    if (::fchmod(fd_, 0644) != 0) fail("cannot set permissions of");
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) {
        const int saved = errno;
        ::unlink(tmp_.c_str());
        committed_ = true;
        errno = saved;
        sys_fail("close failed for", tmp_);
    }
    if (::rename(tmp_.c_str(), target_.c_str()) != 0) {
        const int saved = errno;
        ::unlink(tmp_.c_str());
        committed_ = true;
        errno = saved;
        sys_fail("cannot rename the temporary file onto", path_);
    }
    committed_ = true;
    const int dfd = ::open(dir_of(target_).c_str(), O_RDONLY | O_DIRECTORY);
    if (dfd < 0) sys_fail("cannot open the directory of", path_);
    if (::fsync(dfd) != 0) {
        const int saved = errno;
        ::close(dfd);
        errno = saved;
        sys_fail("fsync of the directory failed for", path_);
    }
    ::close(dfd);
}

void read_at(int fd, std::uint64_t offset, void* dst, std::size_t n, const std::string& source) {
    char* p = static_cast<char*>(dst);
    std::size_t done = 0;
    while (done < n) {
        const ssize_t r = ::pread(fd, p + done, n - done, static_cast<off_t>(offset + done));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) throw file_error(source, offset + done, std::string("cannot read the checkpoint: ") + std::strerror(errno));
        if (r == 0) throw file_error(source, offset + done, "truncated checkpoint: the file ends here");
        done += static_cast<std::size_t>(r);
    }
}

std::uint32_t crc_at(int fd, std::uint64_t offset, std::uint64_t n, const std::string& source) {
    std::vector<char> block(static_cast<std::size_t>(std::min<std::uint64_t>(n, block_bytes)));
    std::uint32_t crc = 0;
    for (std::uint64_t at = 0; at < n;) {
        const std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>(block.size(), n - at));
        read_at(fd, offset + at, block.data(), k, source);
        crc = crc32(block.data(), k, crc);
        at += k;
    }
    return crc;
}

namespace {
// Reads bytes [at, end) of a file through a buffer (pread): a large read goes straight to its
// destination.
class range_buf : public std::streambuf {
public:
    range_buf(int fd, std::uint64_t at, std::uint64_t end, const std::string& source)
        : fd_(fd), at_(at), end_(end), source_(source) {}

protected:
    int_type underflow() override {
        if (at_ >= end_) return traits_type::eof();
        if (buf_.empty()) buf_.resize(static_cast<std::size_t>(std::min<std::uint64_t>(end_ - at_, 1 << 20)));
        const std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>(buf_.size(), end_ - at_));
        read_at(fd_, at_, buf_.data(), k, source_);
        at_ += k;
        setg(buf_.data(), buf_.data(), buf_.data() + k);
        return traits_type::to_int_type(buf_[0]);
    }
    std::streamsize xsgetn(char* p, std::streamsize n) override {
        std::streamsize done = 0;
        const std::streamsize buffered = std::min<std::streamsize>(n, egptr() - gptr());
        if (buffered > 0) {
            std::memcpy(p, gptr(), static_cast<std::size_t>(buffered));
            gbump(static_cast<int>(buffered));
            done = buffered;
        }
        if (done == n) return n;
        const std::uint64_t want = static_cast<std::uint64_t>(n - done);
        if (want >= (1u << 20)) {  // an array: no copy through the buffer
            const std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>(want, end_ - at_));
            read_at(fd_, at_, p + done, k, source_);
            at_ += k;
            return done + static_cast<std::streamsize>(k);
        }
        while (done < n && !traits_type::eq_int_type(underflow(), traits_type::eof())) {
            const std::streamsize k = std::min<std::streamsize>(n - done, egptr() - gptr());
            std::memcpy(p + done, gptr(), static_cast<std::size_t>(k));
            gbump(static_cast<int>(k));
            done += k;
        }
        return done;
    }

private:
    int fd_;
    std::uint64_t at_, end_;
    const std::string& source_;
    std::vector<char> buf_;
};
}  // namespace

namespace detail {
header check_range(int fd, std::uint64_t offset, std::uint64_t size, state_kind expected,
                   const std::string& expected_name, const std::string& source) {
    unsigned char head[header_bytes] = {};
    const std::uint64_t got = std::min<std::uint64_t>(size, header_bytes);
    read_at(fd, offset, head, static_cast<std::size_t>(got), source);
    const header h = check_header(head, got, expected, expected_name, source, offset);
    const std::uint64_t have = size - header_bytes;
    if (have < h.payload_bytes)
        throw file_error(source, offset + size,
                         "truncated checkpoint: payload of " + std::to_string(h.payload_bytes) +
                             " bytes announced, the data ends after " + std::to_string(have));
    if (have > h.payload_bytes)
        throw file_error(source, offset + header_bytes + h.payload_bytes,
                         std::to_string(have - h.payload_bytes) + " stray bytes after the checkpoint's payload");
    if (crc_at(fd, offset + header_bytes, h.payload_bytes, source) != h.payload_crc)
        throw file_error(source, offset + header_bytes, "payload checksum mismatch (corrupt checkpoint)");
    return h;
}

void parse_range(const header& h, int fd, std::uint64_t offset, const std::string& source, void* out, load_fn load) {
    range_buf buf(fd, offset + header_bytes, offset + header_bytes + h.payload_bytes, source);
    std::istream in(&buf);
    checkpoint::detail::parse_stream(h, in, h.payload_bytes, source, out, load, offset + header_bytes);
}
}  // namespace detail

void write_file_atomic(const std::string& path, const std::string& bytes) {
    atomic_writer w(path);
    w.write(bytes.data(), bytes.size());
    w.commit();
}

}  // namespace recalign::checkpoint
