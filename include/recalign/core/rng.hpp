// Counter-based random numbers (Philox4x32-10, Salmon et al., SC'11). A value is a pure
// function of (seed, counter), so a resumed run regenerates exactly the numbers an
// uninterrupted run would have drawn, with no generator state to checkpoint. No std
// distributions: their algorithms differ between standard libraries.
#pragma once

#include <array>
#include <cstdint>

namespace recalign::rng {

using block = std::array<std::uint32_t, 4>;

// One Philox4x32-10 block for a 64-bit key and a 128-bit counter (c0..c3).
block philox(std::uint64_t key, std::uint32_t c0, std::uint32_t c1, std::uint32_t c2, std::uint32_t c3);

// A stream of numbers addressed by (seed, a, b): e.g. a = batch index, b = row. The
// i-th number of the stream is fixed, whatever was drawn before.
class stream {
public:
    stream(std::uint64_t seed, std::uint64_t a, std::uint64_t b) : seed_(seed), a_(a), b_(b) {}
    // Uniform on [0, 1) with 53 random bits.
    double uniform(std::uint64_t i) const;
    // Standard normal (Box-Muller on two uniforms of this stream).
    double normal(std::uint64_t i) const;
    // Raw 64 random bits.
    std::uint64_t bits(std::uint64_t i) const;

private:
    std::uint64_t seed_, a_, b_;
};

}  // namespace recalign::rng
