#include "recalign/align/verified_memory.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "recalign/align/sketch_denoising.hpp"
#include "recalign/core/checked.hpp"
#include "recalign/sketch/frequent_directions_ell.hpp"
#include "recalign/sketch/nystrom_sketch.hpp"

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

// The run with the routes' block Krylov sketch over `blocks` passes at its widest basis in place of
// the one-block sketch (nystrom_peak_bytes); 0 without one.
long double krylov_run_memory(std::uint64_t dim, std::uint64_t classes, std::uint64_t rank, std::uint64_t blocks,
                              long double extra) {
    if (blocks <= 1 || rank == 0 || rank >= dim) return 0.0L;
    nystrom_options o;
    o.dim = static_cast<std::size_t>(dim);
    o.rank = static_cast<std::size_t>(rank);
    o.oversampling = static_cast<std::size_t>(std::min<std::uint64_t>(std::max<std::uint64_t>(rank, 10), dim - rank));
    o.probes = static_cast<std::size_t>(std::min<std::uint64_t>(10, dim));
    o.blocks = static_cast<std::size_t>(blocks);
    return run_memory("nystrom", dim, classes, 0, extra) + nystrom_peak_bytes(o);
}

long double run_memory(const std::string& method, std::uint64_t dim, std::uint64_t classes, std::uint64_t rank,
                       long double extra, std::uint64_t krylov_blocks, unsigned exact_matrices) {
    const long double d = static_cast<long double>(dim), k = static_cast<long double>(classes);
    long double words = method == "exact" ? static_cast<long double>(exact_matrices) * d * d
                                          : 3.0L * 2.0L * static_cast<long double>(rank) * d;
    if (method == "fd") {  // l = frequent_directions_default_ell. The state: the 2l-row buffer (2 l x D),
                           // each shrink's 2l x 2l Gram matrix and two scratch copies, its rotation's
                           // l x 2,048 scratch and (f32 kernels) 2l x 8,192 and l x 8,192 float
                           // blocks. The finish
                           // (frequent_directions_spectrum) reads the sketch's rows in place: the
                           // Gram matrix of its up to m = 2l + 1 rows and dsyevd's workspace
                           // (4 m²), then E = Bᵀ U_r, whose storage its Ritz vectors take (rank x
                           // D; tall_svd.hpp). (Its fallback, a thin SVD of a copy, needs rel_tol at
                           // rounding level: never from the CLI.) Measured at D = 150,528, rank 100,
                           // 2,000 rows: the sketch pass and the finish 0.91 GB, the run's peak (the
                           // CLI parks the state through the verification pass).
        const long double ell = static_cast<long double>(
            frequent_directions_default_ell(static_cast<std::size_t>(rank), static_cast<std::size_t>(dim)));
        const long double m = 2.0L * ell + 1.0L;
        words = 2.0L * ell * d + 3.0L * 4.0L * ell * ell + ell * std::min(d, 2048.0L) +
                1.5L * ell * std::min(d, 8192.0L) + 4.0L * m * m + static_cast<long double>(rank) * d;
    }
    if (classes) words += 2.0L * (d + 1.0L) * k + k * k;
    const long double krylov = method == "nystrom" ? krylov_run_memory(dim, classes, rank, krylov_blocks, extra) : 0.0L;
    return std::max(8.0L * words + extra, krylov);
}

std::uint64_t exact_denoise_extra(std::uint64_t dim, const std::vector<noise_spec>& noises, std::uint64_t replicates) {
    const std::uint64_t matrix = checked_mul(checked_mul(dim, dim, "D x D"), 8, "D x D bytes");
    std::uint64_t sums = 0;
    for (const noise_spec& s : noises)
        if (s.draws) sums = checked_add(sums, checked_mul(4, replicates, "denoise memory"), "denoise memory");
    return checked_mul(matrix, sums > 2 ? sums - 2 : 0, "denoise memory");
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
    // doubles); the preconditioner's E⁻¹ [U, R] and E⁻¹ U (2 D (r + C)) while a basis is built,
    // and the new basis beside the last span (D doubles a column; measured at D = 37,632 with
    // 21 passes: 160 MB above the resident set at the last basis).
    const long double blocks = s == 1.0L ? d : d * (s + 1.0L) / 2.0L;
    const std::uint64_t columns = rank + 2 * classes * (1 + refine);
    return {columns, 8.0L * (blocks + 2.0L * d * (k + c) + d * static_cast<long double>(columns))};
}

verification_size denoising_verification(std::uint64_t dim, std::uint64_t rank, const std::vector<noise_spec>& noises,
                                         const image_shape& shape, bool refines, bool parks) {
    const long double d = static_cast<long double>(dim), k = static_cast<long double>(rank);
    std::vector<geometry> seen, sharing;  // sharing: each mask's, with repeats
    long double blocks = 0.0L, columns = k, monte_carlo = 0.0L;
    std::size_t mask_noises = 0;  // closed-form noises with blocks (masks, dropout)
    std::vector<long double> cached;  // each such noise's gram_solve_cache entry on disk, bytes
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
        sharing.push_back(g);
        if (std::find(seen.begin(), seen.end(), g) == seen.end()) {
            seen.push_back(g);
            blocks += 4.0L * d * (g.patch_h * g.patch_w * g.channels + 1.0L);  // packed upper triangles
        }
        columns += k + 2.0L * std::min(refined, k);  // Ritz vectors, the previous tops (P block), corrections
        ++mask_noises;
        // The restarts' preconditioner cache (sketched_gram_solve, time10): a file reserved for
        // each block's factor, Σ_b s_b (s_b + 1) ≤ D (s + 1) words for blocks of at most s
        // coordinates, and E⁺U (D x rank).
        cached.push_back(8.0L * d * (g.patch_h * g.patch_w * g.channels + 1.0L) + 8.0L * d * k);
    }
    const long double l = std::min(k + 10.0L, d);  // a Monte-Carlo sketch's columns
    columns = std::min(columns + 3.0L * l * monte_carlo, d);
    blocks += monte_carlo * (48.0L * d * l + 16.0L * (d + columns) * columns);
    // What the run holds at its largest, by phase (measured at 224x224x3: docs/benchmarks-log.md, "The
    // first basis construction in place"): through the passes, the Nyström state (D x (rank + 20))
    // and the sketch finished once (D x rank), the blocks; then the largest of a verification
    // pass (V and Sxx V: 2 D x K; the analyses run in its coordinates), the first basis
    // construction (the D x (rank + masks rank) basis built in place and one sketched subspace,
    // D x rank) and a refinement step (the previous pass, each masking noise's corrections, 64
    // each, and the previous pass's 64 tops (the P block, part of the pass's columns), and one
    // correction's temporaries, 7 x 64 + rank D-long vectors; the Ritz vectors are coordinates,
    // R = Q C and Sxx R = (Sxx Q) C are formed in Q's storage or release Q's rows as they are
    // read, Sxx R from Sxx Q on disk as a view of its file: incremental_refinement.cpp). run_memory (48 rank D: the sketch pass and its finish) and verification_memory
    // (3 D doubles per direction) are added to `extra`, so it is the difference, which may be
    // negative: the finish's temporaries are gone by the verification passes (the sum is then
    // the larger of run_memory and this peak).
    const long double masks = static_cast<long double>(seen.empty() ? 0 : mask_noises);
    // The most masks of one patch geometry: a restart forms their residuals side by side
    // (refinement_residuals, two D x (64 each) matrices at most), then solves one at a time while
    // the others wait (on disk when parked).
    long double shared = 0.0L;
    for (const geometry& g : seen)
        shared = std::max(shared, static_cast<long double>(std::count(sharing.begin(), sharing.end(), g)));
    const long double residuals = std::max(4.0L, 2.0L * shared);  // 64-column temporaries, unparked
    // + the process's own 64 MiB and OpenBLAS's buffers: 225 D doubles measured after the finish
    // (1.8 kB per pixel value at 224x224x3 and 64x64x3) while products on D rows touched all of
    // them; blas.cpp's products take at most 8,192 rows at a time, so at most GEMM_Q (384) x 8,192
    // doubles of them are touched (mem9: 18,124 kB outside malloc after the finish at 224x224x3).
    const long double kept = 8.0L * d * (2.0L * k + 20.0L) + 8.0L * std::min(225.0L * d, 384.0L * 8192.0L) + 67108864.0L;
    // With refinement passes (incremental_refinement.hpp, docs/benchmarks-log.md "mem224") the passes
    // after the first read only T (masks x 64 directions, with its Sxx T) while the carried
    // [Sxx R, 0] waits on disk and [R, T] (D x columns) in memory (`refine` below: less than the
    // step, which holds Q too, at ranks of 64 and more; at smaller ranks it can be the largest),
    // and the restart and the analyses hold the basis Q
    // (D x columns) in memory but read Sxx Q from disk a block of rows at a time: the largest
    // pass is then the first (U and the sketched subspaces), and the step holds Q, T's Sxx T
    // while the pass is completed, and the corrections' temporaries (4 x 64 D-long vectors, or
    // 2 x 64 per mask of the geometry most masks share: `residuals`; or R and the block solves'
    // E⁺U, D x rank).
    // Without refinement passes (or with incremental ones) the largest pass is the first, on U,
    // the sketched subspaces and the Monte-Carlo directions: no corrections, no previous tops.
    const bool incremental = refines && masks > 0 && monte_carlo == 0.0L;  // Monte-Carlo noises keep full passes
    // Incremental restarts refine the clean top 64 too (denoising_restart): its Ritz vectors, their
    // P block and their corrections, as one more mask's, and one more set of corrections' temporaries.
    if (incremental) columns = std::min(columns + 3.0L * std::min(refined, k), d);
    const long double corrected = incremental ? masks + 1.0L : masks;
    const long double first_columns = std::min(k + masks * k + 3.0L * l * monte_carlo, d);
    const long double pass = 16.0L * d * (refines && !incremental ? columns : first_columns);
    const long double refine = incremental ? 8.0L * d * (columns + 2.0L * corrected * std::min(refined, k)) : 0.0L;
    const long double first = 8.0L * d * (k + masks * k + k);
    const long double temporaries = 8.0L * d * (masks * 2.0L * std::min(refined, k) + 7.0L * std::min(refined, k) + k);
    const long double step =
        incremental ? 8.0L * d * (columns + corrected * std::min(refined, k) + residuals * std::min(refined, k) + k)
        : refines && masks > 0 ? 16.0L * d * columns + temporaries  // full passes: the previous one held whole
                               : 0.0L;
    // Vᵀ Bd V per set of blocks, m x m, kept through a restart and carried (a x a) into the next
    // pass (restricted_statistics::blocks_known): small beside D x m, counted all the same.
    const long double known = incremental ? 8.0L * columns * columns * static_cast<long double>(seen.size()) : 0.0L;
    long double peak = kept + blocks + known + std::max({pass, first, step, refine});
    // Parked (docs/benchmarks-log.md "mem8"): the sketch's state (D x (rank + 20)) on disk from the first
    // basis construction on, its basis U (D x rank) during every pass: the passes hold neither,
    // the first construction and the restarts U; a restart's block solves form E⁺R in R's
    // storage and the other noises' corrections and residuals wait on disk: Q, U, E⁺U and two
    // 64-column temporaries, or Q, U and the residuals of one geometry's masks side by side
    // (measured at 224x224x3, --limit 1000 --refine 3: the first pass is the peak, this model
    // 0.4 % below it).
    const bool parked = parks && incremental;
    if (parked) {
        const long double r64 = std::min(refined, k), sketch = 8.0L * d * k;
        const long double parked_step = 8.0L * d * (columns + std::max(2.0L * r64 + k, 2.0L * shared * r64)) + sketch;
        peak = kept - 8.0L * d * (2.0L * k + 20.0L) + blocks + known + std::max({pass, first + sketch, parked_step, refine});
    }
    // On disk (io::row_spill): the carried [Sxx R, 0] and, in a pass resumed from a checkpoint,
    // [R, T], and the joined Sxx [R, T] written beside them when the pass is completed (3 D
    // doubles per direction at most); parked,
    // the sketch's state and basis too (its class means are not counted: parked_sketch_bytes).
    // And the restarts' preconditioner cache: one entry per masking noise, at most
    // gram_solve_cache_entries kept and one more while it is made (the largest ones counted).
    std::sort(cached.begin(), cached.end(), [](long double a, long double b) { return a > b; });
    long double cache = 0.0L;
    for (std::size_t i = 0; i < cached.size() && i <= gram_solve_cache_entries; ++i) cache += cached[i];
    const long double spill =
        incremental ? 24.0L * d * columns + (parked ? parked_sketch_bytes(dim, rank, 0) : 0.0L) + cache : 0.0L;
    return {static_cast<std::uint64_t>(columns), std::max(peak - 48.0L * k * d, 0.0L) - 24.0L * d * columns, spill};
}

long double parked_sketch_bytes(std::uint64_t dim, std::uint64_t rank, std::uint64_t classes) {
    const long double d = static_cast<long double>(dim), k = static_cast<long double>(rank);
    return 8.0L * d * (2.0L * k + 21.0L + static_cast<long double>(classes)) + 1048576.0L;  // + the framing, generously
}

long double resident_memory() {
    std::FILE* f = std::fopen("/proc/self/statm", "r");
    if (!f) return 0.0L;
    unsigned long long size = 0, resident = 0;
    const bool read = std::fscanf(f, "%llu %llu", &size, &resident) == 2;
    std::fclose(f);
    const long page = ::sysconf(_SC_PAGE_SIZE);
    return read && page > 0 ? static_cast<long double>(resident) * static_cast<long double>(page) : 0.0L;
}

long double physical_memory() {
    const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
    return pages > 0 && page > 0 ? static_cast<long double>(pages) * static_cast<long double>(page) : 0.0L;
}

}  // namespace recalign
