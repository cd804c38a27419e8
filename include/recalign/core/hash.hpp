// Hashes used by checkpoints and state compatibility checks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace recalign {

// CRC-32 (zlib's polynomial): detects every single-byte change of a checkpoint.
std::uint32_t crc32(const void* data, std::size_t size, std::uint32_t seed = 0);

// FNV-1a, 64-bit: a stable configuration fingerprint (same on every platform and run).
class fnv1a {
public:
    fnv1a& add_bytes(const void* data, std::size_t size);
    fnv1a& add(std::uint64_t v);
    fnv1a& add(double v);
    fnv1a& add(std::string_view s);
    std::uint64_t value() const noexcept { return h_; }

private:
    std::uint64_t h_ = 0xcbf29ce484222325ULL;
};

}  // namespace recalign
