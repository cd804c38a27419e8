// Checkpoint files: a state framed by recalign/core/serial.hpp, written atomically (temp
// file in the same directory, fsync, rename, fsync of the directory), so that a crash at
// any moment leaves either the old or the new checkpoint.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <system_error>

#include "recalign/core/errors.hpp"
#include "recalign/core/serial.hpp"

namespace recalign::checkpoint {

// Atomic write of a whole file. Any failure (open, write, fsync, rename) throws
// std::system_error naming the path; the previous file at `path` is then untouched.
void write_file_atomic(const std::string& path, const std::string& bytes);
// The streaming form, for outputs too large to hold in memory: write() appends to a
// temporary file beside `path`; commit() fsyncs it and renames it onto `path`. Destroyed
// without commit() (an error, an exception), the temporary is removed and `path` is untouched.
// An existing pipe, FIFO, socket or character device at `path` (/dev/null, /dev/stdout, a
// consumer's FIFO) cannot be replaced atomically and must not be replaced at all: it is
// written in place, and write_at() refuses (ESPIPE) since what was written has gone. A symbolic
// link stays a link: the file it names is replaced (the temporary beside that file).
class atomic_writer {
public:
    explicit atomic_writer(const std::string& path);
    ~atomic_writer();
    atomic_writer(const atomic_writer&) = delete;
    atomic_writer& operator=(const atomic_writer&) = delete;
    void write(const void* data, std::size_t bytes);
    // Writes over bytes already written, at `offset` (pwrite: a header whose sizes and checksum
    // are known once the rest is written).
    void write_at(std::uint64_t offset, const void* data, std::size_t bytes);
    void commit();

private:
    [[noreturn]] void fail(const char* what);
    std::string path_, target_, tmp_;  // target_: path_, or the file a symbolic link path_ names
    int fd_ = -1;
    bool committed_ = false;
};
// An existing pipe, FIFO, socket or character device (following links): written in place by
// atomic_writer, read once by the readers.
bool is_pipe_or_device(const std::string& path);
// Where a write of `path` lands: the file a symbolic link names (resolved to the end: the link
// stays a link and that file is replaced, as writing through the link would replace its
// contents), else `path` itself; a dangling link is `path` (the link is replaced by the file).
std::string write_target(const std::string& path);
// Removes the temporary files a killed write_file_atomic(path, ...) left beside `path` (or
// beside the file a symbolic link `path` names)
// (named path + ".tmp." + 6 characters; never read again) and returns how many. Call it
// before the first write of a run, never while another process may be writing `path`.
std::size_t remove_stale_temporaries(const std::string& path);

// Atomic save, and load naming the file in every error.
// The state is written as it is serialized (write_to): no copy of it in memory beside it.
template <class T>
void save_file(const std::string& path, const T& obj) {
    atomic_writer w(path);
    write_to(obj, [&w](const char* p, std::size_t n) { w.write(p, n); });
    w.commit();
}

// The same, the payload serialized once (its header written over a placeholder at the end):
// for a payload that streams parts of its own (the CLI's run state).
template <class T>
void save_file_once(const std::string& path, const T& obj) {
    atomic_writer w(path);
    detail::frame_once(
        &obj, &detail::save_of<T>, detail::header_of(obj), [&w](const char* p, std::size_t n) { w.write(p, n); },
        [&w](const char* head) { w.write_at(0, head, header_bytes); });
    w.commit();
}

// Parts of a checkpoint read where they lie, never the whole file at once (--resume of a state
// larger than its run: docs/benchmarks-log.md "ckpt10"). Errors are file_error naming `source` at the
// file offset concerned.
// Bytes [offset, offset + n) of the open file `fd` into `dst` (pread).
void read_at(int fd, std::uint64_t offset, void* dst, std::size_t n, const std::string& source);
// CRC-32 (core/hash.hpp) of bytes [offset, offset + n), read by blocks of `block_bytes`.
std::uint32_t crc_at(int fd, std::uint64_t offset, std::uint64_t n, const std::string& source);
constexpr std::size_t block_bytes = std::size_t(1) << 22;
namespace detail {
header check_range(int fd, std::uint64_t offset, std::uint64_t size, state_kind expected,
                   const std::string& expected_name, const std::string& source);
void parse_range(const header& h, int fd, std::uint64_t offset, const std::string& source, void* out, load_fn load);
}  // namespace detail
// A framed state in bytes [offset, offset + size) of `fd` (a part of a larger checkpoint): its
// header validated, `size` checked against it, its CRC computed by blocks, then parsed from the
// file through a buffer of block_bytes (a large array read straight into its storage).
template <class T>
T load_range(int fd, std::uint64_t offset, std::uint64_t size, const std::string& source) {
    const header h = detail::check_range(fd, offset, size, T::kind, checkpoint::detail::label_of<T>::get(), source);
    std::optional<T> obj;
    detail::parse_range(h, fd, offset, source, &obj, &checkpoint::detail::load_into<T>);
    return std::move(*obj);
}

template <class T>
T load_file(const std::string& path) {
    std::error_code ec;  // an ifstream opens a directory, whose read then says "truncated"
    if (std::filesystem::is_directory(path, ec)) throw file_error(path, "is a directory, not a checkpoint file");
    std::ifstream is(path, std::ios::binary);
    if (!is) throw file_error(path, "cannot open checkpoint for reading");
    return load_state<T>(is, path);
}

}  // namespace recalign::checkpoint
