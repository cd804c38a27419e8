// checkpoint_lock across processes: a forked child holds the lock and the parent is refused,
// naming the child's pid; after the child is SIGKILLed (no destructor, no cleanup: its stale
// sidecar stays) the lock can be taken; many processes taking and releasing it never hold it
// at once (the sidecar removal / re-creation race); a forked copy of a held lock does not
// release the parent's.
#include <catch2/catch.hpp>

#include "../common/temp_dir.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <recalign/io/lock.hpp>

using recalign::io::checkpoint_lock;
using recalign::io::lock_error;
using Catch::Contains;

namespace {

struct temp_dir : testing::temp_dir {
    temp_dir() : testing::temp_dir("recalign-lock") {}
};

bool exists(const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0;
}

std::string read_all(const std::string& p) {
    std::ifstream is(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(is), {});
}

// A child that takes the lock, tells the parent through a pipe, and waits to be killed.
pid_t child_holding(const std::string& checkpoint) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::close(fds[0]);
        char ok = 'n';
        try {
            static checkpoint_lock held(checkpoint);  // never destroyed: the child is killed
            ok = 'y';
        } catch (...) {
        }
        (void)!::write(fds[1], &ok, 1);
        for (;;) ::pause();
    }
    ::close(fds[1]);
    char ok = 0;
    REQUIRE(::read(fds[0], &ok, 1) == 1);
    ::close(fds[0]);
    REQUIRE(ok == 'y');
    return pid;
}

void kill_and_reap(pid_t pid) {
    REQUIRE(::kill(pid, SIGKILL) == 0);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    CHECK(WIFSIGNALED(status));
}

// Runs f in a forked child; returns its exit status (f's return value).
template <class F>
int in_child(F&& f) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) ::_exit(f());
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    return WEXITSTATUS(status);
}

// In a forked child, tries to take the lock: 0 when refused naming `holder`, 1 when it was
// taken, 2 when refused naming another pid.
int child_attempt(const std::string& checkpoint, pid_t holder) {
    return in_child([&] {
        try {
            checkpoint_lock other(checkpoint);
        } catch (const lock_error& e) {
            return e.holder_pid() == holder ? 0 : 2;
        }
        return 1;
    });
}

}  // namespace

TEST_CASE("a second process is refused naming the holder's pid; after SIGKILL the lock is free", "[lock]") {
    temp_dir dir;
    const std::string ck = dir.path + "/run.ckpt";
    const pid_t child = child_holding(ck);
    CHECK(read_all(ck + ".lock") == std::to_string(child) + "\n");
    try {
        checkpoint_lock second(ck);
        FAIL_CHECK("the lock was taken twice");
    } catch (const lock_error& e) {
        CHECK(e.holder_pid() == child);
        CHECK(e.checkpoint() == ck);
        CHECK_THAT(std::string(e.what()), Contains(ck) && Contains("process " + std::to_string(child)) &&
                                              Contains(ck + ".lock"));
    }
    kill_and_reap(child);
    // The killed child's sidecar is still there, holding its pid: it must not block.
    REQUIRE(exists(ck + ".lock"));
    CHECK(read_all(ck + ".lock") == std::to_string(child) + "\n");
    {
        checkpoint_lock mine(ck);
        CHECK(mine.held());
        CHECK(mine.lock_path() == ck + ".lock");
        CHECK(read_all(ck + ".lock") == std::to_string(::getpid()) + "\n");
        // While we hold it, another process is refused naming us.
        CHECK(child_attempt(ck, ::getpid()) == 0);
    }
    CHECK_FALSE(exists(ck + ".lock"));  // released: the sidecar is gone
}

TEST_CASE("a sidecar of garbage or of a dead pid does not block; a second lock in one process is refused", "[lock]") {
    temp_dir dir;
    const std::string ck = dir.path + "/a.ckpt";
    std::ofstream(ck + ".lock") << "not a pid";
    {
        checkpoint_lock l(ck);
        CHECK(read_all(ck + ".lock") == std::to_string(::getpid()) + "\n");
        // flock locks open files, not processes: this process's second attempt is refused too.
        try {
            checkpoint_lock again(ck);
            FAIL_CHECK("locked twice in one process");
        } catch (const lock_error& e) {
            CHECK(e.holder_pid() == ::getpid());
        }
        // Another checkpoint is another lock.
        checkpoint_lock other(dir.path + "/b.ckpt");
        CHECK(other.held());
    }
    std::ofstream(ck + ".lock") << "2147483646\n";  // a pid no process has
    checkpoint_lock l(ck);
    CHECK(l.held());
}

TEST_CASE("one checkpoint named through a symbolic link is one lock", "[lock]") {
    temp_dir dir;
    const std::string ck = dir.path + "/a.ckpt", link = dir.path + "/link.ckpt";
    std::ofstream(ck) << "a checkpoint";
    REQUIRE(::symlink("a.ckpt", link.c_str()) == 0);
    checkpoint_lock l(link);
    CHECK_THROWS_AS(checkpoint_lock(ck), lock_error);  // the sidecar lies beside a.ckpt itself
    CHECK(exists(ck + ".lock"));
}

TEST_CASE("moving a lock moves the ownership; release is idempotent", "[lock]") {
    temp_dir dir;
    const std::string ck = dir.path + "/m.ckpt";
    checkpoint_lock a(ck);
    checkpoint_lock b(std::move(a));
    CHECK_FALSE(a.held());
    CHECK(b.held());
    a.release();  // a moved-from lock lets nothing go
    CHECK(exists(ck + ".lock"));
    CHECK_THROWS_AS(checkpoint_lock(ck), lock_error);
    checkpoint_lock c(dir.path + "/other.ckpt");
    c = std::move(b);  // c lets go of other.ckpt and takes over m.ckpt
    CHECK_FALSE(exists(dir.path + "/other.ckpt.lock"));
    CHECK(c.checkpoint() == ck);
    CHECK_THROWS_AS(checkpoint_lock(ck), lock_error);
    c.release();
    c.release();
    CHECK_FALSE(c.held());
    CHECK_FALSE(exists(ck + ".lock"));
    checkpoint_lock d(ck);
    CHECK(d.held());
}

TEST_CASE("a forked child's copy of a held lock does not release the parent's", "[lock]") {
    temp_dir dir;
    const std::string ck = dir.path + "/f.ckpt";
    checkpoint_lock held(ck);
    CHECK(in_child([&] {
              held.release();  // the child's copy: closes its descriptor only
              return 0;
          }) == 0);
    CHECK(held.held());
    CHECK(exists(ck + ".lock"));
    CHECK(child_attempt(ck, ::getpid()) == 0);
}

TEST_CASE("a holder caught before its pid write is waited for; one that never writes is still refused", "[lock]") {
    // A child flocks the sidecar as checkpoint_lock does but writes its pid only after
    // 100 ms; the sidecar meanwhile holds a dead run's pid. The taker must not name the dead
    // pid while a live one is coming, and must refuse either way.
    temp_dir dir;
    const std::string ck = dir.path + "/slow.ckpt", side = ck + ".lock";
    for (const bool writes : {true, false}) {
        INFO((writes ? "the holder writes its pid late" : "the holder never writes its pid"));
        std::ofstream(side) << "2147483646\n";  // above pid_max: no process has it
        int fds[2];
        REQUIRE(::pipe(fds) == 0);
        const pid_t child = ::fork();
        REQUIRE(child >= 0);
        if (child == 0) {
            const int fd = ::open(side.c_str(), O_RDWR);
            const bool ok = fd >= 0 && ::flock(fd, LOCK_EX | LOCK_NB) == 0;
            (void)!::write(fds[1], ok ? "y" : "n", 1);
            if (writes) {
                ::usleep(100 * 1000);
                const std::string pid = std::to_string(::getpid()) + "\n";
                (void)!::ftruncate(fd, 0);
                (void)!::pwrite(fd, pid.data(), pid.size(), 0);
            }
            for (;;) ::pause();
        }
        char ok = 0;
        REQUIRE(::read(fds[0], &ok, 1) == 1);
        ::close(fds[0]);
        ::close(fds[1]);
        REQUIRE(ok == 'y');
        try {
            checkpoint_lock mine(ck);
            FAIL_CHECK("locked while the child holds the flock");
        } catch (const lock_error& e) {
            if (writes) {
                CHECK(e.holder_pid() == child);
            } else {
                CHECK(e.holder_pid() == 2147483646);  // all it could read, after ~0.5 s of looking
            }
        }
        kill_and_reap(child);
        ::unlink(side.c_str());
    }
}

TEST_CASE("processes racing to take and release one lock never hold it at once", "[lock][race]") {
    // Each holder creates a marker with O_EXCL and removes it before letting go: two holders
    // at once would find the marker there. The releases remove the sidecar and the takers
    // re-create it, which is the race the inode check closes.
    temp_dir dir;
    const std::string ck = dir.path + "/race.ckpt", marker = dir.path + "/inside";
    constexpr int workers = 4, takes = 100;
    std::vector<pid_t> pids;
    for (int w = 0; w < workers; ++w) {
        const pid_t pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            int taken = 0;
            for (long attempt = 0; taken < takes; ++attempt) {
                if (attempt > 2000000) ::_exit(5);  // never got it: a lock nobody releases
                try {
                    {
                        checkpoint_lock l(ck);
                        const int fd = ::open(marker.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644);
                        if (fd < 0) ::_exit(3);  // someone else holds it too
                        ::close(fd);
                        ::usleep(20);
                        ::unlink(marker.c_str());
                    }
                    ++taken;
                    ::usleep(100);  // let the others in
                } catch (const lock_error&) {
                } catch (const std::exception& e) {
                    std::fprintf(stderr, "worker %d: %s\n", w, e.what());  // which error, in the test's log
                    ::_exit(4);
                } catch (...) {
                    ::_exit(4);
                }
            }
            ::_exit(0);
        }
        pids.push_back(pid);
    }
    for (const pid_t pid : pids) {
        int status = 0;
        REQUIRE(::waitpid(pid, &status, 0) == pid);
        REQUIRE(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 0);
    }
    CHECK_FALSE(exists(ck + ".lock"));
}

TEST_CASE("a lock file that cannot be created is a system_error naming it", "[lock]") {
    const std::string ck = "/nonexistent-recalign-dir/run.ckpt";
    try {
        checkpoint_lock l(ck);
        FAIL_CHECK("locked in a missing directory");
    } catch (const std::system_error& e) {
        CHECK(e.code().value() == ENOENT);
        CHECK_THAT(std::string(e.what()), Contains(ck + ".lock"));
    }
}
