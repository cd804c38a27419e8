// What a run holds at its largest, estimated from its options before any data is read: the
// CLI's refusal (tools/recalign/validate.cpp: require_memory, the sketch routes'
// check_verification) and Python's verified states (recalign.verified) use these numbers.
// Long double: a size that would wrap a 64-bit integer is still compared correctly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "recalign/align/noise.hpp"

namespace recalign {

// Bytes of a run on `method` ("exact", "fd", "nystrom") at D = dim with `classes` classes (0:
// no labels) and a sketch of `rank`, plus `extra`. Exact: the moments and, for the analysis,
// two more D x D matrices (Sxx and the eigenvectors: dsyevr's O(D) workspace); sketches: a
// few ell x D blocks. With labels: per-class means D x C and the cross statistics (Sxy D x C,
// Syy C x C in the finished statistics).
// krylov_blocks > 1 (method "nystrom"): the routes' block Krylov sketch over that many passes
// (tools/recalign/route_state.cpp, recalign.verified: p = max(rank, 10), min(10, D) probes)
// keeps every pass's block: at its widest basis (nystrom_peak_bytes) where that is more.
// `exact_matrices`: the D x D float64 matrices the exact route holds at its peak, 3 for the
// analyses above; the eigenvalues alone (`recalign spectrum`) need 2: the moments, in whose
// storage they are found, and the P x P float scatter of a u8 or float32 batch (half a D x D)
// while streaming (docs/benchmarks-log.md "The twenty-seventh session").
long double run_memory(const std::string& method, std::uint64_t dim, std::uint64_t classes, std::uint64_t rank,
                       long double extra = 0.0L, std::uint64_t krylov_blocks = 1, unsigned exact_matrices = 3);

// The exact denoise's bytes beyond run_memory("exact", ...)'s 3 D x D (the CLI's --memory refusal,
// tools/recalign/cmd_denoise.cpp, and recalign.AlignmentTracker's memory=): a Monte-Carlo noise
// (draws > 0) keeps 2 R replicate sums (R = `replicates` groups) while streaming and each batch's
// update works on a copy of them: 1 + 4 R D x D per such noise in all, the first 2 within the
// 3 D x D. Throws size_overflow when the bytes do not fit 64 bits.
std::uint64_t exact_denoise_extra(std::uint64_t dim, const std::vector<noise_spec>& noises, std::uint64_t replicates);

// What a sketch route's verification pass adds on `columns` verified directions (V, Sxx V and
// the analyses' rotated copy: 3 D doubles each; denoise, in the pass's coordinates, corrects it
// through `extra`), plus `extra` bytes.
long double verification_memory(std::uint64_t dim, std::uint64_t columns, long double extra = 0.0L);

// Ritz vectors of each masking noise a denoising refinement pass corrects (the issue's
// accuracy targets are for K <= 64): tools/recalign/denoise_sketch.cpp, recalign.verified.
constexpr std::size_t denoising_refined_vectors = 64;

// The verified directions and the extra bytes of one analysis's verification pass.
struct verification_size {
    std::uint64_t columns = 0;
    long double extra = 0.0L;
    // Bytes on disk (io::row_spill in io::spill_directory()) with refinement passes: the
    // carried [R, T] and [Sxx R, 0] while a pass reads its new directions and Sxx [R, T] after
    // it, 3 D doubles per direction at most, and the restarts' preconditioner cache (a block
    // factor file and E⁺U per masking noise: sketch_denoising.hpp) (denoise with a masking
    // noise; 0 otherwise).
    long double spill = 0.0L;
};

// align: the sketch's rank.
verification_size alignment_verification(std::uint64_t rank);
// tradeoff: rank + 2 C directions (U, Sxy, Ĝ⁻¹Sxy) and 2 C more per refinement pass (Sxx Sxy,
// a preconditioned residual), the exact diagonal blocks of `block` coordinates of the
// preconditioner and its temporaries (E⁻¹ U, E⁻¹ [U, R]: 2 D (rank + C) doubles).
verification_size tradeoff_verification(std::uint64_t dim, std::uint64_t classes, std::uint64_t rank,
                                        std::uint64_t refine = 1, std::uint64_t block = 1);
// denoise: U, and per masking noise (closed form) its subspace, `refined` = min(64, rank)
// corrections and the previous pass's `refined` top Ritz vectors (the restart's P block); per Monte-Carlo noise (draws > 0) 3 (rank + 10) directions, its sketch
// (G Ω, Bs Ω, Bsᵀ Ω and a copy: 6 D (rank + 10) doubles) and its products on the basis (Bsᵀ Q,
// Qᵀ G Q and a copy). `extra` makes run_memory + verification_memory the run's largest phase,
// measured at 224x224x3 (docs/benchmarks-log.md, "The first basis construction in place"): through the
// passes the sketch's state and its statistics finished once (D x (2 rank + 20) doubles) and
// the patch blocks (one set per distinct geometry: D (s + 1) / 2 doubles, s the patch's values),
// plus the largest of a verification pass (V and Sxx V: 2 D doubles per direction; the
// analyses run in the pass's coordinates), the first basis construction (built in place) and,
// with `refines`, a refinement step (the previous pass, each masking noise's restart vectors
// and corrections, and one correction's temporaries: 7 x 64 + rank D-long vectors). `extra` may
// be negative (run_memory's sketch-finish temporaries are gone by then); the sum is never below
// run_memory. `shape`: the image of the specs without their own (dropout: D x 1 x 1 when empty).
// `parks` (the CLI, tools/recalign/verified_state.hpp verify_plan::park): with incremental
// refinement passes the finished sketch's state waits on disk from the first basis construction
// on and its basis during every pass, each masking noise's corrections while the next noise's
// are found, and E⁺R is formed in R's storage (docs/benchmarks-log.md "mem8"); `spill` then counts the
// parked sketch too (parked_sketch_bytes without the class means).
verification_size denoising_verification(std::uint64_t dim, std::uint64_t rank, const std::vector<noise_spec>& noises,
                                         const image_shape& shape, bool refines = true, bool parks = false);

// Bytes of a finished Nyström sketch parked on disk during denoise's refinement passes (the
// sketch state, D x (rank + 20) doubles and the mean, the class means C x D, and its basis, D x
// rank; tools/recalign/route_state.hpp park), an upper bound for the spill directory's check.
long double parked_sketch_bytes(std::uint64_t dim, std::uint64_t rank, std::uint64_t classes);

// This machine's physical memory in bytes (the default budget; 0 when unknown).
long double physical_memory();

// This process's resident set now, in bytes (/proc/self/statm; 0 when unknown). The estimates above
// model a recalign process (the CLI's own 64 MiB among them); a run inside a process that already
// holds more (an interpreter, its modules, the caller's data: Python's bindings) adds this.
long double resident_memory();

}  // namespace recalign
