// Overflow-checked size arithmetic: the one mechanism by which recalign multiplies
// dimensions and counts (rows x D of a batch, D x D of a moment state, ell x D of a
// sketch, H x W x C of an image, the shape product of a file header, a payload's byte
// count). Unsigned arithmetic wraps silently (no sanitizer sees it), and a wrapped size
// is a small allocation followed by a large write; so every such product goes through
// checked_mul / checked_product / checked_bytes, which throw size_overflow (an
// input_error, hence a std::invalid_argument) naming what was being sized instead.
// File readers turn it into a file_error naming the file and the header's offset.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string>
#include <type_traits>

#include "recalign/core/errors.hpp"

namespace recalign {

static_assert(std::is_same_v<std::size_t, std::uint64_t> ||
                  std::numeric_limits<std::size_t>::max() <= std::numeric_limits<std::uint64_t>::max(),
              "size_t wider than 64 bits");

class size_overflow : public input_error {
public:
    using input_error::input_error;
};

namespace detail {
[[noreturn]] inline void throw_size_overflow(const char* what, std::uint64_t a, const char* op, std::uint64_t b,
                                             const char* limit) {
    throw size_overflow(std::string(what) + ": " + std::to_string(a) + " " + op + " " + std::to_string(b) +
                        " overflows " + limit);
}
}  // namespace detail

// a * b, or size_overflow when the product exceeds 2^64 - 1 (and, on a 32-bit size_t,
// when it does not fit a size_t: what is sized here is always something in memory or a file).
inline std::uint64_t checked_mul(std::uint64_t a, std::uint64_t b, const char* what) {
    std::uint64_t r = 0;
    if (__builtin_mul_overflow(a, b, &r)) detail::throw_size_overflow(what, a, "x", b, "2^64 - 1");
    return r;
}

inline std::uint64_t checked_add(std::uint64_t a, std::uint64_t b, const char* what) {
    std::uint64_t r = 0;
    if (__builtin_add_overflow(a, b, &r)) detail::throw_size_overflow(what, a, "+", b, "2^64 - 1");
    return r;
}

// Product of a sequence of extents (1 for an empty one). Checked at every step, so a zero
// extent after an overflowing prefix does not hide the overflow: a shape whose non-zero
// extents overflow is refused even when it holds no element (xtensor computes strides from
// them).
template <class It>
std::uint64_t checked_product(It first, It last, const char* what) {
    std::uint64_t r = 1, nonzero = 1;
    for (; first != last; ++first) {
        const std::uint64_t v = static_cast<std::uint64_t>(*first);
        if (v != 0) nonzero = checked_mul(nonzero, v, what);
        r *= v;  // r <= nonzero, or 0: cannot wrap
    }
    return r;
}
inline std::uint64_t checked_product(std::initializer_list<std::uint64_t> extents, const char* what) {
    return checked_product(extents.begin(), extents.end(), what);
}

// Bytes of `count` objects of type T, refused when above PTRDIFF_MAX (no object can be
// larger; pointer differences over it are undefined).
template <class T>
std::uint64_t checked_bytes(std::uint64_t count, const char* what) {
    const std::uint64_t bytes = checked_mul(count, sizeof(T), what);
    if (bytes > static_cast<std::uint64_t>(std::numeric_limits<std::ptrdiff_t>::max()))
        detail::throw_size_overflow(what, count, "x", sizeof(T), "PTRDIFF_MAX bytes");
    return bytes;
}

// Element count of an allocation of extents (a x b x ...), with its byte size checked too:
// what an allocation site calls before resizing a buffer or building a tensor.
template <class T>
std::size_t checked_elements(std::initializer_list<std::uint64_t> extents, const char* what) {
    const std::uint64_t n = checked_product(extents, what);
    checked_bytes<T>(n, what);
    return static_cast<std::size_t>(n);
}

}  // namespace recalign
