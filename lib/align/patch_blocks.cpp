#include "recalign/align/patch_blocks.hpp"

#include <algorithm>
#include <cmath>
#include <optional>
#include <stdexcept>
#include <string>

#include "recalign/core/blas.hpp"
#include "recalign/core/checked.hpp"
#include "recalign/core/hash.hpp"
#include "../sketch/second_thread.hpp"
#include "batch_halves.hpp"

namespace recalign {

namespace {
std::string geometry(const patch_blocks_options& o) {
    return std::to_string(o.shape.height) + "x" + std::to_string(o.shape.width) + "x" +
           std::to_string(o.shape.channels) + " " + image_layout_name(o.shape.layout) + ", patch " +
           std::to_string(o.patch_h) + "x" + std::to_string(o.patch_w);
}
}  // namespace

patch_blocks::patch_blocks(const patch_blocks_options& options) : options_(options) {
    // make_patch_map checks the shape, the patch and the D-sized map (MATH.md §4 layouts).
    const patch_map map = make_patch_map(options.shape, options.patch_h, options.patch_w);
    dim_ = map.patch_of.size();
    blas::to_blas_int(dim_, "dimension");
    index_.assign(map.patches, {});
    for (std::size_t i = 0; i < dim_; ++i) index_[map.patch_of[i]].push_back(i);
    offset_.resize(index_.size());
    std::size_t total = 0;
    for (std::size_t b = 0; b < index_.size(); ++b) {
        offset_[b] = total;
        const std::size_t s = index_[b].size();
        total = checked_add(total, checked_mul(s, s + 1, "patch block |I_b|(|I_b| + 1)") / 2,
                            "patch blocks: sum of |I_b|(|I_b| + 1)/2");
    }
    checked_elements<double>({total}, "patch blocks: the blocks' doubles");
    mean_ = xt::zeros<double>({dim_});
    scatter_.assign(total, 0.0);
}

std::uint64_t patch_blocks::config_hash() const {
    return fnv1a()
        .add(std::string_view("patch_blocks"))
        .add(static_cast<std::uint64_t>(options_.shape.height))
        .add(static_cast<std::uint64_t>(options_.shape.width))
        .add(static_cast<std::uint64_t>(options_.shape.channels))
        .add(static_cast<std::uint64_t>(options_.shape.layout))
        .add(static_cast<std::uint64_t>(options_.patch_h))
        .add(static_cast<std::uint64_t>(options_.patch_w))
        .value();
}

namespace {
// Rows of a batch converted at a time to check it (at D = 150,528: 8 MB of doubles).
std::size_t check_rows(std::size_t d) { return std::max<std::size_t>(1, (std::size_t(1) << 20) / std::max<std::size_t>(d, 1)); }
}  // namespace

void patch_blocks::update(const batch_view& x, std::uint64_t first_row) {
    if (exact_u8(x)) {
        update_u8_exact(x, first_row);
        return;
    }
    const std::size_t d = dim_, rows = x.rows;
    blas::to_blas_int(rows, "batch rows");
    // Validation (width, finite values) and the column sums first, a few rows at a time
    // (strong guarantee), shifted by the running mean (or the batch's first row): the same
    // exact scheme as moment_accumulator::update, without a rows x D copy of the batch.
    const std::vector<double> shift = scatter_shift(x, d, d, mean_.data(), n_ > 0, first_row);
    std::vector<double> sum(d, 0.0);
    // Two blocks or more in a batch of >= 2^20 values: the column sums by column halves and the
    // blocks by whole-block halves (detail::block_half), each gathered, multiplied and folded on
    // a thread of its own with OpenBLAS on one thread (as the Nyström update,
    // lib/sketch/nystrom_halves.cpp). OpenBLAS runs on one thread whenever the batch is split,
    // with or without the second thread, so the bits depend on the batch's shape only.
    const std::size_t blocks = index_.size();
    const bool halves = blocks >= 2 && rows * d >= (std::size_t{1} << 20);
    detail::second_thread two(halves);  // before one_blas_thread: it starts only where BLAS has two
    if (halves) detail::check_shifted_sums(two, x, d, shift.data(), sum.data(), shifted_, check_rows(d), first_row);
    else check_shifted_sums(x, d, shift.data(), sum.data(), shifted_, check_rows(d), first_row);
    if (rows == 0) return;

    std::size_t widest = 0;
    for (const auto& idx : index_) widest = std::max(widest, idx.size());
    for (int part = 0; part < (halves ? 2 : 1); ++part) {
        gathered_[part].resize(checked_mul(rows, widest, "patch_blocks: batch rows x patch values"));
        full_[part].resize(checked_mul(widest, widest, "patch_blocks: one block"));
        mb_[part].resize(widest);
    }
    std::vector<double> m(d);
    std::optional<detail::one_blas_thread> one;
    if (halves) one.emplace();

    // --- the state changes from here on; nothing below can fail ---
    const std::uint64_t na = n_, n = na + rows;
    const double b = static_cast<double>(rows);
    const double w = static_cast<double>(na) * b / static_cast<double>(n);
    for (std::size_t i = 0; i < d; ++i) m[i] = sum[i] / b;
    // Blocks [b0, b1): the batch's scatter in a full-storage scratch block (SYRK), then about the
    // batch mean and Chan's term (MATH.md §1): as in moment_accumulator, one rank-one update with
    // coefficient w − b; its upper triangle is added to the packed block.
    auto sweep = [&](std::size_t b0, std::size_t b1, int part) {
        double* gathered = gathered_[part].data();
        double* full = full_[part].data();
        double* mb = mb_[part].data();
        for (std::size_t blk = b0; blk < b1; ++blk) {
            const std::vector<std::size_t>& idx = index_[blk];
            const std::size_t s = idx.size();
            gather_shifted(x, shift.data(), idx.data(), 0, s, gathered);
            blas::syrk_tn(s, rows, 1.0, gathered, 0.0, full);
            for (std::size_t j = 0; j < s; ++j) mb[j] = m[idx[j]];
            blas::syr_upper(s, w - b, mb, full);
            double* block = scatter_.data() + offset_[blk];
            for (std::size_t i = 0; i < s; ++i) {
                double* dst = block + packed_row(i, s) - i;
                const double* src = full + i * s;
                for (std::size_t j = i; j < s; ++j) dst[j] += src[j];
            }
        }
    };
    if (halves) detail::over_block_halves(two, blocks, 1, sweep);
    else sweep(0, blocks, 0);
    const double f = b / static_cast<double>(n);
    for (std::size_t i = 0; i < d; ++i) mean_(i) += ((shift[i] - mean_(i)) + m[i]) * f;
    n_ = n;
}

void patch_blocks::merge(const patch_blocks& other) {
    const patch_blocks_options &a = options_, &o = other.options_;
    if (a.shape.height != o.shape.height || a.shape.width != o.shape.width || a.shape.channels != o.shape.channels ||
        a.shape.layout != o.shape.layout || a.patch_h != o.patch_h || a.patch_w != o.patch_w)
        throw std::invalid_argument("cannot merge patch blocks of " + geometry(a) + " and " + geometry(o));
    if (other.n_ == 0) return;
    // Copy what we read from `other` first: it may be *this.
    const vector_t mean_b = other.mean_;
    const auto scatter_b = other.scatter_;
    const std::uint64_t na = n_, nb = other.n_, n = na + nb;
    const double w = static_cast<double>(na) * static_cast<double>(nb) / static_cast<double>(n);
    const double f = static_cast<double>(nb) / static_cast<double>(n);
    std::vector<double> delta(dim_), db;
    for (std::size_t i = 0; i < dim_; ++i) delta[i] = mean_b(i) - mean_(i);
    for (std::size_t i = 0; i < scatter_.size(); ++i) scatter_[i] += scatter_b[i];
    if (na > 0)
        for (std::size_t blk = 0; blk < index_.size(); ++blk) {
            const std::vector<std::size_t>& idx = index_[blk];
            const std::size_t s = idx.size();
            db.resize(s);
            for (std::size_t j = 0; j < s; ++j) db[j] = delta[idx[j]];
            double* block = scatter_.data() + offset_[blk];
            for (std::size_t i = 0; i < s; ++i) {
                double* dst = block + packed_row(i, s) - i;
                const double wi = w * db[i];
                for (std::size_t j = i; j < s; ++j) dst[j] += wi * db[j];
            }
        }
    for (std::size_t i = 0; i < dim_; ++i) mean_(i) += delta[i] * f;
    n_ = n;
}

void patch_blocks::block_upper(std::size_t b, centering c, double* out) const {
    const std::vector<std::size_t>& idx = index_.at(b);
    const std::size_t s = idx.size();
    const double* src = scatter_.data() + offset_[b];
    const double nn = c == centering::uncentered ? static_cast<double>(n_) : 0.0;
    // Row by row (contiguous, as packed); uncentered: + n μ_i μ_j.
    std::vector<double> m(nn != 0.0 ? s : 0);
    for (std::size_t i = 0; i < m.size(); ++i) m[i] = mean_(idx[i]);
    for (std::size_t i = 0; i < s; ++i) {
        const double* row = src + packed_row(i, s) - i;
        double* dst = out + i * s;
        if (m.empty()) {
            std::copy(row + i, row + s, dst + i);
            continue;
        }
        const double a = nn * m[i];
        for (std::size_t j = i; j < s; ++j) dst[j] = row[j] + a * m[j];
    }
}

matrix_t patch_blocks::block(std::size_t b, centering c) const {
    const std::size_t s = index_.at(b).size();
    matrix_t out = matrix_t::from_shape({s, s});
    if (s == 0) return out;
    // The upper triangle, then the lower one by tiles instead of a strided column write per
    // element (768 x 768 at 224: 2.4 → 2.1 ms a block, loaded).
    block_upper(b, c, out.data());
    blas::symmetrize_from_upper(s, out.data());
    return out;
}

double patch_blocks::max_diagonal(centering c) const {
    const double nn = c == centering::uncentered ? static_cast<double>(n_) : 0.0;
    double out = 0.0;
    for (std::size_t b = 0; b < index_.size(); ++b) {
        const std::vector<std::size_t>& idx = index_[b];
        const double* src = scatter_.data() + offset_[b];
        for (std::size_t i = 0; i < idx.size(); ++i)
            out = std::max(out, src[packed_row(i, idx.size())] + nn * mean_(idx[i]) * mean_(idx[i]));
    }
    return out;
}

keep_probabilities patch_blocks::coefficients(const noise_spec& noise) const {
    auto refuse = [](const std::string& why) { throw std::invalid_argument("patch blocks: " + why); };
    if (noise.family == noise_family::gaussian) refuse("Gaussian noise needs no patch blocks");
    if (noise.draws > 0) refuse("a Monte-Carlo noise has no closed form: sketch the corrupted samples instead");
    const std::size_t ph = noise.family == noise_family::dropout ? 1 : noise.patch_h;
    const std::size_t pw = noise.family == noise_family::dropout ? 1 : noise.patch_w;
    if (options_.patch_h != ph || options_.patch_w != pw)
        refuse("these are of patch " + std::to_string(options_.patch_h) + "x" + std::to_string(options_.patch_w) +
               ", the noise's " + std::to_string(ph) + "x" + std::to_string(pw));
    if (!noise.shape.empty()) {
        const image_shape &a = noise.shape, &b = options_.shape;
        if (a.height != b.height || a.width != b.width || a.channels != b.channels || a.layout != b.layout)
            refuse("the noise's image shape differs from the blocks' (" + geometry(options_) + ")");
    }
    return mask_keep_probabilities(noise, blocks());
}

matrix_t patch_blocks::restrict_to(const matrix_t& v, centering c) const {
    if (v.shape(0) != dim_)
        throw std::invalid_argument("patch blocks: a basis of " + std::to_string(v.shape(0)) + " rows for D = " +
                                    std::to_string(dim_));
    const std::size_t k = v.shape(1);
    matrix_t out = xt::zeros<double>({k, k});
    if (k == 0) return out;
    std::vector<double> blk, vb, bv;  // one block's scratch, reused (upper triangle: no symmetrize)
    for (std::size_t b = 0; b < index_.size(); ++b) {
        const std::vector<std::size_t>& idx = index_[b];
        const std::size_t s = idx.size();
        blk.resize(s * s);
        vb.resize(s * k);
        bv.resize(s * k);
        for (std::size_t i = 0; i < s; ++i) std::copy(&v(idx[i], 0), &v(idx[i], 0) + k, vb.data() + i * k);
        block_upper(b, c, blk.data());
        blas::symm_left_upper(s, k, 1.0, blk.data(), vb.data(), 0.0, bv.data());
        // Only the upper triangle of V_bᵀ (Bd_b V_b), a panel of columns at a time (rows 0 .. j1
        // of columns j0 .. j1): about half the flops of the whole k x k product, the larger part
        // of the sweep at k >> s (docs/benchmarks-log.md "time9": a quarter of a restart at 224x224x3).
        constexpr std::size_t panel = 128;
        for (std::size_t j0 = 0; j0 < k; j0 += panel) {
            const std::size_t j1 = std::min(k, j0 + panel);
            blas::gemm_tn(j1, j1 - j0, s, 1.0, vb.data(), k, bv.data() + j0, k, 1.0, out.data() + j0, k);
        }
    }
    if (k) blas::symmetrize_from_upper(k, out.data());
    return out;
}

void patch_blocks::check_loaded() const {
    if (mean_.dimension() != 1 || mean_.shape(0) != dim_) throw std::length_error("patch blocks: mean has the wrong shape");
    for (double v : mean_)
        if (!std::isfinite(v)) throw std::length_error("patch blocks: non-finite mean");
    for (double v : scatter_)
        if (!std::isfinite(v)) throw std::length_error("patch blocks: non-finite scatter");
    if (n_ == 0)
        for (double v : scatter_)
            if (v != 0.0) throw std::length_error("patch blocks: an empty state holds a scatter");
}

}  // namespace recalign
