// matrix_allocator (recalign/core/xt.hpp): the library's large matrices and vectors carry the
// MADV_HUGEPAGE advice on their whole 2 MiB extents from the start, small ones do not, and the
// advice changes no value. Checked through the kernel's record of the advice (the "hg" flag of
// the mapping in /proc/self/smaps), which does not depend on whether huge pages are available
// at that moment; skipped (with a warning) where the kernel has no transparent huge pages.
#include <catch2/catch.hpp>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/stat.h>

#include <recalign/core/xt.hpp>

using namespace recalign;

namespace {

bool kernel_has_thp() {
    struct stat st {};
    return ::stat("/sys/kernel/mm/transparent_hugepage/enabled", &st) == 0;
}

// The VmFlags of the mapping holding address a ("" when none is found).
std::string vm_flags_at(const void* a) {
    const auto x = reinterpret_cast<std::uintptr_t>(a);
    std::ifstream smaps("/proc/self/smaps");
    std::string line;
    bool inside = false;
    while (std::getline(smaps, line)) {
        std::uintptr_t lo = 0, hi = 0;
        char dash = 0;
        std::istringstream head(line);
        if (head >> std::hex >> lo >> dash >> hi && dash == '-' && line.find(':') > line.find(' ')) {
            inside = lo <= x && x < hi;
            continue;
        }
        if (inside && line.rfind("VmFlags:", 0) == 0) return line;
    }
    return "";
}

bool advised(const void* a) { return vm_flags_at(a).find(" hg") != std::string::npos; }

}  // namespace

TEST_CASE("large matrices and vectors are advised huge pages, small ones are not", "[huge_pages]") {
    if (!kernel_has_thp()) {
        WARN("no /sys/kernel/mm/transparent_hugepage: nothing to check");
        return;
    }
    // 100 x 100 doubles (80 kB) come from the heap, shared with other allocations: no advice.
    // First, before any large block could have been freed into the heap with its advice.
    const matrix_t small = xt::zeros<double>({100, 100});
    CHECK_FALSE(advised(small.data()));
    constexpr std::uintptr_t huge = std::uintptr_t(2) << 20;
    // 3000 x 1000 doubles: 24 MB, whole 2 MiB extents inside it whatever its alignment.
    matrix_t m = matrix_t::from_shape({3000, 1000});
    const auto inner = (reinterpret_cast<std::uintptr_t>(m.data()) + huge - 1) / huge * huge;
    CHECK(advised(reinterpret_cast<const void*>(inner)));
    vector_t v = xt::zeros<double>({std::size_t(3) << 20});  // 24 MB
    const auto vin = (reinterpret_cast<std::uintptr_t>(v.data()) + huge - 1) / huge * huge;
    CHECK(advised(reinterpret_cast<const void*>(vin)));
    // A copy is a new allocation, advised too; values are untouched by the advice.
    m.fill(0.25);
    const matrix_t copy = m;
    const auto cin = (reinterpret_cast<std::uintptr_t>(copy.data()) + huge - 1) / huge * huge;
    CHECK(advised(reinterpret_cast<const void*>(cin)));
    CHECK(copy(2999, 999) == 0.25);
}
