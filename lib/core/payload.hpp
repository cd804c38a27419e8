// What payload code (lib/<part>/<name>_serial.cpp) needs beyond recalign/core/serial.hpp:
// the definitions of the two archives and the array helpers. Private to the library, so
// that cereal is compiled only by the files that write or read a payload.
#pragma once

#include <cereal/archives/portable_binary.hpp>
#include <cereal/types/string.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <stdexcept>

#include "recalign/core/checked.hpp"
#include "recalign/core/serial.hpp"
#include "recalign/core/xt.hpp"

namespace recalign::checkpoint {

template <class Archive, std::size_t N>
void save_tensor(Archive& ar, const tensor_t<N>& t) {
    for (std::size_t i = 0; i < N; ++i) ar(static_cast<std::uint64_t>(t.shape(i)));
    ar(cereal::binary_data(t.data(), t.size() * sizeof(double)));
}

template <class Archive, std::size_t N>
void load_tensor(Archive& ar, tensor_t<N>& t, budget& b) {
    std::array<std::size_t, N> shape{};
    std::uint64_t count = 1;
    // Product of the non-zero extents: bounded too, since xtensor computes strides from them
    // even when another extent is 0 (fuzzing found shape {0, 2^63}: signed overflow in
    // xt::compute_strides; tests/fuzz/corpus/checkpoint/regression).
    std::uint64_t nonzero = 1;
    for (std::size_t i = 0; i < N; ++i) {
        std::uint64_t s = 0;
        ar(s);
        b.take(8, "array shape");
        if (s != 0) nonzero = checked_mul(nonzero, s, "checkpoint array shape");
        if (nonzero > max_payload_bytes / 8) throw std::length_error("array shape overflows");
        count *= s;  // <= nonzero
        shape[i] = static_cast<std::size_t>(s);
    }
    b.take(count * 8, "array data");
    t = tensor_t<N>::from_shape(shape);
    ar(cereal::binary_data(t.data(), t.size() * sizeof(double)));
}

}  // namespace recalign::checkpoint
