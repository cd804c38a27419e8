// Internal helpers of the file readers (not installed): open/stat/pread with errors that
// name the file and the byte offset.
#pragma once

#include <cstdint>
#include <string>

namespace recalign::io::detail {

// Opens read-only; throws file_error(path, reason) on failure. Returns the descriptor.
int open_read(const std::string& path, std::uint64_t& size_out);
// Opens for one sequential read: a regular file as open_read does (`pipe` false), or a pipe,
// FIFO or character device (`pipe` true, `size_out` 0); "-" is standard input.
int open_read_stream(const std::string& path, std::uint64_t& size_out, bool& pipe);
// Reads exactly `bytes` from the current position of a pipe (`offset`: bytes read so far, for
// the messages); its end before that is a file_error naming the offset.
void read_exact(int fd, void* dst, std::size_t bytes, std::uint64_t offset, const std::string& path);
// Reads exactly `bytes` at `offset`; a short file is a file_error at the offset where data ran out.
void pread_exact(int fd, void* dst, std::size_t bytes, std::uint64_t offset, const std::string& path);
// Writes exactly `bytes` at `offset` (short writes and EINTR continued); an error, or a write
// that makes no progress, is a file_error at the offset where writing stopped.
void pwrite_exact(int fd, const void* src, std::size_t bytes, std::uint64_t offset, const std::string& path);
void close_fd(int& fd) noexcept;

// Element conversion: `count` elements of `item_size` bytes, kind 'b','i','u','f', stored
// big- or little-endian, to doubles.
void convert_to_double(const unsigned char* src, std::size_t count, char kind, std::size_t item_size,
                       bool big_endian, double* dst);

constexpr bool host_big_endian() {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return true;
#else
    return false;
#endif
}

}  // namespace recalign::io::detail
