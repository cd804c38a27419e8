#include "recalign/core/rng.hpp"

#include <cmath>

namespace recalign::rng {

block philox(std::uint64_t key, std::uint32_t c0, std::uint32_t c1, std::uint32_t c2, std::uint32_t c3) {
    constexpr std::uint32_t m0 = 0xD2511F53u, m1 = 0xCD9E8D57u;
    constexpr std::uint32_t w0 = 0x9E3779B9u, w1 = 0xBB67AE85u;
    std::uint32_t k0 = static_cast<std::uint32_t>(key), k1 = static_cast<std::uint32_t>(key >> 32);
    block c{c0, c1, c2, c3};
    for (int round = 0; round < 10; ++round) {
        const std::uint64_t p0 = static_cast<std::uint64_t>(m0) * c[0];
        const std::uint64_t p1 = static_cast<std::uint64_t>(m1) * c[2];
        const block next{static_cast<std::uint32_t>(p1 >> 32) ^ c[1] ^ k0, static_cast<std::uint32_t>(p1),
                         static_cast<std::uint32_t>(p0 >> 32) ^ c[3] ^ k1, static_cast<std::uint32_t>(p0)};
        c = next;
        k0 += w0;
        k1 += w1;
    }
    return c;
}

std::uint64_t stream::bits(std::uint64_t i) const {
    // Key = seed; counter = (i, b, a). Distinct for every i < 2^32, b < 2^32, a < 2^48,
    // far beyond any draw count, row or batch index a run reaches.
    const block r = philox(seed_, static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(b_),
                           static_cast<std::uint32_t>(a_),
                           static_cast<std::uint32_t>(a_ >> 32) ^ (static_cast<std::uint32_t>(i >> 32) << 16) ^
                               (static_cast<std::uint32_t>(b_ >> 32) << 24));
    return (static_cast<std::uint64_t>(r[0]) << 32) | r[1];
}

double stream::uniform(std::uint64_t i) const {
    return static_cast<double>(bits(i) >> 11) * 0x1.0p-53;
}

double stream::normal(std::uint64_t i) const {
    // Box-Muller on the pair (2i, 2i+1); 1 - u keeps the logarithm finite.
    const double u1 = 1.0 - uniform(2 * i), u2 = uniform(2 * i + 1);
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586476925286766559 * u2);
}

}  // namespace recalign::rng
