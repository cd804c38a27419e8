// The formats' names and detection, and file fingerprints: what identifies an input file
// (split from source.cpp, which streams the rows).
#include "recalign/io/source.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "posix_file.hpp"
#include "recalign/core/errors.hpp"
#include "recalign/core/hash.hpp"
#include "recalign/io/cifar.hpp"
#include "recalign/io/idx.hpp"
#include "recalign/io/image_list.hpp"
#include "recalign/io/npy.hpp"

namespace recalign::io {

const char* format_name(data_format f) {
    switch (f) {
        case data_format::auto_detect: return "auto";
        case data_format::idx: return "idx";
        case data_format::npy: return "npy";
        case data_format::raw: return "raw";
        case data_format::folder: return "folder";
        case data_format::list: return "list";
        case data_format::cifar10: return "cifar10";
        case data_format::cifar100: return "cifar100";
    }
    return "unknown";
}

data_format parse_format(const std::string& s) {
    if (s == "auto") return data_format::auto_detect;
    if (s == "idx") return data_format::idx;
    if (s == "npy") return data_format::npy;
    if (s == "raw") return data_format::raw;
    if (s == "folder") return data_format::folder;
    if (s == "list") return data_format::list;
    if (s == "cifar10") return data_format::cifar10;
    if (s == "cifar100") return data_format::cifar100;
    throw std::invalid_argument("unknown format '" + s + "' (expected auto, idx, npy, raw, folder, list, cifar10 or cifar100)");
}

bool is_image_format(data_format f) noexcept { return f == data_format::folder || f == data_format::list; }
bool is_cifar_format(data_format f) noexcept { return f == data_format::cifar10 || f == data_format::cifar100; }

std::string source_options::describe() const {
    std::string s;
    for (const std::string& p : images) s += (s.empty() ? "" : " + ") + p;
    return s;
}

data_format detect_format(const std::string& path) {
    struct stat ds {};
    if (::stat(path.c_str(), &ds) == 0 && S_ISDIR(ds.st_mode)) return data_format::folder;
    std::uint64_t size = 0;
    int fd = detail::open_read(path, size);
    unsigned char b[6] = {};
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(size, 6));
    try {
        detail::pread_exact(fd, b, n, 0, path);
    } catch (...) {
        detail::close_fd(fd);
        throw;
    }
    detail::close_fd(fd);
    if (n >= 2 && b[0] == 0x1f && b[1] == 0x8b) return data_format::idx;  // gzip: IDX .gz
    if (n >= 6 && std::memcmp(b, "\x93NUMPY", 6) == 0) return data_format::npy;
    if (n >= 4 && b[0] == 0 && b[1] == 0 &&
        (b[2] == 0x08 || b[2] == 0x09 || b[2] == 0x0B || b[2] == 0x0C || b[2] == 0x0D || b[2] == 0x0E))
        return data_format::idx;
    // Whole records of one kind: that format; of both (a multiple of 3073 x 3074 bytes):
    // detect_cifar refuses, asking for --format cifar10 or cifar100.
    if (whole_cifar_records(size, cifar_kind::cifar10) || whole_cifar_records(size, cifar_kind::cifar100))
        return detect_cifar(size, path) == cifar_kind::cifar10 ? data_format::cifar10 : data_format::cifar100;
    throw file_error(path, 0, "cannot tell the format: neither IDX, gzip nor .npy magic, nor whole CIFAR records "
                              "(for headerless data pass --format raw --raw-shape N,D --raw-dtype T; for a list "
                              "file --format list or --root DIR)");
}

std::string file_fingerprint::difference(const file_fingerprint& o) const {
    if (path != o.path) return "it was made from " + (path.empty() ? std::string("no file") : path) + ", not " +
                               (o.path.empty() ? std::string("no file") : o.path);
    if (size != o.size)
        return path + " had " + std::to_string(size) + " bytes and now has " + std::to_string(o.size);
    if (content_hash != o.content_hash) return "the content of " + path + " has changed";
    if (mtime_ns != o.mtime_ns) return path + " has been modified since (its modification time differs)";
    return {};
}

file_fingerprint fingerprint_file(const std::string& path) {
    file_fingerprint f;
    char resolved[PATH_MAX];
    f.path = ::realpath(path.c_str(), resolved) ? std::string(resolved) : path;
    bool pipe = false;
    int fd = detail::open_read_stream(path, f.size, pipe);
    if (pipe) {
        // Nothing to compare without consuming it: a pipe is identified by its name only (and a
        // run reading one refuses --resume before this is ever compared).
        detail::close_fd(fd);
        f.content_hash = fnv1a().add(std::string_view("pipe")).value();
        return f;
    }
    struct stat st {};
    ::fstat(fd, &st);
    f.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
    constexpr std::uint64_t block = 64 * 1024;
    std::vector<unsigned char> buf(static_cast<std::size_t>(std::min(block, f.size)));
    fnv1a h;
    h.add(f.size);
    try {
        detail::pread_exact(fd, buf.data(), buf.size(), 0, path);
        h.add_bytes(buf.data(), buf.size());
        if (f.size > block) {
            detail::pread_exact(fd, buf.data(), buf.size(), f.size - block, path);
            h.add_bytes(buf.data(), buf.size());
        }
    } catch (...) {
        detail::close_fd(fd);
        throw;
    }
    detail::close_fd(fd);
    f.content_hash = h.value();
    return f;
}

}  // namespace recalign::io
