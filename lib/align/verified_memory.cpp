#include "recalign/align/verified_memory.hpp"

#include <unistd.h>

#include <algorithm>

namespace recalign {

namespace {

constexpr long double refined = static_cast<long double>(denoising_refined_vectors);

struct geometry {
    long double height, width, channels, layout, patch_h, patch_w;
    bool operator==(const geometry& o) const {
        return height == o.height && width == o.width && channels == o.channels && layout == o.layout &&
               patch_h == o.patch_h && patch_w == o.patch_w;
    }
};

}  // namespace

long double run_memory(const std::string& method, std::uint64_t dim, std::uint64_t classes, std::uint64_t rank,
                       long double extra) {
    const long double d = static_cast<long double>(dim), k = static_cast<long double>(classes);
    long double words = method == "exact" ? 3.0L * d * d : 3.0L * 2.0L * static_cast<long double>(rank) * d;
    if (method == "fd") {  // each shrink: the 2l x 2l Gram matrix and two scratch copies (l = min(2 rank, D))
        const long double ell = std::min(2.0L * static_cast<long double>(rank), d);
        words += 3.0L * 4.0L * ell * ell;
    }
    if (classes) words += 2.0L * (d + 1.0L) * k + k * k;
    return 8.0L * words + extra;
}

long double verification_memory(std::uint64_t dim, std::uint64_t columns, long double extra) {
    return 3.0L * 8.0L * static_cast<long double>(dim) * static_cast<long double>(columns) + extra;
}

verification_size alignment_verification(std::uint64_t rank) { return {rank, 0.0L}; }

verification_size tradeoff_verification(std::uint64_t dim, std::uint64_t classes, std::uint64_t rank,
                                        std::uint64_t refine, std::uint64_t block) {
    const long double d = static_cast<long double>(dim), s = static_cast<long double>(std::max<std::uint64_t>(block, 1));
    const long double k = static_cast<long double>(rank), c = static_cast<long double>(classes);
    // Blocks of s coordinates (packed upper triangles, an edge block smaller: at most D (s + 1) / 2
    // doubles); the preconditioner's E⁻¹ [U, R] and E⁻¹ U (2 D (r + C)) while a basis is built.
    const long double blocks = s == 1.0L ? d : d * (s + 1.0L) / 2.0L;
    return {rank + 2 * classes * (1 + refine), 8.0L * (blocks + 2.0L * d * (k + c))};
}

verification_size denoising_verification(std::uint64_t dim, std::uint64_t rank, const std::vector<noise_spec>& noises,
                                         const image_shape& shape, bool refines) {
    const long double d = static_cast<long double>(dim), k = static_cast<long double>(rank);
    std::vector<geometry> seen;
    long double blocks = 0.0L, columns = k, monte_carlo = 0.0L;
    for (const noise_spec& n : noises) {
        if (n.draws > 0) {
            monte_carlo += 1.0L;
            continue;
        }
        if (n.family == noise_family::gaussian) continue;
        const image_shape& s = !n.shape.empty() ? n.shape : !shape.empty() ? shape : image_shape{dim, 1, 1};
        const bool mask = n.family == noise_family::mask;
        const geometry g{static_cast<long double>(s.height), static_cast<long double>(s.width),
                         static_cast<long double>(s.channels), static_cast<long double>(s.layout),
                         mask ? static_cast<long double>(n.patch_h) : 1.0L, mask ? static_cast<long double>(n.patch_w) : 1.0L};
        if (std::find(seen.begin(), seen.end(), g) == seen.end()) {
            seen.push_back(g);
            blocks += 4.0L * d * (g.patch_h * g.patch_w * g.channels + 1.0L);  // packed upper triangles
        }
        columns += k + std::min(refined, k);
    }
    const long double l = std::min(k + 10.0L, d);  // a Monte-Carlo sketch's columns
    columns = std::min(columns + 3.0L * l * monte_carlo, d);
    blocks += monte_carlo * (48.0L * d * l + 16.0L * (d + columns) * columns);
    // A refinement step holds the previous pass (2 D x K) with each masking noise's Ritz vectors
    // and the temporaries of its corrections (8 x refined D-long vectors), then frees the pass and
    // builds the next basis: the Ritz vectors and corrections fit in the verification pass's
    // 3 D x K, the temporaries are extra.
    const long double corrections = refines && !seen.empty() ? 8.0L * d * 8.0L * refined : 0.0L;
    return {static_cast<std::uint64_t>(columns), blocks + corrections};
}

long double physical_memory() {
    const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
    return pages > 0 && page > 0 ? static_cast<long double>(pages) * static_cast<long double>(page) : 0.0L;
}

}  // namespace recalign
