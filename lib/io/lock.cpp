#include "recalign/io/lock.hpp"
#include "recalign/io/files.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <system_error>
#include <thread>

namespace recalign::io {

namespace {

// Rounds of open + flock before giving up. A holder that keeps the lock is refused in the
// first round; more are needed only while a holder is between its flock and its pid write
// (microseconds) or while sidecars are being replaced, so 500 rounds 1 ms apart are ample.
constexpr int max_rounds = 500;

[[noreturn]] void sys_fail(const std::string& what, const std::string& path) {
    throw std::system_error(errno, std::generic_category(), what + " " + path);
}

// The pid a sidecar holds ("1234\n"), or 0 when it holds none (its owner has not written it
// yet, or the file is not a sidecar we wrote).
long read_pid(int fd) {
    char buf[32];
    ssize_t got = 0;
    do got = ::pread(fd, buf, sizeof buf - 1, 0);
    while (got < 0 && errno == EINTR);
    if (got <= 0) return 0;
    buf[got] = '\0';
    char* end = nullptr;
    errno = 0;
    const long pid = std::strtol(buf, &end, 10);
    if (end == buf || *end != '\n' || errno != 0 || pid <= 0) return 0;
    return pid;
}

// Whether a process of that pid exists (EPERM: it does, under another user).
bool alive(long pid) { return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM; }

// Whether `path` still names the inode open as `fd`.
bool names_inode(const std::string& path, int fd) {
    struct stat open_st {}, path_st {};
    if (::fstat(fd, &open_st) != 0 || ::stat(path.c_str(), &path_st) != 0) return false;
    return open_st.st_dev == path_st.st_dev && open_st.st_ino == path_st.st_ino;
}

void write_pid(int fd, long pid, const std::string& path) {
    const std::string text = std::to_string(pid) + "\n";
    if (::ftruncate(fd, 0) != 0) sys_fail("cannot truncate the lock file", path);
    std::size_t done = 0;
    while (done < text.size()) {
        const ssize_t w = ::pwrite(fd, text.data() + done, text.size() - done, static_cast<off_t>(done));
        if (w < 0) {
            if (errno == EINTR) continue;
            sys_fail("cannot write the pid into the lock file", path);
        }
        done += static_cast<std::size_t>(w);
    }
}

std::string in_use(const std::string& checkpoint, const std::string& lock_path, long pid) {
    const std::string who = pid > 0 ? "process " + std::to_string(pid) : "another process (its pid is not readable)";
    return "checkpoint " + checkpoint + " is in use by " + who + " (lock file " + lock_path +
           "): two runs cannot write one checkpoint";
}

}  // namespace

std::string checkpoint_lock::lock_path_of(const std::string& checkpoint_path) {
    return checkpoint::write_target(checkpoint_path) + ".lock";
}

checkpoint_lock::checkpoint_lock(const std::string& checkpoint_path)
    : checkpoint_(checkpoint_path), lock_path_(lock_path_of(checkpoint_path)) {
    const long self = static_cast<long>(::getpid());
    long seen = 0;
    for (int round = 0; round < max_rounds; ++round) {
        const int fd = ::open(lock_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) {
            if (errno == EINTR) continue;
            sys_fail("cannot open the lock file", lock_path_);
        }
        int rc = 0;
        do rc = ::flock(fd, LOCK_EX | LOCK_NB);
        while (rc != 0 && errno == EINTR);
        if (rc != 0) {
            const int err = errno;
            const long pid = err == EWOULDBLOCK ? read_pid(fd) : 0;
            ::close(fd);
            if (err != EWOULDBLOCK) {
                errno = err;
                sys_fail("cannot lock", lock_path_);
            }
            // A live pid is the holder's. None, or a dead one, is a holder between its flock
            // and its pid write (the file may still hold a killed run's pid): look again.
            if (pid > 0 && alive(pid)) throw lock_error(checkpoint_, pid, in_use(checkpoint_, lock_path_, pid));
            if (pid > 0) seen = pid;
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
            continue;
        }
        // Locked, but perhaps a sidecar its owner removed after we opened it (see the header):
        // the lock must be on the file the path names now.
        if (!names_inode(lock_path_, fd)) {
            ::close(fd);
            continue;
        }
        try {
            write_pid(fd, self, lock_path_);
        } catch (...) {
            ::close(fd);  // unlocks: nothing of ours is left behind but the (empty) sidecar
            throw;
        }
        fd_ = fd;
        owner_pid_ = self;
        return;
    }
    throw lock_error(checkpoint_, seen, in_use(checkpoint_, lock_path_, seen));
}

checkpoint_lock::~checkpoint_lock() { release(); }

checkpoint_lock::checkpoint_lock(checkpoint_lock&& other) noexcept
    : checkpoint_(std::move(other.checkpoint_)), lock_path_(std::move(other.lock_path_)), fd_(other.fd_),
      owner_pid_(other.owner_pid_) {
    other.fd_ = -1;
}

checkpoint_lock& checkpoint_lock::operator=(checkpoint_lock&& other) noexcept {
    if (this != &other) {
        release();
        checkpoint_ = std::move(other.checkpoint_);
        lock_path_ = std::move(other.lock_path_);
        fd_ = other.fd_;
        owner_pid_ = other.owner_pid_;
        other.fd_ = -1;
    }
    return *this;
}

void checkpoint_lock::release() noexcept {
    if (fd_ < 0) return;
    // Only the process that took the lock lets go of it: a fork()ed child's copy just closes
    // its descriptor (the lock stays with the parent's open file description).
    if (static_cast<long>(::getpid()) == owner_pid_) {
        // Removed while still locked, so a run that opened this inode meanwhile sees that the
        // path no longer names it; left alone when the path already names another file.
        if (names_inode(lock_path_, fd_)) ::unlink(lock_path_.c_str());
        ::flock(fd_, LOCK_UN);
    }
    ::close(fd_);
    fd_ = -1;
}

}  // namespace recalign::io
