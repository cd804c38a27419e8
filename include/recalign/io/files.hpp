// Checkpoint files: a state framed by recalign/core/serial.hpp, written atomically (temp
// file in the same directory, fsync, rename, fsync of the directory), so that a crash at
// any moment leaves either the old or the new checkpoint.
#pragma once

#include <cstddef>
#include <fstream>
#include <string>

#include "recalign/core/errors.hpp"
#include "recalign/core/serial.hpp"

namespace recalign::checkpoint {

// Atomic write of a whole file. Any failure (open, write, fsync, rename) throws
// std::system_error naming the path; the previous file at `path` is then untouched.
void write_file_atomic(const std::string& path, const std::string& bytes);
// The streaming form, for outputs too large to hold in memory: write() appends to a
// temporary file beside `path`; commit() fsyncs it and renames it onto `path`. Destroyed
// without commit() (an error, an exception), the temporary is removed and `path` is untouched.
class atomic_writer {
public:
    explicit atomic_writer(const std::string& path);
    ~atomic_writer();
    atomic_writer(const atomic_writer&) = delete;
    atomic_writer& operator=(const atomic_writer&) = delete;
    void write(const void* data, std::size_t bytes);
    void commit();

private:
    [[noreturn]] void fail(const char* what);
    std::string path_, tmp_;
    int fd_ = -1;
    bool committed_ = false;
};
// Removes the temporary files a killed write_file_atomic(path, ...) left beside `path`
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

template <class T>
T load_file(const std::string& path) {
    std::ifstream is(path, std::ios::binary);
    if (!is) throw file_error(path, 0, "cannot open checkpoint for reading");
    return load_state<T>(is, path);
}

}  // namespace recalign::checkpoint
