#include "recalign/io/files.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
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

std::size_t remove_stale_temporaries(const std::string& path) {
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

atomic_writer::atomic_writer(const std::string& path) : path_(path) {
    std::string tmp = path + ".tmp.XXXXXX";
    std::vector<char> name(tmp.begin(), tmp.end());
    name.push_back('\0');
    fd_ = ::mkstemp(name.data());
    if (fd_ < 0) sys_fail("cannot create a temporary file beside", path);
    tmp_.assign(name.data());
}

atomic_writer::~atomic_writer() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(tmp_.c_str());
}

void atomic_writer::fail(const char* what) {
    const int saved = errno;
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    ::unlink(tmp_.c_str());
    committed_ = true;  // nothing left to remove
    errno = saved;
    sys_fail(what, tmp_);
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

void atomic_writer::commit() {
    if (fd_ < 0) throw std::logic_error("atomic_writer: commit twice or after failure for " + path_);
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
    if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
        const int saved = errno;
        ::unlink(tmp_.c_str());
        committed_ = true;
        errno = saved;
        sys_fail("cannot rename the temporary file onto", path_);
    }
    committed_ = true;
    const int dfd = ::open(dir_of(path_).c_str(), O_RDONLY | O_DIRECTORY);
    if (dfd < 0) sys_fail("cannot open the directory of", path_);
    if (::fsync(dfd) != 0) {
        const int saved = errno;
        ::close(dfd);
        errno = saved;
        sys_fail("fsync of the directory failed for", path_);
    }
    ::close(dfd);
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
    atomic_writer w(path);
    w.write(bytes.data(), bytes.size());
    w.commit();
}

}  // namespace recalign::checkpoint
