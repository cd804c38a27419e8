#include "recalign/align/noise.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <limits>
#include <cstdlib>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <string>

#include "recalign/core/blas.hpp"
#include "recalign/core/errors.hpp"
#include "recalign/core/hash.hpp"

namespace recalign {

// --- Monte Carlo accumulator ---------------------------------------------------------------

namespace {
void check_mc_options(const monte_carlo_options& o) {
    if (o.dim == 0) throw std::invalid_argument("monte_carlo_noise: dimension must be at least 1");
    blas::to_blas_int(o.dim, "dimension");
    checked_elements<double>({o.dim, o.dim}, "monte_carlo_noise: D x D sums");
    if (o.draws == 0) throw std::invalid_argument("monte_carlo_noise: draws must be at least 1");
    if (o.replicates < 2 || o.draws % o.replicates != 0)
        throw std::invalid_argument("monte_carlo_noise: replicates = " + std::to_string(o.replicates) +
                                    " must be >= 2 and divide draws = " + std::to_string(o.draws));
}
}  // namespace

monte_carlo_noise::monte_carlo_noise(const monte_carlo_options& options, corrupt_fn corrupt)
    : options_(options), corrupt_(std::move(corrupt)) {
    check_mc_options(options_);
    const std::size_t d = options_.dim;
    for (std::size_t g = 0; g < options_.replicates; ++g) {
        bs_.push_back(xt::zeros<double>({d, d}));
        g_.push_back(xt::zeros<double>({d, d}));
    }
}

std::uint64_t monte_carlo_noise::config_hash() const {
    return fnv1a()
        .add(std::string_view("monte_carlo_noise"))
        .add(static_cast<std::uint64_t>(options_.dim))
        .add(static_cast<std::uint64_t>(options_.draws))
        .add(static_cast<std::uint64_t>(options_.replicates))
        .add(options_.seed)
        .add(std::string_view(options_.name))
        .value();
}

void monte_carlo_noise::update(const batch_view& x) { update(x, n_); }

void monte_carlo_noise::update(const batch_view& x, std::uint64_t first_row) {
    if (!corrupt_) throw std::logic_error("monte_carlo_noise: no corruption function (give it to load or set_corrupter)");
    const std::size_t d = options_.dim, rows = x.rows, S = options_.draws, R = options_.replicates;
    blas::to_blas_int(rows, "batch rows");
    checked_elements<double>({rows, d}, "monte_carlo_noise: batch rows x D");
    matrix_t clean = matrix_t::from_shape({rows, d});
    to_double_checked(x, d, clean.data(), first_row);
    if (rows == 0) return;
    // All draws go into batch-local sums first: a corruption that throws or misbehaves
    // leaves the state untouched (strong guarantee).
    std::vector<matrix_t> bs_b(R, xt::zeros<double>({d, d})), g_b(R, xt::zeros<double>({d, d}));
    matrix_t out = matrix_t::from_shape({rows, d});
    // Both sums of a draw come from ONE symmetric product of z = [x' | x] (rows x 2D): its
    // upper-left block is Σ x' x'ᵀ, its upper-right one Σ x' xᵀ. OpenBLAS's dsyrk rounds the
    // same whatever its thread count, its dgemm does not (measured: up to 1.6e-13 apart
    // between OPENBLAS_NUM_THREADS=1 and 2), so the state's bytes do not depend on it
    // (python/tests/test_blas_threads.py). Costs a third more flops than gemm + syrk.
    const std::size_t d2 = checked_mul(d, std::size_t{2}, "monte_carlo_noise: 2 x D");
    checked_elements<double>({rows, d2}, "monte_carlo_noise: batch rows x 2D");
    checked_elements<double>({d2, d2}, "monte_carlo_noise: 2D x 2D");
    matrix_t z = matrix_t::from_shape({rows, d2});
    matrix_t zz = matrix_t::from_shape({d2, d2});
    for (std::size_t r = 0; r < rows; ++r)
        std::copy_n(clean.data() + r * d, d, z.data() + r * d2 + d);
    for (std::size_t s = 0; s < S; ++s) {
        std::fill(out.begin(), out.end(), 0.0);
        const noise_key key{options_.seed, batches_, s, first_row};
        corrupt_(clean, out, key);
        if (out.shape(0) != rows || out.shape(1) != d)
            throw input_error("monte_carlo_noise '" + options_.name + "': the corruption changed the batch shape");
        for (std::size_t i = 0; i < out.size(); ++i)
            if (!std::isfinite(out.data()[i]))
                throw input_error("monte_carlo_noise '" + options_.name + "': corrupted row " +
                                  std::to_string(first_row + i / d) + ", column " + std::to_string(i % d) +
                                  " is not finite (draw " + std::to_string(s) + ")");
        const std::size_t g = s % R;
        for (std::size_t r = 0; r < rows; ++r) std::copy_n(out.data() + r * d, d, z.data() + r * d2);
        blas::syrk_tn(d2, rows, 1.0, z.data(), 0.0, zz.data());
        for (std::size_t i = 0; i < d; ++i) {
            const double* zrow = zz.data() + i * d2;
            double* grow = g_b[g].data() + i * d;
            double* brow = bs_b[g].data() + i * d;
            for (std::size_t j = i; j < d; ++j) grow[j] += zrow[j];  // Σ x' x'ᵀ (upper)
            for (std::size_t j = 0; j < d; ++j) brow[j] += zrow[d + j];  // Σ x' xᵀ
        }
    }
    for (std::size_t g = 0; g < R; ++g) {
        bs_[g] += bs_b[g];
        g_[g] += g_b[g];
    }
    n_ += rows;
    ++batches_;
}

void monte_carlo_noise::merge(const monte_carlo_noise& other) {
    const auto& a = options_;
    const auto& b = other.options_;
    if (a.dim != b.dim || a.draws != b.draws || a.replicates != b.replicates || a.seed != b.seed || a.name != b.name)
        throw std::invalid_argument("cannot merge Monte-Carlo noise states '" + a.name + "' (dim " +
                                    std::to_string(a.dim) + ", draws " + std::to_string(a.draws) + ", replicates " +
                                    std::to_string(a.replicates) + ", seed " + std::to_string(a.seed) + ") and '" +
                                    b.name + "' (dim " + std::to_string(b.dim) + ", draws " + std::to_string(b.draws) +
                                    ", replicates " + std::to_string(b.replicates) + ", seed " +
                                    std::to_string(b.seed) + ")");
    if (other.n_ == 0) return;
    if (&other == this) {
        for (std::size_t g = 0; g < a.replicates; ++g) {
            bs_[g] *= 2.0;
            g_[g] *= 2.0;
        }
    } else {
        for (std::size_t g = 0; g < a.replicates; ++g) {
            bs_[g] += other.bs_[g];
            g_[g] += other.g_[g];
        }
    }
    n_ += other.n_;
    batches_ += other.batches_;
}

monte_carlo_estimate monte_carlo_noise::estimate() const {
    const std::size_t d = options_.dim, R = options_.replicates;
    const double S = static_cast<double>(options_.draws), per = static_cast<double>(R) / S;
    monte_carlo_estimate e;
    e.moments.n = n_;
    e.moments.bs = xt::zeros<double>({d, d});
    e.moments.g = xt::zeros<double>({d, d});
    e.bs_stderr = xt::zeros<double>({d, d});
    e.g_stderr = xt::zeros<double>({d, d});
    std::vector<matrix_t> gs(g_);
    for (matrix_t& g : gs) blas::symmetrize_from_upper(d, g.data());
    for (std::size_t r = 0; r < R; ++r) {
        e.moments.bs += bs_[r] / S;
        e.moments.g += gs[r] / S;
    }
    // Replicate r (S/R draws) estimates the same sums as R · (its sum) / S; the spread of the
    // R replicates gives the standard error of their mean.
    const double norm = 1.0 / (static_cast<double>(R) * static_cast<double>(R - 1));
    double fb = 0.0, fg = 0.0;
    for (std::size_t i = 0; i < d * d; ++i) {
        double vb = 0.0, vg = 0.0;
        for (std::size_t r = 0; r < R; ++r) {
            const double db = bs_[r].data()[i] * per - e.moments.bs.data()[i];
            const double dg = gs[r].data()[i] * per - e.moments.g.data()[i];
            vb += db * db;
            vg += dg * dg;
        }
        e.bs_stderr.data()[i] = std::sqrt(vb * norm);
        e.g_stderr.data()[i] = std::sqrt(vg * norm);
        fb += vb * norm;
        fg += vg * norm;
    }
    e.bs_stderr_fro = std::sqrt(fb);
    e.g_stderr_fro = std::sqrt(fg);
    return e;
}

monte_carlo_estimate monte_carlo_noise::release_estimate() && {
    const std::size_t d = options_.dim, R = options_.replicates;
    const double S = static_cast<double>(options_.draws), per = static_cast<double>(R) / S;
    const double norm = 1.0 / (static_cast<double>(R) * static_cast<double>(R - 1));
    for (matrix_t& g : g_) blas::symmetrize_from_upper(d, g.data());
    // Entry by entry as estimate() sums (the same operations in the same order), the means
    // written over the first replicate's entry once every replicate's is read.
    double fb = 0.0, fg = 0.0;
    double* mb = bs_[0].data();
    double* mg = g_[0].data();
    for (std::size_t i = 0; i < d * d; ++i) {
        double sb = 0.0, sg = 0.0;
        for (std::size_t r = 0; r < R; ++r) {
            sb += bs_[r].data()[i] / S;
            sg += g_[r].data()[i] / S;
        }
        double vb = 0.0, vg = 0.0;
        for (std::size_t r = 0; r < R; ++r) {
            const double db = bs_[r].data()[i] * per - sb;
            const double dg = g_[r].data()[i] * per - sg;
            vb += db * db;
            vg += dg * dg;
        }
        mb[i] = sb;
        mg[i] = sg;
        fb += vb * norm;
        fg += vg * norm;
    }
    monte_carlo_estimate e;
    e.moments.n = n_;
    e.moments.bs = std::move(bs_[0]);
    e.moments.g = std::move(g_[0]);
    bs_.clear();
    g_.clear();
    n_ = 0;
    batches_ = 0;
    e.bs_stderr = xt::zeros<double>({std::size_t{0}, std::size_t{0}});
    e.g_stderr = e.bs_stderr;
    e.bs_stderr_fro = std::sqrt(fb);
    e.g_stderr_fro = std::sqrt(fg);
    return e;
}

monte_carlo_noise monte_carlo_noise::load(std::istream& is, corrupt_fn corrupt) {
    monte_carlo_noise m = checkpoint::load_state<monte_carlo_noise>(is);
    m.corrupt_ = std::move(corrupt);
    return m;
}

monte_carlo_options monte_carlo_noise::validated_options(std::uint64_t dim, std::uint64_t draws, std::uint64_t reps,
                                                         std::uint64_t seed, std::string name,
                                                         const checkpoint::budget& b) {
    if (dim == 0 || dim > checkpoint::max_dim) throw std::length_error("dimension " + std::to_string(dim) + " out of range");
    if (reps < 2 || reps > (1u << 20) || draws == 0 || draws > (1ULL << 32) || draws % reps != 0)
        throw std::length_error("bad draws / replicates " + std::to_string(draws) + " / " + std::to_string(reps));
    const std::uint64_t words = b.left / 8;
    if (checked_product({2, reps, dim, dim}, "Monte-Carlo checkpoint: 2 x replicates x D x D") > words)
        throw std::length_error("the payload is too small for the state its configuration announces");
    monte_carlo_options o;
    o.dim = static_cast<std::size_t>(dim);
    o.draws = static_cast<std::size_t>(draws);
    o.replicates = static_cast<std::size_t>(reps);
    o.seed = seed;
    o.name = std::move(name);
    check_mc_options(o);
    return o;
}

void monte_carlo_noise::check_shapes() const {
    const std::size_t d = options_.dim;
    for (std::size_t g = 0; g < options_.replicates; ++g)
        if (bs_[g].shape(0) != d || bs_[g].shape(1) != d || g_[g].shape(0) != d || g_[g].shape(1) != d)
            throw std::length_error("Monte-Carlo sums have the wrong shape");
}

}  // namespace recalign
