// patch_blocks::update for uint8 batches: each block's scatter in exact integer arithmetic, in
// single precision (moment_accumulator's float32_kernels path for uint8, lib/stats/moments_u8.cpp,
// block by block). With the integer shift 128, z = x - 128 lies in [-128, 127], so z_i z_j <= 2^14
// and over a group of <= 1024 rows every partial sum SSYRK forms, in any order, is an integer of
// magnitude <= 2^24: exact in float32. The group's centered scatter g Σ z_i z_j − Σz_i Σz_j is then
// an exact integer below 2^35 in double; scaling it, dividing by g and Chan's fold into the packed
// state round once each. So the blocks are at least as accurate as the double path's (which
// rounds in every SYRK addition), and SSYRK on float32 halves the flops' time and the scratch:
// at 224x224x3 with 16x16 patches the blocks are about half of the sketch pass's work.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <vector>

#include "recalign/align/patch_blocks.hpp"
#include "recalign/core/blas.hpp"
#include "recalign/core/checked.hpp"
#include "../sketch/second_thread.hpp"
#include "batch_halves.hpp"

namespace recalign {

namespace {
// (Names of their own: the library's unity builds join this file with moments_u8.cpp's.)
constexpr std::size_t block_group_rows = 1024;  // 1024 * 128^2 = 2^24: the float32 sums stay exact
constexpr int block_pixel_shift = 128;
}  // namespace

bool patch_blocks::exact_u8(const batch_view& x) noexcept {
    return x.type == dtype::u8 && std::isfinite(x.scale) && std::abs(x.scale) <= 1e100;
}

void patch_blocks::update_u8_exact(const batch_view& x, std::uint64_t first_row) {
    const std::size_t d = dim_, rows = x.rows, blocks = index_.size();
    std::vector<double> sum(d), delta(d);
    // The width first (uint8 values are always finite): the only refusal, before any change (a
    // zero-row check reads no value and adds nothing to `sum`).
    check_shifted_sums(batch_rows(x, 0, 0), d, mean_.data(), sum.data(), shifted_, 1, first_row);
    if (rows == 0) return;
    std::size_t widest = 0;
    for (const auto& idx : index_) widest = std::max(widest, idx.size());
    const std::size_t chunk = std::min(rows, block_group_rows);
    // Two blocks or more in a batch of >= 2^20 values: the blocks split in two halves (whole
    // blocks, detail::block_half), each gathered, multiplied and folded on a thread of its own
    // with OpenBLAS on one thread (as the Nyström update, lib/sketch/nystrom_halves.cpp); the
    // column sums by column halves. Each block's arithmetic is the same on either thread, so
    // the bits do not depend on the split (and its SSYRK's sums are exact integers anyway).
    const bool halves = blocks >= 2 && rows * d >= (std::size_t{1} << 20);
    std::vector<float> z[2], s[2];
    for (int part = 0; part < (halves ? 2 : 1); ++part) {
        z[part].resize(checked_mul(chunk, widest, "patch_blocks: group rows x patch values"));
        s[part].resize(checked_mul(widest, widest, "patch_blocks: one block"));
    }
    const std::vector<double> shift(d, block_pixel_shift);
    batch_view raw = x;
    raw.scale = 1.0;  // integers here; the scale is applied to each group's statistics
    const auto* px = static_cast<const std::uint8_t*>(x.data);
    const double scale2 = x.scale * x.scale;
    detail::second_thread two(halves);  // before one_blas_thread: it starts only where BLAS has two
    std::optional<detail::one_blas_thread> one;
    if (halves) one.emplace();

    // --- the state changes from here on; nothing below can fail ---
    for (std::size_t g0 = 0; g0 < rows; g0 += block_group_rows) {
        const std::size_t g = std::min(block_group_rows, rows - g0);
        // Σ z_i over the group: integers below 2^17, exact (uint8 values: always finite).
        std::fill(sum.begin(), sum.end(), 0.0);
        const batch_view group = batch_rows(raw, g0, g);
        const double gd = static_cast<double>(g);
        const std::uint64_t na = n_, n = na + g;
        const double w = static_cast<double>(na) * gd / static_cast<double>(n);
        const double f = gd / static_cast<double>(n);
        const double coef = scale2 / gd;
        // Blocks [b0, b1) of the group: gathered as z = x − 128, SSYRK, then Chan's rule (MATH.md
        // §1) with the group's exact centered scatter:
        // M_ij += s² (g S_ij − Σz_i Σz_j) / g + w δ_i δ_j, δ = mean_g − mean_a.
        auto sweep = [&](std::size_t b0, std::size_t b1, int part) {
            float* zp = z[part].data();
            float* sp = s[part].data();
            for (std::size_t blk = b0; blk < b1; ++blk) {
                const std::vector<std::size_t>& idx = index_[blk];
                const std::size_t sb = idx.size();
                for (std::size_t r = 0; r < g; ++r) {
                    const std::uint8_t* row = px + (g0 + r) * d;
                    float* out = zp + r * sb;
                    for (std::size_t j = 0; j < sb; ++j) out[j] = static_cast<float>(static_cast<int>(row[idx[j]]) - block_pixel_shift);
                }
                blas::syrk_tn(sb, g, 1.0f, zp, 0.0f, sp);
                double* block = scatter_.data() + offset_[blk];
                for (std::size_t i = 0; i < sb; ++i) {
                    double* dst = block + packed_row(i, sb) - i;
                    const float* src = sp + i * sb;
                    const double si = sum[idx[i]], wdi = w * delta[idx[i]];
                    for (std::size_t j = i; j < sb; ++j)
                        dst[j] += (gd * static_cast<double>(src[j]) - si * sum[idx[j]]) * coef + wdi * delta[idx[j]];
                }
            }
        };
        if (halves) {
            auto sums = [&](int part) {
                const auto [lo, hi] = detail::column_half(d, part);
                shifted_sums_columns(group, shift.data(), g, lo, hi, sum.data());
            };
            two.run(sums);
        } else {
            shifted_sums_columns(group, shift.data(), g, 0, d, sum.data());
        }
        for (std::size_t i = 0; i < d; ++i) delta[i] = x.scale * (block_pixel_shift + sum[i] / gd) - mean_(i);
        if (halves) detail::over_block_halves(two, blocks, 1, sweep);
        else sweep(0, blocks, 0);
        for (std::size_t i = 0; i < d; ++i) mean_(i) += delta[i] * f;
        n_ = n;
    }
}

}  // namespace recalign
