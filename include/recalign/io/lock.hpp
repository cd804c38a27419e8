// An advisory lock on a checkpoint, so that two runs can never write one file: the second is
// refused, naming the process that holds it.
//
// The checkpoint itself cannot carry the lock: every save replaces it by rename
// (checkpoint::write_file_atomic), so a lock on its inode would guard a file that is no
// longer there. The lock is an exclusive flock(2) on a sidecar `PATH.lock` that holds the
// owner's pid as text, taken without waiting:
//
//  * flock dies with its process, so the sidecar a killed run left behind blocks nobody:
//    the next run locks it and writes its own pid;
//  * the owner removes the sidecar when it lets go, while still holding the lock; a run that
//    opened the old sidecar before the removal and locks it afterwards finds that the path no
//    longer names the inode it locked, and starts again on the new one (otherwise it and a
//    run that created the new sidecar would both hold "the" lock);
//  * the lock belongs to the process that took it: a fork()ed child inheriting the object
//    neither unlocks nor removes the sidecar when its copy is destroyed, and the descriptor is
//    close-on-exec.
//
// One path, one lock, also within one process (flock locks open file descriptions, not
// processes): a second checkpoint_lock of the same path is refused naming this process.
// Paths are compared as spelled (PATH + ".lock"): two spellings of one directory entry
// (relative / absolute, through a symlinked directory) share the sidecar; a symlink to the
// checkpoint file itself does not, and the atomic rename would replace such a link anyway.
#pragma once

#include <stdexcept>
#include <string>

namespace recalign::io {

// The lock is held by another process (or another checkpoint_lock of this one). Not a
// file_error: nothing is wrong with the file, another run is using it.
class lock_error : public std::runtime_error {
public:
    lock_error(const std::string& checkpoint, long holder_pid, const std::string& what)
        : std::runtime_error(what), checkpoint_(checkpoint), holder_pid_(holder_pid) {}
    // The checkpoint path the lock was asked for.
    const std::string& checkpoint() const noexcept { return checkpoint_; }
    // The holder's pid as its sidecar says, or 0 when it could not be read.
    long holder_pid() const noexcept { return holder_pid_; }

private:
    std::string checkpoint_;
    long holder_pid_;
};

class checkpoint_lock {
public:
    // Takes the lock of `checkpoint_path` without waiting. Throws lock_error
    // ("checkpoint P is in use by process N (lock file P.lock): ...") when another holder
    // has it, and std::system_error naming the sidecar when it cannot be created (a missing
    // or read-only directory).
    explicit checkpoint_lock(const std::string& checkpoint_path);
    ~checkpoint_lock();

    checkpoint_lock(checkpoint_lock&& other) noexcept;
    checkpoint_lock& operator=(checkpoint_lock&& other) noexcept;
    checkpoint_lock(const checkpoint_lock&) = delete;
    checkpoint_lock& operator=(const checkpoint_lock&) = delete;

    // Lets go early (the destructor does the same): removes the sidecar if it is still ours,
    // then unlocks. Idempotent.
    void release() noexcept;

    bool held() const noexcept { return fd_ >= 0; }
    const std::string& checkpoint() const noexcept { return checkpoint_; }
    const std::string& lock_path() const noexcept { return lock_path_; }

    // The sidecar of a checkpoint path: beside the file a symbolic link names (checkpoint::
    // write_target), so that runs naming one checkpoint through different links exclude each other.
    static std::string lock_path_of(const std::string& checkpoint_path);

private:
    std::string checkpoint_, lock_path_;
    int fd_ = -1;
    long owner_pid_ = 0;  // the process that took the lock
};

}  // namespace recalign::io
