#include "recalign/core/hash.hpp"

#include <zlib.h>

#include <cstring>

namespace recalign {

std::uint32_t crc32(const void* data, std::size_t size, std::uint32_t seed) {
    uLong c = seed;
    const auto* p = static_cast<const Bytef*>(data);
    while (size > 0) {
        const uInt chunk = size > (1u << 30) ? (1u << 30) : static_cast<uInt>(size);
        c = ::crc32(c, p, chunk);
        p += chunk;
        size -= chunk;
    }
    return static_cast<std::uint32_t>(c);
}

fnv1a& fnv1a::add_bytes(const void* data, std::size_t size) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (std::size_t i = 0; i < size; ++i) {
        h_ ^= p[i];
        h_ *= 0x100000001b3ULL;
    }
    return *this;
}

fnv1a& fnv1a::add(std::uint64_t v) {
    unsigned char b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<unsigned char>(v >> (8 * i));  // little-endian, portable
    return add_bytes(b, 8);
}

fnv1a& fnv1a::add(double v) {
    std::uint64_t bits;
    std::memcpy(&bits, &v, 8);
    return add(bits);
}

fnv1a& fnv1a::add(std::string_view s) {
    add(static_cast<std::uint64_t>(s.size()));
    return add_bytes(s.data(), s.size());
}

}  // namespace recalign
