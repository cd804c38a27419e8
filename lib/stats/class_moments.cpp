#include "recalign/stats/class_moments.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

#include <unistd.h>

#include "recalign/core/checked.hpp"
#include "recalign/core/errors.hpp"
#include "recalign/core/hash.hpp"

namespace recalign {

namespace {

// Rows converted to double at a time: the batch is never widened as a whole (a 60,000-image
// uint8 batch would be 376 MB as doubles), only a block of at most this many values (256 KiB),
// or a single row when D is larger.
constexpr std::size_t block_values = 32768;
// Class sums formed at a time (32 MiB): every class of a batch at once up to 4,194,304 / D
// classes (5,349 at D = 784, 27 at 224x224x3); beyond that they are formed twice (see update).
constexpr std::size_t sum_values = std::size_t{1} << 22;

void check_options(const class_moments_options& o) {
    if (o.dim == 0) throw std::invalid_argument("class_moments: dimension must be at least 1");
    if (o.classes == 0) throw std::invalid_argument("class_moments: classes must be at least 1");
    // A state a checkpoint header could not describe is refused here, not when it is saved.
    if (o.dim > checkpoint::max_dim || o.classes > checkpoint::max_dim)
        throw size_overflow("class_moments: dimension " + std::to_string(o.dim) + " or classes " +
                            std::to_string(o.classes) + " above 2^31");
    checked_elements<double>({o.classes, o.dim}, "class_moments: classes x dimension");
}

}  // namespace

class_moments::class_moments(const class_moments_options& options) : options_(options) {
    check_options(options_);
    counts_.assign(options_.classes, 0);
    means_ = xt::zeros<double>({options_.classes, options_.dim});
}

std::uint64_t class_moments::config_hash() const {
    return fnv1a()
        .add(std::string_view("class_moments"))
        .add(static_cast<std::uint64_t>(options_.dim))
        .add(static_cast<std::uint64_t>(options_.classes))
        .value();
}

void class_moments::update(const batch_view& x, const target_view& labels, std::uint64_t first_row) {
    const std::size_t d = options_.dim, classes = options_.classes, rows = x.rows;
    // --- validation into scratch: nothing of the state changes here ---
    batch_view shape_only = x;  // width and dtype, checked first and also for an empty batch
    shape_only.rows = 0;
    to_double_checked(shape_only, d, nullptr, first_row);
    checked_product({rows, d}, "class_moments: batch rows x dimension");
    labels_.resize(rows);
    class_indices_checked(labels, rows, classes, labels_.data(), first_row);
    // uint8 values (the scale finite: checked with the shape) are within 255 |scale| of 0, and so
    // is every class mean (an average of such values): no value can be non-finite and no class's
    // sum of deviations (at most rows x 255 |scale| in size, doubled for rounding) can overflow
    // while that bound is finite. The checks below could not fail: they are skipped, and the rows
    // are converted once, as their sums are formed.
    const bool bounded =
        x.type == dtype::u8 && std::isfinite(2.0 * 255.0 * std::abs(x.scale) * static_cast<double>(rows));
    // Every value finite, the first bad one named in row order, a block of rows at a time.
    const std::size_t block_rows = std::max<std::size_t>(1, block_values / d);
    if (!bounded) {
        rows_.resize(std::min(rows, block_rows) * d);
        for (std::size_t r0 = 0; r0 < rows; r0 += block_rows)
            to_double_checked(batch_rows(x, r0, std::min(block_rows, rows - r0)), d, rows_.data(), first_row + r0);
    }
    // The rows grouped by class, each class's in row order (a stable counting sort), and the
    // classes present.
    starts_.assign(classes + 1, 0);
    for (std::size_t r = 0; r < rows; ++r) ++starts_[labels_[r] + 1];
    present_.clear();
    for (std::size_t c = 0; c < classes; ++c) {
        if (starts_[c + 1] > 0) present_.push_back(c);
        starts_[c + 1] += starts_[c];
    }
    cursor_.assign(starts_.begin(), starts_.end() - 1);
    by_class_.resize(rows);
    for (std::size_t r = 0; r < rows; ++r) by_class_[cursor_[labels_[r]]++] = r;
    // The sums of deviations Σ_rows (x − μ_c) of present_[k0 .. k1), row by row in row order
    // (Chan's rule with the running mean as the shift, MATH.md §1: no raw sum of large values).
    const std::size_t group = std::max<std::size_t>(1, sum_values / d);
    sums_.resize(std::min(group, present_.size()) * d);
    const auto form = [&](std::size_t k0, std::size_t k1) {
        std::fill(sums_.begin(), sums_.end(), 0.0);
        for (std::size_t k = k0; k < k1; ++k) {
            const std::size_t c = present_[k];
            const double* mu = means_.data() + c * d;
            double* s = sums_.data() + (k - k0) * d;
            for (std::size_t i = starts_[c]; i < starts_[c + 1]; ++i) {
                const std::size_t r = by_class_[i];
                if (x.type == dtype::u8) {  // the conversion of to_double_checked, in the same loop
                    const std::uint8_t* row = static_cast<const std::uint8_t*>(x.data) + r * d;
                    for (std::size_t j = 0; j < d; ++j) {
                        const double v = static_cast<double>(row[j]) * x.scale;
                        s[j] += v - mu[j];
                    }
                    continue;
                }
                to_double_checked(batch_rows(x, r, 1), d, rows_.data(), first_row + r);  // checked above
                for (std::size_t j = 0; j < d; ++j) s[j] += rows_[j] - mu[j];
            }
        }
    };
    // No class's sum may overflow (values near the double range).
    for (std::size_t k0 = 0; k0 < present_.size() && !bounded; k0 += group) {
        const std::size_t k1 = std::min(present_.size(), k0 + group);
        form(k0, k1);
        for (std::size_t k = k0; k < k1; ++k)
            for (std::size_t j = 0; j < d; ++j)
                if (!std::isfinite(sums_[(k - k0) * d + j]))
                    throw input_error("class " + std::to_string(present_[k]) + ", column " + std::to_string(j) +
                                      ": the sum of the batch at row " + std::to_string(first_row) +
                                      " overflows (values near the double range)");
    }

    // --- the state changes from here on; nothing below can fail ---
    // μ_c ← μ_c + Σ_rows (x − μ_c) / (n_c + b_c): the new mean, exactly (MATH.md §1). When the
    // classes took more than one group, each group's sums are formed again, by the same
    // operations on the same means, so the same bits as those checked (bounded rows: formed here
    // only).
    for (std::size_t k0 = 0; k0 < present_.size(); k0 += group) {
        const std::size_t k1 = std::min(present_.size(), k0 + group);
        if (bounded || present_.size() > group) form(k0, k1);
        for (std::size_t k = k0; k < k1; ++k) {
            const std::size_t c = present_[k];
            counts_[c] += starts_[c + 1] - starts_[c];
            const double inv = 1.0 / static_cast<double>(counts_[c]);
            double* mu = means_.data() + c * d;
            const double* s = sums_.data() + (k - k0) * d;
            for (std::size_t j = 0; j < d; ++j) mu[j] += s[j] * inv;
        }
    }
    n_ += rows;
}

void class_moments::merge(const class_moments& other) {
    if (other.options_.dim != options_.dim)
        throw std::invalid_argument("cannot merge class moments of dimension " + std::to_string(options_.dim) + " and " +
                                    std::to_string(other.options_.dim));
    if (other.options_.classes != options_.classes)
        throw std::invalid_argument("cannot merge class moments of " + std::to_string(options_.classes) + " and " +
                                    std::to_string(other.options_.classes) + " classes");
    if (other.n_ == 0) return;
    checked_add(n_, other.n_, "class_moments: merged sample count");  // before any change
    // Chan's rule per class (MATH.md §1): μ_c ← μ_c + (n_c^b / n_c) (μ_c^b − μ_c). Each element
    // of `other` is read before the same element of *this is written, so other may be *this.
    const std::size_t d = options_.dim;
    for (std::size_t c = 0; c < options_.classes; ++c) {
        const std::uint64_t nb = other.counts_[c];
        if (nb == 0) continue;
        const std::uint64_t n = counts_[c] + nb;
        const double f = static_cast<double>(nb) / static_cast<double>(n);
        double* mu = means_.data() + c * d;
        const double* mb = other.means_.data() + c * d;
        for (std::size_t j = 0; j < d; ++j) mu[j] += f * (mb[j] - mu[j]);
        counts_[c] = n;
    }
    n_ += other.n_;
}

void class_moments::save(std::ostream& os) const { checkpoint::save_state(os, *this); }

class_moments class_moments::load(std::istream& is) { return checkpoint::load_state<class_moments>(is); }

vector_t class_moments::mean() const {
    vector_t mu = xt::zeros<double>({options_.dim});
    if (n_ == 0) return mu;
    const std::size_t d = options_.dim;
    for (std::size_t c = 0; c < options_.classes; ++c) {
        if (counts_[c] == 0) continue;
        const double w = static_cast<double>(counts_[c]) / static_cast<double>(n_);
        const double* mc = means_.data() + c * d;
        for (std::size_t j = 0; j < d; ++j) mu(j) += w * mc[j];
    }
    return mu;
}

namespace {
// Sxy[:, c] = n_c (μ_c − shift) (MATH.md §1 with y = e_label; shift = μ centered, 0 uncentered)
// into `sxy` (D x C), formed by sweeps over the classes of `chunk` coordinates each, so that a
// sweep reads whole pages of every class's row of the means (at least 4 KiB: `chunk` doubles);
// with `release` those pages are given back a span of sweeps at a time (below). Each value is one
// expression of the same operands whatever the order: the same bits either way.
void form_sxy(const double* means, const std::vector<std::uint64_t>& counts, const vector_t& shift, std::size_t d,
              bool release, matrix_t& sxy) {
    static const std::size_t chunk = std::max<std::size_t>(512, static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)) / 8);
    // Classes a few at a time, so that each row of Sxy is written a cache line at a time.
    constexpr std::size_t few = 8;
    const std::size_t classes = counts.size();
    // The pages are given back once per span of coordinates holding about `budget` bytes of the
    // means (Sxy grows by as much before they are). Measured at 1,000 classes and 224x224x3
    // (docs/benchmarks-log.md, thirteenth session): the consuming sweep takes 5.0-6.5 s (8-9 s with a call
    // per class and chunk), the copying one 0.4-0.6 s: the price of not holding both, paid once.
    constexpr std::size_t budget = std::size_t(16) << 20;
    const std::size_t span = std::max<std::size_t>(1, budget / 8 / std::max<std::size_t>(1, classes) / chunk) * chunk;
    double* out = sxy.data();
    for (std::size_t s0 = 0; s0 < d; s0 += span) {
        const std::size_t s1 = std::min(d, s0 + span);
        for (std::size_t j0 = s0; j0 < s1; j0 += chunk) {
            const std::size_t j1 = std::min(s1, j0 + chunk);
            for (std::size_t c0 = 0; c0 < classes; c0 += few) {
                const std::size_t c1 = std::min(classes, c0 + few);
                for (std::size_t j = j0; j < j1; ++j)
                    for (std::size_t c = c0; c < c1; ++c)  // an unseen class has no rows: its column is zero
                        out[j * classes + c] =
                            counts[c] == 0 ? 0.0 : static_cast<double>(counts[c]) * (means[c * d + j] - shift(j));
            }
        }
        // The page that straddles s0 was not whole after the previous span: it is now.
        for (std::size_t c = 0; c < classes && release; ++c)
            detail::release_pages(means + c * d + (s0 >= chunk ? s0 - chunk : 0), means + c * d + s1);
    }
}

// Syy = diag(n_c), minus n nᵀ / N when centered: kept as the counts (cross_moments).
cross_moments make_cross(centering cen, std::uint64_t n, const std::vector<std::uint64_t>& counts, const double* means,
                         const vector_t& shift, bool release) {
    const std::size_t d = shift.size(), classes = counts.size();
    cross_moments out;
    out.center = cen;
    out.n = n;
    out.sxy = matrix_t::from_shape({d, classes});  // every element written by form_sxy
    out.class_counts = xt::zeros<double>({classes});
    for (std::size_t c = 0; c < classes; ++c) out.class_counts(c) = static_cast<double>(counts[c]);
    form_sxy(means, counts, shift, d, release, out.sxy);
    return out;
}
}  // namespace

cross_moments class_moments::cross(centering cen) const& {
    const vector_t shift = cen == centering::centered ? mean() : vector_t(xt::zeros<double>({options_.dim}));
    return make_cross(cen, n_, counts_, means_.data(), shift, false);
}

cross_moments class_moments::cross(centering cen) && {
    const vector_t shift = cen == centering::centered ? mean() : vector_t(xt::zeros<double>({options_.dim}));
    cross_moments out = make_cross(cen, n_, counts_, means_.data(), shift, true);
    means_ = matrix_t();
    counts_.clear();
    options_.classes = 0;
    n_ = 0;
    return out;
}

class_moments_options class_moments::validated_options(std::uint64_t dim, std::uint64_t classes,
                                                       const checkpoint::budget& b) {
    if (dim == 0 || dim > checkpoint::max_dim) throw std::length_error("dimension " + std::to_string(dim) + " out of range");
    if (classes == 0 || classes > checkpoint::max_dim)
        throw std::length_error("classes " + std::to_string(classes) + " out of range");
    // Counts (C words) and means (C x D words) must fit in what the payload still holds,
    // before the constructor allocates them.
    const std::uint64_t words = b.left / 8;
    if (checked_mul(checked_add(dim, 1, "class checkpoint: D + 1"), classes, "class checkpoint: (D + 1) x C") > words)
        throw std::length_error("class statistics of " + std::to_string(classes) + " x " + std::to_string(dim) +
                                " cannot fit in the payload");
    class_moments_options o;
    o.dim = static_cast<std::size_t>(dim);
    o.classes = static_cast<std::size_t>(classes);
    return o;
}

void class_moments::check_loaded() {
    const std::size_t d = options_.dim, classes = options_.classes;
    if (counts_.size() != classes) throw std::length_error("class counts have the wrong length");
    if (means_.shape(0) != classes || means_.shape(1) != d) throw std::length_error("class means have the wrong shape");
    std::uint64_t n = 0;
    for (std::size_t c = 0; c < classes; ++c) {
        n = checked_add(n, counts_[c], "class checkpoint: total count");
        const double* mc = means_.data() + c * d;
        for (std::size_t j = 0; j < d; ++j) {
            if (!std::isfinite(mc[j])) throw std::length_error("class " + std::to_string(c) + " has a non-finite mean");
            if (counts_[c] == 0 && mc[j] != 0.0)
                throw std::length_error("class " + std::to_string(c) + " has no rows but a non-zero mean");
        }
    }
    n_ = n;
}

}  // namespace recalign
