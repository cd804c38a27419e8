// Exact per-patch diagonal blocks of the second moment (MATH.md §7): for an image geometry
// and a patch size, Bd = blockdiag_b(Sxx[I_b, I_b]) with I_b every pixel and channel of patch
// b (edge patches may be smaller). With them, patch masking is exact at any resolution:
// G = c1 Sxx + c2 Bd and Bs = q Sxx, so only Sxx needs a sketch.
//
// Memory Σ_b |I_b|(|I_b| + 1)/2 ≈ D·s/2 doubles (s = patch pixels x channels; the upper
// triangles, packed): 463 MB at 224x224x3 with 16x16 patches, against 181 GB for Sxx. An
// accumulator like every other: n, the mean and one centered scatter per block, folded in per
// batch by one SYRK per block (b·D·s flops, into one s x s scratch block) and merged with
// Chan's rule per block (MATH.md §1). A batch is never converted whole: each block gathers
// its own columns (no rows x D copy at high D). uint8 batches (pixels) take an exact integer
// path: each block's scatter of x − 128 by single-precision SYRK in groups of <= 1024 rows, where
// every partial sum is an integer below 2^24 (lib/align/patch_blocks_u8.cpp): no rounding before
// the fold into the double state, and about twice the speed of the double path.
#pragma once

#include <cstdint>
#include <istream>
#include <ostream>
#include <vector>

#include "recalign/align/noise.hpp"
#include "recalign/core/batch.hpp"
#include "recalign/core/serial.hpp"
#include "recalign/core/xt.hpp"
#include "recalign/stats/moments.hpp"

namespace recalign {

struct patch_blocks_options {
    image_shape shape;  // H, W, C and the layout of a flat row
    std::size_t patch_h = 1, patch_w = 1;
};

class patch_blocks {
public:
    static constexpr checkpoint::state_kind kind = checkpoint::state_kind::patch_blocks;

    // Throws std::invalid_argument for an empty shape, a patch that does not fit, or a state
    // whose D·s doubles overflow (core/checked.hpp).
    explicit patch_blocks(const patch_blocks_options& options);

    // Adds a batch (rows = samples, D = H·W·C values each, any dtype). Strong guarantee:
    // a rejected batch (width, NaN/Inf) throws input_error naming the row and changes nothing.
    void update(const batch_view& x, std::uint64_t first_row = 0);
    // Chan's rule per block; an empty other is a no-op; another geometry or patch size throws
    // std::invalid_argument naming both, before any change.
    void merge(const patch_blocks& other);

    void save(std::ostream& os) const { checkpoint::save_state(os, *this); }
    static patch_blocks load(std::istream& is) { return checkpoint::load_state<patch_blocks>(is); }

    std::uint64_t n() const noexcept { return n_; }
    std::size_t dim() const noexcept { return dim_; }
    std::uint64_t aux_dim() const noexcept { return options_.patch_h * options_.patch_w; }
    bool empty() const noexcept { return n_ == 0; }
    const patch_blocks_options& options() const noexcept { return options_; }
    std::uint64_t config_hash() const;

    std::size_t blocks() const noexcept { return index_.size(); }
    // Flat coordinates of block b, ascending.
    const std::vector<std::size_t>& indices(std::size_t b) const { return index_.at(b); }
    // Sxx[I_b, I_b] (|I_b| x |I_b|, symmetric) in centering c.
    matrix_t block(std::size_t b, centering c) const;
    // Its upper triangle only, into `out` (|I_b| x |I_b| row-major; the strict lower triangle is
    // left as it was): for products that read the upper triangle (blas::symm_left_upper).
    void block_upper(std::size_t b, centering c, double* out) const;
    // The largest diagonal entry of the blocks, max_i Sxx_ii, in centering c (no block unpacked).
    double max_diagonal(centering c) const;
    vector_t mean() const { return mean_; }
    // q = P(keep), k_diff = c1, k_same = c1 + c2 of a mask or dropout noise on these blocks
    // (MATH.md §7). Throws std::invalid_argument naming the disagreement when the noise is not a
    // closed-form mask of this patch size and geometry (dropout: 1x1 patches).
    keep_probabilities coefficients(const noise_spec& noise) const;
    // Σ_b V_bᵀ Bd_b V_b = Vᵀ Bd V (K x K) for a D x K basis, in centering c.
    matrix_t restrict_to(const matrix_t& v, centering c) const;
    // Doubles the blocks hold: Σ_b |I_b|(|I_b| + 1)/2 (packed upper triangles).
    std::size_t values() const noexcept { return scatter_.size(); }

    template <class Archive>
    void save_payload(Archive& ar) const;
    template <class Archive>
    static patch_blocks load_payload(Archive& ar, checkpoint::budget& b);

private:
    void check_loaded() const;
    // Packed upper triangle of an s x s block, row by row: row i holds (i, i..s-1) from i·s − i(i−1)/2.
    static std::size_t packed_row(std::size_t i, std::size_t s) noexcept { return i * s - i * (i - 1) / 2; }
    // The uint8 path (patch_blocks_u8.cpp): for uint8 batches with a finite scale of at most 1e100.
    static bool exact_u8(const batch_view& x) noexcept;
    void update_u8_exact(const batch_view& x, std::uint64_t first_row);

    patch_blocks_options options_;
    std::size_t dim_ = 0;
    std::vector<std::vector<std::size_t>> index_;  // I_b
    std::vector<std::size_t> offset_;              // start of block b in scatter_
    std::uint64_t n_ = 0;
    vector_t mean_;                // D
    std::vector<double, detail::matrix_allocator<double>> scatter_;  // per block, the upper triangle of |I_b| x |I_b|, packed row by row
    // Scratch, never serialized; gathered_, full_ and mb_ per half of the blocks (update's halves).
    std::vector<double> shifted_, gathered_[2], full_[2], mb_[2];
};

}  // namespace recalign
