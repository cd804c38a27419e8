// The one place that includes xtensor: every other header includes this one, so that the
// xtensor configuration (and its compile cost) is decided in a single spot.
#pragma once

#include <cstddef>
#include <memory>

#include <xtensor/xadapt.hpp>
#include <xtensor/xtensor.hpp>
#include <xtensor/xview.hpp>

namespace recalign {

namespace detail {

// Blocks of at least this many bytes are advised MADV_HUGEPAGE (below: heap memory shared with
// other allocations, where advice could back a neighbour's pages too).
inline constexpr std::size_t huge_page_advice_bytes = std::size_t(4) << 20;

// Advises transparent huge pages for the whole 2 MiB extents inside [p, p + bytes): a fresh
// mapping then faults once per 2 MiB instead of once per 4 KiB (docs/benchmarks-log.md "time10", "huge
// pages"). Advice only: where the system says no (THP "never", an old kernel)
// nothing changes, and the bits computed never depend on it. RECALIGN_HUGE_PAGES=0
// in the environment turns it off (for side-by-side measurements). Defined in lib/core.
void advise_huge_pages(void* p, std::size_t bytes) noexcept;

// Gives the whole pages inside [begin, end) back to the system (MADV_DONTNEED): memory whose
// contents are not read again (a matrix consumed as it is read, then freed), so it and what is
// formed from it are not both resident. The pages read as zeros afterwards. Defined in lib/core.
void release_pages(const void* begin, const void* end) noexcept;

// The allocator of every matrix and vector of the library: std::allocator's memory, advised
// as above when large. Stateless; all instances are equal. An uninitialised matrix is
// matrix_t::from_shape({r, c}), not xt::empty (which returns an xtensor with std::allocator:
// assigned to a matrix_t, a second block and a copy of the first).
template <class T>
struct matrix_allocator {
    using value_type = T;
    matrix_allocator() noexcept = default;
    template <class U>
    matrix_allocator(const matrix_allocator<U>&) noexcept {}
    T* allocate(std::size_t n) {
        T* p = std::allocator<T>{}.allocate(n);
        if (n >= huge_page_advice_bytes / sizeof(T)) advise_huge_pages(p, n * sizeof(T));
        return p;
    }
    void deallocate(T* p, std::size_t n) noexcept { std::allocator<T>{}.deallocate(p, n); }
    template <class U>
    bool operator==(const matrix_allocator<U>&) const noexcept {
        return true;
    }
    template <class U>
    bool operator!=(const matrix_allocator<U>&) const noexcept {
        return false;
    }
};

}  // namespace detail

// The library's double tensors of rank N (row-major, matrix_allocator).
template <std::size_t N>
using tensor_t = xt::xtensor<double, N, xt::layout_type::row_major, detail::matrix_allocator<double>>;
using vector_t = tensor_t<1>;
using matrix_t = tensor_t<2>;

}  // namespace recalign
