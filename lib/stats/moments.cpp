#include "recalign/stats/moments.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "recalign/core/blas.hpp"
#include "recalign/core/checked.hpp"
#include "recalign/core/errors.hpp"
#include "recalign/core/hash.hpp"

namespace recalign {

const char* centering_name(centering c) { return c == centering::centered ? "centered" : "uncentered"; }

double trace_in(centering c, double centered_trace, std::uint64_t n, const vector_t& mean) {
    if (c == centering::centered) return centered_trace;
    double m2 = 0.0;
    for (double v : mean) m2 += v * v;
    return centered_trace + static_cast<double>(n) * m2;
}

namespace {
const char* mode_name(target_mode m) {
    switch (m) {
        case target_mode::none: return "none";
        case target_mode::class_ids: return "class ids";
        case target_mode::dense: return "dense targets";
    }
    return "unknown";
}

void check_options(const moment_options& o) {
    if (o.dim == 0) throw std::invalid_argument("moment_accumulator: dimension must be at least 1");
    blas::to_blas_int(o.dim, "dimension");
    if (o.targets == target_mode::none && o.classes != 0)
        throw std::invalid_argument("moment_accumulator: classes = " + std::to_string(o.classes) +
                                    " given without a target mode");
    if (o.targets != target_mode::none && o.classes == 0)
        throw std::invalid_argument("moment_accumulator: a target mode needs classes >= 1");
    if (o.targets != target_mode::none) blas::to_blas_int(o.classes, "classes");
}

}  // namespace

moment_accumulator::moment_accumulator(const moment_options& options) : options_(options) {
    check_options(options_);
    const std::size_t p = joint_dim();
    blas::to_blas_int(p, "dimension + classes");
    checked_elements<double>({p, p}, "moment_accumulator: (D + C) x (D + C) state");
    mean_z_ = xt::zeros<double>({p});
    mzz_ = xt::zeros<double>({p, p});
}

std::uint64_t moment_accumulator::config_hash() const {
    return fnv1a()
        .add(std::string_view("moment_accumulator"))
        .add(static_cast<std::uint64_t>(options_.dim))
        .add(static_cast<std::uint64_t>(options_.targets))
        .add(static_cast<std::uint64_t>(options_.classes))
        .value();
}

void moment_accumulator::update(const batch_view& x, std::uint64_t first_row) {
    update(x, target_view::none(), first_row);
}

void moment_accumulator::update(const batch_view& x, const target_view& y, std::uint64_t first_row) {
    const std::size_t d = options_.dim, c = options_.classes, p = joint_dim(), rows = x.rows;
    // --- validation and conversion into scratch: nothing of the state changes here ---
    if (has_targets() && y.form == target_view::kind::none)
        throw input_error("this accumulator collects targets (" + std::string(mode_name(options_.targets)) +
                          "): every batch needs them");
    if (!has_targets() && y.form != target_view::kind::none)
        throw input_error("targets given to an accumulator configured without targets");
    if (has_targets() && options_.targets == target_mode::class_ids && y.form != target_view::kind::class_ids)
        throw input_error("this accumulator takes integer class ids as targets, got dense rows");
    if (has_targets() && options_.targets == target_mode::dense && y.form != target_view::kind::dense)
        throw input_error("this accumulator takes dense target rows, got class ids");
    blas::to_blas_int(rows, "batch rows");
    const bool single = options_.float32_kernels && x.type == dtype::f32;
    const std::size_t joint_values = checked_elements<double>({rows, p}, "moment_accumulator: batch rows x (D + C)");
    if (has_targets()) {
        yb_.resize(checked_mul(rows, c, "moment_accumulator: batch rows x classes"));
        targets_to_double_checked(y, rows, c, yb_.data(), first_row);
    }
    // uint8 rows (no targets or class ids) always take the exact integer path: it is at least as
    // accurate as the double path below and about twice as fast, so precision does not select it
    // (as the patch blocks' uint8 path, lib/align/patch_blocks_u8.cpp).
    if (x.type == dtype::u8 && options_.targets != target_mode::dense && std::abs(x.scale) <= 1e100) {
        update_u8_exact(x, first_row);
        return;
    }
    // Shift every row of z = [x | y] by the best mean estimate at hand: the running mean,
    // or for the first batch its own first row. The scatter about a shift near the mean,
    // corrected below by a rank-one term, is exact to rounding (no raw-moment cancellation),
    // and it costs one fused pass (convert + shift + finiteness + column sums).
    std::vector<double> shift = scatter_shift(x, d, p, mean_z_.data(), n_ > 0, first_row), sum(p, 0.0);
    if (n_ == 0 && rows > 0 && x.cols == d)
        std::copy(yb_.begin(), yb_.begin() + static_cast<std::ptrdiff_t>(c), shift.begin() + static_cast<std::ptrdiff_t>(d));
    auto lay_out = [&](auto* z) {
        to_shifted_checked(x, d, shift.data(), z, p, sum.data(), first_row);
        for (std::size_t r = 0; r < rows; ++r)
            for (std::size_t j = 0; j < c; ++j) {
                const double v = yb_[r * c + j] - shift[d + j];
                z[r * p + d + j] = static_cast<std::remove_pointer_t<decltype(z)>>(v);
                sum[d + j] += v;
            }
    };
    if (single) {
        zf_.resize(joint_values);
        lay_out(zf_.data());
    } else {
        zb_.resize(joint_values);
        lay_out(zb_.data());
    }
    if (rows == 0) return;
    if (single) {
        sf_.resize(checked_mul(p, p, "moment_accumulator: (D + C)^2"));
        blas::syrk_tn(p, rows, 1.0f, zf_.data(), 0.0f, sf_.data());
    }

    // --- the state changes from here on; nothing below can fail ---
    if (single) {
        for (std::size_t i = 0; i < p; ++i)
            for (std::size_t j = i; j < p; ++j) mzz_(i, j) += static_cast<double>(sf_[i * p + j]);
    } else {
        blas::syrk_tn(p, rows, 1.0, zb_.data(), 1.0, mzz_.data());
    }
    // Scatter about the shift -> about the batch mean (subtract b m mᵀ, m = mean_b − shift),
    // then Chan's term w δδᵀ (MATH.md §1), w = n_a b / n, δ = mean_b − mean_a. Whenever
    // n_a > 0 the shift *is* mean_a, so δ = m and both rank-one terms are one update with
    // coefficient w − b (= −b²/n); when n_a = 0, w = 0. One pass over the P x P state.
    const std::uint64_t na = n_, n = na + rows;
    const double b = static_cast<double>(rows);
    const double w = static_cast<double>(na) * b / static_cast<double>(n);
    const double f = b / static_cast<double>(n);
    std::vector<double> m(p);
    for (std::size_t i = 0; i < p; ++i) m[i] = sum[i] / b;
    blas::syr_upper(p, w - b, m.data(), mzz_.data());
    for (std::size_t i = 0; i < p; ++i) mean_z_(i) += ((shift[i] - mean_z_(i)) + m[i]) * f;
    n_ = n;
}

void moment_accumulator::merge(const moment_accumulator& other) {
    if (other.options_.dim != options_.dim)
        throw std::invalid_argument("cannot merge moment accumulators of dimension " + std::to_string(options_.dim) +
                                    " and " + std::to_string(other.options_.dim));
    if (other.options_.targets != options_.targets || other.options_.classes != options_.classes)
        throw std::invalid_argument(std::string("cannot merge moment accumulators with targets '") +
                                    mode_name(options_.targets) + "' x " + std::to_string(options_.classes) +
                                    " and '" + mode_name(other.options_.targets) + "' x " +
                                    std::to_string(other.options_.classes));
    if (other.n_ == 0) return;
    // Chan's rule (MATH.md §1). Copy what we read from `other` first: it may be *this.
    const std::size_t p = joint_dim();
    const vector_t mean_b = other.mean_z_;
    const std::uint64_t na = n_, nb = other.n_, n = na + nb;
    const double w = static_cast<double>(na) * static_cast<double>(nb) / static_cast<double>(n);
    const double f = static_cast<double>(nb) / static_cast<double>(n);
    std::vector<double> delta(p);
    for (std::size_t i = 0; i < p; ++i) delta[i] = mean_b(i) - mean_z_(i);
    mzz_ += other.mzz_;
    if (na > 0) blas::syr_upper(p, w, delta.data(), mzz_.data());
    for (std::size_t i = 0; i < p; ++i) mean_z_(i) += delta[i] * f;
    n_ = n;
}

moment_accumulator moment_accumulator::from_parts(const moment_options& options, std::uint64_t n, vector_t mean_z,
                                                  matrix_t scatter_upper) {
    moment_accumulator m(options);
    const std::size_t p = m.joint_dim();
    if (mean_z.dimension() != 1 || mean_z.shape(0) != p)
        throw std::invalid_argument("moment_accumulator::from_parts: mean of length " + std::to_string(mean_z.size()) +
                                    ", expected D + C = " + std::to_string(p));
    if (scatter_upper.shape(0) != p || scatter_upper.shape(1) != p)
        throw std::invalid_argument("moment_accumulator::from_parts: scatter of shape " +
                                    std::to_string(scatter_upper.shape(0)) + " x " +
                                    std::to_string(scatter_upper.shape(1)) + ", expected " + std::to_string(p) +
                                    " x " + std::to_string(p));
    bool nonzero = false;
    for (std::size_t i = 0; i < p; ++i) {
        if (!std::isfinite(mean_z(i))) throw std::invalid_argument("moment_accumulator::from_parts: non-finite mean");
        nonzero = nonzero || mean_z(i) != 0.0;
        for (std::size_t j = i; j < p; ++j) {
            if (!std::isfinite(scatter_upper(i, j)))
                throw std::invalid_argument("moment_accumulator::from_parts: non-finite scatter");
            nonzero = nonzero || scatter_upper(i, j) != 0.0;
        }
    }
    if (n == 0 && nonzero) throw std::invalid_argument("moment_accumulator::from_parts: an empty state must be all zeros");
    m.n_ = n;
    m.mean_z_ = std::move(mean_z);
    m.mzz_ = std::move(scatter_upper);
    return m;
}

vector_t moment_accumulator::mean_x() const { return xt::view(mean_z_, xt::range(0, options_.dim)); }

vector_t moment_accumulator::mean_y() const {
    if (!has_targets()) throw std::logic_error("mean_y: this accumulator was configured without targets");
    return xt::view(mean_z_, xt::range(options_.dim, joint_dim()));
}

matrix_t moment_accumulator::block(std::size_t r0, std::size_t rows, std::size_t c0, std::size_t cols,
                                   centering c) const {
    matrix_t s = xt::zeros<double>({rows, cols});
    const double nn = static_cast<double>(n_);
    const bool diagonal = r0 == c0;
    for (std::size_t i = 0; i < rows; ++i)
        for (std::size_t j = diagonal ? i : 0; j < cols; ++j) {
            double v = mzz_(r0 + i, c0 + j);
            if (c == centering::uncentered) v += nn * mean_z_(r0 + i) * mean_z_(c0 + j);
            s(i, j) = v;
        }
    if (diagonal) blas::symmetrize_from_upper(rows, s.data());
    return s;
}

matrix_t moment_accumulator::sxx(centering c) const { return block(0, options_.dim, 0, options_.dim, c); }

matrix_t moment_accumulator::release_sxx(centering c) && {
    const std::size_t d = options_.dim;
    // The per-batch scratch goes first: the u8 and float32 paths' P x P float scatter alone is
    // half a D x D, and the eigensolver's peak comes after (3.6 D x D measured with it at
    // D = 3,072 against the 3 that require_memory counts).
    std::vector<double>().swap(zb_);
    std::vector<double>().swap(yb_);
    std::vector<float>().swap(zf_);
    std::vector<float>().swap(sf_);
    if (joint_dim() != d) {
        matrix_t s = sxx(c);
        mzz_ = matrix_t();
        return s;
    }
    // block() in place: the same arithmetic on the upper triangle, then mirrored.
    if (c == centering::uncentered) {
        const double nn = static_cast<double>(n_);
        for (std::size_t i = 0; i < d; ++i)
            for (std::size_t j = i; j < d; ++j) mzz_(i, j) += nn * mean_z_(i) * mean_z_(j);
    }
    blas::symmetrize_from_upper(d, mzz_.data());
    n_ = 0;
    return std::move(mzz_);
}

matrix_t moment_accumulator::sxy(centering c) const {
    if (!has_targets()) throw std::logic_error("sxy: this accumulator was configured without targets");
    return block(0, options_.dim, options_.dim, options_.classes, c);
}

matrix_t moment_accumulator::syy(centering c) const {
    if (!has_targets()) throw std::logic_error("syy: this accumulator was configured without targets");
    return block(options_.dim, options_.classes, options_.dim, options_.classes, c);
}

cross_moments moment_accumulator::cross(centering c) const {
    cross_moments out;
    out.center = c;
    out.n = n_;
    out.sxy = sxy(c);
    out.syy = syy(c);
    return out;
}

matrix_t cross_moments::times_syy(const matrix_t& a) const {
    const std::size_t rows = a.shape(0), c = classes();
    if (a.shape(1) != c) throw std::invalid_argument("cross_moments::times_syy: A has " + std::to_string(a.shape(1)) +
                                                     " columns, Syy is " + std::to_string(c) + " x " + std::to_string(c));
    matrix_t out = xt::zeros<double>({rows, c});
    if (!one_hot()) {
        blas::gemm_nn(rows, c, c, 1.0, a.data(), syy.data(), 0.0, out.data());
        return out;
    }
    // A diag(n) − (A n) nᵀ / N when centered.
    const bool centered = center == centering::centered && n > 0;
    const double nn = static_cast<double>(n);
    for (std::size_t i = 0; i < rows; ++i) {
        double an = 0.0;
        if (centered)
            for (std::size_t j = 0; j < c; ++j) an += a(i, j) * class_counts(j);
        for (std::size_t j = 0; j < c; ++j)
            out(i, j) = a(i, j) * class_counts(j) - (centered ? an * class_counts(j) / nn : 0.0);
    }
    return out;
}

double cross_moments::syy_trace() const {
    double t = 0.0;
    if (!one_hot()) {
        for (std::size_t j = 0; j < syy.shape(0); ++j) t += syy(j, j);
        return t;
    }
    const bool centered = center == centering::centered && n > 0;
    for (std::size_t j = 0; j < class_counts.size(); ++j)
        t += class_counts(j) - (centered ? class_counts(j) * class_counts(j) / static_cast<double>(n) : 0.0);
    return t;
}

double cross_moments::syy_frobenius2() const {
    if (!one_hot()) {
        double t = 0.0;
        for (double v : syy) t += v * v;
        return t;
    }
    // Σ (n_c δ_ce − n_c n_e / N)² = S2 − 2 S3 / N + S2² / N² with S_p = Σ n_c^p (centered);
    // S2 uncentered. Long double: the terms cancel when one class dominates.
    long double s2 = 0, s3 = 0;
    for (double v : class_counts) {
        const long double x = v;
        s2 += x * x;
        s3 += x * x * x;
    }
    if (center != centering::centered || n == 0) return static_cast<double>(s2);
    const long double nn = static_cast<long double>(n);
    return static_cast<double>(s2 - 2 * s3 / nn + s2 * s2 / (nn * nn));
}

matrix_t cross_moments::syy_dense() const {
    if (!one_hot()) return syy;
    const std::size_t c = class_counts.size();
    return times_syy(xt::eye<double>(c));
}

double moment_accumulator::trace_xx(centering c) const {
    double t = 0.0;
    for (std::size_t i = 0; i < options_.dim; ++i) {
        t += mzz_(i, i);
        if (c == centering::uncentered) t += static_cast<double>(n_) * mean_z_(i) * mean_z_(i);
    }
    return t;
}

vector_t moment_accumulator::diag_xx(centering c) const {
    vector_t d = xt::zeros<double>({options_.dim});
    for (std::size_t i = 0; i < options_.dim; ++i) {
        d(i) = mzz_(i, i);
        if (c == centering::uncentered) d(i) += static_cast<double>(n_) * mean_z_(i) * mean_z_(i);
    }
    return d;
}

moment_options moment_accumulator::validated_options(std::uint64_t dim, std::uint8_t mode, std::uint64_t classes,
                                                     std::uint8_t f32, const checkpoint::budget& b) {
    if (dim == 0 || dim > checkpoint::max_dim) throw std::length_error("dimension " + std::to_string(dim) + " out of range");
    if (mode > 2) throw std::length_error("unknown target mode " + std::to_string(mode));
    if (classes > checkpoint::max_dim) throw std::length_error("classes " + std::to_string(classes) + " out of range");
    if (f32 > 1) throw std::length_error("bad float32 flag");
    // The arrays the constructor allocates must fit in what the payload still holds.
    const std::uint64_t words = b.left / 8;
    const std::uint64_t p = checked_add(dim, classes, "moment checkpoint: dimension + classes");
    if (checked_add(checked_mul(p, p, "moment checkpoint: (D + C)^2"), p, "moment checkpoint: state size") > words)
        throw std::length_error("a " + std::to_string(p) + "-dimensional joint state cannot fit in the payload");
    moment_options o;
    o.dim = static_cast<std::size_t>(dim);
    o.targets = static_cast<target_mode>(mode);
    o.classes = static_cast<std::size_t>(classes);
    o.float32_kernels = f32 != 0;
    check_options(o);
    return o;
}

void moment_accumulator::check_shapes() const {
    const std::size_t p = joint_dim();
    if (mean_z_.shape(0) != p) throw std::length_error("mean has the wrong shape");
    if (mzz_.shape(0) != p || mzz_.shape(1) != p) throw std::length_error("scatter has the wrong shape");
}

}  // namespace recalign
