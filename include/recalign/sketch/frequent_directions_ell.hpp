#pragma once
// The Frequent Directions sketch size the CLI's and the verified states' FD route take for a rank
// (tools/recalign/route_state.cpp, recalign.verified, run_memory), and the earlier one that
// checkpoints begun before it resume with.

#include <cstddef>

namespace recalign {

// The sketch size ℓ the CLI's and the verified states' FD route take for rank k at dimension D:
// ℓ = k + k/ε with ε = 1/2, i.e. min(3k, D). FD's guarantee (Ghashami, Liberty, Phillips and
// Woodruff 2016) for the top-k basis V of an ℓ-row sketch is ‖X − X V Vᵀ‖_F² ≤ (1 + k/(ℓ − k))
// ‖X − X_k‖_F²: the variance the basis misses beyond the best rank k is at most ε times the tail
// ‖X − X_k‖_F², and Δ ≤ ε ‖X − X_k‖_F² / k. ε = 1 (ℓ = 2k, the default before) allows the whole
// tail again; ε = 1/2 halves it (docs/benchmarks-log.md "fd9" gives the measurements and the cost).
std::size_t frequent_directions_default_ell(std::size_t rank, std::size_t dim);
// ℓ = min(2k, D): the default of the checkpoints begun before frequent_directions_default_ell, which resume
// with it.
std::size_t frequent_directions_legacy_ell(std::size_t rank, std::size_t dim);

}  // namespace recalign
