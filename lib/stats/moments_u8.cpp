// The uint8 path of moment_accumulator::update, taken by every uint8 batch with no targets or
// class ids (at any precision): an exact in-batch scatter in single precision. With the integer
// shift 128, z = x - 128 lies in [-128, 127], so z_i z_j <= 2^14 and over a group of <= 1024
// rows every partial sum SSYRK forms, in any order, is an integer of magnitude <= 2^24: exact in
// float32. One-hot targets ride along unshifted (z_y in {0, 1}). The group's centered scatter
// then has the exact numerator g Σ z_i z_j − Σz_i Σz_j (integers below 2^35, exact in double);
// scaling it, dividing by g and Chan's fold into the double state round, as the double path
// does. The rows are widened a chunk at a time (cache-sized), never as a whole batch.
#include <algorithm>
#include <cmath>
#include <system_error>
#include <thread>
#include <vector>

#include "recalign/core/blas.hpp"
#include "recalign/core/checked.hpp"
#include "recalign/stats/moments.hpp"

namespace recalign {

namespace {
constexpr std::size_t group_rows = 1024;  // 1024 * 128^2 = 2^24: the float32 sums stay exact
constexpr std::size_t chunk_rows = 256;   // rows widened at a time (800 KB of floats at D = 784)
constexpr double pixel_shift = 128.0;

// The fold is one memory-bound pass over the upper triangle (at D = 12,288: 75 M entries, as
// long as SSYRK itself on a batch of 256 rows): large triangles are split between two threads at
// the row that halves the entries, p (1 − 1/√2). Every entry is computed the same either way.
template <class F>
void fold_split(std::size_t p, F&& fold_rows) {
    if (p < 2048 || std::thread::hardware_concurrency() < 2) {
        fold_rows(0, p);
        return;
    }
    const auto split = static_cast<std::size_t>(static_cast<double>(p) * (1.0 - std::sqrt(0.5)));
    std::thread second;
    try {
        second = std::thread([&] { fold_rows(split, p); });
    } catch (const std::system_error&) {
        fold_rows(split, p);  // no thread to be had: the same work on this one (nothing may fail here)
    }
    fold_rows(0, split);
    if (second.joinable()) second.join();
}
}  // namespace

void moment_accumulator::update_u8_exact(const batch_view& x, std::uint64_t first_row) {
    const std::size_t d = options_.dim, c = options_.classes, p = joint_dim(), rows = x.rows;
    batch_view raw = x;
    raw.scale = 1.0;  // integers here; the scale is applied to the group's statistics
    const std::vector<double> shift(d, pixel_shift);
    std::vector<double> sum(p, 0.0);
    const std::size_t chunk = std::max<std::size_t>(1, std::min(rows, chunk_rows));
    zf_.resize(checked_mul(chunk, p, "moment_accumulator: chunk rows x (D + C)"));
    // Rows r0.. r0 + nr of z = [x − 128 | y] into zf_, their column sums (exact) into sum.
    auto lay_out = [&](std::size_t r0, std::size_t nr) {
        batch_view part = raw;
        part.data = static_cast<const std::uint8_t*>(x.data) + r0 * d;
        part.rows = nr;
        to_shifted_checked(part, d, shift.data(), zf_.data(), p, sum.data(), first_row + r0);
        for (std::size_t r = 0; r < nr; ++r)
            for (std::size_t j = 0; j < c; ++j) {
                const double v = yb_[(r0 + r) * c + j];
                zf_[r * p + d + j] = static_cast<float>(v);
                sum[d + j] += v;
            }
    };
    if (rows == 0) {
        lay_out(0, 0);  // checks the width, as the double path does
        return;
    }
    sf_.resize(checked_mul(p, p, "moment_accumulator: (D + C)^2"));
    std::vector<double> scale(p, 1.0), base(p, 0.0), delta(p), coef(p);
    std::fill(scale.begin(), scale.begin() + static_cast<std::ptrdiff_t>(d), x.scale);
    std::fill(base.begin(), base.begin() + static_cast<std::ptrdiff_t>(d), pixel_shift);
    // The first chunk's conversion checks the width before the state changes; nothing after
    // it can fail (uint8 values are finite, the targets were checked by the caller).
    for (std::size_t g0 = 0; g0 < rows; g0 += group_rows) {
        const std::size_t g = std::min(group_rows, rows - g0);
        std::fill(sum.begin(), sum.end(), 0.0);
        for (std::size_t r0 = g0; r0 < g0 + g; r0 += chunk) {
            const std::size_t nr = std::min(chunk, g0 + g - r0);
            lay_out(r0, nr);
            blas::syrk_tn(p, nr, 1.0f, zf_.data(), r0 == g0 ? 0.0f : 1.0f, sf_.data());
        }
        // Chan's rule (MATH.md §1) with the group's exact centered scatter:
        // M += s_i s_j (g S_ij − Σz_i Σz_j) / g + w δ_i δ_j, w = n_a g / n, δ = mean_g − mean_a.
        const double gd = static_cast<double>(g);
        const std::uint64_t na = n_, n = na + g;
        const double w = static_cast<double>(na) * gd / static_cast<double>(n);
        const double f = gd / static_cast<double>(n);
        for (std::size_t i = 0; i < p; ++i) {
            delta[i] = scale[i] * (base[i] + sum[i] / gd) - mean_z_(i);
            coef[i] = scale[i] / gd;
        }
        auto fold_rows = [&](std::size_t i0, std::size_t i1) {
            for (std::size_t i = i0; i < i1; ++i) {
                const double si = sum[i], ci = coef[i], wdi = w * delta[i];
                const float* s = sf_.data() + i * p;
                double* m = mzz_.data() + i * p;
                for (std::size_t j = i; j < p; ++j)
                    m[j] += (gd * static_cast<double>(s[j]) - si * sum[j]) * (ci * scale[j]) + wdi * delta[j];
            }
        };
        fold_split(p, fold_rows);
        
        for (std::size_t i = 0; i < p; ++i) mean_z_(i) += delta[i] * f;
        n_ = n;
    }
}

}  // namespace recalign
