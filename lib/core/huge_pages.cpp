// detail::advise_huge_pages and detail::release_pages (recalign/core/xt.hpp): the advice given
// to the library's large matrices.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "recalign/core/xt.hpp"

namespace recalign::detail {

namespace {

bool huge_pages_wanted() {
    const char* v = std::getenv("RECALIGN_HUGE_PAGES");
    return v == nullptr || std::strcmp(v, "0") != 0;
}

}  // namespace

void advise_huge_pages(void* p, std::size_t bytes) noexcept {
#ifdef MADV_HUGEPAGE
    static const bool wanted = huge_pages_wanted();
    constexpr std::uintptr_t huge = std::uintptr_t(2) << 20;
    if (!wanted || p == nullptr) return;
    const std::uintptr_t b = (reinterpret_cast<std::uintptr_t>(p) + huge - 1) / huge * huge;
    const std::uintptr_t e = (reinterpret_cast<std::uintptr_t>(p) + bytes) / huge * huge;
    if (e > b) ::madvise(reinterpret_cast<void*>(b), e - b, MADV_HUGEPAGE);
#else
    (void)p;
    (void)bytes;
#endif
}

void release_pages(const void* begin, const void* end) noexcept {
    static const std::uintptr_t page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
    const std::uintptr_t b = (reinterpret_cast<std::uintptr_t>(begin) + page - 1) / page * page;
    const std::uintptr_t e = reinterpret_cast<std::uintptr_t>(end) / page * page;
    if (e > b) ::madvise(reinterpret_cast<void*>(b), e - b, MADV_DONTNEED);
}

}  // namespace recalign::detail
