// Shared helpers of the fuzz harnesses (tests/fuzz/README.md).
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

namespace recalign_fuzz {

// The readers open files by path: the input goes to one temporary file per process
// (rewritten for every input), named by the process id so parallel fuzzers do not collide.
inline const std::string& temp_path(const char* tag) {
    struct temp_file {
        std::string path;
        ~temp_file() { ::unlink(path.c_str()); }
    };
    static const temp_file file{[tag] {
        const char* dir = std::getenv("TMPDIR");
        return std::string(dir && *dir ? dir : "/tmp") + "/recalign-fuzz-" + tag + "-" +
               std::to_string(static_cast<long>(::getpid()));
    }()};
    return file.path;
}

inline void write_file(const std::string& path, const std::uint8_t* data, std::size_t size) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) std::abort();
    std::size_t done = 0;
    while (done < size) {
        const ssize_t n = ::write(fd, data + done, size - done);
        if (n <= 0) std::abort();
        done += static_cast<std::size_t>(n);
    }
    ::close(fd);
}

// Drives a row reader (io::idx_reader, io::npy_reader) over the file as a data source would:
// rows in blocks of 64 after skipping one, then the file as labels; at most max_rows rows
// each. Any std::exception is an expected rejection.
template <class Reader, class Block>
void drive_reader(const std::string& path, std::uint64_t max_rows) {
    try {
        Reader r(path);
        Block block;
        std::uint64_t total = 0;
        if (r.rows() > 2) r.skip(1);
        while (total < max_rows) {
            const std::size_t n = r.read(64, block);
            if (n == 0) break;
            total += n;
            (void)block.view();
        }
    } catch (const std::exception&) {
    }
    try {
        Reader r(path);
        std::vector<std::int64_t> labels;
        std::uint64_t total = 0;
        while (total < max_rows) {
            const std::size_t n = r.read_labels(100, labels);
            if (n == 0) break;
            total += n;
        }
    } catch (const std::exception&) {
    }
}

}  // namespace recalign_fuzz
