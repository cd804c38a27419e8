// Shared helpers of the fuzz harnesses (tests/fuzz/README.md).
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

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

}  // namespace recalign_fuzz
